"""Which search answers a query: the exact scan on the processor, the exact scan on a device
(:mod:`~cadmetrics.vectors.device`), or an approximate index (:mod:`~cadmetrics.vectors.ann`),
each kept current with the store it searches."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cadmetrics.errors import VectorInputError
from cadmetrics.vectors._engine import Snapshot
from cadmetrics.vectors.ann import AnnIndex, ann_search, build
from cadmetrics.vectors.device import DeviceSearch
from cadmetrics.vectors.records import Hit
from cadmetrics.vectors.search import Filter, exact

METHODS = ("exact", "ann")


class Searcher:
    def __init__(self, device: str | None) -> None:
        self.device = DeviceSearch(device) if device is not None else None
        self.indexes: dict[str, AnnIndex] = {}

    def search(
        self,
        snapshot: Snapshot,
        version: str,
        queries: npt.NDArray[np.float32],
        k: int,
        *,
        filter: Filter | None,
        method: str,
    ) -> list[list[Hit]]:
        """The ``k`` best records of ``version`` for each unit query, by ``method``."""
        if method == "ann":
            index = self.indexes.get(version)
            if index is None:
                raise VectorInputError(
                    f"no approximate index for {version}: call store.build_index({version!r}) first"
                )
            if index.stamp != snapshot.stamp:  # written since: made again from the current rows
                index = self.build_index(
                    snapshot, version, neighbours=index.neighbours, ef_search=index.ef_search
                )
            return ann_search(index, queries, k, filter)
        if self.device is not None:
            return self.device.search(snapshot, version, queries, k, filter)
        return exact(snapshot, version, queries, k, filter)

    def build_index(self, snapshot: Snapshot, version: str, *, neighbours: int, ef_search: int) -> AnnIndex:
        index = self.indexes[version] = build(snapshot, version, neighbours=neighbours, ef_search=ef_search)
        return index
