"""STL, binary and ASCII, read with numpy and welded into a mesh with shared vertices.

Binary STL is a fixed 50-byte record per triangle, so the whole body is one
``np.frombuffer`` with a structured dtype once the declared count has been checked against the
file size. ASCII STL is found by its keywords with numpy over the bytes and its coordinates
parsed in one C call. STL stores every triangle's corners separately: corners that are the
same point are welded (:func:`cadmetrics.features.weld.weld`) so that edges are shared, which
watertightness and the Euler characteristic depend on.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from cadmetrics.features.mesh import FloatArray, IndexArray, Mesh
from cadmetrics.features.parsing import (
    BadNumber,
    ByteArray,
    binary_stl_size_matches,
    gather_lines,
    input_error,
    line_number,
    looks_binary,
    parse_numbers,
    tokens_per_line,
    whitespace_mask,
)
from cadmetrics.features.weld import weld

__all__ = ["read_stl"]

_HEADER: Final = 84
_RECORD: Final = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])


def read_stl(data: bytes, *, source: str, max_faces: int) -> Mesh:
    """Read a binary or ASCII STL. Binary is chosen when the size matches the declared count,
    or when the bytes are not text; ASCII when the text starts with ``solid``."""
    if binary_stl_size_matches(data):
        return _read_binary(data, source, max_faces)
    text = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:5].lower() == b"solid" and not looks_binary(data[:4096]):
        return _read_ascii(data, source, max_faces)
    return _read_binary(data, source, max_faces)


def _read_binary(data: bytes, source: str, max_faces: int) -> Mesh:
    if len(data) < _HEADER:
        raise input_error(
            source, "stl", "truncated", f"binary STL is {len(data)} bytes, shorter than its 84-byte header"
        )
    count = int.from_bytes(data[80:84], "little")
    expected = _HEADER + _RECORD.itemsize * count
    if len(data) < expected:
        whole = (len(data) - _HEADER) // _RECORD.itemsize
        raise input_error(
            source,
            "stl",
            "truncated",
            f"binary STL header declares {count} triangles ({expected} bytes) but the file has "
            f"{len(data)} bytes: it is truncated, only {whole} of its triangles are complete",
        )
    extra = len(data) - expected
    if extra >= _RECORD.itemsize:
        raise input_error(
            source,
            "stl",
            "malformed",
            f"binary STL header declares {count} triangles ({expected} bytes) but the file has "
            f"{extra} more bytes: the count is wrong or data was appended",
        )
    if count == 0:
        raise input_error(source, "stl", "empty", "binary STL with no triangles (its count is 0)")
    if count > max_faces:
        raise input_error(
            source,
            "stl",
            "too_large",
            f"binary STL has {count} triangles, more than the limit of {max_faces}",
        )
    records = np.frombuffer(data, dtype=_RECORD, count=count, offset=_HEADER)
    corners = records["corners"].reshape(-1, 3)
    vertices, faces = weld(corners)
    bad = _first_non_finite(vertices, faces)
    if bad >= 0:
        raise input_error(
            source,
            "stl",
            "non_finite",
            f"triangle {bad} (byte offset {_HEADER + _RECORD.itemsize * bad}) has a NaN or infinite "
            f"coordinate: {vertices[faces[bad]].tolist()}",
        )
    return Mesh.from_arrays(vertices, faces, source=source, format="stl")


def _first_non_finite(vertices: FloatArray, faces: IndexArray) -> int:
    """The first face with a NaN or infinite corner, or -1. Checked on the welded vertices,
    which are several times fewer than the corners."""
    broken = np.asarray(~np.isfinite(vertices).all(axis=1))
    if not broken.any():
        return -1
    return int(np.argmax(broken[faces].any(axis=1)))


def _whole_words(chars: ByteArray, blank: npt.NDArray[np.bool_], word: bytes) -> IndexArray:
    """Offsets where ``word`` stands as a whole whitespace-delimited token."""
    size = len(chars)
    if size < len(word):
        return np.zeros(0, dtype=np.int64)
    found = np.flatnonzero(chars[: size - len(word) + 1] == word[0])
    for shift, byte in enumerate(word[1:], start=1):
        found = found[chars[found + shift] == byte]
    before = (found == 0) | blank[np.maximum(found - 1, 0)]
    after_at = found + len(word)
    after = (after_at == size) | blank[np.minimum(after_at, size - 1)]
    positions: IndexArray = found[before & after].astype(np.int64)
    return positions


def _read_ascii(data: bytes, source: str, max_faces: int) -> Mesh:
    lower = data.lower()  # keywords in any case; "1E3" parses the same as "1e3"
    chars = np.frombuffer(lower, dtype=np.uint8)
    blank = whitespace_mask(chars)
    vertex = _whole_words(chars, blank, b"vertex")
    endloop = _whole_words(chars, blank, b"endloop")
    if len(vertex) == 0:
        raise input_error(source, "stl", "empty", "ASCII STL with no facets")

    def where(offset: int) -> str:
        return f"line {line_number(data, offset)}"

    # Every vertex must belong to a loop closed by endloop, three to a loop.
    loop = np.searchsorted(endloop, vertex)
    if loop[-1] == len(endloop):
        raise input_error(
            source,
            "stl",
            "truncated",
            f"ASCII STL ends inside a facet ({where(int(vertex[-1]))} has no endloop)",
        )
    per_loop = np.bincount(loop, minlength=len(endloop))
    if (per_loop != 3).any():
        bad = int(np.argmax(per_loop != 3))
        raise input_error(
            source,
            "stl",
            "malformed",
            f"facet {bad} has {per_loop[bad]} vertices, not 3 (its loop ends at {where(int(endloop[bad]))})",
        )
    if len(endloop) > max_faces:
        raise input_error(
            source,
            "stl",
            "too_large",
            f"ASCII STL has {len(endloop)} facets, more than the limit of {max_faces}",
        )
    last_end = lower.rfind(b"endsolid")
    if last_end < endloop[-1]:
        raise input_error(
            source,
            "stl",
            "truncated",
            f"ASCII STL has no endsolid after its last facet ({where(int(endloop[-1]))}): the file was cut",
        )
    # Coordinates are the text between each "vertex" and the next vertex or endloop.
    stops = np.empty_like(vertex)
    stops[:-1] = vertex[1:]
    stops[2::3] = endloop
    # Each span starts with the blank after "vertex": make it a newline so that every
    # coordinate triple is a line of its own (line 0 of the text is then empty).
    spans = np.frombuffer(gather_lines(chars, vertex + 6, stops), dtype=np.uint8).copy()
    offsets = np.zeros(len(vertex), dtype=np.int64)
    np.cumsum((stops - vertex - 6)[:-1], out=offsets[1:])
    spans[spans == 10] = 32
    spans[offsets] = 10
    text = spans.tobytes()
    counts = tokens_per_line(text)[1:]
    if (counts != 3).any():
        bad = int(np.argmax(counts != 3))
        raise input_error(
            source,
            "stl",
            "malformed",
            f"vertex at {where(int(vertex[bad]))} has {counts[bad]} coordinates, not 3",
        )
    try:
        values = parse_numbers(text, 3 * len(vertex))
    except BadNumber as exc:
        raise input_error(
            source,
            "stl",
            "malformed",
            f"vertex at {where(int(vertex[max(exc.line - 1, 0)]))} has a coordinate that is not a number: "
            f"{exc.text.strip().decode('latin-1')!r}",
        ) from None
    vertices, faces = weld(values.reshape(-1, 3))
    bad = _first_non_finite(vertices, faces)
    if bad >= 0:
        raise input_error(
            source,
            "stl",
            "non_finite",
            f"facet {bad} (vertex at {where(int(vertex[3 * bad]))}) has a NaN or infinite coordinate: "
            f"{vertices[faces[bad]].tolist()}",
        )
    return Mesh.from_arrays(vertices, faces, source=source, format="stl")
