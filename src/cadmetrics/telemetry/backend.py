"""What a telemetry backend provides: one metric object per declared metric, and from it one
series object per admitted label set.

The facade validates labels once per label set and then keeps the series object, so a backend
only ever sees label values the contract admits, already in the contract's label order.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cadmetrics.contract.model import MetricSpec


class Series(Protocol):
    """One time series. Counters use ``inc``, gauges ``set`` and ``inc`` (negative to
    decrease), histograms ``observe``."""

    def inc(self, amount: float = 1.0) -> None: ...

    def set(self, value: float) -> None: ...

    def observe(self, value: float) -> None: ...


class BackendMetric(Protocol):
    def series(self, values: tuple[str, ...]) -> Series:
        """The series for label ``values`` (in the spec's label order; empty when unlabelled)."""
        ...


@runtime_checkable
class Backend(Protocol):
    """A place metrics go: prometheus_client, the OpenTelemetry SDK, or a host's own."""

    name: str

    def bind(self, spec: MetricSpec) -> BackendMetric:
        """Create (register) the backend's instrument for ``spec``; called once per metric."""
        ...


class NoopSeries:
    """Accepts everything and keeps nothing: strict mode without backends still validates."""

    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


NOOP_SERIES = NoopSeries()
