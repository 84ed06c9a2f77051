"""``Telemetry``: the contract bound to zero or more backends; what every component takes.

Like OpenTelemetry's API, instrumented code depends only on this facade and works unchanged
with metrics off: with no backends (and not strict) it hands out no-op instruments that cost
one empty call. A component asks for its instruments once, at construction, so an unknown name
or a wrong type fails at start-up rather than at the first emission.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.model import Contract, MetricSpec, MetricType
from cadmetrics.errors import ContractError, TelemetryError
from cadmetrics.telemetry.backend import Backend, BackendMetric
from cadmetrics.telemetry.instruments import (
    Counter,
    Gauge,
    Histogram,
    Instrument,
    NoopCounter,
    NoopGauge,
    NoopHistogram,
)
from cadmetrics.telemetry.labels import LabelAdmission
from cadmetrics.telemetry.spans import NOOP_SPAN, AttributeAdmission, NoopSpan, SpanScope

#: The counter that records label values replaced by the overflow value.
OVERFLOW_METRIC = "cadmetrics_telemetry_label_overflow_total"

#: The counter that records span attributes dropped or replaced by the overflow value.
SPAN_OVERFLOW_METRIC = "cadmetrics_telemetry_span_attribute_overflow_total"

#: Set to 1/true to make every Telemetry strict by default (the pytest plugin's fixtures are
#: strict regardless).
STRICT_ENV = "CADMETRICS_TELEMETRY_STRICT"

BackendSpec = str | Backend | Any  # a name, a Backend, a CollectorRegistry or a MeterProvider

_I = TypeVar("_I", bound=Instrument)

_REAL = {MetricType.COUNTER: Counter, MetricType.GAUGE: Gauge, MetricType.HISTOGRAM: Histogram}
_NOOP = {
    MetricType.COUNTER: NoopCounter,
    MetricType.GAUGE: NoopGauge,
    MetricType.HISTOGRAM: NoopHistogram,
}


class Telemetry:
    """Instruments for the metrics of ``contract``, emitted to every one of ``backends``.

    ``backends`` items may be ``"prometheus"`` (prometheus_client's default registry),
    ``"otel"`` (the global MeterProvider), ``"noop"``, a ``CollectorRegistry``, an OTel
    ``MeterProvider``, or any :class:`~cadmetrics.telemetry.backend.Backend`.
    ``strict`` (default: the ``CADMETRICS_TELEMETRY_STRICT`` environment variable, else False)
    makes a label violation raise instead of being replaced by the overflow value.

    Spans (:meth:`span`) go to ``tracer_provider`` (an OpenTelemetry ``TracerProvider``), or,
    when an ``"otel"`` backend or a ``MeterProvider`` is given and no tracer provider is, to
    the global one. With tracing on, histograms in seconds carry the active span's trace id as
    an exemplar on the Prometheus backend (OpenTelemetry's SDK attaches its own).
    """

    def __init__(
        self,
        contract: Contract | None = None,
        backends: Iterable[BackendSpec] = (),
        *,
        strict: bool | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.contract = contract if contract is not None else load_contract()
        if strict is None:
            strict = os.environ.get(STRICT_ENV, "").lower() in ("1", "true", "yes")
        self.strict = strict
        items = list(backends)
        self.backends: tuple[Backend, ...] = tuple(
            backend for item in items if (backend := resolve_backend(item, self.contract)) is not None
        )
        self._tracer = _tracer(tracer_provider, self.backends, self.contract.version)
        if self._tracer is not None:
            from cadmetrics.telemetry.tracing import current_exemplar

            for backend in self.backends:
                use_exemplars = getattr(backend, "use_exemplars", None)
                if use_exemplars is not None:
                    use_exemplars(current_exemplar)
        self._lock = threading.Lock()
        # Every declared metric is created in every backend now: registration conflicts show
        # at start-up, and the exposition lists every family (HELP/TYPE) from the first scrape.
        self._bound: dict[str, list[BackendMetric]] = {
            spec.name: [backend.bind(spec) for backend in self.backends]
            for spec in self.contract.emitted_here()
        }
        self._instruments: dict[str, Instrument] = {}
        self._overflow: Counter | None = None
        if self.enabled and OVERFLOW_METRIC in self.contract:
            self._overflow = self._make(self.contract.require(OVERFLOW_METRIC), strict=False, count=False)
        self._span_overflow: Counter | None = None
        if self.enabled and SPAN_OVERFLOW_METRIC in self.contract:
            spec = self.contract.require(SPAN_OVERFLOW_METRIC)
            self._span_overflow = self._make(spec, strict=False, count=False)
        self._spans: dict[str, AttributeAdmission] = {}
        # tracing off and not strict: a declared span is the shared no-op, after one lookup
        self._quiet_spans = self._tracer is None and not self.strict
        self._span_names = frozenset(span.name for span in self.contract.spans)

    @property
    def enabled(self) -> bool:
        """False when emissions go nowhere and are not checked (no backends, not strict)."""
        return bool(self.backends) or self.strict

    def counter(self, name: str) -> Counter:
        return self._instrument(name, MetricType.COUNTER, Counter)

    def gauge(self, name: str) -> Gauge:
        return self._instrument(name, MetricType.GAUGE, Gauge)

    def histogram(self, name: str) -> Histogram:
        return self._instrument(name, MetricType.HISTOGRAM, Histogram)

    def instrument(self, name: str) -> Instrument:
        """The instrument for ``name`` whatever its type (for generic code such as the demo)."""
        spec = self.contract.require(name)
        return self._instrument(name, spec.type, Instrument)

    def _instrument(self, name: str, kind: MetricType, cls: type[_I]) -> _I:
        found = self._instruments.get(name)
        if found is None:
            spec = self.contract.require(name, kind)
            if spec.provided_by is not None:
                raise ContractError(
                    f"metric {name!r} is provided by {spec.provided_by} ({spec.location}); "
                    "cadmetrics declares and verifies it but never creates it"
                )
            with self._lock:
                found = self._instruments.get(name)
                if found is None:
                    found = self._make(spec, self.strict, count=True)
                    self._instruments[name] = found
        elif found.type is not kind:
            self.contract.require(name, kind)  # raises the contract's own message
        if not isinstance(found, cls):  # pragma: no cover - guarded by the type check above
            raise ContractError(f"{name} is a {found.type}")
        return found

    @property
    def tracing(self) -> bool:
        """Whether spans go to an OpenTelemetry tracer."""
        return self._tracer is not None

    def span(self, name: str, **attributes: object) -> SpanScope | NoopSpan:
        """``with telemetry.span(name, **attributes) as span:`` traces the block as the
        declared span ``name``; ``span.set(...)`` and ``span.event(...)`` add to it. An unknown
        name is a :class:`ContractError` whatever the mode; with tracing off and not strict the
        rest costs one empty call."""
        if self._quiet_spans and name in self._span_names:
            return NOOP_SPAN
        admission = self._spans.get(name)
        if admission is None:
            admission = self._span_admission(name)
        if self._quiet_spans:
            return NOOP_SPAN
        return SpanScope(admission, self._tracer, attributes)

    def _span_admission(self, name: str) -> AttributeAdmission:
        spec = self.contract.require_span(name)
        with self._lock:
            return self._spans.setdefault(
                name, AttributeAdmission(spec, self.strict, self._count_span_overflow)
            )

    def _count_span_overflow(self, span: str, attribute: str) -> None:
        if self._span_overflow is not None:
            self._span_overflow.inc(span=span, attribute=attribute)

    def emitted(self) -> list[str]:
        """Names of the metrics emitted to (or given a label set) through this Telemetry, so
        far: exact, where an exposition cannot tell an unlabelled metric's pre-created zero
        from a real emission."""
        return [name for name, instrument in self._instruments.items() if instrument.used]

    def _make(self, spec: MetricSpec, strict: bool, count: bool) -> Any:
        if not self.enabled:
            return _NOOP[spec.type](spec)
        hook = self._count_overflow if count else _drop_overflow
        admission = LabelAdmission(spec, strict, hook)
        return _REAL[spec.type](spec, self._bound[spec.name], admission)

    def _count_overflow(self, metric: str, label: str) -> None:
        if self._overflow is not None:
            self._overflow.inc(metric=metric, label=label)

    def __repr__(self) -> str:
        names = ", ".join(backend.name for backend in self.backends) or "none"
        return f"Telemetry(backends=[{names}], metrics={len(self.contract)}, strict={self.strict})"


def _tracer(provider: Any, backends: Sequence[Backend], version: str) -> Any:
    """The tracer spans go to: on ``provider``, else on the global provider when an OTel
    backend is in use, else none (spans are no-ops)."""
    if provider is None and not any(backend.name == "otel" for backend in backends):
        return None
    from cadmetrics.telemetry.tracing import Tracer

    return Tracer(provider, version)


def _drop_overflow(metric: str, label: str) -> None:
    """The overflow counter's own overflow is not counted again (that would recurse)."""


def resolve_backend(item: BackendSpec, contract: Contract) -> Backend | None:
    """Turn a backend name or object into a :class:`Backend` (None for ``"noop"``)."""
    if isinstance(item, str):
        if item == "noop":
            return None
        if item == "prometheus":
            from cadmetrics.telemetry.prometheus import PrometheusBackend

            return PrometheusBackend()
        if item == "otel":
            from cadmetrics.telemetry.otel import OtelBackend

            return OtelBackend(version=contract.version)
        raise TelemetryError(
            f"unknown backend {item!r}: use 'prometheus', 'otel', 'noop', a CollectorRegistry, "
            "a MeterProvider or a Backend object"
        )
    if isinstance(item, Backend):
        return item
    module = type(item).__module__
    if module.startswith("prometheus_client"):
        from cadmetrics.telemetry.prometheus import PrometheusBackend

        return PrometheusBackend(item)
    if module.startswith("opentelemetry") and hasattr(item, "get_meter"):
        from cadmetrics.telemetry.otel import OtelBackend

        return OtelBackend(item, version=contract.version)
    raise TelemetryError(f"cannot use {item!r} as a telemetry backend")


def available_backends() -> Sequence[str]:
    """The backend names whose packages are installed here."""
    names = []
    for name, module in (
        ("prometheus", "prometheus_client"),
        ("otel", "opentelemetry.sdk.metrics"),
    ):
        try:
            __import__(module)
        except ImportError:
            continue
        names.append(name)
    return names
