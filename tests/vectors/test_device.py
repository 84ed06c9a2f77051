"""Exact search on a PyTorch device gives the answers of the search on the processor.

PyTorch's CPU device runs the same code path as CUDA here (the tox ``torch`` environment); the
CUDA test runs only where a GPU is present and is skipped, saying so, everywhere else.
"""

from __future__ import annotations

import numpy as np
import pytest

from cadmetrics.errors import VectorStoreError
from cadmetrics.vectors import VectorStore
from tests.vectors.test_search import DIMENSION, brute_force, filled_store

torch = pytest.importorskip(
    "torch", reason="search on a device needs PyTorch (the tox torch environment has it)"
)


def _compare(device: str) -> None:
    store, vectors = filled_store(None, 1300, device=device)
    queries = np.random.default_rng(4).standard_normal((33, DIMENSION)).astype(np.float32)
    queries[5] = vectors[40]
    assert [[hit.id for hit in row] for row in store.search_batch(queries, 7)] == brute_force(
        vectors, queries, 7
    )
    for n in range(0, 1300, 3):  # a write: the device's copy is made again
        store.delete(f"id{n}")
    keep = np.array([n % 3 != 0 for n in range(1300)])
    assert [[hit.id for hit in row] for row in store.search_batch(queries, 7)] == brute_force(
        vectors, queries, 7, keep
    )
    group = keep & np.array([n % 3 == 1 for n in range(1300)])
    filtered = store.search_batch(queries, 7, filter={"group": 1})
    assert [[hit.id for hit in row] for row in filtered] == brute_force(vectors, queries, 7, group)
    on_processor = VectorStore.open(None, layouts=store.layouts)
    on_processor.add_many(store)
    for got, expected in zip(
        store.search_batch(queries, 7), on_processor.search_batch(queries, 7), strict=True
    ):
        assert [hit.id for hit in got] == [hit.id for hit in expected]
        assert np.allclose([hit.score for hit in got], [hit.score for hit in expected], atol=1e-5)


def test_search_on_the_cpu_device_agrees_with_the_processor() -> None:
    _compare("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the GPU search is untested")
def test_search_on_a_gpu_agrees_with_the_processor() -> None:
    _compare("cuda")


def test_a_device_that_is_not_there_is_refused() -> None:
    with pytest.raises(VectorStoreError, match="not a PyTorch device"):
        VectorStore.open(None, device="abacus")
    if not torch.cuda.is_available():
        with pytest.raises(VectorStoreError, match="PyTorch sees no CUDA device here"):
            VectorStore.open(None, device="cuda")
