"""The body of a binary PLY file (little- or big-endian): records read straight from the buffer,
counts checked against the bytes left before anything is allocated."""

from __future__ import annotations

import struct
from typing import Final

import numpy as np
import numpy.typing as npt

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.mesh import FloatArray, IndexArray
from cadmetrics.features.parsing import (
    input_error,
)
from cadmetrics.features.ply_header import (
    FACE_LISTS,
    FORMATS,
    Element,
    Faces,
    Header,
    Property,
    listed_vertices,
)

_GATHER_ITEMS: Final = 1 << 20  # list items gathered per numpy call after a walk (bounds memory)


class BinaryBody:
    """Records read straight from the buffer; counts checked against the bytes left first."""

    def __init__(self, data: bytes, header: Header, source: str) -> None:
        self.data = data
        self.source = source
        self.order = FORMATS[header.format]
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
            raise listed_vertices(self.source)
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
        is_face = element.properties[target].name in FACE_LISTS
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
