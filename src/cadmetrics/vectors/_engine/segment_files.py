"""Writing a whole segment at once: each column one sequential write, synced, with its CRC-32
computed from memory while the disk catches up.

A checkpoint, a merge and a bulk load know all their rows before they write, so they need
none of the memory maps that a migration's batch-by-batch writer uses: the files are plain
``.npy`` files (and one of metadata bytes) that numpy maps back, and writing them costs about
what ``numpy.save`` and ``fsync`` of the same arrays cost.
"""

from __future__ import annotations

import io
import os
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cadmetrics.durable import fsync_path
from cadmetrics.vectors._engine.segment import (
    CONTENT,
    FILLED,
    IDS,
    INVERSE_NORMS,
    METADATA,
    METADATA_OFFSETS,
    ORDER,
    VECTORS,
    Rows,
    SegmentInfo,
)

#: Bytes handed to one ``write`` and one CRC-32 step.
_CHUNK = 1 << 26
#: A large file is synced behind its writer every this many bytes.
_SYNCED_BEHIND = 1 << 28


def write_segment(directory: Path, name: str, version: str, rows: Rows) -> SegmentInfo:
    """Write ``rows`` as the segment ``name`` in ``directory`` (created), synced, and describe
    its files for the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    vectors = np.ascontiguousarray(rows.vectors, dtype="<f4")
    width = max(1, max(map(len, rows.ids), default=1))
    ids = np.array(rows.ids, dtype=f"S{width}") if len(rows) else np.zeros(0, dtype=f"S{width}")
    lengths = np.fromiter(map(len, rows.metadata), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype="<i8")
    np.cumsum(lengths, out=offsets[1:])
    columns: dict[str, npt.NDArray[Any] | bytes] = {
        VECTORS: vectors,
        INVERSE_NORMS: rows.inverse_norms().astype("<f4", copy=False),
        IDS: ids,
        ORDER: np.argsort(ids, kind="stable").astype("<i8", copy=False),
        CONTENT: np.ascontiguousarray(rows.content, dtype=np.uint8),
        FILLED: np.ascontiguousarray(rows.filled, dtype=np.int8),
        METADATA_OFFSETS: offsets,
        METADATA: b"".join(rows.metadata),
    }
    pieces = {file: _pieces(value) for file, value in columns.items()}
    files: dict[str, tuple[int, int]] = {}
    checksums = threading.Thread(target=_describe_all, args=(pieces, files))
    checksums.start()  # from memory, on another core, while the files are written and synced
    try:
        for file, parts in pieces.items():
            _write_synced(directory / file, parts)
        for path in (directory, directory.parent):  # the parent: the segment's own entry
            fsync_path(path)
    finally:
        checksums.join()
    return SegmentInfo(name, version, len(rows), vectors.shape[1], files)


def _pieces(value: npt.NDArray[Any] | bytes) -> list[memoryview]:
    """What the file holds, in order: the ``.npy`` header and the array's bytes, in chunks."""
    if isinstance(value, bytes):
        data = memoryview(value)
        header = b""
    else:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(value))
        header = buffer.getvalue()
        data = np.ascontiguousarray(value).data.cast("B")
    chunks = [data[start : start + _CHUNK] for start in range(0, len(data), _CHUNK)]
    return [memoryview(header), *chunks] if header else chunks


def _write_synced(path: Path, parts: list[memoryview]) -> None:
    """Write ``parts`` to ``path`` and make them durable. A large file is synced behind the
    writer, every :data:`_SYNCED_BEHIND` bytes, on another thread: the disk starts on what is
    written while the rest is, instead of holding a gigabyte of dirty pages for one final
    ``fsync`` (which the kernel also throttles the writes for)."""
    with open(path, "wb") as handle:
        descriptor = handle.fileno()
        behind: threading.Thread | None = None
        failures: list[OSError] = []
        written = 0
        for part in parts:
            handle.write(part)
            written += len(part)
            if written >= _SYNCED_BEHIND:
                written = 0
                handle.flush()
                if behind is not None:
                    behind.join()
                behind = threading.Thread(target=_datasync, args=(descriptor, failures))
                behind.start()
        handle.flush()
        if behind is not None:
            behind.join()
        if failures:
            raise failures[0]
        os.fsync(descriptor)


def _datasync(descriptor: int, failures: list[OSError]) -> None:
    try:
        os.fdatasync(descriptor)
    except OSError as exc:  # raised by the writer after it joins this thread
        failures.append(exc)


def _describe_all(pieces: dict[str, list[memoryview]], files: dict[str, tuple[int, int]]) -> None:
    for file, parts in pieces.items():
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        files[file] = (sum(len(part) for part in parts), crc)
