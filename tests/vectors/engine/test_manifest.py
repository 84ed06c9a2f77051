"""The manifest: typed values that survive their JSON form, and damage reported by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cadmetrics.errors import StoreCorruptError, VectorStoreError
from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors._engine.manifest import (
    Manifest,
    PendingMigration,
    check_layouts,
    read_manifest,
    write_manifest,
)
from cadmetrics.vectors._engine.segment import SegmentInfo

PENDING = PendingMigration("v3", "g2-v3-migrated-ab12", {"v4": 40}, ("g1-v4-buffer",), 40, 7, 1_700_000_000.5)


def test_a_manifest_reads_back_as_written(tmp_path: Path) -> None:
    info = SegmentInfo("g1-v4-buffer", "v4", 40, 48, {"vectors.npy": (7808, 12345)}, "tombstones-1.npy")
    manifest = Manifest(2, LAYOUTS, (info,), "log-2.wal", PENDING)
    write_manifest(tmp_path, manifest)
    again = read_manifest(tmp_path)
    assert again is not None
    assert again.generation == 2
    assert again.segments == (info,)
    assert again.log == "log-2.wal"
    assert again.migration == PENDING
    assert {v: layout.names for v, layout in again.layouts.items()} == {
        version: layout.names for version, layout in LAYOUTS.items()
    }


def test_no_manifest_is_none_and_a_foreign_format_is_refused(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(StoreCorruptError, match=r"not a vector store manifest of format 1 .format 99"):
        read_manifest(tmp_path)


def test_a_damaged_pending_migration_is_named(tmp_path: Path) -> None:
    write_manifest(tmp_path, Manifest(1, LAYOUTS, (), "log-1.wal", PENDING))
    value = json.loads((tmp_path / "manifest.json").read_text())
    del value["migration"]["rows"]
    (tmp_path / "manifest.json").write_text(json.dumps(value))
    with pytest.raises(
        StoreCorruptError, match=r"manifest\.json: the manifest's log or migration entry is damaged"
    ):
        read_manifest(tmp_path)


def test_other_layouts_are_refused_by_version(tmp_path: Path) -> None:
    fewer = {version: layout for version, layout in LAYOUTS.items() if version != "v4"}
    check_layouts(tmp_path, LAYOUTS, dict(LAYOUTS))
    with pytest.raises(VectorStoreError, match=r"its v4 layout differs from the one given .\d+ vs missing"):
        check_layouts(tmp_path, LAYOUTS, fewer)
