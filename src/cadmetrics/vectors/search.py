"""Exact cosine search over a snapshot of a store: one matrix product per tile of stored
vectors for a whole batch of queries, and a running top ``k``.

Stored vectors are kept as they were given, with their inverse norms beside them, so a score
is the product of the unit query and the stored vector, scaled by that inverse norm.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.errors import VectorInputError
from cadmetrics.features.layout import FeatureLayout
from cadmetrics.vectors._engine import Snapshot, Source
from cadmetrics.vectors.records import Hit, metadata_from_json
from cadmetrics.vectors.topk import EXCLUDED, merge, top_k

#: Keeps some records only: metadata keys to required values, or a function of (id, metadata).
Filter = Mapping[str, Any] | Callable[[str, "dict[str, Any] | None"], bool]

#: Score tiles of a search stay under this many values (256 MiB of float32).
TILE_VALUES: Final = 1 << 26
#: Threads that select the top k of a tile's parts, one per core.
WORKERS: Final = os.cpu_count() or 1

Scores = npt.NDArray[np.float32]
TopK = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


def as_array(query: Any) -> npt.NDArray[np.float32]:
    try:
        return np.asarray(query, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise VectorInputError(f"the query is not numeric ({exc})") from None


def unit_queries(array: npt.NDArray[np.float32], layout: FeatureLayout | None) -> npt.NDArray[np.float32]:
    """The queries scaled to unit length, checked (against ``layout``'s dimension, when given)."""
    if array.ndim != 2 or array.shape[0] == 0:
        raise VectorInputError(f"a query is a vector or a matrix of vectors, got shape {array.shape}")
    if layout is not None and array.shape[1] != layout.dimension:
        raise VectorInputError(
            f"a {layout.version} query has {layout.dimension} values, got {array.shape[1]}"
        )
    if not np.isfinite(array).all():
        raise VectorInputError("the query holds a value that is not finite")
    norms = np.linalg.norm(array, axis=1)
    if (norms == 0).any():
        raise VectorInputError(f"query {int(np.flatnonzero(norms == 0)[0])} is zero: it has no direction")
    return np.ascontiguousarray(array / norms[:, None], dtype=np.float32)


def version_of_dimension(layouts: Mapping[str, FeatureLayout], dimension: int) -> str:
    matching = [version for version, layout in layouts.items() if layout.dimension == dimension]
    if len(matching) != 1:
        raise VectorInputError(
            f"no single version of this store has {dimension} values "
            f"({', '.join(f'{v}: {layout.dimension}' for v, layout in layouts.items())}); pass version="
        )
    return matching[0]


def exact(
    snapshot: Snapshot, version: str, queries: npt.NDArray[np.float32], k: int, filter: Filter | None
) -> list[list[Hit]]:
    """The ``k`` best records of ``version`` for each unit query, best first (ties: older first)."""
    sources = snapshot.sources(version)
    best_index = np.full((queries.shape[0], k), -1, dtype=np.int64)
    best_score = np.full((queries.shape[0], k), EXCLUDED, dtype=np.float32)
    offsets = []
    offset = 0
    tile = max(1, TILE_VALUES // queries.shape[0])
    parts = _row_parts(queries.shape[0])
    for source in sources:
        offsets.append(offset)
        excluded = ~admitted_rows(source, filter)
        vectors, inverse = np.asarray(source.vectors), np.asarray(source.inverse_norms)
        for start in range(0, source.rows, tile):
            stop = min(source.rows, start + tile)
            scores = queries @ vectors[start:stop].T  # BLAS, on every core
            dropped = np.flatnonzero(excluded[start:stop])

            select = _Tile(scores, inverse[start:stop], dropped, k, offset + start).select
            chosen = list(_pool().map(select, parts)) if len(parts) > 1 else [select(parts[0])]
            index = np.concatenate([item[0] for item in chosen])
            value = np.concatenate([item[1] for item in chosen])
            best_index, best_score = merge(best_index, best_score, index, value, k)
        offset += source.rows
    starts = np.asarray(offsets, dtype=np.int64)
    results: list[list[Hit]] = []
    for row_index, row_score in zip(best_index.tolist(), best_score.tolist(), strict=True):
        hits = []
        for position, score in zip(row_index, row_score, strict=True):
            if position < 0:
                break
            which = int(np.searchsorted(starts, position, side="right")) - 1
            source = sources[which]
            hits.append(
                Hit(source.id_bytes(position - offsets[which]).decode("utf-8"), float(score), version)
            )
        results.append(hits)
    return results


@attrs.frozen(eq=False)
class _Tile:
    """Scores of the queries against some consecutive stored rows, ``first`` the first."""

    scores: Scores
    inverse: Scores
    dropped: npt.NDArray[np.int64]
    k: int
    first: int

    def select(self, rows: slice) -> TopK:
        """The top ``k`` of some query rows: scores scaled to cosines, excluded rows
        dropped, columns made positions in the store."""
        part = self.scores[rows]
        np.multiply(part, self.inverse, out=part)
        if self.dropped.size:
            part[:, self.dropped] = EXCLUDED
        index, value = top_k(part, self.k)
        return np.where(index >= 0, index + self.first, -1), value


def _row_parts(rows: int) -> list[slice]:
    """The query rows cut into one part per core (parts of at least a few rows)."""
    count = max(1, min(WORKERS, rows // 4))
    bounds = np.linspace(0, rows, count + 1).astype(int).tolist()
    return [slice(low, high) for low, high in itertools.pairwise(bounds)]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Threads for the selection of each tile's top k: numpy releases the interpreter's lock
    in the work it does, so each core scales and selects a part of the queries."""
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cadmetrics-search")


def admitted_rows(source: Source, filter: Filter | None) -> npt.NDArray[np.bool_]:
    """The rows of ``source`` alive and kept by ``filter``."""
    alive = np.asarray(source.alive)
    if filter is None:
        return alive
    kept = alive.copy()
    metadata = source.all_metadata()
    if isinstance(filter, Mapping):
        wanted = dict(filter)
        for row in np.flatnonzero(alive).tolist():
            found = metadata_from_json(metadata[row]) or {}
            kept[row] = all(key in found and found[key] == value for key, value in wanted.items())
    else:
        for row in np.flatnonzero(alive).tolist():
            kept[row] = bool(filter(source.id_bytes(row).decode("utf-8"), metadata_from_json(metadata[row])))
    return kept
