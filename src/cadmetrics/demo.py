"""``cadmetrics demo``: every metric of the contract, emitted through both backends, shown as
Prometheus exposition and verified against the contract from three directions (the
prometheus_client registry, OpenTelemetry's Prometheus exporter, OpenTelemetry's own data)."""

from __future__ import annotations

from typing import TextIO

from cadmetrics.contract.model import Contract
from cadmetrics.contract.observed import Observation, from_exposition, from_otel, from_registry
from cadmetrics.contract.verify import VerificationReport, verify
from cadmetrics.telemetry.exercise import exercise
from cadmetrics.telemetry.facade import Telemetry, available_backends


def run_demo(contract: Contract, out: TextIO) -> bool:
    """Run the demo, writing to ``out``; True when every verification passes."""
    backends = available_backends()
    observations: list[Observation] = []
    exposition = ""
    if not backends:
        out.write("neither prometheus_client nor OpenTelemetry is installed: metrics are no-ops.\n")
        out.write("install 'cadmetrics[all]' to see the exposition and its verification.\n")
        exercise(Telemetry(contract))
        return True
    targets: list[object] = []
    reader = None
    if "prometheus" in backends:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry()
        targets.append(registry)
    if "otel" in backends:
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader

        from cadmetrics.telemetry.otel import meter_provider, prometheus_reader

        reader = InMemoryMetricReader()
        readers: list[MetricReader] = [reader]
        exporter_registry = None
        if "prometheus" in backends:
            exporter_registry = CollectorRegistry()
            readers.append(prometheus_reader(exporter_registry))
        targets.append(meter_provider(contract, readers))
    telemetry = Telemetry(contract, targets, strict=True)
    emitted = exercise(telemetry)
    out.write(f"emitted {emitted} metrics through: {', '.join(b.name for b in telemetry.backends)}\n\n")
    if "prometheus" in backends:
        exposition = generate_latest(registry).decode()
        out.write("# ---- Prometheus exposition (prometheus_client backend) ----\n")
        out.write(exposition)
        out.write("\n")
        observations.append(from_registry(registry, "prometheus_client registry"))
        if exporter_registry is not None:
            text = generate_latest(exporter_registry).decode()
            observations.append(from_exposition(text, "OpenTelemetry Prometheus exporter"))
    if reader is not None:
        observations.append(from_otel(reader.get_metrics_data(), contract, "OpenTelemetry metrics data"))
    reports: list[VerificationReport] = [verify(obs, contract, require_all=True) for obs in observations]
    out.write("# ---- verification against the contract ----\n")
    for report in reports:
        out.write(report.render() + "\n")
    verdict = all(report.ok for report in reports)
    out.write(
        f"\nverdict: {'PASS' if verdict else 'FAIL'}: {len(reports)} sources checked "
        f"against {len(contract)} declared metrics\n"
    )
    return verdict
