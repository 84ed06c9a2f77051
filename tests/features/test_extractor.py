"""FeatureExtractor: cache levels in order, failures of a shared level absorbed, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics import Telemetry
from cadmetrics.errors import FeatureError, FeatureInputError
from cadmetrics.features.cache import CachedVector, FeatureCache, MemoryCache
from cadmetrics.features.extractor import FeatureExtractor
from cadmetrics.features.formats import read_mesh
from cadmetrics.features.vector import FeatureConfig
from tests.features.shapes import box, cylinder, sphere


class DictLevel:
    """A shared level kept in a dict: the protocol's contract, without a server."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: bytes) -> None:
        self.data[key] = value


class BrokenLevel:
    def get(self, key: str) -> bytes | None:
        raise ConnectionError("connection refused")

    def set(self, key: str, value: bytes) -> None:
        raise TimeoutError("timed out")


def test_a_request_is_computed_once_then_served_from_l1(telemetry: Telemetry, metrics: Any) -> None:
    extractor = FeatureExtractor("v4", telemetry=telemetry)
    first = extractor.extract(cylinder())
    second = extractor.extract(cylinder())
    assert not first.cached and second.cached
    assert np.array_equal(first.values, second.values)
    assert first.sha256 == second.sha256 and first.format == "mesh"
    assert metrics.value("cadmetrics_feature_extractions_total", version="v4", result="computed") == 1
    assert metrics.value("cadmetrics_feature_extractions_total", version="v4", result="cached") == 1
    assert metrics.value("cadmetrics_feature_cache_hits_total", level="l1") == 1
    assert metrics.value("cadmetrics_feature_cache_misses_total", level="l1") == 1
    assert metrics.value("cadmetrics_feature_cache_entries", level="l1") == 1
    assert (
        metrics.value("cadmetrics_feature_extraction_duration_seconds_count", version="v4", format="mesh")
        == 1
    )
    assert metrics.value("cadmetrics_feature_surface_count_count", version="v4") == 1
    assert metrics.value("cadmetrics_feature_surface_count_sum", version="v4") == 3
    assert metrics.value("cadmetrics_feature_shape_entropy_count", distribution="d2") == 1
    assert metrics.value("cadmetrics_feature_shape_entropy_count", distribution="patch_area") == 1


def test_keys_include_the_version_and_the_settings() -> None:
    shared = DictLevel()
    for version in ("v1", "v4"):
        FeatureExtractor(version, cache=FeatureCache(l1=None, l2=shared)).extract(box())
    FeatureExtractor(
        "v4", config=FeatureConfig(patch_angle_degrees=5.0), cache=FeatureCache(l2=shared)
    ).extract(box())
    assert len(shared.data) == 3


def test_l2_answers_fill_l1(telemetry: Telemetry, metrics: Any) -> None:
    shared = DictLevel()
    FeatureExtractor("v2", cache=FeatureCache(l2=shared)).extract(sphere(1))  # another process, say
    extractor = FeatureExtractor("v2", cache=FeatureCache(l2=shared), telemetry=telemetry)
    assert extractor.extract(sphere(1)).cached
    assert extractor.extract(sphere(1)).cached
    assert metrics.value("cadmetrics_feature_cache_hits_total", level="l2") == 1
    assert metrics.value("cadmetrics_feature_cache_hits_total", level="l1") == 1
    assert metrics.value("cadmetrics_feature_extractions_total", result="computed") == 0


def test_a_failing_shared_level_is_counted_and_never_raised(telemetry: Telemetry, metrics: Any) -> None:
    extractor = FeatureExtractor("v3", cache=FeatureCache(l2=BrokenLevel()), telemetry=telemetry)
    vector = extractor.extract(box())
    assert not vector.cached and vector.values.shape == (46,)
    assert metrics.value("cadmetrics_feature_cache_errors_total", level="l2", operation="get") == 1
    assert metrics.value("cadmetrics_feature_cache_errors_total", level="l2", operation="set") == 1
    assert metrics.value("cadmetrics_feature_cache_misses_total", level="l2") == 1
    assert extractor.extract(box()).cached  # L1 still serves


def test_a_foreign_or_damaged_shared_entry_is_a_miss_not_a_wrong_vector() -> None:
    shared = DictLevel()
    extractor = FeatureExtractor("v1", cache=FeatureCache(l1=None, l2=shared))
    original = extractor.extract(box())
    (key,) = shared.data
    shared.data[key] = shared.data[key][:-8]
    again = extractor.extract(box())
    assert not again.cached and np.array_equal(again.values, original.values)
    assert CachedVector.from_bytes(b"junk", lambda fmt: 7) is None


def test_errors_are_counted_by_format_and_reason(telemetry: Telemetry, metrics: Any) -> None:
    extractor = FeatureExtractor("v1", telemetry=telemetry, max_bytes=100)
    with pytest.raises(FeatureInputError, match="over the extractor's limit of 100") as caught:
        extractor.extract(b"x" * 101)
    assert caught.value.reason == "too_large"
    assert (
        metrics.value("cadmetrics_feature_extraction_errors_total", format="unknown", reason="too_large") == 1
    )
    assert metrics.value("cadmetrics_feature_extractions_total", version="v1", result="error") == 1


def test_an_unknown_version_fails_when_the_extractor_is_built() -> None:
    with pytest.raises(FeatureError, match="unknown feature version 'v0'"):
        FeatureExtractor("v0")


def test_the_memory_cache_is_bounded_by_entries_and_bytes() -> None:
    values = np.zeros(10)
    entry = CachedVector(values, "mesh")
    by_entries = MemoryCache(max_entries=2)
    for key in "abc":
        by_entries.put(key, entry)
    assert len(by_entries) == 2 and by_entries.get("a") is None
    by_entries.get("b")  # b is now the most recent: c leaves first
    by_entries.put("d", entry)
    assert by_entries.get("b") is not None and by_entries.get("c") is None
    by_bytes = MemoryCache(max_bytes=entry.nbytes * 3)
    for key in "abcdef":
        by_bytes.put(key, entry)
    assert len(by_bytes) == 3 and by_bytes.nbytes == 3 * entry.nbytes
    by_bytes.put("huge", CachedVector(np.zeros(10_000), "mesh"))  # larger than the whole cache
    assert by_bytes.get("huge") is None and len(by_bytes) == 3
    with pytest.raises(ValueError, match="cache bounds must be positive"):
        MemoryCache(max_entries=0)


def test_a_disabled_cache_computes_every_time() -> None:
    extractor = FeatureExtractor("v1", cache=FeatureCache.disabled())
    assert not extractor.extract(box()).cached
    assert not extractor.extract(box()).cached


def test_vectors_name_their_values() -> None:
    vector = FeatureExtractor("v1").extract(box(1.0, 2.0, 3.0))
    assert vector.as_dict()["volume"] == 6.0
    data = vector.to_json_dict()
    assert set(data) == {
        "path",
        "version",
        "format",
        "family",
        "sha256",
        "unit",
        "quality",
        "names",
        "vector",
    }
    assert data["names"][0] == "vertex_count" and data["vector"][0] == 8.0


def test_a_vector_can_be_found_by_its_content_hash_alone() -> None:
    extractor = FeatureExtractor("v1")
    assert extractor.cached("0" * 64) is None
    computed = extractor.extract(box())
    found = extractor.cached(computed.sha256, source="stored/box.stl")
    assert found is not None and found.cached and found.source == "stored/box.stl"
    assert np.array_equal(found.values, computed.values)


def test_parts_at_the_edge_of_float_range_give_features_or_a_clear_error(cad_samples: Path) -> None:
    """A float32 STL scaled to 3e38 is bad input at worst, never a library error: its moments
    (1e192) once overflowed the eigenvalue iteration's squares (reason "internal")."""
    from cadmetrics.features.mesh import MAX_COORDINATE, Mesh

    mesh = read_mesh((cad_samples / "stl" / "featuretype.STL").read_bytes(), source="featuretype")
    huge = Mesh.from_arrays(mesh.vertices / np.abs(mesh.vertices).max() * 3e38, mesh.faces)
    values = FeatureExtractor("v4").extract(huge).as_dict()
    assert np.isfinite(list(values.values())).all()
    normal = FeatureExtractor("v4").extract(mesh).as_dict()
    assert values["inertia_ratio_minor"] == pytest.approx(normal["inertia_ratio_minor"], rel=1e-9)
    with pytest.raises(FeatureInputError, match="beyond the 1e\\+60") as caught:
        Mesh.from_arrays(
            mesh.vertices / np.abs(mesh.vertices).max() * 2 * MAX_COORDINATE, mesh.faces, source="far"
        )
    assert caught.value.reason == "too_large" and str(caught.value).startswith("far: vertex ")
