"""Drift statistics: bins that suit constant, 0/1 and continuous features alike, PSI against a
plain per-bin reference, KS against scipy, with and without ties."""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics.drift.statistics import (
    PSI_FLOOR,
    bin_counts,
    bin_indices,
    ks_statistic,
    population_stability_index,
    quantile_edges,
)
from cadmetrics.errors import CadMetricsError, DriftError

FloatArray = npt.NDArray[np.float64]


def mixed_columns(rows: int, seed: int = 0) -> FloatArray:
    """A constant, a 0/1 (30% zeros) and a continuous column."""
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [np.full(rows, 7.0), (rng.random(rows) >= 0.3).astype(np.float64), rng.normal(size=rows)]
    )


# -- bins -------------------------------------------------------------------------------------


def test_constant_binary_and_continuous_columns_get_bins_of_their_own() -> None:
    data = mixed_columns(1000)
    edges = quantile_edges(data, bins=10)
    assert edges.shape == (9, 3)
    assert np.isinf(edges[:, 0]).all()  # constant: one bin
    assert edges[0, 1] == 1.0 and np.isinf(edges[1:, 1]).all()  # 0/1: bins "0" and "1"
    assert np.isfinite(edges[:, 2]).all() and (np.diff(edges[:, 2]) > 0).all()  # continuous: 10 bins
    counts = bin_counts(data, edges)
    assert counts.shape == (10, 3)
    assert counts[0, 0] == 1000 and counts[1:, 0].sum() == 0
    assert counts[0, 1] == np.count_nonzero(data[:, 1] == 0) and counts[1, 1] == np.count_nonzero(data[:, 1])
    assert counts[:, 2].min() >= 99 and counts[:, 2].max() <= 101  # deciles


def test_values_beyond_the_baseline_fall_in_the_first_or_last_bin() -> None:
    edges = quantile_edges(mixed_columns(1000))
    outside = np.array([[-1e9, -5.0, -1e9], [1e9, 5.0, 1e9]])
    indices = bin_indices(outside, edges)
    assert indices[0].tolist() == [0, 0, 0]
    assert indices[1].tolist() == [0, 1, 9]  # each column's own last bin


def test_a_few_distinct_values_get_one_bin_each() -> None:
    rng = np.random.default_rng(3)
    euler = rng.choice([-2.0, 0.0, 2.0, 4.0], size=(500, 1), p=[0.05, 0.1, 0.8, 0.05])
    edges = quantile_edges(euler)
    assert edges[:3, 0].tolist() == [0.0, 2.0, 4.0] and np.isinf(edges[3:, 0]).all()


def test_a_heavy_minimum_does_not_swallow_the_rest_of_the_column() -> None:
    rng = np.random.default_rng(4)
    volume = np.where(rng.random(2000) < 0.95, 0.0, 1.0 + rng.random(2000))[:, None]  # mostly open parts
    edges = quantile_edges(volume)
    assert edges[0, 0] == volume[volume > 0].min() and np.isinf(edges[1:, 0]).all()
    counts = bin_counts(volume, edges)
    assert counts[0, 0] == np.count_nonzero(volume == 0) and counts[1, 0] == np.count_nonzero(volume)


def test_a_heavy_value_inside_the_range_becomes_one_bin() -> None:
    rng = np.random.default_rng(5)
    column = np.where(rng.random(5000) < 0.5, 3.0, rng.normal(3.0, 1.0, 5000))[:, None]
    edges = quantile_edges(column)
    used = 1 + int(np.isfinite(edges).sum())
    counts = bin_counts(column, edges)[:, 0]
    assert used < 10 and (counts[:used] > 0).all() and counts[used:].sum() == 0  # no empty bin
    assert counts.max() >= 2500  # the point mass, in one bin


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-3, 3).map(float) | st.floats(-1e6, 1e6), min_size=3, max_size=3),
        min_size=1,
        max_size=60,
    ),
    st.integers(2, 12),
)
def test_a_values_bin_is_the_number_of_cut_points_at_or_below_it(rows: list[list[float]], bins: int) -> None:
    data = np.array(rows)
    edges = quantile_edges(data, bins)
    assert edges.shape == (bins - 1, 3)
    for column in range(3):
        cuts = edges[:, column]
        finite = cuts[np.isfinite(cuts)]
        assert np.isinf(cuts[len(finite) :]).all()  # padding only after the cut points
        assert (np.diff(finite) > 0).all() and (finite > data[:, column].min()).all()
        expected = np.searchsorted(cuts, data[:, column], side="right")
        assert bin_indices(data, edges)[:, column].tolist() == expected.tolist()
    counts = bin_counts(data, edges)
    assert counts.sum(axis=0).tolist() == [len(rows)] * 3
    assert (counts[0] > 0).all()  # the minimum is always in the first bin: no bin is cut below it


def test_bins_refuse_what_they_cannot_use() -> None:
    with pytest.raises(DriftError, match="bins must be at least 2"):
        quantile_edges(np.zeros((5, 2)), bins=1)
    with pytest.raises(DriftError, match="at least one row"):
        quantile_edges(np.zeros((0, 2)))
    with pytest.raises(DriftError, match=r"\(rows, features\)"):
        quantile_edges(np.zeros(5))
    with pytest.raises(DriftError, match="3 features, the edges 2"):
        bin_counts(np.zeros((4, 3)), np.zeros((9, 2)))


# -- PSI --------------------------------------------------------------------------------------


def reference_psi(expected: FloatArray, counts: FloatArray, floor: float = PSI_FLOOR) -> list[float]:
    """The textbook formula, one bin and one feature at a time."""
    result = []
    for feature in range(expected.shape[1]):
        total = counts[:, feature].sum()
        value = 0.0
        for b in range(expected.shape[0]):
            e = max(expected[b, feature], floor)
            a = max(counts[b, feature] / total, floor)
            value += (a - e) * math.log(a / e)
        result.append(value)
    return result


def test_psi_agrees_with_the_per_bin_formula() -> None:
    rng = np.random.default_rng(6)
    expected = rng.dirichlet(np.ones(10), size=8).T  # (bins, features)
    expected[3, 2] = 0.0  # an empty baseline bin
    expected[:, 2] /= expected[:, 2].sum()
    counts = rng.integers(0, 50, size=(10, 8)).astype(np.float64)
    counts[5, 4] = 0.0  # an empty window bin
    assert population_stability_index(expected, counts) == pytest.approx(reference_psi(expected, counts))


def test_psi_is_zero_for_the_same_distribution_and_finite_for_empty_bins() -> None:
    expected = np.array([[0.5, 0.0], [0.5, 1.0], [0.0, 0.0]])
    assert population_stability_index(expected, expected * 200).tolist() == [0.0, 0.0]
    disjoint = population_stability_index(expected, np.array([[0, 0], [0, 0], [10, 10]]))
    assert np.isfinite(disjoint).all() and (disjoint > 5).all()


def test_psi_grows_with_the_shift_and_passes_the_usual_bars() -> None:
    rng = np.random.default_rng(7)
    baseline = rng.normal(size=(20_000, 1))
    edges = quantile_edges(baseline)
    expected = bin_counts(baseline, edges) / 20_000
    scores = [
        float(population_stability_index(expected, bin_counts(rng.normal(shift, 1, (2000, 1)), edges))[0])
        for shift in (0.0, 0.25, 0.5, 1.0)
    ]
    assert scores == sorted(scores)
    assert scores[0] < 0.02 and scores[-1] > 0.25


def test_psi_refuses_mismatched_or_empty_input() -> None:
    with pytest.raises(DriftError, match="must be the same"):
        population_stability_index(np.ones((3, 2)) / 3, np.ones((4, 2)))
    with pytest.raises(DriftError, match="feature 1 are all zero"):
        population_stability_index(np.ones((2, 2)) / 2, np.array([[1, 0], [1, 0]]))


# -- KS ---------------------------------------------------------------------------------------


def scipy_ks(reference: FloatArray, sample: FloatArray) -> list[float]:
    """scipy's D per column; only the statistic is wanted, so its p-value's numerical
    warnings on tiny samples are of no concern here."""
    stats = pytest.importorskip("scipy.stats")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return [
            float(stats.ks_2samp(reference[:, j], sample[:, j], method="asymp").statistic)
            for j in range(reference.shape[1])
        ]


@pytest.mark.parametrize(
    ("reference", "sample"),
    [
        pytest.param((2048, 6), (500, 6), id="continuous"),
        pytest.param((300, 4), (301, 4), id="nearly-equal-sizes"),
        pytest.param((1, 2), (7, 2), id="one-row"),
    ],
)
def test_ks_agrees_with_scipy_on_continuous_data(reference: tuple[int, int], sample: tuple[int, int]) -> None:
    rng = np.random.default_rng(8)
    ref = np.sort(rng.normal(size=reference), axis=0)
    window = rng.normal(0.3, 1.2, size=sample)
    assert ks_statistic(ref, window) == pytest.approx(scipy_ks(ref, window), abs=1e-12)


def test_ks_agrees_with_scipy_with_many_ties() -> None:
    rng = np.random.default_rng(9)
    ref = np.sort(rng.integers(0, 4, size=(2048, 5)).astype(np.float64), axis=0)
    window = rng.integers(0, 5, size=(500, 5)).astype(np.float64)
    window[:, 0] = 2.0  # a constant window column
    window[:, 1] = ref[:500, 1]  # a column sharing values with the reference
    assert ks_statistic(ref, window) == pytest.approx(scipy_ks(ref, window), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=40),
    st.lists(st.integers(-3, 3), min_size=1, max_size=40),
)
def test_ks_agrees_with_scipy_on_any_tied_samples(reference: list[int], sample: list[int]) -> None:
    ref = np.sort(np.array(reference, dtype=np.float64))[:, None]
    window = np.array(sample, dtype=np.float64)[:, None]
    assert ks_statistic(ref, window) == pytest.approx(scipy_ks(ref, window), abs=1e-12)


def test_ks_bounds() -> None:
    same = np.arange(10.0)[:, None]
    assert ks_statistic(same, same[::-1]).tolist() == [0.0]
    assert ks_statistic(same, same + 100).tolist() == [1.0]
    assert ks_statistic(np.full((5, 1), 3.0), np.full((8, 1), 3.0)).tolist() == [0.0]


def test_ks_refuses_mismatched_input() -> None:
    with pytest.raises(DriftError, match="reference has 2 features, the sample 3") as caught:
        ks_statistic(np.zeros((4, 2)), np.zeros((4, 3)))
    assert isinstance(caught.value, CadMetricsError) and isinstance(caught.value, ValueError)
    with pytest.raises(DriftError, match="at least one row on each side"):
        ks_statistic(np.zeros((0, 2)), np.zeros((4, 2)))
