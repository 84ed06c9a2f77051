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
import numpy as np

from cadmetrics.errors import FeatureError, FeatureInputError
from cadmetrics.features.batch import extract_many
from cadmetrics.features.brep import BREP_FORMATS
from cadmetrics.features.cache import ENTRY_OVERHEAD_BYTES, CachedVector, FeatureCache, MemoryCache
from cadmetrics.features.layout import FeatureLayout, layout_for
from cadmetrics.features.mesh import FloatArray, Mesh
from cadmetrics.features.tuning import CacheRecommendation, KeyHistory
from cadmetrics.features.units import canonical_unit, convert_sizes, millimetres_per
from cadmetrics.features.vector import (
    ComputedFeatures,
    FeatureConfig,
    brep_features,
    drawing_features,
    mesh_features,
    rounded,
)
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.health import Check, Status

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | Mesh

#: Default bound on a file's size: larger parts must be allowed explicitly.
DEFAULT_MAX_BYTES = 1024**3


@attrs.frozen(eq=False)
class FeatureVector:
    """A feature vector and where it came from.

    ``unit`` is the length unit of the size features (None when the file declares none, as
    STL, OBJ and PLY do); ``quality`` names what was degraded about the input (empty when
    nothing was: see :data:`~cadmetrics.features.vector.QUALITY_FLAGS`). ``numpy.asarray``
    of a vector gives its values.
    """

    version: str
    names: tuple[str, ...]
    values: FloatArray
    sha256: str  # of the content: the file's bytes, or a mesh's arrays
    source: str
    format: str
    cached: bool = False  # answered from a cache level rather than computed
    unit: str | None = None
    quality: tuple[str, ...] = ()
    family: str = "mesh"  # the layout family: mesh, drawing or brep

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in zip(self.names, self.values, strict=True)}

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> FloatArray:
        """The values, for ``numpy.asarray(vector)`` (read-only, as they are shared)."""
        if copy or (dtype is not None and np.dtype(dtype) != self.values.dtype):
            return np.array(self.values, dtype=dtype)
        return self.values

    def __len__(self) -> int:
        return len(self.values)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "path": self.source,
            "version": self.version,
            "format": self.format,
            "family": self.family,
            "sha256": self.sha256,
            "unit": self.unit,
            "quality": list(self.quality),
            "names": list(self.names),
            "vector": [float(value) for value in self.values],
        }


class FeatureExtractor:
    """Versioned, deterministic feature vectors from CAD files, cached on two levels.

    ``version`` is v1 to v4 (see :mod:`cadmetrics.features.layout`); ``config`` holds the
    settings that change values; ``cache`` the levels to use (default: an in-process LRU;
    ``FeatureCache.disabled()`` for none); ``max_bytes`` bounds the files read.

    STEP and IGES parts (the ``step`` extra) are tessellated and described by the mesh
    layout, like STL, OBJ and PLY parts, so that all of them can be compared and stored
    together; with ``brep=True`` they get the B-Rep layout instead, of exact B-Rep measures.
    ``unit`` is the length unit size features are given in (default: each file's own).
    """

    def __init__(
        self,
        version: str = "v4",
        *,
        config: FeatureConfig | None = None,
        cache: FeatureCache | None = None,
        telemetry: Telemetry | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        brep: bool = False,
        unit: str | None = None,
    ) -> None:
        self.layout: FeatureLayout = layout_for(version)
        self.drawing_layout: FeatureLayout = layout_for(version, family="drawing")
        self.brep_layout: FeatureLayout = layout_for(version, family="brep")
        self.brep = bool(brep)
        self.unit = _checked_unit(unit)
        self.config = config if config is not None else FeatureConfig()
        self.cache = cache if cache is not None else FeatureCache()
        self.max_bytes = max_bytes
        tel = telemetry if telemetry is not None else Telemetry()
        self._telemetry = tel
        self._requests = tel.counter("cadmetrics_feature_extractions_total")
        self._duration = tel.histogram("cadmetrics_feature_extraction_duration_seconds")
        self._errors = tel.counter("cadmetrics_feature_extraction_errors_total")
        self._hits = tel.counter("cadmetrics_feature_cache_hits_total")
        self._misses = tel.counter("cadmetrics_feature_cache_misses_total")
        self._cache_errors = tel.counter("cadmetrics_feature_cache_errors_total")
        self._entries = tel.gauge("cadmetrics_feature_cache_entries")
        self._surface_count = tel.histogram("cadmetrics_feature_surface_count")
        self._entropy = tel.histogram("cadmetrics_feature_shape_entropy")
        self._degraded = tel.counter("cadmetrics_feature_degraded_total")
        self._tuning_requests = tel.counter("cadmetrics_feature_cache_tuning_requests_total")
        self._recommended_entries = tel.gauge("cadmetrics_feature_cache_recommended_capacity_entries")
        self._recommended_bytes = tel.gauge("cadmetrics_feature_cache_recommended_capacity_bytes")
        self._recommended_ttl = tel.gauge("cadmetrics_feature_cache_recommended_ttl_seconds")
        self._target_hit_ratio = tel.gauge("cadmetrics_feature_cache_target_hit_ratio")
        self._key_suffix = f":{self.layout.version}:{self.config.key}" + (";brep" if self.brep else "")
        self.history = KeyHistory()

    @property
    def version(self) -> str:
        return self.layout.version

    def health(self) -> list[Check]:
        """The shared cache level: pass when none is configured or its last call worked, warn
        while it is in its back-off (extraction goes on without it, slower)."""
        l2 = self.cache.l2
        if l2 is None:
            return [Check("features", "shared_cache", Status.PASS, "no shared cache level configured")]
        failed = getattr(l2, "failed_seconds_ago", lambda: None)()
        if failed is None:
            return [Check("features", "shared_cache", Status.PASS, "the last call worked")]
        return [
            Check(
                "features",
                "shared_cache",
                Status.WARN,
                f"unreachable {failed:.0f} s ago and in its back-off: extraction goes on without it",
                observed_value=round(failed, 3),
                observed_unit="s",
            )
        ]

    def extract(self, source: Source, *, unit: str | None = None) -> FeatureVector:
        """The feature vector of ``source``: a path, the file's bytes, or a :class:`Mesh`.

        ``unit`` (``"mm"``, ``"in"``...; default: the extractor's ``unit``, else the file's
        own) converts the size features of a file that declares its unit (STEP, IGES, DXF);
        a file that declares none keeps its numbers, and its vector's ``unit`` is None.

        Raises :class:`~cadmetrics.errors.FeatureInputError` for input that gives no
        features (its ``reason`` says why), :class:`~cadmetrics.errors.MissingDependency`
        when a format needs an extra that is not installed, ValueError for an unknown unit.
        """
        wanted = _checked_unit(unit) if unit is not None else self.unit
        with self._telemetry.span("cadmetrics.features.extract", version=self.version) as span:
            try:
                content, shown, digest = self._content(source)
                key = digest + self._key_suffix
                self._observe(key)
                found, level = self._lookup(key)
                if found is not None:
                    self._requests.inc(version=self.version, result="cached")
                    vector = self._vector(found, digest, shown, cached=True, unit=wanted)
                    span.set(result="cached", cache_level=level, format=found.format, **_faces(vector))
                    return vector
                started = time.perf_counter()
                computed = self._compute(content, shown)
                self._duration.observe(
                    time.perf_counter() - started, version=self.version, format=computed.format
                )
            except FeatureError as error:
                self._requests.inc(version=self.version, result="error")
                self._errors.inc(format=error.format, reason=error.reason)
                span.set(result="error", format=error.format)
                raise
            self._requests.inc(version=self.version, result="computed")
            for flaw in computed.quality:
                self._degraded.inc(format=computed.format, quality=flaw)
            self._store(key, computed)
            vector = self._vector(computed, digest, shown, cached=False, unit=wanted)
            span.set(result="computed", format=computed.format, **_faces(vector))
            return vector

    def cached(
        self, sha256: str, source: str = "<cached>", *, unit: str | None = None
    ) -> FeatureVector | None:
        """The vector of the content whose sha256 is ``sha256``, when a cache level holds it;
        never computes. For hosts that keep files by content hash and know it already."""
        key = sha256 + self._key_suffix
        self._observe(key)
        found, _ = self._lookup(key)
        if found is None:
            return None
        self._requests.inc(version=self.version, result="cached")
        wanted = _checked_unit(unit) if unit is not None else self.unit
        return self._vector(found, sha256, source, cached=True, unit=wanted)

    def extract_many(
        self, sources: Iterable[Source], executor: Executor | None = None, *, progress: bool | None = None
    ) -> list[FeatureVector | FeatureError]:
        """Every source's vector, in input order, with an item's error in its place instead
        of one failure ending the batch. ``executor`` is any ``concurrent.futures``
        executor (threads share this extractor; processes and distributed executors each
        build their own from its settings); ``progress`` shows a tqdm bar (default: when
        standard error is a terminal)."""
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

    def _lookup(self, key: str) -> tuple[CachedVector | None, str | None]:
        """The cached vector of ``key`` and the level that answered (``l1``, ``l2``), or None."""
        l1, l2 = self.cache.l1, self.cache.l2
        if l1 is not None:
            found = l1.get(key)
            if found is not None:
                self._hits.inc(level="l1")
                return found, "l1"
            self._misses.inc(level="l1")
        if l2 is None:
            return None, None
        try:
            data = l2.get(key)
        except Exception:  # a shared level may fail in any way; extraction goes on without it
            self._cache_errors.inc(level="l2", operation="get")
            data = None
        shared = CachedVector.from_bytes(data, self._dimension_of) if data is not None else None
        if shared is None:
            self._misses.inc(level="l2")
            return None, None
        self._hits.inc(level="l2")
        if l1 is not None:
            l1.put(key, shared)
            self._entries.set(MemoryCache.entries_in_process(), level="l1")
        return shared, "l2"

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
        unit: str | None = None
        if isinstance(content, Mesh):
            fmt = content.format
            features = self._guarded(lambda: mesh_features(content, self.layout, self.config), shown, fmt)
        else:
            from cadmetrics.features.formats import read_mesh, sniff

            fmt = sniff(content, source=shown)
            if fmt == "dxf":
                from cadmetrics.features.drawing import read_drawing

                drawing = read_drawing(content, source=shown)
                unit = drawing.unit
                features = self._guarded(
                    lambda: drawing_features(drawing, self.drawing_layout, self.config), shown, fmt
                )
            elif fmt in BREP_FORMATS:
                features, unit = self._brep_features(content, shown, fmt)
            else:
                mesh = read_mesh(content, source=shown)
                features = self._guarded(lambda: mesh_features(mesh, self.layout, self.config), shown, fmt)
        if features.surface_count is not None:
            self._surface_count.observe(features.surface_count, version="v4")
        if features.entropy_d2 is not None:
            self._entropy.observe(features.entropy_d2, distribution="d2")
        if features.entropy_patch_area is not None:
            self._entropy.observe(features.entropy_patch_area, distribution="patch_area")
        if features.entropy_surface_type is not None:
            self._entropy.observe(features.entropy_surface_type, distribution="surface_type")
        return CachedVector(features.values, fmt, unit, features.quality)

    def _brep_features(self, content: bytes, shown: str, fmt: str) -> tuple[ComputedFeatures, str | None]:
        """A STEP or IGES part's features (B-Rep or mesh layout), sizes in the file's unit,
        measured by OpenCASCADE in its own process."""
        from cadmetrics.features.brep_process import summarize_in_process

        layout = self._layout_of(fmt)
        summary = summarize_in_process(
            content, source=shown, format=fmt, measures=_measures(layout, self.brep)
        )
        if self.brep:
            features = self._guarded(lambda: brep_features(summary, layout), shown, fmt)
        else:
            mesh = summary.mesh
            assert mesh is not None  # asked for
            features = self._guarded(lambda: mesh_features(mesh, layout, self.config), shown, fmt)
        if summary.unit is None or summary.unit == "mm":  # OpenCASCADE's coordinates are millimetres
            return features, summary.unit
        in_file_unit = convert_sizes(features.values, layout, 1.0 / millimetres_per(summary.unit))
        return attrs.evolve(features, values=_rounded_vector(in_file_unit)), summary.unit

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
        if fmt == "dxf":
            return self.drawing_layout
        if self.brep and fmt in BREP_FORMATS:
            return self.brep_layout
        return self.layout

    def _family_of(self, fmt: str) -> str:
        if fmt == "dxf":
            return "drawing"
        return "brep" if self.brep and fmt in BREP_FORMATS else "mesh"

    def _dimension_of(self, fmt: str) -> int:
        return self._layout_of(fmt).dimension

    def _vector(
        self, entry: CachedVector, digest: str, shown: str, *, cached: bool, unit: str | None
    ) -> FeatureVector:
        """The vector of a cache entry, its size features converted to ``unit`` when both it
        and the entry's unit are known."""
        layout = self._layout_of(entry.format)
        values, shown_unit = entry.values, entry.unit
        if unit is not None and shown_unit is not None and unit != shown_unit:
            factor = millimetres_per(shown_unit) / millimetres_per(unit)
            values, shown_unit = _rounded_vector(convert_sizes(values, layout, factor)), unit
        return FeatureVector(
            self.version,
            layout.names,
            values,
            digest,
            shown,
            entry.format,
            cached,
            shown_unit,
            entry.quality,
            self._family_of(entry.format),
        )


def _measures(layout: FeatureLayout, brep: bool) -> frozenset[str]:
    """What OpenCASCADE must measure for ``layout``: the tessellation for a mesh layout;
    for a B-Rep one, the exact properties, and what its later versions add."""
    if not brep:
        return frozenset({"mesh"})
    names = set(layout.names)
    wanted = {"mass"}
    if "plane_faces" in names:
        wanted.add("surfaces")
    if "convex_edges" in names:
        wanted.add("edges")
    return frozenset(wanted)


def _checked_unit(unit: str | None) -> str | None:
    """``unit`` by its canonical short name (ValueError for an unknown one), or None."""
    return None if unit is None else canonical_unit(unit)


def _rounded_vector(values: FloatArray) -> FloatArray:
    """``values`` rounded as computed vectors are, read-only."""
    vector = np.array([rounded(value) for value in values.tolist()], dtype=np.float64)
    vector.flags.writeable = False
    return vector


def _faces(vector: FeatureVector) -> dict[str, int]:
    """The span attribute ``faces``, for layouts that count faces (meshes); none otherwise."""
    if "face_count" not in vector.names:
        return {}
    return {"faces": int(vector.values[vector.names.index("face_count")])}
