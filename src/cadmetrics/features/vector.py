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
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from cadmetrics.errors import FeatureError
from cadmetrics.features.drawing import Drawing
from cadmetrics.features.geometry import Geometry, curve_moments, entropy_bits, segment_d2
from cadmetrics.features.layout import D2_BINS, D2_RANGE, FeatureLayout
from cadmetrics.features.mesh import FloatArray, Mesh

if TYPE_CHECKING:
    from cadmetrics.features.brep import BRepSummary

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
    """A layout's values for one part, the v4 distributions that metrics observe, and what
    was degraded about the input (see :data:`QUALITY_FLAGS`)."""

    values: FloatArray
    surface_count: int | None = None
    entropy_d2: float | None = None
    entropy_patch_area: float | None = None
    entropy_surface_type: float | None = None
    quality: tuple[str, ...] = ()


#: What a vector's ``quality`` can say of its input, each a value of the contract's
#: ``cadmetrics_feature_degraded_total`` quality label. An empty ``quality`` is a clean input.
QUALITY_FLAGS = {
    "open": "an edge borders one face only: the mesh encloses no volume, so volume features are 0",
    "non_manifold": "an edge is shared by three or more faces: volume features are 0",
    "inconsistent_winding": "closed, but neighbouring faces disagree on which side is out: volume features "
    "are 0",
    "polygon_soup": "no two faces share an edge (separate triangles, as some exporters write)",
    "no_solid": "a B-Rep part whose faces close no solid, even sewn: its B-Rep volume features are 0",
    "drawing_repaired": "a drawing with flaws that the reader repaired before measuring it",
    "drawing_unrepaired": "a drawing with flaws the reader reported but could not repair",
}


def mesh_quality(g: Geometry) -> tuple[str, ...]:
    """The flaws of ``g``'s mesh that :data:`QUALITY_FLAGS` names, in that order."""
    shared = g.edge_face_counts
    flags = []
    if (shared == 1).any():
        flags.append("open")
    if (shared > 2).any():
        flags.append("non_manifold")
    if g.watertight and not g.winding_consistent:
        flags.append("inconsistent_winding")
    if len(g.mesh.faces) > 1 and (shared == 1).all():
        flags.append("polygon_soup")
    return tuple(flags)


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
    quality = mesh_quality(g)
    if "surface_count" not in names or d2 is None:
        return ComputedFeatures(_ordered(values, layout), quality=quality)
    patches = g.patch_areas(config.patch_angle_degrees)
    values["surface_count"] = len(patches)
    values["shape_entropy_d2"] = entropy_bits(d2)
    values["shape_entropy_patch_area"] = entropy_bits(patches)
    return ComputedFeatures(
        _ordered(values, layout),
        surface_count=len(patches),
        entropy_d2=values["shape_entropy_d2"],
        entropy_patch_area=values["shape_entropy_patch_area"],
        quality=quality,
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
    quality = drawing_quality(drawing)
    if "d2_bin_00" not in names:
        return ComputedFeatures(_ordered(values, layout), quality=quality)
    d2 = segment_d2(drawing.segments, _drawing_seed(drawing), config.d2_pairs, D2_BINS, D2_RANGE)
    values.update({f"d2_bin_{index:02d}": float(share) for index, share in enumerate(d2)})
    counts = np.array([float(n) for n in drawing.entity_counts.values()])
    values["shape_entropy_d2"] = entropy_bits(d2)
    values["entity_type_entropy"] = entropy_bits(counts) if len(counts) else 0.0
    entropy = values["shape_entropy_d2"] if "shape_entropy_d2" in names else None
    return ComputedFeatures(_ordered(values, layout), entropy_d2=entropy, quality=quality)


def drawing_quality(drawing: Drawing) -> tuple[str, ...]:
    """Whether the reader had to repair the drawing, or found flaws it could not repair."""
    flags = []
    if drawing.repairs:
        flags.append("drawing_repaired")
    if drawing.unrepaired:
        flags.append("drawing_unrepaired")
    return tuple(flags)


def brep_features(part: BRepSummary, layout: FeatureLayout) -> ComputedFeatures:
    """The values of a B-Rep ``layout`` for ``part``, sizes in millimetres. The summary must
    hold what the layout needs: ``mass``; ``surfaces`` from v2; ``edges`` from v3."""
    names = set(layout.names)
    topology = part.topology
    mass = part.mass
    if mass is None:
        raise FeatureError(f"{part.source}: the B-Rep summary lacks the mass properties its layout needs")
    major, middle, minor = part.extents
    values: dict[str, float] = {f"{kind}_count": float(count) for kind, count in topology.items()}
    values.update(
        extent_major=major,
        extent_middle=middle,
        extent_minor=minor,
        surface_area=mass.area,
        volume=mass.volume,
    )
    for label, radius in zip(("minor", "middle", "major"), mass.gyration_radii, strict=True):
        values[f"gyration_radius_{label}"] = radius
    values.update(centre_x=mass.centre[0], centre_y=mass.centre[1], centre_z=mass.centre[2])
    if "plane_faces" in names:
        types, areas = part.surface_types, part.surface_type_areas
        if types is None or areas is None:
            raise FeatureError(f"{part.source}: the B-Rep summary lacks the surface types v2 needs")
        values.update({f"{kind}_faces": float(count) for kind, count in types.items()})
        values.update(
            {f"{kind}_area_share": area / mass.area if mass.area > 0 else 0.0 for kind, area in areas.items()}
        )
        moments = mass.principal_moments
        total = math.fsum(moments)
        for label, moment in zip(("minor", "middle", "major"), moments, strict=True):
            values[f"inertia_ratio_{label}"] = moment / total if total > 0 else 0.0
        volume = mass.volume
        values["sphericity"] = math.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / mass.area if volume > 0 else 0.0
    if "convex_edges" in names:
        edges = part.edge_convexity
        if edges is None:
            raise FeatureError(f"{part.source}: the B-Rep summary lacks the edge convexity v3 needs")
        values.update({f"{kind}_edges": float(count) for kind, count in edges.items()})
        between_two = edges["convex"] + edges["concave"] + edges["smooth"]
        for kind in ("convex", "concave", "smooth"):
            values[f"{kind}_edge_share"] = edges[kind] / between_two if between_two else 0.0
    entropy = None
    if "shape_entropy" in names:
        values["surface_count"] = float(topology["face"])
        entropy = values["shape_entropy"] = surface_type_entropy(list((part.surface_types or {}).values()))
    quality = ("no_solid",) if topology["solid"] == 0 else ()
    return ComputedFeatures(
        _ordered(values, layout),
        surface_count=topology["face"] if entropy is not None else None,
        entropy_surface_type=entropy,
        quality=quality,
    )


def surface_type_entropy(counts: list[int]) -> float:
    """The normalised entropy of face counts per surface type, as the STEP pipeline defined
    ``shape_entropy``: over the K types present, shares Laplace-smoothed to
    ``(n_i + 1) / (N + K)``, Shannon entropy (natural log) divided by ``ln K``; 0 when K < 2."""
    present = [count for count in counts if count > 0]
    kinds = len(present)
    if kinds < 2:
        return 0.0
    total = sum(present) + kinds
    entropy = -math.fsum((count + 1) / total * math.log((count + 1) / total) for count in present)
    return entropy / math.log(kinds)


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
