"""A PLY file's header: its format and its elements, each a count of records of properties.

The header is small and read line by line; what it declares is checked against the body by
the readers (:mod:`cadmetrics.features.ply_ascii`, :mod:`cadmetrics.features.ply_binary`).
"""

from __future__ import annotations

from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.mesh import IndexArray
from cadmetrics.features.parsing import (
    input_error,
    preview,
)

TYPES: Final = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
FACE_LISTS: Final = ("vertex_indices", "vertex_index")
FORMATS: Final = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}


@attrs.frozen
class Property:
    """One property: a scalar of ``type`` or, when ``count_type`` is set, a list of them."""

    name: str
    type: str  # numpy type code without byte order: "u1", "f4", ...
    count_type: str | None = None


@attrs.frozen
class Element:
    """One element of the header: ``count`` records of ``properties``."""

    name: str
    count: int
    properties: tuple[Property, ...]
    line: int  # header line, for messages

    @property
    def fixed(self) -> bool:
        return all(prop.count_type is None for prop in self.properties)

    def min_size(self) -> int:
        """Bytes of a binary record whose lists are all empty: no record is smaller."""
        return sum(np.dtype(prop.count_type or prop.type).itemsize for prop in self.properties)


@attrs.frozen
class Header:
    format: str  # ascii, binary_little_endian or binary_big_endian
    elements: tuple[Element, ...]
    body: int  # offset of the first byte after end_header
    lines: int  # newlines up to the body, so body line i is file line lines + i + 1


@attrs.frozen
class Faces:
    """The face list: corners per face and the concatenated vertex indices."""

    counts: IndexArray
    indices: npt.NDArray[np.generic]


def parse_header(data: bytes, source: str) -> Header:
    end = data.find(b"\nend_header") + 1  # at the start of a line, not inside a comment
    if end == 0:
        raise input_error(
            source, "ply", "truncated", "PLY header has no end_header line: the file ends inside it"
        )
    newline = data.find(b"\n", end)
    body = len(data) if newline < 0 else newline + 1
    if data[end + len(b"end_header") : body].strip():
        raise input_error(source, "ply", "malformed", "PLY header line end_header is followed by other text")
    lines = data[:end].decode("latin-1").split("\n")
    fmt: str | None = None
    elements: list[Element] = []
    properties: list[Property] = []

    def refuse(number: int, problem: str) -> FeatureInputError:
        return input_error(source, "ply", "malformed", f"PLY header line {number}: {problem}")

    def close() -> None:
        if elements:
            elements[-1] = attrs.evolve(elements[-1], properties=tuple(properties))

    for number, line in enumerate(lines[1:], start=2):
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        keyword = words[0]
        if keyword == "format":
            if len(words) != 3 or words[1] not in FORMATS:
                raise refuse(number, f"unknown format {preview(line.encode('latin-1'))!r}")
            fmt = words[1]
        elif keyword == "element":
            if len(words) != 3 or not (words[2].isascii() and words[2].isdigit()):
                raise refuse(number, f"an element needs a name and a count: {line.strip()!r}")
            close()
            properties = []
            elements.append(Element(words[1], int(words[2]), (), number))
        elif keyword == "property":
            if not elements:
                raise refuse(number, "property before any element")
            if len(words) == 5 and words[1] == "list":
                count_type, item_type = TYPES.get(words[2]), TYPES.get(words[3])
                if count_type is None or item_type is None or count_type[0] == "f":
                    raise refuse(number, f"bad list types {words[2]!r} {words[3]!r}")
                properties.append(Property(words[4], item_type, count_type))
            elif len(words) == 3 and words[1] in TYPES:
                properties.append(Property(words[2], TYPES[words[1]]))
            else:
                raise refuse(number, f"bad property {line.strip()!r}")
        else:
            raise refuse(number, f"unknown keyword {keyword!r}")
    close()
    if fmt is None:
        raise input_error(source, "ply", "malformed", "PLY header has no format line")
    return Header(fmt, tuple(elements), body, data.count(b"\n", 0, body))


def listed_vertices(source: str) -> FeatureInputError:
    return input_error(
        source, "ply", "unsupported_format", "vertex element with list properties is not supported"
    )
