"""Exact search on an accelerator, with PyTorch (opt-in: ``VectorStore.open(..., device="cuda")``).

The live vectors of a version are kept on the device as unit rows, with the map from a device
row back to its record, made from a snapshot and made again when a write has changed the store
(its stamp). A search sends the unit queries over, multiplies them with the rows a chunk of
queries at a time, and takes ``torch.topk``; the candidates come back to be ordered as the
search on the processor orders them (score, then the older record), so both give the same
answers. Never required: without PyTorch, or without the device, opening the store says so.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.errors import MissingDependency, VectorStoreError
from cadmetrics.vectors._engine import Snapshot, Source
from cadmetrics.vectors.records import Hit
from cadmetrics.vectors.search import TILE_VALUES, Filter, admitted_rows

#: Candidates taken past ``k`` per query, so that ties at the k-th place are settled by age
#: on the processor rather than by the device's arbitrary order.
_TIE_MARGIN: Final = 8


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependency(
            "search on a device needs PyTorch: pip install torch (with the build for your device)",
            format="vectors",
        ) from None
    return torch


@attrs.frozen(eq=False)
class _Resident:
    """One version's vectors on the device, and where each row came from."""

    matrix: Any  # torch tensor, rows x dimension, unit rows
    sources: tuple[Source, ...]
    rows: tuple[npt.NDArray[np.int64], ...]  # the live rows of each source, in device order
    starts: npt.NDArray[np.int64]  # device row of each source's first live row
    stamp: int


class DeviceSearch:
    """The vectors of a store kept on ``device`` (``"cuda"``, ``"cuda:1"``, ``"cpu"``...)."""

    def __init__(self, device: str) -> None:
        torch = _torch()
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise VectorStoreError(f"device {device!r} is not a PyTorch device ({exc})") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise VectorStoreError(f"device {device!r}: PyTorch sees no CUDA device here")
        self._torch = torch
        self._resident: dict[str, _Resident] = {}

    def search(
        self,
        snapshot: Snapshot,
        version: str,
        queries: npt.NDArray[np.float32],
        k: int,
        filter: Filter | None,
    ) -> list[list[Hit]]:
        """The ``k`` best records of ``version`` for each unit query, best first (ties: older first)."""
        torch = self._torch
        resident = self._current(snapshot, version)
        count = int(resident.matrix.shape[0])
        if count == 0:
            return [[] for _ in range(queries.shape[0])]
        excluded = None
        if filter is not None:
            kept = [
                admitted_rows(source, filter)[live]
                for source, live in zip(resident.sources, resident.rows, strict=True)
            ]
            excluded = torch.from_numpy(~np.concatenate(kept)).to(self.device)
        taken = min(count, k + _TIE_MARGIN)
        chunk = max(1, self._score_values() // count)
        results: list[list[Hit]] = []
        with torch.no_grad():
            on_device = torch.from_numpy(queries).to(self.device)
            for start in range(0, queries.shape[0], chunk):
                scores = on_device[start : start + chunk] @ resident.matrix.T
                if excluded is not None:
                    scores[:, excluded] = -torch.inf
                values, positions = torch.topk(scores, taken, dim=1)
                results += self._hits(resident, values.cpu().numpy(), positions.cpu().numpy(), k, version)
        return results

    def _score_values(self) -> int:
        """How many scores one product may make: a sixteenth of the device's free memory on a
        GPU (a large batch in one product is what a GPU is fast at), a tile on the processor."""
        if self.device.type != "cuda":
            return TILE_VALUES
        free, _total = self._torch.cuda.mem_get_info(self.device)
        return max(TILE_VALUES, int(free) // 64)  # 4 bytes a score, a sixteenth of what is free

    def _hits(
        self,
        resident: _Resident,
        values: npt.NDArray[np.float32],
        positions: npt.NDArray[np.int64],
        k: int,
        version: str,
    ) -> list[list[Hit]]:
        results = []
        for row_values, row_positions in zip(values, positions, strict=True):
            order = np.lexsort((row_positions, -row_values))[:k]
            hits = []
            for value, position in zip(
                row_values[order].tolist(), row_positions[order].tolist(), strict=True
            ):
                if not np.isfinite(value):
                    break
                which = int(np.searchsorted(resident.starts, position, side="right")) - 1
                source = resident.sources[which]
                stored = int(resident.rows[which][position - resident.starts[which]])
                hits.append(Hit(source.id_bytes(stored).decode("utf-8"), float(value), version))
            results.append(hits)
        return results

    def _current(self, snapshot: Snapshot, version: str) -> _Resident:
        """The version's rows on the device, sent again when the store changed since."""
        resident = self._resident.get(version)
        if resident is not None and resident.stamp == snapshot.stamp:
            return resident
        self._resident.pop(version, None)  # free the device's copy before making the next
        torch = self._torch
        sources = tuple(snapshot.sources(version))
        rows = tuple(np.flatnonzero(source.alive) for source in sources)
        dimension = snapshot.layouts[version].dimension
        blocks = []
        for source, live in zip(sources, rows, strict=True):
            for start in range(0, live.size, 1 << 16):
                chosen = live[start : start + (1 << 16)]
                unit = np.asarray(source.vectors)[chosen] * np.asarray(source.inverse_norms)[chosen][:, None]
                blocks.append(torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32)).to(self.device))
        matrix = torch.cat(blocks) if blocks else torch.zeros((0, dimension), device=self.device)
        starts = np.cumsum([0, *(live.size for live in rows)])[:-1].astype(np.int64)
        resident = self._resident[version] = _Resident(matrix, sources, rows, starts, snapshot.stamp)
        return resident
