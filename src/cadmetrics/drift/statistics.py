"""Drift statistics over columns: every function works on all features at once.

A feature vector stream has tens of columns and a window has hundreds of rows; one numpy call
over the whole ``(rows, features)`` block costs about as much as one call over a single
column, so nothing here loops over features in Python. Bad arguments raise
:class:`~cadmetrics.errors.DriftError` (a ``ValueError``).

Bins are per feature, and features do not all have the same number of bins (a 0/1 feature has
two, a constant one has one). They are kept in one rectangular array all the same: each
column of ``edges`` holds its feature's cut points in ascending order, padded with ``+inf``.
A value's bin is the number of cut points at or below it, so padding never catches a finite
value, the bins a feature does not use stay empty on both sides (and add nothing to the PSI),
and values beyond the baseline's range land in the first or the last bin.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cadmetrics.errors import DriftError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Proportions below this are raised to it before the PSI's logarithm: a bin that one side
#: leaves empty would otherwise make the index infinite. 1e-4 is below one row's share of any
#: window up to 10,000 rows, so it only changes bins that really are empty; it bounds an empty
#: bin's contribution by ``p * ln(p / 1e-4)`` (0.69 for a bin of 10%), and a bin empty on
#: both sides adds exactly 0.
PSI_FLOOR = 1e-4

#: Quantile bins of a baseline, unless asked otherwise (deciles: the usual PSI binning).
DEFAULT_BINS = 10


def _columns(values: npt.ArrayLike, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise DriftError(f"{what} must be a (rows, features) array, not of shape {array.shape}")
    return array


def quantile_edges(values: npt.ArrayLike, bins: int = DEFAULT_BINS) -> FloatArray:
    """Per-feature cut points, shape ``(bins - 1, features)``, ``+inf``-padded.

    A column of at most ``bins`` distinct values (a 0/1 flag, a small count) gets one bin per
    value: its cut points are its values above the minimum. Any other column is cut at its
    quantiles ``1/bins ... (bins-1)/bins``, taken on the data's own values (never
    interpolated), keeping a cut only when it is above the minimum and above the cut before it,
    so that quantiles falling on one heavy value make one bin of it instead of empty ones. When
    such a value at the minimum swallows every quantile, the next value above it becomes the one
    cut, so that the rest of the column is not lumped in with it. A constant column has no cut.
    """
    if bins < 2:
        raise DriftError(f"bins must be at least 2, not {bins}")
    data = _columns(values, "values")
    rows = data.shape[0]
    if rows == 0:
        raise DriftError("quantile edges need at least one row")
    ordered = np.sort(data, axis=0)
    slots = bins - 1
    levels = np.arange(1, bins) / bins
    quantiles = ordered[np.floor(levels * (rows - 1)).astype(np.intp)]  # numpy's method="lower"

    new_value = ordered[1:] != ordered[:-1]  # (rows - 1, F): where a column's next distinct value starts
    distinct = _packed(new_value, ordered[1:], slots)  # the distinct values above the minimum, in order
    small = new_value.sum(axis=0) + 1 <= bins

    candidates = np.where(small, distinct, quantiles)
    previous = np.vstack([ordered[:1], candidates[:-1]])
    keep = np.isfinite(candidates) & (candidates > previous)
    edges = _packed(keep, candidates, slots)
    swallowed = ~keep.any(axis=0) & np.isfinite(distinct[0])
    edges[0] = np.where(swallowed, distinct[0], edges[0])
    return edges


def _packed(keep: npt.NDArray[np.bool_], values: FloatArray, slots: int) -> FloatArray:
    """The kept values of each column moved to its top, in order, then ``+inf``: the first
    ``slots`` rows."""
    order = np.argsort(~keep, axis=0, kind="stable")
    packed = np.take_along_axis(np.where(keep, values, np.inf), order, axis=0)[:slots]
    if packed.shape[0] < slots:  # fewer rows than cut points
        padding = np.full((slots - packed.shape[0], values.shape[1]), np.inf)
        packed = np.vstack([packed, padding])
    return np.ascontiguousarray(packed)


def bin_indices(values: npt.ArrayLike, edges: FloatArray) -> IntArray:
    """The bin of every value, shape ``(rows, features)``: the number of cut points at or
    below it (0 to ``bins - 1``)."""
    data = _columns(values, "values")
    if data.shape[1] != edges.shape[1]:
        raise DriftError(f"values have {data.shape[1]} features, the edges {edges.shape[1]}")
    # One broadcast compare: rows x cuts x features booleans, small for windows and bins.
    indices: IntArray = np.count_nonzero(data[:, None, :] >= edges[None, :, :], axis=1).astype(np.int64)
    return indices


def bin_counts(values: npt.ArrayLike, edges: FloatArray) -> IntArray:
    """How many values of each column fall in each bin, shape ``(bins, features)``."""
    indices = bin_indices(values, edges)
    bins, features = edges.shape[0] + 1, edges.shape[1]
    flat = indices + np.arange(features, dtype=np.int64) * bins  # column j counts in [j*bins, (j+1)*bins)
    counts = np.bincount(flat.ravel(), minlength=bins * features)
    result: IntArray = counts.reshape(features, bins).T.astype(np.int64)
    return result


def population_stability_index(
    expected: npt.ArrayLike, actual_counts: npt.ArrayLike, floor: float = PSI_FLOOR
) -> FloatArray:
    """PSI of each column: ``sum((a - e) * ln(a / e))`` over its bins, shape ``(features,)``.

    ``expected`` holds the baseline's proportions and ``actual_counts`` the window's counts,
    both ``(bins, features)``; both sides' proportions are raised to ``floor`` first (see
    :data:`PSI_FLOOR`), so a bin empty on both sides adds exactly 0. Rules of thumb: below 0.1
    no real change, 0.1 to 0.25 a moderate one, above 0.25 a shift.
    """
    e = np.asarray(expected, dtype=np.float64)
    counts = np.asarray(actual_counts, dtype=np.float64)
    if e.shape != counts.shape or e.ndim != 2:
        raise DriftError(
            f"expected {e.shape} and actual counts {counts.shape} must be the same (bins, features)"
        )
    totals = counts.sum(axis=0)
    if np.any(totals <= 0):
        empty = int(np.flatnonzero(totals <= 0)[0])
        raise DriftError(f"actual counts of feature {empty} are all zero: nothing to compare")
    a = np.maximum(counts / totals, floor)
    e = np.maximum(e, floor)
    result: FloatArray = np.sum((a - e) * np.log(a / e), axis=0)
    return result


def ks_statistic(reference_sorted: npt.ArrayLike, sample: npt.ArrayLike) -> FloatArray:
    """Two-sample Kolmogorov-Smirnov D of each column: the largest distance between the two
    empirical distribution functions, shape ``(features,)``.

    Both samples are merged and sorted per column; walking up the merged column, each side's
    distribution function is its running count over its size. Within a run of equal values the
    functions are only compared after the run's last element, which is what makes ties right
    (the distribution functions jump once per distinct value, by the run's whole weight).
    ``reference_sorted`` need not actually be sorted; the name says what the monitor keeps.
    """
    reference = _columns(reference_sorted, "reference")
    window = _columns(sample, "sample")
    n, m = reference.shape[0], window.shape[0]
    if reference.shape[1] != window.shape[1]:
        raise DriftError(f"reference has {reference.shape[1]} features, the sample {window.shape[1]}")
    if n == 0 or m == 0:
        raise DriftError("the KS statistic needs at least one row on each side")
    merged = np.concatenate([reference, window], axis=0)
    order = np.argsort(merged, axis=0, kind="stable")
    values = np.take_along_axis(merged, order, axis=0)
    from_reference = order < n
    cdf_reference = np.cumsum(from_reference, axis=0) / n
    cdf_sample = np.cumsum(~from_reference, axis=0) / m
    distance = np.abs(cdf_reference - cdf_sample)
    run_ends = np.ones_like(from_reference)
    run_ends[:-1] = values[1:] != values[:-1]
    result: FloatArray = np.max(np.where(run_ends, distance, 0.0), axis=0)
    return result


def first_non_finite(rows: FloatArray) -> tuple[int, int] | None:
    """Row and column of the first NaN or infinity in ``rows`` (row-major), if any: what an
    error message names."""
    bad = ~np.isfinite(rows)
    if not bad.any():
        return None
    row, column = (int(index) for index in np.argwhere(bad)[0])
    return row, column
