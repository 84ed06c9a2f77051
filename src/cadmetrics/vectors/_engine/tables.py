"""What a store holds right now: its open segments and its memtables, and where each id lives.

Segments are the checkpointed rows (memory-mapped, immutable but for their tombstones);
memtables the rows written since, one per version. A newer row of an id shadows an older one
only after the older was forgotten, so at most one live row holds an id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from cadmetrics.features.layout import FeatureLayout
from cadmetrics.vectors._engine.memtable import Memtable
from cadmetrics.vectors._engine.segment import Rows, Segment
from cadmetrics.vectors.records import CheckedRecord

#: Where rows are read from: a checkpointed segment or a memtable, alike in shape.
Source = Segment | Memtable


class Tables:
    """The segments and memtables of one store, and the index of the memtables' ids."""

    def __init__(self, layouts: Mapping[str, FeatureLayout]) -> None:
        self.layouts = layouts
        self.segments: list[Segment] = []
        self.memtables: dict[str, Memtable] = {}
        self.memtable_rows: dict[bytes, tuple[str, int]] = {}

    def sources(self, version: str | None = None) -> Iterator[Source]:
        """Segments (oldest first), then memtables; of ``version`` only, when given."""
        everything: list[Source] = [*self.segments, *self.memtables.values()]
        for source in everything:
            if version is None or source.version == version:
                yield source

    def memtable(self, version: str) -> Memtable:
        table = self.memtables.get(version)
        if table is None:
            table = self.memtables[version] = Memtable(version, self.layouts[version].dimension)
        return table

    def find(self, key: bytes) -> tuple[Source, int] | None:
        """The live row holding the id ``key``."""
        found = self.memtable_rows.get(key)
        if found is not None:
            table = self.memtables[found[0]]
            if table.alive[found[1]]:
                return table, found[1]
        for segment in reversed(self.segments):
            row = segment.find(key)
            if row is not None:
                return segment, row
        return None

    def stored_among(self, keys: Sequence[bytes]) -> set[bytes]:
        """Those of ``keys`` held by a live row."""
        stored = set()
        for key in keys:
            found = self.memtable_rows.get(key)
            if found is not None and self.memtables[found[0]].alive[found[1]]:
                stored.add(key)
        for segment in self.segments:
            if len(keys) > 16:
                stored.update(segment.holding(keys))
            else:  # a few bisections cost less than sorting the segment's ids
                stored.update(key for key in keys if segment.find(key) is not None)
        return stored

    def append(self, records: Sequence[CheckedRecord], filled: Sequence[int]) -> None:
        """Add ``records`` (each with its filled-from code) to the memtables of their versions."""
        by_version: dict[str, list[int]] = {}
        for position, record in enumerate(records):
            by_version.setdefault(record.version, []).append(position)
        for version, positions in by_version.items():
            table = self.memtable(version)
            start = table.append([records[p] for p in positions], [filled[p] for p in positions])
            for offset, position in enumerate(positions):
                self.memtable_rows[records[position].id_bytes] = (version, start + offset)

    def extend(self, version: str, rows: Rows) -> None:
        """Add a block of rows (new ids) to ``version``'s memtable."""
        start = self.memtable(version).extend(rows)
        for offset, key in enumerate(rows.ids):
            self.memtable_rows[key] = (version, start + offset)

    def forget(self, key: bytes) -> bool:
        """Mark the live row of ``key`` deleted; whether there was one."""
        found = self.find(key)
        if found is None:
            return False
        found[0].delete(found[1])
        self.memtable_rows.pop(key, None)
        return True

    def move_rows(self, versions: Sequence[str], target: str, rows: Rows | None) -> None:
        """Drop the memtables of ``versions`` and add ``rows`` to ``target``'s: a migration
        of a store that lives in memory, in one step."""
        for version in versions:
            self.memtables.pop(version, None)
        if rows is not None:
            self.memtable(target).extend(rows)
        self.memtable_rows.clear()
        for version, table in self.memtables.items():
            for row in np.flatnonzero(table.alive).tolist():
                self.memtable_rows[table.id_list[row]] = (version, row)

    def counts(self) -> dict[str, int]:
        """Live rows per version (every version of the layouts)."""
        totals = dict.fromkeys(self.layouts, 0)
        for source in self.sources():
            totals[source.version] += source.live_rows
        return totals

    def replace_segments(self, segments: list[Segment]) -> None:
        """A new generation: ``segments`` hold every row, the memtables are empty again."""
        kept = {id(segment) for segment in segments}
        for segment in self.segments:
            if id(segment) not in kept:
                segment.close()
        self.segments = segments
        self.memtables.clear()
        self.memtable_rows.clear()

    def close(self) -> None:
        for segment in self.segments:
            segment.close()
