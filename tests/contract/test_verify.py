"""Verification catches each kind of disagreement, from exposition text and from OTel data."""

from __future__ import annotations

import pytest

from cadmetrics.contract.model import Contract
from cadmetrics.contract.observed import from_exposition, from_otel
from cadmetrics.contract.verify import Kind, verify
from cadmetrics.errors import InputError
from tests.conftest import ContractWriter, host_contract

pytest.importorskip("prometheus_client")

HOST = """
- name: myhost_requests_total
  type: counter
  help: Requests.
  labels:
    route: {values: [a, b]}
- name: myhost_tenants
  type: gauge
  help: Tenants.
  multiprocess_mode: all
  labels:
    tenant: {max_values: 2}
- name: myhost_queue
  type: gauge
  help: Queue.
  multiprocess_mode: max
- name: myhost_latency_seconds
  type: histogram
  unit: seconds
  help: Latency.
  buckets: [0.1, 1]
"""

CLEAN = """\
# TYPE myhost_requests_total counter
myhost_requests_total{route="a"} 3
myhost_requests_total{route="__overflow__"} 1
# TYPE myhost_tenants gauge
myhost_tenants{tenant="t1"} 1
myhost_tenants{tenant="t2"} 1
# TYPE myhost_queue gauge
myhost_queue 4
# TYPE myhost_latency_seconds histogram
myhost_latency_seconds_bucket{le="0.1"} 1
myhost_latency_seconds_bucket{le="1.0"} 2
myhost_latency_seconds_bucket{le="+Inf"} 2
myhost_latency_seconds_count 2
myhost_latency_seconds_sum 0.6
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5
"""


@pytest.fixture
def contract(write_contract: ContractWriter) -> Contract:
    return host_contract(write_contract(HOST))


def kinds(text: str, contract: Contract, require_all: bool = False) -> list[Kind]:
    report = verify(from_exposition(text, "test"), contract, require_all=require_all)
    return [v.kind for v in report.errors]


def test_a_clean_exposition_passes_and_ignores_foreign_families(contract: Contract) -> None:
    report = verify(from_exposition(CLEAN, "test"), contract, require_all=True)
    assert report.ok, report.render()
    assert report.foreign == 1
    assert set(report.checked) == {spec.name for spec in contract}


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (
            "# TYPE process_cpu",
            "# TYPE myhost_rogue_total counter\nmyhost_rogue_total 1\n# TYPE process_cpu",
            Kind.UNDECLARED,
        ),
        ("# TYPE myhost_queue gauge", "# TYPE myhost_queue counter", Kind.TYPE),
        (
            'myhost_requests_total{route="a"} 3',
            'myhost_requests_total{route="a",extra="x"} 3',
            Kind.LABELS,
        ),
        ("myhost_queue 4", 'myhost_queue{shard="1"} 4', Kind.LABELS),
        (
            'myhost_requests_total{route="a"} 3',
            'myhost_requests_total{route="c"} 3',
            Kind.LABEL_VALUE,
        ),
        (
            'myhost_tenants{tenant="t2"} 1',
            'myhost_tenants{tenant="t2"} 1\nmyhost_tenants{tenant="t3"} 1',
            Kind.CARDINALITY,
        ),
        ('le="1.0"', 'le="2.0"', Kind.BUCKETS),
    ],
)
def test_each_kind_of_violation_is_found(contract: Contract, old: str, new: str, kind: Kind) -> None:
    assert old in CLEAN
    found = kinds(CLEAN.replace(old, new, 1), contract)
    assert found == [kind]


def test_absent_metrics_are_warnings_unless_required(contract: Contract) -> None:
    text = "# TYPE myhost_queue gauge\nmyhost_queue 4\n"
    report = verify(from_exposition(text, "test"), contract)
    assert report.ok
    assert {v.metric for v in report.violations if v.kind is Kind.ABSENT} == {
        "myhost_requests_total",
        "myhost_tenants",
        "myhost_latency_seconds",
    }
    assert kinds(text, contract, require_all=True) == [Kind.ABSENT] * 3


def test_multiprocess_pid_label_is_tolerated_only_where_prometheus_client_adds_it(
    contract: Contract,
) -> None:
    tenants = CLEAN.replace('tenant="t1"', 'tenant="t1",pid="41"').replace(
        'tenant="t2"', 'tenant="t2",pid="42"'
    )
    assert kinds(tenants, contract) == []
    stray = CLEAN.replace('tenant="t1"', 'tenant="t1",pid="41"')  # not multiprocess output
    assert kinds(stray, contract) == [Kind.LABELS]
    queue = CLEAN.replace("myhost_queue 4", 'myhost_queue{pid="41"} 4')
    assert kinds(queue, contract) == [Kind.LABELS]  # mode max aggregates; no pid expected


def test_openmetrics_units_are_checked(contract: Contract) -> None:
    text = (
        "# TYPE myhost_latency_seconds histogram\n# UNIT myhost_latency_seconds seconds\n"
        'myhost_latency_seconds_bucket{le="0.1"} 0\nmyhost_latency_seconds_bucket{le="1.0"} 0\n'
        'myhost_latency_seconds_bucket{le="+Inf"} 0\nmyhost_latency_seconds_count 0\n'
        "myhost_latency_seconds_sum 0\n# EOF\n"
    )
    assert kinds(text, contract) == []
    # the OpenMetrics parser insists that a unit be the name's suffix, so a family whose
    # unit disagrees with the contract is also a family the contract does not declare
    wrong = text.replace("myhost_latency_seconds", "myhost_latency_bytes").replace(
        "UNIT myhost_latency_bytes seconds", "UNIT myhost_latency_bytes bytes"
    )
    assert kinds(wrong, contract) == [Kind.UNDECLARED]


def test_text_that_is_not_an_exposition_is_an_input_error(contract: Contract) -> None:
    with pytest.raises(InputError, match="test: not valid Prometheus exposition text"):
        from_exposition("this is {not metrics\n", "test")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('# TYPE a counter\na_total{x="1"} 1\na_total{x="2"} 2\nthis is not valid\n', 4),
        ('# TYPE a counter\na_total{x="1} 1\na_total 2\n', 2),
        ('# TYPE a counter\na_total 1\na_total{x="1"} zz\n# EOF\n', 3),  # OpenMetrics
    ],
)
def test_the_line_that_does_not_parse_is_named(text: str, line: int) -> None:
    with pytest.raises(InputError, match=rf"^scrape: not valid Prometheus exposition text: line {line} \("):
        from_exposition(text, "scrape")


def test_otel_data_is_checked_for_names_units_attributes_and_bounds(contract: Contract) -> None:
    pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("host")
    meter.create_counter("myhost_requests").add(1, {"route": "a"})
    meter.create_histogram(
        "myhost_latency", unit="ms", explicit_bucket_boundaries_advisory=[100.0, 1000.0]
    ).record(5, {})
    meter.create_gauge("myhost_queue").set(1, {"shard": "x"})
    meter.create_counter("myhost_rogue").add(1)
    report = verify(from_otel(reader.get_metrics_data(), contract), contract)
    found = {(v.kind, v.metric) for v in report.errors}
    assert found == {
        (Kind.UNIT, "myhost_latency_seconds"),  # the declared instrument name, in ms
        (Kind.BUCKETS, "myhost_latency_seconds"),
        (Kind.LABELS, "myhost_queue"),
        (Kind.UNDECLARED, "myhost_rogue_total"),
    }
    assert "myhost_requests_total" in report.checked


def test_otel_unit_and_bucket_mismatches_under_the_declared_name(contract: Contract) -> None:
    pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("host")
    meter.create_histogram("myhost_latency", unit="s", explicit_bucket_boundaries_advisory=[0.5]).record(0.2)
    meter.create_gauge("myhost_queue", unit="By").set(1)
    report = verify(from_otel(reader.get_metrics_data(), contract), contract)
    assert {(v.kind, v.metric) for v in report.errors} == {
        (Kind.BUCKETS, "myhost_latency_seconds"),
        (Kind.UNIT, "myhost_queue"),
    }


def test_prometheus_client_text_with_created_series_passes(library_contract: Contract) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from cadmetrics.telemetry import Telemetry
    from cadmetrics.telemetry.exercise import exercise

    registry = CollectorRegistry()
    exercise(Telemetry(library_contract, [registry], strict=True))
    text = generate_latest(registry).decode()
    assert "cadmetrics_model_rollbacks_created" in text  # the separate gauge families
    report = verify(from_exposition(text, "text"), library_contract, require_all=True)
    assert report.ok, report.render()
    rogue = text + "# TYPE cadmetrics_unknown_created gauge\ncadmetrics_unknown_created 1\n"
    assert [v.metric for v in verify(from_exposition(rogue, "text"), library_contract).errors] == [
        "cadmetrics_unknown_created"
    ]


def test_pre_created_zero_series_do_not_count_as_emitted(contract: Contract) -> None:
    text = (
        "# TYPE myhost_latency_seconds histogram\n"
        'myhost_latency_seconds_bucket{le="0.1"} 0\nmyhost_latency_seconds_bucket{le="1.0"} 0\n'
        'myhost_latency_seconds_bucket{le="+Inf"} 0\nmyhost_latency_seconds_count 0\n'
        "myhost_latency_seconds_sum 0\n"
        '# TYPE myhost_requests_total counter\nmyhost_requests_total{route="a"} 0\n'
    )
    report = verify(from_exposition(text, "test"), contract, require_all=True)
    assert {v.metric for v in report.errors} == {
        "myhost_latency_seconds",
        "myhost_requests_total",
        "myhost_tenants",
        "myhost_queue",
    }


def test_a_declared_pid_label_is_an_ordinary_label(write_contract: ContractWriter) -> None:
    declared = host_contract(
        write_contract("- {name: myhost_worker_up, type: gauge, help: h, labels: {pid: {max_values: 8}}}")
    )
    text = '# TYPE myhost_worker_up gauge\nmyhost_worker_up{pid="7"} 1\n'
    assert kinds(text, declared) == []


def test_a_classic_counter_written_without_total_is_reported_under_its_stored_name(
    contract: Contract,
) -> None:
    text = CLEAN.replace("myhost_requests_total", "myhost_requests")
    report = verify(from_exposition(text, "test"), contract)
    assert [(v.kind, v.metric) for v in report.errors] == [(Kind.UNDECLARED, "myhost_requests")]


def test_a_bucket_bound_that_is_not_a_number_is_a_violation(contract: Contract) -> None:
    text = CLEAN.replace('le="1.0"', 'le="abc"')
    assert kinds(text, contract) == [Kind.BUCKETS]


def test_undeclared_otel_instruments_get_the_exporters_name(contract: Contract) -> None:
    pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

    reader = InMemoryMetricReader()
    view = View(instrument_name="myhost_latency", aggregation=ExponentialBucketHistogramAggregation())
    meter = MeterProvider(metric_readers=[reader], views=[view]).get_meter("host")
    meter.create_counter("myhost.rogue").add(1)
    meter.create_histogram("myhost.wait", unit="ms").record(3)
    meter.create_histogram("myhost_latency", unit="s").record(0.2)
    report = verify(from_otel(reader.get_metrics_data(), contract), contract)
    assert {(v.kind, v.metric) for v in report.errors} == {
        (Kind.UNDECLARED, "myhost_rogue_total"),
        (Kind.UNDECLARED, "myhost_wait_milliseconds"),
        (Kind.TYPE, "myhost_latency_seconds"),  # exponential buckets: not the declared histogram
    }


def test_an_openmetrics_unit_other_than_the_declared_one_is_reported(write_contract: ContractWriter) -> None:
    # only a contract that breaks lint rule CM005 can get here: the name says seconds, the
    # declaration says none; loading it unchecked shows that verification still notices
    unchecked = host_contract(write_contract("- {name: myhost_wait_seconds, type: gauge, help: h}"))
    text = (
        "# TYPE myhost_wait_seconds gauge\n# UNIT myhost_wait_seconds seconds\nmyhost_wait_seconds 1\n# EOF\n"
    )
    assert kinds(text, unchecked) == [Kind.UNIT]


def test_one_name_exported_with_two_label_sets_is_named_as_a_double_definition(contract: Contract) -> None:
    text = CLEAN.replace(
        'myhost_requests_total{route="__overflow__"} 1',
        'myhost_requests_total{route="__overflow__"} 1\nmyhost_requests_total{model="m"} 1',
    )
    [violation] = verify(from_exposition(text), contract).errors
    assert violation.kind is Kind.LABELS
    assert "exported with 2 label sets (route), (model)" in violation.message


def test_exemplars_are_accepted_with_trace_ids_only(contract: Contract) -> None:
    def openmetrics(exemplar: str) -> str:
        return (
            "# TYPE myhost_latency_seconds histogram\n"
            f'myhost_latency_seconds_bucket{{le="0.1"}} 1 # {exemplar} 0.05\n'
            'myhost_latency_seconds_bucket{le="1.0"} 1\nmyhost_latency_seconds_bucket{le="+Inf"} 1\n'
            "myhost_latency_seconds_count 1\nmyhost_latency_seconds_sum 0.05\n# EOF\n"
        )

    good = openmetrics('{trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"}')
    assert verify(from_exposition(good), contract).errors == ()
    bad = openmetrics('{trace_id="0af7651916cd43dd8448eb211c80319c",user="alice"}')
    [violation] = verify(from_exposition(bad), contract).errors
    assert violation.kind is Kind.EXEMPLAR and "(trace_id, user)" in violation.message
