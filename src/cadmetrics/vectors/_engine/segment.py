"""Segments: immutable, memory-mapped files holding the records of one feature version.

A segment is written once, synced, and only then named by the manifest; it is never changed
afterwards, which is what lets a store of a million vectors open in a few milliseconds: the
arrays are mapped, not read. Deletions are kept beside it as a tombstone list that each
checkpoint may replace. Lookup by id needs no index built at open: the ids' sort order is
stored with them and searched with a binary search.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.durable import fsync_path
from cadmetrics.errors import StoreCorruptError
from cadmetrics.vectors.records import Float32Array

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

VECTORS = "vectors.npy"
INVERSE_NORMS = "inv_norms.npy"
IDS = "ids.npy"
ORDER = "order.npy"
CONTENT = "content.npy"
FILLED = "filled.npy"
METADATA = "metadata.bin"
METADATA_OFFSETS = "metadata_offsets.npy"
_FILES = (VECTORS, INVERSE_NORMS, IDS, ORDER, CONTENT, FILLED, METADATA, METADATA_OFFSETS)
_WRITTEN = (VECTORS, INVERSE_NORMS, IDS, CONTENT, FILLED, METADATA, METADATA_OFFSETS)  # before the order
#: Codes of the ``filled`` array: -1 when every feature was measured, -2 when the measured ones
#: are unknown, otherwise the index (in the store's versions) of the version measured.
NOT_FILLED = -1
FILLED_UNKNOWN = -2


@attrs.frozen
class Rows:
    """A block of records in column form, as segments and buffers hold them."""

    vectors: Float32Array
    ids: Sequence[bytes]
    content: npt.NDArray[np.uint8]
    filled: npt.NDArray[np.int8]
    metadata: Sequence[bytes]
    known_inverse_norms: Float32Array | None = None  # when the caller computed them already

    def inverse_norms(self) -> Float32Array:
        return (
            self.known_inverse_norms if self.known_inverse_norms is not None else inverse_norms(self.vectors)
        )

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def concatenate(cls, blocks: Sequence[Rows]) -> Rows:
        return cls(
            np.concatenate([block.vectors for block in blocks]),
            [item for block in blocks for item in block.ids],
            np.concatenate([block.content for block in blocks]),
            np.concatenate([block.filled for block in blocks]),
            [item for block in blocks for item in block.metadata],
        )


@attrs.frozen
class SegmentInfo:
    """What the manifest records of a segment: enough to check its files at open (sizes) and
    on demand (CRC-32 of each file, :meth:`VectorStore.verify`)."""

    name: str
    version: str
    rows: int
    dimension: int
    files: dict[str, tuple[int, int]]  # file name -> (size, crc32)
    tombstones: str | None = None  # file of deleted rows, when any

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "rows": self.rows,
            "dimension": self.dimension,
            "files": {name: list(value) for name, value in self.files.items()},
            "tombstones": self.tombstones,
        }

    @classmethod
    def from_json(cls, value: Any, where: Path) -> SegmentInfo:
        """Read a manifest's segment entry; ``where`` (the manifest) is named in errors."""
        try:
            info = cls(
                name=str(value["name"]),
                version=str(value["version"]),
                rows=int(value["rows"]),
                dimension=int(value["dimension"]),
                files={str(name): (int(size), int(crc)) for name, (size, crc) in value["files"].items()},
                tombstones=None if value.get("tombstones") is None else str(value["tombstones"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreCorruptError(
                f"{where}: a segment entry is damaged ({exc!r}): {value!r:.200}"
            ) from None
        if info.rows < 1 or info.dimension < 1 or "/" in info.name or info.name.startswith("."):
            raise StoreCorruptError(f"{where}: segment entry {info.name!r} is not valid")
        return info


class SegmentWriter:
    """Writes a segment of a known number of rows, batch by batch, through memory maps.

    ``flush`` makes every row written so far durable, so a migration can checkpoint after each
    batch and, after a crash, :meth:`resume` the same files.
    """

    def __init__(
        self, directory: Path, version: str, rows: int, dimension: int, id_width: int, *, resume: bool = False
    ) -> None:
        self.directory = directory
        self.version = version
        self.rows = rows
        self.dimension = dimension
        directory.mkdir(parents=True, exist_ok=True)
        mode = "r+" if resume else "w+"
        if resume:
            missing = [name for name in _WRITTEN if not (directory / name).exists()]
            if missing:
                raise StoreCorruptError(
                    f"{directory}: the segment being written lacks {', '.join(missing)}; it cannot be resumed"
                )
        width = max(1, id_width)
        self.vectors = _memmap(directory / VECTORS, mode, np.dtype("<f4"), (rows, dimension))
        self.inverse_norms = _memmap(directory / INVERSE_NORMS, mode, np.dtype("<f4"), (rows,))
        self.ids = _memmap(directory / IDS, mode, np.dtype(f"S{width}"), (rows,))
        self.content = _memmap(directory / CONTENT, mode, np.dtype(np.uint8), (rows, 32))
        self.filled = _memmap(directory / FILLED, mode, np.dtype(np.int8), (rows,))
        self.metadata_offsets = _memmap(directory / METADATA_OFFSETS, mode, np.dtype("<i8"), (rows + 1,))
        self._metadata = open(directory / METADATA, "ab" if resume else "wb")  # noqa: SIM115 - closed by finish()

    @classmethod
    def resume(
        cls, directory: Path, version: str, rows: int, dimension: int, id_width: int, *, rows_done: int
    ) -> SegmentWriter:
        """Reopen a partly written segment whose first ``rows_done`` rows were flushed;
        metadata written after that flush is cut off."""
        writer = cls(directory, version, rows, dimension, id_width, resume=True)
        writer._metadata.truncate(int(writer.metadata_offsets[rows_done]))
        writer._metadata.seek(0, os.SEEK_END)
        return writer

    def write(self, start: int, rows: Rows) -> None:
        stop = start + len(rows)
        self.vectors[start:stop] = rows.vectors
        self.inverse_norms[start:stop] = inverse_norms(rows.vectors)
        self.ids[start:stop] = rows.ids
        self.content[start:stop] = rows.content
        self.filled[start:stop] = rows.filled
        lengths = np.fromiter((len(item) for item in rows.metadata), dtype=np.int64, count=len(rows))
        self.metadata_offsets[start + 1 : stop + 1] = int(self.metadata_offsets[start]) + np.cumsum(lengths)
        self._metadata.write(b"".join(rows.metadata))

    def _arrays(self) -> tuple[Any, ...]:
        return (self.vectors, self.inverse_norms, self.ids, self.content, self.filled, self.metadata_offsets)

    def flush(self) -> None:
        for array in self._arrays():
            array.flush()
        self._metadata.flush()
        for name in (VECTORS, INVERSE_NORMS, IDS, CONTENT, FILLED, METADATA_OFFSETS, METADATA):
            fsync_path(self.directory / name)

    def finish(self, name: str) -> SegmentInfo:
        """Write the id order, sync everything, and describe the files for the manifest."""
        written = self._metadata.tell()
        if int(self.metadata_offsets[-1]) != written:
            raise StoreCorruptError(
                f"{self.directory / METADATA}: {written} bytes written, "
                f"the rows account for {int(self.metadata_offsets[-1])}"
            )
        _save(self.directory / ORDER, np.argsort(np.asarray(self.ids), kind="stable").astype(np.int64))
        self.flush()
        self._metadata.close()
        fsync_path(self.directory)
        fsync_path(self.directory.parent)  # the segment's directory entry itself
        files = {file: _describe(self.directory / file) for file in _FILES}
        return SegmentInfo(name, self.version, self.rows, self.dimension, files)


class Segment:
    """An open segment: memory-mapped arrays and the rows still alive."""

    def __init__(self, root: Path, info: SegmentInfo) -> None:
        self.info = info
        self.directory = root / info.name
        for file, (size, _crc) in info.files.items():
            path = self.directory / file
            try:
                actual = path.stat().st_size
            except OSError:
                raise StoreCorruptError(f"{path}: a file of segment {info.name} is missing") from None
            if actual != size:
                raise StoreCorruptError(
                    f"{path}: {actual} bytes where the manifest records {size}; the segment is damaged"
                )
        self.vectors: Float32Array = self._load(VECTORS)
        self.inverse_norms: Float32Array = self._load(INVERSE_NORMS)
        self.ids: npt.NDArray[np.bytes_] = self._load(IDS)
        self.order: IntArray = self._load(ORDER)
        self.content: npt.NDArray[np.uint8] = self._load(CONTENT)
        self.filled: npt.NDArray[np.int8] = self._load(FILLED)
        self.metadata_offsets: IntArray = self._load(METADATA_OFFSETS)
        shapes = {
            VECTORS: (self.vectors.shape, (info.rows, info.dimension)),
            IDS: (self.ids.shape, (info.rows,)),
            CONTENT: (self.content.shape, (info.rows, 32)),
            METADATA_OFFSETS: (self.metadata_offsets.shape, (info.rows + 1,)),
        }
        for file, (shape, expected) in shapes.items():
            if shape != expected:
                raise StoreCorruptError(f"{self.directory / file}: shape {shape}, expected {expected}")
        # Opened now, so that the rows stay readable after a writer's merge removes the files
        # (a read-only view, an iteration in progress).
        try:
            self._metadata_file: Any = open(self.directory / METADATA, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise StoreCorruptError(f"{self.directory / METADATA}: cannot be read ({exc.strerror})") from None
        self._sorted_ids: npt.NDArray[np.bytes_] | None = None
        self.alive: BoolArray = np.ones(info.rows, dtype=bool)
        self.tombstones_written: IntArray = np.zeros(0, dtype=np.int64)
        if info.tombstones:
            self.tombstones_written = self._load(info.tombstones)
            if self.tombstones_written.size and (
                int(self.tombstones_written.min()) < 0 or int(self.tombstones_written.max()) >= info.rows
            ):
                raise StoreCorruptError(f"{self.directory / info.tombstones}: rows outside the segment")
            self.alive[self.tombstones_written] = False
        self.live_rows = int(self.alive.sum())

    def _load(self, file: str) -> Any:
        path = self.directory / file
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreCorruptError(f"{path}: cannot be read as an array ({exc})") from None

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def dirty(self) -> bool:
        """Rows deleted since the tombstones were last written."""
        return self.info.rows - self.live_rows != self.tombstones_written.size

    def find(self, id_bytes: bytes) -> int | None:
        """The live row holding ``id``, if any (a bisection touching log2(rows) ids)."""
        if len(id_bytes) > self.ids.dtype.itemsize:
            return None
        position = _search(self.ids, self.order, id_bytes)
        while position < self.info.rows:
            row = int(self.order[position])
            if self.ids[row] != id_bytes:
                return None
            if self.alive[row]:
                return row
            position += 1
        return None

    def holding(self, keys: Sequence[bytes]) -> list[bytes]:
        """Those of ``keys`` stored here in a live row: one vectorised search for a whole batch
        (the sorted ids are materialised on first use and kept)."""
        width = self.ids.dtype.itemsize
        fitting = [key for key in keys if len(key) <= width]
        if not fitting or not self.live_rows:
            return []
        if self._sorted_ids is None:
            self._sorted_ids = np.asarray(self.ids)[np.asarray(self.order)]
        wanted = np.array(fitting, dtype=self.ids.dtype)
        left = np.searchsorted(self._sorted_ids, wanted, side="left")
        right = np.searchsorted(self._sorted_ids, wanted, side="right")
        found = []
        for index in np.flatnonzero(right > left).tolist():
            rows = np.asarray(self.order)[left[index] : right[index]]
            if self.alive[rows].any():
                found.append(fitting[index])
        return found

    def delete(self, row: int) -> None:
        if self.alive[row]:
            self.alive[row] = False
            self.live_rows -= 1

    @property
    def rows(self) -> int:
        return self.info.rows

    def id_bytes(self, row: int) -> bytes:
        return bytes(self.ids[row])

    def metadata(self, row: int) -> bytes:
        start, stop = int(self.metadata_offsets[row]), int(self.metadata_offsets[row + 1])
        return os.pread(self._metadata_file.fileno(), stop - start, start)

    def take(self, rows: IntArray) -> Rows:
        """The given rows (in ascending order), copied out of the maps; the metadata of the
        span they cover is read in one go."""
        if rows.size == 0:
            return Rows(
                np.zeros((0, self.info.dimension), dtype=np.float32), [], np.zeros((0, 32), dtype=np.uint8),
                np.zeros(0, dtype=np.int8), [],
            )  # fmt: skip
        first, last = int(rows[0]), int(rows[-1])
        base = int(self.metadata_offsets[first])
        span = os.pread(self._metadata_file.fileno(), int(self.metadata_offsets[last + 1]) - base, base)
        starts = (np.asarray(self.metadata_offsets)[rows] - base).tolist()
        stops = (np.asarray(self.metadata_offsets)[rows + 1] - base).tolist()
        return Rows(
            np.ascontiguousarray(np.asarray(self.vectors)[rows]),
            np.asarray(self.ids)[rows].tolist(),
            np.asarray(self.content)[rows],
            np.asarray(self.filled)[rows],
            [span[start:stop] for start, stop in zip(starts, stops, strict=True)],
        )

    def all_metadata(self) -> list[bytes]:
        offsets = self.metadata_offsets.tolist()
        data = os.pread(self._metadata_file.fileno(), offsets[-1], 0)
        return [data[offsets[row] : offsets[row + 1]] for row in range(self.info.rows)]

    def write_tombstones(self, file: str) -> SegmentInfo:
        """Persist the deleted rows under ``file``; the returned info names it."""
        rows = np.flatnonzero(~self.alive).astype(np.int64)
        _save(self.directory / file, rows)
        fsync_path(self.directory)
        self.tombstones_written = rows
        files = dict(self.info.files)
        self.info = attrs.evolve(self.info, files=files, tombstones=file)
        return self.info

    def verify(self) -> list[str]:
        """Problems found by re-reading every file against its recorded CRC-32."""
        problems = []
        for file, (size, crc) in self.info.files.items():
            if _describe(self.directory / file) != (size, crc):
                problems.append(f"{self.directory / file}: its CRC-32 does not match the manifest")
        return problems

    def close(self) -> None:
        self._metadata_file.close()


def _search(ids: npt.NDArray[np.bytes_], order: IntArray, key: bytes) -> int:
    """Binary search of ``key`` in ``ids`` read in ``order``, touching only log2(n) rows."""
    low, high = 0, int(order.shape[0])
    while low < high:
        middle = (low + high) // 2
        if bytes(ids[int(order[middle])]) < key:
            low = middle + 1
        else:
            high = middle
    return low


def inverse_norms(vectors: Float32Array) -> Float32Array:
    """1/|v| for each row, 0 for a zero vector (its cosine with anything is then 0), NaN for a
    row holding a value that is not finite (which a check of a batch looks for)."""
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    result = np.zeros(norms.shape, dtype=np.float32)
    np.divide(1.0, norms, out=result, where=norms > 0, casting="unsafe")
    result[~np.isfinite(norms)] = np.nan
    return result


def _memmap(path: Path, mode: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> Any:
    if mode == "w+":
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    array = np.lib.format.open_memmap(path, mode="r+")
    if array.shape != shape or array.dtype != dtype:
        raise StoreCorruptError(f"{path}: shape {array.shape} {array.dtype}, expected {shape} {dtype}")
    return array


def _save(path: Path, array: npt.NDArray[Any]) -> None:
    with open(path, "wb") as file:
        np.save(file, array, allow_pickle=False)
        file.flush()
        os.fsync(file.fileno())


def _describe(path: Path) -> tuple[int, int]:
    crc = 0
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return size, crc
