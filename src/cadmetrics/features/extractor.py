"""``FeatureExtractor``: a CAD file (or a mesh) in, its versioned feature vector out, cached.

A request is answered by the first of: the in-process cache (L1), the shared cache (L2),
computing. Computed vectors fill both levels, an L2 answer fills L1. A shared level that fails
is counted and skipped; the caller never sees its exception.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import attrs

from cadmetrics.errors import FeatureError, FeatureInputError
from cadmetrics.features.cache import ENTRY_OVERHEAD_BYTES, CachedVector, FeatureCache, MemoryCache
from cadmetrics.features.layout import FeatureLayout, layout_for
from cadmetrics.features.mesh import FloatArray, Mesh
from cadmetrics.features.tuning import CacheRecommendation, KeyHistory
from cadmetrics.features.vector import ComputedFeatures, FeatureConfig, drawing_features, mesh_features
from cadmetrics.telemetry.facade import Telemetry

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | Mesh

#: Default bound on a file's size: larger parts must be allowed explicitly.
DEFAULT_MAX_BYTES = 1024**3


@attrs.frozen(eq=False)
class FeatureVector:
    """A feature vector and where it came from."""

    version: str
    names: tuple[str, ...]
    values: FloatArray
    sha256: str  # of the content: the file's bytes, or a mesh's arrays
    source: str
    format: str
    cached: bool = False  # answered from a cache level rather than computed

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in zip(self.names, self.values, strict=True)}

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "path": self.source,
            "version": self.version,
            "sha256": self.sha256,
            "names": list(self.names),
            "vector": [float(value) for value in self.values],
        }


class FeatureExtractor:
    """Versioned, deterministic feature vectors from CAD files, cached on two levels.

    ``version`` is v1 to v4 (see :mod:`cadmetrics.features.layout`); ``config`` holds the
    settings that change values; ``cache`` the levels to use (default: an in-process LRU;
    ``FeatureCache.disabled()`` for none); ``max_bytes`` bounds the files read.
    """

    def __init__(
        self,
        version: str = "v4",
        *,
        config: FeatureConfig | None = None,
        cache: FeatureCache | None = None,
        telemetry: Telemetry | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.layout: FeatureLayout = layout_for(version)
        self.drawing_layout: FeatureLayout = layout_for(version, drawing=True)
        self.config = config if config is not None else FeatureConfig()
        self.cache = cache if cache is not None else FeatureCache()
        self.max_bytes = max_bytes
        tel = telemetry if telemetry is not None else Telemetry()
        self._requests = tel.counter("cadmetrics_feature_extractions_total")
        self._duration = tel.histogram("cadmetrics_feature_extraction_duration_seconds")
        self._errors = tel.counter("cadmetrics_feature_extraction_errors_total")
        self._hits = tel.counter("cadmetrics_feature_cache_hits_total")
        self._misses = tel.counter("cadmetrics_feature_cache_misses_total")
        self._cache_errors = tel.counter("cadmetrics_feature_cache_errors_total")
        self._entries = tel.gauge("cadmetrics_feature_cache_entries")
        self._surface_count = tel.histogram("cadmetrics_feature_surface_count")
        self._entropy = tel.histogram("cadmetrics_feature_shape_entropy")
        self._tuning_requests = tel.counter("cadmetrics_feature_cache_tuning_requests_total")
        self._recommended_entries = tel.gauge("cadmetrics_feature_cache_recommended_capacity_entries")
        self._recommended_bytes = tel.gauge("cadmetrics_feature_cache_recommended_capacity_bytes")
        self._recommended_ttl = tel.gauge("cadmetrics_feature_cache_recommended_ttl_seconds")
        self._target_hit_ratio = tel.gauge("cadmetrics_feature_cache_target_hit_ratio")
        self._key_suffix = f":{self.layout.version}:{self.config.key}"
        self.history = KeyHistory()

    @property
    def version(self) -> str:
        return self.layout.version

    def extract(self, source: Source) -> FeatureVector:
        """The feature vector of ``source``: a path, the file's bytes, or a :class:`Mesh`.

        Raises :class:`~cadmetrics.errors.FeatureInputError` for input that gives no
        features (its ``reason`` says why), :class:`~cadmetrics.errors.MissingDependency`
        when a format needs an extra that is not installed.
        """
        try:
            content, shown, digest = self._content(source)
            key = digest + self._key_suffix
            self._observe(key)
            found = self._lookup(key)
            if found is not None:
                self._requests.inc(version=self.version, result="cached")
                return self._vector(found, digest, shown, cached=True)
            started = time.perf_counter()
            computed = self._compute(content, shown)
            self._duration.observe(
                time.perf_counter() - started, version=self.version, format=computed.format
            )
        except FeatureError as error:
            self._requests.inc(version=self.version, result="error")
            self._errors.inc(format=error.format, reason=error.reason)
            raise
        self._requests.inc(version=self.version, result="computed")
        self._store(key, computed)
        return self._vector(computed, digest, shown, cached=False)

    def cached(self, sha256: str, source: str = "<cached>") -> FeatureVector | None:
        """The vector of the content whose sha256 is ``sha256``, when a cache level holds it;
        never computes. For hosts that keep files by content hash and know it already."""
        key = sha256 + self._key_suffix
        self._observe(key)
        found = self._lookup(key)
        if found is None:
            return None
        self._requests.inc(version=self.version, result="cached")
        return self._vector(found, sha256, source, cached=True)

    def extract_many(
        self, sources: Iterable[Source], executor: Executor | None = None, *, progress: bool | None = None
    ) -> list[FeatureVector | FeatureError]:
        """Every source's vector, in input order, with an item's error in its place instead
        of one failure ending the batch. ``executor`` is any ``concurrent.futures``
        executor (threads share this extractor; processes and distributed executors each
        build their own from its settings); ``progress`` shows a tqdm bar (default: when
        standard error is a terminal)."""
        from cadmetrics.features.batch import extract_many

        return extract_many(self, sources, executor, progress=progress)

    def cache_tuning(self, target_hit_ratio: float = 0.9) -> CacheRecommendation:
        """The L1 capacity (entries and bytes) and TTL that would have reached
        ``target_hit_ratio`` on the requests seen so far; sets the recommendation gauges.
        Without enough history the recommendation says so (``enough_data`` False)."""
        entry_bytes = self.layout.dimension * 8 + ENTRY_OVERHEAD_BYTES
        recommendation = self.history.recommend(target_hit_ratio, entry_bytes)
        self._target_hit_ratio.set(target_hit_ratio)
        if not recommendation.enough_data:
            self._tuning_requests.inc(result="insufficient_data")
            return recommendation
        self._tuning_requests.inc(result="recommended")
        self._recommended_entries.set(recommendation.capacity_entries or 0)
        self._recommended_bytes.set(recommendation.capacity_bytes or 0)
        self._recommended_ttl.set(recommendation.ttl_seconds or 0.0)
        return recommendation

    # -- the steps --------------------------------------------------------------------------

    def _observe(self, key: str) -> None:
        """The key, for cache tuning; tuning must never cost a request its answer."""
        with contextlib.suppress(Exception):
            self.history.record(key, time.monotonic())

    def observe_requests(self, sha256s: Iterable[str]) -> None:
        """Requests answered elsewhere (by worker processes) added to this extractor's key
        history, so that cache tuning sees them too."""
        for sha256 in sha256s:
            self._observe(sha256 + self._key_suffix)

    def _content(self, source: Source) -> tuple[bytes | Mesh, str, str]:
        """The content to compute from, how to name it, and its sha256."""
        if isinstance(source, Mesh):
            digest = hashlib.sha256()
            for array in (source.vertices.astype("<f8"), source.faces.astype("<i8")):  # any byte order
                digest.update(str(array.shape).encode())
                digest.update(array.tobytes())
            return source, source.source, "mesh-" + digest.hexdigest()
        if isinstance(source, bytes | bytearray | memoryview):
            self._check_size(memoryview(source).nbytes, "<bytes>")  # before any copy
            data = bytes(source)
            return data, "<bytes>", hashlib.sha256(data).hexdigest()
        path = Path(source)
        try:
            self._check_size(path.stat().st_size, str(path))
            with path.open("rb") as file:
                data = file.read(self.max_bytes + 1)
        except OSError as exc:
            raise FeatureInputError(
                f"{path}: cannot read: {exc.strerror or exc}", reason="malformed"
            ) from None
        self._check_size(len(data), str(path))
        return data, str(path), hashlib.sha256(data).hexdigest()

    def _check_size(self, size: int, shown: str) -> None:
        if size > self.max_bytes:
            raise FeatureInputError(
                f"{shown}: {size} bytes is over the extractor's limit of {self.max_bytes} (max_bytes)",
                reason="too_large",
            )

    def _lookup(self, key: str) -> CachedVector | None:
        l1, l2 = self.cache.l1, self.cache.l2
        if l1 is not None:
            found = l1.get(key)
            if found is not None:
                self._hits.inc(level="l1")
                return found
            self._misses.inc(level="l1")
        if l2 is None:
            return None
        try:
            data = l2.get(key)
        except Exception:  # a shared level may fail in any way; extraction goes on without it
            self._cache_errors.inc(level="l2", operation="get")
            data = None
        shared = CachedVector.from_bytes(data, self._dimension_of) if data is not None else None
        if shared is None:
            self._misses.inc(level="l2")
            return None
        self._hits.inc(level="l2")
        if l1 is not None:
            l1.put(key, shared)
            self._entries.set(MemoryCache.entries_in_process(), level="l1")
        return shared

    def _store(self, key: str, computed: CachedVector) -> None:
        l1, l2 = self.cache.l1, self.cache.l2
        if l1 is not None:
            l1.put(key, computed)
            self._entries.set(MemoryCache.entries_in_process(), level="l1")
        if l2 is not None:
            try:
                l2.set(key, computed.to_bytes())
            except Exception:  # as in _lookup: counted, never the caller's problem
                self._cache_errors.inc(level="l2", operation="set")

    def _compute(self, content: bytes | Mesh, shown: str) -> CachedVector:
        if isinstance(content, Mesh):
            fmt = content.format
            features = self._guarded(lambda: mesh_features(content, self.layout, self.config), shown, fmt)
        else:
            from cadmetrics.features.formats import read_mesh, sniff

            fmt = sniff(content, source=shown)
            if fmt == "dxf":
                from cadmetrics.features.drawing import read_drawing

                drawing = read_drawing(content, source=shown)
                features = self._guarded(
                    lambda: drawing_features(drawing, self.drawing_layout, self.config), shown, fmt
                )
            else:
                mesh = read_mesh(content, source=shown)
                features = self._guarded(lambda: mesh_features(mesh, self.layout, self.config), shown, fmt)
        if features.surface_count is not None:
            self._surface_count.observe(features.surface_count, version="v4")
        if features.entropy_d2 is not None:
            self._entropy.observe(features.entropy_d2, distribution="d2")
        if features.entropy_patch_area is not None:
            self._entropy.observe(features.entropy_patch_area, distribution="patch_area")
        return CachedVector(features.values, fmt)

    def _guarded(self, compute: Callable[[], ComputedFeatures], shown: str, fmt: str) -> ComputedFeatures:
        """``compute()``, a numeric failure inside it turned into a FeatureError that says where."""
        try:
            return compute()
        except FeatureError:
            raise
        except (ValueError, ArithmeticError, MemoryError) as exc:
            raise FeatureError(
                f"{shown}: computing {self.version} features failed: {type(exc).__name__}: {exc}",
                format=fmt,
            ) from exc

    def _layout_of(self, fmt: str) -> FeatureLayout:
        return self.drawing_layout if fmt == "dxf" else self.layout

    def _dimension_of(self, fmt: str) -> int:
        return self._layout_of(fmt).dimension

    def _vector(self, entry: CachedVector, digest: str, shown: str, *, cached: bool) -> FeatureVector:
        return FeatureVector(
            self.version,
            self._layout_of(entry.format).names,
            entry.values,
            digest,
            shown,
            entry.format,
            cached,
        )
