"""Generated primitives with exact answers: the project's own fixtures, beside the real files.

Each returns vertices and outward-wound triangles that share their vertices, so the meshes
are watertight. Polygonal approximations (cylinder, sphere, torus) have exact answers of
their own, given here for the polygon, not for the smooth shape.
"""

from __future__ import annotations

import math

import numpy as np

from cadmetrics.features.mesh import FloatArray, IndexArray, Mesh


def box(a: float = 1.0, b: float = 2.0, c: float = 3.0) -> Mesh:
    vertices = np.array([[x, y, z] for x in (0.0, a) for y in (0.0, b) for z in (0.0, c)], dtype=np.float64)
    # corners indexed as x*4 + y*2 + z; each side as two triangles wound outwards
    quads = [
        (0, 1, 3, 2),  # x = 0
        (4, 6, 7, 5),  # x = a
        (0, 4, 5, 1),  # y = 0
        (2, 3, 7, 6),  # y = b
        (0, 2, 6, 4),  # z = 0
        (1, 5, 7, 3),  # z = c
    ]
    faces = [(q[0], q[1], q[2]) for q in quads] + [(q[0], q[2], q[3]) for q in quads]
    return Mesh.from_arrays(vertices, faces, source="box")


def box_inertia(a: float, b: float, c: float) -> tuple[float, float, float]:
    """Principal moments of a solid box of density 1, smallest first."""
    mass = a * b * c
    return tuple(
        sorted((mass * (b * b + c * c) / 12, mass * (a * a + c * c) / 12, mass * (a * a + b * b) / 12))
    )  # type: ignore[return-value]


def cylinder(radius: float = 1.0, height: float = 2.0, segments: int = 64) -> Mesh:
    angles = 2 * math.pi * np.arange(segments) / segments
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    bottom = np.column_stack([ring, np.zeros(segments)])
    top = np.column_stack([ring, np.full(segments, height)])
    vertices = np.vstack([bottom, top, [[0.0, 0.0, 0.0]], [[0.0, 0.0, height]]])
    low_centre, high_centre = 2 * segments, 2 * segments + 1
    faces: list[tuple[int, int, int]] = []
    for i in range(segments):
        j = (i + 1) % segments
        faces += [(i, j, segments + j), (i, segments + j, segments + i)]  # side
        faces += [(low_centre, j, i), (high_centre, segments + i, segments + j)]  # caps
    return Mesh.from_arrays(vertices, faces, source="cylinder")


def cylinder_answers(radius: float, height: float, segments: int) -> tuple[float, float]:
    """Area and volume of the polygonal prism."""
    cap = 0.5 * segments * radius * radius * math.sin(2 * math.pi / segments)
    side = segments * 2 * radius * math.sin(math.pi / segments) * height
    return 2 * cap + side, cap * height


def sphere(radius: float = 1.0, subdivisions: int = 3) -> Mesh:
    """An icosphere: an icosahedron subdivided, its vertices pushed onto the sphere."""
    t = (1 + math.sqrt(5)) / 2
    points = [
        (-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0),
        (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
        (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1),
    ]  # fmt: skip
    triangles = [
        (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11),
        (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8),
        (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
        (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1),
    ]  # fmt: skip
    vertices = [np.array(p, dtype=np.float64) / np.linalg.norm(p) for p in points]
    for _ in range(subdivisions):
        triangles = _subdivided(triangles, vertices)
    return Mesh.from_arrays(np.array(vertices) * radius, triangles, source="sphere")


def _subdivided(
    triangles: list[tuple[int, int, int]], vertices: list[FloatArray]
) -> list[tuple[int, int, int]]:
    """Each triangle split in four, the new vertices (appended) pushed onto the unit sphere."""
    midpoints: dict[tuple[int, int], int] = {}

    def middle(i: int, j: int) -> int:
        key = (min(i, j), max(i, j))
        if key not in midpoints:
            point = vertices[i] + vertices[j]
            vertices.append(point / np.linalg.norm(point))
            midpoints[key] = len(vertices) - 1
        return midpoints[key]

    refined = []
    for a, b, c in triangles:
        ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
        refined += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
    return refined


def torus(major: float = 3.0, minor: float = 1.0, rings: int = 48, sides: int = 24) -> Mesh:
    u = 2 * math.pi * np.arange(rings) / rings
    v = 2 * math.pi * np.arange(sides) / sides
    uu, vv = np.meshgrid(u, v, indexing="ij")
    vertices = np.stack(
        [
            (major + minor * np.cos(vv)) * np.cos(uu),
            (major + minor * np.cos(vv)) * np.sin(uu),
            minor * np.sin(vv),
        ],
        axis=-1,
    ).reshape(-1, 3)
    faces = []
    for i in range(rings):
        for j in range(sides):
            a, b = i * sides + j, ((i + 1) % rings) * sides + j
            c, d = ((i + 1) % rings) * sides + (j + 1) % sides, i * sides + (j + 1) % sides
            faces += [(a, b, c), (a, c, d)]
    return Mesh.from_arrays(vertices, faces, source="torus")


def moved(mesh: Mesh, rotation: FloatArray, translation: FloatArray, scale: float = 1.0) -> Mesh:
    """The same mesh (same faces, in the same order), rotated, scaled and moved."""
    vertices = scale * (mesh.vertices @ rotation.T) + translation
    return Mesh.from_arrays(vertices, mesh.faces, source=f"{mesh.source} moved")


def rotation_matrix(x: float, y: float, z: float) -> FloatArray:
    """The rotation by the Euler angles ``x``, ``y``, ``z`` (radians)."""
    cx, sx, cy, sy, cz, sz = math.cos(x), math.sin(x), math.cos(y), math.sin(y), math.cos(z), math.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    result: FloatArray = rz @ ry @ rx
    return result


def open_faces(mesh: Mesh, drop: int = 1) -> Mesh:
    """``mesh`` with its first ``drop`` faces removed: no longer watertight."""
    faces: IndexArray = mesh.faces[drop:]
    return Mesh.from_arrays(mesh.vertices, faces, source=f"{mesh.source} opened")
