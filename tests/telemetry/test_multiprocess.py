"""prometheus_client's multiprocess mode: several processes emit, one registry gathers them,
and the result still verifies against the contract."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.observed import from_registry
from cadmetrics.contract.verify import verify
from tests.conftest import ContractWriter

pytest.importorskip("prometheus_client")
from cadmetrics.telemetry.prometheus import multiprocess_registry

CHILD = textwrap.dedent(
    """
    import sys
    from cadmetrics import Telemetry, load_contract
    tel = Telemetry(load_contract(sys.argv[1], entry_points=False), ["prometheus"], strict=True)
    tel.counter("cadmetrics_model_opcode_blocked_total").inc(5, reason="malformed", mode="allowlist")
    tel.histogram("cadmetrics_model_load_duration_seconds").observe(0.02, mode="allowlist")
    tel.gauge("cadmetrics_model_rollback_level").set(int(sys.argv[2]))
    tel.gauge("myhost_workers").set(1)
    """
)


def test_processes_are_summed_and_verified(
    tmp_path: Path, write_contract: ContractWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = write_contract("- {name: myhost_workers, type: gauge, help: h, multiprocess_mode: all}")
    directory = tmp_path / "multiproc"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    for level in (1, 3, 2):
        subprocess.run([sys.executable, "-c", CHILD, str(host), str(level)], check=True)
    registry = multiprocess_registry()
    read = registry.get_sample_value
    assert read("cadmetrics_model_opcode_blocked_total", {"reason": "malformed", "mode": "allowlist"}) == 15
    assert read("cadmetrics_model_load_duration_seconds_count", {"mode": "allowlist"}) == 3
    assert read("cadmetrics_model_rollback_level") == 3  # declared multiprocess_mode: max
    workers = [s for f in registry.collect() if f.name == "myhost_workers" for s in f.samples]
    assert len(workers) == 3 and all("pid" in s.labels for s in workers)  # mode all: one per pid
    report = verify(from_registry(registry), load_contract(host, entry_points=False))
    assert report.ok, report.render()


def test_multiprocess_registry_needs_the_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from cadmetrics.errors import TelemetryError

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(TelemetryError, match="PROMETHEUS_MULTIPROC_DIR"):
        multiprocess_registry()
