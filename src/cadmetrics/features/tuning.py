"""Cache tuning: from the key stream the extractor saw, how big L1 should be, and the TTL.

An LRU cache of ``C`` entries hits a request exactly when fewer than ``C`` other distinct keys
were requested since the same key last was (its reuse, or stack, distance). The distances of
a stream therefore give its whole miss-ratio curve at once. Keeping every key of a busy
service is too much, so the stream is sampled by key as in SHARDS (Waldspurger et al.,
FAST 2015): a key is kept when a hash of it falls under a threshold, so all requests of a
kept key are kept, and distances measured among kept keys are scaled up by the sampling
rate. The threshold starts at "keep everything" and is lowered whenever more than
``max_keys`` distinct keys are kept (fixed-size SHARDS), which bounds memory whatever the
traffic. A sample of a skewed stream holds more or fewer requests than the rate predicts
(one hot key in or out of it); as in the paper's SHARDS_adj, the difference is counted as
hits at the smallest size, where a hot key's requests would fall.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

import attrs

_HASH_SPACE = 1 << 64
_MASK = _HASH_SPACE - 1

#: Fewer sampled requests than this, or no reuse at all, is not enough to recommend from.
MIN_REFERENCES = 50


@attrs.frozen
class CacheRecommendation:
    """What a target hit ratio needs, by the observed stream; ``None`` fields when there
    was not enough history (``enough_data`` is then False and ``reason`` says why)."""

    target_hit_ratio: float
    enough_data: bool
    reason: str = ""
    capacity_entries: int | None = None
    capacity_bytes: int | None = None
    ttl_seconds: float | None = None
    expected_hit_ratio: float | None = None  # what the stream would have hit at that size
    achievable: bool = True  # False when even an unbounded cache misses more than the target
    references: int = 0  # sampled requests the curve was measured on
    sampling_rate: float = 1.0
    curve: tuple[tuple[int, float], ...] = ()  # (capacity in entries, hit ratio)


class KeyHistory:
    """The sampled stream of keys requested, with when; bounded in keys and in requests."""

    def __init__(
        self, max_keys: int = 8192, max_references: int = 100_000, *, hasher: Callable[[str], int] = hash
    ) -> None:
        if max_keys < 1 or max_references < 1:
            raise ValueError("max_keys and max_references must be positive")
        self.max_keys = max_keys
        self._hasher = hasher  # any hash stable within the process; Python's own is the fastest
        self._threshold = _HASH_SPACE  # keep keys whose hash is below
        self._references: deque[tuple[int, float, int]] = deque(maxlen=max_references)
        self._kept: dict[int, None] = {}
        self._lock = threading.Lock()
        self.total = 0  # requests seen, sampled or not

    @property
    def sampling_rate(self) -> float:
        return self._threshold / _HASH_SPACE

    def record(self, key: str, now: float) -> None:
        """One request of ``key`` at ``now`` (seconds). On every request's path, so cheap:
        the sample needs a hash that is stable within the process, mixed here to be uniform."""
        spot = (self._hasher(key) * 0x9E3779B97F4A7C15) & _MASK
        with self._lock:  # recommend() and a lowered threshold walk the references
            self.total += 1
            if spot >= self._threshold:
                return
            self._references.append((spot, now, self.total))
            if spot not in self._kept:
                self._kept[spot] = None
                if len(self._kept) > self.max_keys:
                    self._lower_threshold()

    def _lower_threshold(self) -> None:
        """Drop the kept key with the largest hash, and keep only keys below it from now on."""
        highest = max(self._kept)
        del self._kept[highest]
        self._threshold = highest
        kept = [reference for reference in self._references if reference[0] < highest]
        self._references.clear()
        self._references.extend(kept)

    def recommend(self, target_hit_ratio: float, entry_bytes: int) -> CacheRecommendation:
        """The smallest LRU capacity whose hit ratio on the stream reaches the target."""
        if not 0 < target_hit_ratio < 1:
            raise ValueError(f"target_hit_ratio must be between 0 and 1, not {target_hit_ratio}")
        with self._lock:
            window = self.total - self._references[0][2] + 1 if self._references else 0
            references = [(spot, when) for spot, when, _ in self._references if spot < self._threshold]
            rate = self.sampling_rate
        if len(references) < MIN_REFERENCES:
            return CacheRecommendation(
                target_hit_ratio,
                False,
                f"{len(references)} sampled requests; at least {MIN_REFERENCES} are needed",
                references=len(references),
                sampling_rate=rate,
            )
        distances, reuse_times = _reuse(references)
        if not distances:
            return CacheRecommendation(
                target_hit_ratio,
                False,
                f"no key was requested twice in {len(references)} sampled requests",
                references=len(references),
                sampling_rate=rate,
            )
        scaled = sorted(
            (distance / rate, seconds) for distance, seconds in zip(distances, reuse_times, strict=True)
        )
        count = max(rate * window, 1.0)  # the sampled requests the rate predicts
        surplus = count - len(references)  # SHARDS_adj: hits at the smallest size
        needed = max(1, math.ceil(target_hit_ratio * count - surplus))
        achievable = needed <= len(scaled)
        last_hit = scaled[min(needed, len(scaled)) - 1]
        capacity = math.floor(last_hit[0]) + 1
        hits = [seconds for distance, seconds in scaled if distance < capacity]
        return CacheRecommendation(
            target_hit_ratio,
            True,
            capacity_entries=capacity,
            capacity_bytes=capacity * entry_bytes,
            ttl_seconds=max(1.0, math.ceil(max(hits))),
            expected_hit_ratio=_ratio(len(hits) + surplus, count),
            achievable=achievable,
            references=len(references),
            sampling_rate=rate,
            curve=_curve([distance for distance, _ in scaled], count, surplus),
        )


def _reuse(references: list[tuple[int, float]]) -> tuple[list[float], list[float]]:
    """Stack distance and time since the previous request, for every request of a key that
    was requested before. A Fenwick tree over positions marks each key's latest request, so
    the distinct keys since a key's previous request are the marks after it."""
    size = len(references)
    tree = [0] * (size + 1)

    def add(position: int, delta: int) -> None:
        position += 1
        while position <= size:
            tree[position] += delta
            position += position & -position

    def prefix(position: int) -> int:  # marks at positions < position
        total = 0
        while position > 0:
            total += tree[position]
            position -= position & -position
        return total

    latest: dict[int, tuple[int, float]] = {}
    distances: list[float] = []
    times: list[float] = []
    marks = 0
    for position, (spot, when) in enumerate(references):
        previous = latest.get(spot)
        if previous is not None:
            before, then = previous
            distances.append(float(marks - prefix(before + 1)))
            times.append(when - then)
            add(before, -1)
            marks -= 1
        add(position, 1)
        marks += 1
        latest[spot] = (position, when)
    return distances, times


def _ratio(hits: float, count: float) -> float:
    return min(1.0, max(0.0, hits / count))


def _curve(
    sorted_distances: list[float], count: float, surplus: float, points: int = 16
) -> tuple[tuple[int, float], ...]:
    """The hit ratio at a few capacities, from one entry to enough for every reuse."""
    largest = math.floor(sorted_distances[-1]) + 1
    capacities = sorted({max(1, round(largest ** (step / (points - 1)))) for step in range(points)})
    curve = []
    index = 0
    for capacity in capacities:
        while index < len(sorted_distances) and sorted_distances[index] < capacity:
            index += 1
        curve.append((capacity, _ratio(index + surplus, count)))
    return tuple(curve)
