"""Approximate search through a faiss HNSW index (the ``ann`` extra).

The index holds unit vectors, so inner product is cosine, and maps its positions back to
records through a snapshot of the store's rows taken when it was built. Any write makes that
snapshot stale; the next approximate search rebuilds it rather than answer from records that
no longer exist.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.errors import MissingDependency
from cadmetrics.vectors._engine import Snapshot, Source
from cadmetrics.vectors.records import Hit
from cadmetrics.vectors.search import Filter, admitted_rows


@attrs.frozen(eq=False)
class AnnIndex:
    version: str
    index: Any  # faiss.IndexHNSWFlat
    sources: tuple[Source, ...]
    rows: tuple[npt.NDArray[np.int64], ...]  # the live rows of each source, in index order
    starts: npt.NDArray[np.int64]  # index position of each source's first row
    stamp: int  # the snapshot's stamp when built: any write since makes the index stale
    neighbours: int
    ef_search: int


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise MissingDependency(
            "approximate search needs faiss: pip install 'cadmetrics[ann]'", format="vectors"
        ) from None
    return faiss


def build(snapshot: Snapshot, version: str, *, neighbours: int, ef_search: int) -> AnnIndex:
    faiss = _faiss()
    layout = snapshot.layouts[version]
    sources = tuple(snapshot.sources(version))
    rows = tuple(np.flatnonzero(source.alive) for source in sources)
    index = faiss.IndexHNSWFlat(layout.dimension, neighbours, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = ef_search
    for source, live in zip(sources, rows, strict=True):
        for start in range(0, live.size, 65536):
            chunk = live[start : start + 65536]
            unit = np.asarray(source.vectors)[chunk] * np.asarray(source.inverse_norms)[chunk][:, None]
            index.add(np.ascontiguousarray(unit, dtype=np.float32))
    starts = np.cumsum([0, *(live.size for live in rows)])[:-1].astype(np.int64)
    return AnnIndex(version, index, sources, rows, starts, snapshot.stamp, neighbours, ef_search)


def ann_search(
    built: AnnIndex, queries: npt.NDArray[np.float32], k: int, filter: Filter | None
) -> list[list[Hit]]:
    """The approximate top ``k`` of each unit query, re-scored exactly; ``built`` must be
    current (its stamp that of the store's snapshot)."""
    faiss = _faiss()
    parameters = None
    if filter is not None:
        admitted = [
            start + np.flatnonzero(admitted_rows(source, filter)[live])
            for source, live, start in zip(built.sources, built.rows, built.starts, strict=True)
        ]
        positions = np.concatenate(admitted) if admitted else np.zeros(0, dtype=np.int64)
        parameters = faiss.SearchParametersHNSW(sel=faiss.IDSelectorBatch(positions.astype(np.int64)))
        parameters.efSearch = built.ef_search
    _, found = built.index.search(queries, k, params=parameters)
    results: list[list[Hit]] = []
    scores = queries  # re-scored exactly below, so ties and float error match the exact search
    for query, row in zip(scores, found.tolist(), strict=True):
        hits = []
        for position in row:
            if position < 0:
                continue
            which = int(np.searchsorted(built.starts, position, side="right")) - 1
            source = built.sources[which]
            stored = int(built.rows[which][position - built.starts[which]])
            score = float(np.dot(np.asarray(source.vectors)[stored], query) * source.inverse_norms[stored])
            hits.append(Hit(source.id_bytes(stored).decode("utf-8"), score, built.version))
        hits.sort(key=lambda hit: -hit.score)
        results.append(hits)
    return results


def recall(exact: list[list[Hit]], approximate: list[list[Hit]]) -> float:
    """Share of the exact top hits that the approximate search also returns."""
    found = total = 0
    for truth, guess in zip(exact, approximate, strict=True):
        wanted = {hit.id for hit in truth}
        found += len(wanted & {hit.id for hit in guess})
        total += len(wanted)
    return found / total if total else 1.0
