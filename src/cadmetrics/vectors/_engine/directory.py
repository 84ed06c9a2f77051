"""A store's directory: its lock, its files, and the tidying that keeps only what a manifest
names.

::

    manifest.json        which segments and which log make up the store (replaced atomically)
    log-<G>.wal          writes since the last checkpoint, each synced before it is acknowledged
    segments/<name>/     immutable, memory-mapped arrays of one feature version
    migration/           a migration under way: its last checkpoint
    baselines/ ...       files kept with the store (attachments), each written atomically
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from pathlib import Path
from typing import Any, Final

from cadmetrics.durable import write_atomically
from cadmetrics.errors import VectorStoreError
from cadmetrics.vectors._engine.log import WriteAheadLog
from cadmetrics.vectors._engine.manifest import MANIFEST, SEGMENTS, Manifest, write_manifest
from cadmetrics.vectors._engine.segment import Rows, Segment, SegmentInfo
from cadmetrics.vectors._engine.segment_files import write_segment

LOCK: Final = "lock"
MIGRATION: Final = "migration"
CHECKPOINT: Final = "checkpoint.json"


class Directory:
    """The files of one store. A writer holds the directory's lock for as long as it is open."""

    def __init__(self, root: Path, lock_file: Any = None) -> None:
        self.root = root
        self.lock_file = lock_file  # closing it is what the process's death does

    @classmethod
    def locked(cls, root: Path) -> Directory:
        """Take ``root`` (created when missing) for a writer; refused while another has it."""
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / LOCK, "a+")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise VectorStoreError(
                f"vector store {root}: another process has it open; a store has one writer at a time"
            ) from None
        return cls(root, handle)

    def close(self) -> None:
        if self.lock_file is not None:
            self.lock_file.close()

    @property
    def segments(self) -> Path:
        return self.root / SEGMENTS

    def create(self, manifest: Manifest) -> None:
        """Make an empty directory a store of generation 0; one with files of its own is
        refused rather than silently turned into a store."""
        foreign = [
            entry.name
            for entry in self.root.iterdir()
            if entry.name not in (LOCK, SEGMENTS) and not entry.name.startswith(("log-", ".tmp-"))
        ]
        if foreign:
            raise VectorStoreError(
                f"{self.root}: not a vector store (no {MANIFEST}) and not empty "
                f"({', '.join(sorted(foreign)[:3])}); give an empty or new directory"
            )
        self.new_log(manifest.log).close()
        write_manifest(self.root, manifest)

    def new_log(self, name: str, *, sync: bool = True) -> WriteAheadLog:
        """An empty log (replacing one left by a commit that failed before its manifest)."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / name).unlink()
        return WriteAheadLog.create(self.root / name, sync=sync)

    def log_bytes(self, name: str) -> int:
        try:
            return (self.root / name).stat().st_size
        except OSError:
            return 0

    def write_rows(self, name: str, version: str, rows: Rows) -> SegmentInfo:
        return write_segment(self.segments / name, name, version, rows)

    def open_segment(self, info: SegmentInfo) -> Segment:
        return Segment(self.segments, info)

    def remove_unreferenced(self, manifest: Manifest) -> None:
        """Delete what ``manifest`` does not name: old logs, replaced segments and tombstones,
        files a crash left half-written. Torn log tails are kept for inspection."""
        for entry in self.root.iterdir():
            name = entry.name
            if (
                name.startswith("log-") and name.endswith(".wal") and name != manifest.log
            ) or name.startswith(".tmp-"):
                with contextlib.suppress(OSError):
                    entry.unlink()
        referenced = {info.name: info.tombstones for info in manifest.segments}
        pending = manifest.migration.segment if manifest.migration else None
        if self.segments.is_dir():
            for directory in self.segments.iterdir():
                if directory.name == pending:
                    continue
                if directory.name not in referenced:
                    shutil.rmtree(directory, ignore_errors=True)
                    continue
                for file in directory.glob("tombstones-*.npy"):
                    if file.name != referenced[directory.name]:
                        with contextlib.suppress(OSError):
                            file.unlink()
        if manifest.migration is None and (self.root / MIGRATION).exists():
            shutil.rmtree(self.root / MIGRATION, ignore_errors=True)

    def discard_generation(self, generation: int, keep: str | None) -> None:
        """Remove what a commit of ``generation`` wrote before it failed (but ``keep``)."""
        for directory in self.segments.glob(f"g{generation}-*"):
            if directory.name != keep:
                shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.root / f"log-{generation}.wal").unlink()

    # -- a migration's checkpoint ---------------------------------------------------------------

    def write_migration_state(self, state: dict[str, Any]) -> None:
        (self.root / MIGRATION).mkdir(exist_ok=True)
        write_atomically(self.root / MIGRATION / CHECKPOINT, json.dumps(state).encode("utf-8"))

    def read_migration_state(self) -> dict[str, Any] | None:
        path = self.root / MIGRATION / CHECKPOINT
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise VectorStoreError(f"{path}: the migration checkpoint cannot be read ({exc})") from None
        if not isinstance(state, dict):
            raise VectorStoreError(f"{path}: the migration checkpoint is not an object")
        return state

    # -- attachments ----------------------------------------------------------------------------

    def save_attachment(self, kind: str, name: str, data: bytes) -> Path:
        folder = self.root / kind
        folder.mkdir(exist_ok=True)
        write_atomically(folder / name, data)
        return folder / name

    def load_attachment(self, kind: str, name: str) -> bytes | None:
        """The attachment's bytes; None where there is none."""
        path = self.root / kind / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise VectorStoreError(f"{path}: cannot be read ({exc.strerror})") from None
