"""ModelLoader: the order of its checks, its refusals, reloads, and its metrics."""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import pytest

from cadmetrics import Telemetry
from cadmetrics.errors import (
    HashNotAllowed,
    InterfaceInvalid,
    ModelBlocked,
    ModelLoadFailed,
    ModelTooLarge,
    UnknownScanMode,
)
from cadmetrics.models import Mode, Policy, scan
from cadmetrics.models.interface import Interface
from cadmetrics.models.loader import ModelLoader
from cadmetrics.models.loading import RestrictedUnpickler
from tests.models.corpus import build_corpus
from tests.models.toy import TOY_POLICY, BrokenModel, NanModel, NotCallable, ToyModel

ATTACKS = {p.name: p for p in build_corpus()}


def write(tmp_path: Path, name: str, obj: object) -> Path:
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def attack(tmp_path: Path, name: str = "os.system protocol 2") -> tuple[Path, Path]:
    canary = tmp_path / "canary"
    path = tmp_path / "evil.pkl"
    path.write_bytes(ATTACKS[name].build(str(canary)))
    return path, canary


@pytest.mark.parametrize("mode", ["blocklist", "allowlist"])
def test_a_benign_model_loads_and_is_counted(
    tmp_path: Path, telemetry: Telemetry, metrics: Any, mode: str
) -> None:
    loader = ModelLoader(mode=mode, policy=TOY_POLICY, telemetry=telemetry)
    model = loader.load(write(tmp_path, "toy.pkl", ToyModel([1.0, 2.0])))
    assert model.predict([[1, 1]]).tolist() == [3.0]
    assert loader.model is model
    assert loader.report is not None and loader.report.source.endswith("toy.pkl")
    assert loader.sha256 == hashlib.sha256((tmp_path / "toy.pkl").read_bytes()).hexdigest()
    assert metrics.value("cadmetrics_model_opcode_scans_total", mode=mode, result="allowed") == 1
    assert metrics.value("cadmetrics_model_load_duration_seconds", mode=mode) == 1
    assert metrics.value("cadmetrics_model_opcode_mode") == Mode(mode).gauge_value


def test_a_malicious_model_is_blocked_before_anything_runs(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    path, canary = attack(tmp_path)
    loader = ModelLoader(mode="blocklist", policy=TOY_POLICY, telemetry=telemetry)
    with pytest.raises(ModelBlocked, match="dangerous_global") as caught:
        loader.load(path)
    assert caught.value.report is not None
    assert not canary.exists()
    assert loader.model is None
    assert (
        metrics.value("cadmetrics_model_opcode_blocked_total", reason="dangerous_global", mode="blocklist")
        == 1
    )
    assert metrics.value("cadmetrics_model_load_refusals_total", reason="blocked") == 1
    assert metrics.value("cadmetrics_model_opcode_scans_total", result="blocked") == 1


def test_the_size_limit_comes_first(tmp_path: Path, telemetry: Telemetry, metrics: Any) -> None:
    path, canary = attack(tmp_path)
    with pytest.raises(ModelTooLarge, match="over the limit of 10"):
        ModelLoader(policy=TOY_POLICY, max_bytes=10, telemetry=telemetry).load(path)
    assert metrics.value("cadmetrics_model_opcode_scans_total") == 0  # not even scanned
    assert metrics.value("cadmetrics_model_load_refusals_total", reason="too_large") == 1
    assert not canary.exists()


def test_the_size_limit_bounds_what_an_archive_unpacks_to(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    import zipfile

    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"N" * 32 * 1024**2)
    limit = 1024**2
    assert path.stat().st_size < limit
    with pytest.raises(ModelBlocked, match="malformed"):
        ModelLoader(policy=TOY_POLICY, max_bytes=limit, telemetry=telemetry).load(path)
    assert metrics.value("cadmetrics_model_opcode_blocked_total", reason="malformed") == 1


def test_the_digest_allowlist_comes_before_the_scan(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    good = write(tmp_path, "toy.pkl", ToyModel([1.0]))
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    loader = ModelLoader(policy=TOY_POLICY, allowed_sha256=[digest.upper()], telemetry=telemetry)
    loader.load(good)
    path, _ = attack(tmp_path)
    with pytest.raises(HashNotAllowed, match="is not on the allowed list"):
        loader.load(path)
    assert metrics.value("cadmetrics_model_opcode_scans_total") == 1  # only the good one
    assert metrics.value("cadmetrics_model_load_refusals_total", reason="hash_not_allowed") == 1


@pytest.mark.parametrize(
    ("model", "interface", "failure"),
    [
        ({"weights": [1.0]}, Interface(), "missing_method"),
        (NotCallable(), Interface(), "not_callable"),
        (BrokenModel([1.0]), Interface(probe=[[1.0]]), "probe_error"),
        (ToyModel([1.0, 2.0]), Interface(probe=[[1.0, 1.0]], output_shape=(2,)), "wrong_shape"),
        (NanModel([1.0]), Interface(probe=[[1.0]]), "non_finite"),
    ],
)
def test_interface_validation_refuses_and_counts(
    tmp_path: Path, telemetry: Telemetry, metrics: Any, model: object, interface: Interface, failure: str
) -> None:
    loader = ModelLoader(policy=TOY_POLICY, interface=interface, telemetry=telemetry)
    with pytest.raises(InterfaceInvalid) as caught:
        loader.load(write(tmp_path, "m.pkl", model))
    assert caught.value.failure == failure
    assert metrics.value("cadmetrics_model_interface_validation_failures_total", reason=failure) == 1
    assert metrics.value("cadmetrics_model_load_refusals_total", reason="interface_invalid") == 1


def test_a_failed_reload_leaves_the_previous_model_serving(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    loader = ModelLoader(policy=TOY_POLICY, telemetry=telemetry)
    first = loader.reload(write(tmp_path, "v1.pkl", ToyModel([1.0])))
    digest = loader.sha256
    path, canary = attack(tmp_path)
    with pytest.raises(ModelBlocked):
        loader.reload(path)
    with pytest.raises(InterfaceInvalid):
        loader.reload(write(tmp_path, "v2.pkl", {"no": "predict"}))
    with pytest.raises(ModelLoadFailed, match="no loader reads it"):
        loader.reload(_zip_model(tmp_path))
    assert loader.model is first and loader.sha256 == digest
    assert not canary.exists()
    assert metrics.value("cadmetrics_model_reloads_total", result="success") == 1
    assert metrics.value("cadmetrics_model_reloads_total", result="refused") == 3


def _zip_model(tmp_path: Path) -> Path:
    import zipfile

    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/weights.pkl", pickle.dumps(ToyModel([1.0]), protocol=2))
    return path


def test_unknown_modes_fail_when_the_loader_is_built_and_legacy_names_warn() -> None:
    with pytest.raises(UnknownScanMode):
        ModelLoader(mode="safe")
    with pytest.warns(DeprecationWarning, match="'whitelist' is deprecated"):
        assert ModelLoader(mode="whitelist").mode is Mode.ALLOWLIST


@pytest.mark.parametrize(
    "name", ["os.system protocol 0", "Python 2 __builtin__.eval", "dotted name logging.os.system"]
)
def test_the_restricted_unpickler_refuses_on_its_own(tmp_path: Path, name: str) -> None:
    """Defence in depth: even a stream the scan never saw cannot import a blocked global."""
    canary = tmp_path / "canary"
    data = ATTACKS[name].build(str(canary))
    for mode in (Mode.BLOCKLIST, Mode.ALLOWLIST):
        with pytest.raises(ModelBlocked, match="the restricted unpickler refused"):
            RestrictedUnpickler(io.BytesIO(data), mode, Policy()).load()
    assert not canary.exists()


def test_a_load_the_restricted_unpickler_refuses_is_counted_as_blocked(
    tmp_path: Path, telemetry: Telemetry, metrics: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scanner bug, simulated by a scan that records and blocks nothing: the second check
    refuses, and the metrics say blocked, not allowed."""
    from cadmetrics.models import loader as loader_module

    def blind_scan(*args: Any, **kwargs: Any) -> Any:
        return scan(args[0], Mode.AUDIT, name=kwargs.get("name"))

    monkeypatch.setattr(loader_module, "scan", blind_scan)
    path, canary = attack(tmp_path)
    with pytest.raises(ModelBlocked, match="the restricted unpickler refused"):
        ModelLoader(mode="blocklist", policy=TOY_POLICY, telemetry=telemetry).load(path)
    assert not canary.exists()
    assert metrics.value("cadmetrics_model_opcode_scans_total", mode="blocklist", result="blocked") == 1
    assert metrics.value("cadmetrics_model_opcode_scans_total", result="allowed") == 0
    assert (
        metrics.value("cadmetrics_model_opcode_blocked_total", reason="dangerous_global", mode="blocklist")
        == 1
    )
    assert metrics.value("cadmetrics_model_load_refusals_total", reason="blocked") == 1


def test_restricted_refusals_carry_the_policys_reason() -> None:
    data = pickle.dumps(collections.UserDict(a=1), protocol=2)  # not on the default allowlist
    with pytest.raises(ModelBlocked) as caught:
        RestrictedUnpickler(io.BytesIO(data), Mode.ALLOWLIST, Policy()).load()
    assert caught.value.block_reason == "not_allowlisted"
