"""PLY (ASCII, binary little- and big-endian) read with numpy, element by element.

The header is small and read line by line; the body never is. Every element's declared count
is checked against the bytes (binary) or the lines (ASCII) actually present before anything
is allocated for it, so a header that lies about its size costs nothing. Binary elements of
fixed size are one ``np.frombuffer`` with a structured dtype; an element with list properties
is first read with the layout of its first record (all triangles, or all quads) and checked
(every count column must hold the counts assumed); only when the counts vary are the records
walked one by one to find where each begins, after which the lists are gathered by numpy.
Elements other than ``vertex`` and ``face`` are parsed only to be skipped. Vertices repeated
for every normal, colour or texture seam are welded
(:func:`cadmetrics.features.weld.weld_indexed`) so that the faces around them share edges.
"""

from __future__ import annotations

import numpy as np

from cadmetrics.features.mesh import FloatArray, IndexArray, Mesh
from cadmetrics.features.parsing import (
    fan_size,
    fan_triangles,
    input_error,
    integral_indices,
)
from cadmetrics.features.ply_ascii import AsciiBody
from cadmetrics.features.ply_binary import BinaryBody
from cadmetrics.features.ply_header import FACE_LISTS, Element, Faces, Property, parse_header
from cadmetrics.features.weld import weld_indexed

__all__ = ["read_ply"]


def read_ply(data: bytes, *, source: str, max_faces: int) -> Mesh:
    """Read the ``vertex`` and ``face`` elements of a PLY file into a :class:`Mesh`."""
    if not data.startswith((b"ply\n", b"ply\r\n")):
        raise input_error(source, "ply", "malformed", "a PLY file starts with the line 'ply'")
    header = parse_header(data, source)
    elements = {element.name: element for element in reversed(header.elements)}  # first wins
    vertex = elements.get("vertex")
    face = elements.get("face")
    if not header.elements:
        raise input_error(source, "ply", "empty", "PLY header declares no elements")
    if vertex is None or vertex.count == 0:
        raise input_error(source, "ply", "empty", "PLY file with no vertices")
    if face is None or face.count == 0:
        raise input_error(source, "ply", "empty", f"is a point cloud with no faces ({vertex.count} vertices)")
    if face.count > max_faces:
        raise input_error(
            source, "ply", "too_large", f"declares {face.count} faces, more than the limit of {max_faces}"
        )
    columns = [_property(vertex, axis, source) for axis in ("x", "y", "z")]
    if any(prop.count_type for prop in columns):
        raise input_error(source, "ply", "malformed", "vertex coordinates x, y, z must be scalar properties")
    face_list = _face_list(face, source)
    reader: AsciiBody | BinaryBody = (
        AsciiBody(data, header, source) if header.format == "ascii" else BinaryBody(data, header, source)
    )
    points: FloatArray | None = None
    faces: Faces | None = None
    for element in header.elements:
        if element is vertex:
            points = reader.vertices(element)
        elif element is face:
            faces = reader.faces(element, face_list)
        else:
            reader.skip(element)  # parsed to the end: a file cut in a later element is truncated
    assert points is not None
    assert faces is not None
    vertices, triangles = weld_indexed(points, _triangles(faces, len(points), source, max_faces))
    return Mesh.from_arrays(vertices, triangles, source=source, format="ply")


def _property(element: Element, name: str, source: str) -> Property:
    for prop in element.properties:
        if prop.name == name:
            return prop
    raise input_error(source, "ply", "malformed", f"element {element.name!r} has no property {name!r}")


def _face_list(face: Element, source: str) -> Property:
    lists = [prop for prop in face.properties if prop.count_type is not None]
    for prop in lists:
        if prop.name in FACE_LISTS:
            return prop
    if len(lists) == 1:
        return lists[0]
    raise input_error(
        source, "ply", "malformed", "element 'face' has no list property 'vertex_indices' or 'vertex_index'"
    )


def _triangles(faces: Faces, vertices: int, source: str, max_faces: int) -> IndexArray:
    counts = faces.counts
    short = counts < 3
    if short.any():
        bad = int(np.argmax(short))
        raise input_error(
            source, "ply", "malformed", f"face {bad} has {counts[bad]} vertices; a face needs at least 3"
        )
    triangles = fan_size(counts)
    if triangles > max_faces:
        raise input_error(
            source,
            "ply",
            "too_large",
            f"faces make {triangles} triangles, more than the limit of {max_faces}",
        )
    if faces.indices.dtype.kind == "f":
        indices, bad_value = integral_indices(faces.indices.astype(np.float64))
        if bad_value >= 0:
            face = int(np.searchsorted(np.cumsum(counts), bad_value, side="right"))
            raise input_error(
                source,
                "ply",
                "malformed",
                f"face {face} has a vertex index that is not an integer: {faces.indices[bad_value]!r}",
            )
    else:
        indices = faces.indices.astype(np.int64)
    wrong = (indices < 0) | (indices >= vertices)
    if wrong.any():
        bad = int(np.argmax(wrong))
        face = int(np.searchsorted(np.cumsum(counts), bad, side="right"))
        raise input_error(
            source,
            "ply",
            "malformed",
            f"face {face} refers to vertex {indices[bad]}, but there are {vertices} vertices",
        )
    return fan_triangles(counts, indices)
