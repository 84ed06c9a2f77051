"""Where a migration writes the rows it converts, batch by batch, and how far it has come.

On disk the rows go into a segment that no generation names yet, synced after each batch and
followed by an atomic checkpoint of the progress, so that a crash resumes from the last
batch; in memory they are kept until the migration ends. Either way the store serves its old
rows until :meth:`Engine.finish_migration` swaps them in one step.
"""

from __future__ import annotations

import shutil
from typing import Any

import attrs

from cadmetrics.vectors._engine.directory import Directory
from cadmetrics.vectors._engine.manifest import PendingMigration
from cadmetrics.vectors._engine.segment import Rows, SegmentInfo, SegmentWriter
from cadmetrics.vectors._engine.tables import Source


@attrs.frozen
class MigrationProgress:
    """What a migration's checkpoint records: rows written so far, and how their features
    were obtained (method -> records; records whose re-extraction failed, with why)."""

    rows_done: int = 0
    methods: dict[str, int] = attrs.field(factory=dict)
    failures: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_done": self.rows_done,
            "methods": dict(self.methods),
            "failures": [list(item) for item in self.failures],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> MigrationProgress:
        return cls(
            int(value["rows_done"]),
            {str(method): int(count) for method, count in value["methods"].items()},
            tuple((str(id), str(reason)) for id, reason in value["failures"]),
        )


class MigrationOutput:
    """Where one migration writes: its sources (the rows to convert, in order), its progress."""

    def __init__(
        self,
        pending: PendingMigration,
        sources: list[Source],
        progress: MigrationProgress,
        *,
        directory: Directory | None = None,
        writer: SegmentWriter | None = None,
    ) -> None:
        self.pending = pending
        self.sources = sources  # the rows to convert, in order
        self.progress = progress
        self._directory = directory
        self._writer = writer
        self.blocks: list[Rows] = []  # in memory: the converted rows so far

    @classmethod
    def on_disk(
        cls,
        directory: Directory,
        pending: PendingMigration,
        sources: list[Source],
        progress: MigrationProgress,
        dimension: int,
    ) -> MigrationOutput:
        """The output of ``pending`` in its segment, reopened after the rows ``progress``
        counts as written (files a crash left before any checkpoint are started again)."""
        folder = directory.segments / pending.segment
        shape = (folder, pending.target, pending.rows, dimension, pending.id_width)
        if progress.rows_done:
            writer = SegmentWriter.resume(*shape, rows_done=progress.rows_done)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            writer = SegmentWriter(*shape)
        return cls(pending, sources, progress, directory=directory, writer=writer)

    def write(self, start: int, rows: Rows) -> None:
        """Write converted rows at position ``start``, durably (on disk) before returning."""
        if self._writer is None:
            self.blocks.append(rows)
            return
        self._writer.write(start, rows)
        self._writer.flush()

    def checkpoint(self, progress: MigrationProgress) -> None:
        """Record ``progress`` (atomically on disk): a resumed migration starts from it."""
        self.progress = progress
        if self._directory is not None:
            self._directory.write_migration_state(progress.to_json())

    def finish(self) -> Rows | SegmentInfo | None:
        """The converted rows in memory (None when there were none), or on disk the finished
        segment's description."""
        if self._writer is None:
            return Rows.concatenate(self.blocks) if self.blocks else None
        return self._writer.finish(self.pending.segment)
