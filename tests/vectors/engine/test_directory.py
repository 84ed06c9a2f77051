"""A store's directory: one writer, no foreign files taken over, only named files kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadmetrics.errors import VectorStoreError
from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors._engine.directory import Directory
from cadmetrics.vectors._engine.manifest import Manifest, PendingMigration


def test_a_second_writer_is_refused_until_the_first_is_gone(tmp_path: Path) -> None:
    first = Directory.locked(tmp_path)
    with pytest.raises(VectorStoreError, match="another process has it open"):
        Directory.locked(tmp_path)
    first.close()
    Directory.locked(tmp_path).close()


def test_a_directory_with_files_of_its_own_is_not_made_a_store(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    directory = Directory.locked(tmp_path)
    with pytest.raises(
        VectorStoreError, match=r"not a vector store \(no manifest.json\) and not empty \(notes.txt\)"
    ):
        directory.create(Manifest(0, LAYOUTS, (), "log-0.wal"))
    directory.close()


def test_tidying_keeps_what_the_manifest_names_and_a_pending_migration(tmp_path: Path) -> None:
    directory = Directory.locked(tmp_path)
    directory.create(Manifest(0, LAYOUTS, (), "log-0.wal"))
    for name in ("g1-v2-buffer", "g2-v3-migrated-ab"):
        (directory.segments / name).mkdir()
    (tmp_path / "log-7.wal").write_bytes(b"old")
    (tmp_path / ".tmp-half").write_bytes(b"half")
    pending = PendingMigration("v3", "g2-v3-migrated-ab", {"v2": 1}, (), 1, 4, 0.0)
    directory.write_migration_state({"rows_done": 0, "methods": {}, "failures": []})
    directory.remove_unreferenced(Manifest(1, LAYOUTS, (), "log-0.wal", pending))
    assert sorted(entry.name for entry in directory.segments.iterdir()) == ["g2-v3-migrated-ab"]
    assert not (tmp_path / "log-7.wal").exists()
    assert not (tmp_path / ".tmp-half").exists()
    assert directory.read_migration_state() is not None
    directory.remove_unreferenced(Manifest(2, LAYOUTS, (), "log-0.wal"))
    assert list(directory.segments.iterdir()) == []
    assert directory.read_migration_state() is None
    directory.close()


def test_attachments_are_kept_beside_the_store(tmp_path: Path) -> None:
    directory = Directory(tmp_path)
    assert directory.load_attachment("baselines", "june.npz") is None
    saved = directory.save_attachment("baselines", "june.npz", b"bytes")
    assert saved == tmp_path / "baselines" / "june.npz"
    assert directory.load_attachment("baselines", "june.npz") == b"bytes"
