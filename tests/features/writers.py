"""Tiny writers that turn vertices and faces into file bytes, for round trips and fixtures.

They are deliberately independent of the readers (``struct`` and string formatting, no
shared code), so a bug in a reader cannot be mirrored by the writer that feeds it. Faces are
sequences of vertex indices (0-based) and may be polygons where the format allows them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Points = Sequence[Sequence[float]] | npt.NDArray[np.floating]
Polygons = Sequence[Sequence[int]] | npt.NDArray[np.integer]

_PLY_TYPES = {"f4": "float", "f8": "double", "u1": "uchar", "i1": "char", "u2": "ushort", "i2": "short"}
_PLY_TYPES |= {"u4": "uint", "i4": "int"}
_STRUCT = {"f4": "f", "f8": "d", "u1": "B", "i1": "b", "u2": "H", "i2": "h", "u4": "I", "i4": "i"}


def _triangles(vertices: Points, faces: Polygons) -> list[list[list[float]]]:
    points = [[float(c) for c in vertex] for vertex in vertices]
    corners: list[list[list[float]]] = []
    for polygon in faces:
        face = [int(i) for i in polygon]
        corners.extend(
            [points[face[0]], points[face[k]], points[face[k + 1]]] for k in range(1, len(face) - 1)
        )
    return corners


def binary_stl(
    vertices: Points, faces: Polygons, header: bytes = b"cadmetrics test", count: int | None = None
) -> bytes:
    """Binary STL (polygons are fanned). ``count`` overrides the declared triangle count."""
    triangles = _triangles(vertices, faces)
    out = [header.ljust(80, b" ")[:80], struct.pack("<I", len(triangles) if count is None else count)]
    for a, b, c in triangles:
        out.append(struct.pack("<12fH", 0.0, 0.0, 0.0, *a, *b, *c, 0))
    return b"".join(out)


def ascii_stl(vertices: Points, faces: Polygons, name: str = "part", newline: str = "\n") -> bytes:
    """ASCII STL (polygons are fanned); ``repr`` keeps every float exact."""
    lines = [f"solid {name}"]
    for triangle in _triangles(vertices, faces):
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += [f"      vertex {x!r} {y!r} {z!r}" for x, y, z in triangle]
        lines += ["    endloop", "  endfacet"]
    lines.append(f"endsolid {name}")
    return (newline.join(lines) + newline).encode()


def obj(vertices: Points, faces: Polygons, style: str = "plain", negative: bool = False) -> bytes:
    """OBJ with polygon faces. ``style``: ``plain`` (``f 1 2 3``), ``slashes`` (``f 1/1/1``),
    ``normals`` (``f 1//1``); ``negative`` writes each face right after its last vertex with
    indices counted back from there (a file that only relative indices can read)."""

    def corner(index: int) -> str:
        return {"plain": f"{index}", "slashes": f"{index}/{abs(index)}/1", "normals": f"{index}//1"}[style]

    lines = ["# written by tests/features/writers.py", "o part"]
    points = [[float(c) for c in vertex] for vertex in vertices]
    if not negative:
        lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in points]
        lines += ["vn 0 0 1", "vt 0 0"]
        lines += ["f " + " ".join(corner(int(i) + 1) for i in face) for face in faces]
        return ("\n".join(lines) + "\n").encode()
    written = 0
    lines += ["vn 0 0 1", "vt 0 0"]
    for face in faces:
        needed = max(int(i) for i in face) + 1
        while written < needed:
            x, y, z = points[written]
            lines.append(f"v {x!r} {y!r} {z!r}")
            written += 1
        lines.append("f " + " ".join(corner(int(i) - written) for i in face))
    return ("\n".join(lines) + "\n").encode()


def _ply_header(
    fmt: str,
    vertices: int,
    faces: int,
    vertex_type: str,
    count_type: str,
    index_type: str,
    extra_vertex: bool,
    extra_element: bool,
) -> bytes:
    lines = ["ply", f"format {fmt} 1.0", "comment written by tests/features/writers.py"]
    if extra_element:
        lines += ["element material 2", "property uchar red", "property list uchar float coefficients"]
    lines.append(f"element vertex {vertices}")
    lines += [f"property {_PLY_TYPES[vertex_type]} {axis}" for axis in ("x", "y", "z")]
    if extra_vertex:
        lines += ["property float confidence", "property uchar red"]
    lines += [
        f"element face {faces}",
        f"property list {_PLY_TYPES[count_type]} {_PLY_TYPES[index_type]} vertex_indices",
    ]
    if extra_vertex:
        lines += ["property list uchar float texcoord", "property int flags"]
    if extra_element:
        lines += ["element edge 1", "property int vertex1", "property int vertex2"]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode()


def ascii_ply(
    vertices: Points, faces: Polygons, extra_properties: bool = False, extra_elements: bool = False
) -> bytes:
    """ASCII PLY; ``extra_properties`` adds per-vertex and per-face properties (a list among
    them), ``extra_elements`` adds elements before and after the mesh that must be skipped."""
    points = [[float(c) for c in vertex] for vertex in vertices]
    header = _ply_header("ascii", len(points), len(faces), "f8", "u1", "i4", extra_properties, extra_elements)
    lines = []
    if extra_elements:
        lines += ["1 2 0.5 0.25", "7 0"]
    for x, y, z in points:
        lines.append(f"{x!r} {y!r} {z!r}" + (" 0.5 200" if extra_properties else ""))
    for face in faces:
        line = f"{len(face)} " + " ".join(str(int(i)) for i in face)
        lines.append(line + (" 2 0.25 0.75 -3" if extra_properties else ""))
    if extra_elements:
        lines.append("0 1")
    return header + ("\n".join(lines) + "\n").encode()


def binary_ply(
    vertices: Points,
    faces: Polygons,
    *,
    byte_order: str = "<",
    vertex_type: str = "f4",
    count_type: str = "u1",
    index_type: str = "i4",
    extra_properties: bool = False,
    extra_elements: bool = False,
) -> bytes:
    """Binary PLY (``byte_order`` ``<`` or ``>``) with the given numpy type codes."""
    fmt = "binary_little_endian" if byte_order == "<" else "binary_big_endian"
    points = [[float(c) for c in vertex] for vertex in vertices]
    header = _ply_header(
        fmt, len(points), len(faces), vertex_type, count_type, index_type, extra_properties, extra_elements
    )
    out = [header]
    o = byte_order
    if extra_elements:
        out.append(struct.pack(f"{o}BBff", 1, 2, 0.5, 0.25))
        out.append(struct.pack(f"{o}BB", 7, 0))
    for point in points:
        out.append(struct.pack(f"{o}3{_STRUCT[vertex_type]}", *point))
        if extra_properties:
            out.append(struct.pack(f"{o}fB", 0.5, 200))
    for face in faces:
        indices = [int(i) for i in face]
        out.append(
            struct.pack(
                f"{o}{_STRUCT[count_type]}{len(indices)}{_STRUCT[index_type]}", len(indices), *indices
            )
        )
        if extra_properties:
            out.append(struct.pack(f"{o}B2fi", 2, 0.25, 0.75, -3))
    if extra_elements:
        out.append(struct.pack(f"{o}ii", 0, 1))
    return b"".join(out)
