"""Snapshots survive crashes and corruption; rollbacks serve the last good model."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cadmetrics import Telemetry
from cadmetrics.errors import HealthCheckFailed, NoSnapshot
from cadmetrics.models.loader import ModelLoader
from cadmetrics.models.snapshots import MANIFEST, SnapshotStore
from tests.models.toy import TOY_POLICY, ToyModel


def model_file(tmp_path: Path, name: str, weight: float) -> Path:
    path = tmp_path / name
    path.write_bytes(pickle.dumps(ToyModel([weight]), protocol=4))
    return path


def weight(loader: ModelLoader) -> float:
    return float(loader.model.weights[0])


def committed(tmp_path: Path, *weights: float) -> tuple[Path, ModelLoader]:
    """A loader on a fresh snapshot store that has committed a model of each weight."""
    snaps = tmp_path / "snaps"
    loader = ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps)
    for n, value in enumerate(weights):
        loader.load(model_file(tmp_path, f"m{n}.pkl", value))
    return snaps, loader


def test_the_store_keeps_the_newest_and_prunes_the_rest(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snaps", keep=2)
    for n in range(4):
        store.commit(f"model {n}".encode(), f"m{n}.pkl")
    snapshots = store.snapshots()
    assert [s.source for s in snapshots] == ["m3.pkl", "m2.pkl"]
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == sorted(
        [MANIFEST, *(s.path.name for s in snapshots)]
    )
    with pytest.raises(ValueError, match="keep must be at least 1"):
        SnapshotStore(tmp_path / "x", keep=0)


def test_a_new_loader_restores_the_last_good_model(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    snaps, _ = committed(tmp_path, 1.0, 2.0)
    restarted = ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps, telemetry=telemetry)
    assert weight(restarted) == 2.0
    assert restarted.level == 0
    assert restarted.store is not None
    newest = restarted.store.snapshots()[0]
    assert newest.report is not None and newest.report["verdict"] == "allowed"
    assert newest.report["sha256"] == newest.sha256
    assert newest.source.endswith("m1.pkl") and newest.created > 0  # the newer of the two
    assert metrics.value("cadmetrics_model_snapshots_available") == 2


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_corrupt_newest_snapshot_is_skipped_and_counted(
    tmp_path: Path, telemetry: Telemetry, metrics: Any, damage: str
) -> None:
    snaps, loader = committed(tmp_path, 1.0, 2.0)
    newest = snaps / f"{loader.sha256}.model"
    data = bytearray(newest.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        newest.write_bytes(bytes(data))
    elif damage == "truncate":
        newest.write_bytes(bytes(data[: len(data) // 2]))
    else:
        newest.unlink()
    restarted = ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps, telemetry=telemetry)
    assert weight(restarted) == 1.0  # never the damaged file
    assert restarted.store is not None and "missing, torn or corrupt" in str(restarted.store.problems[0])
    assert restarted.level == 1  # not the newest committed model
    assert metrics.value("cadmetrics_model_rollback_level") == 1
    assert metrics.value("cadmetrics_model_rollbacks_total", reason="corrupt_snapshot") == 1
    assert metrics.value("cadmetrics_model_rollbacks_total", reason="startup_recovery") == 0
    assert metrics.value("cadmetrics_model_snapshots_available") == 1


def test_damage_that_does_not_change_what_serves_is_no_rollback(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    torn_oldest, loader = committed(tmp_path / "a", 1.0, 2.0, 3.0)
    assert loader.store is not None
    loader.store.snapshots()[-1].path.write_bytes(b"torn")
    restarted = ModelLoader(policy=TOY_POLICY, snapshots_dir=torn_oldest, telemetry=telemetry)
    assert weight(restarted) == 3.0 and restarted.level == 0
    assert restarted.store is not None and len(restarted.store.problems) == 1
    assert metrics.value("cadmetrics_model_snapshots_available") == 2
    lost_manifest, _ = committed(tmp_path / "b", 1.0, 2.0)
    (lost_manifest / MANIFEST).write_text("{")
    restarted = ModelLoader(policy=TOY_POLICY, snapshots_dir=lost_manifest, telemetry=telemetry)
    assert weight(restarted) == 2.0 and restarted.level == 0
    assert metrics.value("cadmetrics_model_rollbacks_total") == 0


def test_rollback_levels_count_a_damaged_snapshot(tmp_path: Path) -> None:
    _, loader = committed(tmp_path, 1.0, 2.0, 3.0)
    assert loader.store is not None
    loader.store.snapshots()[1].path.unlink()  # the model of weight 2.0
    loader.rollback(levels=1)  # level 1 is gone: the next intact one back
    assert weight(loader) == 1.0 and loader.level == 2
    with pytest.raises(NoSnapshot, match="no intact snapshot 3 back"):
        loader.rollback(levels=3)


def test_an_unreadable_manifest_is_rebuilt_from_the_blobs(tmp_path: Path) -> None:
    snaps, _ = committed(tmp_path, 1.0)
    (snaps / MANIFEST).write_text('{"snapshots": [{"sha256": ')
    restarted = ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps)
    assert weight(restarted) == 1.0
    assert restarted.store is not None and "unreadable manifest" in str(restarted.store.problems[0])


CRASHING_CHILD = textwrap.dedent(
    """
    import os, sys
    from cadmetrics.models.loader import ModelLoader
    from tests.models.toy import TOY_POLICY
    real_replace, calls = os.replace, []
    def replace_then_die(*args, **kwargs):
        calls.append(args)
        if len(calls) == int(sys.argv[3]):
            os._exit(9)  # killed between writing a file and renaming it into place
        return real_replace(*args, **kwargs)
    os.replace = replace_then_die
    ModelLoader(policy=TOY_POLICY, snapshots_dir=sys.argv[1]).load(sys.argv[2])
    """
)


@pytest.mark.parametrize("crash_at", [1, 2], ids=["before the blob rename", "before the manifest rename"])
def test_a_crash_at_any_step_leaves_the_old_state(tmp_path: Path, crash_at: int) -> None:
    snaps = tmp_path / "snaps"
    ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps).load(model_file(tmp_path, "a.pkl", 1.0))
    newer = model_file(tmp_path, "b.pkl", 2.0)
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_CHILD, str(snaps), str(newer), str(crash_at)], check=False
    )
    assert child.returncode == 9
    restarted = ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps)
    assert weight(restarted) == 1.0
    assert len(json.loads((snaps / MANIFEST).read_text())["snapshots"]) == 1
    for leftover in snaps.glob(".tmp-*"):  # as if the crash happened long ago
        os.utime(leftover, (0, 0))
    restarted.load(newer)  # and the next commit cleans up what the crash left
    assert not list(snaps.glob(".tmp-*"))
    assert weight(ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps)) == 2.0


def test_rollback_walks_back_explicitly(tmp_path: Path, telemetry: Telemetry, metrics: Any) -> None:
    loader = ModelLoader(policy=TOY_POLICY, snapshots_dir=tmp_path / "snaps", keep=3, telemetry=telemetry)
    for n in (1.0, 2.0, 3.0):
        loader.load(model_file(tmp_path, f"m{n}.pkl", n))
    loader.rollback(levels=2)
    assert weight(loader) == 1.0 and loader.level == 2
    assert metrics.value("cadmetrics_model_rollback_level") == 2
    assert metrics.value("cadmetrics_model_rollbacks_total", reason="manual") == 1
    with pytest.raises(NoSnapshot, match="no intact snapshot 3 back: 3 available"):
        loader.rollback(levels=3)
    with pytest.raises(NoSnapshot, match="needs snapshots_dir"):
        ModelLoader(policy=TOY_POLICY).rollback()


def test_a_failed_health_check_rolls_back_and_is_forgotten(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    snaps = tmp_path / "snaps"
    loader = ModelLoader(
        policy=TOY_POLICY,
        snapshots_dir=snaps,
        health_check=lambda model: model.weights[0] < 10,
        telemetry=telemetry,
    )
    loader.load(model_file(tmp_path, "good.pkl", 1.0))
    with pytest.raises(HealthCheckFailed, match=r"returned .*False.*; serving snapshot level 0"):
        loader.reload(model_file(tmp_path, "bad.pkl", 99.0))
    assert weight(loader) == 1.0
    assert metrics.value("cadmetrics_model_rollbacks_total", reason="health_check_failed") == 1
    assert metrics.value("cadmetrics_model_reloads_total", result="health_check_failed") == 1
    assert (
        weight(ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps)) == 1.0
    )  # a restart does not bring it back


def test_a_restart_walks_back_past_snapshots_that_no_longer_validate(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    from cadmetrics.models.interface import Interface
    from tests.models.toy import NanModel

    snaps = tmp_path / "snaps"
    loader = ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps)
    loader.load(model_file(tmp_path, "good.pkl", 2.0))
    nan = tmp_path / "nan.pkl"
    nan.write_bytes(pickle.dumps(NanModel([1.0]), protocol=4))
    loader.load(nan)  # passes without a probe
    strict = ModelLoader(
        policy=TOY_POLICY, snapshots_dir=snaps, interface=Interface(probe=[[1.0]]), telemetry=telemetry
    )
    assert weight(strict) == 2.0 and strict.level == 1
    assert metrics.value("cadmetrics_model_rollbacks_total", reason="startup_recovery") == 1
    assert metrics.value("cadmetrics_model_rollback_level") == 1
    assert metrics.value("cadmetrics_model_interface_validation_failures_total", reason="non_finite") == 1


def test_a_failed_health_check_restores_what_served_before(tmp_path: Path) -> None:
    healthy = ModelLoader(
        policy=TOY_POLICY, health_check=lambda model: model.weights[0] < 10
    )  # no snapshots at all
    healthy.load(model_file(tmp_path, "good.pkl", 1.0))
    with pytest.raises(HealthCheckFailed):
        healthy.reload(model_file(tmp_path, "bad.pkl", 99.0))
    assert weight(healthy) == 1.0
    rolled = ModelLoader(
        policy=TOY_POLICY, snapshots_dir=tmp_path / "snaps", health_check=lambda model: model.weights[0] < 10
    )
    for n in (1.0, 2.0, 3.0):
        rolled.load(model_file(tmp_path, f"m{n}.pkl", n))
    rolled.rollback(levels=1)
    with pytest.raises(HealthCheckFailed):
        rolled.reload(model_file(tmp_path, "bad.pkl", 99.0))
    assert weight(rolled) == 2.0 and rolled.level == 1  # the operator's choice, not the newest


def test_a_lost_manifest_is_rebuilt_and_no_blob_is_discarded(tmp_path: Path) -> None:
    snaps, _ = committed(tmp_path, 1.0, 2.0)
    (snaps / MANIFEST).unlink()
    restarted = ModelLoader(policy=TOY_POLICY, snapshots_dir=snaps)
    assert restarted.store is not None and len(restarted.store.snapshots()) == 2
    restarted.load(model_file(tmp_path, "c.pkl", 3.0))
    assert len(restarted.store.snapshots()) == 3


def test_another_writers_fresh_temporary_file_is_left_alone(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snaps")
    in_flight = tmp_path / "snaps" / ".tmp-other-writer"
    in_flight.write_bytes(b"half written")
    store.commit(b"model", "m.pkl")
    assert in_flight.exists()
