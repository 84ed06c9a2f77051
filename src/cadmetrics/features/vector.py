"""From a mesh to the values of a feature layout: what each named feature is computed from.

Values are rounded to 12 significant digits at the end. The computations avoid everything
that differs between machines (see :mod:`cadmetrics.features.geometry`), and the rounding
absorbs what is left (a last-bit difference in the C library's ``pow`` or ``log2``, which
only moves a rounded value when it falls right on a rounding boundary), so that equal content
gives equal vectors, bit for bit, wherever it is computed.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from typing import Any

import attrs
import numpy as np

from cadmetrics.errors import FeatureError
from cadmetrics.features.drawing import Drawing
from cadmetrics.features.geometry import Geometry, curve_moments, entropy_bits, segment_d2
from cadmetrics.features.layout import D2_BINS, D2_RANGE, FeatureLayout
from cadmetrics.features.mesh import FloatArray, Mesh

SIGNIFICANT_DIGITS = 12


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, not {value}")


@attrs.frozen
class FeatureConfig:
    """The extractor's settings that change values; part of every cache key."""

    d2_pairs: int = attrs.field(default=16384, converter=int, validator=_positive)
    patch_angle_degrees: float = attrs.field(default=20.0, converter=float, validator=_positive)

    @property
    def key(self) -> str:
        """The same for equal settings however they were written (20 and 20.0 alike)."""
        return f"d2_pairs={self.d2_pairs};patch_angle={self.patch_angle_degrees!r}"


@attrs.frozen
class ComputedFeatures:
    """A layout's values for one part, and the v4 distributions that metrics observe."""

    values: FloatArray
    surface_count: int | None = None
    entropy_d2: float | None = None
    entropy_patch_area: float | None = None


def mesh_features(mesh: Mesh, layout: FeatureLayout, config: FeatureConfig) -> ComputedFeatures:
    """The values of ``layout`` for ``mesh``; only what the layout names is computed."""
    g = Geometry(mesh)
    names = set(layout.names)
    hull_thread = _hull_in_background(g) if "hull_volume_ratio" in names else None
    values: dict[str, float] = {}
    major, middle, minor = g.extents
    values.update(
        vertex_count=g.vertex_count,
        face_count=len(mesh.faces),
        extent_major=major,
        extent_middle=middle,
        extent_minor=minor,
        surface_area=g.area,
        volume=g.volume,
    )
    if "inertia_ratio_minor" in names:
        moments = g.principal_moments
        total = sum(moments)
        for label, moment in zip(("minor", "middle", "major"), moments, strict=True):
            values[f"inertia_ratio_{label}"] = moment / total if total > 0 else 0.0
        volume = g.volume
        values["sphericity"] = math.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / g.area if volume > 0 else 0.0
        if hull_thread is not None:
            hull_thread.join()
        hull = g.hull_volume if volume > 0 else 0.0
        values["hull_volume_ratio"] = volume / hull if hull > 0 else 0.0
        values["euler_characteristic"] = g.euler_characteristic
        values["watertight"] = 1.0 if g.watertight else 0.0
    d2: FloatArray | None = None
    if "d2_bin_00" in names:
        d2 = g.d2_histogram(config.d2_pairs, D2_BINS, D2_RANGE)
        values.update({f"d2_bin_{index:02d}": float(share) for index, share in enumerate(d2)})
    if "surface_count" not in names or d2 is None:
        return ComputedFeatures(_ordered(values, layout))
    patches = g.patch_areas(config.patch_angle_degrees)
    values["surface_count"] = len(patches)
    values["shape_entropy_d2"] = entropy_bits(d2)
    values["shape_entropy_patch_area"] = entropy_bits(patches)
    return ComputedFeatures(
        _ordered(values, layout),
        surface_count=len(patches),
        entropy_d2=values["shape_entropy_d2"],
        entropy_patch_area=values["shape_entropy_patch_area"],
    )


#: From this many faces the convex hull (qhull, which releases the GIL) is computed on a
#: second thread while the rest of v2 is computed on this one.
PARALLEL_HULL_FACES = 20_000


def _hull_in_background(g: Geometry) -> threading.Thread | None:
    """Start computing ``g.hull_volume`` beside the caller, for large meshes. A failure there
    is not lost: the value is then computed again, and raises, where it is read."""
    if len(g.mesh.faces) < PARALLEL_HULL_FACES:
        return None

    def compute() -> None:
        with contextlib.suppress(Exception):
            _ = g.hull_volume

    thread = threading.Thread(target=compute, name="cadmetrics-hull", daemon=True)
    thread.start()
    return thread


def drawing_features(drawing: Drawing, layout: FeatureLayout, config: FeatureConfig) -> ComputedFeatures:
    """The values of a drawing ``layout`` for ``drawing``."""
    names = set(layout.names)
    values = drawing.feature_values()
    drawn = drawing.line_length + drawing.arc_length
    smallest, middle, largest = curve_moments(drawing.segments)
    radius = math.sqrt(smallest + middle + largest)
    values.update(
        aspect_ratio=math.sqrt(middle / largest) if largest > 0 else 0.0,
        curve_share=drawing.arc_length / drawn if drawn > 0 else 0.0,
        length_per_radius=drawn / radius if radius > 0 else 0.0,
    )
    if "d2_bin_00" not in names:
        return ComputedFeatures(_ordered(values, layout))
    d2 = segment_d2(drawing.segments, _drawing_seed(drawing), config.d2_pairs, D2_BINS, D2_RANGE)
    values.update({f"d2_bin_{index:02d}": float(share) for index, share in enumerate(d2)})
    counts = np.array([float(n) for n in drawing.entity_counts.values()])
    values["shape_entropy_d2"] = entropy_bits(d2)
    values["entity_type_entropy"] = entropy_bits(counts) if len(counts) else 0.0
    entropy = values["shape_entropy_d2"] if "shape_entropy_d2" in names else None
    return ComputedFeatures(_ordered(values, layout), entropy_d2=entropy)


def _drawing_seed(drawing: Drawing) -> int:
    """From what the drawing holds, not where: moved or scaled, it draws the same sample."""
    digest = hashlib.sha256(repr((len(drawing.segments), sorted(drawing.entity_counts.items()))).encode())
    return int.from_bytes(digest.digest()[:16], "little")


def _ordered(values: dict[str, float], layout: FeatureLayout) -> FloatArray:
    missing = [name for name in layout.names if name not in values]
    if missing:
        raise FeatureError(f"layout {layout.version} names features nothing computes: {missing}")
    vector = np.array([rounded(values[name]) for name in layout.names], dtype=np.float64)
    vector.flags.writeable = False
    return vector


def rounded(value: float) -> float:
    """``value`` to :data:`SIGNIFICANT_DIGITS` significant digits (0.0 for -0.0)."""
    return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}") + 0.0
