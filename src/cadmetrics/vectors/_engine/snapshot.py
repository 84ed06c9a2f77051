"""A consistent view of what a store holds, for search, iteration, indexes and plans.

A snapshot is taken under the engine's lock (``with engine.read() as snapshot``) and valid
while that block runs; the rows it hands out (:meth:`Snapshot.record`, a source's arrays read
in the block) stay readable after it, as segments keep their files open.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cadmetrics.features.layout import FeatureLayout
from cadmetrics.vectors._engine.manifest import PendingMigration
from cadmetrics.vectors._engine.segment import NOT_FILLED
from cadmetrics.vectors._engine.tables import Source, Tables
from cadmetrics.vectors.records import Record, content_hex, metadata_from_json


class Snapshot:
    """What a store holds, read in one block under the engine's lock (see the module)."""

    def __init__(
        self,
        tables: Tables,
        *,
        stamp: int,
        generation: int,
        pending: PendingMigration | None,
    ) -> None:
        self._tables = tables
        self.layouts: Mapping[str, FeatureLayout] = tables.layouts
        self.versions: tuple[str, ...] = tuple(tables.layouts)
        self.stamp = stamp  # changes with every write: a plan or an index made from this view compares it
        self.generation = generation
        self.pending = pending

    @property
    def segments(self) -> int:
        """How many segments the store is made of (memtables not counted)."""
        return len(self._tables.segments)

    def sources(self, version: str | None = None) -> list[Source]:
        """Where the live rows are (of ``version`` only, when given), oldest first."""
        return [source for source in self._tables.sources(version) if source.live_rows]

    def find(self, id: str) -> tuple[Source, int] | None:
        return self._tables.find(id.encode("utf-8"))

    def counts(self) -> dict[str, int]:
        """Live records per version (every version of the layouts)."""
        return self._tables.counts()

    def __len__(self) -> int:
        return sum(source.live_rows for source in self._tables.sources())

    def filled_count(self) -> int:
        return sum(
            int(np.count_nonzero(source.alive & (source.filled != NOT_FILLED)))
            for source in self._tables.sources()
        )

    def without_content(self, version: str) -> int:
        """Live records of ``version`` stored without a content hash."""
        return sum(
            int(np.count_nonzero(source.alive & ~np.asarray(source.content).any(axis=1)))
            for source in self._tables.sources(version)
        )

    @staticmethod
    def record(source: Source, row: int) -> Record:
        code = int(source.filled[row])
        return Record(
            id=source.id_bytes(row).decode("utf-8"),
            vector=np.array(source.vectors[row], dtype=np.float32),
            version=source.version,
            sha256=content_hex(bytes(np.asarray(source.content[row]))),
            metadata=metadata_from_json(source.metadata(row)),
            filled=code != NOT_FILLED,
        )
