"""extract_many: input order, per-item errors, on threads and on processes."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from cadmetrics import Telemetry
from cadmetrics.errors import FeatureError, FeatureInputError
from cadmetrics.features.extractor import FeatureExtractor, FeatureVector
from cadmetrics.features.redis_cache import RedisCache
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
