"""VectorStore: feature vectors kept durably, searched exactly, migrated between versions.

On disk a store is a directory::

    manifest.json        which segments and which log make up the store (replaced atomically)
    log-<G>.wal          writes since the last checkpoint, each synced before it is acknowledged
    segments/<name>/     immutable, memory-mapped arrays of one feature version
    migration/           a migration under way: its plan and its last checkpoint
    baselines/           drift baselines saved with the store

A write goes to the log (one fsync per call) and to an in-memory buffer; a checkpoint turns the
buffers into segments and starts a new log, and the manifest's rename is the moment it takes
effect. Whatever instant the process dies, the next open finds the last manifest, its segments
(written and synced before it named them) and its log, cut back to the last whole frame: no
acknowledged write is lost and no vector is torn.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from cadmetrics.durable import fsync_path, write_atomically
from cadmetrics.errors import CadMetricsError, StoreCorruptError, VectorInputError, VectorStoreError
from cadmetrics.features.layout import LAYOUTS, Feature, FeatureLayout
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.vectors.buffer import Buffer
from cadmetrics.vectors.log import Deletion, WriteAheadLog, add_frame, delete_frame, replay
from cadmetrics.vectors.records import CheckedRecord, Hit, Record, check_record, metadata_from_json
from cadmetrics.vectors.segment import NOT_FILLED, Rows, Segment, SegmentInfo, write_segment
from cadmetrics.vectors.topk import EXCLUDED, merge, top_k

if TYPE_CHECKING:
    from cadmetrics.drift.baseline import Baseline
    from cadmetrics.features.extractor import FeatureVector
    from cadmetrics.vectors.migration import MigrationPlan, MigrationResult

_log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SEGMENTS = "segments"
MIGRATION = "migration"
BASELINES = "baselines"
LOCK = "lock"
FORMAT = 1

#: A checkpoint follows any write that takes the log past this size.
DEFAULT_CHECKPOINT_BYTES = 64 << 20
#: A version split over more segments than this is merged into one at the next checkpoint.
MAX_SEGMENTS_PER_VERSION = 8
#: Score tiles of a search stay under this many values (256 MiB of float32).
_TILE_VALUES = 1 << 26

Source = Segment | Buffer
Filter = Mapping[str, Any] | Callable[[str, "dict[str, Any] | None"], bool]


class VectorStore:
    """Feature vectors by id, with their version, content hash and metadata.

    Open one with :meth:`open` (a directory, or ``None`` for a store in memory). One process
    at a time may open a directory; within it, the store is safe to share between threads.
    """

    def __init__(
        self,
        path: Path | None,
        layouts: Mapping[str, FeatureLayout],
        telemetry: Telemetry,
        *,
        sync: bool,
        checkpoint_bytes: int,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.layouts: dict[str, FeatureLayout] = dict(layouts)
        self.versions: tuple[str, ...] = tuple(self.layouts)
        self.sync = sync
        self.checkpoint_bytes = checkpoint_bytes
        self.problems: list[str] = []  # what the last open found and set aside (torn log tails)
        self._lock = threading.RLock()
        self._segments: list[Segment] = []
        self._buffers: dict[str, Buffer] = {}
        self._buffer_index: dict[bytes, tuple[str, int]] = {}
        self._log: WriteAheadLog | None = None
        self._lock_file: Any = None
        self._generation = 0
        self._changes = 0  # bumped by every write: plans and ANN indexes compare it
        self._pending_migration: dict[str, Any] | None = None
        self._ann: dict[str, Any] = {}
        self._closed = False
        self.telemetry = telemetry
        self._stored = telemetry.gauge("cadmetrics_vectors_stored")
        self._search_duration = telemetry.histogram("cadmetrics_vector_search_duration_seconds")

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None,
        *,
        layouts: Mapping[str, FeatureLayout] | None = None,
        telemetry: Telemetry | None = None,
        sync: bool = True,
        checkpoint_bytes: int = DEFAULT_CHECKPOINT_BYTES,
        read_only: bool = False,
    ) -> VectorStore:
        """Open the store at ``path`` (created when missing), or a store in memory for ``None``.

        ``layouts`` are the feature versions it holds (default: the mesh layouts v1 to v4); a
        new store records them, an existing one is checked against them. ``sync=False`` skips
        the fsync of each write: faster, but a crash may lose the last writes (never a middle
        one, never a torn vector).

        ``read_only=True`` opens an existing store without taking it from its writer: for
        inspection (``cadmetrics vectors stats``, ``cadmetrics drift``) beside a running
        service. It sees the store as it was when opened and refuses every write.
        """
        tel = telemetry if telemetry is not None else Telemetry()
        if path is None:
            store = cls(None, layouts or LAYOUTS, tel, sync=sync, checkpoint_bytes=checkpoint_bytes)
            store._publish_counts()
            return store
        root = Path(path)
        if read_only:
            return cls._open_read_only(root, tel)
        root.mkdir(parents=True, exist_ok=True)
        lock_file = _lock(root)
        try:
            manifest = _read_manifest(root)
            if manifest is None:
                _refuse_foreign_directory(root)
                stored_layouts = dict(layouts or LAYOUTS)
                manifest = _new_manifest(root, stored_layouts)
            else:
                stored_layouts = _layouts_from_manifest(root, manifest)
                if layouts is not None:
                    _check_layouts(root, stored_layouts, layouts)
            store = cls(root, stored_layouts, tel, sync=sync, checkpoint_bytes=checkpoint_bytes)
            store._lock_file = lock_file
            store._load(manifest)
        except BaseException:
            lock_file.close()
            raise
        return store

    @classmethod
    def _open_read_only(cls, root: Path, telemetry: Telemetry) -> VectorStore:
        """Open beside a writer: a checkpoint of the writer may remove the files of the
        generation being opened, in which case the next generation is opened instead."""
        for _attempt in range(20):
            manifest = _read_manifest(root)
            if manifest is None:
                raise VectorStoreError(f"{root}: no vector store here (no {MANIFEST})")
            store = cls(
                root, _layouts_from_manifest(root, manifest), telemetry, sync=False,
                checkpoint_bytes=DEFAULT_CHECKPOINT_BYTES, read_only=True,
            )  # fmt: skip
            try:
                store._load(manifest)
                return store
            except StoreCorruptError:
                store.close()
                newer = _read_manifest(root)
                if newer is None or newer["generation"] == manifest["generation"]:
                    raise  # really damaged, not a generation that passed
        raise VectorStoreError(f"vector store {root}: its writer checkpoints faster than it can be opened")

    def _load(self, manifest: dict[str, Any]) -> None:
        assert self.path is not None
        self._generation = int(manifest["generation"])
        for value in manifest["segments"]:
            info = SegmentInfo.from_json(value, self.path / MANIFEST)
            if info.version not in self.layouts:
                raise StoreCorruptError(f"{self.path / MANIFEST}: segment {info.name} has unknown version")
            self._segments.append(Segment(self.path / SEGMENTS, info))
        self._pending_migration = manifest.get("migration")
        log_path = self.path / str(manifest["log"])
        replayed = replay(log_path, repair=not self.read_only)
        if replayed.torn_bytes and not self.read_only:
            self.problems.append(
                f"{log_path}: {replayed.torn_bytes} bytes after offset {replayed.end} were a write "
                f"torn by a crash (never acknowledged); kept in {replayed.torn_copy}"
            )
        for entry in replayed.entries:
            if isinstance(entry, Deletion):
                self._forget(entry.id.encode("utf-8"))
            else:
                self._forget(entry.id_bytes)  # a replayed add replaces nothing, unless damaged
                self._buffer(entry.version).append([entry], [self._filled_code(entry.filled_from)])
                self._buffer_index[entry.id_bytes] = (entry.version, self._buffers[entry.version].rows - 1)
        if not self.read_only:
            self._log = WriteAheadLog(log_path, sync=self.sync)
            self._remove_unreferenced()
        self._publish_counts()

    def close(self) -> None:
        """Checkpoint and release the directory. Closing twice is harmless; a checkpoint that
        fails (a full disk) is raised after the directory is released, its writes safe in the
        log for the next open."""
        with self._lock:
            if self._closed:
                return
            try:
                if self.path is not None and self._pending_migration is None and not self.read_only:
                    self.checkpoint()
            finally:
                self._closed = True
                if self._log is not None:
                    self._log.close()
                for segment in self._segments:
                    segment.close()
                if self._lock_file is not None:
                    self._lock_file.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return sum(source.live_rows for source in self._sources())

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and self._find(id.encode("utf-8")) is not None

    def __iter__(self) -> Iterator[Record]:
        """Every record, segment by segment (a snapshot of the ids taken when iteration starts)."""
        with self._lock:
            sources = list(self._sources())
            rows = [np.flatnonzero(source.alive) for source in sources]
        for source, live in zip(sources, rows, strict=True):
            for row in live.tolist():
                if source.alive[row]:
                    yield self._record(source, row)

    def ids(self) -> list[str]:
        with self._lock:
            return [
                source.id_bytes(row).decode("utf-8")
                for source in self._sources()
                for row in np.flatnonzero(source.alive).tolist()
            ]

    def get(self, id: str) -> Record | None:
        """The record stored under ``id``, or None."""
        if not isinstance(id, str):
            raise VectorInputError(f"ids are strings, got {type(id).__name__} {id!r}")
        with self._lock:
            found = self._find(id.encode("utf-8"))
            return None if found is None else self._record(*found)

    def __getitem__(self, id: str) -> Record:
        record = self.get(id)
        if record is None:
            raise KeyError(id)
        return record

    def counts(self) -> dict[str, int]:
        """Records held per feature version (every version of the store's layouts)."""
        with self._lock:
            totals = dict.fromkeys(self.versions, 0)
            for source in self._sources():
                totals[source.version] += source.live_rows
            return totals

    def filled_count(self) -> int:
        with self._lock:
            return sum(
                int(np.count_nonzero(source.alive & (source.filled != NOT_FILLED)))
                for source in self._sources()
            )

    def stats(self) -> dict[str, Any]:
        """A summary for operators: counts, dimensions, segments, log size, pending migration."""
        with self._lock:
            return {
                "path": str(self.path) if self.path is not None else None,
                "records": len(self),
                "versions": {
                    version: {"records": count, "dimension": self.layouts[version].dimension}
                    for version, count in self.counts().items()
                },
                "filled": self.filled_count(),
                "segments": len(self._segments),
                "generation": self._generation,
                "log_bytes": self._log_bytes(),
                "pending_migration": (
                    self._pending_migration.get("target") if self._pending_migration else None
                ),
                "problems": list(self.problems),
            }

    def _log_bytes(self) -> int:
        if self._log is not None:
            return self._log.size
        if self.path is None:
            return 0
        try:
            return (self.path / f"log-{self._generation}.wal").stat().st_size
        except OSError:
            return 0

    def vectors(self, version: str) -> npt.NDArray[np.float32]:
        """Every live vector of ``version``, as one matrix (a copy; row order as iteration)."""
        with self._lock:
            layout = self._layout(version)
            parts = [np.asarray(s.vectors)[s.alive] for s in self._sources() if s.version == version]
            if not parts:
                return np.zeros((0, layout.dimension), dtype=np.float32)
            return np.concatenate(parts)

    def verify(self) -> list[str]:
        """Re-read every segment against the CRC-32 its manifest records; the problems found."""
        with self._lock:
            return [problem for segment in self._segments for problem in segment.verify()]

    # -- writing --------------------------------------------------------------------------------

    def add(
        self,
        id: str,
        vector: Any,
        *,
        version: str,
        sha256: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Store one vector under a new ``id``; durable when this returns."""
        self._write([check_record(id, vector, version, sha256, metadata, layouts=self.layouts)])

    def add_many(self, records: Iterable[Record]) -> int:
        """Store several records at once: all or none, with one fsync. Returns how many."""
        checked = [
            check_record(
                record.id, record.vector, record.version, record.sha256, record.metadata,
                layouts=self.layouts, where=f" (item {position})",
            )
            for position, record in enumerate(records)
        ]  # fmt: skip
        self._write(checked)
        return len(checked)

    def add_features(
        self, features: FeatureVector, *, id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> str:
        """Store what a :class:`~cadmetrics.FeatureExtractor` returned, under ``id`` (default:
        the content's sha256). Returns the id.

        A vector of an in-memory mesh has the hash of the mesh's arrays (``mesh-<hex>``); the
        store keeps its hex digest, as it has no file content to hash."""
        key = id if id is not None else features.sha256
        digest = features.sha256.removeprefix("mesh-")
        self.add(key, features.values, version=features.version, sha256=digest, metadata=metadata)
        return key

    def delete(self, id: str) -> None:
        """Remove the record stored under ``id``; durable when this returns."""
        with self._lock:
            self._writable()
            key = id.encode("utf-8") if isinstance(id, str) else b""
            if self._find(key) is None:
                raise KeyError(id)
            if self._log is not None:
                self._log.append([delete_frame(id)])
            self._forget(key)
            self._changed()

    def _write(self, records: list[CheckedRecord]) -> None:
        with self._lock:
            self._writable()
            seen: dict[bytes, int] = {}
            for position, record in enumerate(records):
                if record.id_bytes in seen:
                    raise VectorInputError(
                        f"record {record.id!r} (item {position}): the batch repeats the id of item "
                        f"{seen[record.id_bytes]}"
                    )
                seen[record.id_bytes] = position
            stored = self._stored_among(list(seen))
            if stored:
                position = min(seen[key] for key in stored)
                raise VectorInputError(
                    f"record {records[position].id!r} (item {position}): the id is already stored; "
                    "delete it first to replace it"
                )
            if self._log is not None and 4 * sum(r.vector.size for r in records) > self.checkpoint_bytes:
                self._write_segments(records)  # a bulk load: straight into segments, not via the log
                return
            if self._log is not None:
                self._log.append([add_frame(record) for record in records])
            self._append(records)
            self._changed()
            if self._log is not None and self._log.size > self.checkpoint_bytes:
                try:
                    self.checkpoint()
                except (OSError, CadMetricsError) as exc:  # the write itself is durable in the log
                    self.problems.append(f"checkpoint failed, retried at the next one: {exc}")
                    _log.warning(
                        "vector store %s: checkpoint failed (%s); writes stay in the log", self.path, exc
                    )

    def _write_segments(self, records: list[CheckedRecord]) -> None:
        """Write a large batch as new segments, acknowledged by the manifest's rename (with
        the recent writes checkpointed in the same step)."""
        assert self.path is not None
        generation = self._generation + 1
        written: list[Segment | SegmentInfo] = []
        for position, version in enumerate(dict.fromkeys(record.version for record in records)):
            batch = Buffer(version, self.layouts[version].dimension)
            group = [record for record in records if record.version == version]
            batch.append(group, [NOT_FILLED] * len(group))
            name = f"g{generation}-{version}-bulk{position}"
            written.append(self._write_rows(name, batch, np.arange(batch.rows)))
        self._advance(lambda: self._next_segments(extra=written), migration=None)

    def _append(self, records: list[CheckedRecord]) -> None:
        by_version: dict[str, list[CheckedRecord]] = {}
        for record in records:
            by_version.setdefault(record.version, []).append(record)
        for version, group in by_version.items():
            buffer = self._buffer(version)
            start = buffer.append(group, [self._filled_code(record.filled_from) for record in group])
            for offset, record in enumerate(group):
                self._buffer_index[record.id_bytes] = (version, start + offset)

    def _writable(self) -> None:
        if self._closed:
            raise VectorStoreError(f"vector store {self.path}: it is closed")
        if self.read_only:
            raise VectorStoreError(f"vector store {self.path}: opened read-only")
        if self._pending_migration is not None:
            raise VectorStoreError(
                f"vector store {self.path}: a migration to {self._pending_migration['target']} is under "
                "way; finish it (store.migrate(store.plan_migration(...))) or abort it "
                "(store.abort_migration()) before writing"
            )

    def _changed(self) -> None:
        self._changes += 1
        self._publish_counts()

    def _publish_counts(self) -> None:
        for version, count in self.counts().items():
            self._stored.set(count, version=version)

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Turn recent writes into segments, persist deletions, start a new log.

        Runs by itself when the log grows past ``checkpoint_bytes`` and at :meth:`close`.
        """
        with self._lock:
            if self.path is None or self._closed:
                return
            if self.read_only:
                raise VectorStoreError(f"vector store {self.path}: opened read-only")
            if self._pending_migration is not None:
                raise VectorStoreError(
                    f"vector store {self.path}: no checkpoint while a migration is pending"
                )
            assert self._log is not None
            if self._log.size <= len(b"CMVLOG1\n") and not any(s.dirty for s in self._segments):
                return
            self._advance(self._next_segments, migration=None)

    def _next_segments(
        self, *, compact: bool = False, extra: list[Segment | SegmentInfo] | None = None
    ) -> list[Segment | SegmentInfo]:
        """The segments of the next generation: the old ones (tombstones refreshed), the
        buffers written out, and each version merged into one when it is split too finely."""
        assert self.path is not None
        generation = self._generation + 1
        result: list[Segment | SegmentInfo] = []
        for segment in self._segments:
            if segment.live_rows == 0:
                continue
            if segment.dirty:
                segment.write_tombstones(f"tombstones-{generation}.npy")
            result.append(segment)
        for version, buffer in self._buffers.items():
            if buffer.live_rows:
                live = np.flatnonzero(buffer.alive)
                result.append(self._write_rows(f"g{generation}-{version}-buffer", buffer, live))
        result += extra or []
        for version in self.versions:
            mine = [item for item in result if _version_of(item) == version]
            if compact and (len(mine) > 1 or any(_live(item) < item.rows for item in mine)):
                chosen = mine
            elif len(mine) > MAX_SEGMENTS_PER_VERSION:
                # The neighbouring segments with the fewest rows between them: a store that grows
                # by many loads rewrites each vector a few times, not at every merge, and
                # neighbours keep the order records were written in (iteration, search ties).
                width = len(mine) - MAX_SEGMENTS_PER_VERSION // 2 + 1
                start = min(
                    range(len(mine) - width + 1),
                    key=lambda at: sum(_live(item) for item in mine[at : at + width]),
                )
                chosen = mine[start : start + width]
            else:
                continue
            merged = self._merge(f"g{generation}-{version}-merged", version, chosen)
            place = next(index for index, item in enumerate(result) if item is chosen[0])
            result = [
                merged if index == place else item
                for index, item in enumerate(result)
                if index == place or not any(item is other for other in chosen)
            ]
        return result

    def _write_rows(self, name: str, source: Source, rows: npt.NDArray[np.int64]) -> SegmentInfo:
        assert self.path is not None
        return write_segment(self.path / SEGMENTS / name, name, source.version, source.take(rows))

    def _merge(self, name: str, version: str, items: list[Segment | SegmentInfo]) -> SegmentInfo:
        assert self.path is not None
        root = self.path / SEGMENTS
        opened = [item if isinstance(item, Segment) else Segment(root, item) for item in items]
        rows = Rows.concatenate([segment.take(np.flatnonzero(segment.alive)) for segment in opened])
        info = write_segment(root / name, name, version, rows)
        for segment, item in zip(opened, items, strict=True):
            if segment is not item:
                segment.close()
        return info

    def compact(self) -> None:
        """Rewrite each version as one segment without its deleted rows."""
        with self._lock:
            if self.path is None:
                return
            self._writable()
            self._advance(lambda: self._next_segments(compact=True), migration=None)

    def _advance(
        self, build: Callable[[], list[Segment | SegmentInfo]], migration: dict[str, Any] | None
    ) -> None:
        """Build the next generation's segments and commit them; when that fails before the
        manifest is replaced, what was written for it is removed, so that a retry starts clean."""
        assert self.path is not None
        before = self._generation
        try:
            self._commit(build(), migration=migration)
        except BaseException:
            on_disk = _read_manifest(self.path)
            if self._generation == before and (on_disk is None or on_disk["generation"] == before):
                self._discard_generation(before + 1)
            raise

    def _discard_generation(self, generation: int) -> None:
        assert self.path is not None
        pending = self._pending_migration.get("segment") if self._pending_migration else None
        for directory in (self.path / SEGMENTS).glob(f"g{generation}-*"):
            if directory.name != pending:
                shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.path / f"log-{generation}.wal").unlink()

    def _commit(self, items: list[Segment | SegmentInfo], migration: dict[str, Any] | None) -> None:
        """Make ``items`` the store's segments, with a new empty log, in one manifest rename."""
        assert self.path is not None
        assert self._log is not None
        if self._closed or self.read_only:
            raise VectorStoreError(f"vector store {self.path}: it is closed or read-only")
        generation = self._generation + 1
        log_name = f"log-{generation}.wal"
        with contextlib.suppress(FileNotFoundError):
            (self.path / log_name).unlink()  # left by a commit that failed before its manifest
        new_log = WriteAheadLog.create(self.path / log_name, sync=self.sync)
        infos = [item.info if isinstance(item, Segment) else item for item in items]
        try:
            _write_manifest(
                self.path, generation=generation, layouts=self.layouts, segments=infos, log_name=log_name,
                migration=migration,
            )  # fmt: skip
        except BaseException:
            new_log.close()
            raise
        # The new generation is now the store; the rest is tidying up.
        self._generation = generation
        self._log.close()
        self._log = new_log
        self._pending_migration = migration
        kept = {id(item) for item in items if isinstance(item, Segment)}
        for segment in self._segments:
            if id(segment) not in kept:
                segment.close()
        self._segments = [
            item if isinstance(item, Segment) else Segment(self.path / SEGMENTS, item) for item in items
        ]
        self._buffers.clear()
        self._buffer_index.clear()
        self._remove_unreferenced()
        self._changed()

    def _remove_unreferenced(self) -> None:
        """Delete what no manifest names: old logs, replaced segments and tombstones, files a
        crash left half-written. Torn log tails are kept for inspection."""
        assert self.path is not None
        current_log = f"log-{self._generation}.wal"
        for entry in self.path.iterdir():
            name = entry.name
            if (name.startswith("log-") and name.endswith(".wal") and name != current_log) or name.startswith(
                ".tmp-"
            ):
                with contextlib.suppress(OSError):
                    entry.unlink()
        referenced = {segment.info.name: segment.info.tombstones for segment in self._segments}
        pending = self._pending_migration.get("segment") if self._pending_migration else None
        segments_dir = self.path / SEGMENTS
        if segments_dir.is_dir():
            for directory in segments_dir.iterdir():
                if directory.name == pending:
                    continue
                if directory.name not in referenced:
                    shutil.rmtree(directory, ignore_errors=True)
                    continue
                for file in directory.glob("tombstones-*.npy"):
                    if file.name != referenced[directory.name]:
                        with contextlib.suppress(OSError):
                            file.unlink()
        migration_dir = self.path / MIGRATION
        if self._pending_migration is None and migration_dir.exists():
            shutil.rmtree(migration_dir, ignore_errors=True)

    # -- search ---------------------------------------------------------------------------------

    def search(
        self,
        vector: Any,
        k: int = 10,
        *,
        version: str | None = None,
        filter: Filter | None = None,
        method: str = "exact",
    ) -> list[Hit]:
        """The ``k`` stored vectors most similar (cosine) to ``vector``, best first.

        ``version`` defaults to the one whose dimension the vector has. ``filter`` keeps only
        some records: a mapping of metadata keys to required values, or a function of (id,
        metadata). ``method="ann"`` answers from an approximate index (:meth:`build_index`,
        the ``ann`` extra) instead of the exact scan.
        """
        array = self._as_array(vector)
        if array.ndim != 1:
            raise VectorInputError(f"search takes one vector, got shape {array.shape}; use search_batch")
        return self.search_batch(array[None, :], k, version=version, filter=filter, method=method)[0]

    def search_batch(
        self,
        queries: Any,
        k: int = 10,
        *,
        version: str | None = None,
        filter: Filter | None = None,
        method: str = "exact",
    ) -> list[list[Hit]]:
        """:meth:`search` for each row of ``queries``, in one pass over the stored vectors (one
        matrix product per tile), which is far faster than one search per query."""
        if method not in ("exact", "ann"):
            raise VectorInputError(f"search method must be 'exact' or 'ann', got {method!r}")
        if not isinstance(k, int) or k < 1:
            raise VectorInputError(f"k must be a positive integer, got {k!r}")
        started = time.perf_counter()
        units = self._unit_queries(self._as_array(queries), version)
        target = version if version is not None else self._version_of_dimension(units.shape[1])
        with self._lock:
            if method == "ann":
                from cadmetrics.vectors.ann import ann_search

                hits = ann_search(self, target, units, k, filter)
            else:
                hits = self._exact(target, units, k, filter)
        self._search_duration.observe(time.perf_counter() - started, method=method)
        return hits

    @staticmethod
    def _as_array(query: Any) -> npt.NDArray[np.float32]:
        try:
            return np.asarray(query, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise VectorInputError(f"the query is not numeric ({exc})") from None

    def _unit_queries(self, array: npt.NDArray[np.float32], version: str | None) -> npt.NDArray[np.float32]:
        if array.ndim != 2 or array.shape[0] == 0:
            raise VectorInputError(f"a query is a vector or a matrix of vectors, got shape {array.shape}")
        if version is not None and array.shape[1] != self._layout(version).dimension:
            raise VectorInputError(
                f"a {version} query has {self._layout(version).dimension} values, got {array.shape[1]}"
            )
        if not np.isfinite(array).all():
            raise VectorInputError("the query holds a value that is not finite")
        norms = np.linalg.norm(array, axis=1)
        if (norms == 0).any():
            raise VectorInputError(f"query {int(np.flatnonzero(norms == 0)[0])} is zero: it has no direction")
        return np.ascontiguousarray(array / norms[:, None], dtype=np.float32)

    def _version_of_dimension(self, dimension: int) -> str:
        matching = [version for version, layout in self.layouts.items() if layout.dimension == dimension]
        if len(matching) != 1:
            raise VectorInputError(
                f"no single version of this store has {dimension} values "
                f"({', '.join(f'{v}: {layout.dimension}' for v, layout in self.layouts.items())}); "
                "pass version="
            )
        return matching[0]

    def _exact(
        self, version: str, queries: npt.NDArray[np.float32], k: int, filter: Filter | None
    ) -> list[list[Hit]]:
        sources = [source for source in self._sources() if source.version == version and source.live_rows]
        best_index = np.full((queries.shape[0], k), -1, dtype=np.int64)
        best_score = np.full((queries.shape[0], k), EXCLUDED, dtype=np.float32)
        offsets = []
        offset = 0
        tile = max(1, _TILE_VALUES // queries.shape[0])
        for source in sources:
            offsets.append(offset)
            excluded = ~self._admitted(source, filter)
            vectors, inverse = np.asarray(source.vectors), np.asarray(source.inverse_norms)
            for start in range(0, source.rows, tile):
                stop = min(source.rows, start + tile)
                scores = queries @ vectors[start:stop].T
                np.multiply(scores, inverse[start:stop], out=scores)
                dropped = np.flatnonzero(excluded[start:stop])
                if dropped.size:
                    scores[:, dropped] = EXCLUDED
                index, value = top_k(scores, k)
                index = np.where(index >= 0, index + offset + start, -1)
                best_index, best_score = merge(best_index, best_score, index, value, k)
            offset += source.rows
        starts = np.asarray(offsets, dtype=np.int64)
        results: list[list[Hit]] = []
        for row_index, row_score in zip(best_index.tolist(), best_score.tolist(), strict=True):
            hits = []
            for position, score in zip(row_index, row_score, strict=True):
                if position < 0:
                    break
                which = int(np.searchsorted(starts, position, side="right")) - 1
                source = sources[which]
                hits.append(
                    Hit(source.id_bytes(position - offsets[which]).decode("utf-8"), float(score), version)
                )
            results.append(hits)
        return results

    def _admitted(self, source: Source, filter: Filter | None) -> npt.NDArray[np.bool_]:
        alive = np.asarray(source.alive)
        if filter is None:
            return alive
        admitted = alive.copy()
        metadata = source.all_metadata()
        if isinstance(filter, Mapping):
            wanted = dict(filter)
            for row in np.flatnonzero(alive).tolist():
                found = metadata_from_json(metadata[row]) or {}
                admitted[row] = all(key in found and found[key] == value for key, value in wanted.items())
        else:
            for row in np.flatnonzero(alive).tolist():
                admitted[row] = bool(
                    filter(source.id_bytes(row).decode("utf-8"), metadata_from_json(metadata[row]))
                )
        return admitted

    def ann_recall(self, queries: Any, k: int = 10, *, version: str | None = None) -> float:
        """Recall@k of the approximate index against the exact search, over ``queries`` (a
        matrix): the share of the exact top ``k`` that the approximate search also returns."""
        from cadmetrics.vectors.ann import recall

        return recall(self, queries, k, version=version)

    def build_index(self, version: str, *, neighbours: int = 32, ef_search: int = 128) -> None:
        """Build the approximate (HNSW, faiss) index of ``version`` for ``search(method="ann")``;
        it is rebuilt by itself when the records change. Needs the ``ann`` extra."""
        from cadmetrics.vectors.ann import build

        with self._lock:
            self._ann[version] = build(self, version, neighbours=neighbours, ef_search=ef_search)

    # -- migration (see cadmetrics.vectors.migration) -------------------------------------------

    def plan_migration(self, to: str) -> MigrationPlan:
        """What migrating every record to version ``to`` would do (a dry run: nothing changes)."""
        from cadmetrics.vectors.migration import plan_for

        return plan_for(self, to)

    def migrate(
        self,
        plan: MigrationPlan,
        *,
        extractor: Any = None,
        content: Callable[[str], bytes | None] | None = None,
        batch_size: int = 10_000,
        resume: bool = True,
        progress: bool | None = None,
    ) -> MigrationResult:
        """Carry out ``plan``: see :func:`cadmetrics.vectors.migration.migrate`."""
        from cadmetrics.vectors.migration import migrate

        return migrate(
            self,
            plan,
            extractor=extractor,
            content=content,
            batch_size=batch_size,
            resume=resume,
            progress=progress,
        )

    def abort_migration(self) -> None:
        """Drop a pending migration: the store stays exactly as it was before it began."""
        from cadmetrics.vectors.migration import abort

        abort(self)

    @property
    def pending_migration(self) -> str | None:
        """The target version of a migration begun and not finished (after a crash), if any."""
        return None if self._pending_migration is None else str(self._pending_migration["target"])

    # -- drift baselines ------------------------------------------------------------------------

    def save_baseline(self, baseline: Baseline, name: str = "default") -> Path:
        """Keep a drift baseline with the store (atomically); returns its file."""
        if self.path is None:
            raise VectorStoreError("a store in memory has nowhere to save a baseline")
        _check_name(name)
        directory = self.path / BASELINES
        directory.mkdir(exist_ok=True)
        target = directory / f"{name}.npz"
        baseline.save(target)
        return target

    def load_baseline(self, name: str = "default") -> Baseline:
        from cadmetrics.drift.baseline import Baseline

        if self.path is None:
            raise VectorStoreError("a store in memory holds no saved baselines")
        _check_name(name)
        return Baseline.load(self.path / BASELINES / f"{name}.npz")

    # -- internals ------------------------------------------------------------------------------

    def _sources(self) -> Iterator[Source]:
        yield from self._segments
        yield from self._buffers.values()

    def _layout(self, version: str) -> FeatureLayout:
        layout = self.layouts.get(version)
        if layout is None:
            raise VectorInputError(
                f"unknown feature version {version!r}; this store holds {', '.join(self.layouts)}"
            )
        return layout

    def _buffer(self, version: str) -> Buffer:
        buffer = self._buffers.get(version)
        if buffer is None:
            buffer = self._buffers[version] = Buffer(version, self.layouts[version].dimension)
        return buffer

    def _find(self, key: bytes) -> tuple[Source, int] | None:
        found = self._buffer_index.get(key)
        if found is not None:
            buffer = self._buffers[found[0]]
            if buffer.alive[found[1]]:
                return buffer, found[1]
        for segment in reversed(self._segments):
            row = segment.find(key)
            if row is not None:
                return segment, row
        return None

    def _stored_among(self, keys: list[bytes]) -> set[bytes]:
        """Those of ``keys`` held by a live record."""
        stored = set()
        for key in keys:
            found = self._buffer_index.get(key)
            if found is not None and self._buffers[found[0]].alive[found[1]]:
                stored.add(key)
        for segment in self._segments:
            if len(keys) > 16:
                stored.update(segment.holding(keys))
            else:  # a few bisections cost less than sorting the segment's ids
                stored.update(key for key in keys if segment.find(key) is not None)
        return stored

    def _forget(self, key: bytes) -> None:
        found = self._find(key)
        if found is not None:
            found[0].delete(found[1])
            self._buffer_index.pop(key, None)

    def _filled_code(self, filled_from: str | None) -> int:
        return NOT_FILLED if filled_from is None else self.versions.index(filled_from)

    def _record(self, source: Source, row: int) -> Record:
        code = int(source.filled[row])
        return Record(
            id=source.id_bytes(row).decode("utf-8"),
            vector=np.array(source.vectors[row], dtype=np.float32),
            version=source.version,
            sha256=bytes(np.asarray(source.content[row])).hex(),
            metadata=metadata_from_json(source.metadata(row)),
            filled=code != NOT_FILLED,
        )


def _version_of(item: Segment | SegmentInfo) -> str:
    return item.version


def _live(item: Segment | SegmentInfo) -> int:
    return item.live_rows if isinstance(item, Segment) else item.rows


def _lock(root: Path) -> Any:
    handle = open(root / LOCK, "a+")  # noqa: SIM115 - held for the store's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise VectorStoreError(
            f"vector store {root}: another process has it open; a store has one writer at a time"
        ) from None
    return handle


def _read_manifest(root: Path) -> dict[str, Any] | None:
    path = root / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreCorruptError(f"{path}: cannot be read ({exc})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreCorruptError(f"{path}: not JSON at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise StoreCorruptError(f"{path}: not a vector store manifest of format {FORMAT} (format {found!r})")
    kinds = {"generation": int, "layouts": dict, "segments": list, "log": str}
    for key, kind in kinds.items():
        if not isinstance(manifest.get(key), kind):
            raise StoreCorruptError(f"{path}: the manifest's {key!r} is missing or not a {kind.__name__}")
    if not isinstance(manifest.get("migration"), dict | None) or "/" in manifest["log"]:
        raise StoreCorruptError(f"{path}: the manifest's log or migration entry is damaged")
    return manifest


def _refuse_foreign_directory(root: Path) -> None:
    """A directory with files of its own is not silently turned into a store."""
    ours = {LOCK, SEGMENTS}
    foreign = [
        entry.name
        for entry in root.iterdir()
        if entry.name not in ours and not entry.name.startswith(("log-", ".tmp-"))
    ]
    if foreign:
        raise VectorStoreError(
            f"{root}: not a vector store (no {MANIFEST}) and not empty ({', '.join(sorted(foreign)[:3])}); "
            "give an empty or new directory"
        )


def _new_manifest(root: Path, layouts: Mapping[str, FeatureLayout]) -> dict[str, Any]:
    log_name = "log-0.wal"
    with contextlib.suppress(FileNotFoundError):
        (root / log_name).unlink()  # left by a creation that crashed before its manifest
    WriteAheadLog.create(root / log_name).close()
    return _write_manifest(
        root, generation=0, layouts=layouts, segments=[], log_name=log_name, migration=None
    )


def _write_manifest(
    root: Path,
    *,
    generation: int,
    layouts: Mapping[str, FeatureLayout],
    segments: list[SegmentInfo],
    log_name: str,
    migration: dict[str, Any] | None,
) -> dict[str, Any]:
    manifest = {
        "format": FORMAT,
        "generation": generation,
        "layouts": {
            version: [
                {"name": f.name, "group": f.group, "default": f.default, "description": f.description}
                for f in layout.features
            ]
            for version, layout in layouts.items()
        },
        "segments": [info.to_json() for info in segments],
        "log": log_name,
        "migration": migration,
    }
    (root / SEGMENTS).mkdir(exist_ok=True)
    write_atomically(root / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))
    fsync_path(root)
    return manifest


def _layouts_from_manifest(root: Path, manifest: dict[str, Any]) -> dict[str, FeatureLayout]:
    try:
        return {
            str(version): FeatureLayout(
                str(version),
                tuple(
                    Feature(
                        str(f["name"]), str(f.get("description", "")), group=str(f["group"]),
                        default=float(f["default"]),
                    )
                    for f in features
                ),
            )
            for version, features in manifest["layouts"].items()
        }  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreCorruptError(f"{root / MANIFEST}: the layouts cannot be read ({exc!r})") from None


def _check_layouts(
    root: Path, stored: Mapping[str, FeatureLayout], given: Mapping[str, FeatureLayout]
) -> None:
    for version in sorted(set(stored) | set(given)):
        old, new = stored.get(version), given.get(version)
        if old is None or new is None or old.names != new.names:
            raise VectorStoreError(
                f"vector store {root}: its {version} layout differs from the one given "
                f"({'missing' if old is None else old.dimension} vs "
                f"{'missing' if new is None else new.dimension} features, or other names); "
                "open it without layouts= to use the ones it was made with"
            )


def _check_name(name: str) -> None:
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise VectorInputError(f"a baseline name is letters, digits, - and _, got {name!r}")
