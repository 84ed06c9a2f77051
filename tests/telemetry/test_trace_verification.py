"""Spans verified against the contract: the SDK's finished spans, and spans exported over
OTLP/HTTP to a loopback receiver, clean when Telemetry made them and caught when made by hand
against the contract (undeclared span, wrong attribute type, value outside a closed set)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadmetrics import Telemetry
from cadmetrics.contract.model import Contract
from cadmetrics.contract.traces import from_otlp_traces, from_spans, verify_spans
from cadmetrics.contract.verify import Kind
from cadmetrics.errors import InputError

pytest.importorskip("opentelemetry.sdk.trace")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.telemetry.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.usefixtures("loopback_only")


def _emit_good(telemetry: Telemetry) -> None:
    with telemetry.span("cadmetrics.vectors.migrate", from_version="v4", to_version="v3") as span:
        span.event("batch_committed", records=10)
        span.set(records=10)
    with telemetry.span("cadmetrics.vectors.search", version="v4", method="exact", k=5, queries=1):
        pass


def _emit_bad(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("by-hand")
    with tracer.start_as_current_span("cadmetrics.vectors.reindex"):
        pass  # undeclared, inside the namespace
    with tracer.start_as_current_span(
        "cadmetrics.vectors.search", attributes={"version": "v4", "method": "brute", "k": "5", "queries": 1}
    ):
        pass  # a value outside the closed set, and a string where an int is declared
    with tracer.start_as_current_span("http.request"):
        pass  # another library's span: not the contract's to judge


def test_finished_spans_from_telemetry_verify_clean(
    library_contract: Contract, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    _emit_good(Telemetry(library_contract, tracer_provider=provider, strict=True))
    report = verify_spans([from_spans(exporter.get_finished_spans())], library_contract)
    assert report.ok, report.render()
    assert set(report.checked) == {"cadmetrics.vectors.migrate", "cadmetrics.vectors.search"}
    assert report.coverage is not None and 0 < report.coverage.ratio < 1


def test_hand_made_spans_against_the_contract_are_caught(
    library_contract: Contract, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    _emit_bad(provider)
    report = verify_spans([from_spans(exporter.get_finished_spans())], library_contract)
    found = {(v.kind, v.metric) for v in report.errors}
    assert found == {
        (Kind.UNDECLARED, "cadmetrics.vectors.reindex"),
        (Kind.LABEL_VALUE, "cadmetrics.vectors.search"),
        (Kind.TYPE, "cadmetrics.vectors.search"),
    }
    assert report.foreign == 1


def test_spans_exported_over_otlp_http_verify_clean_and_bad_ones_are_caught(
    library_contract: Contract,
) -> None:
    with OtlpReceiver() as receiver:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        try:
            _emit_good(Telemetry(library_contract, tracer_provider=provider, strict=True))
            good = [from_otlp_traces(request, "otlp") for request in receiver.traces]
            assert good, f"no trace request arrived (rejected: {receiver.rejected})"
            report = verify_spans(good, library_contract)
            assert report.ok, report.render()
            assert set(report.checked) == {"cadmetrics.vectors.migrate", "cadmetrics.vectors.search"}
            arrived = len(receiver.traces)
            _emit_bad(provider)
        finally:
            provider.shutdown()
        bad = [from_otlp_traces(request.SerializeToString(), "otlp") for request in receiver.traces[arrived:]]
    kinds = {v.kind for v in verify_spans(bad, library_contract).errors}
    assert kinds == {Kind.UNDECLARED, Kind.LABEL_VALUE, Kind.TYPE}


def test_bytes_that_are_not_a_trace_request_are_an_input_error() -> None:
    with pytest.raises(InputError, match="not an OTLP ExportTraceServiceRequest"):
        from_otlp_traces(b"\xff\xff\xff", "junk")


def test_the_command_verifies_trace_files_beside_the_exposition(
    library_contract: Contract, traced: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from cadmetrics.cli import main

    provider, exporter = traced
    _emit_good(Telemetry(library_contract, tracer_provider=provider, strict=True))
    good = tmp_path / "good.otlp"
    good.write_bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())
    exporter.clear()
    _emit_bad(provider)
    bad = tmp_path / "bad.otlp"
    bad.write_bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())
    exposition = tmp_path / "empty.prom"
    exposition.write_text("")
    verify_args = ["contract", "verify", "--exposition", str(exposition)]
    assert main([*verify_args, "--traces", str(good)]) == 0
    assert main([*verify_args, "--traces", str(good), "--traces", str(bad)]) == 1
