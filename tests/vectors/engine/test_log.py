"""The log: frames read back in order; a torn tail cut off and kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadmetrics.errors import StoreCorruptError
from cadmetrics.vectors._engine.log import Deletion, WriteAheadLog, add_frame, delete_frame, replay
from tests.vectors.engine.helpers import checked


def test_frames_replay_in_order_and_a_torn_tail_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "log-0.wal"
    log = WriteAheadLog.create(path)
    log.append([add_frame(checked("a")), add_frame(checked("b", "v4"))])
    log.append([delete_frame("a")])
    log.close()
    whole = path.stat().st_size
    with open(path, "ab") as file:
        file.write(add_frame(checked("c"))[:-3])  # a write the crash cut short
    replayed = replay(path)
    assert [getattr(entry, "id", None) for entry in replayed.entries] == ["a", "b", "a"]
    assert isinstance(replayed.entries[2], Deletion)
    assert replayed.entries[1].vector.tolist() == checked("b", "v4").vector.tolist()  # type: ignore[union-attr]
    assert replayed.end == whole
    assert replayed.torn_copy is not None
    assert replayed.torn_copy.exists()
    assert path.stat().st_size == whole  # cut back to the last whole frame


def test_a_file_that_is_not_a_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log-0.wal"
    path.write_bytes(b"something else entirely")
    with pytest.raises(StoreCorruptError, match="not a cadmetrics vector log"):
        replay(path)
