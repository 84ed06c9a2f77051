"""``DriftMonitor``: a stream of feature vectors compared with a baseline, window by window.

Memory is fixed when the monitor is built, whatever the stream's length: the window is a
preallocated ring of ``window`` rows, and the score history a ring of ``history`` windows per
group and statistic. Nothing grows with the rows seen.

Per window, each feature gets a PSI and a KS statistic against the baseline; a group's score
is the largest of its features' (drift in one feature is drift of the group: an average
would dilute it among the group's steady features, more so in large groups). There is no
extra "all" group: the stream's overall drift is the largest group score, which dashboards
get with ``max`` over the ``feature_group`` label without spending a label value on it.

A group is flagged anomalous in a window when its PSI or KS score lies more than
``z_threshold`` standard deviations from its previous windows' scores (at least
``min_history`` of them, at most ``history``). The standard deviation used is never below
``min_sigma`` (default 0.02), which makes ``z_threshold * min_sigma`` (0.06 at the defaults)
the smallest change of score that can count as an anomaly: below the 0.1 at which a PSI
starts to mean a real change, above the window-to-window jitter of PSI and KS scores for
windows of a few hundred rows (a standard deviation of about 0.01 at 500 rows). A perfectly
flat series (a group of constant features scores exactly 0 every window) is thus flagged when
its score moves by more than that, never at the first rounding difference. Smaller windows
have noisier scores; their history's own standard deviation then exceeds the floor and sets
the bar. Every score joins the history, flagged or not, so lasting drift becomes the new
normal for the z-score; the PSI and KS scores themselves keep showing it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.drift.baseline import Baseline
from cadmetrics.drift.statistics import (
    FloatArray,
    bin_counts,
    first_non_finite,
    ks_statistic,
    population_stability_index,
)
from cadmetrics.errors import DriftError
from cadmetrics.features.layout import FeatureLayout
from cadmetrics.telemetry.backend import Series
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.health import Check, Status
from cadmetrics.telemetry.logs import component_logger, log_event

#: The statistics scored per window, in the order of the monitor's arrays; also the values of
#: the ``statistic`` label.
STATISTICS = ("psi", "ks")

#: Default floor of the standard deviation in the z-score (see the module's docstring).
DEFAULT_MIN_SIGMA = 0.02
#: The score above which a window counts as drifted: PSI's usual line for a significant shift.
DEFAULT_THRESHOLD = 0.2

SCORE_METRIC = "cadmetrics_drift_score"
ANOMALIES_METRIC = "cadmetrics_drift_anomalies_total"
AGE_METRIC = "cadmetrics_drift_baseline_age_seconds"
STALE_METRIC = "cadmetrics_drift_baseline_stale"


def _mapping(value: Mapping[str, float]) -> Mapping[str, float]:
    return dict(value)


_LOG = component_logger("drift")


@attrs.frozen(eq=False)
class DriftReport:
    """One window's drift: per feature (``psi``, ``ks``, in the order of ``names``), per group
    (``group_psi``, ``group_ks``: the largest of the group's features), the z-scores of the group
    scores against their history (NaN while the history is too short), and the groups
    ``anomalies`` flagged this window.

    ``end`` is the number of rows the monitor had seen when the window closed (the window is
    rows ``end - window`` to ``end - 1`` of the stream); ``baseline_age`` is in seconds.
    """

    end: int
    window: int
    names: tuple[str, ...]
    psi: FloatArray
    ks: FloatArray
    group_psi: Mapping[str, float] = attrs.field(converter=_mapping)
    group_ks: Mapping[str, float] = attrs.field(converter=_mapping)
    z_psi: Mapping[str, float] = attrs.field(converter=_mapping)
    z_ks: Mapping[str, float] = attrs.field(converter=_mapping)
    anomalies: tuple[str, ...]
    baseline_age: float
    stale: bool

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.group_psi)

    def score(self, group: str, statistic: str = "psi") -> float:
        """The score of ``group`` for ``statistic`` (``psi`` or ``ks``)."""
        scores = self.group_psi if statistic == "psi" else self.group_ks if statistic == "ks" else None
        if scores is None:
            raise DriftError(f"unknown drift statistic {statistic!r}; use one of {', '.join(STATISTICS)}")
        if group not in scores:
            raise DriftError(f"no feature group {group!r} in this report; groups: {', '.join(scores)}")
        return scores[group]

    def drifted_groups(self, threshold: float = DEFAULT_THRESHOLD, statistic: str = "psi") -> tuple[str, ...]:
        """The feature groups whose score for ``statistic`` is above ``threshold`` in this
        window (PSI above 0.2 is the usual reading of a significant shift)."""
        return tuple(group for group in self.groups if self.score(group, statistic) > threshold)

    def drifted(self, threshold: float = DEFAULT_THRESHOLD, statistic: str = "psi") -> bool:
        """Whether this window drifted: some group's score above ``threshold``."""
        return bool(self.drifted_groups(threshold, statistic))

    def feature_scores(self, statistic: str = "psi") -> dict[str, float]:
        """Feature name to score for ``statistic``, for printing or JSON."""
        values = self.psi if statistic == "psi" else self.ks if statistic == "ks" else None
        if values is None:
            raise DriftError(f"unknown drift statistic {statistic!r}; use one of {', '.join(STATISTICS)}")
        return {name: float(value) for name, value in zip(self.names, values, strict=True)}

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types only (NaN z-scores become null)."""

        def number(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "end": self.end,
            "window": self.window,
            "groups": {
                group: {
                    "psi": self.group_psi[group],
                    "ks": self.group_ks[group],
                    "z_psi": number(self.z_psi[group]),
                    "z_ks": number(self.z_ks[group]),
                    "anomaly": group in self.anomalies,
                }
                for group in self.groups
            },
            "features": {"psi": self.feature_scores("psi"), "ks": self.feature_scores("ks")},
            "anomalies": list(self.anomalies),
            "baseline_age_seconds": self.baseline_age,
            "stale": self.stale,
        }


class DriftMonitor:
    """Drift of a stream of feature vectors against ``baseline``, over a sliding window.

    ``baseline`` is a :class:`Baseline` (made once, saved, with when and from what), or the
    reference rows themselves (a ``(rows, features)`` array, named by ``layout`` when given).

    ``window`` rows are compared at a time, every ``step`` rows (default ``window``: windows
    that do not overlap). ``max_age`` (seconds; None: never) makes the baseline stale past that
    age. ``z_threshold``, ``history``, ``min_history`` and ``min_sigma`` set the anomaly rule
    (see the module's docstring). ``clock`` gives the wall-clock time in epoch seconds, which is
    what a baseline's ``created_at`` is measured in.
    """

    def __init__(
        self,
        baseline: Baseline | npt.ArrayLike,
        *,
        layout: FeatureLayout | None = None,
        telemetry: Telemetry | None = None,
        window: int = 500,
        step: int | None = None,
        max_age: float | None = None,
        z_threshold: float = 3.0,
        history: int = 64,
        min_history: int = 8,
        min_sigma: float = DEFAULT_MIN_SIGMA,
        clock: Callable[[], float] = time.time,
    ) -> None:
        step = window if step is None else step
        _check_settings(
            window=window,
            step=step,
            max_age=max_age,
            z_threshold=z_threshold,
            history=history,
            min_history=min_history,
            min_sigma=min_sigma,
        )
        if not isinstance(baseline, Baseline):  # the reference rows themselves
            baseline = Baseline.from_vectors(baseline, layout=layout, source="rows given to DriftMonitor")
        elif layout is not None and tuple(layout.names) != tuple(baseline.names):
            raise DriftError("layout= names the features of baseline rows; this Baseline has other features")
        self._baseline = baseline
        self.window = window
        self.step = step
        self.max_age = max_age
        self.z_threshold = z_threshold
        self.min_history = min_history
        self.min_sigma = min_sigma
        self._clock = clock
        self._lock = threading.Lock()

        self.groups: tuple[str, ...] = baseline.group_names
        groups = np.array(baseline.groups, dtype=object)
        self._members = np.array([groups == group for group in self.groups], dtype=bool)  # (G, F)

        self._buffer = np.zeros((window, baseline.dimension), dtype=np.float64)
        self._position = 0  # where the next row goes in the ring
        self._seen = 0  # rows observed since the monitor was built
        self._next_due = window  # rows seen at which the next window closes
        self._history = np.zeros((len(STATISTICS), len(self.groups), history), dtype=np.float64)
        self._kept = 0  # windows in the history, up to ``history``
        self._slot = 0  # where the next window's scores go in the history ring

        tel = telemetry if telemetry is not None else Telemetry()
        self._telemetry = tel
        _check_group_count(tel, self.groups)
        score = tel.histogram(SCORE_METRIC)
        anomalies = tel.counter(ANOMALIES_METRIC)
        # Series bound once per group: every window emits to the same few of them, and the
        # anomaly counters exist (at 0) from the start, so rates over them are defined.
        self._score_series: list[list[Series]] = [
            [score.labels(feature_group=group, statistic=statistic) for group in self.groups]
            for statistic in STATISTICS
        ]
        self._anomaly_series: list[Series] = [anomalies.labels(feature_group=group) for group in self.groups]
        self._age = tel.gauge(AGE_METRIC)
        self._stale = tel.gauge(STALE_METRIC)
        self.refresh()

    # -- the stream -----------------------------------------------------------------------

    def observe(self, vectors: npt.ArrayLike) -> list[DriftReport]:
        """Add one vector ``(features,)`` or a batch ``(rows, features)`` to the stream; the
        reports of the windows that closed on the way (usually none or one). A batch with a
        bad row is refused whole, and the monitor is left as it was."""
        with self._lock:
            rows = self._rows(vectors)
            reports = []
            start = 0
            while start < rows.shape[0]:
                take = min(rows.shape[0] - start, self._next_due - self._seen)
                self._write(rows[start : start + take])
                start += take
                if self._seen == self._next_due:
                    with self._telemetry.span("cadmetrics.drift.window") as span:
                        report = self._evaluate()
                        span.set(drifted=report.drifted(), anomalies=len(report.anomalies))
                    reports.append(report)
                    self._next_due += self.step
            self._refresh()
            return reports

    def refresh(self) -> float:
        """Set the baseline age and stale gauges now (also done on every ``observe``), for a
        stream that has paused; returns the age in seconds."""
        with self._lock:
            return self._refresh()

    # -- state ----------------------------------------------------------------------------

    @property
    def baseline(self) -> Baseline:
        """The baseline compared against; fixed for the monitor's life (its groups, bins and
        history are built from it): a new baseline means a new monitor."""
        return self._baseline

    @property
    def seen(self) -> int:
        """Rows observed since the monitor was built."""
        return self._seen

    @property
    def age(self) -> float:
        """The baseline's age in seconds, by the monitor's clock."""
        return self.baseline.age(self._clock())

    @property
    def stale(self) -> bool:
        """True when the baseline is older than ``max_age``: time to make a new one."""
        return self.max_age is not None and self.age > self.max_age

    def health(self) -> list[Check]:
        """The baseline's age against ``max_age``: warn once it is stale."""
        age = round(self.age, 3)
        if self.stale:
            output = f"the baseline is {age:.0f} s old, past its limit of {self.max_age:g} s: make a new one"
            return [
                Check("drift", "baseline_age", Status.WARN, output, observed_value=age, observed_unit="s")
            ]
        return [Check("drift", "baseline_age", Status.PASS, observed_value=age, observed_unit="s")]

    @property
    def memory_bytes(self) -> int:
        """Bytes held for the stream (window ring and score history): fixed at construction."""
        return int(self._buffer.nbytes + self._history.nbytes)

    def __repr__(self) -> str:
        return (
            f"DriftMonitor(features={self.baseline.dimension}, groups={len(self.groups)}, "
            f"window={self.window}, step={self.step}, seen={self._seen})"
        )

    # -- the steps ------------------------------------------------------------------------

    def _rows(self, vectors: npt.ArrayLike) -> FloatArray:
        try:
            rows = np.asarray(vectors, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DriftError(f"drift monitor: vectors are not numbers: {exc}") from None
        if rows.ndim == 1:
            rows = rows[None, :]
        width = self.baseline.dimension
        if rows.ndim != 2 or rows.shape[1] != width:
            raise DriftError(
                f"drift monitor: vectors of shape {np.shape(vectors)} do not fit the baseline's "
                f"{width} features (version {self.baseline.version or 'unknown'}); "
                f"give (features,) or (rows, features)"
            )
        found = first_non_finite(rows)
        if found is not None:
            row, column = found
            raise DriftError(
                f"drift monitor: row {row} of the batch (row {self._seen + row} of the stream), "
                f"feature {self.baseline.names[column]!r} is {rows[row, column]}; "
                "nothing of the batch was taken"
            )
        return rows

    def _write(self, rows: FloatArray) -> None:
        """Rows into the ring; only the last ``window`` of a long run can matter."""
        count = rows.shape[0]
        self._seen += count
        if count >= self.window:
            self._buffer[:] = rows[count - self.window :]
            self._position = 0
            return
        first = min(count, self.window - self._position)
        self._buffer[self._position : self._position + first] = rows[:first]
        self._buffer[: count - first] = rows[first:]
        self._position = (self._position + count) % self.window

    def _evaluate(self) -> DriftReport:
        baseline = self.baseline
        psi = population_stability_index(baseline.proportions, bin_counts(self._buffer, baseline.edges))
        ks = ks_statistic(baseline.reference, self._buffer)
        psi.setflags(write=False)  # the report is a value: its arrays are fixed with it
        ks.setflags(write=False)
        per_feature = np.stack([psi, ks])  # (statistics, F)
        scores = np.where(self._members[None, :, :], per_feature[:, None, :], -np.inf).max(axis=2)  # (S, G)
        z = self._z(scores)
        flagged = (np.abs(z) > self.z_threshold).any(axis=0)  # NaN compares False: no judgement yet
        self._remember(scores)

        for by_group, values in zip(self._score_series, scores, strict=True):
            for series, value in zip(by_group, values, strict=True):
                series.observe(float(value))
        anomalies = []
        for index in np.flatnonzero(flagged):
            self._anomaly_series[index].inc()
            anomalies.append(self.groups[index])
        if anomalies:
            log_event(
                _LOG,
                logging.WARNING,
                "drift_anomaly",
                f"drift anomaly in {', '.join(anomalies)} (window ending at vector {self._seen})",
                groups=anomalies,
                window_end=self._seen,
                group_psi={group: float(scores[0][self.groups.index(group)]) for group in anomalies},
            )

        now = self._clock()
        return DriftReport(
            end=self._seen,
            window=self.window,
            names=baseline.names,
            psi=psi,
            ks=ks,
            group_psi=dict(zip(self.groups, scores[0].tolist(), strict=True)),
            group_ks=dict(zip(self.groups, scores[1].tolist(), strict=True)),
            z_psi=dict(zip(self.groups, z[0].tolist(), strict=True)),
            z_ks=dict(zip(self.groups, z[1].tolist(), strict=True)),
            anomalies=tuple(anomalies),
            baseline_age=baseline.age(now),
            stale=self._is_stale(now),
        )

    def _z(self, scores: FloatArray) -> FloatArray:
        """How many (floored) standard deviations each score lies from its history's mean."""
        if self._kept < self.min_history:
            return np.full_like(scores, np.nan)
        past = self._history[:, :, : self._kept]
        sigma = np.maximum(past.std(axis=2, ddof=1), self.min_sigma)
        z: FloatArray = (scores - past.mean(axis=2)) / sigma
        return z

    def _remember(self, scores: FloatArray) -> None:
        self._history[:, :, self._slot] = scores
        self._slot = (self._slot + 1) % self._history.shape[2]
        self._kept = min(self._kept + 1, self._history.shape[2])

    def _is_stale(self, now: float) -> bool:
        return self.max_age is not None and self.baseline.age(now) > self.max_age

    def _refresh(self) -> float:
        now = self._clock()
        age = self.baseline.age(now)
        self._age.set(age)
        self._stale.set(1.0 if self._is_stale(now) else 0.0)
        return age


def _check_settings(
    *,
    window: int,
    step: int,
    max_age: float | None,
    z_threshold: float,
    history: int,
    min_history: int,
    min_sigma: float,
) -> None:
    problems = []
    if window < 2:
        problems.append(f"window must be at least 2 rows, not {window}")
    if step < 1:
        problems.append(f"step must be at least 1 row, not {step}")
    if max_age is not None and not max_age > 0:
        problems.append(f"max_age must be positive seconds or None, not {max_age}")
    if not z_threshold > 0:
        problems.append(f"z_threshold must be positive, not {z_threshold}")
    if min_history < 2:
        problems.append(
            f"min_history must be at least 2 windows (for a standard deviation), not {min_history}"
        )
    if history < min_history:
        problems.append(f"history ({history}) must be at least min_history ({min_history})")
    if not min_sigma > 0:
        problems.append(f"min_sigma must be positive, not {min_sigma}")
    if problems:
        raise DriftError("drift monitor settings: " + "; ".join(problems))


def _check_group_count(telemetry: Telemetry, groups: tuple[str, ...]) -> None:
    """More groups than the contract's ``feature_group`` label admits would send the excess
    to the overflow value, where no one could tell them apart: refuse them up front."""
    spec = telemetry.contract.get(SCORE_METRIC)
    label = spec.label("feature_group") if spec is not None else None
    cap = label.max_values if label is not None else None
    if cap is not None and len(groups) > cap:
        raise DriftError(
            f"drift monitor: the baseline has {len(groups)} feature groups, the contract's "
            f"feature_group label admits {cap}; merge groups"
        )
