"""Drift monitoring: how far a stream of feature vectors has moved from a baseline.

:class:`Baseline` records the reference distribution (and when and from what it was made);
:class:`DriftMonitor` compares a sliding window of the stream with it, per feature and per
feature group, by population stability index and Kolmogorov-Smirnov statistic, flags
anomalous windows, and emits the contract's ``cadmetrics_drift_*`` metrics.
"""

from __future__ import annotations

from cadmetrics.drift.baseline import Baseline
from cadmetrics.drift.monitor import DriftMonitor, DriftReport
from cadmetrics.drift.persistence import load_baseline
from cadmetrics.drift.statistics import (
    PSI_FLOOR,
    bin_counts,
    bin_indices,
    ks_statistic,
    population_stability_index,
    quantile_edges,
)

__all__ = [
    "PSI_FLOOR",
    "Baseline",
    "DriftMonitor",
    "DriftReport",
    "bin_counts",
    "bin_indices",
    "ks_statistic",
    "load_baseline",
    "population_stability_index",
    "quantile_edges",
]
