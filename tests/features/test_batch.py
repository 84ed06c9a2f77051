"""extract_many: input order, per-item errors, on threads and on processes."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics import Telemetry
from cadmetrics.errors import FeatureError, FeatureInputError
from cadmetrics.features.extractor import FeatureExtractor, FeatureVector
from cadmetrics.features.redis_cache import RedisCache
from tests.conftest import REPOSITORY
from tests.features.shapes import box, cylinder, sphere

SOURCES: list[Any] = [box(), b"x" * 2000, cylinder(), sphere(1), box()]


def _check(results: list[FeatureVector | FeatureError]) -> None:
    assert len(results) == len(SOURCES)
    assert isinstance(results[1], FeatureInputError) and results[1].reason == "too_large"
    vectors = [r for r in results if isinstance(r, FeatureVector)]
    assert [v.source for v in vectors] == ["box", "cylinder", "sphere", "box"]
    reference = FeatureExtractor("v2").extract(cylinder()).values
    assert np.array_equal(vectors[1].values, reference)


def test_in_order_with_errors_in_place(telemetry: Telemetry, metrics: Any) -> None:
    extractor = FeatureExtractor("v2", max_bytes=1000, telemetry=telemetry)
    _check(extractor.extract_many(SOURCES, progress=False))
    assert metrics.value("cadmetrics_feature_extractions_total", result="cached") == 1  # the second box


def test_on_threads_sharing_the_extractor(telemetry: Telemetry, metrics: Any) -> None:
    extractor = FeatureExtractor("v2", max_bytes=1000, telemetry=telemetry)
    with ThreadPoolExecutor(max_workers=2) as pool:
        _check(extractor.extract_many(SOURCES, pool, progress=False))
    assert metrics.value("cadmetrics_feature_extractions_total", result="error") == 1


def test_on_processes() -> None:
    extractor = FeatureExtractor("v2", max_bytes=1000)
    with ProcessPoolExecutor(max_workers=2) as pool:
        _check(extractor.extract_many(SOURCES, pool, progress=False))


def test_a_redis_level_travels_as_its_settings() -> None:
    pytest.importorskip("redis")
    level = RedisCache("redis://127.0.0.1:1/0", ttl_seconds=5)
    copy = pickle.loads(pickle.dumps(level))
    assert copy == level and hash(copy) == hash(level) and copy is not level
    with pytest.raises(TypeError, match="cannot be sent to another process"):
        pickle.dumps(RedisCache(client=object()))


def test_a_progress_bar_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    FeatureExtractor("v1").extract_many([box(), cylinder()], progress=True)
    assert "2/2" in capsys.readouterr().err


def test_on_a_dask_distributed_cluster() -> None:
    distributed = pytest.importorskip("distributed")
    extractor = FeatureExtractor("v2", max_bytes=1000)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        _check(extractor.extract_many(SOURCES, client.get_executor(), progress=False))


def test_worker_processes_are_counted_through_multiprocess_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers started afresh (spawn) read PROMETHEUS_MULTIPROC_DIR and write their samples
    there; the host's multiprocess registry adds them up, and they verify against the contract."""
    pytest.importorskip("prometheus_client")
    from cadmetrics.contract.compose import load_contract
    from cadmetrics.contract.observed import from_registry
    from cadmetrics.contract.verify import verify
    from cadmetrics.telemetry.prometheus import multiprocess_registry

    directory = tmp_path / "multiproc"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    extractor = FeatureExtractor("v2", max_bytes=1000)
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        _check(extractor.extract_many(SOURCES, pool, progress=False))
    registry = multiprocess_registry()
    read = registry.get_sample_value
    computed = read("cadmetrics_feature_extractions_total", {"version": "v2", "result": "computed"}) or 0
    cached = read("cadmetrics_feature_extractions_total", {"version": "v2", "result": "cached"}) or 0
    assert computed + cached == 4  # the four meshes; the second box may be served by a worker's L1
    assert read("cadmetrics_feature_extractions_total", {"version": "v2", "result": "error"}) == 1
    assert (
        read("cadmetrics_feature_extraction_errors_total", {"format": "unknown", "reason": "too_large"}) == 1
    )
    report = verify(from_registry(registry), load_contract())
    assert report.ok, report.render()


FORKING_HOST = """
import multiprocessing, sys
from concurrent.futures import ProcessPoolExecutor
from prometheus_client import CollectorRegistry
from cadmetrics import Telemetry
from cadmetrics.features.extractor import FeatureExtractor
from cadmetrics.telemetry.prometheus import multiprocess_registry
from tests.features.shapes import box, cylinder, sphere

if __name__ == "__main__":
    host = Telemetry(backends=["prometheus"])  # the host's own instruments, in the default registry
    extractor = FeatureExtractor("v2", telemetry=host)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        results = extractor.extract_many([box(), cylinder(), sphere(1)], pool, progress=False)
    assert all(not isinstance(result, Exception) for result in results), results
    read = multiprocess_registry().get_sample_value
    print(read("cadmetrics_feature_extractions_total", {"version": "v2", "result": "computed"}))
"""


def test_forked_workers_of_a_host_with_its_own_prometheus_metrics(tmp_path: Path) -> None:
    """A forked worker inherits the host's default registry, where the host's instruments
    already are: its own Telemetry must neither collide with them nor fall silent. (A child
    process: multiprocess mode is chosen when prometheus_client is first imported.)"""
    pytest.importorskip("prometheus_client")
    directory = tmp_path / "multiproc"
    directory.mkdir()
    script = tmp_path / "host.py"
    script.write_text(FORKING_HOST)
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(REPOSITORY)}
    child = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        cwd=REPOSITORY,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "3.0"


def test_requests_run_by_workers_reach_the_hosts_key_history() -> None:
    extractor = FeatureExtractor("v2", max_bytes=1000)
    with ProcessPoolExecutor(max_workers=2) as pool:
        extractor.extract_many(SOURCES * 15, pool, progress=False)
    recommendation = extractor.cache_tuning(0.5)
    assert recommendation.enough_data and recommendation.references == 60
