"""The merge policy: segments per version stay bounded, and compaction drops deleted rows."""

from __future__ import annotations

from pathlib import Path

from cadmetrics.vectors._engine.compaction import MAX_SEGMENTS_PER_VERSION
from tests.vectors.engine.helpers import checked, engine_at, ids_of


def _segments(path: Path) -> list[str]:
    return sorted(entry.name for entry in (path / "segments").iterdir())


def test_many_checkpoints_keep_the_segments_of_a_version_bounded(tmp_path: Path) -> None:
    engine = engine_at(tmp_path / "store")
    written = []
    for round_number in range(3 * MAX_SEGMENTS_PER_VERSION):
        batch = [checked(f"r{round_number}-{n}") for n in range(3)]
        with engine.write() as transaction:
            transaction.add(batch)
        written += [record.id for record in batch]
        engine.checkpoint()
        with engine.read() as snapshot:
            assert snapshot.segments <= MAX_SEGMENTS_PER_VERSION
    assert ids_of(engine) == written  # merging neighbours keeps the order of writing
    engine.close()


def test_compaction_rewrites_each_version_without_its_deleted_rows(tmp_path: Path) -> None:
    engine = engine_at(tmp_path / "store")
    for round_number in range(3):
        with engine.write() as transaction:
            transaction.add([checked(f"r{round_number}-{n}", "v4") for n in range(4)])
        engine.checkpoint()
    with engine.write() as transaction:
        transaction.delete("r1-2")
    engine.compact()
    with engine.read() as snapshot:
        assert snapshot.segments == 1
        (segment,) = snapshot.sources()
        assert segment.rows == segment.live_rows == 11
    assert len(_segments(tmp_path / "store")) == 1  # the replaced segments are removed
    engine.close()
