"""The small vectorised text tools the mesh readers share: splitting text into lines and
numbers with numpy, fan triangulation, error construction. The formats differ in syntax, not
in how numbers are pulled out of bytes quickly and safely.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.mesh import FloatArray, IndexArray

ByteArray = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]

STL_HEADER: Final = 84  # 80 header bytes and the uint32 triangle count
_STL_RECORD: Final = 50  # normal, three corners (12 float32) and a uint16 attribute
_BINARY_BYTES: Final = bytes([*range(9), *range(14, 26), *range(27, 32), 127])
_TEXT_BYTES: Final = bytes(b for b in range(256) if b not in _BINARY_BYTES)


def looks_binary(head: bytes) -> bool:
    """True when ``head`` holds a byte no text file has (NUL, most C0 controls, DEL)."""
    return bool(head.translate(None, _TEXT_BYTES))


def binary_stl_size_matches(data: bytes) -> bool:
    """True when the size of ``data`` is what its binary STL triangle count says.

    Up to 49 trailing bytes (less than one triangle: padding some exporters add) are allowed.
    """
    if len(data) < STL_HEADER:
        return False
    count = int.from_bytes(data[80:84], "little")
    expected = STL_HEADER + _STL_RECORD * count
    return expected <= len(data) < expected + _STL_RECORD


def input_error(source: str, fmt: str, reason: str, problem: str) -> FeatureInputError:
    """The error every reader raises: ``"<source>: <problem>"`` with the contract's reason."""
    return FeatureInputError(f"{source}: {problem}", reason=reason, format=fmt)


def line_number(data: bytes, offset: int) -> int:
    """The 1-based line holding byte ``offset``; only used to word an error."""
    return data.count(b"\n", 0, offset) + 1


def preview(line: bytes, limit: int = 60) -> str:
    """A short printable excerpt of ``line`` for an error message."""
    text = line.strip().decode("latin-1")
    return text if len(text) <= limit else text[:limit] + "..."


def whitespace_mask(chars: ByteArray) -> BoolArray:
    """Which bytes separate tokens: ASCII whitespace and the other control bytes.

    One comparison instead of a table lookup (several times faster on large files). A control
    byte that is not whitespace is never part of a number, so counting it as a separator only
    moves the error to the number parser, which rejects it.
    """
    mask: BoolArray = chars <= 32
    return mask


def tokens_per_line(buf: bytes) -> IndexArray:
    """How many whitespace-separated tokens each line of ``buf`` holds, without parsing them.

    There are ``buf.count(b"\\n") + 1`` lines (the last one empty when ``buf`` ends with a
    newline). Computed with numpy over the bytes, so a million lines cost no Python loop.
    """
    chars = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(chars == 10)
    solid = ~whitespace_mask(chars)
    begins = solid.copy()
    begins[1:] &= ~solid[:-1]
    starts = np.flatnonzero(begins)
    counts: IndexArray = np.bincount(np.searchsorted(newlines, starts), minlength=len(newlines) + 1).astype(
        np.int64
    )
    return counts


class BadNumber(Exception):
    """A line of a number table holds something that is not a number."""

    def __init__(self, line: int, text: bytes) -> None:
        super().__init__(f"line {line}: {preview(text)!r}")
        self.line = line  # 0-based index of the line within the parsed buffer
        self.text = text


def parse_numbers(buf: bytes, expected: int) -> FloatArray:
    """Every number in ``buf`` (whitespace-separated), which must hold ``expected`` tokens.

    ``np.fromstring`` with a separator parses decimal text in C; anything it cannot read, or a
    token count that does not match, raises :class:`BadNumber` naming the first bad line.
    """
    try:
        values: FloatArray = np.fromstring(buf, dtype=np.float64, sep=" ")
    except ValueError:
        values = np.empty(0, dtype=np.float64)
        expected = -1
    if len(values) == expected:
        return values
    for index, line in enumerate(buf.split(b"\n")):
        try:
            if len(np.fromstring(line, dtype=np.float64, sep=" ")) == len(line.split()):
                continue
        except ValueError:
            pass
        raise BadNumber(index, line)
    raise BadNumber(0, buf[:60])  # unreachable in practice: every line parsed on its own


def parse_integers(buf: bytes, expected: int) -> IndexArray | None:
    """Every token of ``buf`` as int64 when all ``expected`` of them are plain decimal integers
    (an optional ``-`` and at most 18 digits), else None so the caller parses them as numbers.

    Face indices are most of an OBJ or ASCII PLY file; reading them digit column by digit
    column in numpy is several times faster than the general float parser.
    """
    chars = np.frombuffer(buf, dtype=np.uint8)
    digits = (chars - 48) < 10  # wraps around below "0"
    minus = chars == 45
    solid = chars > 32
    if not (digits | minus | ~solid).all():
        return None
    edges = np.diff(solid.view(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    if len(starts) != expected:
        return None
    ends = np.flatnonzero(edges == -1)
    negative = minus[starts]
    first = starts + negative
    lengths = ends - first
    if len(starts) and (lengths.min() < 1 or lengths.max() > 18 or int(minus.sum()) != int(negative.sum())):
        return None
    values = np.zeros(len(starts), dtype=np.int64)
    for column in range(int(lengths.max()) if len(starts) else 0):
        longer = np.flatnonzero(lengths > column)
        values[longer] = values[longer] * 10 + (chars[first[longer] + column] - 48)
    values[negative] *= -1
    return values


def gather_lines(chars: ByteArray, starts: IndexArray, stops: IndexArray) -> bytes:
    """Concatenate the byte ranges ``[starts[i], stops[i])`` (sorted, disjoint) in one pass."""
    bounds = np.empty(2 * len(starts) + 2, dtype=np.int64)
    bounds[0] = 0
    bounds[1:-1:2] = starts
    bounds[2:-1:2] = stops
    bounds[-1] = len(chars)
    inside = np.zeros(len(bounds) - 1, dtype=np.bool_)
    inside[1::2] = True
    keep = np.repeat(inside, np.diff(bounds))
    return chars[keep].tobytes()


def integral_indices(values: FloatArray) -> tuple[IndexArray, int]:
    """``values`` as int64 and the position of the first value that is not an integer (or -1)."""
    whole = np.isfinite(values) & (np.abs(values) < 2.0**62)
    whole[whole] = values[whole] == np.trunc(values[whole])
    if not whole.all():
        return np.zeros(0, dtype=np.int64), int(np.argmin(whole))
    return values.astype(np.int64), -1


def fan_triangles(counts: IndexArray, flat: IndexArray) -> IndexArray:
    """Triangulate polygons as fans: ``counts[i]`` (>= 3) corners each, concatenated in ``flat``.

    A polygon ``a b c d`` becomes ``a b c`` and ``a c d``, the usual reading of a convex face;
    all in numpy, with a plain reshape when every polygon is already a triangle.
    """
    if len(counts) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if (counts == 3).all():
        return flat.reshape(-1, 3)
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    per_polygon = counts - 2
    polygon = np.repeat(np.arange(len(counts)), per_polygon)
    first_triangle = np.cumsum(per_polygon) - per_polygon
    local = np.arange(len(polygon)) - first_triangle[polygon]
    base = starts[polygon]
    triangles: IndexArray = np.stack([flat[base], flat[base + local + 1], flat[base + local + 2]], axis=1)
    return triangles


def fan_size(counts: IndexArray) -> int:
    """How many triangles :func:`fan_triangles` makes of polygons with ``counts`` corners."""
    return int(np.sum(counts - 2, dtype=np.int64)) if len(counts) else 0
