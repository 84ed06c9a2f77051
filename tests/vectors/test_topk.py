"""The block-threshold top-k is exact: the same columns, in the same order, as a full sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics.vectors.topk import EXCLUDED, merge, top_k


def reference(scores: np.ndarray, k: int) -> np.ndarray:
    """A full stable sort of each row: best score first, lower column first among ties."""
    result = np.full((scores.shape[0], k), -1)
    for row, values in enumerate(scores):
        admitted = np.flatnonzero(values > EXCLUDED)
        ordered = admitted[np.lexsort((admitted, -values[admitted]))][:k]
        result[row, : ordered.size] = ordered
    return result


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 4),
    columns=st.integers(1, 5000),
    k=st.integers(1, 40),
    levels=st.integers(2, 1000),
    excluded=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_top_k_equals_a_full_sort(
    rows: int, columns: int, k: int, levels: int, excluded: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    scores = (rng.integers(0, levels, size=(rows, columns)) / levels).astype(np.float32)  # many ties
    scores[rng.random((rows, columns)) < excluded] = EXCLUDED
    indices, values = top_k(scores, k)
    expected = reference(scores, k)
    assert np.array_equal(indices, expected)
    picked = np.take_along_axis(scores, np.maximum(expected, 0), axis=1)
    assert np.array_equal(values, np.where(expected >= 0, picked, EXCLUDED))


def test_merging_two_partial_answers_equals_one_answer() -> None:
    rng = np.random.default_rng(7)
    scores = rng.standard_normal((5, 3000)).astype(np.float32)
    left, left_values = top_k(scores[:, :1000], 10)
    right, right_values = top_k(scores[:, 1000:], 10)
    merged, merged_values = merge(left, left_values, right + 1000, right_values, 10)
    whole, whole_values = top_k(scores, 10)
    assert np.array_equal(merged, whole)
    assert np.array_equal(merged_values, whole_values)
