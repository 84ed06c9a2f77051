"""``cadmetrics demo``: every metric of the contract, emitted through both backends, shown as
Prometheus exposition and verified against the contract from three directions (the
prometheus_client registry, OpenTelemetry's Prometheus exporter, OpenTelemetry's own data)."""

from __future__ import annotations

from typing import TextIO

from cadmetrics.contract.model import Contract
from cadmetrics.contract.verify import verify
from cadmetrics.telemetry.capture import CapturedTelemetry
from cadmetrics.telemetry.exercise import exercise


def run_demo(contract: Contract, out: TextIO) -> bool:
    """Run the demo, writing to ``out``; True when every verification passes."""
    captured = CapturedTelemetry(contract, otel_exporter=True)
    try:
        emitted = exercise(captured.telemetry)
        backends = ", ".join(b.name for b in captured.telemetry.backends)
        if not backends:
            out.write("neither prometheus_client nor OpenTelemetry is installed: metrics are no-ops.\n")
            out.write("install 'cadmetrics[all]' to see the exposition and its verification.\n")
            return True
        out.write(f"emitted {emitted} metrics through: {backends}\n\n")
        exposition = captured.exposition()
        if exposition:
            out.write("# ---- Prometheus exposition (prometheus_client backend) ----\n")
            out.write(exposition + "\n")
        reports = [verify(obs, contract, require_all=True) for obs in captured.observations()]
    finally:
        captured.close()
    out.write("# ---- verification against the contract ----\n")
    for report in reports:
        out.write(report.render() + "\n")
    verdict = all(report.ok for report in reports)
    out.write(
        f"\nverdict: {'PASS' if verdict else 'FAIL'}: {len(reports)} sources checked "
        f"against {len(contract)} declared metrics\n"
    )
    return verdict
