"""OTLP over HTTP to a receiver on loopback: what crosses the wire carries the contract's names,
units, attributes and bucket boundaries, the verifier catches what the contract does not admit,
and OTLP and OpenTelemetry's Prometheus exporter, fed the same emissions, show the same series."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from cadmetrics.contract.model import Contract, MetricType
from cadmetrics.contract.naming import otel_name, prometheus_name_for_otel
from cadmetrics.contract.observed import from_otlp
from cadmetrics.contract.verify import Kind, verify
from cadmetrics.errors import InputError, TelemetryError
from cadmetrics.telemetry import Telemetry
from cadmetrics.telemetry.exercise import exercise

pytest.importorskip("opentelemetry.sdk.metrics")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.metric_exporter")
pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2")
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics import MeterProvider

from cadmetrics.telemetry.otel import meter_provider, prometheus_reader
from cadmetrics.telemetry.otlp import metrics_endpoint, otlp_reader
from tests.telemetry.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.usefixtures("loopback_only")

CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA

#: Open-label values (``feature_group`` admits up to 64 distinct ones).
GROUPS = ("normals", "curvature", "bbox")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture
def providers() -> Iterator[list[MeterProvider]]:
    """Providers to shut down after the test (their exporters hold HTTP sessions)."""
    made: list[MeterProvider] = []
    yield made
    for provider in made:
        provider.shutdown()


def emit(tel: Telemetry) -> None:
    """Every declared metric once, then counters with labels, a histogram across its buckets,
    gauges set and incremented, and an open label with several values."""
    exercise(tel)
    blocked = tel.counter("cadmetrics_model_opcode_blocked_total")
    blocked.inc(reason="dangerous_global", mode="blocklist")
    blocked.inc(2, reason="not_allowlisted", mode="allowlist")
    duration = tel.histogram("cadmetrics_feature_extraction_duration_seconds")
    for seconds in (0.0005, 0.02, 0.3, 45.0):
        duration.observe(seconds, version="v4", format="stl")
    level = tel.gauge("cadmetrics_model_rollback_level")
    level.set(2)
    level.inc()
    tel.gauge("cadmetrics_feature_cache_recommended_capacity_bytes").set(1 << 20)
    score = tel.histogram("cadmetrics_drift_score")
    anomalies = tel.counter("cadmetrics_drift_anomalies_total")
    for group in GROUPS:
        score.observe(0.12, feature_group=group, statistic="psi")
        anomalies.inc(feature_group=group)


def metrics_of(request: ExportMetricsServiceRequest) -> dict[str, Any]:
    return {
        metric.name: metric
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }


@pytest.mark.parametrize("compression", [None, "gzip", "deflate"])
def test_exported_metrics_verify_against_the_contract(
    library_contract: Contract,
    receiver: OtlpReceiver,
    providers: list[MeterProvider],
    monkeypatch: pytest.MonkeyPatch,
    compression: Any,
) -> None:
    # the contract's counters and histograms are Prometheus ones: a host's delta preference
    # must not turn them into delta sums
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    reader = otlp_reader(receiver.endpoint, interval_seconds=math.inf, compression=compression)
    provider = meter_provider(library_contract, [reader])
    providers.append(provider)
    emit(Telemetry(library_contract, [provider], strict=True))

    assert provider.force_flush(timeout_millis=5_000)
    assert receiver.wait_for(1), receiver.rejected
    assert receiver.rejected == []
    assert receiver.encodings[-1] == (compression or "")

    report = verify(from_otlp(receiver.latest, library_contract), library_contract, require_all=True)
    assert report.ok, report.render()
    assert report.violations == ()
    assert set(report.checked) == {spec.name for spec in library_contract}

    # what crossed the wire, field by field
    metrics = metrics_of(receiver.latest)
    assert set(metrics) == {otel_name(spec) for spec in library_contract}
    for spec in library_contract:
        metric = metrics[otel_name(spec)]
        assert metric.unit == spec.unit.ucum, spec.name
        if spec.type is MetricType.COUNTER:
            assert metric.WhichOneof("data") == "sum"
            assert metric.sum.is_monotonic
            assert metric.sum.aggregation_temporality == CUMULATIVE
        elif spec.type is MetricType.GAUGE:
            assert metric.WhichOneof("data") == "gauge"
        else:
            assert metric.WhichOneof("data") == "histogram"
            assert metric.histogram.aggregation_temporality == CUMULATIVE
            for point in metric.histogram.data_points:
                assert tuple(point.explicit_bounds) == spec.buckets, spec.name
        for point in getattr(metric, metric.WhichOneof("data")).data_points:
            assert {kv.key for kv in point.attributes} == set(spec.label_names), spec.name

    observed = from_otlp(receiver.latest, library_contract)
    assert observed.value("cadmetrics_model_opcode_blocked_total", mode="allowlist") == 2
    assert observed.value("cadmetrics_model_rollback_level") == 3
    assert observed.value("cadmetrics_feature_extraction_duration_seconds", format="stl") == 5
    assert observed.value("cadmetrics_feature_extraction_duration_seconds_bucket", le="+Inf") == 5
    assert observed.value("cadmetrics_feature_extraction_duration_seconds_bucket", le="30.0") == 4
    assert observed.value("cadmetrics_drift_anomalies_total", feature_group="curvature") == 1


def test_the_reader_exports_on_its_own_to_a_base_url(
    library_contract: Contract, receiver: OtlpReceiver, providers: list[MeterProvider]
) -> None:
    base = f"http://127.0.0.1:{receiver.port}"
    assert metrics_endpoint(base) == receiver.endpoint
    provider = meter_provider(library_contract, [otlp_reader(base, interval_seconds=0.05)])
    providers.append(provider)
    Telemetry(library_contract, [provider]).counter("cadmetrics_model_reloads_total").inc(result="success")

    assert receiver.wait_for(1, timeout=4), "no periodic export arrived"
    observed = from_otlp(receiver.latest, library_contract)
    assert observed.value("cadmetrics_model_reloads_total", result="success") == 1


def test_reader_arguments_are_checked() -> None:
    assert metrics_endpoint("https://collector:4318/") == "https://collector:4318/v1/metrics"
    assert (
        metrics_endpoint("http://collector:4318/otlp/v1/metrics") == "http://collector:4318/otlp/v1/metrics"
    )
    with pytest.raises(TelemetryError, match="not an http"):
        otlp_reader("collector:4318")
    with pytest.raises(TelemetryError, match="interval"):
        otlp_reader("http://127.0.0.1:9/v1/metrics", interval_seconds=0)
    with pytest.raises(TelemetryError, match="timeout"):
        otlp_reader("http://127.0.0.1:9/v1/metrics", timeout_seconds=math.inf)


def test_the_verifier_catches_what_the_contract_does_not_admit(
    library_contract: Contract, receiver: OtlpReceiver, providers: list[MeterProvider]
) -> None:
    # instruments made by hand on a provider without the contract's views: each one breaks
    # one rule, and each break must be reported against its metric
    provider = MeterProvider(metric_readers=[otlp_reader(receiver.endpoint, interval_seconds=math.inf)])
    providers.append(provider)
    meter = provider.get_meter("host")
    meter.create_histogram("cadmetrics_feature_extraction_duration", unit="s").record(
        0.02, {"version": "v4", "format": "stl"}
    )  # the SDK's default buckets
    load = library_contract.require("cadmetrics_model_load_duration_seconds")
    meter.create_histogram(
        "cadmetrics_model_load_duration",
        unit="ms",
        explicit_bucket_boundaries_advisory=list(load.buckets or ()),
    ).record(20, {"mode": "audit"})
    meter.create_counter("cadmetrics_model_opcode_blocked").add(
        1, {"reason": "malformed", "mode": "blocklist", "host": "a"}
    )
    meter.create_counter("cadmetrics_model_opcode_scans").add(1, {"mode": "audit", "result": "maybe"})
    meter.create_counter("cadmetrics_model_rollback_level").add(1)
    meter.create_counter("cadmetrics_bogus_things").add(1)
    meter.create_counter("hostapp_requests").add(1)  # outside the contract's namespaces
    assert provider.force_flush(timeout_millis=5_000)
    assert receiver.wait_for(1), receiver.rejected

    report = verify(from_otlp(receiver.latest, library_contract), library_contract)
    assert not report.ok
    assert {(v.kind, v.metric) for v in report.errors} == {
        (Kind.BUCKETS, "cadmetrics_feature_extraction_duration_seconds"),
        (Kind.UNIT, "cadmetrics_model_load_duration_seconds"),
        (Kind.LABELS, "cadmetrics_model_opcode_blocked_total"),
        (Kind.LABEL_VALUE, "cadmetrics_model_opcode_scans_total"),
        (Kind.TYPE, "cadmetrics_model_rollback_level"),
        (Kind.UNDECLARED, "cadmetrics_bogus_things_total"),
    }, report.render()
    assert report.foreign == 1
    assert "'ms', declared 's'" in report.render()


def _attributes(**values: str) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()]


def _request(*metrics: metrics_pb2.Metric) -> ExportMetricsServiceRequest:
    scope = metrics_pb2.ScopeMetrics(metrics=list(metrics))
    return ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(scope_metrics=[scope])])


@pytest.mark.parametrize("bad_first", [False, True], ids=["bad-last", "bad-first"])
def test_a_hand_built_payload_is_read_and_judged_like_an_exported_one(
    library_contract: Contract, bad_first: bool
) -> None:
    load = library_contract.require("cadmetrics_model_load_duration_seconds")
    declared = list(load.buckets or ())
    good_point = metrics_pb2.HistogramDataPoint(
        attributes=_attributes(mode="audit"),
        count=1,
        sum=0.02,
        explicit_bounds=declared,
        bucket_counts=[0, 0, 0, 1] + [0] * (len(declared) - 3),
    )
    # a second series with other bounds: one wrong point is reported wherever it comes
    bad_point = metrics_pb2.HistogramDataPoint(
        attributes=_attributes(mode="blocklist"),
        count=1,
        sum=0.5,
        explicit_bounds=[1.0],
        bucket_counts=[1, 0],
    )
    request = _request(
        metrics_pb2.Metric(
            name="cadmetrics_model_load_duration",
            unit="s",
            histogram=metrics_pb2.Histogram(
                data_points=[bad_point, good_point] if bad_first else [good_point, bad_point],
                aggregation_temporality=CUMULATIVE,
            ),
        ),
        metrics_pb2.Metric(
            name="cadmetrics_model_opcode_blocked",
            sum=metrics_pb2.Sum(
                data_points=[
                    metrics_pb2.NumberDataPoint(
                        attributes=_attributes(reason="malformed", mode="blocklist"), as_int=4
                    )
                ],
                is_monotonic=True,
                aggregation_temporality=DELTA,
            ),
        ),
        metrics_pb2.Metric(
            name="cadmetrics_model_reloads",
            sum=metrics_pb2.Sum(
                data_points=[metrics_pb2.NumberDataPoint(attributes=_attributes(result="success"), as_int=3)],
                is_monotonic=True,
                aggregation_temporality=CUMULATIVE,
            ),
        ),
        metrics_pb2.Metric(
            name="cadmetrics_vector_search_duration",
            unit="s",
            summary=metrics_pb2.Summary(
                data_points=[
                    metrics_pb2.SummaryDataPoint(attributes=_attributes(method="ann"), count=2, sum=0.1)
                ]
            ),
        ),
        metrics_pb2.Metric(
            name="cadmetrics_model_rollback_level",
            gauge=metrics_pb2.Gauge(data_points=[metrics_pb2.NumberDataPoint(as_double=1.5)]),
        ),
    )

    observed = from_otlp(request, library_contract, "hand-built")
    assert from_otlp(request.SerializeToString(), library_contract, "hand-built") == observed
    assert observed.value("cadmetrics_model_reloads_total", result="success") == 3
    assert observed.value("cadmetrics_model_rollback_level") == 1.5
    assert observed.value("cadmetrics_model_load_duration_seconds_bucket", mode="audit", le="0.05") == 1

    report = verify(observed, library_contract)
    assert {(v.kind, v.metric) for v in report.errors} == {
        (Kind.BUCKETS, "cadmetrics_model_load_duration_seconds"),
        (Kind.TYPE, "cadmetrics_model_opcode_blocked_total"),
        (Kind.TYPE, "cadmetrics_vector_search_duration_seconds"),
    }, report.render()
    rendered = report.render()
    assert "counter (delta temporality), declared as counter" in rendered
    assert "exported as summary" in rendered
    assert "buckets [1] differ" in rendered


def test_an_undecodable_payload_is_named(library_contract: Contract) -> None:
    with pytest.raises(InputError, match="received: not an OTLP ExportMetricsServiceRequest"):
        from_otlp(b"\xff\xff\xff", library_contract, "received")


def test_otlp_and_the_prometheus_exporter_show_the_same_series(
    library_contract: Contract, receiver: OtlpReceiver, providers: list[MeterProvider]
) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    reader = otlp_reader(receiver.endpoint, interval_seconds=math.inf)
    provider = meter_provider(library_contract, [reader, prometheus_reader(registry)])
    providers.append(provider)
    emit(Telemetry(library_contract, [provider], strict=True))
    assert provider.force_flush(timeout_millis=5_000)
    assert receiver.wait_for(1), receiver.rejected

    # OTLP side, through the OTel -> Prometheus name translation alone (no contract lookup)
    otlp_series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    otlp_bounds: dict[str, tuple[float, ...]] = {}
    for metric in metrics_of(receiver.latest).values():
        field = metric.WhichOneof("data")
        monotonic = field == "sum" and metric.sum.is_monotonic
        name = prometheus_name_for_otel(metric.name, metric.unit, monotonic)
        for point in getattr(metric, field).data_points:
            labels = tuple(sorted((kv.key, kv.value.string_value) for kv in point.attributes))
            otlp_series.add((name, labels))
            if field == "histogram":
                otlp_bounds[name] = tuple(point.explicit_bounds)

    # Prometheus exporter side: one series per counter/gauge sample or histogram ``_count``
    prometheus_series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    prometheus_bounds: dict[str, tuple[float, ...]] = {}
    for family in registry.collect():
        if family.name == "target":  # target_info: the resource, not a metric
            continue
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            if family.type == "histogram":
                if sample.name == family.name + "_count":
                    prometheus_series.add((family.name, labels))
                elif sample.name == family.name + "_bucket" and sample.labels["le"] != "+Inf":
                    bounds = prometheus_bounds.setdefault(family.name, ())
                    if float(sample.labels["le"]) not in bounds:
                        prometheus_bounds[family.name] = (*bounds, float(sample.labels["le"]))
            elif not sample.name.endswith("_created"):
                prometheus_series.add((sample.name, labels))

    assert otlp_series == prometheus_series
    assert {name for name, _ in otlp_series} == {spec.name for spec in library_contract}
    assert otlp_bounds == prometheus_bounds
    assert {name: tuple(library_contract.require(name).buckets or ()) for name in otlp_bounds} == otlp_bounds
