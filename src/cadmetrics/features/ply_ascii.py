"""The body of an ASCII PLY file: one record per non-empty line, each element needed parsed in
one call."""

from __future__ import annotations

import numpy as np

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.mesh import FloatArray, IndexArray
from cadmetrics.features.parsing import (
    BadNumber,
    input_error,
    integral_indices,
    parse_integers,
    parse_numbers,
    preview,
    tokens_per_line,
)
from cadmetrics.features.ply_header import Element, Faces, Header, Property, listed_vertices


class AsciiBody:
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
            raise listed_vertices(self.source)
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
