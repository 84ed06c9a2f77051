"""The geometry behind the features: areas, volume, inertia, hull, topology, D2, patches.

Everything is vectorised over faces. Sums over faces are fixed blocks finished with
``math.fsum`` (see :data:`SUM_BLOCK`), so a total does not depend on how a numpy build
happens to split a reduction; no BLAS or LAPACK call is made (their results can differ in
the last bits between machines), and the 3x3 eigenvalues come from Jacobi rotations, which
use only IEEE-exact operations. Together with seeded sampling from a stable bit generator,
this is what lets the same mesh give the same vector everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from cadmetrics.errors import MissingDependency
from cadmetrics.features.mesh import FloatArray, IndexArray, Mesh

#: Sums run in fixed blocks of this many values, each added in the one order numpy's loop
#: has, and the block sums are then added with ``math.fsum`` (correctly rounded). The result
#: depends on the values only, not on how a build happens to split a long reduction, and
#: costs a fraction of handing every value to ``fsum``.
SUM_BLOCK = 128


def exact_sum(values: npt.NDArray[np.float64]) -> float:
    """A sum that is the same on every machine for the same values (see :data:`SUM_BLOCK`)."""
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    if len(flat) <= SUM_BLOCK:
        return math.fsum(flat.tolist())
    return math.fsum(np.add.reduceat(flat, np.arange(0, len(flat), SUM_BLOCK)).tolist())


def column_sums(values: FloatArray) -> list[float]:
    return [exact_sum(values[:, column]) for column in range(values.shape[1])]


class Geometry:
    """Measurements of one mesh, each computed once, when first asked for."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        # centred on the vertex mean: products of large coordinates lose precision otherwise,
        # and every measurement here is translation-invariant or corrected for the offset
        self.origin = mesh.vertices.mean(axis=0)
        self.corners = (mesh.vertices - self.origin)[mesh.faces]

    # -- faces ------------------------------------------------------------------------------

    @functools.cached_property
    def cross(self) -> FloatArray:
        """Per face, the cross product of two edges: twice the area, along the normal."""
        c = self.corners
        return np.cross(c[:, 1] - c[:, 0], c[:, 2] - c[:, 0])

    @functools.cached_property
    def face_areas(self) -> FloatArray:
        cross = self.cross
        return 0.5 * np.sqrt(cross[:, 0] ** 2 + cross[:, 1] ** 2 + cross[:, 2] ** 2)

    @functools.cached_property
    def area(self) -> float:
        return exact_sum(self.face_areas)

    @functools.cached_property
    def unit_normals(self) -> FloatArray:
        """Face normals of length 1; zero for faces without area."""
        lengths = 2.0 * self.face_areas
        safe = np.where(lengths > 0, lengths, 1.0)
        return self.cross / safe[:, None]

    # -- topology ---------------------------------------------------------------------------

    @functools.cached_property
    def _edges(self) -> tuple[IndexArray, npt.NDArray[np.bool_]]:
        """Every face's three edges as keys sorted, with where each run of equal keys starts.

        The edge of corners ``(i, j)`` is the key ``min * n + max``; sorting the keys once
        gives the distinct edges (runs), how many faces share each (run lengths) and which
        faces meet across each (neighbours within a run)."""
        faces = self.mesh.faces
        count = len(self.mesh.vertices)
        first = faces[:, [0, 1, 2]].ravel()
        second = faces[:, [1, 2, 0]].ravel()
        keys = np.minimum(first, second) * count + np.maximum(first, second)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.empty(len(sorted_keys), dtype=bool)
        starts[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
        return order, starts

    @functools.cached_property
    def edge_face_counts(self) -> IndexArray:
        """How many faces share each distinct edge."""
        _order, starts = self._edges
        positions = np.flatnonzero(starts)
        return np.diff(np.append(positions, len(starts)))

    @functools.cached_property
    def _used(self) -> npt.NDArray[np.bool_]:
        used = np.zeros(len(self.mesh.vertices), dtype=bool)
        used[self.mesh.faces.ravel()] = True
        return used

    @functools.cached_property
    def used_vertices(self) -> FloatArray:
        """The vertices at least one face uses, in order."""
        return self.mesh.vertices[self._used]

    @functools.cached_property
    def vertex_count(self) -> int:
        """Vertices that at least one face uses."""
        return int(self._used.sum())

    @functools.cached_property
    def euler_characteristic(self) -> int:
        return self.vertex_count - len(self.edge_face_counts) + len(self.mesh.faces)

    @functools.cached_property
    def watertight(self) -> bool:
        """Every edge shared by exactly two faces: the mesh bounds a volume."""
        return bool((self.edge_face_counts == 2).all())

    @functools.cached_property
    def winding_consistent(self) -> bool:
        """The two faces on each edge they share walk it in opposite directions: neighbours
        agree on which side is out (edges of three or more faces have no such answer and are
        left out). On a closed mesh the signed volume then does not depend on the origin."""
        order, starts = self._edges
        run_ends = np.append(np.flatnonzero(starts)[1:], len(starts))
        run_starts = np.flatnonzero(starts)
        pairs = run_starts[run_ends - run_starts == 2]
        tails = self.mesh.faces.ravel()  # edge k of face f starts at corner k of face f
        return bool((tails[order[pairs]] != tails[order[pairs + 1]]).all())

    @functools.cached_property
    def encloses_volume(self) -> bool:
        """Watertight and consistently wound: a surface that bounds a solid."""
        return self.watertight and self.winding_consistent

    @functools.cached_property
    def face_adjacency(self) -> IndexArray:
        """Pairs of faces that share an edge, ``(k, 2)``."""
        order, starts = self._edges
        same_as_next = ~starts[1:]
        face_of_edge = order // 3
        return np.stack([face_of_edge[:-1][same_as_next], face_of_edge[1:][same_as_next]], axis=1)

    # -- size -------------------------------------------------------------------------------

    @functools.cached_property
    def extents(self) -> tuple[float, float, float]:
        """Axis-aligned bounding-box extents of the used vertices, largest first."""
        used = self.used_vertices
        spans = sorted((float(v) for v in used.max(axis=0) - used.min(axis=0)), reverse=True)
        return spans[0], spans[1], spans[2]

    @functools.cached_property
    def _solid_integrals(self) -> list[float]:
        """Volume integrals of 1, x, y, z, x², y², z², xy, yz, zx over the enclosed solid, by
        the divergence theorem over the faces (Eberly, "Polyhedral Mass Properties")."""
        c = self.corners
        x0, y0, z0 = c[:, 0, 0], c[:, 0, 1], c[:, 0, 2]
        x1, y1, z1 = c[:, 1, 0], c[:, 1, 1], c[:, 1, 2]
        x2, y2, z2 = c[:, 2, 0], c[:, 2, 1], c[:, 2, 2]
        d0, d1, d2 = self.cross[:, 0], self.cross[:, 1], self.cross[:, 2]

        def sub(w0: FloatArray, w1: FloatArray, w2: FloatArray) -> tuple[FloatArray, ...]:
            temp0 = w0 + w1
            f1 = temp0 + w2
            temp1 = w0 * w0
            temp2 = temp1 + w1 * temp0
            f2 = temp2 + w2 * f1
            f3 = w0 * temp1 + w1 * temp2 + w2 * f2
            g0 = f2 + w0 * (f1 + w0)
            g1 = f2 + w1 * (f1 + w1)
            g2 = f2 + w2 * (f1 + w2)
            return f1, f2, f3, g0, g1, g2

        f1x, f2x, f3x, g0x, g1x, g2x = sub(x0, x1, x2)
        _f1y, f2y, f3y, g0y, g1y, g2y = sub(y0, y1, y2)
        _f1z, f2z, f3z, g0z, g1z, g2z = sub(z0, z1, z2)
        terms = np.stack(
            [
                d0 * f1x,
                d0 * f2x,
                d1 * f2y,
                d2 * f2z,
                d0 * f3x,
                d1 * f3y,
                d2 * f3z,
                d0 * (y0 * g0x + y1 * g1x + y2 * g2x),
                d1 * (z0 * g0y + z1 * g1y + z2 * g2y),
                d2 * (x0 * g0z + x1 * g1z + x2 * g2z),
            ],
            axis=1,
        )
        sums = column_sums(terms)
        scale = [6.0, 24.0, 24.0, 24.0, 60.0, 60.0, 60.0, 120.0, 120.0, 120.0]
        return [total / divisor for total, divisor in zip(sums, scale, strict=True)]

    @functools.cached_property
    def signed_volume(self) -> float:
        """Positive when the faces wind counter-clockwise seen from outside."""
        return self._solid_integrals[0]

    @functools.cached_property
    def volume(self) -> float:
        """The enclosed volume, or 0 when the mesh bounds no solid (open, or wound both ways)."""
        return abs(self.signed_volume) if self.encloses_volume else 0.0

    @functools.cached_property
    def solid_inertia(self) -> FloatArray:
        """Inertia tensor of the enclosed solid (density 1) about its centre of mass."""
        i = self._solid_integrals
        mass = i[0]
        if mass == 0:
            return np.zeros((3, 3))
        cx, cy, cz = i[1] / mass, i[2] / mass, i[3] / mass
        xx = i[5] + i[6] - mass * (cy * cy + cz * cz)
        yy = i[4] + i[6] - mass * (cz * cz + cx * cx)
        zz = i[4] + i[5] - mass * (cx * cx + cy * cy)
        xy = -(i[7] - mass * cx * cy)
        yz = -(i[8] - mass * cy * cz)
        zx = -(i[9] - mass * cz * cx)
        tensor = np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])
        return tensor if mass > 0 else -tensor  # inward-wound faces give a negative mass

    @functools.cached_property
    def shell_inertia(self) -> FloatArray:
        """Inertia tensor of the surface as a thin shell (area density 1) about its centroid:
        the meaningful one for a mesh that encloses nothing."""
        c, areas = self.corners, self.face_areas
        total = self.area
        vertex_sum = c.sum(axis=1)  # (m, 3)
        centroid = np.array(column_sums(areas[:, None] * vertex_sum / 3.0)) / total
        # ∫ r rᵀ dA over a triangle = A/12 (Σ vᵢvᵢᵀ + (Σvᵢ)(Σvᵢ)ᵀ)
        second = np.empty((3, 3))
        for row in range(3):
            for col in range(row, 3):
                per_face = (c[:, :, row] * c[:, :, col]).sum(axis=1) + vertex_sum[:, row] * vertex_sum[:, col]
                second[row, col] = second[col, row] = exact_sum(areas * per_face) / 12.0
        second -= total * np.outer(centroid, centroid)
        tensor: FloatArray = np.trace(second) * np.eye(3) - second
        return tensor

    @functools.cached_property
    def principal_moments(self) -> tuple[float, float, float]:
        """Principal moments of inertia, smallest first: of the solid when the mesh bounds
        one, of the shell otherwise."""
        tensor = self.solid_inertia if self.volume > 0 else self.shell_inertia
        return symmetric_eigenvalues(tensor)

    @functools.cached_property
    def hull_volume(self) -> float:
        """Volume of the convex hull of the used vertices; 0 for a flat part."""
        try:
            from scipy.spatial import ConvexHull, QhullError
        except ImportError:
            raise MissingDependency(
                f"{self.mesh.source}: shape features (v2 and later) need scipy, a dependency of "
                "cadmetrics that is missing: pip install scipy",
                format=self.mesh.format,
            ) from None
        points = self.used_vertices - self.origin
        try:
            return float(ConvexHull(_hull_candidates(points, ConvexHull, QhullError)).volume)
        except (QhullError, ValueError):  # coplanar or too few points: no volume
            return 0.0

    # -- sampling ---------------------------------------------------------------------------

    @functools.cached_property
    def topology_seed(self) -> int:
        """A seed from the mesh's connectivity: the same for the same content, and unchanged
        by rigid motions and scaling, so the D2 sample of a moved part is the same sample."""
        digest = hashlib.sha256(self.mesh.faces.astype("<i8").tobytes())  # the same on any byte order
        digest.update(len(self.mesh.vertices).to_bytes(8, "little"))
        return int.from_bytes(digest.digest()[:16], "little")

    def d2_histogram(self, pairs: int, bins: int, upper: float) -> FloatArray:
        """The D2 shape distribution (Osada et al. 2002): distances between pairs of points
        drawn uniformly from the surface, divided by their mean, as shares of ``bins`` bins
        over ``[0, upper)`` (the last bin also holds anything beyond)."""
        uniforms = uniform_doubles(self.topology_seed, 6 * pairs).reshape(3, 2 * pairs)
        cumulative = np.cumsum(self.face_areas)
        chosen = np.searchsorted(cumulative, uniforms[0] * cumulative[-1], side="right")
        chosen = np.minimum(chosen, len(cumulative) - 1)
        corners = self.corners[chosen]
        root = np.sqrt(uniforms[1])
        weights = np.stack([1.0 - root, root * (1.0 - uniforms[2]), root * uniforms[2]], axis=1)
        points = (corners * weights[:, :, None]).sum(axis=1)
        return d2_shares(points[:pairs], points[pairs:], bins, upper)

    # -- patches ----------------------------------------------------------------------------

    def patch_areas(self, angle_degrees: float) -> FloatArray:
        """Areas of the surface patches: regions of faces connected across edges where the
        normals turn by less than ``angle_degrees`` (either winding: real files are not
        always consistently oriented). Faces without area belong to no patch."""
        try:
            from scipy.sparse import coo_array
            from scipy.sparse.csgraph import connected_components
        except ImportError:
            raise MissingDependency(
                f"{self.mesh.source}: surface patches (v4) need scipy, a dependency of cadmetrics "
                "that is missing: pip install scipy",
                format=self.mesh.format,
            ) from None
        normals, areas = self.unit_normals, self.face_areas
        pairs = self.face_adjacency
        first, second = normals[pairs[:, 0]], normals[pairs[:, 1]]
        cosines = np.abs(first[:, 0] * second[:, 0] + first[:, 1] * second[:, 1] + first[:, 2] * second[:, 2])
        smooth = pairs[cosines >= math.cos(math.radians(angle_degrees))]
        faces = len(self.mesh.faces)
        graph = coo_array(
            (np.ones(len(smooth), dtype=np.int8), (smooth[:, 0], smooth[:, 1])), shape=(faces, faces)
        )
        _count, labels = connected_components(graph, directed=False)
        per_patch: FloatArray = np.bincount(labels, weights=areas).astype(np.float64)
        return per_patch[per_patch > 0]


#: Directions whose extreme points span the polytope that :func:`_hull_candidates` uses.
_DIRECTIONS = np.array(
    [(x, y, z) for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0, 1) if (x, y, z) != (0, 0, 0)],
    dtype=np.float64,
)


def _hull_candidates(points: FloatArray, hull: Any, error: type[Exception]) -> FloatArray:
    """``points`` less those strictly inside the hull of their extreme points along 26
    directions (Akl and Toussaint's filter): such points cannot be on the convex hull, and
    qhull's time grows with what it is given. A part's holes, pockets and inner faces go."""
    if len(points) < 1000:
        return points
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    extremes = np.unique([int(np.argmax(x * dx + y * dy + z * dz)) for dx, dy, dz in _DIRECTIONS])
    try:
        polytope = hull(points[extremes])
    except (error, ValueError):
        return points
    normals, offsets = polytope.equations[:, :3], polytope.equations[:, 3]
    margin = 1e-9 * float(np.abs(points).max())
    inside = np.ones(len(points), dtype=bool)
    for (nx, ny, nz), offset in zip(normals.tolist(), offsets.tolist(), strict=True):
        inside &= x * nx + y * ny + z * nz + offset < -margin
    inside[extremes] = False
    return points[~inside]


def d2_shares(first: FloatArray, second: FloatArray, bins: int, upper: float) -> FloatArray:
    """The distances between ``first[i]`` and ``second[i]``, divided by their mean, as
    shares of ``bins`` bins over ``[0, upper)`` (the last bin also holds anything beyond)."""
    delta = first - second
    distances = np.sqrt(delta[:, 0] ** 2 + delta[:, 1] ** 2 + delta[:, 2] ** 2)
    pairs = len(distances)
    mean = exact_sum(distances) / pairs
    if mean == 0:
        histogram = np.zeros(bins)
        histogram[0] = 1.0
        return histogram
    index = np.minimum((distances / mean * (bins / upper)).astype(np.int64), bins - 1)
    shares: FloatArray = np.bincount(index, minlength=bins).astype(np.float64) / pairs
    return shares


def segment_d2(segments: FloatArray, seed: int, pairs: int, bins: int, upper: float) -> FloatArray:
    """The D2 distribution of a drawing: points drawn uniformly along its segments
    ``(k, 2, 3)`` (by length), the same way as on a mesh's surface."""
    if len(segments) == 0:
        return np.zeros(bins)
    uniforms = uniform_doubles(seed, 4 * pairs).reshape(2, 2 * pairs)
    delta = segments[:, 1] - segments[:, 0]
    lengths = np.sqrt(delta[:, 0] ** 2 + delta[:, 1] ** 2 + delta[:, 2] ** 2)
    cumulative = np.cumsum(lengths)
    if cumulative[-1] == 0:
        return np.zeros(bins)
    chosen = np.minimum(
        np.searchsorted(cumulative, uniforms[0] * cumulative[-1], side="right"), len(cumulative) - 1
    )
    points = segments[chosen, 0] + uniforms[1][:, None] * delta[chosen]
    return d2_shares(points[:pairs], points[pairs:], bins, upper)


def curve_moments(segments: FloatArray) -> tuple[float, float, float]:
    """Principal second moments, per unit length, of curves given as segments ``(k, 2, 3)``
    about their centroid, smallest first: rotation-invariant measures of their spread
    (their sum is the squared radius of gyration). Zeros when nothing is drawn."""
    if len(segments) == 0:
        return 0.0, 0.0, 0.0
    start, end = segments[:, 0], segments[:, 1]
    delta = end - start
    lengths = np.sqrt(delta[:, 0] ** 2 + delta[:, 1] ** 2 + delta[:, 2] ** 2)
    total = exact_sum(lengths)
    if total == 0:
        return 0.0, 0.0, 0.0
    centroid = np.array(column_sums(lengths[:, None] * (start + end) / 2.0)) / total
    a, b = start - centroid, end - centroid
    second = np.empty((3, 3))
    for row in range(
        3
    ):  # over a segment, ∫ r_i r_j ds = L (a_i a_j / 3 + (a_i b_j + b_i a_j) / 6 + b_i b_j / 3)
        for col in range(row, 3):
            same = (a[:, row] * a[:, col] + b[:, row] * b[:, col]) / 3.0
            mixed = (a[:, row] * b[:, col] + b[:, row] * a[:, col]) / 6.0
            second[row, col] = second[col, row] = exact_sum(lengths * (same + mixed)) / total
    return symmetric_eigenvalues(second)


def uniform_doubles(seed: int, count: int) -> FloatArray:
    """``count`` doubles in [0, 1) from PCG64's raw output: the raw stream is fixed by the
    algorithm, unlike the conversions a numpy release may improve."""
    raw = np.random.PCG64(seed).random_raw(count)
    return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def symmetric_eigenvalues(matrix: FloatArray) -> tuple[float, float, float]:
    """Eigenvalues of a symmetric 3x3 matrix, smallest first, by cyclic Jacobi rotations.

    Only +, -, *, / and sqrt, all correctly rounded in IEEE arithmetic, so the result is the
    same bits on every machine (no maths library, no LAPACK); and, unlike the closed form,
    a small eigenvalue of an elongated part keeps its relative accuracy.

    The matrix is first divided by the power of two nearest its largest entry (exact in binary
    floating point, so the result's bits do not change): the squares the iteration takes then
    stay finite, even for a part whose moments are near the largest double (3e38 float32
    coordinates give moments of 1e192, whose squares would overflow)."""
    largest = max(abs(float(v)) for v in np.asarray(matrix).ravel())
    if largest == 0.0:
        return 0.0, 0.0, 0.0
    exponent = math.frexp(largest)[1] if math.isfinite(largest) else 0
    a = [[math.ldexp(float(v), -exponent) for v in row] for row in matrix]
    for _sweep in range(64):
        off = a[0][1] ** 2 + a[0][2] ** 2 + a[1][2] ** 2
        if off == 0.0 or off <= 1e-40 * (a[0][0] ** 2 + a[1][1] ** 2 + a[2][2] ** 2):
            break
        for p, q in ((0, 1), (0, 2), (1, 2)):
            if a[p][q] == 0.0:
                continue
            theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q])
            t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + math.sqrt(theta * theta + 1.0))
            c = 1.0 / math.sqrt(t * t + 1.0)
            s = t * c
            for k in range(3):  # columns p and q of A J
                akp, akq = a[k][p], a[k][q]
                a[k][p], a[k][q] = c * akp - s * akq, s * akp + c * akq
            for k in range(3):  # rows p and q of J^T (A J)
                apk, aqk = a[p][k], a[q][k]
                a[p][k], a[q][k] = c * apk - s * aqk, s * apk + c * aqk
    low, mid, high = sorted(math.ldexp(a[k][k], exponent) for k in range(3))
    return low, mid, high


def entropy_bits(shares: FloatArray) -> float:
    """Shannon entropy, in bits, of a distribution given as non-negative shares."""
    total = exact_sum(shares)
    if total <= 0:
        return 0.0
    # math.log2 rather than numpy's: the C library's log2 is the same everywhere, where
    # numpy's vectorised one may differ in the last bit from one CPU to the next
    terms = [share / total * math.log2(share / total) for share in shares.tolist() if share > 0]
    return max(0.0, -math.fsum(terms))
