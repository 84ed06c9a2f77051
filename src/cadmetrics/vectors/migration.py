"""Moving a store's vectors to another feature version, without losing one.

Features are matched by name, never by position: a downgrade keeps exactly the features the
target layout has, an upgrade keeps every stored feature and obtains the new ones by
re-extracting the source content (when an extractor and the content are at hand) or by filling
the layout's declared defaults, and then says so on the record (``Record.filled``).

The new vectors are written, batch by batch, into a segment the manifest does not name yet;
each batch ends with a checkpoint (the rows synced, then the position written atomically), so
a crash resumes from the last checkpoint. Until the final manifest rename the store serves the
old vectors; from it, only the new ones: the switch is atomic.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.durable import write_atomically
from cadmetrics.errors import VectorInputError, VectorStoreError
from cadmetrics.features.layout import FeatureLayout
from cadmetrics.progress import ProgressBar, progress_bar
from cadmetrics.vectors.buffer import Buffer
from cadmetrics.vectors.segment import FILLED_UNKNOWN, NOT_FILLED, Rows, Segment, SegmentWriter

if TYPE_CHECKING:
    from cadmetrics.vectors.store import VectorStore

CHECKPOINT = "checkpoint.json"
#: What the time estimate assumes: bytes moved per second by a projection, and seconds per
#: re-extraction (a CAD part of some ten thousand faces). Both are deliberately rough.
_ESTIMATED_BYTES_PER_SECOND = 500e6
_ESTIMATED_EXTRACTION_SECONDS = 0.05


@attrs.frozen
class MigrationPlan:
    """What a migration to ``target`` will do, worked out without changing anything.

    ``sources`` counts the records of each version that will move; ``staying`` those already
    at the target. Per source version: ``dimension_delta`` (target minus source dimension),
    ``dropped`` (features the target lacks) and ``missing`` (features the source lacks, to be
    re-extracted or filled). ``done`` counts records a pending migration already moved.
    """

    target: str
    sources: dict[str, int]
    staying: int
    dimension_delta: dict[str, int]
    dropped: dict[str, tuple[str, ...]]
    missing: dict[str, tuple[str, ...]]
    estimated_seconds: float
    generation: int
    changes: int
    done: int = 0

    @property
    def upgrades(self) -> int:
        """Records that gain dimensions."""
        return sum(n for version, n in self.sources.items() if self.dimension_delta[version] > 0)

    @property
    def downgrades(self) -> int:
        """Records that lose dimensions."""
        return sum(n for version, n in self.sources.items() if self.dimension_delta[version] < 0)

    @property
    def records(self) -> int:
        """Records that will move."""
        return sum(self.sources.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "records": self.records,
            "staying": self.staying,
            "upgrades": self.upgrades,
            "downgrades": self.downgrades,
            "sources": {
                version: {
                    "records": count,
                    "dimension_delta": self.dimension_delta[version],
                    "dropped": list(self.dropped[version]),
                    "missing": list(self.missing[version]),
                }
                for version, count in self.sources.items()
            },
            "estimated_seconds": round(self.estimated_seconds, 3),
            "done": self.done,
        }

    def describe(self) -> str:
        lines = [
            f"migrate to {self.target}: {self.records} records move ({self.upgrades} up, "
            f"{self.downgrades} down), {self.staying} stay; about {self.estimated_seconds:.1f} s"
        ]
        for version, count in self.sources.items():
            lines.append(
                f"  {version} -> {self.target}: {count} records, dimension {self.dimension_delta[version]:+d}"
                + (f", drops {_names(self.dropped[version])}" if self.dropped[version] else "")
                + (f", needs {_names(self.missing[version])}" if self.missing[version] else "")
            )
        if self.done:
            lines.append(f"  resumes a migration that already moved {self.done} records")
        return "\n".join(lines)


@attrs.frozen
class MigrationResult:
    """What a migration did: records by how their features were obtained (projected,
    re_extracted, filled), the records whose re-extraction failed (filled instead, with the
    reason), and whether it resumed an interrupted run."""

    target: str
    methods: dict[str, int]
    failures: tuple[tuple[str, str], ...]
    seconds: float
    resumed: bool

    @property
    def records(self) -> int:
        return sum(self.methods.values())


def plan_for(store: VectorStore, to: str) -> MigrationPlan:
    with store._lock:
        target = store._layout(to)
        counts = store.counts()
        if store._pending_migration is not None:
            pending = store._pending_migration
            if pending["target"] != to:
                raise VectorStoreError(
                    f"vector store {store.path}: a migration to {pending['target']} is under way; finish it "
                    "or abort it (store.abort_migration()) before planning another"
                )
            sources = {version: int(n) for version, n in pending["sources"].items()}
            done = _read_checkpoint(store)["rows_done"]
        else:
            sources = {version: n for version, n in counts.items() if version != to and n}
            done = 0
        moved_bytes = sum(
            n * 4 * (store.layouts[version].dimension + target.dimension) for version, n in sources.items()
        )
        missing = {version: _missing(store.layouts[version], target) for version in sources}
        return MigrationPlan(
            target=to,
            sources=sources,
            staying=counts.get(to, 0),
            dimension_delta={v: target.dimension - store.layouts[v].dimension for v in sources},
            dropped={v: tuple(n for n in store.layouts[v].names if n not in target.names) for v in sources},
            missing=missing,
            estimated_seconds=moved_bytes / _ESTIMATED_BYTES_PER_SECOND,
            generation=store._generation,
            changes=store._changes,
            done=done,
        )


def migrate(
    store: VectorStore,
    plan: MigrationPlan,
    *,
    extractor: Any,
    content: Callable[[str], bytes | None] | None,
    batch_size: int,
    resume: bool,
    progress: bool | None,
) -> MigrationResult:
    """Carry out ``plan`` on ``store``.

    ``extractor`` (a :class:`~cadmetrics.FeatureExtractor` of the target version) and
    ``content`` (a function from a content sha256 to its bytes, None when unknown) let an
    upgrade re-extract the missing features; without them, or when one record's content is
    missing or fails to extract, the layout's defaults are filled in and the record is marked
    as filled. ``resume=False`` discards a pending migration and starts again.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise VectorInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    target = store._layout(plan.target)
    if extractor is not None:
        made = [getattr(extractor, name, None) for name in ("layout", "drawing_layout", "brep_layout")]
        if not any(isinstance(layout, FeatureLayout) and layout.names == target.names for layout in made):
            raise VectorInputError(
                f"the extractor's vectors do not have the features of this store's {plan.target} layout"
            )
    started = time.perf_counter()
    with store._lock:
        _refuse_read_only(store)
        if store._pending_migration is not None and not resume:
            abort(store)
            plan = plan_for(store, plan.target)
        resumed = store._pending_migration is not None
        if resumed:
            if store._pending_migration["target"] != plan.target:  # type: ignore[index]
                raise VectorStoreError(
                    f"vector store {store.path}: the pending migration goes to "
                    f"{store._pending_migration['target']}, not {plan.target}"  # type: ignore[index]
                )
        elif (plan.generation, plan.changes) != (store._generation, store._changes):
            raise VectorStoreError(
                f"vector store {store.path}: it changed since this plan was made; plan again"
            )
        if not resumed and not plan.sources:
            return MigrationResult(plan.target, {}, (), time.perf_counter() - started, False)
        job = _Job(store, plan, target, extractor, content)
        if resumed:
            for version in plan.sources:
                job.count_migration(version, "resumed")
        try:
            if store.path is None:
                job.run_in_memory(batch_size, progress)
            else:
                job.run_on_disk(batch_size, progress, resumed)
        except BaseException:
            for version in plan.sources:
                job.count_migration(version, "failed")
            raise
        seconds = time.perf_counter() - started
        job.count_success(seconds if job.began is None else max(seconds, time.time() - job.began))
        return MigrationResult(plan.target, dict(job.methods), tuple(job.failures), seconds, resumed)


def abort(store: VectorStore) -> None:
    with store._lock:
        _refuse_read_only(store)
        if store._pending_migration is None:
            return
        store._commit(list(store._segments), migration=None)


class _Job:
    """One migration's state: the column maps per source version and the counts so far."""

    def __init__(
        self,
        store: VectorStore,
        plan: MigrationPlan,
        target: FeatureLayout,
        extractor: Any,
        content: Callable[[str], bytes | None] | None,
    ) -> None:
        self.store = store
        self.plan = plan
        self.target = target
        self.target_code = store.versions.index(target.version)
        self.extractor = extractor if content is not None else None
        self.content = content
        self.methods: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []
        self.began: float | None = None  # wall-clock start of a migration on disk, across resumes
        self.defaults = np.array([feature.default for feature in target.features], dtype=np.float32)
        self._migrations = store.telemetry.counter("cadmetrics_vector_migrations_total")
        self._downgrades = store.telemetry.counter("cadmetrics_vector_downgrades_total")
        self._records = store.telemetry.counter("cadmetrics_vector_migrated_records_total")
        self._delta = store.telemetry.histogram("cadmetrics_vector_migration_dimension_delta")
        self._duration = store.telemetry.histogram("cadmetrics_vector_migration_duration_seconds")

    # -- the two ways to run --------------------------------------------------------------------

    def run_in_memory(self, batch_size: int, progress: bool | None) -> None:
        store = self.store
        version = self.target.version
        blocks = []
        staying = store._buffers.get(version)
        if staying is not None and staying.live_rows:
            blocks.append(staying.take(np.flatnonzero(staying.alive)))
        bar = self._bar(self.plan.records, progress)
        try:
            for source in [s for s in store._sources() if s.version != version and s.live_rows]:
                live = np.flatnonzero(source.alive)
                for start in range(0, live.size, batch_size):
                    blocks.append(self.convert(source, live[start : start + batch_size]))
                    bar.update(len(blocks[-1]))
        finally:
            bar.close()
        moved = Buffer(version, self.target.dimension)
        moved.extend(Rows.concatenate(blocks))
        store._buffers = {version: moved}
        store._buffer_index = {key: (version, row) for row, key in enumerate(moved.id_list)}
        store._ann.clear()
        store._changed()

    def _bar(self, total: int, progress: bool | None) -> ProgressBar:
        return progress_bar(total, unit="vector", description=f"to {self.target.version}", show=progress)

    def run_on_disk(self, batch_size: int, progress: bool | None, resumed: bool) -> None:
        store = self.store
        assert store.path is not None
        if not resumed:
            store.checkpoint()  # recent writes into segments: the migration reads segments only
            sources = [s for s in store._segments if s.version != self.target.version and s.live_rows]
            name = f"g{store._generation + 1}-{self.target.version}-migrated-{secrets.token_hex(4)}"
            record: dict[str, Any] = {
                "target": self.target.version,
                "segment": name,
                "sources": dict(self.plan.sources),
                "segments": [s.info.name for s in sources],
                "rows": sum(s.live_rows for s in sources),
                "id_width": max(s.ids.dtype.itemsize for s in sources),
                "started": time.time(),  # wall clock: the duration metric spans a resumed run too
            }
            store._commit(list(store._segments), migration=record)
            _write_checkpoint(store, {"rows_done": 0, "methods": {}, "failures": []})
        pending = store._pending_migration
        assert pending is not None
        self.began = float(pending.get("started", time.time()))
        by_name = {s.info.name: s for s in store._segments}
        sources = [by_name[name] for name in pending["segments"]]
        state = _read_checkpoint(store)
        self.methods = {str(k): int(v) for k, v in state["methods"].items()}
        self.failures = [(str(i), str(r)) for i, r in state["failures"]]
        directory = store.path / "segments" / pending["segment"]
        arguments = (directory, self.target.version, int(pending["rows"]), self.target.dimension)
        done = int(state["rows_done"])
        if done:
            writer = SegmentWriter.resume(*arguments, int(pending["id_width"]), rows_done=done)
        else:  # nothing checkpointed: whatever a crash left of the files is started again
            shutil.rmtree(directory, ignore_errors=True)
            writer = SegmentWriter(*arguments, int(pending["id_width"]))
        bar = progress_bar(
            int(pending["rows"]), unit="vector", description=f"to {self.target.version}", show=progress
        )
        bar.update(done)
        try:
            position = 0
            for source in sources:
                live = np.flatnonzero(source.alive)
                for start in range(0, live.size, batch_size):
                    rows = live[start : start + batch_size]
                    if position + rows.size <= done:
                        position += rows.size
                        continue
                    rows = rows[max(0, done - position) :]
                    writer.write(done, self.convert(source, rows))
                    writer.flush()
                    done += rows.size
                    position = done
                    _write_checkpoint(
                        store, {"rows_done": done, "methods": self.methods, "failures": self.failures}
                    )
                    bar.update(rows.size)
        finally:
            bar.close()
        info = writer.finish(pending["segment"])
        moved_from = set(pending["segments"])
        remaining: list[Segment | Any] = [s for s in store._segments if s.info.name not in moved_from]
        store._commit([*remaining, info], migration=None)

    # -- one batch ------------------------------------------------------------------------------

    def convert(self, source: Segment | Buffer, rows: npt.NDArray[np.int64]) -> Rows:
        """The batch's rows of ``source`` in the target layout, with their new filled codes."""
        block = source.take(rows)
        layout = self.store.layouts[source.version]
        result = np.empty((rows.size, self.target.dimension), dtype=np.float32)
        result[:] = self.defaults
        shared_target, shared_source = _column_map(layout, self.target)
        result[:, shared_target] = block.vectors[:, shared_source]
        filled = np.empty(rows.size, dtype=np.int8)
        for code in np.unique(block.filled).tolist():
            which = np.flatnonzero(block.filled == code)
            measured = self._measured(source.version, int(code))
            if measured is not None and set(self.target.names) <= measured:
                filled[which] = NOT_FILLED
                self._count("projected", which.size)
                continue
            if self.extractor is None:
                filled[which] = self._filled_code(measured)
                self._count("filled", which.size)
                continue
            for index in which.tolist():
                if self._re_extract(result, index, block.ids[index], block.content[index], measured):
                    filled[index] = NOT_FILLED
                    self._count("re_extracted", 1)
                else:
                    filled[index] = self._filled_code(measured)
                    self._count("filled", 1)
        return Rows(result, block.ids, block.content, filled, block.metadata)

    def _measured(self, version: str, code: int) -> set[str] | None:
        """The features of a record that hold measured values (None when unknown)."""
        if code == FILLED_UNKNOWN:
            return None
        measured_version = version if code == NOT_FILLED else self.store.versions[code]
        return set(self.store.layouts[measured_version].names) & set(self.store.layouts[version].names)

    def _filled_code(self, measured: set[str] | None) -> int:
        """The code of the largest version all of whose features stay measured in the target."""
        if measured is None:
            return FILLED_UNKNOWN
        kept = measured & set(self.target.names)
        candidates = [
            (layout.dimension, self.store.versions.index(version))
            for version, layout in self.store.layouts.items()
            if set(layout.names) <= kept
        ]
        return max(candidates)[1] if candidates else FILLED_UNKNOWN

    def _re_extract(
        self,
        result: npt.NDArray[np.float32],
        index: int,
        id_bytes: bytes,
        digest: npt.NDArray[np.uint8],
        measured: set[str] | None,
    ) -> bool:
        """Fill the features ``measured`` lacks from the content's fresh extraction; the stored
        measured values are kept as they are, so an upgrade then a downgrade gives them back."""
        assert self.content is not None
        assert self.extractor is not None
        sha256 = bytes(digest).hex()
        try:
            data = self.content(sha256)
            if data is None:
                raise LookupError(f"no content for sha256 {sha256}")
            vector = self.extractor.extract(data)
        except Exception as exc:
            self.failures.append((id_bytes.decode("utf-8"), f"{type(exc).__name__}: {exc}"))
            return False
        if tuple(vector.names) != self.target.names:
            self.failures.append(
                (id_bytes.decode("utf-8"), f"the content gives {vector.version} features of another kind")
            )
            return False
        values = np.asarray(vector.values, dtype=np.float32)
        for column, name in enumerate(self.target.names):
            if measured is None or name not in measured:
                result[index, column] = values[column]
        return True

    # -- metrics --------------------------------------------------------------------------------

    def _count(self, method: str, amount: int) -> None:
        if amount:
            self.methods[method] = self.methods.get(method, 0) + amount

    def count_migration(self, version: str, result: str) -> None:
        self._migrations.inc(from_version=version, to_version=self.target.version, result=result)

    def count_success(self, seconds: float) -> None:
        for version, count in self.plan.sources.items():
            self.count_migration(version, "success")
            delta = self.plan.dimension_delta[version]
            direction = "upgrade" if delta > 0 else "downgrade" if delta < 0 else "none"
            self._delta.observe(abs(delta), direction=direction)
            if delta < 0:
                self._downgrades.inc(count, from_version=version, to_version=self.target.version)
            self._duration.observe(seconds, from_version=version, to_version=self.target.version)
        for method, count in self.methods.items():
            self._records.inc(count, method=method)


def _missing(source: FeatureLayout, target: FeatureLayout) -> tuple[str, ...]:
    return tuple(name for name in target.names if name not in source.names)


def _column_map(source: FeatureLayout, target: FeatureLayout) -> tuple[list[int], list[int]]:
    """Target and source columns of the features both layouts have, matched by name."""
    pairs = [(column, source.index(name)) for column, name in enumerate(target.names) if name in source.names]
    return [t for t, _ in pairs], [s for _, s in pairs]


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3} more"


def _write_checkpoint(store: VectorStore, state: dict[str, Any]) -> None:
    assert store.path is not None
    (store.path / "migration").mkdir(exist_ok=True)
    write_atomically(
        store.path / "migration" / CHECKPOINT,
        json.dumps({**state, "failures": [list(item) for item in state["failures"]]}).encode("utf-8"),
    )


def _read_checkpoint(store: VectorStore) -> dict[str, Any]:
    assert store.path is not None
    path = store.path / "migration" / CHECKPOINT
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"rows_done": 0, "methods": {}, "failures": []}
    except (OSError, ValueError) as exc:
        raise VectorStoreError(f"{path}: the migration checkpoint cannot be read ({exc})") from None
    return state


def _refuse_read_only(store: VectorStore) -> None:
    if store._closed:
        raise VectorStoreError(f"vector store {store.path}: it is closed")
    if store.read_only:
        raise VectorStoreError(f"vector store {store.path}: opened read-only; a migration needs the writer")
