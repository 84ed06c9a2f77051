"""The append-only log that makes each write durable before the next checkpoint.

A write is acknowledged only after its frames are on the disk (one ``write`` and one ``fsync``
per call, however many records it holds). Each frame carries its length and a CRC-32 of its
payload, so a write torn by a crash is recognised at the next open: everything from the first
frame that does not check is the unacknowledged tail. It is cut off so that new frames follow
the last good one, and its bytes are kept beside the log rather than thrown away.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import attrs
import numpy as np

from cadmetrics.durable import fsync_path
from cadmetrics.errors import StoreCorruptError
from cadmetrics.vectors.records import CheckedRecord, Float32Array

MAGIC = b"CMVLOG1\n"
_FRAME = struct.Struct("<II")  # payload length, CRC-32 of the payload
_ADD = struct.Struct(
    "<cHBBII"
)  # op, id length, version length, filled-from length, metadata length, dimension
_DELETE = struct.Struct("<cH")  # op, id length
_ADD_OP = b"A"
_DELETE_OP = b"D"


@attrs.frozen
class Deletion:
    id: str


@attrs.frozen
class Replay:
    """What a log holds: its entries in order, and the tail cut off as torn (if any)."""

    entries: list[CheckedRecord | Deletion]
    end: int  # offset just past the last good frame
    torn_bytes: int
    torn_copy: Path | None


def add_frame(record: CheckedRecord) -> bytes:
    version = record.version.encode("utf-8")
    filled = (record.filled_from or "").encode("utf-8")
    vector = record.vector.astype("<f4", copy=False).tobytes()
    payload = b"".join(
        (
            _ADD.pack(
                _ADD_OP,
                len(record.id_bytes),
                len(version),
                len(filled),
                len(record.metadata_json),
                record.vector.shape[0],
            ),
            record.id_bytes,
            version,
            filled,
            record.content,
            record.metadata_json,
            vector,
        )
    )
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def delete_frame(id: str) -> bytes:
    encoded = id.encode("utf-8")
    payload = _DELETE.pack(_DELETE_OP, len(encoded)) + encoded
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


class WriteAheadLog:
    """An open log, appended to; ``sync=False`` trades the durability of the last writes for
    speed (the log is still written in order, so a crash loses a tail, never a middle)."""

    def __init__(self, path: Path, *, sync: bool = True) -> None:
        self.path = path
        self.sync = sync
        self._file = open(path, "r+b")  # noqa: SIM115 - kept open for the store's lifetime
        self._file.seek(0, os.SEEK_END)
        self.size = self._file.tell()

    @classmethod
    def create(cls, path: Path, *, sync: bool = True) -> WriteAheadLog:
        with open(path, "xb") as file:
            file.write(MAGIC)
            file.flush()
            os.fsync(file.fileno())
        fsync_path(path.parent)
        return cls(path, sync=sync)

    def append(self, frames: list[bytes]) -> None:
        data = b"".join(frames)
        self._file.write(data)
        self._file.flush()
        if self.sync:
            os.fsync(self._file.fileno())
        self.size += len(data)

    def close(self) -> None:
        self._file.close()


def replay(path: Path, *, repair: bool = True) -> Replay:
    """Read the log at ``path``; a torn tail is cut off (and kept in ``<log>.torn-<offset>``),
    unless ``repair`` is false (a reader that must not write leaves it for the writer)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreCorruptError(f"{path}: the store's log cannot be read ({exc.strerror})") from None
    if not data.startswith(MAGIC):
        if len(data) < len(MAGIC) and MAGIC.startswith(data):  # its creation was torn
            if repair:
                path.write_bytes(MAGIC)
            return Replay([], len(MAGIC), 0, None)
        raise StoreCorruptError(f"{path}: not a cadmetrics vector log (it does not start with {MAGIC!r})")
    entries: list[CheckedRecord | Deletion] = []
    offset = len(MAGIC)
    while offset < len(data):
        entry, end = _frame_at(data, offset)
        if entry is None:
            break
        entries.append(entry)
        offset = end
    torn = len(data) - offset
    copy = None
    if torn and repair:
        copy = path.with_name(f"{path.name}.torn-{offset}")
        with open(copy, "wb") as kept:
            kept.write(data[offset:])
            kept.flush()
            os.fsync(kept.fileno())
        with open(path, "r+b") as file:
            file.truncate(offset)
            os.fsync(file.fileno())
        fsync_path(path.parent)
    return Replay(entries, offset, torn, copy)


def _frame_at(data: bytes, offset: int) -> tuple[CheckedRecord | Deletion | None, int]:
    if offset + _FRAME.size > len(data):
        return None, offset
    length, crc = _FRAME.unpack_from(data, offset)
    start = offset + _FRAME.size
    end = start + length
    if end > len(data) or zlib.crc32(data[start:end]) != crc:
        return None, offset
    try:
        return _decode(data[start:end]), end
    except (struct.error, UnicodeDecodeError, ValueError):
        return None, offset  # a frame that checks but does not decode was not written by us


def _decode(payload: bytes) -> CheckedRecord | Deletion:
    op = payload[:1]
    if op == _DELETE_OP:
        _, id_length = _DELETE.unpack_from(payload)
        id_bytes = payload[_DELETE.size : _DELETE.size + id_length]
        if len(id_bytes) != id_length:
            raise ValueError("short delete frame")
        return Deletion(id_bytes.decode("utf-8"))
    if op != _ADD_OP:
        raise ValueError(f"unknown op {op!r}")
    _, id_length, version_length, filled_length, metadata_length, dimension = _ADD.unpack_from(payload)
    position = _ADD.size
    fields = []
    for length in (id_length, version_length, filled_length, 32, metadata_length):
        fields.append(payload[position : position + length])
        position += length
    vector_bytes = payload[position:]
    if len(vector_bytes) != 4 * dimension:
        raise ValueError("vector of the wrong length")
    id_bytes, version, filled, content, metadata = fields
    vector: Float32Array = np.frombuffer(vector_bytes, dtype="<f4").astype(np.float32)
    return CheckedRecord(
        id=id_bytes.decode("utf-8"),
        id_bytes=id_bytes,
        vector=vector,
        version=version.decode("utf-8"),
        content=content,
        metadata_json=metadata,
        filled_from=filled.decode("utf-8") or None,
    )
