"""Read a CAD mesh file into :class:`Mesh`, choosing the reader by content, never by name.

File names lie (``part.obj`` holding a binary STL, ``.STL`` in capitals, no extension at all)
and binary STL headers often begin with the word ``solid`` that marks ASCII STL, so
:func:`sniff` looks only at the bytes. :func:`read_mesh` then hands them to the reader of that
format and turns every failure into a :class:`FeatureInputError` whose message starts with the
source name and whose ``reason`` is one of the contract's error reasons.

The readers share the tools of :mod:`cadmetrics.features.parsing`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from cadmetrics.errors import FeatureInputError
from cadmetrics.features import obj, ply, stl
from cadmetrics.features.mesh import Mesh
from cadmetrics.features.parsing import STL_HEADER, binary_stl_size_matches, input_error, looks_binary

__all__ = ["DEFAULT_MAX_FACES", "FORMATS", "read_mesh", "sniff"]

FORMATS: Final = ("stl", "obj", "ply", "dxf", "step", "iges")
DEFAULT_MAX_FACES: Final = 50_000_000


_SNIFF_BYTES: Final = 4096
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
        if len(data) >= STL_HEADER:
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
    readers: dict[str, Callable[..., Mesh]] = {"stl": stl.read_stl, "obj": obj.read_obj, "ply": ply.read_ply}
    try:
        return readers[fmt](data, source=source, max_faces=max_faces)
    except FeatureInputError:
        raise
    except MemoryError:
        raise input_error(source, fmt, "too_large", "does not fit in memory") from None
    except (ValueError, TypeError, IndexError, OverflowError, UnicodeError) as exc:
        raise input_error(source, fmt, "malformed", f"could not be read as {fmt.upper()}: {exc}") from None


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
