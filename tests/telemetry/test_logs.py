"""Structured logs: silent by default, one record per operator event with its fields in
``extra`` (and the trace context when tracing), nothing per emission, scan or search, and a
JSON formatter."""

from __future__ import annotations

import importlib.util
import json
import logging
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics import Telemetry, VectorStore, scan
from cadmetrics.contract.model import Contract
from cadmetrics.features.redis_cache import RedisCache
from cadmetrics.telemetry.logs import json_formatter
from cadmetrics.walkthrough import LinearModel, walk
from tests.conftest import CAD_SAMPLES

EVENTS = {"model_blocked", "model_rollback", "migration_started", "migration_finished", "drift_anomaly",
          "shared_cache_lost"}  # fmt: skip


def _events(caplog: pytest.LogCaptureFixture) -> dict[str, logging.LogRecord]:
    return {record.event: record for record in caplog.records if hasattr(record, "event")}


def test_the_library_is_silent_unless_the_host_configures_logging(tmp_path: Path) -> None:
    code = (
        "import logging, pathlib, cadmetrics\n"
        "assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger('cadmetrics').handlers)\n"
        "from cadmetrics.walkthrough import walk\n"
        f"walk(cadmetrics.Telemetry(), pathlib.Path({str(tmp_path)!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no "No handlers could be found", no warnings printed


def test_each_operator_event_is_logged_once_with_its_fields(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="cadmetrics")
    samples = CAD_SAMPLES if CAD_SAMPLES.is_dir() else None
    walk(Telemetry(), tmp_path, samples)
    events = _events(caplog)
    redis = importlib.util.find_spec("redis") is not None  # the walk's shared cache needs it
    assert set(events) >= (EVENTS if redis else EVENTS - {"shared_cache_lost"})
    blocked = events["model_blocked"]
    assert blocked.levelno == logging.WARNING and blocked.name == "cadmetrics.models"
    assert blocked.reasons and blocked.mode == "allowlist" and str(blocked.source).endswith(".pkl")  # type: ignore[attr-defined]
    rollback = events["model_rollback"]
    assert rollback.reason in {"manual", "health_check_failed"} and rollback.level >= 1  # type: ignore[attr-defined]
    started, finished = events["migration_started"], events["migration_finished"]
    assert started.name == "cadmetrics.vectors" and started.records == finished.records > 0  # type: ignore[attr-defined]
    anomaly = events["drift_anomaly"]
    assert anomaly.name == "cadmetrics.drift" and "size" in anomaly.groups  # type: ignore[attr-defined]
    if not redis:
        return
    lost = events["shared_cache_lost"]
    assert lost.name == "cadmetrics.features" and "@" not in lost.address  # type: ignore[attr-defined]
    assert (
        sum(1 for r in caplog.records if getattr(r, "event", "") == "shared_cache_lost") == 1
    )  # once per outage


class _Flaky:
    """A Redis client that fails once, then answers."""

    def __init__(self) -> None:
        self.calls = 0

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("connection refused")
        return None


def test_the_shared_cache_coming_back_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cadmetrics")
    cache = RedisCache(client=_Flaky(), retry_after_seconds=0)
    with pytest.raises(ConnectionError):
        cache.get("k")
    assert cache.get("k") is None
    assert [r.event for r in caplog.records] == ["shared_cache_lost", "shared_cache_back"]  # type: ignore[attr-defined]


def test_records_carry_the_trace_context_when_tracing(
    caplog: pytest.LogCaptureFixture, library_contract: Contract, tmp_path: Path
) -> None:
    pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace import TracerProvider

    from cadmetrics import ModelLoader
    from cadmetrics.errors import ModelBlocked

    provider = TracerProvider()
    caplog.set_level(logging.INFO, logger="cadmetrics")
    telemetry = Telemetry(library_contract, tracer_provider=provider)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Payload()))
    search = {"version": "v4", "method": "exact", "k": 1, "queries": 1}
    with telemetry.span("cadmetrics.vectors.search", **search) as span, pytest.raises(ModelBlocked):
        ModelLoader(telemetry=telemetry).load(path)
    provider.shutdown()
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "model_blocked"]
    assert record.trace_id == span.trace_id and len(record.span_id) == 16  # type: ignore[attr-defined]


class _Payload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return (os.system, ("true",))


def test_nothing_is_logged_on_the_hot_paths(
    caplog: pytest.LogCaptureFixture, library_contract: Contract, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="cadmetrics")
    telemetry = Telemetry(library_contract)
    counter = telemetry.counter("cadmetrics_feature_extractions_total")
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps(LinearModel(np.ones(4))))
    store = VectorStore.open(None, telemetry=telemetry)
    store.add_columns([f"r{n}" for n in range(50)], np.random.default_rng(1).random((50, 49)), version="v4")
    for _ in range(100):
        counter.inc(version="v4", result="computed")
        scan(model.read_bytes())
        store.search(np.ones(49), k=3)
    assert caplog.records == []


def test_the_json_formatter_writes_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("pythonjsonlogger")
    caplog.set_level(logging.WARNING, logger="cadmetrics")
    cache = RedisCache(client=_Flaky(), retry_after_seconds=60)
    with pytest.raises(ConnectionError):
        cache.get("k")
    line = json_formatter().format(caplog.records[0])
    written = json.loads(line)
    assert written["event"] == "shared_cache_lost" and written["levelname"] == "WARNING"
    assert written["name"] == "cadmetrics.features" and "connection refused" in written["error"]
