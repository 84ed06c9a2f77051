"""The facade: instruments bound to the contract, label admission, backends, thread safety."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cadmetrics.contract.model import OVERFLOW_VALUE, Contract
from cadmetrics.errors import LabelError, TelemetryError
from cadmetrics.telemetry import OVERFLOW_METRIC, Telemetry
from cadmetrics.telemetry.exercise import exercise
from tests.conftest import ContractWriter, host_contract

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry  # noqa: E402

BLOCKED = "cadmetrics_model_opcode_blocked_total"
DRIFT = "cadmetrics_drift_score"


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    value: float | None = registry.get_sample_value(name, labels)
    return value


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_counter_gauge_and_histogram_reach_the_registry(
    library_contract: Contract, registry: CollectorRegistry
) -> None:
    tel = Telemetry(library_contract, [registry])
    blocked = tel.counter(BLOCKED)
    blocked.inc(reason="dangerous_global", mode="blocklist")
    blocked.inc(2, reason="dangerous_global", mode="blocklist")
    assert sample(registry, BLOCKED, reason="dangerous_global", mode="blocklist") == 3
    with pytest.raises(ValueError, match="only goes up"):
        blocked.inc(-1, reason="dangerous_global", mode="blocklist")

    level = tel.gauge("cadmetrics_model_rollback_level")
    level.set(3)
    level.inc()
    level.dec(2)
    assert sample(registry, "cadmetrics_model_rollback_level") == 2

    search = tel.histogram("cadmetrics_vector_search_duration_seconds")
    search.observe(0.003, method="exact")
    with search.time(method="ann"):
        pass
    assert sample(registry, "cadmetrics_vector_search_duration_seconds_count", method="exact") == 1
    assert (
        sample(registry, "cadmetrics_vector_search_duration_seconds_bucket", method="exact", le="0.005") == 1
    )
    assert sample(registry, "cadmetrics_vector_search_duration_seconds_count", method="ann") == 1


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        (
            {"reason": "bogus", "mode": "blocklist"},
            "label 'reason' value 'bogus' is not admitted: one of dangerous_global",
        ),
        ({"reason": "dangerous_global"}, r"labels must be exactly \(reason, mode\): missing mode"),
        (
            {"reason": "dangerous_global", "mode": "blocklist", "user": "x"},
            r"labels must be exactly \(reason, mode\): unexpected user",
        ),
    ],
)
def test_strict_mode_raises_on_labels_the_contract_does_not_admit(
    library_contract: Contract, registry: CollectorRegistry, labels: dict[str, str], problem: str
) -> None:
    tel = Telemetry(library_contract, [registry], strict=True)
    with pytest.raises(LabelError, match=f"{BLOCKED} \\(.*metrics.yaml:\\d+\\): {problem}"):
        tel.counter(BLOCKED).inc(**labels)
    assert sample(registry, OVERFLOW_METRIC, metric=BLOCKED, label="reason") is None


def test_strict_mode_raises_past_max_values(
    write_contract: ContractWriter, registry: CollectorRegistry
) -> None:
    contract = host_contract(
        write_contract("- {name: myhost_x_total, type: counter, help: h, labels: {user: {max_values: 2}}}")
    )
    counter = Telemetry(contract, [registry], strict=True).counter("myhost_x_total")
    counter.inc(user="a")
    counter.inc(user="b")
    counter.inc(user="a")
    with pytest.raises(LabelError, match="value 'c' is not admitted: at most 2 distinct values"):
        counter.inc(user="c")


def test_production_mode_replaces_and_counts_what_the_contract_does_not_admit(
    library_contract: Contract, registry: CollectorRegistry
) -> None:
    tel = Telemetry(library_contract, [registry], strict=False)
    blocked = tel.counter(BLOCKED)
    blocked.inc(reason="bogus", mode="blocklist")
    blocked.inc(reason="bogus", mode="blocklist")
    blocked.inc(mode="allowlist")  # missing label
    blocked.inc(reason="malformed", mode="allowlist", user="eve")  # unexpected label dropped
    assert sample(registry, BLOCKED, reason=OVERFLOW_VALUE, mode="blocklist") == 2
    assert sample(registry, BLOCKED, reason=OVERFLOW_VALUE, mode="allowlist") == 1
    assert sample(registry, BLOCKED, reason="malformed", mode="allowlist") == 1
    assert sample(registry, OVERFLOW_METRIC, metric=BLOCKED, label="reason") == 3  # every emission
    assert sample(registry, OVERFLOW_METRIC, metric=BLOCKED, label="user") == 1
    assert sample(registry, BLOCKED, reason="bogus", mode="blocklist") is None


def test_open_labels_overflow_past_max_values(
    write_contract: ContractWriter, registry: CollectorRegistry
) -> None:
    contract = host_contract(
        write_contract(
            f"- {{name: myhost_x_total, type: counter, help: h, labels: {{user: {{max_values: 2}}}}}}\n"
            f"- {{name: {OVERFLOW_METRIC.replace('cadmetrics', 'myhost')}, type: counter, help: h}}"
        )
    )
    counter = Telemetry(contract, [registry]).counter("myhost_x_total")
    for user in ("a", "b", "c", "d", "a"):
        counter.inc(user=user)
    assert sample(registry, "myhost_x_total", user="a") == 2
    assert sample(registry, "myhost_x_total", user=OVERFLOW_VALUE) == 2
    assert sample(registry, "myhost_x_total", user="c") is None


def test_label_values_are_strings_like_prometheus_client_makes_them(
    library_contract: Contract, registry: CollectorRegistry
) -> None:
    tel = Telemetry(library_contract, [registry], strict=True)
    tel.histogram(DRIFT).observe(0.1, feature_group=7, statistic="psi")
    assert sample(registry, f"{DRIFT}_count", feature_group="7", statistic="psi") == 1
    with pytest.raises(LabelError):
        tel.histogram(DRIFT).observe(0.1, feature_group=["unhashable"], statistic="bogus")


def test_validated_label_sets_are_cached_per_keyword_order(
    library_contract: Contract, registry: CollectorRegistry
) -> None:
    blocked = Telemetry(library_contract, [registry]).counter(BLOCKED)
    first = blocked.labels(reason="malformed", mode="allowlist")
    assert blocked.labels(reason="malformed", mode="allowlist") is first
    assert blocked.labels(mode="allowlist", reason="malformed") is first  # other order, same series
    blocked.labels(reason="bogus", mode="allowlist")
    assert len(blocked._cache) == 2  # the overflowed set is not cached: each use is counted


def test_concurrent_emission_loses_nothing(library_contract: Contract, registry: CollectorRegistry) -> None:
    tel = Telemetry(library_contract, [registry])
    blocked = tel.counter(BLOCKED)
    reasons = ["dangerous_global", "not_allowlisted", "malformed", "unknown_format"]

    def work(reason: str) -> None:
        for _ in range(5000):
            blocked.inc(reason=reason, mode="allowlist")

    threads = [threading.Thread(target=work, args=(reasons[i % 4],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for reason in reasons:
        assert sample(registry, BLOCKED, reason=reason, mode="allowlist") == 10000


def test_two_telemetries_on_one_registry_fail_clearly(
    library_contract: Contract, registry: CollectorRegistry
) -> None:
    Telemetry(library_contract, [registry])
    with pytest.raises(TelemetryError, match="give each Telemetry its own CollectorRegistry"):
        Telemetry(library_contract, [registry])


def test_the_default_registry_is_used_for_the_prometheus_name(
    write_contract: ContractWriter,
) -> None:
    contract = host_contract(write_contract("- {name: myhost_default_registry_probe, type: gauge, help: h}"))
    tel = Telemetry(contract, ["prometheus"])
    try:
        tel.gauge("myhost_default_registry_probe").set(5)
        assert prometheus_client.REGISTRY.get_sample_value("myhost_default_registry_probe") == 5
    finally:
        for collector in list(prometheus_client.REGISTRY._collector_to_names):
            if "myhost_default_registry_probe" in prometheus_client.REGISTRY._collector_to_names[collector]:
                prometheus_client.REGISTRY.unregister(collector)


def test_the_plugin_fixtures_give_a_strict_telemetry_that_reads_back(
    telemetry: Telemetry, metrics: Any
) -> None:
    blocked = telemetry.counter(BLOCKED)
    with metrics.delta(BLOCKED, mode="allowlist") as delta:
        blocked.inc(reason="malformed", mode="allowlist")
        blocked.inc(reason="not_allowlisted", mode="allowlist")
    assert delta.value == 2
    assert metrics.value(BLOCKED, reason="malformed") == 1
    with pytest.raises(LabelError):
        blocked.inc(reason="bogus", mode="allowlist")


def test_every_declared_metric_emits_through_the_plugin_fixture(telemetry: Telemetry, metrics: Any) -> None:
    """The session's own end-of-run verification then covers every metric of the contract."""
    assert exercise(telemetry) == len(telemetry.contract)
    for spec in telemetry.contract:
        assert metrics.value(spec.name) >= 1


def test_none_is_refused_in_strict_mode_and_counted_in_production(
    library_contract: Contract, registry: CollectorRegistry
) -> None:
    with pytest.raises(LabelError, match="label 'reason' is None"):
        Telemetry(library_contract, ["noop"], strict=True).counter(BLOCKED).inc(reason=None, mode="blocklist")
    blocked = Telemetry(library_contract, [registry]).counter(BLOCKED)
    blocked.inc(reason=None, mode="blocklist")
    blocked.inc(reason=None, mode="blocklist")
    assert sample(registry, BLOCKED, reason=OVERFLOW_VALUE, mode="blocklist") == 2
    assert sample(registry, OVERFLOW_METRIC, metric=BLOCKED, label="reason") == 2


def test_refused_label_sets_take_no_open_slot(write_contract: ContractWriter) -> None:
    contract = host_contract(
        write_contract(
            "- {name: myhost_x_total, type: counter, help: h,"
            " labels: {tenant: {max_values: 2}, queue: {values: [fast]}}}"
        )
    )
    counter = Telemetry(contract, ["noop"], strict=True).counter("myhost_x_total")
    for tenant in ("t1", "t2"):
        with pytest.raises(LabelError):
            counter.inc(tenant=tenant, queue="typo")
    counter.inc(tenant="t3", queue="fast")
    counter.inc(tenant="t4", queue="fast")


def test_equal_but_differently_typed_values_are_judged_alike(write_contract: ContractWriter) -> None:
    contract = host_contract(
        write_contract(
            "- {name: myhost_x_total, type: counter, help: h, labels: {shard: {values: ['1', '2']}}}"
        )
    )
    counter = Telemetry(contract, ["noop"], strict=True).counter("myhost_x_total")
    counter.inc(shard=1)  # str(1) == "1": admitted
    for value in (1.0, True):  # equal to 1 as dict keys, but "1.0" and "True" as labels
        with pytest.raises(LabelError):
            counter.inc(shard=value)


def test_racing_threads_never_admit_more_than_max_values(library_contract: Contract) -> None:
    drift = Telemetry(library_contract, [CollectorRegistry()]).histogram(DRIFT)
    barrier = threading.Barrier(8)

    def work(offset: int) -> None:
        barrier.wait()
        for i in range(100):
            drift.observe(0.1, feature_group=f"g{offset}-{i}", statistic="psi")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cap = library_contract.require(DRIFT).labels[0].max_values
    assert len(drift._admission._seen["feature_group"]) == cap
