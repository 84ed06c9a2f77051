"""Rollback snapshots of committed models, on disk, surviving a crash at any point.

Layout of the directory: one blob per model, named by its sha256 (``<sha256>.model``), and a
``manifest.json`` listing the snapshots newest first. Every file is written atomically
(temporary file, fsync, rename, fsync of the directory), the blob before the manifest that
names it, so a crash leaves either the old manifest or the new one, each naming only complete
blobs. Reading verifies every blob's hash: a torn or corrupt file is skipped and reported,
never loaded. An unreadable manifest is rebuilt from the blobs themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cadmetrics.durable import write_atomically

MANIFEST = "manifest.json"
_BLOB_SUFFIX = ".model"
#: A temporary file older than this was left by a crash; a younger one may be another
#: process's write in flight.
_STALE_SECONDS = 3600


@attrs.frozen
class Snapshot:
    sha256: str
    size: int
    created: float  # seconds since the epoch
    source: str  # where the model was loaded from
    path: Path
    report: Mapping[str, Any] | None = None  # the ScanReport that admitted it, as a dict
    level: int = 0  # place in the manifest, newest first, counting damaged snapshots too

    def read(self) -> bytes:
        """The model's bytes, verified against the recorded digest."""
        data = self.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ValueError(f"{self.path}: content does not match its sha256")
        return data


@attrs.frozen
class SnapshotProblem:
    path: Path
    message: str
    level: int | None = None  # the damaged snapshot's place in the manifest; None for the manifest

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SnapshotStore:
    """At most ``keep`` snapshots in ``directory``, newest first."""

    def __init__(self, directory: str | os.PathLike[str], keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self.directory = Path(directory)
        self.keep = keep
        self.directory.mkdir(parents=True, exist_ok=True)
        self.problems: list[SnapshotProblem] = []

    def commit(self, data: bytes, source: str, report: Mapping[str, Any] | None = None) -> Snapshot:
        """Store ``data`` (with the scan ``report`` that admitted it) as the newest snapshot
        and drop those past ``keep``."""
        digest = hashlib.sha256(data).hexdigest()
        blob = self.directory / f"{digest}{_BLOB_SUFFIX}"
        if not _intact(blob, digest):
            write_atomically(blob, data)
        snapshot = Snapshot(digest, len(data), time.time(), source, blob, report)
        kept = [snapshot] + [s for s in self.snapshots() if s.sha256 != digest]
        kept = kept[: self.keep]
        self._write_manifest(kept)
        self._remove_unlisted(kept)
        return snapshot

    def snapshots(self) -> list[Snapshot]:
        """The intact snapshots, newest first; problems found on the way are in ``problems``.

        Each keeps its ``level`` in the manifest, so that a damaged newest snapshot leaves the
        next one at level 1: it is not the newest committed model, and says so."""
        self.problems = []
        listed = self._read_manifest()
        if listed is None:
            listed = self._rebuild_from_blobs()
        intact = []
        for level, snapshot in enumerate(listed):
            if _intact(snapshot.path, snapshot.sha256):
                intact.append(attrs.evolve(snapshot, level=level))
            else:
                self.problems.append(
                    SnapshotProblem(snapshot.path, "missing, torn or corrupt: skipped", level)
                )
        return intact

    def discard(self, digest: str) -> None:
        """Forget the snapshot ``digest`` (a model that failed its health check after commit),
        so that a restart does not restore it."""
        kept = [s for s in self.snapshots() if s.sha256 != digest]
        self._write_manifest(kept)
        self._remove_unlisted(kept)

    # -- files ----------------------------------------------------------------------------

    def _read_manifest(self) -> list[Snapshot] | None:
        path = self.directory / MANIFEST
        if not path.exists():
            if any(self.directory.glob(f"*{_BLOB_SUFFIX}")):  # lost manifest: rebuild, never discard
                self.problems.append(SnapshotProblem(path, "missing manifest: rebuilt from the blobs"))
                return None
            return []
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["snapshots"]
            return [
                Snapshot(
                    str(e["sha256"]),
                    int(e["size"]),
                    float(e["created"]),
                    str(e["source"]),
                    self.directory / f"{e['sha256']}{_BLOB_SUFFIX}",
                    e.get("report"),
                )
                for e in entries
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.problems.append(
                SnapshotProblem(path, f"unreadable manifest ({exc}): rebuilt from the blobs")
            )
            return None

    def _rebuild_from_blobs(self) -> list[Snapshot]:
        blobs = sorted(self.directory.glob(f"*{_BLOB_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
        return [
            Snapshot(p.name.removesuffix(_BLOB_SUFFIX), p.stat().st_size, p.stat().st_mtime, "<recovered>", p)
            for p in blobs
        ]

    def _write_manifest(self, snapshots: list[Snapshot]) -> None:
        entries = [
            {"sha256": s.sha256, "size": s.size, "created": s.created, "source": s.source, "report": s.report}
            for s in snapshots
        ]
        text = json.dumps({"version": 1, "snapshots": entries}, indent=2)
        write_atomically(self.directory / MANIFEST, text.encode("utf-8"))

    def _remove_unlisted(self, kept: list[Snapshot]) -> None:
        names = {s.path.name for s in kept}
        for blob in self.directory.glob(f"*{_BLOB_SUFFIX}"):
            if blob.name not in names:
                with contextlib.suppress(OSError):
                    blob.unlink()
        cutoff = time.time() - _STALE_SECONDS
        for stale in self.directory.glob(".tmp-*"):  # left by a crash mid-write, not in flight
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < cutoff:
                    stale.unlink()


def _intact(path: Path, digest: str) -> bool:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest
    except OSError:
        return False
