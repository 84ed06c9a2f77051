"""Wavefront OBJ: ``v`` and ``f`` records, read with numpy over the whole file at once.

Lines are classified by their first bytes with numpy, the ``v`` and ``f`` lines gathered into
two buffers and parsed by one C call each, so a million faces cost no Python loop. Faces keep
only their vertex index (``a``, ``a/b``, ``a//c`` and ``a/b/c`` all name vertex ``a``),
negative indices count back from the last vertex defined before the face, and polygons
become triangle fans. Normals, texture coordinates, groups, materials, lines, points and
free-form statements are ignored. Line continuations (a trailing backslash) are not supported.
Exporters repeat a vertex for every normal or texture seam it lies on; those copies are welded
(:func:`cadmetrics.features.weld.weld_indexed`) so that the faces around them share edges.
"""

from __future__ import annotations

import re
from typing import Final

import numpy as np

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.mesh import FloatArray, IndexArray, Mesh
from cadmetrics.features.parsing import (
    BadNumber,
    fan_size,
    fan_triangles,
    gather_lines,
    input_error,
    integral_indices,
    parse_integers,
    parse_numbers,
    preview,
    tokens_per_line,
    whitespace_mask,
)
from cadmetrics.features.weld import weld_indexed

__all__ = ["read_obj"]

_LEADING_BLANKS: Final = re.compile(rb"^[ \t]+", re.MULTILINE)
_COMMENT: Final = re.compile(rb"#[^\n]*")
_SLASHES: Final = re.compile(rb"/\S*")  # "12/4/7" -> "12": only the vertex index matters


def read_obj(data: bytes, *, source: str, max_faces: int) -> Mesh:
    """Read the vertices and faces of an OBJ file into a :class:`Mesh`."""
    lines = _Lines(data, source)
    vertex_lines = lines.starting_with(ord("v"))
    face_lines = lines.starting_with(ord("f"))
    if len(face_lines) == 0:
        if len(vertex_lines):
            raise input_error(
                source, "obj", "empty", f"is a point cloud with no faces ({len(vertex_lines)} vertices)"
            )
        raise input_error(source, "obj", "empty", "OBJ file with no vertices and no faces")
    if len(face_lines) > max_faces:
        raise input_error(
            source, "obj", "too_large", f"has {len(face_lines)} faces, more than the limit of {max_faces}"
        )
    vertices = lines.vertices(vertex_lines)
    faces = lines.faces(face_lines, vertex_lines, max_faces)
    vertices, faces = weld_indexed(vertices, faces)
    return Mesh.from_arrays(vertices, faces, source=source, format="obj")


class _Lines:
    """The lines of an OBJ file as byte ranges, classified and gathered with numpy."""

    def __init__(self, data: bytes, source: str) -> None:
        self.source = source
        if b"\n " in data or b"\n\t" in data or data[:1].isspace():
            data = _LEADING_BLANKS.sub(b"", data)  # line numbers are kept: only blanks go
        self.text = data if data.endswith(b"\n") else data + b"\n"
        self.chars = np.frombuffer(self.text, dtype=np.uint8)
        self.ends = np.flatnonzero(self.chars == 10)  # every line ends with a newline now
        self.starts = np.zeros(len(self.ends), dtype=np.int64)
        self.starts[1:] = self.ends[:-1] + 1

    def starting_with(self, keyword: int) -> IndexArray:
        """Lines whose statement is the one-letter ``keyword`` (``v`` but not ``vn``)."""
        following = self.chars[np.minimum(self.starts + 1, len(self.chars) - 1)]
        one_letter = whitespace_mask(following) & (self.starts < self.ends)
        return np.flatnonzero((self.chars[self.starts] == keyword) & one_letter)

    def refuse(self, reason: str, line: int, problem: str) -> FeatureInputError:
        excerpt = preview(self.text[self.starts[line] : self.ends[line]])
        return input_error(self.source, "obj", reason, f"line {line + 1}: {problem}: {excerpt!r}")

    def text_of(self, lines: IndexArray, strip: re.Pattern[bytes] | None = None) -> tuple[bytes, IndexArray]:
        """The text of ``lines`` after their keyword, one line each, without comments (and
        without what ``strip`` matches), and how many tokens each line holds."""
        buf = gather_lines(self.chars, self.starts[lines] + 1, self.ends[lines] + 1)
        if b"#" in buf:
            buf = _COMMENT.sub(b"", buf)
        if strip is not None:
            buf = strip.sub(b"", buf)
        return buf, tokens_per_line(buf)[:-1]  # the buffer ends with a newline

    def numbers(self, buf: bytes, counts: IndexArray, lines: IndexArray, what: str) -> FloatArray:
        """Every number of ``buf``; a token that is not one is an error naming its line."""
        try:
            return parse_numbers(buf, int(counts.sum()))
        except BadNumber as exc:
            raise self.refuse(
                "malformed", int(lines[exc.line]), f"{what} has something that is not a number"
            ) from None

    def vertices(self, lines: IndexArray) -> FloatArray:
        """``(n, 3)`` coordinates: the first three numbers of each ``v`` line (a ``w`` or a
        vertex colour may follow them)."""
        if len(lines) == 0:
            return np.zeros((0, 3), dtype=np.float64)
        buf, counts = self.text_of(lines)
        values = self.numbers(buf, counts, lines, "a vertex")
        short = counts < 3
        if short.any():
            bad = int(np.argmax(short))
            raise self.refuse(
                "malformed", int(lines[bad]), f"a vertex needs 3 coordinates, not {counts[bad]}"
            )
        if (counts == counts[0]).all():
            points = values.reshape(len(counts), int(counts[0]))[:, :3]
        else:
            offsets = np.cumsum(counts) - counts
            points = values[offsets[:, None] + np.arange(3)]
        finite = np.isfinite(points).all(axis=1)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise self.refuse(
                "non_finite", int(lines[bad]), f"vertex {bad + 1} has a NaN or infinite coordinate"
            )
        return np.ascontiguousarray(points)

    def faces(self, lines: IndexArray, vertex_lines: IndexArray, max_faces: int) -> IndexArray:
        """Triangles ``(m, 3)`` of 0-based vertex indices from the ``f`` lines."""
        buf, counts = self.text_of(lines, _SLASHES)
        short = counts < 3
        if short.any():
            bad = int(np.argmax(short))
            raise self.refuse(
                "malformed", int(lines[bad]), f"a face needs at least 3 vertices, not {counts[bad]}"
            )
        triangles = fan_size(counts)
        if triangles > max_faces:
            raise input_error(
                self.source,
                "obj",
                "too_large",
                f"faces make {triangles} triangles, more than the limit of {max_faces}",
            )
        face_of_value = np.repeat(np.arange(len(counts)), counts)
        indices = parse_integers(buf, int(counts.sum()))
        if indices is None:  # not all plain integers: parse them as numbers to find the culprit
            indices, bad_value = integral_indices(self.numbers(buf, counts, lines, "a face"))
            if bad_value >= 0:
                line = int(lines[face_of_value[bad_value]])
                raise self.refuse("malformed", line, "a vertex index is not an integer")
        # A negative index counts back from the vertices defined so far; a positive one is 1-based.
        defined_before = np.searchsorted(vertex_lines, lines)[face_of_value]
        resolved = np.where(indices < 0, defined_before + indices, indices - 1)
        wrong = (indices == 0) | (resolved < 0) | (resolved >= len(vertex_lines))
        if wrong.any():
            bad = int(np.argmax(wrong))
            known = int(defined_before[bad]) if indices[bad] < 0 else len(vertex_lines)
            line = int(lines[face_of_value[bad]])
            raise self.refuse(
                "malformed", line, f"vertex index {indices[bad]} names none of the {known} vertices"
            )
        return fan_triangles(counts, resolved)
