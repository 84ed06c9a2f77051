"""DriftMonitor on seeded streams: quiet while the stream keeps to the baseline, loud in the
right group when it moves; windows and history of fixed size whatever the stream's length; the
baseline's true age after a restart; every drift metric of the contract emitted."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics import Telemetry
from cadmetrics.contract.model import Contract
from cadmetrics.drift import Baseline, DriftMonitor, DriftReport
from cadmetrics.drift.statistics import bin_counts, ks_statistic, population_stability_index
from cadmetrics.errors import DriftError
from cadmetrics.features.layout import LAYOUTS
from cadmetrics.pytest_plugin import MetricsReader

FloatArray = npt.NDArray[np.float64]
V4 = LAYOUTS["v4"]  # 49 features in the groups size, shape, d2 and surface
MADE_AT = 1_700_000_000.0
WINDOW = 500


class Clock:
    """Wall-clock time that moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def parts(
    rng: np.random.Generator,
    rows: int,
    shift: dict[str, float] | None = None,
    scale: dict[str, float] | None = None,
) -> FloatArray:
    """v4-like vectors: counts, a 0/1 flag, a small-integer feature, a volume that is often 0,
    continuous shares. Each feature is a monotone function of a standard normal draw; ``shift``
    moves a feature's draw by that many standard deviations, ``scale`` multiplies it."""
    latent = rng.standard_normal((rows, V4.dimension))
    for name, amount in (shift or {}).items():
        latent[:, V4.index(name)] += amount
    for name, factor in (scale or {}).items():
        latent[:, V4.index(name)] *= factor
    features = 0.5 + 0.1 * latent
    for name in ("vertex_count", "face_count", "surface_count"):
        features[:, V4.index(name)] = np.round(np.exp(3 + 0.8 * latent[:, V4.index(name)]))
    features[:, V4.index("watertight")] = latent[:, V4.index("watertight")] < 0.84
    euler = np.digitize(latent[:, V4.index("euler_characteristic")], [-1.5, -0.5, 1.5])
    features[:, V4.index("euler_characteristic")] = euler * 2.0 - 2.0
    volume = latent[:, V4.index("volume")]
    features[:, V4.index("volume")] = np.where(volume < -0.84, 0.0, np.exp(volume))
    return features


@pytest.fixture(scope="module")
def v4_baseline() -> Baseline:
    rng = np.random.default_rng(2024)
    return Baseline.from_vectors(parts(rng, 20_000), layout=V4, source="seeded parts", created_at=MADE_AT)


def monitor(
    baseline: Baseline,
    telemetry: Telemetry | None = None,
    *,
    clock: Clock | None = None,
    max_age: float | None = None,
) -> DriftMonitor:
    """A monitor of ``WINDOW`` rows, on a clock stopped a minute after the baseline was made."""
    return DriftMonitor(
        baseline,
        telemetry=telemetry,
        window=WINDOW,
        max_age=max_age,
        clock=clock if clock is not None else Clock(MADE_AT + 60),
    )


SHAPE_SHIFT = {"sphericity": 1.0, "inertia_ratio_minor": 1.0}
OTHER_GROUPS = ("size", "d2", "surface")

# -- detection --------------------------------------------------------------------------------


def test_a_stable_stream_stays_quiet(v4_baseline: Baseline, telemetry: Telemetry) -> None:
    reports = monitor(v4_baseline, telemetry).observe(parts(np.random.default_rng(1), 50 * WINDOW))
    assert [report.end for report in reports] == [WINDOW * (i + 1) for i in range(50)]
    assert all(report.groups == ("size", "shape", "d2", "surface") for report in reports)
    assert max(max(report.group_psi.values()) for report in reports) < 0.1
    assert max(max(report.group_ks.values()) for report in reports) < 0.15
    assert [report for report in reports if report.anomalies] == []


@pytest.mark.parametrize(
    ("change", "least_ks"),
    [
        pytest.param({"shift": SHAPE_SHIFT}, 0.3, id="mean-shift-of-one-sigma"),
        pytest.param({"scale": {"sphericity": 2.5, "inertia_ratio_minor": 2.5}}, 0.15, id="scale-change"),
    ],
)
def test_a_change_in_one_group_is_found_in_that_group_only(
    v4_baseline: Baseline, telemetry: Telemetry, change: dict[str, dict[str, float]], least_ks: float
) -> None:
    rng = np.random.default_rng(2)
    watcher = monitor(v4_baseline, telemetry)
    stable = watcher.observe(parts(rng, 20 * WINDOW))
    assert not any(report.anomalies for report in stable)
    changed = watcher.observe(parts(rng, 5 * WINDOW, **change))
    first = changed[0]
    assert first.group_psi["shape"] > 0.2 and first.group_ks["shape"] > least_ks
    assert all(first.group_psi[group] < 0.1 for group in OTHER_GROUPS)
    assert first.anomalies == ("shape",)  # the change starts after a stable period
    assert first.z_psi["shape"] > 3 and all(abs(first.z_psi[group]) <= 3 for group in OTHER_GROUPS)
    psi = first.feature_scores("psi")
    assert psi["sphericity"] > 0.2 and psi["inertia_ratio_minor"] > 0.2 and psi["watertight"] < 0.1
    assert all(report.group_psi["shape"] > 0.2 for report in changed)  # the scores keep showing it


def test_detection_metrics_count_every_window_and_each_anomaly_once(
    v4_baseline: Baseline, telemetry: Telemetry, metrics: MetricsReader
) -> None:
    rng = np.random.default_rng(3)
    watcher = monitor(v4_baseline, telemetry)
    for group in v4_baseline.group_names:  # the anomaly series exist from the start, at 0
        assert metrics.value("cadmetrics_drift_anomalies_total", feature_group=group) == 0
    watcher.observe(parts(rng, 12 * WINDOW))
    with metrics.delta("cadmetrics_drift_anomalies_total", feature_group="shape") as shape:
        report = watcher.observe(parts(rng, WINDOW, shift=SHAPE_SHIFT))[0]
    assert shape.value == 1 and report.anomalies == ("shape",)
    assert report.z_ks["shape"] > 3  # flagged on both statistics, counted once
    for group in OTHER_GROUPS:
        assert metrics.value("cadmetrics_drift_anomalies_total", feature_group=group) == 0
    for group in v4_baseline.group_names:
        for statistic in ("psi", "ks"):
            count = metrics.value("cadmetrics_drift_score_count", feature_group=group, statistic=statistic)
            assert count == 13
    observed_sum = metrics.value("cadmetrics_drift_score_sum", feature_group="shape", statistic="psi")
    assert observed_sum > report.group_psi["shape"] > 0.2
    under_a_tenth = metrics.value(
        "cadmetrics_drift_score_bucket", feature_group="size", statistic="psi", le="0.1"
    )
    assert under_a_tenth == 13  # quantiles on a dashboard: every stable score in the low buckets


def test_a_flat_series_is_flagged_only_for_a_material_change(telemetry: Telemetry) -> None:
    rng = np.random.default_rng(4)

    def rows(changed: int) -> FloatArray:
        constant = np.ones(200)
        constant[:changed] = 2.0
        return np.column_stack([constant, rng.normal(size=200)])

    baseline = Baseline.from_vectors(
        rows(0), names=["constant", "noise"], groups=["flat", "noisy"], source="constant and noise"
    )
    watcher = DriftMonitor(baseline, telemetry=telemetry, window=200)
    stable = [watcher.observe(rows(0))[0] for _ in range(10)]
    assert all(report.group_ks["flat"] == 0.0 and report.group_psi["flat"] == 0.0 for report in stable)
    assert math.isnan(stable[7].z_ks["flat"]) and stable[8].z_ks["flat"] == 0.0  # judged from the 9th window
    slight = watcher.observe(rows(4))[0]  # 2% of the rows move: KS 0.02, under 3 x min_sigma
    assert slight.group_ks["flat"] == pytest.approx(0.02) and slight.anomalies == ()
    assert slight.z_ks["flat"] == pytest.approx(1.0)
    material = watcher.observe(rows(20))[0]  # 10%
    assert material.group_ks["flat"] == pytest.approx(0.1) and material.anomalies == ("flat",)


# -- windows ----------------------------------------------------------------------------------


def small_baseline(features: int = 3, seed: int = 5) -> Baseline:
    rng = np.random.default_rng(seed)
    return Baseline.from_vectors(
        rng.normal(size=(1000, features)),
        groups=["a"] * (features - 1) + ["b"],
        source="small",
        sample_size=300,
    )


def test_windows_close_every_step_rows_once_full() -> None:
    rng = np.random.default_rng(6)
    sliding = DriftMonitor(small_baseline(), window=100, step=25)
    assert [report.end for report in sliding.observe(rng.normal(size=(210, 3)))] == [100, 125, 150, 175, 200]
    tumbling = DriftMonitor(small_baseline(), window=100)
    assert [report.end for report in tumbling.observe(rng.normal(size=(350, 3)))] == [100, 200, 300]
    sparse = DriftMonitor(small_baseline(), window=50, step=120)  # a step longer than the window samples
    assert [report.end for report in sparse.observe(rng.normal(size=(400, 3)))] == [50, 170, 290]
    assert sparse.seen == 400


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=30), st.integers(2, 40), st.integers(1, 50))
def test_any_batching_gives_the_reports_of_the_windows_it_closes(
    batches: list[int], window: int, step: int
) -> None:
    baseline = small_baseline()
    rows = np.random.default_rng(sum(batches)).normal(0.2, 1.1, size=(sum(batches), 3))
    watcher = DriftMonitor(baseline, window=window, step=step, min_history=2, history=4)
    reports: list[DriftReport] = []
    start = 0
    for size in batches:
        batch = rows[start : start + size]
        reports += watcher.observe(batch[0] if size == 1 else batch)  # single vectors too
        start += size
    assert [report.end for report in reports] == list(range(window, len(rows) + 1, step))
    for report in reports:
        expected = rows[report.end - window : report.end]
        psi = population_stability_index(baseline.proportions, bin_counts(expected, baseline.edges))
        assert np.allclose(report.psi, psi, rtol=0, atol=1e-12)
        assert np.array_equal(report.ks, ks_statistic(baseline.reference, expected))
        assert report.group_psi == {"a": max(psi[:2]), "b": psi[2]}


def test_memory_stays_fixed_whatever_the_stream_length() -> None:
    watcher = DriftMonitor(small_baseline(4), window=1000, history=32)
    held = watcher.memory_bytes
    assert held == (1000 * 4 + 2 * 2 * 32) * 8  # the window ring and the score history, preallocated
    rng = np.random.default_rng(7)
    windows = 0
    for _ in range(20):
        windows += len(watcher.observe(rng.normal(size=(10_000, 4))))
    assert watcher.seen == 200_000 and windows == 200
    assert watcher.memory_bytes == held
    assert watcher._buffer.shape == (1000, 4) and watcher._history.shape == (2, 2, 32)


def test_concurrent_streams_lose_no_rows() -> None:
    watcher = DriftMonitor(small_baseline(), window=100)
    found: list[int] = []

    def feed(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(50):
            found.extend(report.end for report in watcher.observe(rng.normal(size=(37, 3))))

    threads = [threading.Thread(target=feed, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert watcher.seen == 4 * 50 * 37
    assert sorted(found) == list(range(100, watcher.seen + 1, 100))


# -- the baseline's age -----------------------------------------------------------------------


def test_age_and_staleness_follow_the_clock(
    v4_baseline: Baseline, telemetry: Telemetry, metrics: MetricsReader
) -> None:
    clock = Clock(MADE_AT + 50)
    watcher = monitor(v4_baseline, telemetry, clock=clock, max_age=100.0)
    assert metrics.value("cadmetrics_drift_baseline_age_seconds") == 50.0
    assert metrics.value("cadmetrics_drift_baseline_stale") == 0.0
    assert not watcher.stale and watcher.age == 50.0
    clock.now += 100  # past max_age, with no rows arriving
    assert watcher.refresh() == 150.0
    assert metrics.value("cadmetrics_drift_baseline_age_seconds") == 150.0
    assert metrics.value("cadmetrics_drift_baseline_stale") == 1.0
    clock.now += 10
    report = watcher.observe(parts(np.random.default_rng(8), WINDOW))[0]  # every observe refreshes
    assert report.stale and report.baseline_age == 160.0 and watcher.stale
    assert metrics.value("cadmetrics_drift_baseline_age_seconds") == 160.0


def test_the_age_after_a_restart_is_the_baselines_true_age(
    v4_baseline: Baseline, tmp_path: Path, telemetry: Telemetry, metrics: MetricsReader
) -> None:
    path = v4_baseline.save(tmp_path / "baseline.npz")
    restarted = Baseline.load(path)  # a new process, a day later
    watcher = DriftMonitor(restarted, telemetry=telemetry, clock=Clock(MADE_AT + 86_400), max_age=3600)
    assert watcher.age == 86_400.0 and watcher.stale
    assert metrics.value("cadmetrics_drift_baseline_age_seconds") == 86_400.0
    assert metrics.value("cadmetrics_drift_baseline_stale") == 1.0


def test_without_max_age_a_baseline_never_goes_stale() -> None:
    watcher = DriftMonitor(small_baseline(), clock=Clock(1e12))
    assert not watcher.stale and watcher.age > 0


# -- the contract -----------------------------------------------------------------------------


def test_every_drift_metric_of_the_contract_is_emitted(
    v4_baseline: Baseline, telemetry: Telemetry, metrics_contract: Contract
) -> None:
    rng = np.random.default_rng(9)
    watcher = monitor(v4_baseline, telemetry)
    watcher.observe(parts(rng, 10 * WINDOW))
    assert watcher.observe(parts(rng, WINDOW, shift=SHAPE_SHIFT))[0].anomalies == ("shape",)
    declared = {spec.name for spec in metrics_contract if spec.component == "drift"}
    assert declared == {
        "cadmetrics_drift_score",
        "cadmetrics_drift_anomalies_total",
        "cadmetrics_drift_baseline_age_seconds",
        "cadmetrics_drift_baseline_stale",
    }
    assert declared <= set(telemetry.emitted())


def test_more_groups_than_the_label_admits_are_refused() -> None:
    baseline = Baseline.from_vectors(
        np.random.default_rng(10).normal(size=(10, 65)), groups=[f"g{i}" for i in range(65)], source="wide"
    )
    with pytest.raises(DriftError, match="65 feature groups, the contract's feature_group label admits 64"):
        DriftMonitor(baseline)


# -- reports and refusals ---------------------------------------------------------------------


def test_a_report_reads_by_group_and_statistic_and_serialises(v4_baseline: Baseline) -> None:
    report = monitor(v4_baseline).observe(parts(np.random.default_rng(11), WINDOW))[0]
    in_d2 = np.array(V4.groups) == "d2"
    assert in_d2.sum() == 33
    assert report.score("d2", "ks") == report.group_ks["d2"] == report.ks[in_d2].max()
    assert report.score("size") == report.group_psi["size"]
    with pytest.raises(DriftError, match="no feature group 'nope'"):
        report.score("nope")
    with pytest.raises(DriftError, match="unknown drift statistic 'chi2'"):
        report.score("size", "chi2")
    with pytest.raises(DriftError, match="unknown drift statistic 'chi2'"):
        report.feature_scores("chi2")
    document = json.loads(json.dumps(report.to_json_dict(), allow_nan=False))
    assert document["end"] == WINDOW and document["groups"]["shape"]["z_psi"] is None  # no history yet
    assert set(document["features"]["psi"]) == set(V4.names)


def test_rows_that_do_not_fit_are_refused_and_nothing_is_taken(v4_baseline: Baseline) -> None:
    watcher = monitor(v4_baseline)
    with pytest.raises(
        DriftError, match=r"shape \(3,\) do not fit the baseline's 49 features \(version v4\)"
    ):
        watcher.observe([1.0, 2.0, 3.0])
    batch = parts(np.random.default_rng(12), 10)
    batch[7, V4.index("sphericity")] = np.nan
    with pytest.raises(DriftError, match=r"row 7 of the batch .*feature 'sphericity' is nan"):
        watcher.observe(batch)
    with pytest.raises(DriftError, match="not numbers"):
        watcher.observe([["x"] * 49])
    assert watcher.seen == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda b: DriftMonitor(b, window=1), "window must be at least 2", id="window"),
        pytest.param(lambda b: DriftMonitor(b, step=0), "step must be at least 1", id="step"),
        pytest.param(lambda b: DriftMonitor(b, max_age=0), "max_age must be positive", id="max_age"),
        pytest.param(lambda b: DriftMonitor(b, z_threshold=-1), "z_threshold must be positive", id="z"),
        pytest.param(
            lambda b: DriftMonitor(b, min_history=1), "min_history must be at least 2", id="min_history"
        ),
        pytest.param(
            lambda b: DriftMonitor(b, history=4, min_history=8),
            r"history \(4\) must be at least min_history",
            id="history",
        ),
        pytest.param(lambda b: DriftMonitor(b, min_sigma=0), "min_sigma must be positive", id="min_sigma"),
    ],
)
def test_settings_that_cannot_work_are_refused(
    make: Callable[[Baseline], DriftMonitor], message: str
) -> None:
    with pytest.raises(DriftError, match=message):
        make(small_baseline())
