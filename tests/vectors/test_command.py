"""``cadmetrics vectors stats|migrate`` and ``cadmetrics drift``: output, exit codes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cadmetrics.cli import main
from cadmetrics.vectors import Record, VectorStore
from tests.vectors.helpers import digest, records


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    with VectorStore.open(path) as store:
        store.add_many(records(600, "v4"))
        store.add_many(records(10, "v2", prefix="old"))
    return path


def test_stats_reads_beside_a_writer(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with VectorStore.open(store_path):  # the service holding the store
        assert main(["vectors", "stats", str(store_path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "610 records in 2 segments" in out
    assert "v4:        600 records of dimension 49" in out
    assert "matches its recorded CRC-32" in out
    assert main(["vectors", "stats", str(store_path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["versions"]["v2"] == {"records": 10, "dimension": 14}


def test_stats_reports_damage(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    segment = next(path for path in (store_path / "segments").iterdir() if "v4" in path.name)
    vectors = segment / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-5] ^= 1
    vectors.write_bytes(bytes(data))
    assert main(["vectors", "stats", str(store_path), "--verify"]) == 1
    assert "CRC-32 does not match" in capsys.readouterr().out


def test_migrate_dry_run_then_for_real(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", "migrate", str(store_path), "--to", "v3", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["upgrades"] == 10
    assert plan["downgrades"] == 600
    assert plan["sources"]["v4"]["dropped"] == [
        "surface_count",
        "shape_entropy_d2",
        "shape_entropy_patch_area",
    ]
    with VectorStore.open(store_path, read_only=True) as store:
        assert store.counts()["v3"] == 0  # a dry run changes nothing
    assert main(["vectors", "migrate", str(store_path), "--to", "v3", "--batch-size", "100"]) == 0
    out = capsys.readouterr().out
    assert "moved 610 records to v3" in out
    assert "10 filled, 600 projected" in out
    with VectorStore.open(store_path) as store:
        assert store.counts()["v3"] == 610


def test_usage_errors_exit_2(tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", "stats", str(tmp_path / "none")]) == 2
    assert "no vector store here" in capsys.readouterr().err
    assert main(["vectors", "migrate", str(store_path), "--to", "v9"]) == 2
    assert "unknown feature version 'v9'" in capsys.readouterr().err
    with VectorStore.open(store_path):
        assert main(["vectors", "migrate", str(store_path), "--to", "v3"]) == 2
    assert "another process has it open" in capsys.readouterr().err
    assert main(["drift", str(store_path), "--baseline", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err


def test_drift_is_quiet_on_the_same_data_and_loud_on_shifted_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store"
    rng = np.random.default_rng(11)
    baseline_file = tmp_path / "baseline.npz"
    with VectorStore.open(path) as store:
        store.add_many(
            Record(f"a{n}", rng.standard_normal(49).astype(np.float32), "v4", digest(f"a{n}"))
            for n in range(3000)
        )
    assert main(["drift", str(path), "--baseline", str(baseline_file), "--make"]) == 0
    assert "baseline of 3000 v4 vectors saved" in capsys.readouterr().out
    with VectorStore.open(path) as store:
        store.add_many(
            Record(f"b{n}", rng.standard_normal(49).astype(np.float32), "v4", digest(f"b{n}"))
            for n in range(1000)
        )
    assert main(["drift", str(path), "--baseline", str(baseline_file), "--window", "1000"]) == 0
    assert "DRIFT" not in capsys.readouterr().out
    with VectorStore.open(path) as store:
        shifted = rng.standard_normal((1000, 49)).astype(np.float32)
        shifted[:, store.layouts["v4"].index("sphericity")] += 1.5
        store.add_many(Record(f"c{n}", shifted[n], "v4", digest(f"c{n}")) for n in range(1000))
    assert main(["drift", str(path), "--baseline", str(baseline_file), "--window", "1000", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["drifted"] == ["shape"]
