"""A migration's output: its progress survives as JSON; on disk, it resumes after the rows
checkpointed, whatever a crash left after them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors._engine import MigrationProgress, PendingMigration
from cadmetrics.vectors._engine.directory import Directory
from cadmetrics.vectors._engine.memtable import rows_of
from cadmetrics.vectors._engine.rewrite import MigrationOutput
from cadmetrics.vectors._engine.segment import Segment
from tests.vectors.engine.helpers import checked


def test_progress_survives_its_json_form() -> None:
    progress = MigrationProgress(30, {"projected": 20, "filled": 10}, (("r1", "LookupError: gone"),))
    assert MigrationProgress.from_json(progress.to_json()) == progress


def test_an_output_on_disk_resumes_after_its_checkpoint(tmp_path: Path) -> None:
    directory = Directory(tmp_path)
    directory.segments.mkdir()
    rows = rows_of([checked(f"r{n}", "v3") for n in range(6)], LAYOUTS["v3"])
    pending = PendingMigration("v3", "g1-v3-migrated-x", {"v4": 6}, (), 6, 2, 0.0)
    output = MigrationOutput.on_disk(directory, pending, [], MigrationProgress(), LAYOUTS["v3"].dimension)
    first = rows_of([checked(f"r{n}", "v3") for n in range(3)], LAYOUTS["v3"])
    output.write(0, first)
    output.checkpoint(MigrationProgress(3, {"projected": 3}))
    output.write(3, rows_of([checked("junk", "v3")], LAYOUTS["v3"]))  # written, never checkpointed
    state = directory.read_migration_state()
    assert state is not None
    progress = MigrationProgress.from_json(state)
    resumed = MigrationOutput.on_disk(directory, pending, [], progress, LAYOUTS["v3"].dimension)
    rest = rows_of([checked(f"r{n}", "v3") for n in range(3, 6)], LAYOUTS["v3"])
    resumed.write(3, rest)
    info = resumed.finish()
    segment = Segment(directory.segments, info)  # type: ignore[arg-type]
    assert [segment.id_bytes(row) for row in range(6)] == list(rows.ids)
    assert np.array_equal(np.asarray(segment.vectors), rows.vectors)
    assert segment.verify() == []
    segment.close()
