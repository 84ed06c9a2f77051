"""Feature layouts: which named features a version's vector holds, in which order.

A layout is data, declared once here: the vector's dimension is derived from it, the
extractor fills it by name, docs are generated from it, and the vector store migrates between
versions by matching names. Each version extends the one before, so an upgrade only appends
features and a downgrade only drops them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator

import attrs

from cadmetrics.errors import FeatureError


class Scaling(enum.Enum):
    """How a feature changes when the part is scaled by ``s``: the size features are the only
    ones that change (as ``s``, ``s**2`` or ``s**3``); counts and shape features do not."""

    LENGTH = "length"
    AREA = "area"
    VOLUME = "volume"
    INVARIANT = "invariant"


@attrs.frozen
class Feature:
    """One named value of a vector.

    ``group`` gathers related features (drift is reported per group); ``default`` is the value
    a migration fills in, and marks as filled, when the feature cannot be computed for a
    stored vector.
    """

    name: str
    description: str
    scaling: Scaling = Scaling.INVARIANT
    group: str = "other"
    default: float = 0.0


@attrs.frozen
class FeatureLayout:
    """An ordered list of named features: version ``version`` of the vector."""

    version: str
    features: tuple[Feature, ...]
    extends: str | None = None  # the version whose features this one starts with
    names: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)  # of the features, in order

    def __attrs_post_init__(self) -> None:
        names = tuple(feature.name for feature in self.features)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise FeatureError(f"feature layout {self.version} names {duplicates} more than once")
        object.__setattr__(self, "names", names)

    @property
    def dimension(self) -> int:
        return len(self.features)

    def index(self, name: str) -> int:
        """Where feature ``name`` sits in the vector."""
        for position, feature in enumerate(self.features):
            if feature.name == name:
                return position
        raise FeatureError(f"feature layout {self.version} has no feature {name!r}")

    def __iter__(self) -> Iterator[Feature]:
        return iter(self.features)

    @property
    def groups(self) -> tuple[str, ...]:
        """The group of each feature, in order."""
        return tuple(feature.group for feature in self.features)

    def extended(self, version: str, features: Iterable[Feature]) -> FeatureLayout:
        """A new version holding this one's features, then ``features``."""
        return FeatureLayout(version, self.features + tuple(features), extends=self.version)


def grouped(group: str, features: Iterable[Feature]) -> tuple[Feature, ...]:
    """``features``, each placed in ``group``."""
    return tuple(attrs.evolve(feature, group=group) for feature in features)


#: Bins of the D2 shape distribution; distances are divided by their mean, so the bins
#: cover [0, D2_RANGE) of the mean distance and the last bin also holds anything beyond.
D2_BINS = 32
D2_RANGE = 3.0

V1 = FeatureLayout(
    "v1",
    grouped(
        "size",
        (
            Feature("vertex_count", "vertices used by at least one face (coincident vertices welded)"),
            Feature("face_count", "triangles (polygons are split into triangle fans)"),
            Feature("extent_major", "largest axis-aligned bounding-box extent", Scaling.LENGTH),
            Feature("extent_middle", "middle axis-aligned bounding-box extent", Scaling.LENGTH),
            Feature("extent_minor", "smallest axis-aligned bounding-box extent", Scaling.LENGTH),
            Feature("surface_area", "total area of the faces", Scaling.AREA),
            Feature(
                "volume",
                "enclosed volume when the mesh is watertight and consistently wound, otherwise 0",
                Scaling.VOLUME,
            ),
        ),
    ),
)

V2 = V1.extended(
    "v2",
    grouped(
        "shape",
        (
            Feature("inertia_ratio_minor", "smallest principal moment of inertia over their sum"),
            Feature("inertia_ratio_middle", "middle principal moment of inertia over their sum"),
            Feature("inertia_ratio_major", "largest principal moment of inertia over their sum"),
            Feature(
                "sphericity", "pi^(1/3) (6V)^(2/3) / A: 1 for a sphere, less for anything else; 0 when open"
            ),
            Feature("hull_volume_ratio", "volume over convex-hull volume: 1 when convex; 0 when open"),
            Feature("euler_characteristic", "V - E + F: 2 for each closed genus-0 shell"),
            Feature("watertight", "1 when every edge is shared by exactly two faces, else 0"),
        ),
    ),
)

V3 = V2.extended(
    "v3",
    tuple(
        Feature(
            f"d2_bin_{index:02d}",
            f"D2 shape distribution: share of sampled point-pair distances in "
            f"[{index * D2_RANGE / D2_BINS:.5g}, {(index + 1) * D2_RANGE / D2_BINS:.5g}) of their mean",
            group="d2",
        )
        for index in range(D2_BINS)
    ),
)

V4 = V3.extended(
    "v4",
    (
        Feature(
            "surface_count",
            "surface patches: regions of faces whose normals turn less than a tolerance",
            group="surface",
        ),
        Feature("shape_entropy_d2", "Shannon entropy of the D2 distribution, in bits", group="d2"),
        Feature(
            "shape_entropy_patch_area",
            "Shannon entropy of the patches' shares of the area, in bits",
            group="surface",
        ),
    ),
)

LAYOUTS: dict[str, FeatureLayout] = {layout.version: layout for layout in (V1, V2, V3, V4)}

# -- 2D drawings (DXF) ------------------------------------------------------------------------
# A drawing has no surface or volume, so it has layouts of its own, versioned alongside the
# mesh layouts: the same version of an extractor reads both, each into its own layout.

_DRAWING_COUNTED = (
    "line", "lwpolyline", "polyline", "arc", "circle", "ellipse", "spline",
    "text", "mtext", "insert", "dimension", "hatch", "point",
)  # fmt: skip

DRAWING_V1 = FeatureLayout(
    "v1",
    (
        *(
            Feature(f"{kind}_entities", f"modelspace {kind.upper()} entities", group="entities")
            for kind in _DRAWING_COUNTED
        ),
        Feature("other_entities", "modelspace entities of any other type", group="entities"),
        *grouped(
            "structure",
            (
                Feature("layer_count", "layers defined, except Defpoints"),
                Feature("layers_used", "distinct layers of the modelspace entities"),
                Feature("block_count", "named block definitions (no layout, anonymous or arrowhead blocks)"),
            ),
        ),
        *grouped(
            "size",
            (
                Feature(
                    "extents_width",
                    "x extent of the drawn geometry, block references expanded",
                    Scaling.LENGTH,
                ),
                Feature("extents_height", "y extent of the drawn geometry", Scaling.LENGTH),
                Feature("extents_depth", "z extent of the drawn geometry", Scaling.LENGTH),
                Feature(
                    "line_length",
                    "total length of lines, polylines (bulges as arcs) and splines",
                    Scaling.LENGTH,
                ),
                Feature("arc_length", "total length of arcs, circles and ellipses", Scaling.LENGTH),
            ),
        ),
        Feature("text_count", "TEXT, MTEXT and ATTRIB, including those in inserted blocks", group="entities"),
    ),
)

DRAWING_V2 = DRAWING_V1.extended(
    "v2",
    grouped(
        "shape",
        (
            Feature(
                "aspect_ratio",
                "sqrt of the middle over the largest principal second moment of the drawn curves: "
                "1 when round or square, near 0 when long and thin (0 when nothing is drawn)",
            ),
            Feature("curve_share", "arc length over all drawn length; 0 when nothing is drawn"),
            Feature(
                "length_per_radius",
                "all drawn length over the curves' radius of gyration: how busy the drawing is "
                "(2 pi for a circle)",
            ),
        ),
    ),
)

DRAWING_V3 = DRAWING_V2.extended(
    "v3",
    tuple(
        Feature(
            f"d2_bin_{index:02d}",
            "D2 shape distribution of points along the drawn curves (as for meshes; a turned drawing "
            "is flattened from other points, so its sample differs within sampling noise)",
            group="d2",
        )
        for index in range(D2_BINS)
    ),
)

DRAWING_V4 = DRAWING_V3.extended(
    "v4",
    (
        Feature("shape_entropy_d2", "Shannon entropy of the D2 distribution, in bits", group="d2"),
        Feature(
            "entity_type_entropy", "Shannon entropy of the entity-type counts, in bits", group="entities"
        ),
    ),
)

DRAWING_LAYOUTS: dict[str, FeatureLayout] = {
    layout.version: layout for layout in (DRAWING_V1, DRAWING_V2, DRAWING_V3, DRAWING_V4)
}


# -- B-Rep parts (STEP, IGES) ----------------------------------------------------------------
# Exact measures of the boundary representation, read through OpenCASCADE. A B-Rep part can
# also be described by a mesh layout (computed on its tessellation, comparable with STL, OBJ and
# PLY parts); these layouts are for what only the B-Rep knows.

#: The surface types a B-Rep face is counted under, in layout order (OpenCASCADE's
#: GeomAbs_SurfaceType, B-spline and Bezier together).
SURFACE_TYPES = (
    "plane", "cylinder", "cone", "sphere", "torus", "bspline", "revolution", "extrusion", "offset", "other",
)  # fmt: skip

#: How an edge between two faces is classified, in layout order.
EDGE_CONVEXITIES = ("convex", "concave", "smooth")

BREP_V1 = FeatureLayout(
    "v1",
    (
        *grouped(
            "topology",
            (
                Feature("solid_count", "solids (an assembly of several solids is one part)"),
                Feature("shell_count", "shells"),
                Feature("face_count", "B-Rep faces"),
                Feature("edge_count", "B-Rep edges"),
                Feature("vertex_count", "B-Rep vertices"),
            ),
        ),
        *grouped(
            "size",
            (
                Feature("extent_major", "largest axis-aligned bounding-box extent", Scaling.LENGTH),
                Feature("extent_middle", "middle axis-aligned bounding-box extent", Scaling.LENGTH),
                Feature("extent_minor", "smallest axis-aligned bounding-box extent", Scaling.LENGTH),
                Feature("surface_area", "exact area of the faces", Scaling.AREA),
                Feature("volume", "exact volume of the solids; 0 when the part has no solid", Scaling.VOLUME),
                Feature(
                    "gyration_radius_minor",
                    "sqrt of the smallest exact principal moment of inertia over the mass (of the "
                    "solids at density 1; of the faces as a thin shell when there is no solid)",
                    Scaling.LENGTH,
                ),
                Feature("gyration_radius_middle", "the same of the middle principal moment", Scaling.LENGTH),
                Feature("gyration_radius_major", "the same of the largest principal moment", Scaling.LENGTH),
            ),
        ),
        *grouped(
            "position",
            (
                Feature(
                    "centre_x",
                    "x of the exact centre of mass, in the file's coordinates: it moves with the "
                    "part, so it tells where a part sits in an assembly, not what it looks like",
                    Scaling.LENGTH,
                ),
                Feature("centre_y", "y of the exact centre of mass", Scaling.LENGTH),
                Feature("centre_z", "z of the exact centre of mass", Scaling.LENGTH),
            ),
        ),
    ),
)

BREP_V2 = BREP_V1.extended(
    "v2",
    (
        *(
            Feature(f"{kind}_faces", f"faces whose surface is a {kind}", group="surface")
            for kind in SURFACE_TYPES[:5]
        ),
        Feature("bspline_faces", "faces whose surface is a B-spline or Bezier surface", group="surface"),
        Feature("revolution_faces", "faces whose surface is a surface of revolution", group="surface"),
        Feature("extrusion_faces", "faces whose surface is a surface of linear extrusion", group="surface"),
        Feature("offset_faces", "faces whose surface is an offset surface", group="surface"),
        Feature("other_faces", "faces whose surface is of any other type", group="surface"),
        *(
            Feature(f"{kind}_area_share", f"share of the area on {kind}_faces", group="surface")
            for kind in SURFACE_TYPES
        ),
        *grouped(
            "shape",
            (
                Feature(
                    "inertia_ratio_minor",
                    "smallest exact principal moment of inertia over their sum (of the solids; "
                    "of the faces as a thin shell when there is no solid)",
                ),
                Feature("inertia_ratio_middle", "middle exact principal moment of inertia over their sum"),
                Feature("inertia_ratio_major", "largest exact principal moment of inertia over their sum"),
                Feature("sphericity", "pi^(1/3) (6V)^(2/3) / A from the exact V and A; 0 without a solid"),
            ),
        ),
    ),
)

BREP_V3 = BREP_V2.extended(
    "v3",
    grouped(
        "edges",
        (
            Feature(
                "convex_edges",
                "edges between two faces meeting at a convex angle (outside angle over 180 degrees), "
                "judged at the edge's middle",
            ),
            Feature("concave_edges", "edges between two faces meeting at a concave angle"),
            Feature("smooth_edges", "edges between two faces whose normals differ by under 1 degree"),
            Feature("other_edges", "edges on one face only, on three or more, seams and degenerate edges"),
            Feature("convex_edge_share", "convex edges over the edges between two faces (0 when none)"),
            Feature("concave_edge_share", "concave edges over the edges between two faces (0 when none)"),
            Feature("smooth_edge_share", "smooth edges over the edges between two faces (0 when none)"),
        ),
    ),
)

BREP_V4 = BREP_V3.extended(
    "v4",
    grouped(
        "surface",
        (
            Feature("surface_count", "B-Rep faces, as the v4 features of the STEP pipeline defined it"),
            Feature(
                "shape_entropy",
                "Shannon entropy of the face counts per surface type, Laplace-smoothed ((n_i + 1) / "
                "(N + K) over the K types present) and divided by ln K: 0 for one type, 1 when even",
            ),
        ),
    ),
)

BREP_LAYOUTS: dict[str, FeatureLayout] = {
    layout.version: layout for layout in (BREP_V1, BREP_V2, BREP_V3, BREP_V4)
}

#: The layout families, by name: meshes, 2D drawings and B-Rep parts.
FAMILIES: dict[str, dict[str, FeatureLayout]] = {
    "mesh": LAYOUTS,
    "drawing": DRAWING_LAYOUTS,
    "brep": BREP_LAYOUTS,
}


def layout_for(version: str, *, drawing: bool = False, family: str = "mesh") -> FeatureLayout:
    """The layout of ``version`` (v1 to v4) in ``family`` (``mesh``, ``drawing``, ``brep``;
    ``drawing=True`` is ``family="drawing"``), with a clear error for anything else."""
    if family not in FAMILIES:
        raise FeatureError(f"unknown layout family {family!r}: choose one of {', '.join(FAMILIES)}")
    try:
        return FAMILIES["drawing" if drawing else family][version]
    except KeyError:
        raise FeatureError(
            f"unknown feature version {version!r}: choose one of {', '.join(LAYOUTS)}"
        ) from None
