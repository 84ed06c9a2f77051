"""Exact top-k of each row of a score matrix, faster than a full partition.

``numpy.argpartition`` over 200 000 scores per query costs more than the matrix product that
made them. Almost all of that work is wasted: only k of them are wanted. So each row is cut
into blocks and the k-th largest block maximum is taken as a threshold: at least k scores reach
it (one in each of those blocks), so every score of the true top k does too. The few scores at
or above it are the only ones sorted. The answer is exact, ties broken by the lower column.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ScoreArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int64]

#: Scores below this are excluded rows (deleted, filtered out); they are never returned.
EXCLUDED = np.float32(-np.inf)


def top_k(scores: ScoreArray, k: int) -> tuple[IndexArray, ScoreArray]:
    """Columns and scores of the ``k`` highest scores of each row, best first.

    Rows with fewer than ``k`` admitted scores are padded with column -1 and score -inf.
    """
    rows, columns = scores.shape
    indices = np.full((rows, k), -1, dtype=np.int64)
    values = np.full((rows, k), EXCLUDED, dtype=np.float32)
    if rows == 0 or columns == 0 or k == 0:
        return indices, values
    block = max(1, min(1024, columns // (16 * k)))
    blocks = columns // block
    whole = blocks * block
    maxima = scores[:, :whole].reshape(rows, blocks, block).max(axis=2)
    if blocks > k:
        threshold = np.partition(maxima, blocks - k, axis=1)[:, blocks - k]
    else:
        threshold = np.full(rows, EXCLUDED, dtype=np.float32)
    # Only the blocks whose maximum reaches the threshold can hold a top-k score.
    block_rows, block_numbers = np.nonzero((maxima >= threshold[:, None]) & (maxima > EXCLUDED))
    gathered = scores[:, :whole].reshape(rows, blocks, block)[block_rows, block_numbers]
    columns_of = block_numbers[:, None] * block + np.arange(block)
    row_of = np.broadcast_to(block_rows[:, None], gathered.shape)
    candidate_rows, candidate_columns, candidate_scores = row_of.ravel(), columns_of.ravel(), gathered.ravel()
    if whole < columns:  # the last, partial block: every score of it is a candidate
        tail = scores[:, whole:]
        candidate_rows = np.concatenate([candidate_rows, np.repeat(np.arange(rows), columns - whole)])
        candidate_columns = np.concatenate([candidate_columns, np.tile(np.arange(whole, columns), rows)])
        candidate_scores = np.concatenate([candidate_scores, tail.ravel()])
    keep = (candidate_scores >= threshold[candidate_rows]) & (candidate_scores > EXCLUDED)
    candidate_rows, candidate_columns = candidate_rows[keep], candidate_columns[keep]
    candidate_scores = candidate_scores[keep]
    order = np.lexsort((candidate_columns, -candidate_scores, candidate_rows))
    candidate_rows = candidate_rows[order]
    starts = np.searchsorted(candidate_rows, np.arange(rows))
    rank = np.arange(candidate_rows.shape[0]) - starts[candidate_rows]
    chosen = rank < k
    indices[candidate_rows[chosen], rank[chosen]] = candidate_columns[order][chosen]
    values[candidate_rows[chosen], rank[chosen]] = candidate_scores[order][chosen]
    return indices, values


def merge(
    indices: IndexArray, values: ScoreArray, more_indices: IndexArray, more_values: ScoreArray, k: int
) -> tuple[IndexArray, ScoreArray]:
    """The best ``k`` of two per-row candidate lists (columns already made global)."""
    joined_indices = np.concatenate([indices, more_indices], axis=1)
    joined_values = np.concatenate([values, more_values], axis=1)
    picked, best = top_k(joined_values, k)
    rows = np.arange(joined_indices.shape[0])[:, None]
    chosen = np.where(picked >= 0, joined_indices[rows, np.maximum(picked, 0)], -1)
    return chosen, best
