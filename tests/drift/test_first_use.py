"""What a new user tries first: reference rows instead of a Baseline, and a plain yes or no
for whether a window drifted."""

from __future__ import annotations

import numpy as np
import pytest

from cadmetrics import DriftMonitor
from cadmetrics.errors import DriftError
from cadmetrics.features.layout import LAYOUTS


def test_reference_rows_are_a_baseline_and_a_window_says_whether_it_drifted() -> None:
    layout = LAYOUTS["v1"]
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(2000, layout.dimension))
    monitor = DriftMonitor(reference, layout=layout, window=200)
    (calm,) = monitor.observe(rng.normal(size=(200, layout.dimension)))
    (moved,) = monitor.observe(rng.normal(loc=3.0, size=(200, layout.dimension)))
    assert not calm.drifted()
    assert calm.drifted_groups() == ()
    assert moved.drifted()
    assert set(moved.drifted_groups()) == set(moved.groups)
    assert moved.drifted_groups(threshold=1e9) == ()
    assert moved.drifted(statistic="ks", threshold=0.5)
    unnamed = DriftMonitor(reference[:, :3], window=100)  # no layout: f0, f1, f2 in one group
    assert unnamed.groups == ("all",)


def test_a_layout_that_disagrees_with_a_baseline_is_refused() -> None:
    rows = np.random.default_rng(1).normal(size=(100, LAYOUTS["v1"].dimension))
    baseline = DriftMonitor(rows, layout=LAYOUTS["v1"]).baseline
    with pytest.raises(DriftError, match="this Baseline has other features"):
        DriftMonitor(baseline, layout=LAYOUTS["v2"])
