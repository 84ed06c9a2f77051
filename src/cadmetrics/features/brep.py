"""STEP and IGES parts, measured through OpenCASCADE (the optional ``step`` extra), as a B-Rep
summary.

:func:`~cadmetrics.features.brep_reading.read_brep` turns a file's bytes into a
:class:`BRepPart`: the transferred shape and its declared length unit. The part measures
itself on demand, each measure once: topology counts, faces per surface type, edges by
convexity, exact mass properties, face areas per surface type, extents, and a tessellation as a
:class:`~cadmetrics.features.mesh.Mesh` for the mesh layouts.

Coordinates are OpenCASCADE's, in millimetres whatever the file declares (the reader converts
on transfer); the feature code converts size features to the unit the host asks for.

Determinism: the tessellation's deflections are fixed fractions of the part's size, so a part
scaled or moved is tessellated alike; the mesher runs on every core, which does not change its
result (each edge and each face is meshed on its own, and the triangles are collected face by
face in the shape's order afterwards).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any, Final

import attrs
import numpy as np

from cadmetrics.features.layout import EDGE_CONVEXITIES, SURFACE_TYPES
from cadmetrics.features.mesh import FloatArray, IndexArray, Mesh
from cadmetrics.features.occ import occ_namespace, quiet
from cadmetrics.features.parsing import input_error

__all__ = [
    "ANGULAR_DEFLECTION",
    "BREP_FORMATS",
    "LINEAR_DEFLECTION",
    "MEASURES",
    "SMOOTH_EDGE_DEGREES",
    "BRepPart",
    "BRepSummary",
    "MassProperties",
    "summarize",
]

BREP_FORMATS: Final = ("step", "iges")

#: The tessellation's largest distance from the surface, as a fraction of the diagonal of the
#: part's bounding box: fine enough that a mesh's area and volume are within about 0.1% of
#: the exact ones on curved parts, and unchanged in proportion when the part is scaled.
LINEAR_DEFLECTION: Final = 0.001
#: The tessellation's largest angle between a curve and its chords, in radians (about 17
#: degrees): below the 20 degrees at which mesh patches split, so that a cylinder is one patch,
#: as on a finely exported STL (and a third fewer triangles than 0.2 would make).
ANGULAR_DEFLECTION: Final = 0.3
#: Two faces whose normals differ by less than this along their edge meet smoothly.
SMOOTH_EDGE_DEGREES: Final = 1.0


@attrs.frozen
class MassProperties:
    """Exact global properties: of the solids, or of the faces as a thin shell when the part
    has no solid (then ``volume`` is 0). Millimetre units."""

    volume: float
    area: float
    centre: tuple[float, float, float]
    principal_moments: tuple[float, float, float]  # smallest first
    #: sqrt(moment / mass) of each principal moment, smallest first: lengths whatever the body
    #: (a solid's moments grow as length^5, a shell's as length^4)
    gyration_radii: tuple[float, float, float] = (0.0, 0.0, 0.0)


#: What :func:`summarize` can measure beyond the topology and extents it always gives:
#: ``mass`` (exact properties), ``surfaces`` (faces and areas per surface type), ``edges``
#: (convexity) and ``mesh`` (the tessellation).
MEASURES: Final = ("mass", "surfaces", "edges", "mesh")


@attrs.frozen(eq=False)
class BRepSummary:
    """What the feature layouts need of a part, as plain values: measured where OpenCASCADE
    runs (a separate process, see :mod:`cadmetrics.features.brep_process`), used here. A
    measure not asked for is None. Sizes in millimetres; ``unit`` is what the file declares."""

    source: str
    format: str
    unit: str | None
    topology: dict[str, int]
    extents: tuple[float, float, float]
    mass: MassProperties | None = None
    surface_types: dict[str, int] | None = None
    surface_type_areas: dict[str, float] | None = None
    edge_convexity: dict[str, int] | None = None
    mesh: Mesh | None = None


def summarize(part: BRepPart, measures: frozenset[str]) -> BRepSummary:
    """``part``'s topology and extents, and the ``measures`` (names of :data:`MEASURES`)."""
    unknown = sorted(measures - set(MEASURES))
    if unknown:
        raise ValueError(f"unknown measures {unknown}: choose from {', '.join(MEASURES)}")
    surfaces = "surfaces" in measures
    return BRepSummary(
        part.source,
        part.format,
        part.unit,
        part.topology,
        part.extents,
        mass=part.mass if "mass" in measures else None,
        surface_types=part.surface_types if surfaces else None,
        surface_type_areas=part.surface_type_areas if surfaces else None,
        edge_convexity=part.edge_convexity if "edges" in measures else None,
        mesh=part.mesh if "mesh" in measures else None,
    )


class BRepPart:
    """A part read from STEP or IGES: its OpenCASCADE shape, measured when asked."""

    def __init__(self, shape: Any, *, source: str, format: str, unit: str | None) -> None:
        self.shape = shape
        self.source = source
        self.format = format
        self.unit = unit  # the length unit the file declares (canonical short name), if any
        self._occ = occ_namespace()
        self._surfaces: dict[int, Any] = {}

    # -- topology ---------------------------------------------------------------------------

    def _map(self, kind: Any) -> Any:
        occ = self._occ
        found = occ.IndexedMap()
        occ.TopExp.MapShapes_s(self.shape, kind, found)
        return found

    @functools.cached_property
    def topology(self) -> dict[str, int]:
        """Distinct solids, shells, faces, edges and vertices (a shape shared by two others
        counts once)."""
        occ = self._occ
        kinds = {
            "solid": occ.TopAbs_SOLID,
            "shell": occ.TopAbs_SHELL,
            "face": occ.TopAbs_FACE,
            "edge": occ.TopAbs_EDGE,
            "vertex": occ.TopAbs_VERTEX,
        }
        return {name: int(self._map(kind).Extent()) for name, kind in kinds.items()}

    @functools.cached_property
    def _faces(self) -> Any:
        return self._map(self._occ.TopAbs_FACE)

    @functools.cached_property
    def _face_types(self) -> list[str]:
        """Each face's surface type (a name of :data:`SURFACE_TYPES`), in face order."""
        occ = self._occ
        faces = self._faces
        return [
            _SURFACE_NAMES.get(
                self._surface(index, occ.TopoDS.Face(faces.FindKey(index))).GetType().name, "other"
            )
            for index in range(1, faces.Extent() + 1)
        ]

    @functools.cached_property
    def surface_types(self) -> dict[str, int]:
        """Faces per surface type, every type of :data:`SURFACE_TYPES` present (0 when none)."""
        counts = dict.fromkeys(SURFACE_TYPES, 0)
        for kind in self._face_types:
            counts[kind] += 1
        return counts

    @functools.cached_property
    def surface_type_areas(self) -> dict[str, float]:
        """Exact area per surface type, every type of :data:`SURFACE_TYPES` present (0 when
        none); summed correctly rounded, so the order of the faces does not matter."""
        parts: dict[str, list[float]] = {kind: [] for kind in SURFACE_TYPES}
        for kind, area in zip(self._face_types, self._face_properties[0], strict=True):
            parts[kind].append(area)
        return {kind: math.fsum(values) for kind, values in parts.items()}

    @functools.cached_property
    def edge_convexity(self) -> dict[str, int]:
        """Edges by how their two faces meet (see :meth:`_classify`), and ``other``: edges on
        one face or on three or more, seams (a face meeting itself) and degenerate edges."""
        counts = dict.fromkeys((*EDGE_CONVEXITIES, "other"), 0)
        for uses in self._edge_uses().values():
            counts[self._classify(uses)] += 1
        return counts

    def _edge_uses(self) -> dict[int, list[tuple[int, Any, Any]]]:
        """For each edge (by index), every face it bounds: (face index, face, the edge as that
        face's wire orients it)."""
        occ = self._occ
        edges = self._map(occ.TopAbs_EDGE)
        faces = self._faces
        uses: dict[int, list[tuple[int, Any, Any]]] = {index: [] for index in range(1, edges.Extent() + 1)}
        for face_index in range(1, faces.Extent() + 1):
            face = occ.TopoDS.Face(faces.FindKey(face_index))
            explorer = occ.TopExp_Explorer(face, occ.TopAbs_EDGE)
            while explorer.More():
                edge = occ.TopoDS.Edge(explorer.Current())
                uses[edges.FindIndex(edge)].append((face_index, face, edge))
                explorer.Next()
        return uses

    def _classify(self, uses: list[tuple[int, Any, Any]]) -> str:
        """``convex``, ``concave`` or ``smooth`` for an edge between two faces, judged at the
        middle of the edge from the faces' outward normals ``n1``, ``n2`` and the edge's
        direction ``t`` in the first face: its material lies to the left of ``t`` seen from
        outside, so the edge is convex when ``(n1 x n2) . t > 0`` (BRepNet's classes)."""
        occ = self._occ
        if len(uses) != 2 or uses[0][0] == uses[1][0]:
            return "other"
        (first, face1, edge1), (second, face2, edge2) = uses
        if occ.BRep_Tool.Degenerated_s(edge1):
            return "other"
        try:
            curve = occ.BRepAdaptor_Curve(edge1)
            middle = 0.5 * (curve.FirstParameter() + curve.LastParameter())
            point, tangent = occ.gp_Pnt(), occ.gp_Vec()
            curve.D1(middle, point, tangent)
            normal1 = _normal(occ, self._surface(first, face1), face1, edge1, middle)
            normal2 = _normal(occ, self._surface(second, face2), face2, edge2, middle)
        except Exception:  # an edge OpenCASCADE cannot evaluate is counted, not fatal
            return "other"
        if normal1 is None or normal2 is None or tangent.Magnitude() == 0:
            return "other"
        if edge1.Orientation() == occ.TopAbs_REVERSED:
            tangent.Reverse()
        cross = normal1.Crossed(normal2)
        angle = math.atan2(cross.Magnitude(), normal1.Dot(normal2))
        if angle < math.radians(SMOOTH_EDGE_DEGREES):
            return "smooth"
        return "convex" if cross.Dot(tangent) > 0 else "concave"

    def _surface(self, index: int, face: Any) -> Any:
        """Face ``index``'s surface, unrestricted (evaluated only at points of its edges), made
        once per face: building an adaptor is most of the cost of a normal."""
        found = self._surfaces.get(index)
        if found is None:
            found = self._surfaces[index] = self._occ.BRepAdaptor_Surface(face, False)
        return found

    # -- measures ---------------------------------------------------------------------------

    @functools.cached_property
    def _face_properties(self) -> tuple[list[float], Any]:
        """Each face's exact area, in face order, and the faces' properties together (as a thin
        shell of density 1): one integration per face gives both."""
        occ = self._occ
        faces = self._faces
        areas: list[float] = []
        together = occ.GProp_GProps()
        for index in range(1, faces.Extent() + 1):
            face = occ.GProp_GProps()
            occ.BRepGProp.SurfaceProperties_s(faces.FindKey(index), face)
            areas.append(abs(float(face.Mass())))
            together.Add(face)
        return areas, together

    @functools.cached_property
    def mass(self) -> MassProperties:
        """Volume, area, centre of mass and principal moments, from OpenCASCADE's global
        properties (exact integration over the B-Rep, not over a mesh): of the solids, or of
        the faces as a thin shell when the part has none."""
        occ = self._occ
        areas, props = self._face_properties
        volume = 0.0
        if self.topology["solid"] > 0:
            solid = occ.GProp_GProps()
            occ.BRepGProp.VolumeProperties_s(self.shape, solid, True)  # closed shells only
            volume = abs(float(solid.Mass()))
            if volume > 0:
                props = solid
        centre = props.CentreOfMass()
        moments = sorted(abs(float(m)) for m in props.PrincipalProperties().Moments())
        mass = abs(float(props.Mass()))
        radii = [math.sqrt(moment / mass) if mass > 0 else 0.0 for moment in moments]
        return MassProperties(
            volume,
            math.fsum(areas),
            (centre.X(), centre.Y(), centre.Z()),
            (moments[0], moments[1], moments[2]),
            (radii[0], radii[1], radii[2]),
        )

    @functools.cached_property
    def extents(self) -> tuple[float, float, float]:
        """Axis-aligned bounding-box extents of the exact geometry, largest first."""
        occ = self._occ
        box = occ.Bnd_Box()
        occ.BRepBndLib.AddOptimal_s(self.shape, box, False, False)
        low, high = box.CornerMin(), box.CornerMax()
        spans = sorted((high.X() - low.X(), high.Y() - low.Y(), high.Z() - low.Z()), reverse=True)
        return spans[0], spans[1], spans[2]

    # -- tessellation -----------------------------------------------------------------------

    @functools.cached_property
    def mesh(self) -> Mesh:
        """The part tessellated (see :data:`LINEAR_DEFLECTION`, :data:`ANGULAR_DEFLECTION`),
        faces turned outwards, the copies of each point on shared edges welded into one."""
        from cadmetrics.features.weld import weld_indexed

        occ = self._occ
        major, middle, minor = self.extents
        diagonal = math.sqrt(major * major + middle * middle + minor * minor)
        with quiet(occ):
            occ.BRepMesh_IncrementalMesh(
                self.shape, LINEAR_DEFLECTION * diagonal, False, ANGULAR_DEFLECTION, True
            )
        points: list[FloatArray] = []
        triangles: list[IndexArray] = []
        offset = 0
        for vertices, faces in self._face_triangles():
            points.append(vertices)
            triangles.append(faces + offset)
            offset += len(vertices)
        if not triangles:
            raise input_error(self.source, self.format, "degenerate", "no face could be tessellated")
        vertices, faces = weld_indexed(np.concatenate(points), np.concatenate(triangles))
        return Mesh.from_arrays(vertices, faces, source=self.source, format=self.format)

    def _face_triangles(self) -> Iterator[tuple[FloatArray, IndexArray]]:
        """Each tessellated face's nodes (placed by its location) and triangles (0-based,
        wound so that their normals point out of the material)."""
        occ = self._occ
        explorer = occ.TopExp_Explorer(self.shape, occ.TopAbs_FACE)
        while explorer.More():
            face = occ.TopoDS.Face(explorer.Current())
            explorer.Next()
            location = occ.TopLoc_Location()
            triangulation = occ.BRep_Tool.Triangulation_s(face, location)
            if triangulation is None or triangulation.NbTriangles() == 0:
                continue
            nodes = np.array(
                [triangulation.Node(i).Coord() for i in range(1, triangulation.NbNodes() + 1)],
                dtype=np.float64,
            )
            corners = np.array(
                [triangulation.Triangle(i).Get() for i in range(1, triangulation.NbTriangles() + 1)],
                dtype=np.int64,
            )
            corners -= 1
            transform = location.Transformation()
            flip = face.Orientation() == occ.TopAbs_REVERSED
            if transform.Form() != occ.gp_Identity:
                matrix = np.array([[transform.Value(r, c) for c in range(1, 5)] for r in range(1, 4)])
                nodes = nodes @ matrix[:, :3].T + matrix[:, 3]
                flip ^= bool(transform.IsNegative())
            if flip:
                corners = corners[:, [0, 2, 1]]
            yield nodes, corners


def _normal(occ: Any, surface: Any, face: Any, edge: Any, parameter: float) -> Any:
    """The outward unit normal of ``face`` (whose surface is ``surface``) at ``parameter`` of
    ``edge``, or None where the surface has none (a cone's apex)."""
    uv = occ.BRepAdaptor_Curve2d(edge, face).Value(parameter)
    point, du, dv = occ.gp_Pnt(), occ.gp_Vec(), occ.gp_Vec()
    surface.D1(uv.X(), uv.Y(), point, du, dv)
    normal = du.Crossed(dv)
    if normal.Magnitude() <= 1e-12 * max(du.Magnitude() * dv.Magnitude(), 1e-300):
        return None
    normal.Normalize()
    if face.Orientation() == occ.TopAbs_REVERSED:
        normal.Reverse()
    return normal


_SURFACE_NAMES: Final = {
    "GeomAbs_Plane": "plane",
    "GeomAbs_Cylinder": "cylinder",
    "GeomAbs_Cone": "cone",
    "GeomAbs_Sphere": "sphere",
    "GeomAbs_Torus": "torus",
    "GeomAbs_BezierSurface": "bspline",
    "GeomAbs_BSplineSurface": "bspline",
    "GeomAbs_SurfaceOfRevolution": "revolution",
    "GeomAbs_SurfaceOfExtrusion": "extrusion",
    "GeomAbs_OffsetSurface": "offset",
}
