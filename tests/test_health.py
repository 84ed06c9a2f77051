"""Health: each component's status and why, gathered by cadmetrics.health() in the shape of
the IETF health check draft, with the status gauge set per component."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics import DriftMonitor, FeatureExtractor, ModelLoader, Telemetry, VectorStore, health
from cadmetrics.contract.model import Contract
from cadmetrics.drift import Baseline
from cadmetrics.features import FeatureCache, MemoryCache
from cadmetrics.features.redis_cache import RedisCache
from cadmetrics.telemetry.health import Check, Status
from cadmetrics.walkthrough import TRUSTED, LinearModel


class _Down:
    def get(self, key: str) -> bytes | None:
        raise ConnectionError("connection refused")


def _statuses(checks: list[Check]) -> dict[str, Status]:
    return {check.key: check.status for check in checks}


def test_the_feature_extractor_warns_while_its_shared_cache_is_down() -> None:
    assert _statuses(FeatureExtractor("v4").health()) == {"features:shared_cache": Status.PASS}
    cache = FeatureCache(l1=MemoryCache(), l2=RedisCache(client=_Down(), retry_after_seconds=60))
    extractor = FeatureExtractor("v4", cache=cache)
    assert extractor.health()[0].status is Status.PASS
    extractor.extract(_cube())
    [check] = extractor.health()
    assert check.status is Status.WARN and "back-off" in check.output


def _cube() -> bytes:
    from cadmetrics.walkthrough import _box_stl  # a closed box, as binary STL

    return _box_stl(1, 2, 3)


def test_the_model_loader_fails_without_a_model_and_warns_on_an_older_one(tmp_path: Path) -> None:
    loader = ModelLoader(policy=TRUSTED, snapshots_dir=tmp_path / "snapshots")
    assert _statuses(loader.health()) == {"models:serving": Status.FAIL, "models:snapshots": Status.WARN}
    for name, weights in (("one.pkl", np.ones(4)), ("two.pkl", np.arange(4.0))):
        (tmp_path / name).write_bytes(pickle.dumps(LinearModel(weights)))
        loader.load(tmp_path / name)
    assert _statuses(loader.health()) == {"models:serving": Status.PASS, "models:snapshots": Status.PASS}
    loader.rollback(1)
    serving = loader.health()[0]
    assert serving.status is Status.WARN and serving.observed_value == 1 and "rollback" in serving.output


def test_the_vector_store_warns_while_a_migration_is_pending_and_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cadmetrics.vectors import migration

    store = VectorStore.open(tmp_path / "store")
    store.add_columns([f"r{n}" for n in range(20)], np.random.default_rng(1).random((20, 49)), version="v4")
    assert _statuses(store.health()) == {"vectors:store": Status.PASS}
    calls: list[int] = []
    original = migration._write_checkpoint

    def crash_after_the_first(*args: Any) -> None:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("killed")
        original(*args)

    monkeypatch.setattr(migration, "_write_checkpoint", crash_after_the_first)
    with pytest.raises(RuntimeError):
        store.migrate(store.plan_migration("v3"), batch_size=5, progress=False)
    [pending] = store.health()
    assert pending.status is Status.WARN and "pending" in pending.output
    store.close()
    assert _statuses(store.health()) == {"vectors:store": Status.FAIL}


def test_the_drift_monitor_warns_when_its_baseline_is_stale() -> None:
    rows = np.random.default_rng(2).random((200, 49))
    now = [0.0]
    baseline = Baseline.from_vectors(rows, layout=FeatureExtractor("v4").layout, source="test")
    monitor = DriftMonitor(baseline, window=50, max_age=60, clock=lambda: baseline.created_at + now[0])
    assert monitor.health()[0].status is Status.PASS
    now[0] = 120
    [stale] = monitor.health()
    assert stale.status is Status.WARN and stale.observed_value == pytest.approx(120)


def test_the_report_follows_the_draft_and_sets_the_gauge(library_contract: Contract, tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    telemetry = Telemetry(library_contract, [registry])
    loader = ModelLoader(policy=TRUSTED)  # nothing serves yet: fail
    report = health(FeatureExtractor("v4"), loader, telemetry=telemetry, version="1.2.3", service_id="parts")
    assert report.status is Status.FAIL and report.http_status == 503
    body = json.loads(report.to_json())
    assert body["status"] == "fail" and body["version"] == "1.2.3" and body["serviceId"] == "parts"
    [serving] = body["checks"]["models:serving"]
    assert serving["status"] == "fail" and serving["componentType"] == "component"
    assert serving["output"] == "no model serves" and serving["time"].endswith("Z")
    assert body["checks"]["features:shared_cache"][0]["status"] == "pass"
    gauge = {
        sample.labels["component"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "cadmetrics_health_status"
    }
    assert gauge == {"features": 0.0, "models": 2.0}


def test_anything_without_health_is_refused() -> None:
    with pytest.raises(TypeError, match="has no health"):
        health(object())
