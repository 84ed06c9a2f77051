"""A Telemetry on every installed backend, with in-process readers: what the demo and the
pytest plugin need to emit and then look at what was really exported, metrics and spans."""

from __future__ import annotations

from typing import Any

from cadmetrics.contract.model import Contract
from cadmetrics.contract.observed import Observation, from_exposition, from_otel, from_registry
from cadmetrics.contract.traces import TraceObservation, from_spans
from cadmetrics.telemetry.facade import Telemetry, available_backends


def in_memory_tracing() -> tuple[Any, Any]:
    """An OpenTelemetry SDK ``TracerProvider`` whose spans an ``InMemorySpanExporter`` keeps,
    and that exporter; ``(None, None)`` without the SDK."""
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        return None, None
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


class CapturedTelemetry:
    """``telemetry`` emits to a private prometheus_client registry and to an OpenTelemetry
    provider read by an ``InMemoryMetricReader`` (each when installed); with
    ``otel_exporter`` also to OpenTelemetry's Prometheus exporter, in a registry of its own.
    ``observations()`` gives what each of them exports, as a scrape would see it. With the
    OpenTelemetry SDK installed, spans go to an in-memory exporter (``traces()``)."""

    def __init__(self, contract: Contract, *, strict: bool = True, otel_exporter: bool = False) -> None:
        self.contract = contract
        installed = available_backends()
        targets: list[Any] = []
        self.registry: Any = None
        self.exporter_registry: Any = None
        self.reader: Any = None
        self.provider: Any = None
        if "prometheus" in installed:
            from prometheus_client import CollectorRegistry

            self.registry = CollectorRegistry()
            targets.append(self.registry)
        if "otel" in installed:
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader

            from cadmetrics.telemetry.otel import meter_provider, prometheus_reader

            self.reader = InMemoryMetricReader()
            readers: list[MetricReader] = [self.reader]
            if otel_exporter and self.registry is not None:
                self.exporter_registry = CollectorRegistry()
                readers.append(prometheus_reader(self.exporter_registry))
            self.provider = meter_provider(contract, readers)
            targets.append(self.provider)
        self.tracer_provider, self.span_exporter = in_memory_tracing()
        self.telemetry = Telemetry(contract, targets, strict=strict, tracer_provider=self.tracer_provider)

    def traces(self) -> list[TraceObservation]:
        """The spans finished so far ([] without the OpenTelemetry SDK)."""
        if self.span_exporter is None:
            return []
        return [from_spans(self.span_exporter.get_finished_spans(), "OpenTelemetry spans")]

    def exposition(self) -> str:
        """The prometheus_client registry's text exposition ("" without prometheus_client)."""
        if self.registry is None:
            return ""
        from prometheus_client import generate_latest

        text: str = generate_latest(self.registry).decode()
        return text

    def observations(self) -> list[Observation]:
        found = []
        if self.registry is not None:
            found.append(from_exposition(self.exposition(), "prometheus_client registry"))
        if self.exporter_registry is not None:
            from prometheus_client import generate_latest

            text = generate_latest(self.exporter_registry).decode()
            found.append(from_exposition(text, "OpenTelemetry Prometheus exporter"))
        if self.reader is not None:
            data = self.reader.get_metrics_data()
            found.append(from_otel(data, self.contract, "OpenTelemetry metrics data"))
        return found

    def read(self) -> Observation | None:
        """The current values (from the registry, else OpenTelemetry), None without backends."""
        if self.registry is not None:
            return from_registry(self.registry)
        if self.reader is not None:
            return from_otel(self.reader.get_metrics_data(), self.contract)
        return None

    def close(self) -> None:
        """Shut the OpenTelemetry provider down (it would otherwise live until exit)."""
        if self.provider is not None:
            self.provider.shutdown()
            self.provider = None
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
            self.tracer_provider = None
