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

import struct
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.mesh import FloatArray, IndexArray, Mesh
from cadmetrics.features.parsing import (
    BadNumber,
    fan_size,
    fan_triangles,
    input_error,
    integral_indices,
    parse_integers,
    parse_numbers,
    preview,
    tokens_per_line,
)
from cadmetrics.features.weld import weld_indexed

__all__ = ["read_ply"]

_TYPES: Final = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_FORMATS: Final = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}
_FACE_LISTS: Final = ("vertex_indices", "vertex_index")
_GATHER_ITEMS: Final = 1 << 20  # list items gathered per numpy call after a walk (bounds memory)


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


def read_ply(data: bytes, *, source: str, max_faces: int) -> Mesh:
    """Read the ``vertex`` and ``face`` elements of a PLY file into a :class:`Mesh`."""
    if not data.startswith((b"ply\n", b"ply\r\n")):
        raise input_error(source, "ply", "malformed", "a PLY file starts with the line 'ply'")
    header = _header(data, source)
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
    reader: _AsciiBody | _BinaryBody
    if header.format == "ascii":
        reader = _AsciiBody(data, header, source)
    else:
        reader = _BinaryBody(data, header, source)
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
        if prop.name in _FACE_LISTS:
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


# --- header --------------------------------------------------------------------------------


def _header(data: bytes, source: str) -> Header:
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
            if len(words) != 3 or words[1] not in _FORMATS:
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
                count_type, item_type = _TYPES.get(words[2]), _TYPES.get(words[3])
                if count_type is None or item_type is None or count_type[0] == "f":
                    raise refuse(number, f"bad list types {words[2]!r} {words[3]!r}")
                properties.append(Property(words[4], item_type, count_type))
            elif len(words) == 3 and words[1] in _TYPES:
                properties.append(Property(words[2], _TYPES[words[1]]))
            else:
                raise refuse(number, f"bad property {line.strip()!r}")
        else:
            raise refuse(number, f"unknown keyword {keyword!r}")
    close()
    if fmt is None:
        raise input_error(source, "ply", "malformed", "PLY header has no format line")
    return Header(fmt, tuple(elements), body, data.count(b"\n", 0, body))


# --- ASCII body ----------------------------------------------------------------------------


class _AsciiBody:
    """One record per non-empty line. Each element needed is parsed on its own, in one call:
    the face indices by the integer parser, so only what is needed is parsed, and never twice."""

    def __init__(self, data: bytes, header: Header, source: str) -> None:
        self.source = source
        self.body = data[header.body :]
        per_line = tokens_per_line(self.body)
        self.lines = np.flatnonzero(per_line)  # body line of each record
        self.counts = per_line[self.lines]
        self.first_line = header.lines + 1
        records = 0
        for element in header.elements:
            if records + element.count > len(self.lines):
                raise input_error(
                    source,
                    "ply",
                    "truncated",
                    f"element {element.name!r} declares {element.count} records but the file has only "
                    f"{len(self.lines) - records} lines left for it",
                )
            records += element.count
        self.newlines = np.flatnonzero(np.frombuffer(self.body, dtype=np.uint8) == 10)
        self.record = 0

    def _take(
        self, element: Element, integers: bool
    ) -> tuple[FloatArray | IndexArray, IndexArray, IndexArray, IndexArray]:
        """The numbers of ``element``'s records, each record's offset into them and token count,
        and the body line of each record."""
        span = slice(self.record, self.record + element.count)
        self.record += element.count
        lines, counts = self.lines[span], self.counts[span]
        first, last = int(lines[0]), int(lines[-1])
        begin = int(self.newlines[first - 1]) + 1 if first else 0
        end = int(self.newlines[last]) if last < len(self.newlines) else len(self.body)
        text = self.body[begin:end]
        expected = int(counts.sum())
        values: FloatArray | IndexArray | None = parse_integers(text, expected) if integers else None
        if values is None:
            try:
                values = parse_numbers(text, expected)
            except BadNumber as exc:
                raise input_error(
                    self.source,
                    "ply",
                    "malformed",
                    f"line {self.first_line + first + exc.line}: {element.name} record has something that "
                    f"is not a number: {preview(exc.text)!r}",
                ) from None
        offsets: IndexArray = np.cumsum(counts) - counts
        return values, offsets, counts, lines

    def _refuse(self, element: Element, lines: IndexArray, index: int, problem: str) -> FeatureInputError:
        return input_error(
            self.source,
            "ply",
            "malformed",
            f"line {self.first_line + int(lines[index])}: {element.name} {index} {problem}",
        )

    def skip(self, element: Element) -> None:
        self.record += element.count

    def vertices(self, element: Element) -> FloatArray:
        if not element.fixed:
            raise _listed_vertices(self.source)
        values, offsets, counts, lines = self._take(element, integers=False)
        width = len(element.properties)
        short = counts < width
        if short.any():
            bad = int(np.argmax(short))
            raise self._refuse(element, lines, bad, f"has {counts[bad]} values, the header declares {width}")
        names = [prop.name for prop in element.properties]
        columns = [names.index(axis) for axis in ("x", "y", "z")]
        if (counts == width).all():
            table = values.reshape(element.count, width)[:, columns]
        else:  # values beyond the ones the header declares are ignored (VCGLIB writes some)
            table = values[offsets[:, None] + columns]
        # Round to the declared type, as a binary file of the same header would hold.
        points = np.empty((element.count, 3), dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            for axis, column in enumerate(columns):
                points[:, axis] = table[:, axis].astype(element.properties[column].type)
        return points

    def faces(self, element: Element, target: Property) -> Faces:
        values, offsets, counts, lines = self._take(element, integers=True)
        cursor = offsets.copy()
        ends = offsets + counts
        result: Faces | None = None
        for prop in element.properties:
            short = cursor >= ends
            if short.any():
                bad = int(np.argmax(short))
                raise self._refuse(element, lines, bad, f"ends before its property {prop.name!r}")
            if prop.count_type is None:
                cursor += 1
                continue
            column = values[cursor]
            if column.dtype == np.int64:
                sizes, bad = column.astype(np.int64), -1
            else:
                sizes, bad = integral_indices(column.astype(np.float64))
            if bad < 0 and (sizes < 0).any():
                bad = int(np.argmax(sizes < 0))
            if bad >= 0:
                raise self._refuse(element, lines, bad, f"has a bad list count {column[bad]!r}")
            starts = cursor + 1
            over = starts + sizes > ends
            if over.any():
                bad = int(np.argmax(over))
                raise self._refuse(
                    element,
                    lines,
                    bad,
                    f"list {prop.name!r} declares {sizes[bad]} values, more than its line holds",
                )
            if prop is target:
                first = np.cumsum(sizes) - sizes
                positions = np.repeat(starts - first, sizes) + np.arange(int(sizes.sum()))
                result = Faces(sizes, values[positions])
            cursor = starts + sizes
        # Values after the declared properties on a record's line are ignored (VCGLIB writes some).
        assert result is not None
        return result


# --- binary body ---------------------------------------------------------------------------


class _BinaryBody:
    """Records read straight from the buffer; counts checked against the bytes left first."""

    def __init__(self, data: bytes, header: Header, source: str) -> None:
        self.data = data
        self.source = source
        self.order = _FORMATS[header.format]
        self.position = header.body
        # The cheapest check first: no element can be smaller than its count of empty records.
        needed = header.body
        for element in header.elements:
            needed += element.count * element.min_size()
            if needed > len(data):
                raise input_error(
                    source,
                    "ply",
                    "truncated",
                    f"element {element.name!r} declares {element.count} records of at least "
                    f"{element.min_size()} bytes, more than the {len(data) - header.body} bytes of the body",
                )

    def _dtype(self, element: Element, counts: tuple[int, ...] = ()) -> np.dtype[np.void]:
        """The record layout of ``element`` when its lists hold ``counts`` items."""
        fields: list[tuple[str, str] | tuple[str, str, tuple[int]]] = []
        lists = iter(counts)
        for index, prop in enumerate(element.properties):
            if prop.count_type is None:
                fields.append((f"p{index}", self.order + prop.type))
                continue
            fields.append((f"n{index}", self.order + prop.count_type))
            size = next(lists)
            if size:
                fields.append((f"p{index}", self.order + prop.type, (size,)))
        return np.dtype(fields)

    def _fixed(self, element: Element) -> npt.NDArray[np.void]:
        layout = self._dtype(element)
        end = self.position + layout.itemsize * element.count
        if end > len(self.data):
            whole = (len(self.data) - self.position) // layout.itemsize
            raise self._truncated(element, whole, end)
        records = np.frombuffer(self.data, dtype=layout, count=element.count, offset=self.position)
        self.position += layout.itemsize * element.count
        return records

    def vertices(self, element: Element) -> FloatArray:
        if not element.fixed:
            raise _listed_vertices(self.source)
        records = self._fixed(element)
        names = [prop.name for prop in element.properties]
        points = np.empty((element.count, 3), dtype=np.float64)
        with np.errstate(invalid="ignore"):  # NaN is refused by Mesh, not warned about here
            for column, axis in enumerate(("x", "y", "z")):
                points[:, column] = records[f"p{names.index(axis)}"]
        return points

    def skip(self, element: Element) -> None:
        if element.fixed:
            self._fixed(element)
        else:
            first_list = next(i for i, prop in enumerate(element.properties) if prop.count_type is not None)
            self._lists(element, first_list)

    def faces(self, element: Element, target: Property) -> Faces:
        return self._lists(element, element.properties.index(target))

    def _lists(self, element: Element, target: int) -> Faces:
        """Read a list element: one structured read when every record has the layout of the
        first one (all triangles, say), checked on every count column; a walk otherwise."""
        counts = self._counts_at(element, self.position, 0)
        layout = self._dtype(element, counts)
        available = (len(self.data) - self.position) // layout.itemsize
        records = np.frombuffer(
            self.data, dtype=layout, count=min(element.count, available), offset=self.position
        )
        list_numbers = [i for i, prop in enumerate(element.properties) if prop.count_type is not None]
        same = np.ones(len(records), dtype=np.bool_)
        for number, size in zip(list_numbers, counts, strict=True):
            same &= records[f"n{number}"] == size
        uniform = int(len(records) if same.all() else np.argmin(same))
        size = counts[list_numbers.index(target)]
        item = np.dtype(self.order + element.properties[target].type)
        head = records[:uniform]
        items = head[f"p{target}"].reshape(-1) if size else np.zeros(0, dtype=item)
        self.position += uniform * layout.itemsize
        first = Faces(np.full(uniform, size, dtype=np.int64), items)
        if uniform == element.count:
            return first
        rest = self._walk(element, target, uniform)
        return Faces(
            np.concatenate([first.counts, rest.counts]), np.concatenate([first.indices, rest.indices])
        )

    def _counts_at(self, element: Element, position: int, record: int) -> tuple[int, ...]:
        """The list sizes of the record at ``position``, checking that it fits in the file."""
        counts = []
        for prop in element.properties:
            if prop.count_type is None:
                position += np.dtype(prop.type).itemsize
                continue
            width = np.dtype(prop.count_type).itemsize
            if position + width > len(self.data):
                raise self._truncated(element, record, position + width)
            size = int(
                np.frombuffer(self.data, dtype=self.order + prop.count_type, count=1, offset=position)[0]
            )
            if size < 0:
                raise self._refuse(element, record, f"has a negative list count {size}")
            counts.append(size)
            position += width + size * np.dtype(prop.type).itemsize
        if position > len(self.data):
            raise self._truncated(element, record, position)
        return tuple(counts)

    def _refuse(self, element: Element, record: int, problem: str) -> FeatureInputError:
        return input_error(self.source, "ply", "malformed", f"{element.name} {record} {problem}")

    def _truncated(self, element: Element, record: int, needs: int) -> FeatureInputError:
        return input_error(
            self.source,
            "ply",
            "truncated",
            f"{element.name} {record} of {element.count} needs bytes up to offset {needs}, "
            f"but the file ends at {len(self.data)}",
        )

    def _walk(self, element: Element, target: int, record: int) -> Faces:
        """Find where each remaining record starts, one record at a time (only list elements
        whose sizes vary come here), then gather the ``target`` list with numpy."""
        data, size = self.data, len(self.data)
        is_face = element.properties[target].name in _FACE_LISTS
        steps: list[tuple[int, struct.Struct, int]] = []  # fixed bytes before, count, item size
        fixed = 0
        for prop in element.properties:
            if prop.count_type is None:
                fixed += np.dtype(prop.type).itemsize
            else:
                count = struct.Struct(self.order + np.dtype(prop.count_type).char)
                steps.append((fixed, count, np.dtype(prop.type).itemsize))
                fixed = 0
        tail = fixed
        target_step = sum(prop.count_type is not None for prop in element.properties[:target])
        remaining = element.count - record  # bounded: every record holds at least a count byte
        starts = np.empty(remaining, dtype=np.int64)
        sizes = np.empty(remaining, dtype=np.int64)
        position = self.position
        for index in range(record, element.count):
            for step, (before, unpack, item) in enumerate(steps):
                position += before
                if position + unpack.size > size:
                    raise self._truncated(element, index, position + unpack.size)
                (count,) = unpack.unpack_from(data, position)
                if count < 0:
                    raise self._refuse(element, index, f"has a negative list count {count}")
                position += unpack.size
                if step == target_step:
                    if count < 3 and is_face:  # refused at once, not after walking a file of them
                        raise self._refuse(element, index, f"has {count} vertices; a face needs at least 3")
                    starts[index - record] = position
                    sizes[index - record] = count
                position += count * item
            position += tail
            if position > size:
                raise self._truncated(element, index, position)
        self.position = position
        item_type = np.dtype(self.order + element.properties[target].type)
        return Faces(sizes, _gather(data, starts, sizes, item_type))


def _listed_vertices(source: str) -> FeatureInputError:
    return input_error(
        source, "ply", "unsupported_format", "vertex element with list properties is not supported"
    )


def _gather(
    data: bytes, starts: IndexArray, counts: IndexArray, item: np.dtype[np.generic]
) -> npt.NDArray[np.generic]:
    """The items of the lists that begin at byte ``starts`` and hold ``counts`` items each, in
    file order; gathered in bounded chunks so the byte index arrays stay small."""
    chars = np.frombuffer(data, dtype=np.uint8)
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    positions = np.repeat(starts, counts) + (np.arange(total) - np.repeat(first, counts)) * item.itemsize
    flat = np.empty(total, dtype=item)
    raw = flat.view(np.uint8).reshape(total, item.itemsize)
    width = np.arange(item.itemsize)
    for begin in range(0, total, _GATHER_ITEMS):
        chunk = positions[begin : begin + _GATHER_ITEMS]
        raw[begin : begin + len(chunk)] = chars[chunk[:, None] + width]
    return flat
