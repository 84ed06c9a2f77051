"""Spans as the contract declares them: attributes checked like labels, events, the no-op, and
exemplars linking a duration histogram's bucket to the span's trace."""

from __future__ import annotations

from typing import Any

import pytest

from cadmetrics import Telemetry
from cadmetrics.contract.model import OVERFLOW_VALUE, Contract
from cadmetrics.errors import ContractError, LabelError
from cadmetrics.telemetry.spans import NOOP_SPAN

pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SEARCH = "cadmetrics.vectors.search"
GOOD = {"version": "v4", "method": "exact", "k": 10, "queries": 1}


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = exporter.get_finished_spans()
    return span


def test_a_declared_span_is_traced_with_its_attributes_and_events(
    library_contract: Contract, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    telemetry = Telemetry(library_contract, tracer_provider=provider, strict=True)
    with telemetry.span("cadmetrics.vectors.migrate", from_version="v4", to_version="v3") as span:
        span.event("batch_committed", records=500)
        span.set(records=500)
        assert span.trace_id is not None and len(span.trace_id) == 32
    recorded = _only(exporter)
    assert recorded.name == "cadmetrics.vectors.migrate"
    assert dict(recorded.attributes or {}) == {"from_version": "v4", "to_version": "v3", "records": 500}
    assert [(e.name, dict(e.attributes or {})) for e in recorded.events] == [
        ("batch_committed", {"records": 500})
    ]


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({**GOOD, "user": "x"}, "attribute 'user' is not declared"),
        ({**GOOD, "k": "10"}, "attribute 'k' must be a int"),
        ({**GOOD, "k": True}, "attribute 'k' must be a int"),
        ({**GOOD, "method": "brute"}, "attribute 'method' value 'brute' is not admitted"),
        ({"version": "v4", "method": "exact", "k": 10}, "required attribute 'queries' was never set"),
    ],
)
def test_strict_mode_refuses_what_the_contract_does_not_admit(
    library_contract: Contract, attributes: dict[str, object], problem: str
) -> None:
    telemetry = Telemetry(library_contract, strict=True)  # strict checks with or without tracing
    with pytest.raises(LabelError, match=problem), telemetry.span(SEARCH, **attributes):
        pass


def test_strict_mode_refuses_undeclared_events_and_their_bad_attributes(library_contract: Contract) -> None:
    telemetry = Telemetry(library_contract, strict=True)
    migrate = {"from_version": "v4", "to_version": "v3", "records": 1}
    with (
        pytest.raises(LabelError, match="event 'paused' is not declared"),
        telemetry.span("cadmetrics.vectors.migrate", **migrate) as span,
    ):
        span.event("paused")
    with (
        pytest.raises(LabelError, match="event 'batch_committed': attribute 'records' must be a int"),
        telemetry.span("cadmetrics.vectors.migrate", **migrate) as span,
    ):
        span.event("batch_committed", records=1.5)


def test_production_mode_drops_or_overflows_and_counts(
    library_contract: Contract, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from prometheus_client import CollectorRegistry

    provider, exporter = traced
    registry = CollectorRegistry()
    telemetry = Telemetry(library_contract, [registry], tracer_provider=provider, strict=False)
    with telemetry.span(SEARCH, version="v4", method="brute", k="ten", user="x"):
        pass  # queries is missing too
    assert dict(_only(exporter).attributes or {}) == {"version": "v4", "method": OVERFLOW_VALUE}
    counted = {
        sample.labels["attribute"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "cadmetrics_telemetry_span_attribute_overflow_total"
    }
    assert counted == {"method": 1.0, "k": 1.0, "user": 1.0, "queries": 1.0}


def test_without_tracing_a_span_is_a_shared_no_op_but_its_name_is_still_checked(
    library_contract: Contract,
) -> None:
    telemetry = Telemetry(library_contract)
    assert not telemetry.tracing
    assert telemetry.span(SEARCH, **GOOD) is NOOP_SPAN
    with telemetry.span(SEARCH, anything="goes") as span:
        span.set(more=1)
        span.event("whatever")
        assert span.trace_id is None
    with pytest.raises(
        ContractError, match=r"span 'cadmetrics\.vectors\.serch' is not declared.*did you mean"
    ):
        telemetry.span("cadmetrics.vectors.serch")


def test_an_otel_backend_turns_tracing_on_with_the_global_provider(library_contract: Contract) -> None:
    from opentelemetry.sdk.metrics import MeterProvider

    provider = MeterProvider()
    try:
        assert Telemetry(library_contract, [provider]).tracing
    finally:
        provider.shutdown()


def test_the_openmetrics_exemplar_of_a_duration_carries_the_spans_trace_id(
    library_contract: Contract, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from prometheus_client import CollectorRegistry
    from prometheus_client.openmetrics.exposition import generate_latest

    from cadmetrics.contract.observed import from_exposition

    provider, _ = traced
    registry = CollectorRegistry()
    telemetry = Telemetry(library_contract, [registry], tracer_provider=provider, strict=True)
    duration = telemetry.histogram("cadmetrics_vector_search_duration_seconds")
    with telemetry.span(SEARCH, **GOOD) as span:
        duration.observe(0.003, method="exact")
    duration.observe(0.003, method="ann")  # outside a span: no exemplar
    text = generate_latest(registry).decode()  # type: ignore[no-untyped-call]
    family = from_exposition(text).family("cadmetrics_vector_search_duration_seconds")
    assert family is not None
    exemplars = [dict(s.exemplar) for s in family.samples if s.exemplar]
    assert exemplars and all(e["trace_id"] == span.trace_id for e in exemplars)
    assert set(exemplars[0]) == {"trace_id", "span_id"}


def test_the_otel_backend_records_exemplars_from_the_active_span(
    library_contract: Contract, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from cadmetrics.telemetry.otel import meter_provider

    provider, _ = traced
    reader = InMemoryMetricReader()
    meters = meter_provider(library_contract, [reader])
    try:
        telemetry = Telemetry(library_contract, [meters], tracer_provider=provider, strict=True)
        with telemetry.span(SEARCH, **GOOD) as span:
            telemetry.histogram("cadmetrics_vector_search_duration_seconds").observe(0.003, method="exact")
        data: Any = reader.get_metrics_data()
        points = [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "cadmetrics_vector_search_duration"
            for point in metric.data.data_points
        ]
        trace_ids = {f"{e.trace_id:032x}" for point in points for e in point.exemplars}
        assert trace_ids == {span.trace_id}
    finally:
        meters.shutdown()


def test_an_admitted_attribute_set_does_not_admit_an_equal_value_of_another_type(
    library_contract: Contract,
) -> None:
    telemetry = Telemetry(library_contract, strict=True)
    with telemetry.span(SEARCH, **GOOD):  # k=10, queries=1: admitted and kept
        pass
    for wrong, problem in (({"queries": True}, "'queries' must be a int, not True"), ({"k": 10.0}, "'k'")):
        with pytest.raises(LabelError, match=problem), telemetry.span(SEARCH, **{**GOOD, **wrong}):
            pass
