"""Approximate search through a faiss HNSW index (the ``ann`` extra).

The index holds unit vectors, so inner product is cosine, and maps its positions back to
records through a snapshot of the store's rows taken when it was built. Any write makes that
snapshot stale; the next approximate search rebuilds it rather than answer from records that
no longer exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.errors import MissingDependency, VectorInputError
from cadmetrics.vectors.records import Hit

if TYPE_CHECKING:
    from cadmetrics.vectors.store import Filter, Source, VectorStore


@attrs.frozen(eq=False)
class AnnIndex:
    version: str
    index: Any  # faiss.IndexHNSWFlat
    sources: tuple[Source, ...]
    rows: tuple[npt.NDArray[np.int64], ...]  # the live rows of each source, in index order
    starts: npt.NDArray[np.int64]  # index position of each source's first row
    changes: int  # the store's change count when built
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


def build(store: VectorStore, version: str, *, neighbours: int, ef_search: int) -> AnnIndex:
    faiss = _faiss()
    layout = store._layout(version)
    sources = tuple(s for s in store._sources() if s.version == version and s.live_rows)
    rows = tuple(np.flatnonzero(source.alive) for source in sources)
    index = faiss.IndexHNSWFlat(layout.dimension, neighbours, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = ef_search
    for source, live in zip(sources, rows, strict=True):
        for start in range(0, live.size, 65536):
            chunk = live[start : start + 65536]
            unit = np.asarray(source.vectors)[chunk] * np.asarray(source.inverse_norms)[chunk][:, None]
            index.add(np.ascontiguousarray(unit, dtype=np.float32))
    starts = np.cumsum([0, *(live.size for live in rows)])[:-1].astype(np.int64)
    return AnnIndex(version, index, sources, rows, starts, store._changes, neighbours, ef_search)


def ann_search(
    store: VectorStore, version: str, queries: npt.NDArray[np.float32], k: int, filter: Filter | None
) -> list[list[Hit]]:
    built = store._ann.get(version)
    if built is None:
        raise VectorInputError(
            f"no approximate index for {version}: call store.build_index({version!r}) first"
        )
    if built.changes != store._changes:
        built = store._ann[version] = build(
            store, version, neighbours=built.neighbours, ef_search=built.ef_search
        )
    faiss = _faiss()
    parameters = None
    if filter is not None:
        admitted = [
            start + np.flatnonzero(store._admitted(source, filter)[live])
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
            hits.append(Hit(source.id_bytes(stored).decode("utf-8"), score, version))
        hits.sort(key=lambda hit: -hit.score)
        results.append(hits)
    return results


def recall(store: VectorStore, queries: npt.ArrayLike, k: int = 10, *, version: str | None = None) -> float:
    """Share of the exact top ``k`` that the approximate search also returns, over ``queries``."""
    exact = store.search_batch(queries, k, version=version, method="exact")
    approximate = store.search_batch(queries, k, version=version, method="ann")
    found = total = 0
    for truth, guess in zip(exact, approximate, strict=True):
        wanted = {hit.id for hit in truth}
        found += len(wanted & {hit.id for hit in guess})
        total += len(wanted)
    return found / total if total else 1.0
