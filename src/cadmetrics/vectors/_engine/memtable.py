"""Recent writes of one feature version, held in memory until the next checkpoint.

They are durable already (the log holds them); the buffer only gives them the same shape as a
segment (contiguous arrays, an alive mask) so that search and migration read both alike. An
in-memory store (``path=None``) keeps everything here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cadmetrics.features.layout import FeatureLayout
from cadmetrics.vectors._engine.segment import NOT_FILLED, BoolArray, Rows
from cadmetrics.vectors.records import CheckedRecord, Float32Array


class Memtable:
    def __init__(self, version: str, dimension: int) -> None:
        self.version = version
        self.dimension = dimension
        self.rows = 0
        self.live_rows = 0
        self._vectors = np.zeros((16, dimension), dtype=np.float32)
        self._inverse_norms = np.zeros(16, dtype=np.float32)
        self._alive = np.zeros(16, dtype=bool)
        self._content = np.zeros((16, 32), dtype=np.uint8)
        self._filled = np.zeros(16, dtype=np.int8)
        self.id_list: list[bytes] = []
        self.metadata_list: list[bytes] = []

    def append(self, records: Sequence[CheckedRecord], filled: Sequence[int]) -> int:
        """Add ``records`` (``filled``: each one's filled-from code); returns the first row."""
        if not records:
            return self.rows
        return self.extend(
            Rows(
                np.stack([record.vector for record in records]),
                [record.id_bytes for record in records],
                np.frombuffer(b"".join(record.content for record in records), dtype=np.uint8).reshape(-1, 32),
                np.asarray(filled, dtype=np.int8),
                [record.metadata_json for record in records],
            )
        )

    def extend(self, rows: Rows) -> int:
        """Add a block of rows; returns the first row."""
        start = self.rows
        stop = start + len(rows)
        if stop > self._vectors.shape[0]:
            self._grow(stop)
        self._vectors[start:stop] = rows.vectors
        self._inverse_norms[start:stop] = rows.inverse_norms()
        self._content[start:stop] = rows.content
        self._alive[start:stop] = True
        self._filled[start:stop] = rows.filled
        self.id_list.extend(rows.ids)
        self.metadata_list.extend(rows.metadata)
        self.rows = stop
        self.live_rows += len(rows)
        return start

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * self._vectors.shape[0])
        for name in ("_vectors", "_inverse_norms", "_alive", "_content", "_filled"):
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: self.rows] = old[: self.rows]
            setattr(self, name, new)

    def delete(self, row: int) -> None:
        if self._alive[row]:
            self._alive[row] = False
            self.live_rows -= 1

    @property
    def vectors(self) -> Float32Array:
        return self._vectors[: self.rows]

    @property
    def inverse_norms(self) -> Float32Array:
        return self._inverse_norms[: self.rows]

    @property
    def alive(self) -> BoolArray:
        return self._alive[: self.rows]

    @property
    def content(self) -> npt.NDArray[np.uint8]:
        return self._content[: self.rows]

    @property
    def filled(self) -> npt.NDArray[np.int8]:
        return self._filled[: self.rows]

    def id_bytes(self, row: int) -> bytes:
        return self.id_list[row]

    def metadata(self, row: int) -> bytes:
        return self.metadata_list[row]

    def take(self, rows: npt.NDArray[np.int64]) -> Rows:
        """The given rows, copied."""
        return Rows(
            self.vectors[rows],
            [self.id_list[row] for row in rows.tolist()],
            self.content[rows],
            self.filled[rows],
            [self.metadata_list[row] for row in rows.tolist()],
        )

    def all_metadata(self) -> list[bytes]:
        return self.metadata_list[: self.rows]


def rows_of(records: Sequence[CheckedRecord], layout: FeatureLayout) -> Rows:
    """New records of ``layout``'s version as a block of rows."""
    table = Memtable(layout.version, layout.dimension)
    table.append(records, [NOT_FILLED] * len(records))
    return table.take(np.arange(table.rows))
