"""Writes that survive a crash: whatever moment the process dies, a reader finds either the old
file or the new one, never a mix.

The order is what makes it so: the data reaches the disk (fsync) before the rename makes it
visible, and the directory is synced after the rename so that the rename itself survives.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Temporary file, fsync, rename over ``path``, fsync of the directory."""
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """Make ``path`` durable: a file written by other means (a memory map, numpy's writers),
    or a directory, whose creations, renames and removals then survive a crash."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
