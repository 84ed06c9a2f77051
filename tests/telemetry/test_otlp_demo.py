"""The demo's walk exported over OTLP/HTTP, metrics and traces, to a loopback receiver: what
arrived verifies clean against the contract, and every declared span was traced."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cadmetrics import Telemetry
from cadmetrics.contract.model import Contract
from cadmetrics.contract.observed import from_otlp
from cadmetrics.contract.traces import from_otlp_traces, verify_spans
from cadmetrics.contract.verify import verify
from tests.conftest import CAD_SAMPLES

pytest.importorskip("opentelemetry.sdk.trace")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from cadmetrics.telemetry.otel import meter_provider
from cadmetrics.telemetry.otlp import otlp_reader
from cadmetrics.walkthrough import walk
from tests.telemetry.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.usefixtures("loopback_only")


def test_the_demo_exported_over_otlp_verifies_clean(library_contract: Contract, tmp_path: Path) -> None:
    samples = CAD_SAMPLES if CAD_SAMPLES.is_dir() else None
    with OtlpReceiver() as receiver:
        meters = meter_provider(library_contract, [otlp_reader(receiver.endpoint, interval_seconds=math.inf)])
        tracers = TracerProvider()
        tracers.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        try:
            summary = walk(Telemetry(library_contract, [meters], tracer_provider=tracers), tmp_path, samples)
            meters.force_flush()
            tracers.force_flush()
        finally:
            meters.shutdown()
            tracers.shutdown()
        assert not summary.problems, summary.problems
        metrics = verify(from_otlp(receiver.latest, library_contract), library_contract)
        traces = verify_spans([from_otlp_traces(request) for request in receiver.traces], library_contract)
    assert metrics.ok, metrics.render()
    assert traces.ok, traces.render()
    assert set(traces.checked) == {span.name for span in library_contract.spans}
