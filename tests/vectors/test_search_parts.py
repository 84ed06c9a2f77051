"""Exact search split over cores gives the answers of one core: the same ids, in the same order
(ties to the older record), deleted and filtered records left out."""

from __future__ import annotations

import numpy as np
import pytest

from cadmetrics.vectors import search
from tests.vectors.test_search import DIMENSION, brute_force, filled_store


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_any_split_of_the_queries_gives_the_same_answers(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(search, "WORKERS", workers)
    store, vectors = filled_store(None, 1500)
    for n in range(0, 1500, 5):
        store.delete(f"id{n}")
    keep = np.array([n % 5 != 0 for n in range(1500)])
    queries = np.random.default_rng(3).standard_normal((45, DIMENSION)).astype(np.float32)
    queries[7] = vectors[12]  # a query equal to a stored vector: its own best hit
    got = [[hit.id for hit in row] for row in store.search_batch(queries, 9)]
    assert got == brute_force(vectors, queries, 9, keep)
    assert got[7][0] == "id12"
    group = keep & np.array([n % 3 == 2 for n in range(1500)])
    filtered = store.search_batch(queries, 9, filter={"group": 2})
    assert [[hit.id for hit in row] for row in filtered] == brute_force(vectors, queries, 9, group)
