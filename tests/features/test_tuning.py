"""Cache tuning: the miss-ratio curve from sampled reuse distances, checked against an LRU
that really runs on the same stream."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from cadmetrics import Telemetry
from cadmetrics.features.cache import ENTRY_OVERHEAD_BYTES, CachedVector, MemoryCache
from cadmetrics.features.extractor import FeatureExtractor
from cadmetrics.features.tuning import KeyHistory
from tests.features.shapes import box, cylinder, sphere, torus


def lru_hit_ratio(keys: list[str], capacity: int) -> float:
    """What an LRU of ``capacity`` entries really hits on ``keys``: our own L1, run."""
    cache = MemoryCache(max_entries=capacity, max_bytes=1 << 40)
    entry = CachedVector(np.zeros(1), "mesh")
    hits = 0
    for key in keys:
        if cache.get(key) is not None:
            hits += 1
        else:
            cache.put(key, entry)
    return hits / len(keys)


def stable_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def zipf_stream(count: int, keys: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ranks = rng.zipf(1.2, size=count * 2)
    return [f"key-{rank}" for rank in ranks[ranks <= keys][:count]]


@pytest.mark.parametrize("target", [0.5, 0.7, 0.8])
def test_the_recommended_capacity_reaches_the_target_and_one_less_does_not(target: float) -> None:
    stream = zipf_stream(20_000, 3000, seed=1)
    history = KeyHistory(max_keys=100_000)
    for second, key in enumerate(stream):
        history.record(key, float(second))
    recommendation = history.recommend(target, entry_bytes=100)
    assert recommendation.enough_data and recommendation.sampling_rate == 1.0
    capacity = recommendation.capacity_entries
    assert capacity is not None
    assert recommendation.capacity_bytes == capacity * 100
    assert lru_hit_ratio(stream, capacity) >= target
    assert lru_hit_ratio(stream, capacity - 1) < target
    assert recommendation.expected_hit_ratio == pytest.approx(lru_hit_ratio(stream, capacity))


def test_sampling_keeps_the_curve_close_to_the_exact_one() -> None:
    stream = zipf_stream(60_000, 20_000, seed=2)
    exact = KeyHistory(max_keys=1_000_000, max_references=1_000_000)
    sampled = KeyHistory(max_keys=4000, hasher=stable_hash)  # the same sample on every run
    for second, key in enumerate(stream):
        exact.record(key, float(second))
        sampled.record(key, float(second))
    assert sampled.sampling_rate < 0.8  # the fixed-size sample lowered its threshold
    for target in (0.5, 0.6):
        precise = exact.recommend(target, 1).capacity_entries
        estimate = sampled.recommend(target, 1).capacity_entries
        assert precise is not None and estimate is not None
        assert lru_hit_ratio(stream, estimate) == pytest.approx(target, abs=0.05)
        assert lru_hit_ratio(stream, estimate) == pytest.approx(lru_hit_ratio(stream, precise), abs=0.05)


def test_an_unreachable_target_says_so() -> None:
    history = KeyHistory()
    stream = [f"k{i % 40}" for i in range(60)] + [f"once-{i}" for i in range(60)]
    for second, key in enumerate(stream):
        history.record(key, float(second))
    recommendation = history.recommend(0.9, 1)
    assert not recommendation.achievable
    assert recommendation.capacity_entries == 40  # all reuses fit; the rest are first requests
    assert recommendation.expected_hit_ratio == pytest.approx(20 / 120)


def test_the_ttl_covers_the_reuse_times_of_the_hits() -> None:
    history = KeyHistory()
    for minute in range(100):  # each of 5 keys comes back every 5 minutes
        history.record(f"k{minute % 5}", minute * 60.0)
    recommendation = history.recommend(0.9, 1)
    assert recommendation.capacity_entries == 5
    assert recommendation.ttl_seconds == 300.0


def test_too_little_history_is_not_a_recommendation() -> None:
    history = KeyHistory()
    for second in range(10):
        history.record("k", float(second))
    assert not history.recommend(0.9, 1).enough_data
    fresh = KeyHistory()
    for second in range(100):
        fresh.record(f"k{second}", float(second))
    refused = fresh.recommend(0.9, 1)
    assert not refused.enough_data and "no key was requested twice" in refused.reason
    with pytest.raises(ValueError, match="between 0 and 1"):
        fresh.recommend(1.5, 1)


def test_the_extractor_recommends_from_its_own_requests(telemetry: Telemetry, metrics: Any) -> None:
    extractor = FeatureExtractor("v2", telemetry=telemetry)
    assert not extractor.cache_tuning(0.9).enough_data
    parts = [box(), cylinder(), sphere(1), torus(rings=12, sides=6)]
    order = [0, 1, 0, 2, 0, 1, 3, 0, 1, 2] * 8
    for index in order:
        extractor.extract(parts[index])
    recommendation = extractor.cache_tuning(0.9)
    assert recommendation.enough_data and recommendation.capacity_entries == 4
    assert recommendation.capacity_bytes == 4 * (14 * 8 + ENTRY_OVERHEAD_BYTES)
    assert metrics.value("cadmetrics_feature_cache_tuning_requests_total", result="insufficient_data") == 1
    assert metrics.value("cadmetrics_feature_cache_tuning_requests_total", result="recommended") == 1
    assert metrics.value("cadmetrics_feature_cache_recommended_capacity_entries") == 4
    assert metrics.value("cadmetrics_feature_cache_recommended_capacity_bytes") == 4 * (
        14 * 8 + ENTRY_OVERHEAD_BYTES
    )
    assert metrics.value("cadmetrics_feature_cache_recommended_ttl_seconds") >= 1
    assert metrics.value("cadmetrics_feature_cache_target_hit_ratio") == 0.9


def test_recording_from_many_threads_while_recommending_never_fails() -> None:
    import threading

    history = KeyHistory(max_keys=50)
    failures: list[BaseException] = []

    def record(offset: int) -> None:
        try:
            for index in range(20_000):
                history.record(f"k{(index * 7 + offset) % 400}", float(index))
        except BaseException as error:  # pragma: no cover - what the test looks for
            failures.append(error)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        history.recommend(0.5, 1)
    for thread in threads:
        thread.join()
    assert failures == [] and history.total == 80_000
