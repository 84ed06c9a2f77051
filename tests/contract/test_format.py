"""The format's ways for an application that already has metrics: several namespaces in one
file, open labels with a default cap, names another library provides, and one name defined
twice with different labels, found at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.lint import DUPLICATE, NAME_NAMESPACE, lint
from cadmetrics.contract.model import DEFAULT_OPEN_LABEL_CAP
from cadmetrics.errors import ContractCollisionError, ContractError, ContractLoadError
from cadmetrics.telemetry.facade import Telemetry
from tests.conftest import host_contract


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_one_file_declares_metrics_under_several_namespaces(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "platform.yaml",
        "namespaces: [billing, search, search_index]\nversion: 1.0.0\nmetrics:\n"
        "  - {name: billing_invoices_total, type: counter, help: h}\n"
        "  - {name: search_queries_total, type: counter, help: h}\n"
        "  - {name: search_index_segments, type: gauge, help: h}\n",
    )
    contract = host_contract(path)
    assert contract.namespaces == ("billing", "search", "search_index")
    assert [spec.namespace for spec in contract] == ["billing", "search", "search_index"]
    assert lint(contract) == []
    assert contract.owns("billing_anything") and not contract.owns("other_x")


def test_a_name_outside_every_namespace_of_its_file_names_them_all(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "platform.yaml",
        "namespaces: [billing, search]\nversion: 1.0.0\nmetrics:\n"
        "  - {name: orders_total, type: counter, help: h}\n",
    )
    [finding] = lint(host_contract(path))
    assert finding.rule is NAME_NAMESPACE
    assert "'billing_' or 'search_'" in finding.message and "provided_by" in finding.message


@pytest.mark.parametrize(
    ("top", "problem"),
    [
        ("namespaces: []\n", "lists no namespace"),
        ("namespaces: [a, a]\n", "listed twice"),
        ("namespaces: [a, Bad]\n", "must match"),
        ("namespace: a\nnamespaces: [b]\n", "exactly one of"),
        ("", "exactly one of"),
    ],
)
def test_bad_namespace_lists_are_refused_with_their_line(tmp_path: Path, top: str, problem: str) -> None:
    path = _write(tmp_path / "c.yaml", f"{top}version: 1.0.0\nmetrics: []\n")
    with pytest.raises(ContractLoadError, match=problem):
        host_contract(path)


def test_an_open_label_admits_any_value_up_to_the_default_cap(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.yaml",
        "namespace: app\nversion: 1.0.0\nmetrics:\n"
        "  - name: app_jobs_total\n    type: counter\n    help: h\n"
        "    labels:\n      tenant: open\n      queue: {open: true}\n"
        "      shard: {open: true, max_values: 8}\n",
    )
    spec = host_contract(path).require("app_jobs_total")
    caps = {label.name: (label.closed, label.max_values) for label in spec.labels}
    assert caps == {
        "tenant": (False, DEFAULT_OPEN_LABEL_CAP),
        "queue": (False, DEFAULT_OPEN_LABEL_CAP),
        "shard": (False, 8),
    }


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        ("closed", "exactly one of"),
        ("{open: false}", "'open' can only be true"),
        ("{open: true, values: [a]}", "exactly one of"),
    ],
)
def test_a_label_that_is_neither_open_nor_closed_is_refused(tmp_path: Path, label: str, problem: str) -> None:
    path = _write(
        tmp_path / "c.yaml",
        "namespace: app\nversion: 1.0.0\nmetrics:\n"
        f"  - {{name: app_x_total, type: counter, help: h, labels: {{l: {label}}}}}\n",
    )
    with pytest.raises(ContractLoadError, match=problem):
        host_contract(path)


def test_an_open_label_overflows_past_its_cap(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.yaml",
        "namespace: app\nversion: 1.0.0\nmetrics:\n"
        "  - {name: app_jobs_total, type: counter, help: h, labels: {tenant: open}}\n",
    )
    contract = load_contract(path, entry_points=False)
    telemetry = Telemetry(contract, backends=["prometheus"] if _has_prometheus() else [], strict=False)
    counter = telemetry.counter("app_jobs_total")
    for n in range(DEFAULT_OPEN_LABEL_CAP + 5):
        counter.inc(tenant=f"t{n}")
    if _has_prometheus():
        registry = telemetry.backends[0].registry  # type: ignore[attr-defined]
        tenants = {
            sample.labels["tenant"]
            for family in registry.collect()
            if family.name == "app_jobs"
            for sample in family.samples
            if sample.name == "app_jobs_total"
        }
        assert len(tenants) == DEFAULT_OPEN_LABEL_CAP + 1
        assert "__overflow__" in tenants


def _has_prometheus() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


PROCESS_CLAIM = (
    "  - {name: process_cpu_seconds_total, type: counter, unit: seconds, help: CPU time.,"
    " provided_by: prometheus_client}\n"
)


def test_a_name_another_library_provides_is_declared_but_never_created(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.yaml",
        "namespace: app\nversion: 1.0.0\nmetrics:\n" + PROCESS_CLAIM,
    )
    contract = load_contract(path, entry_points=False)  # lint clean: no CM002 for a provided name
    spec = contract.require("process_cpu_seconds_total")
    assert spec.provided_by == "prometheus_client"
    assert spec not in list(contract.emitted_here())
    telemetry = Telemetry(contract, strict=True)
    with pytest.raises(ContractError, match="provided by prometheus_client"):
        telemetry.counter("process_cpu_seconds_total")


def test_two_files_may_claim_one_provided_name_alike(tmp_path: Path) -> None:
    top = "namespace: {ns}\nversion: 1.0.0\nmetrics:\n"
    first = _write(tmp_path / "a.yaml", top.format(ns="a") + PROCESS_CLAIM)
    second = _write(tmp_path / "b.yaml", top.format(ns="b") + PROCESS_CLAIM)
    contract = load_contract(first, second, library=False, entry_points=False)
    assert [spec.name for spec in contract] == ["process_cpu_seconds_total"]


def test_one_name_defined_twice_with_different_labels_is_found_at_load(tmp_path: Path) -> None:
    top = "namespace: app\nversion: 1.0.0\nmetrics:\n"
    first = _write(
        tmp_path / "a.yaml",
        top + "  - {name: app_latency_seconds, type: histogram, unit: seconds, help: h,"
        " labels: {route: open}}\n",
    )
    second = _write(
        tmp_path / "b.yaml",
        top + "  - {name: app_latency_seconds, type: histogram, unit: seconds, help: h,"
        " labels: {model: open}}\n",
    )
    with pytest.raises(ContractCollisionError, match=r"with labels \(route\), here with \(model\)"):
        load_contract(first, second, library=False, entry_points=False)
    declarations = [path.read_text().split("metrics:\n")[1] for path in (first, second)]
    both = _write(tmp_path / "both.yaml", top + "".join(declarations))
    [finding] = lint(host_contract(both))
    assert finding.rule is DUPLICATE
    assert "with labels (route), here with (model)" in finding.message


@pytest.mark.parametrize(
    ("attribute", "problem"),
    [
        ("{type: int, open: true}", "an int attribute is a closed set or any integer"),
        ("{type: float, values: ['1.5']}", "a float attribute takes neither values nor a cap"),
        ("{type: bool, max_values: 2}", "a bool attribute takes neither values nor a cap"),
        ("{type: int, values: ['1', 'two']}", "'two' is not an integer"),
        ("{values: [a], open: true}", "a closed set \\(values\\) cannot also be open"),
        ("{type: string, required: 'yes'}", "required must be true or false"),
        ("{type: list}", "type 'list' is not one of string, int, float, bool"),
    ],
)
def test_span_attributes_that_cannot_be_checked_are_refused_at_load(
    tmp_path: Path, attribute: str, problem: str
) -> None:
    path = _write(
        tmp_path / "c.yaml",
        "namespace: app\nversion: 1.0.0\nmetrics: []\nspans:\n"
        f"  - {{name: app.jobs.run, help: h, attributes: {{a: {attribute}}}}}\n",
    )
    with pytest.raises(ContractLoadError, match=problem) as caught:
        host_contract(path)
    assert caught.value.line == 5


def test_a_span_declares_kind_typed_attributes_and_events(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.yaml",
        "namespace: app\nversion: 1.0.0\nmetrics: []\nspans:\n"
        "  - name: app.jobs.run\n    kind: consumer\n    help: h\n"
        "    attributes:\n      queue: {values: [fast, slow]}\n      tenant: open\n"
        "      attempts: {type: int, values: ['1', '2', '3']}\n      cached: {type: bool, required: false}\n"
        "    events:\n      - {name: retried, attributes: {delay: {type: float}}}\n",
    )
    span = host_contract(path).require_span("app.jobs.run")
    assert span.kind.value == "consumer" and span.namespace == "app"
    described = {a.name: (a.type.value, a.values, a.max_values, a.required) for a in span.attributes}
    assert described == {
        "queue": ("string", ("fast", "slow"), None, True),
        "tenant": ("string", None, DEFAULT_OPEN_LABEL_CAP, True),
        "attempts": ("int", ("1", "2", "3"), None, True),
        "cached": ("bool", None, None, False),
    }
    event = span.event("retried")
    assert event is not None and event.attribute("delay") is not None
