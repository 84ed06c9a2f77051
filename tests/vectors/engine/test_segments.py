"""Segments written whole, read back mapped: the same rows, ids found, CRCs that check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors._engine.memtable import Memtable, rows_of
from cadmetrics.vectors._engine.segment import Segment
from cadmetrics.vectors._engine.segment_files import write_segment
from tests.vectors.engine.helpers import checked


def test_a_written_segment_reads_back_row_for_row(tmp_path: Path) -> None:
    records = [checked(f"id-{n:03d}", "v4") for n in (5, 1, 3, 2, 4)]
    rows = rows_of(records, LAYOUTS["v4"])
    info = write_segment(tmp_path / "g1-v4", "g1-v4", "v4", rows)
    segment = Segment(tmp_path, info)
    assert segment.rows == segment.live_rows == 5
    assert np.array_equal(np.asarray(segment.vectors), np.stack([r.vector for r in records]))
    assert [segment.id_bytes(row) for row in range(5)] == [r.id_bytes for r in records]
    assert segment.find(b"id-003") == 2
    assert segment.find(b"id-009") is None
    assert sorted(segment.holding([b"id-001", b"id-004", b"nope"])) == [b"id-001", b"id-004"]
    assert segment.metadata(3) == records[3].metadata_json
    assert segment.verify() == []
    segment.close()
    vectors = tmp_path / "g1-v4" / "vectors.npy"
    damaged = bytearray(vectors.read_bytes())
    damaged[-1] ^= 1
    vectors.write_bytes(bytes(damaged))
    again = Segment(tmp_path, info)
    assert again.verify() == [f"{vectors}: its CRC-32 does not match the manifest"]
    again.close()


def test_a_memtable_deletes_and_takes_rows() -> None:
    table = Memtable("v2", LAYOUTS["v2"].dimension)
    first = table.append([checked("a"), checked("b"), checked("c")], [-1, -1, 0])
    assert first == 0
    table.delete(1)
    table.delete(1)  # twice is once
    assert table.live_rows == 2
    taken = table.take(np.flatnonzero(table.alive))
    assert list(taken.ids) == [b"a", b"c"]
    assert taken.filled.tolist() == [-1, 0]
    assert np.isclose(float(table.inverse_norms[0]), 1 / np.linalg.norm(checked("a").vector))
