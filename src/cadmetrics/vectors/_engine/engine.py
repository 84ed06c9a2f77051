"""The storage engine under a vector store: it alone holds the lock, the manifest, the log,
the memtables, the segments, checkpoints and compaction.

Everything above it reads through a :class:`Snapshot` (``with engine.read()``) and writes
through a :class:`Transaction` (``with engine.write()``); a migration writes through a
:class:`MigrationOutput`. A store in a directory and a store in memory are the same engine,
without files for the latter.

A write goes to the log (one fsync per transaction) and to a memtable; a checkpoint turns the
memtables into segments and starts a new log, and the manifest's rename is the moment it takes
effect. Whatever instant the process dies, the next open finds the last manifest, its segments
(written and synced before it named them) and its log, cut back to the last whole frame: no
acknowledged write is lost and no vector is torn.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from cadmetrics.errors import CadMetricsError, StoreCorruptError, VectorInputError, VectorStoreError
from cadmetrics.features.layout import FeatureLayout
from cadmetrics.vectors._engine.compaction import Item, next_segments
from cadmetrics.vectors._engine.directory import Directory
from cadmetrics.vectors._engine.log import MAGIC, Deletion, WriteAheadLog, add_frame, delete_frame, replay
from cadmetrics.vectors._engine.manifest import (
    MANIFEST,
    Manifest,
    PendingMigration,
    read_manifest,
    write_manifest,
)
from cadmetrics.vectors._engine.memtable import rows_of
from cadmetrics.vectors._engine.rewrite import MigrationOutput, MigrationProgress
from cadmetrics.vectors._engine.segment import NOT_FILLED, Rows, Segment, SegmentInfo
from cadmetrics.vectors._engine.snapshot import Snapshot
from cadmetrics.vectors._engine.tables import Source, Tables
from cadmetrics.vectors._engine.transaction import Operation, Transaction
from cadmetrics.vectors.records import CheckedRecord

_log = logging.getLogger("cadmetrics.vectors")

#: A checkpoint follows any write that takes the log past this size.
DEFAULT_CHECKPOINT_BYTES = 64 << 20


class Engine:
    """One store's storage (made by :func:`~cadmetrics.vectors._engine.open_engine`): safe to
    share between threads; one lock orders reads and writes, another migrations."""

    def __init__(
        self,
        layouts: Mapping[str, FeatureLayout],
        directory: Directory | None,
        *,
        sync: bool = True,
        checkpoint_bytes: int = DEFAULT_CHECKPOINT_BYTES,
        read_only: bool = False,
        on_change: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        self.layouts: dict[str, FeatureLayout] = dict(layouts)
        self.versions = tuple(self.layouts)
        self.directory = directory
        self.sync = sync
        self.checkpoint_bytes = checkpoint_bytes
        self.read_only = read_only
        self.problems: list[str] = []  # what the last open found and set aside (torn log tails)
        self.generation = 0
        self.closed = False
        self._on_change = on_change
        self._lock = threading.RLock()
        self._migration_lock = threading.Lock()  # one migration (or abort) at a time; reads go on
        self._tables = Tables(self.layouts)
        self._log: WriteAheadLog | None = None
        self._stamp = 0  # bumped by every change: plans and indexes compare it
        self._pending: PendingMigration | None = None
        self._output: MigrationOutput | None = None  # a migration in memory, kept for a resume

    @property
    def root(self) -> Path | None:
        return None if self.directory is None else self.directory.root

    # -- opening and closing -------------------------------------------------------------------

    def load(self, manifest: Manifest) -> None:
        """Open ``manifest``'s segments and replay its log into the memtables."""
        assert self.directory is not None
        root = self.directory.root
        self.generation = manifest.generation
        for info in manifest.segments:
            if info.version not in self.layouts:
                raise StoreCorruptError(f"{root / MANIFEST}: segment {info.name} has unknown version")
            self._tables.segments.append(self.directory.open_segment(info))
        self._pending = manifest.migration
        replayed = replay(root / manifest.log, repair=not self.read_only)
        if replayed.torn_bytes and not self.read_only:
            self.problems.append(
                f"{root / manifest.log}: {replayed.torn_bytes} bytes after offset {replayed.end} were a "
                f"write torn by a crash (never acknowledged); kept in {replayed.torn_copy}"
            )
        self._apply_to_tables(replayed.entries)
        if not self.read_only:
            self._log = WriteAheadLog(root / manifest.log, sync=self.sync)
            self.directory.remove_unreferenced(manifest)
        self.changed()

    def close(self) -> None:
        """Checkpoint and release the directory. Closing twice is harmless; a checkpoint that
        fails (a full disk) is raised after the directory is released, its writes safe in the
        log for the next open."""
        with self._lock:
            if self.closed:
                return
            try:
                if self.directory is not None and self._pending is None and not self.read_only:
                    self.checkpoint()
            finally:
                self.closed = True
                if self._log is not None:
                    self._log.close()
                self._tables.close()
                if self.directory is not None:
                    self.directory.close()

    # -- reading and writing --------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Snapshot]:
        """A consistent view of the store for the duration of the block."""
        with self._lock:
            yield Snapshot(
                self._tables, stamp=self._stamp, generation=self.generation,
                pending=self._pending,
            )  # fmt: skip

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        """Writes staged in the block, committed at its end (durable when it ends); an
        exception in the block commits nothing."""
        with self._lock:
            self.check_writable()
            transaction = Transaction(self._tables)
            yield transaction
            self._commit_writes(transaction.operations)

    def check_writable(self, *, migrating: bool = False) -> None:
        """Refuse a write to a closed or read-only store, or (unless ``migrating``) to one
        with a migration under way."""
        if self.closed:
            raise VectorStoreError(f"vector store {self.root}: it is closed")
        if self.read_only:
            raise VectorStoreError(f"vector store {self.root}: opened read-only")
        if self._pending is not None and not migrating:
            raise VectorStoreError(
                f"vector store {self.root}: a migration to {self._pending.target} is under way; finish "
                "it (store.migrate(store.plan_migration(...))) or abort it (store.abort_migration()) "
                "before writing"
            )

    def _commit_writes(self, operations: list[Operation]) -> None:
        if not operations:
            return
        adds = [item for item in operations if isinstance(item, CheckedRecord)]
        bulk = 4 * sum(record.vector.size for record in adds) > self.checkpoint_bytes
        if self._log is not None and bulk and len(adds) == len(operations):
            versions = dict.fromkeys(record.version for record in adds)  # a bulk load: no log
            self._write_segments(
                {v: rows_of([r for r in adds if r.version == v], self.layouts[v]) for v in versions}
            )
            return
        if self._log is not None:
            self._log.append(
                [delete_frame(op.id) if isinstance(op, Deletion) else add_frame(op) for op in operations]
            )
        self._apply_to_tables(operations)
        self.changed()
        if self._log is not None and self._log.size > self.checkpoint_bytes:
            try:
                self.checkpoint()
            except (OSError, CadMetricsError) as exc:  # the writes themselves are durable in the log
                self.problems.append(f"checkpoint failed, retried at the next one: {exc}")
                _log.warning(
                    "vector store %s: checkpoint failed (%s); writes stay in the log", self.root, exc
                )

    def ingest(self, version: str, rows: Rows) -> None:
        """Store ``rows`` of ``version`` (new ids, checked) as one new segment, with the recent
        writes checkpointed in the same step; durable when this returns."""
        with self._lock:
            self.check_writable()
            stored = self._tables.stored_among(rows.ids)
            if stored:
                position = min(index for index, key in enumerate(rows.ids) if key in stored)
                raise VectorInputError(
                    f"record {rows.ids[position].decode('utf-8')!r} (item {position}): the id is already "
                    "stored; delete it first to replace it"
                )
            if self.directory is None:
                self._tables.extend(version, rows)
                self.changed()
                return
            self._write_segments({version: rows})

    def _apply_to_tables(self, operations: Sequence[Operation]) -> None:
        """Apply writes in order; runs of additions go to the memtables a run at a time."""
        run: list[CheckedRecord] = []
        for operation in [*operations, None]:
            if isinstance(operation, CheckedRecord):
                self._tables.forget(operation.id_bytes)  # replaces nothing, unless replayed twice
                run.append(operation)
                continue
            if run:
                self._tables.append(run, [self._filled_code(record.filled_from) for record in run])
                run = []
            if isinstance(operation, Deletion):
                self._tables.forget(operation.id.encode("utf-8"))

    def _write_segments(self, blocks: Mapping[str, Rows]) -> None:
        """New rows (new ids) as new segments, acknowledged by the manifest's rename, with the
        recent writes checkpointed in the same step."""
        assert self.directory is not None
        directory, generation = self.directory, self.generation + 1
        written: list[Item] = [
            directory.write_rows(f"g{generation}-{version}-bulk{position}", version, rows)
            for position, (version, rows) in enumerate(blocks.items())
        ]
        self._advance(lambda: next_segments(self._tables, directory, generation, extra=written))

    def changed(self) -> None:
        self._stamp += 1
        if self._on_change is not None:
            self._on_change(self._tables.counts())

    def _filled_code(self, filled_from: str | None) -> int:
        return NOT_FILLED if filled_from is None else self.versions.index(filled_from)

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Turn recent writes into segments, persist deletions, start a new log."""
        with self._lock:
            if self.directory is None or self.closed:
                return
            if self.read_only:
                raise VectorStoreError(f"vector store {self.root}: opened read-only")
            if self._pending is not None:
                raise VectorStoreError(
                    f"vector store {self.root}: no checkpoint while a migration is pending"
                )
            assert self._log is not None
            if self._log.size <= len(MAGIC) and not any(s.dirty for s in self._tables.segments):
                return
            directory, generation = self.directory, self.generation + 1
            self._advance(lambda: next_segments(self._tables, directory, generation))

    def compact(self) -> None:
        """Rewrite each version as one segment without its deleted rows."""
        with self._lock:
            if self.directory is None:
                return
            self.check_writable()
            directory, generation = self.directory, self.generation + 1
            self._advance(lambda: next_segments(self._tables, directory, generation, compact=True))

    def _advance(self, build: Callable[[], list[Item]]) -> None:
        """Build the next generation's segments and commit them; when that fails before the
        manifest is replaced, what was written for it is removed, so that a retry starts clean."""
        assert self.directory is not None
        before = self.generation
        try:
            self._commit(build(), migration=None)
        except BaseException:
            on_disk = read_manifest(self.directory.root)
            if self.generation == before and (on_disk is None or on_disk.generation == before):
                self.directory.discard_generation(
                    before + 1, self._pending.segment if self._pending else None
                )
            raise

    def _commit(self, items: Sequence[Item], migration: PendingMigration | None) -> None:
        """Make ``items`` the store's segments, with a new empty log, in one manifest rename."""
        assert self.directory is not None
        assert self._log is not None
        if self.closed or self.read_only:
            raise VectorStoreError(f"vector store {self.root}: it is closed or read-only")
        generation = self.generation + 1
        new_log = self.directory.new_log(f"log-{generation}.wal", sync=self.sync)
        infos = tuple(item.info if isinstance(item, Segment) else item for item in items)
        manifest = Manifest(generation, self.layouts, infos, new_log.path.name, migration)
        try:
            write_manifest(self.directory.root, manifest)
        except BaseException:
            new_log.close()
            raise
        # The new generation is now the store; the rest is tidying up.
        self.generation = generation
        self._log.close()
        self._log = new_log
        self._pending = migration
        opened = [item if isinstance(item, Segment) else self.directory.open_segment(item) for item in items]
        self._tables.replace_segments(opened)
        self.directory.remove_unreferenced(manifest)
        self.changed()

    # -- migrations -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def migrating(self) -> Iterator[None]:
        """Hold the store's migrations for the block: one runs (or is aborted) at a time, while
        reads go on."""
        with self._migration_lock:
            yield

    def begin_migration(
        self, target: str, sources: Mapping[str, int], *, started: float, stamp: int
    ) -> PendingMigration:
        """Record that the live rows of every version but ``target`` are being rewritten
        (``sources``: how many per version), if nothing changed since the snapshot ``stamp``;
        the store refuses writes until the migration ends."""
        with self._lock:
            self.check_writable()
            if stamp != self._stamp:
                raise VectorStoreError(
                    f"vector store {self.root}: it changed since this plan was made; plan again"
                )
            if self.directory is None:
                moving = [t for t in self._tables.memtables.values() if t.version != target and t.live_rows]
                rows = sum(table.live_rows for table in moving)
                names = tuple(table.version for table in moving)
                self._pending = PendingMigration(target, "", dict(sources), names, rows, 0, started)
                return self._pending
            self.checkpoint()  # recent writes into segments: a migration reads segments only
            segments = [s for s in self._tables.segments if s.version != target and s.live_rows]
            pending = PendingMigration(
                target=target,
                segment=f"g{self.generation + 1}-{target}-migrated-{secrets.token_hex(4)}",
                sources=dict(sources),
                segments=tuple(s.info.name for s in segments),
                rows=sum(s.live_rows for s in segments),
                id_width=max((s.ids.dtype.itemsize for s in segments), default=1),
                started=started,
            )
            self._commit(list(self._tables.segments), migration=pending)
            return pending

    def migration_progress(self) -> MigrationProgress:
        """How far the pending migration has come (its last checkpoint)."""
        if self.directory is None:
            return self._output.progress if self._output is not None else MigrationProgress()
        state = self.directory.read_migration_state()
        return MigrationProgress() if state is None else MigrationProgress.from_json(state)

    def migration_output(self) -> MigrationOutput:
        """Where the pending migration writes, resumed at its last checkpoint."""
        with self._lock:
            pending = self._pending
            if pending is None:
                raise VectorStoreError(f"vector store {self.root}: no migration is under way")
            if self.directory is None:
                if self._output is None:
                    tables: list[Source] = [self._tables.memtables[version] for version in pending.segments]
                    self._output = MigrationOutput(pending, tables, MigrationProgress())
                return self._output
            by_name = {segment.info.name: segment for segment in self._tables.segments}
            missing = [name for name in pending.segments if name not in by_name]
            if missing:
                raise StoreCorruptError(
                    f"{self.root}: the pending migration reads segments that are gone: {missing}"
                )
            segments: list[Source] = [by_name[name] for name in pending.segments]
            dimension = self.layouts[pending.target].dimension
            return MigrationOutput.on_disk(
                self.directory, pending, segments, self.migration_progress(), dimension
            )

    def finish_migration(self, output: MigrationOutput) -> None:
        """Serve the migrated rows instead of their sources, in one step."""
        with self._lock:
            self.check_writable(migrating=True)
            written = output.finish()
            pending = output.pending
            if self.directory is None:
                self._tables.move_rows(
                    pending.segments, pending.target, written if isinstance(written, Rows) else None
                )
                self._pending = self._output = None
                self.changed()
                return
            assert isinstance(written, SegmentInfo)
            moved = set(pending.segments)
            kept: list[Item] = [s for s in self._tables.segments if s.info.name not in moved]
            self._commit([*kept, written], migration=None)

    def abort_migration(self) -> None:
        """Drop a pending migration: the store stays exactly as it was before it began."""
        with self._lock:
            self.check_writable(migrating=True)
            if self._pending is None:
                return
            if self.directory is None:
                self._pending = self._output = None
                return
            self._commit(list(self._tables.segments), migration=None)

    # -- the rest -------------------------------------------------------------------------------

    def log_bytes(self) -> int:
        if self._log is not None:
            return self._log.size
        return 0 if self.directory is None else self.directory.log_bytes(f"log-{self.generation}.wal")

    def verify(self) -> list[str]:
        """Re-read every segment against the CRC-32 its manifest records; the problems found."""
        with self._lock:
            return [problem for segment in self._tables.segments for problem in segment.verify()]

    def save_attachment(self, kind: str, name: str, data: bytes) -> Path | None:
        """Keep ``data`` with the store (atomically); where it went, None for a store in memory."""
        return None if self.directory is None else self.directory.save_attachment(kind, name, data)

    def load_attachment(self, kind: str, name: str) -> tuple[bytes | None, str] | None:
        """An attachment's bytes (None where there is none) and where it is kept, for
        messages; None for a store in memory, which keeps none."""
        if self.directory is None:
            return None
        return self.directory.load_attachment(kind, name), str(self.directory.root / kind / name)

    @property
    def lock_file(self) -> object:
        """The directory's lock (closing it is what the process's death does)."""
        return None if self.directory is None else self.directory.lock_file
