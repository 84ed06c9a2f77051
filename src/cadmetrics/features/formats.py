"""Read a CAD mesh file into :class:`Mesh`, choosing the reader by content, never by name.

File names lie (``part.obj`` holding a binary STL, ``.STL`` in capitals, no extension at all)
and binary STL headers often begin with the word ``solid`` that marks ASCII STL, so
:func:`sniff` looks only at the bytes. :func:`read_mesh` then hands them to the reader of that
format and turns every failure into a :class:`FeatureInputError` whose message starts with the
source name and whose ``reason`` is one of the contract's error reasons.

The second half of this module holds the small vectorised text tools the readers share
(splitting text into lines and numbers with numpy, fan triangulation, error construction):
the formats differ in syntax, not in how numbers are pulled out of bytes quickly and safely.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.mesh import FloatArray, IndexArray, Mesh

__all__ = ["DEFAULT_MAX_FACES", "FORMATS", "read_mesh", "sniff"]

FORMATS: Final = ("stl", "obj", "ply", "dxf", "step", "iges")
DEFAULT_MAX_FACES: Final = 50_000_000

ByteArray = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]

_SNIFF_BYTES: Final = 4096
_STL_HEADER: Final = 84  # 80 header bytes and the uint32 triangle count
_STL_RECORD: Final = 50  # normal, three corners (12 float32) and a uint16 attribute
_BINARY_DXF: Final = b"AutoCAD Binary DXF\r\n\x1a\x00"
_STEP: Final = b"ISO-10303-21;"
# An IGES file is 80-column records whose column 73 names the section: the first record is of
# the start (S) section, or of the global (G) one when the start section is empty; columns 74
# to 80 hold its sequence number.
_IGES: Final = re.compile(rb"\A[^\r\n]{72}[SG][ 0-9]{6}1\r?\n")
# A DXF opens with group-code/value line pairs, possibly after 999 comment pairs.
_DXF: Final = re.compile(rb"\A(?:[ \t]*999[ \t]*\r?\n[^\n]*\n\s*)*[ \t]*0[ \t]*\r?\n[ \t]*(?:SECTION|EOF)\b")
# Every statement of the OBJ specification (geometry, grouping, display and free-form).
_OBJ_KEYWORDS: Final = frozenset(
    b"v vt vn vp f l p o g s mtllib usemtl cstype deg bmat step curv curv2 surf parm trim hole "
    b"scrv sp end con mg lod usemap maplib bevel c_interp d_interp shadow_obj trace_obj ctech stech "
    b"call csh".split()
)
# Formats a CAD service is often sent by mistake: name them instead of calling them garbage.
_KNOWN_MAGIC: Final = (
    (b"PK\x03\x04", "a ZIP archive (3MF files are ZIP archives too); export STL, OBJ or PLY"),
    (b"\x1f\x8b", "gzip-compressed data; decompress it first"),
    (b"glTF", "a binary glTF (GLB) file, which is not supported; export STL, OBJ or PLY"),
    (b"\xd0\xcf\x11\xe0", "an OLE compound file (a native CAD part such as SolidWorks); export STL"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\xff\xfe", "UTF-16 text; save it as ASCII or UTF-8"),
    (b"\xfe\xff", "UTF-16 text; save it as ASCII or UTF-8"),
)
_DWG: Final = re.compile(rb"\AAC10[0-9][0-9]")
# Bytes that never occur in a text file (NUL and the C0 controls other than \t \n \v \f \r and
# the old DOS end-of-file mark 0x1A).
_BINARY_BYTES: Final = bytes([*range(9), *range(14, 26), *range(27, 32), 127])
_TEXT_BYTES: Final = bytes(b for b in range(256) if b not in _BINARY_BYTES)


def sniff(data: bytes, *, source: str) -> str:
    """Name the format of ``data`` (``stl``, ``obj``, ``ply``, ``dxf``, ``step`` or ``iges``) by
    content.

    Raises :class:`FeatureInputError` with reason ``empty`` for no bytes (or only whitespace)
    and ``unsupported_format`` for anything else. The file name is never consulted: ``source``
    only labels the error.
    """
    if not data.strip():
        raise input_error(source, "unknown", "empty", f"the file is empty ({len(data)} bytes)")
    # A size that matches the binary STL count exactly is the strongest evidence there is, and
    # it must come before the text checks because binary STL headers often begin with "solid".
    if binary_stl_size_matches(data):
        return "stl"
    if data.startswith(_BINARY_DXF):
        return "dxf"
    if data.startswith((b"ply\n", b"ply\r\n")):
        return "ply"
    head = data[:_SNIFF_BYTES]
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(_STEP):
        return "step"
    if _IGES.match(head):
        return "iges"
    for magic, what in _KNOWN_MAGIC:
        if head.startswith(magic):
            raise _unsupported(source, f"is {what}")
    if _DWG.match(head):
        raise _unsupported(source, "is a DWG drawing, which is not supported; save it as DXF")
    if looks_binary(head):
        if len(data) >= _STL_HEADER:
            return "stl"  # the STL reader says how its size disagrees with its header
        raise _unsupported(source, f"is {len(data)} bytes of binary data in no supported format")
    if text[:5].lower() == b"solid" and (len(text) == 5 or text[5:6].isspace()):
        return "stl"
    if _DXF.match(text):
        return "dxf"
    if _looks_like_obj(text, complete=len(data) <= _SNIFF_BYTES):
        return "obj"
    raise _unsupported(source, f"is not a supported format: it starts with {head[:24]!r}")


def read_mesh(data: bytes, *, source: str = "<bytes>", max_faces: int = DEFAULT_MAX_FACES) -> Mesh:
    """Read ``data`` (an STL, OBJ or PLY file) into a checked :class:`Mesh`.

    ``max_faces`` bounds the triangles a file may declare or produce (reason ``too_large``);
    every count a file declares is checked against the bytes actually present before anything
    is allocated for it. STEP, IGES and DXF are recognised so that their error can say what
    to do.
    """
    fmt = sniff(data, source=source)
    if fmt in ("step", "iges"):
        raise input_error(
            source,
            fmt,
            "unsupported_format",
            f"is a {fmt.upper()} file: a B-Rep, not a mesh; FeatureExtractor reads it (with the step "
            "extra), tessellating it for the mesh layouts",
        )
    if fmt == "dxf":
        raise input_error(
            source,
            "dxf",
            "unsupported_format",
            "is a DXF file: a DXF is a 2D drawing, read by the drawing reader, not a mesh",
        )
    from cadmetrics.features.obj import read_obj
    from cadmetrics.features.ply import read_ply
    from cadmetrics.features.stl import read_stl

    readers: dict[str, Callable[..., Mesh]] = {"stl": read_stl, "obj": read_obj, "ply": read_ply}
    try:
        return readers[fmt](data, source=source, max_faces=max_faces)
    except FeatureInputError:
        raise
    except MemoryError:
        raise input_error(source, fmt, "too_large", "does not fit in memory") from None
    except (ValueError, TypeError, IndexError, OverflowError, UnicodeError) as exc:
        raise input_error(source, fmt, "malformed", f"could not be read as {fmt.upper()}: {exc}") from None


def looks_binary(head: bytes) -> bool:
    """True when ``head`` holds a byte no text file has (NUL, most C0 controls, DEL)."""
    return bool(head.translate(None, _TEXT_BYTES))


def binary_stl_size_matches(data: bytes) -> bool:
    """True when the size of ``data`` is what its binary STL triangle count says.

    Up to 49 trailing bytes (less than one triangle: padding some exporters add) are allowed.
    """
    if len(data) < _STL_HEADER:
        return False
    count = int.from_bytes(data[80:84], "little")
    expected = _STL_HEADER + _STL_RECORD * count
    return expected <= len(data) < expected + _STL_RECORD


def _looks_like_obj(text: bytes, *, complete: bool) -> bool:
    lines = text.split(b"\n")
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the sample may end inside a line
    seen = False
    for line in lines:
        words = line.split(None, 1)
        if not words:
            continue
        if not (words[0].startswith(b"#") or words[0] in _OBJ_KEYWORDS):
            return False
        seen = True
    return seen


def _unsupported(source: str, problem: str) -> FeatureInputError:
    return input_error(source, "unknown", "unsupported_format", problem)


# --- shared reader tools -------------------------------------------------------------------


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
