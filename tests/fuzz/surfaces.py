"""The input surfaces the fuzzer drives: each a corpus of real inputs and the library entry point
that reads them, as a host calls it.

A target returns normally (a result) or raises the library's own error
(:class:`cadmetrics.errors.CadMetricsError`); anything else is a finding, as is a crash, a hang
or memory past the cap (see :mod:`tests.fuzz.harness`).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

import attrs

ROOT: Final = Path(__file__).resolve().parents[2]
SHARED: Final = ROOT.parent / "shared"
ASSETS: Final = ROOT / "contracts"
_PROMQL: Final = ("promql_parser",)


@attrs.frozen
class Surface:
    """An input surface: where its real inputs are, and what reads them."""

    name: str
    corpus: Callable[[], list[bytes]]
    target: Callable[[bytes], object]
    needs: tuple[str, ...] = ()  # modules the target needs (the surface is skipped without them)


def _files(folder: Path, *patterns: str) -> list[bytes]:
    found = sorted(path for pattern in patterns for path in folder.glob(pattern) if path.is_file())
    return [path.read_bytes() for path in found if path.stat().st_size <= 2_000_000]


@functools.cache
def _extractor(version: str = "v4") -> object:
    from cadmetrics.features.cache import FeatureCache
    from cadmetrics.features.extractor import FeatureExtractor

    return FeatureExtractor(version, cache=FeatureCache.disabled())


def _extract(data: bytes) -> object:
    from cadmetrics.features.extractor import FeatureExtractor

    extractor = _extractor()
    assert isinstance(extractor, FeatureExtractor)
    return extractor.extract(data)


def _extract_step(data: bytes) -> object:
    """STEP, with OpenCASCADE's time bound lowered under the fuzzer's own cap (its worker
    process refuses a file past it as ``too_large``, as a host's would past the default)."""
    from cadmetrics.features import brep_process

    brep_process.BASE_SECONDS = 6.0
    brep_process.SECONDS_PER_MEGABYTE = 1.0
    return _extract(data)


def _iges_corpus() -> list[bytes]:
    """IGES as OpenCASCADE's writer makes it from the shared STEP samples: once of B-Rep
    entities, once of trimmed surfaces only (as most CAD tools write IGES)."""
    from OCP.STEPControl import STEPControl_Reader

    from tests.features.brep_parts import iges_bytes

    found = []
    for path in sorted((SHARED / "cad-samples" / "step").glob("*")):
        if path.stat().st_size > 300_000:  # a mutant of a large part times out, and tests nothing more
            continue
        reader = STEPControl_Reader()
        reader.ReadFile(str(path))
        reader.TransferRoots()
        shape = reader.OneShape()
        found += [iges_bytes(shape), iges_bytes(shape, surfaces=True)]
    return found


def _contract(data: bytes) -> object:
    """A host's contract file, loaded alone (with what it extends) and linted, as at start-up."""
    from cadmetrics import load_contract

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contract.yaml"
        path.write_bytes(data)
        return load_contract(path, library=False, entry_points=False)


def _exposition(data: bytes) -> object:
    from cadmetrics.contract.model import Contract
    from cadmetrics.contract.observed import from_exposition
    from cadmetrics.contract.verify import verify

    contract = _library()
    assert isinstance(contract, Contract)
    return verify(from_exposition(data.decode("utf-8", errors="replace"), "fuzz.prom"), contract)


def _otlp(data: bytes) -> object:
    from cadmetrics.contract.model import Contract
    from cadmetrics.contract.observed import from_otlp
    from cadmetrics.contract.verify import verify

    contract = _library()
    assert isinstance(contract, Contract)
    return verify(from_otlp(data, contract, "fuzz.otlp"), contract)


def _infer(data: bytes) -> object:
    """A draft from any exposition that parses must load and lint clean as it is written."""
    from cadmetrics.contract.compose import compose
    from cadmetrics.contract.draft import render_draft
    from cadmetrics.contract.infer import infer_contract
    from cadmetrics.contract.lint import Severity, lint
    from cadmetrics.contract.loader import parse_contract_text
    from cadmetrics.contract.observed import from_exposition

    draft = render_draft(
        infer_contract([from_exposition(data.decode("utf-8", errors="replace"), "fuzz.prom")])
    )
    contract = compose([parse_contract_text(draft, "draft.yaml")])
    errors = [str(f) for f in lint(contract) if f.severity is Severity.ERROR]
    assert not errors, errors
    return contract


def _application_expositions() -> list[bytes]:
    """An application's own exposition (tests/contract/platform_app.py), in both formats."""
    import importlib
    import sys

    sys.modules.pop("tests.contract.platform_app", None)
    app = importlib.import_module("tests.contract.platform_app")
    app.serve_some_traffic()
    texts = [app.exposition().encode(), app.exposition(openmetrics=True).encode()]
    sys.modules.pop("tests.contract.platform_app", None)
    return texts


@functools.cache
def _library() -> object:
    from cadmetrics import load_contract

    return load_contract()


def _checked(suffix: str) -> Callable[[bytes], object]:
    def target(data: bytes) -> object:
        from cadmetrics.check import check_dashboards, check_rules
        from cadmetrics.contract.model import Contract

        contract = _library()
        assert isinstance(contract, Contract)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"fuzz{suffix}"
            path.write_bytes(data)
            return (check_rules if suffix == ".yaml" else check_dashboards)([path], contract)

    return target


def _scan(data: bytes) -> object:
    from cadmetrics.models import scan

    return scan(data)


def _expositions() -> list[bytes]:
    """What a registry of the library's metrics exports, in both text formats."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    from cadmetrics import Telemetry

    registry = CollectorRegistry()
    telemetry = Telemetry(backends=[registry])
    telemetry.counter("cadmetrics_feature_extractions_total").inc(version="v4", result="computed")
    telemetry.histogram("cadmetrics_feature_extraction_duration_seconds").observe(
        0.02, version="v4", format="stl"
    )
    telemetry.gauge("cadmetrics_model_rollback_level").set(1)
    return [generate_latest(registry), openmetrics(registry)]  # type: ignore[no-untyped-call]


def _otlp_requests() -> list[bytes]:
    """What the OpenTelemetry SDK exports over OTLP for every metric of the library's contract,
    as serialized ``ExportMetricsServiceRequest`` messages (one with a histogram across buckets)."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from cadmetrics import Telemetry
    from cadmetrics.contract.model import Contract
    from cadmetrics.telemetry.exercise import exercise
    from cadmetrics.telemetry.otel import meter_provider

    contract = _library()
    assert isinstance(contract, Contract)
    reader = InMemoryMetricReader()
    provider = meter_provider(contract, [reader])

    def request() -> bytes:
        data = reader.get_metrics_data()
        assert data is not None
        return bytes(encode_metrics(data).SerializeToString())

    try:
        telemetry = Telemetry(backends=[provider])
        exercise(telemetry)
        first = request()
        duration = telemetry.histogram("cadmetrics_feature_extraction_duration_seconds")
        for seconds in (0.0005, 0.02, 0.3, 45.0):
            duration.observe(seconds, version="v4", format="stl")
        second = request()
    finally:
        provider.shutdown()
    return [first, second]


def _otlp_traces(data: bytes) -> object:
    from cadmetrics.contract.model import Contract
    from cadmetrics.contract.traces import from_otlp_traces, verify_spans

    contract = _library()
    assert isinstance(contract, Contract)
    return verify_spans([from_otlp_traces(data, "fuzz.otlp")], contract)


def _otlp_trace_requests() -> list[bytes]:
    """What the OpenTelemetry SDK exports over OTLP for spans of the library's contract (with
    attributes of every type, and an event), as serialized ``ExportTraceServiceRequest``s."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from cadmetrics import Telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        telemetry = Telemetry(tracer_provider=provider, strict=True)
        for round_number in range(12):  # enough spans that most edits land inside one of them
            with telemetry.span("cadmetrics.vectors.migrate", from_version="v4", to_version="v3") as span:
                span.event("batch_committed", records=500 + round_number)
                span.set(records=500)
            with telemetry.span("cadmetrics.drift.window", drifted=round_number % 2 == 0, anomalies=2):
                pass
            with telemetry.span("cadmetrics.vectors.search", version="v4", method="exact", k=10, queries=3):
                pass
    finally:
        provider.shutdown()
    spans = exporter.get_finished_spans()
    return [
        bytes(encode_spans(spans).SerializeToString()),
        bytes(encode_spans(spans[:1]).SerializeToString()),
    ]


SURFACES: Final = {
    surface.name: surface
    for surface in (
        Surface("mesh", lambda: _files(SHARED / "cad-samples", "stl/*", "obj/*", "ply/*"), _extract),
        Surface("drawing", lambda: _files(SHARED / "cad-samples", "dxf/*"), _extract, ("ezdxf",)),
        Surface("step", lambda: _files(SHARED / "cad-samples", "step/*"), _extract_step, ("OCP",)),
        Surface("iges", _iges_corpus, _extract_step, ("OCP",)),
        Surface("contract", lambda: _files(ASSETS, "metrics.yaml"), _contract),
        Surface("exposition", _expositions, _exposition, ("prometheus_client",)),
        Surface("infer", _application_expositions, _infer, ("prometheus_client",)),
        Surface("traces", _otlp_trace_requests, _otlp_traces, ("opentelemetry.exporter.otlp.proto.common",)),
        Surface("otlp", _otlp_requests, _otlp, ("opentelemetry.exporter.otlp.proto.common",)),
        Surface("rules", lambda: _files(ASSETS / "alerts", "*.yaml"), _checked(".yaml"), _PROMQL),
        Surface("dashboards", lambda: _files(ASSETS / "dashboards", "*.json"), _checked(".json"), _PROMQL),
        Surface("scan", lambda: _files(SHARED / "model-samples", "*.pt", "*.safetensors", "*.onnx"), _scan),
    )
}  # fmt: skip
