"""VectorStore: feature vectors kept durably, searched exactly, migrated between versions.

The store is a facade: its storage engine (:mod:`cadmetrics.vectors._engine`) alone owns the
files, the log and the in-memory tables; search (:mod:`~cadmetrics.vectors.search`), the
approximate index (:mod:`~cadmetrics.vectors.ann`) and migration
(:mod:`~cadmetrics.vectors.migration`) read through its snapshots and write through its
transactions. What is on disk and why nothing acknowledged is lost: see the engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from cadmetrics.errors import VectorInputError, VectorStoreError
from cadmetrics.features.layout import LAYOUTS, FeatureLayout
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.health import Check, Status
from cadmetrics.vectors._engine import DEFAULT_CHECKPOINT_BYTES, Engine, open_engine
from cadmetrics.vectors.ann import recall
from cadmetrics.vectors.columns import check_columns
from cadmetrics.vectors.migration import abort, migrate
from cadmetrics.vectors.plan import MigrationPlan, MigrationResult, plan_for
from cadmetrics.vectors.records import Features, Hit, Persistable, Record, check_record
from cadmetrics.vectors.search import Filter, as_array, unit_queries, version_of_dimension
from cadmetrics.vectors.searcher import METHODS, Searcher

if TYPE_CHECKING:
    from cadmetrics.drift.baseline import Baseline

#: Where drift baselines are kept with a store.
BASELINES = "baselines"


class VectorStore:
    """Feature vectors by id, with their version, content hash and metadata.

    Open one with :meth:`open` (a directory, or ``None`` for a store in memory). One process
    at a time may open a directory; within it, the store is safe to share between threads.
    """

    def __init__(self, engine: Engine, telemetry: Telemetry, device: str | None = None) -> None:
        self.engine = engine
        self.telemetry = telemetry
        self.device = device
        self._searcher = Searcher(device)
        self.layouts: dict[str, FeatureLayout] = engine.layouts
        self.versions: tuple[str, ...] = engine.versions
        self._search_duration = telemetry.histogram("cadmetrics_vector_search_duration_seconds")

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
        device: str | None = None,
    ) -> VectorStore:
        """Open the store at ``path`` (created when missing), or a store in memory for ``None``.

        ``layouts`` are the feature versions it holds (default: the mesh layouts v1 to v4); a
        new store records them, an existing one is checked against them. ``sync=False`` skips
        the fsync of each write: faster, but a crash may lose the last writes (never a middle
        one, never a torn vector).

        ``read_only=True`` opens an existing store without taking it from its writer: for
        inspection (``cadmetrics vectors stats``, ``cadmetrics drift``) beside a running
        service. It sees the store as it was when opened and refuses every write.

        ``device="cuda"`` (any PyTorch device) keeps the vectors on that device too and runs
        the exact search there, with the same answers; it needs PyTorch, and the device.
        """
        tel = telemetry if telemetry is not None else Telemetry()
        stored = tel.gauge("cadmetrics_vectors_stored")

        def publish(counts: dict[str, int]) -> None:
            for version, count in counts.items():
                stored.set(count, version=version)

        engine = open_engine(
            None if path is None else Path(path), layouts=layouts, default_layouts=LAYOUTS, sync=sync,
            checkpoint_bytes=checkpoint_bytes, read_only=read_only, on_change=publish,
        )  # fmt: skip
        try:
            return cls(engine, tel, device)
        except BaseException:
            engine.close()
            raise

    @property
    def path(self) -> Path | None:
        return self.engine.root

    @property
    def read_only(self) -> bool:
        return self.engine.read_only

    @property
    def problems(self) -> list[str]:
        """What the last open found and set aside (torn log tails), and failed checkpoints."""
        return self.engine.problems

    @property
    def _lock_file(self) -> Any:
        return self.engine.lock_file

    def health(self) -> list[Check]:
        """Fail when closed, warn while a migration is pending (the old vectors serve until it
        finishes), pass when open; read-only is said in the output."""
        if self.engine.closed:
            return [Check("vectors", "store", Status.FAIL, "the store is closed")]
        with self.engine.read() as snapshot:
            pending = snapshot.pending
            records = len(snapshot)
        if pending is not None:
            output = f"a migration to {pending.target} is pending: resume it with migrate() or abort it"
            return [Check("vectors", "store", Status.WARN, output, observed_value=records)]
        output = "open read-only" if self.read_only else ""
        return [Check("vectors", "store", Status.PASS, output, observed_value=records)]

    def close(self) -> None:
        """Checkpoint and release the directory. Closing twice is harmless; a checkpoint that
        fails (a full disk) is raised after the directory is released, its writes safe in the
        log for the next open."""
        self.engine.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self.engine.read() as snapshot:
            return len(snapshot)

    def __contains__(self, id: object) -> bool:
        if not isinstance(id, str):
            return False
        with self.engine.read() as snapshot:
            return snapshot.find(id) is not None

    def __iter__(self) -> Iterator[Record]:
        """Every record, segment by segment (a snapshot of the ids taken when iteration starts)."""
        with self.engine.read() as snapshot:
            sources = snapshot.sources()
            rows = [np.flatnonzero(source.alive) for source in sources]
        for source, live in zip(sources, rows, strict=True):
            for row in live.tolist():
                if source.alive[row]:
                    yield snapshot.record(source, row)

    def ids(self) -> list[str]:
        with self.engine.read() as snapshot:
            return [
                source.id_bytes(row).decode("utf-8")
                for source in snapshot.sources()
                for row in np.flatnonzero(source.alive).tolist()
            ]

    def get(self, id: str) -> Record | None:
        """The record stored under ``id``, or None."""
        if not isinstance(id, str):
            raise VectorInputError(f"ids are strings, got {type(id).__name__} {id!r}")
        with self.engine.read() as snapshot:
            found = snapshot.find(id)
            return None if found is None else snapshot.record(*found)

    def __getitem__(self, id: str) -> Record:
        record = self.get(id)
        if record is None:
            raise KeyError(id)
        return record

    def counts(self) -> dict[str, int]:
        """Records held per feature version (every version of the store's layouts)."""
        with self.engine.read() as snapshot:
            return snapshot.counts()

    def filled_count(self) -> int:
        with self.engine.read() as snapshot:
            return snapshot.filled_count()

    def stats(self) -> dict[str, Any]:
        """A summary for operators: counts, dimensions, segments, log size, pending migration."""
        with self.engine.read() as snapshot:
            return {
                "path": str(self.path) if self.path is not None else None,
                "records": len(snapshot),
                "versions": {
                    version: {"records": count, "dimension": self.layouts[version].dimension}
                    for version, count in snapshot.counts().items()
                },
                "filled": snapshot.filled_count(),
                "segments": snapshot.segments,
                "generation": snapshot.generation,
                "log_bytes": self.engine.log_bytes(),
                "pending_migration": snapshot.pending.target if snapshot.pending else None,
                "problems": list(self.problems),
            }

    def vectors(self, version: str) -> npt.NDArray[np.float32]:
        """Every live vector of ``version``, as one matrix (a copy; row order as iteration)."""
        layout = self.layout(version)
        with self.engine.read() as snapshot:
            parts = [np.asarray(source.vectors)[source.alive] for source in snapshot.sources(version)]
        if not parts:
            return np.zeros((0, layout.dimension), dtype=np.float32)
        return np.concatenate(parts)

    def verify(self) -> list[str]:
        """Re-read every segment against the CRC-32 its manifest records; the problems found."""
        return self.engine.verify()

    def layout(self, version: str) -> FeatureLayout:
        """The layout of ``version``; a clear error for a version the store does not hold."""
        layout = self.layouts.get(version)
        if layout is None:
            raise VectorInputError(
                f"unknown feature version {version!r}; this store holds {', '.join(self.layouts)}"
            )
        return layout

    # -- writing --------------------------------------------------------------------------------

    def add(
        self,
        id: str,
        vector: Any,
        *,
        version: str,
        sha256: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Store one vector under a new ``id``; durable when this returns. ``sha256`` names
        the content it was extracted from: without it, a migration that upgrades the record
        can only fill its new features, never re-extract them."""
        record = check_record(id, vector, version, sha256, metadata, layouts=self.layouts)
        with self.engine.write() as transaction:
            transaction.add([record])

    def add_many(self, records: Iterable[Record]) -> int:
        """Store several records at once: all or none, with one fsync. Returns how many."""
        checked = [
            check_record(
                record.id, record.vector, record.version, record.sha256, record.metadata,
                layouts=self.layouts, where=f" (item {position})",
            )
            for position, record in enumerate(records)
        ]  # fmt: skip
        with self.engine.write() as transaction:
            transaction.add(checked)
        return len(checked)

    def add_columns(
        self,
        ids: Sequence[str],
        vectors: Any,
        *,
        version: str,
        sha256: Sequence[str | None] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> int:
        """Store a batch given as columns: ``ids``, a matrix with one row per id, and
        optionally a content sha256 and metadata per id. Checked as a whole, written
        straight into a new segment, durable when this returns; all or none. The fast way
        to load many vectors. Returns how many."""
        rows = check_columns(ids, vectors, version, sha256, metadata, layouts=self.layouts)
        self.engine.ingest(version, rows)
        return len(rows)

    def add_features(
        self, features: Features, *, id: str | None = None, metadata: Mapping[str, Any] | None = None
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
        with self.engine.write() as transaction:
            if not isinstance(id, str):
                raise KeyError(id)
            transaction.delete(id)

    def checkpoint(self) -> None:
        """Turn recent writes into segments, persist deletions, start a new log.

        Runs by itself when the log grows past ``checkpoint_bytes`` and at :meth:`close`.
        """
        self.engine.checkpoint()

    def compact(self) -> None:
        """Rewrite each version as one segment without its deleted rows."""
        self.engine.compact()

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
        array = as_array(vector)
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
        if method not in METHODS:
            raise VectorInputError(f"search method must be 'exact' or 'ann', got {method!r}")
        if not isinstance(k, int) or k < 1:
            raise VectorInputError(f"k must be a positive integer, got {k!r}")
        started = time.perf_counter()
        units = unit_queries(as_array(queries), None if version is None else self.layout(version))
        target = version if version is not None else version_of_dimension(self.layouts, units.shape[1])
        traced = self.telemetry.span(
            "cadmetrics.vectors.search", version=target, method=method, k=k, queries=int(units.shape[0])
        )
        with traced, self.engine.read() as snapshot:
            hits = self._searcher.search(snapshot, target, units, k, filter=filter, method=method)
            self._search_duration.observe(time.perf_counter() - started, method=method)
        return hits

    def ann_recall(self, queries: Any, k: int = 10, *, version: str | None = None) -> float:
        """Recall@k of the approximate index against the exact search, over ``queries`` (a
        matrix): the share of the exact top ``k`` that the approximate search also returns."""
        exact_hits = self.search_batch(queries, k, version=version, method="exact")
        approximate = self.search_batch(queries, k, version=version, method="ann")
        return recall(exact_hits, approximate)

    def build_index(self, version: str, *, neighbours: int = 32, ef_search: int = 128) -> None:
        """Build the approximate (HNSW, faiss) index of ``version`` for ``search(method="ann")``;
        it is rebuilt by itself when the records change. Needs the ``ann`` extra."""
        self.layout(version)
        with self.engine.read() as snapshot:
            self._searcher.build_index(snapshot, version, neighbours=neighbours, ef_search=ef_search)

    # -- migration (see cadmetrics.vectors.migration) -------------------------------------------

    def plan_migration(self, to: str) -> MigrationPlan:
        """What migrating every record to version ``to`` would do (a dry run: nothing changes)."""
        return plan_for(self.engine, self.layout(to))

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
        return migrate(
            self.engine,
            self.telemetry,
            plan,
            extractor=extractor,
            content=content,
            batch_size=batch_size,
            resume=resume,
            progress=progress,
        )

    def abort_migration(self) -> None:
        """Drop a pending migration: the store stays exactly as it was before it began."""
        abort(self.engine)

    @property
    def pending_migration(self) -> str | None:
        """The target version of a migration begun and not finished (after a crash), if any."""
        with self.engine.read() as snapshot:
            return None if snapshot.pending is None else snapshot.pending.target

    # -- drift baselines ------------------------------------------------------------------------

    def save_baseline(self, baseline: Persistable, name: str = "default") -> Path:
        """Keep a drift baseline with the store (atomically); returns its file."""
        _check_name(name)
        saved = self.engine.save_attachment(BASELINES, f"{name}.npz", baseline.to_bytes())
        if saved is None:
            raise VectorStoreError("a store in memory has nowhere to save a baseline")
        return saved

    def load_baseline(self, name: str = "default") -> Baseline:
        """The drift baseline saved under ``name``: see :func:`cadmetrics.drift.load_baseline`."""
        from cadmetrics.drift.persistence import load_baseline

        return load_baseline(self, name)

    def baseline_bytes(self, name: str = "default") -> tuple[bytes | None, str]:
        """The saved bytes of the baseline ``name`` (None where there are none), and where
        they are, for messages."""
        _check_name(name)
        found = self.engine.load_attachment(BASELINES, f"{name}.npz")
        if found is None:
            raise VectorStoreError("a store in memory holds no saved baselines")
        return found


def _check_name(name: str) -> None:
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise VectorInputError(f"a baseline name is letters, digits, - and _, got {name!r}")
