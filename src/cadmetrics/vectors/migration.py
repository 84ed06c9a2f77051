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

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from cadmetrics.errors import VectorInputError, VectorStoreError
from cadmetrics.features.layout import FeatureLayout
from cadmetrics.progress import progress_bar
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.logs import component_logger, log_event
from cadmetrics.telemetry.spans import SpanHandle
from cadmetrics.vectors._engine import (
    FILLED_UNKNOWN,
    NOT_FILLED,
    Engine,
    MigrationOutput,
    MigrationProgress,
    Rows,
    Source,
)
from cadmetrics.vectors.plan import MigrationPlan, MigrationResult, plan_for

_LOG = component_logger("vectors")


def migrate(
    engine: Engine,
    telemetry: Telemetry,
    plan: MigrationPlan,
    *,
    extractor: Any,
    content: Callable[[str], bytes | None] | None,
    batch_size: int,
    resume: bool,
    progress: bool | None,
) -> MigrationResult:
    """Carry out ``plan`` on the store of ``engine``.

    ``extractor`` (a :class:`~cadmetrics.FeatureExtractor` of the target version) and
    ``content`` (a function from a content sha256 to its bytes, None when unknown) let an
    upgrade re-extract the missing features; without them, or when one record's content is
    missing or fails to extract, the layout's defaults are filled in and the record is marked
    as filled. ``resume=False`` discards a pending migration and starts again.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise VectorInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    target = engine.layouts.get(plan.target)
    if target is None:
        raise VectorInputError(
            f"unknown feature version {plan.target!r}; this store holds {', '.join(engine.layouts)}"
        )
    if extractor is not None:
        made = [getattr(extractor, name, None) for name in ("layout", "drawing_layout", "brep_layout")]
        if not any(isinstance(layout, FeatureLayout) and layout.names == target.names for layout in made):
            raise VectorInputError(
                f"the extractor's vectors do not have the features of this store's {plan.target} layout"
            )
    started = time.perf_counter()
    with engine.migrating():
        engine.check_writable(migrating=True)
        with engine.read() as snapshot:
            pending = snapshot.pending
        if pending is not None and not resume:
            engine.abort_migration()
            plan, pending = plan_for(engine, target), None
        resumed = pending is not None
        if pending is not None and pending.target != plan.target:
            raise VectorStoreError(
                f"vector store {engine.root}: the pending migration goes to {pending.target}, "
                f"not {plan.target}"
            )
        if not resumed:
            with engine.read() as snapshot:
                if (plan.generation, plan.changes) != (snapshot.generation, snapshot.stamp):
                    raise VectorStoreError(
                        f"vector store {engine.root}: it changed since this plan was made; plan again"
                    )
            if not plan.sources:
                return MigrationResult(plan.target, {}, (), time.perf_counter() - started, False)
        job = _Job(engine, telemetry, plan, target, extractor=extractor, content=content)
        if resumed:
            for version in plan.sources:
                job.count_migration(version, "resumed")
        traced = telemetry.span(
            "cadmetrics.vectors.migrate", from_version=next(iter(plan.sources)), to_version=plan.target
        )
        try:
            with traced as span:
                if not resumed:
                    engine.begin_migration(plan.target, plan.sources, started=time.time(), stamp=plan.changes)
                    output = engine.migration_output()
                    _write_checkpoint(output, MigrationProgress())
                else:
                    output = engine.migration_output()
                span.set(records=int(output.pending.rows))
                log_event(
                    _LOG,
                    logging.INFO,
                    "migration_resumed" if resumed else "migration_started",
                    f"vector store {engine.root}: migration to {plan.target} "
                    f"{'resumed' if resumed else 'started'} ({output.pending.rows} records)",
                    sources=list(plan.sources),
                    target=plan.target,
                    records=int(output.pending.rows),
                    done=int(output.progress.rows_done),
                )
                job.run(output, batch_size, progress, span)
                engine.finish_migration(output)
        except BaseException:
            for version in plan.sources:
                job.count_migration(version, "failed")
            raise
        seconds = time.perf_counter() - started
        job.count_success(max(seconds, time.time() - output.pending.started))
        log_event(
            _LOG,
            logging.INFO,
            "migration_finished",
            f"vector store {engine.root}: migration to {plan.target} finished in {seconds:.1f} s",
            target=plan.target,
            records=int(output.pending.rows),
            seconds=seconds,
            methods=dict(job.methods),
            failures=len(job.failures),
        )
        return MigrationResult(plan.target, dict(job.methods), tuple(job.failures), seconds, resumed)


def abort(engine: Engine) -> None:
    with engine.migrating():
        engine.abort_migration()


class _Job:
    """One migration's state: the column maps per source version and the counts so far."""

    def __init__(
        self,
        engine: Engine,
        telemetry: Telemetry,
        plan: MigrationPlan,
        target: FeatureLayout,
        *,
        extractor: Any,
        content: Callable[[str], bytes | None] | None,
    ) -> None:
        self.layouts = engine.layouts
        self.versions = engine.versions
        self.plan = plan
        self.target = target
        self.extractor = extractor if content is not None else None
        self.content = content
        self.methods: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []
        self.defaults = np.array([feature.default for feature in target.features], dtype=np.float32)
        self._migrations = telemetry.counter("cadmetrics_vector_migrations_total")
        self._downgrades = telemetry.counter("cadmetrics_vector_downgrades_total")
        self._records = telemetry.counter("cadmetrics_vector_migrated_records_total")
        self._delta = telemetry.histogram("cadmetrics_vector_migration_dimension_delta")
        self._duration = telemetry.histogram("cadmetrics_vector_migration_duration_seconds")

    def run(self, output: MigrationOutput, batch_size: int, progress: bool | None, span: SpanHandle) -> None:
        """Convert every live row of the output's sources, batch by batch, from where its last
        checkpoint left off; each batch is written and checkpointed before the next, and
        recorded as an event of the migration's ``span``."""
        done = output.progress.rows_done
        self.methods = dict(output.progress.methods)
        self.failures = list(output.progress.failures)
        bar = progress_bar(
            output.pending.rows, unit="vector", description=f"to {self.target.version}", show=progress
        )
        bar.update(done)
        try:
            position = 0
            for source in output.sources:
                live = np.flatnonzero(source.alive)
                for start in range(0, live.size, batch_size):
                    rows = live[start : start + batch_size]
                    if position + rows.size <= done:
                        position += rows.size
                        continue
                    rows = rows[max(0, done - position) :]
                    output.write(done, self.convert(source, rows))
                    done += rows.size
                    position = done
                    _write_checkpoint(
                        output, MigrationProgress(done, dict(self.methods), tuple(self.failures))
                    )
                    span.event("batch_committed", records=int(rows.size))
                    bar.update(rows.size)
        finally:
            bar.close()

    # -- one batch ------------------------------------------------------------------------------

    def convert(self, source: Source, rows: npt.NDArray[np.int64]) -> Rows:
        """The batch's rows of ``source`` in the target layout, with their new filled codes."""
        block = source.take(rows)
        layout = self.layouts[source.version]
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
                if block.content[index].any() and self._re_extract(
                    result, index, block.ids[index], block.content[index], measured
                ):
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
        measured_version = version if code == NOT_FILLED else self.versions[code]
        return set(self.layouts[measured_version].names) & set(self.layouts[version].names)

    def _filled_code(self, measured: set[str] | None) -> int:
        """The code of the largest version all of whose features stay measured in the target."""
        if measured is None:
            return FILLED_UNKNOWN
        kept = measured & set(self.target.names)
        candidates = [
            (layout.dimension, self.versions.index(version))
            for version, layout in self.layouts.items()
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


def _column_map(source: FeatureLayout, target: FeatureLayout) -> tuple[list[int], list[int]]:
    """Target and source columns of the features both layouts have, matched by name."""
    pairs = [(column, source.index(name)) for column, name in enumerate(target.names) if name in source.names]
    return [t for t, _ in pairs], [s for _, s in pairs]


def _write_checkpoint(output: MigrationOutput, progress: MigrationProgress) -> None:
    """Record how far the migration came (a crash resumes from here)."""
    output.checkpoint(progress)
