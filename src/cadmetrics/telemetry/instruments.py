"""Bound instruments: what ``Telemetry.counter()``, ``.gauge()`` and ``.histogram()`` return.

The hot path is one dict lookup: the keyword labels, as given, form the key of a cache of
already-admitted label sets, whose value is the backend series (or a fan-out over several).
Only a label set seen for the first time goes through :class:`LabelAdmission`. Label sets
that overflowed are not cached, so every emission of them is counted as overflow, and the
cache stays bounded by the contract's cardinality limits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

from cadmetrics.contract.model import MetricSpec, MetricType
from cadmetrics.telemetry.backend import NOOP_SERIES, BackendMetric, Series
from cadmetrics.telemetry.labels import LabelAdmission


class _FanOut:
    """Several backends' series for one label set, emitted to in turn."""

    __slots__ = ("_series",)

    def __init__(self, series: Sequence[Series]) -> None:
        self._series = tuple(series)

    def inc(self, amount: float = 1.0) -> None:
        for series in self._series:
            series.inc(amount)

    def set(self, value: float) -> None:
        for series in self._series:
            series.set(value)

    def observe(self, value: float) -> None:
        for series in self._series:
            series.observe(value)


class Instrument:
    """An instrument bound to one declared metric and to the telemetry's backends."""

    __slots__ = ("_admission", "_by_values", "_cache", "_metrics", "spec")
    type: ClassVar[MetricType]

    def __init__(self, spec: MetricSpec, metrics: Sequence[BackendMetric], admission: LabelAdmission) -> None:
        self.spec = spec
        self._metrics = tuple(metrics)
        self._admission = admission
        self._cache: dict[tuple[tuple[str, object], ...], Series] = {}
        self._by_values: dict[tuple[str, ...], Series] = {}

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def used(self) -> bool:
        """True once a label set has been resolved (the first emission resolves it)."""
        return bool(self._by_values)

    def labels(self, **labels: object) -> Series:
        """The series for ``labels``, for callers that emit to one label set in a loop."""
        return self._series(labels)

    def _series(self, labels: dict[str, object]) -> Series:
        try:
            key = tuple(labels.items())
            series = self._cache.get(key)
        except TypeError:  # an unhashable label value: admit it (as str) without caching
            return self._resolve(labels, None)
        if series is None:
            series = self._resolve(labels, key)
        return series

    def _resolve(self, labels: dict[str, object], key: tuple[tuple[str, object], ...] | None) -> Series:
        values, admitted = self._admission.admit(labels)
        series = self._by_values.get(values)
        if series is None:
            if not self._metrics:
                series = NOOP_SERIES
            elif len(self._metrics) == 1:
                series = self._metrics[0].series(values)
            else:
                series = _FanOut([metric.series(values) for metric in self._metrics])
            series = self._by_values.setdefault(values, series)
        # only str values are cached: 1, 1.0 and True are equal dict keys but not equal labels
        if admitted and key is not None and all(type(value) is str for _, value in key):
            self._cache[key] = series
        return series


class Counter(Instrument):
    __slots__ = ()
    type = MetricType.COUNTER

    def inc(self, amount: float = 1.0, /, **labels: object) -> None:
        """Add ``amount`` (default 1, never negative) to the series of ``labels``."""
        if amount < 0:
            raise ValueError(f"{self.spec.name}: a counter only goes up, not by {amount}")
        # the cache lookup is written out in each emitting method: one call less per emission
        try:
            series = self._cache[tuple(labels.items())]
        except (KeyError, TypeError):
            series = self._series(labels)
        series.inc(amount)


class Gauge(Instrument):
    __slots__ = ()
    type = MetricType.GAUGE

    def set(self, value: float, /, **labels: object) -> None:
        try:
            series = self._cache[tuple(labels.items())]
        except (KeyError, TypeError):
            series = self._series(labels)
        series.set(value)

    def inc(self, amount: float = 1.0, /, **labels: object) -> None:
        self._series(labels).inc(amount)

    def dec(self, amount: float = 1.0, /, **labels: object) -> None:
        self._series(labels).inc(-amount)


class Histogram(Instrument):
    __slots__ = ()
    type = MetricType.HISTOGRAM

    def observe(self, value: float, /, **labels: object) -> None:
        try:
            series = self._cache[tuple(labels.items())]
        except (KeyError, TypeError):
            series = self._series(labels)
        series.observe(value)

    @contextmanager
    def time(self, **labels: object) -> Iterator[None]:
        """Observe the wall time of the ``with`` block, in seconds, even when it raises."""
        series = self._series(labels)
        start = time.perf_counter()
        try:
            yield
        finally:
            series.observe(time.perf_counter() - start)


def _ignore_overflow(metric: str, label: str) -> None:
    pass


class NoopCounter(Counter):
    """Production mode without backends: costs one empty call and checks nothing."""

    __slots__ = ()

    def __init__(self, spec: MetricSpec) -> None:
        super().__init__(spec, (), LabelAdmission(spec, False, _ignore_overflow))

    def inc(self, amount: float = 1.0, /, **labels: object) -> None:
        pass

    def labels(self, **labels: object) -> Series:
        return NOOP_SERIES


class NoopGauge(Gauge):
    __slots__ = ()

    def __init__(self, spec: MetricSpec) -> None:
        super().__init__(spec, (), LabelAdmission(spec, False, _ignore_overflow))

    def set(self, value: float, /, **labels: object) -> None:
        pass

    def inc(self, amount: float = 1.0, /, **labels: object) -> None:
        pass

    def dec(self, amount: float = 1.0, /, **labels: object) -> None:
        pass

    def labels(self, **labels: object) -> Series:
        return NOOP_SERIES


class NoopHistogram(Histogram):
    __slots__ = ()

    def __init__(self, spec: MetricSpec) -> None:
        super().__init__(spec, (), LabelAdmission(spec, False, _ignore_overflow))

    def observe(self, value: float, /, **labels: object) -> None:
        pass

    @contextmanager
    def time(self, **labels: object) -> Iterator[None]:
        yield

    def labels(self, **labels: object) -> Series:
        return NOOP_SERIES
