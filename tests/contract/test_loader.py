"""Loading errors name the file, the line and the rule; valid files load into value types."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadmetrics.contract.compose import load_contract, packaged_contract_path
from cadmetrics.contract.loader import DEFAULT_BUCKETS, parse_contract_file, parse_contract_text
from cadmetrics.contract.model import MetricType, Stability, Unit
from cadmetrics.errors import ContractLoadError
from tests.conftest import ContractWriter, host_contract

GOOD = """
- name: myhost_requests_total
  type: counter
  help: Requests served.
  labels:
    route: {values: [a, b]}
    tenant: {max_values: 10}
- name: myhost_latency_seconds
  type: histogram
  unit: seconds
  help: Latency.
"""


def test_a_valid_file_loads_into_value_types(write_contract: ContractWriter) -> None:
    contract = host_contract(write_contract(GOOD))
    counter = contract.require("myhost_requests_total", MetricType.COUNTER)
    assert counter.label_names == ("route", "tenant")
    assert counter.labels[0].values == ("a", "b")
    assert counter.labels[1].max_values == 10
    assert counter.stability is Stability.STABLE
    assert counter.location.line == 4
    latency = contract.require("myhost_latency_seconds")
    assert latency.unit is Unit.SECONDS
    assert latency.buckets == DEFAULT_BUCKETS  # both backends get the same defaults


def test_the_packaged_contract_is_found_and_loads(library_contract: object) -> None:
    assert packaged_contract_path().name == "metrics.yaml"
    contract = load_contract()
    assert contract.namespaces == ("cadmetrics",)
    assert "cadmetrics_model_opcode_blocked_total" in contract


@pytest.mark.parametrize(
    ("text", "line", "rule"),
    [
        ("namespace: a\nversion: 1.0.0\nmetrics: [\n", 4, "yaml-syntax"),
        ("", 0, "required-key"),
        ("namespace: a\nmetrics: []\n", 1, "required-key"),
        ("namespace: a\nversion: one\nmetrics: []\n", 2, "semver"),
        ("namespace: A-b\nversion: 1.0.0\nmetrics: []\n", 1, "namespace-format"),
        ("namespace: a\nversion: 1.0.0\nmetric: []\n", 3, "unknown-key"),
        ("namespace: a\nversion: 1.0.0\nmetrics: {}\n", 3, "schema-type"),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: counter\n",
            4,
            "required-key",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: summary\n    help: h\n",
            5,
            "enum-value",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: gauge\n    help: h\n"
            "    unit: meters\n",
            7,
            "enum-value",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: gauge\n    help: h\n"
            "    helpp: typo\n",
            7,
            "unknown-key",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: gauge\n    help: h\n"
            "    help: again\n",
            7,
            "duplicate-key",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: gauge\n    help: h\n"
            "    labels:\n      l: {values: [x], max_values: 3}\n",
            8,
            "label-spec",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: gauge\n    help: h\n"
            "    labels:\n      l: {}\n",
            8,
            "label-spec",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: gauge\n    help: h\n"
            "    labels:\n      l: {values: [x, x]}\n",
            8,
            "label-spec",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: gauge\n    help: h\n"
            "    labels:\n      l: {max_values: 0}\n",
            8,
            "label-spec",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: histogram\n    help: h\n"
            "    buckets: [0.1, fast]\n",
            7,
            "schema-type",
        ),
        (
            "namespace: a\nversion: 1.0.0\nmetrics:\n  - name: a_x\n    type: gauge\n    help: h\n"
            "    multiprocess_mode: average\n",
            7,
            "enum-value",
        ),
        (
            "namespace: a\nversion: 1.0.0\nextends: [missing.yaml]\nmetrics: []\n",
            3,
            "extends-missing",
        ),
    ],
)
def test_load_errors_name_file_line_and_rule(text: str, line: int, rule: str) -> None:
    with pytest.raises(ContractLoadError) as caught:
        parse_contract_text(text, "/contracts/host.yaml")
    error = caught.value
    assert (error.path, error.line, error.rule) == ("/contracts/host.yaml", line, rule)
    assert str(error).startswith(f"/contracts/host.yaml{':' + str(line) if line else ''}: [{rule}]")


def test_a_missing_file_is_a_load_error_not_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(ContractLoadError, match="no such contract file"):
        parse_contract_file(tmp_path / "absent.yaml")


def test_extension_keys_hold_anchors_shared_by_metrics(write_contract: ContractWriter) -> None:
    path = write_contract(
        """
        - name: myhost_a_total
          type: counter
          help: A.
          labels: {version: *v}
        - name: myhost_b_total
          type: counter
          help: B.
          labels: {version: *v}
        """,
        extra="x-shared:\n  - &v {values: [v1, v2]}\n",
    )
    contract = host_contract(path)
    assert contract.require("myhost_a_total").labels == contract.require("myhost_b_total").labels


def test_extends_cycles_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("namespace: a\nversion: 1.0.0\nextends: [b.yaml]\nmetrics: []\n")
    (tmp_path / "b.yaml").write_text("namespace: b\nversion: 1.0.0\nextends: [a.yaml]\nmetrics: []\n")
    with pytest.raises(ContractLoadError) as caught:
        host_contract(tmp_path / "a.yaml")
    assert caught.value.rule == "extends-cycle"


def test_an_extends_cycle_points_at_the_entry_that_closes_it(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("namespace: a\nversion: 1.0.0\nextends: [b.yaml]\nmetrics: []\n")
    (tmp_path / "b.yaml").write_text("namespace: b\nversion: 1.0.0\nextends:\n  - a.yaml\nmetrics: []\n")
    with pytest.raises(ContractLoadError) as caught:
        host_contract(tmp_path / "a.yaml")
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "b.yaml"), 4)


def test_absurdly_nested_yaml_is_a_load_error() -> None:
    text = "namespace: a\nversion: 1.0.0\nmetrics: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ContractLoadError, match="nested too deeply"):
        parse_contract_text(text, "deep.yaml")
