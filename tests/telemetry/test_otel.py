"""OpenTelemetry: instrument names round-trip through the Prometheus exporter to exactly the
contract's names, with the contract's units, attributes and bucket boundaries."""

from __future__ import annotations

from typing import Any

import pytest

from cadmetrics.contract.model import Contract, MetricType
from cadmetrics.contract.naming import otel_name
from cadmetrics.contract.observed import from_otel, from_registry
from cadmetrics.contract.verify import verify
from cadmetrics.telemetry import Telemetry
from cadmetrics.telemetry.exercise import exercise

pytest.importorskip("opentelemetry.sdk.metrics")
pytest.importorskip("opentelemetry.exporter.prometheus")
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from cadmetrics.telemetry.otel import meter_provider, prometheus_reader


def series(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in registry.collect()
        if family.name != "target"
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


@pytest.mark.parametrize("with_views", [True, False], ids=["views", "advisory-only"])
def test_names_round_trip_through_the_prometheus_exporter(
    library_contract: Contract, with_views: bool
) -> None:
    exporter_registry = CollectorRegistry()
    reader = InMemoryMetricReader()
    readers = [reader, prometheus_reader(exporter_registry)]
    provider = (
        meter_provider(library_contract, readers) if with_views else MeterProvider(metric_readers=readers)
    )
    direct_registry = CollectorRegistry()
    exercise(Telemetry(library_contract, [provider, direct_registry], strict=True))

    families = {f.name for f in from_registry(exporter_registry).families} - {
        "target_info"
    }  # the resource, stored as a gauge
    assert families == {spec.name for spec in library_contract}
    # the exporter's series are the prometheus backend's, sample for sample
    assert series(exporter_registry) == series(direct_registry)
    report = verify(from_registry(exporter_registry, "exporter"), library_contract, require_all=True)
    assert report.ok, report.render()

    otel_report = verify(
        from_otel(reader.get_metrics_data(), library_contract), library_contract, require_all=True
    )
    assert otel_report.ok, otel_report.render()


def test_otel_data_carries_the_contract_units_and_bounds(library_contract: Contract) -> None:
    reader = InMemoryMetricReader()
    exercise(Telemetry(library_contract, [meter_provider(library_contract, [reader])]))
    data: Any = reader.get_metrics_data()
    metrics: dict[str, Any] = {
        metric.name: metric
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    duration = library_contract.require("cadmetrics_model_load_duration_seconds")
    metric = metrics[otel_name(duration)]
    assert metric.name == "cadmetrics_model_load_duration"
    assert metric.unit == "s"
    [point] = metric.data.data_points
    assert tuple(point.explicit_bounds) == duration.buckets
    assert dict(point.attributes) == {"mode": "audit"}
    counter = metrics["cadmetrics_model_opcode_blocked"]
    assert counter.data.is_monotonic
    for spec in library_contract:
        if spec.type is MetricType.HISTOGRAM:
            [point] = metrics[otel_name(spec)].data.data_points
            assert tuple(point.explicit_bounds) == spec.buckets


def test_otel_gauge_increments_keep_the_running_value(library_contract: Contract) -> None:
    reader = InMemoryMetricReader()
    tel = Telemetry(library_contract, [meter_provider(library_contract, [reader])])
    level = tel.gauge("cadmetrics_model_rollback_level")
    level.set(2)
    level.inc(3)
    level.dec()
    observation = from_otel(reader.get_metrics_data(), library_contract)
    assert observation.value("cadmetrics_model_rollback_level") == 4


def test_two_telemetries_on_one_provider_are_refused(library_contract: Contract) -> None:
    from cadmetrics.errors import TelemetryError

    provider = meter_provider(library_contract, [InMemoryMetricReader()])
    Telemetry(library_contract, [provider])
    with pytest.raises(TelemetryError, match="give each Telemetry its own MeterProvider"):
        Telemetry(library_contract, [provider])


def test_a_bound_counter_series_incremented_bare_counts_one(library_contract: Contract) -> None:
    """The drift monitor increments its bound anomaly series with ``inc()``: on an OTel-only
    Telemetry that once raised TypeError (the series needed a value)."""
    reader = InMemoryMetricReader()
    provider = meter_provider(library_contract, [reader])
    try:
        telemetry = Telemetry(library_contract, [provider], strict=True)
        telemetry.counter("cadmetrics_drift_anomalies_total").labels(feature_group="size").inc()
        observation = from_otel(reader.get_metrics_data(), library_contract)
        assert observation.value("cadmetrics_drift_anomalies_total", feature_group="size") == 1
    finally:
        provider.shutdown()
