"""The OpenTelemetry SDK backend: instruments named so that the Prometheus exporter shows the
contract's names, with the contract's units and bucket boundaries.

Bucket boundaries are given twice on purpose: as the instrument's advisory (so a host's own
MeterProvider, configured elsewhere, still gets them) and as views in :func:`meter_provider`
(so older SDKs and readers that ignore advice agree too).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from cadmetrics.contract.model import Contract, MetricSpec, MetricType
from cadmetrics.contract.naming import otel_name, otel_unit
from cadmetrics.errors import TelemetryError
from cadmetrics.telemetry.backend import Series

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
except ImportError as exc:  # pragma: no cover - exercised by the nometrics environment
    raise TelemetryError(
        "the otel backend needs the OpenTelemetry SDK: pip install 'cadmetrics[otel]'"
    ) from exc

_SCOPE = "cadmetrics"

#: Metric names bound per provider, so that a second Telemetry on one provider is refused.
_BOUND: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _refuse(value: float) -> None:  # pragma: no cover - the facade never calls it
    raise TypeError("this operation does not apply to the instrument's type")


def _bind(emit: Any, attributes: dict[str, str]) -> Callable[[float], None]:
    """``emit(value, attributes)`` as a one-argument function. A plain closure passing the
    attributes positionally is the cheapest form: cheaper than a bound method (no ``self``
    lookups) and than ``functools.partial`` with a keyword (the SDK call slows down). The value
    defaults to 1, as ``Series.inc()`` promises: a counter series incremented bare counts one."""

    def bound(value: float = 1.0, emit: Any = emit, attributes: dict[str, str] = attributes) -> None:
        emit(value, attributes)

    return bound


class _CounterSeries:
    __slots__ = ("inc", "observe", "set")

    def __init__(self, instrument: Any, attributes: dict[str, str]) -> None:
        self.inc = _bind(instrument.add, attributes)
        self.set = self.observe = _refuse


class _HistogramSeries:
    __slots__ = ("inc", "observe", "set")

    def __init__(self, instrument: Any, attributes: dict[str, str]) -> None:
        self.observe = _bind(instrument.record, attributes)
        self.inc = self.set = _refuse


class _GaugeSeries:
    """OTel's synchronous gauge only sets; ``inc`` keeps the running value here, under a lock,
    so that concurrent increments are not lost and the last recorded value is the true one."""

    __slots__ = ("_attributes", "_lock", "_set", "_value")

    def __init__(self, instrument: Any, attributes: dict[str, str]) -> None:
        self._set = instrument.set
        self._attributes = attributes
        self._value = 0.0
        self._lock = threading.Lock()

    def set(self, value: float) -> None:
        with self._lock:
            self._value = value
            self._set(value, self._attributes)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value += amount
            self._set(self._value, self._attributes)

    def observe(self, value: float) -> None:  # pragma: no cover - the facade never calls it
        raise TypeError("a gauge cannot observe")


class OtelMetric:
    __slots__ = ("_instrument", "_names", "_series_type")

    def __init__(self, instrument: Any, names: tuple[str, ...], series_type: type[Any]) -> None:
        self._instrument = instrument
        self._names = names
        self._series_type = series_type

    def series(self, values: tuple[str, ...]) -> Series:
        attributes = dict(zip(self._names, values, strict=True))
        series: Series = self._series_type(self._instrument, attributes)
        return series


class OtelBackend:
    """Creates instruments on a meter of ``meter_provider`` (the global one if None)."""

    name = "otel"

    def __init__(self, meter_provider: otel_metrics.MeterProvider | None = None, version: str = "") -> None:
        provider = meter_provider or otel_metrics.get_meter_provider()
        self.meter = provider.get_meter(_SCOPE, version or None)
        try:
            self._bound = _BOUND.setdefault(provider, set())
        except TypeError:  # a provider that cannot be weakly referenced: no duplicate check
            self._bound = set()

    def bind(self, spec: MetricSpec) -> OtelMetric:
        # The SDK would hand a second Telemetry the same instruments, and each would keep its
        # own gauge values: refused, as prometheus_client refuses a second registration.
        if spec.name in self._bound:
            raise TelemetryError(
                f"{spec.name} is already bound on this MeterProvider: share one Telemetry per "
                "provider, or give each Telemetry its own MeterProvider"
            )
        self._bound.add(spec.name)
        name, unit, description = otel_name(spec), otel_unit(spec), spec.help
        if spec.type is MetricType.COUNTER:
            instrument: Any = self.meter.create_counter(name, unit, description)
            return OtelMetric(instrument, spec.label_names, _CounterSeries)
        if spec.type is MetricType.GAUGE:
            instrument = self.meter.create_gauge(name, unit, description)
            return OtelMetric(instrument, spec.label_names, _GaugeSeries)
        instrument = self.meter.create_histogram(
            name, unit, description, explicit_bucket_boundaries_advisory=list(spec.buckets or ())
        )
        return OtelMetric(instrument, spec.label_names, _HistogramSeries)


def contract_views(contract: Contract) -> list[View]:
    """One view per declared histogram, fixing its bucket boundaries to the contract's."""
    return [
        View(
            instrument_name=otel_name(spec),
            aggregation=ExplicitBucketHistogramAggregation(boundaries=list(spec.buckets or ())),
        )
        for spec in contract.emitted_here()
        if spec.type is MetricType.HISTOGRAM
    ]


def meter_provider(contract: Contract, readers: Sequence[MetricReader] = ()) -> MeterProvider:
    """An SDK MeterProvider with the contract's views, reading through ``readers``."""
    return MeterProvider(metric_readers=list(readers), views=contract_views(contract))


def prometheus_reader(registry: Any = None) -> MetricReader:
    """OpenTelemetry's Prometheus exporter, without the ``otel_scope_*`` labels, so that its
    output carries exactly the contract's label names. ``registry`` defaults to
    prometheus_client's default registry."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
    except ImportError as exc:
        raise TelemetryError(
            "the OpenTelemetry Prometheus exporter is missing: pip install 'cadmetrics[otel]'"
        ) from exc
    options: dict[str, Any] = {"scope_info_enabled": False}
    if registry is not None:
        options["registry"] = registry
    reader: MetricReader = PrometheusMetricReader(**options)
    return reader
