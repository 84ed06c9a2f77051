"""Every lint rule has a failing example, and the library's own contract passes them all."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cadmetrics.contract import lint as rules
from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.lint import RULES, Rule, Severity, lint
from cadmetrics.contract.model import Contract
from cadmetrics.errors import ContractError
from tests.conftest import ContractWriter, host_contract

FAILING_EXAMPLES: list[tuple[Rule, str]] = [
    (rules.NAME_FORMAT, "- {name: myhost_Bad_total, type: counter, help: h}"),
    (rules.NAME_NAMESPACE, "- {name: other_requests_total, type: counter, help: h}"),
    (rules.COUNTER_TOTAL, "- {name: myhost_requests, type: counter, help: h}"),
    (rules.TOTAL_ONLY_COUNTERS, "- {name: myhost_queue_total, type: gauge, help: h}"),
    (rules.UNIT_SUFFIX, "- {name: myhost_latency, type: histogram, unit: seconds, help: h}"),
    (rules.UNIT_SUFFIX, "- {name: myhost_size_bytes, type: gauge, help: h}"),
    (rules.UNIT_SUFFIX, "- {name: myhost_busy_total, type: counter, unit: seconds, help: h}"),
    (
        rules.LABEL_NAME,
        "- {name: myhost_x_total, type: counter, help: h, labels: {2fa: {max_values: 2}}}",
    ),
    (
        rules.LABEL_RESERVED,
        "- {name: myhost_x_total, type: counter, help: h, labels: {le: {max_values: 2}}}",
    ),
    (
        rules.LABEL_RESERVED,
        "- {name: myhost_x_total, type: counter, help: h, labels: {instance: {max_values: 2}}}",
    ),
    (
        rules.LABEL_RESERVED,
        "- {name: myhost_x_total, type: counter, help: h, labels: {__name: {max_values: 2}}}",
    ),
    (rules.BUCKETS, "- {name: myhost_x, type: histogram, help: h, buckets: [1, 1, 2]}"),
    (rules.BUCKETS, "- {name: myhost_x, type: histogram, help: h, buckets: [1, .inf]}"),
    (rules.BUCKETS, "- {name: myhost_x, type: histogram, help: h, buckets: []}"),
    (rules.BUCKETS_TYPE, "- {name: myhost_x, type: gauge, help: h, buckets: [1, 2]}"),
    (rules.HELP, "- {name: myhost_x, type: gauge, help: '  '}"),
    (
        rules.DUPLICATE,
        "- {name: myhost_x, type: gauge, help: h}\n- {name: myhost_x, type: gauge, help: h}",
    ),
    (rules.DEPRECATED, "- {name: myhost_x, type: gauge, help: h, stability: deprecated}"),
    (
        rules.DEPRECATED,
        "- {name: myhost_x, type: gauge, help: h, stability: deprecated, replaced_by: myhost_y}",
    ),
    (
        rules.MULTIPROCESS,
        "- {name: myhost_x_total, type: counter, help: h, multiprocess_mode: max}",
    ),
    (
        rules.LABEL_VALUES,
        "- {name: myhost_x_total, type: counter, help: h, labels: {l: {values: ['', a]}}}",
    ),
    (
        rules.LABEL_VALUES,
        "- {name: myhost_x_total, type: counter, help: h, labels: {l: {values: [__overflow__]}}}",
    ),
    (
        rules.NAME_COLLISION,
        "- {name: myhost_jobs_total, type: counter, help: h}\n- {name: myhost_jobs, type: gauge, help: h}",
    ),
    (
        rules.NAME_COLLISION,
        "- {name: myhost_up_seconds, type: gauge, unit: seconds, help: h}\n"
        "- {name: myhost_up_bytes, type: gauge, unit: bytes, help: h}",
    ),
    (
        rules.NAME_COLLISION,
        "- {name: myhost_x, type: histogram, help: h}\n- {name: myhost_x_count, type: gauge, help: h}",
    ),
    (rules.NEGATIVE_BUCKETS, "- {name: myhost_x, type: histogram, help: h, buckets: [-1, 0, 1]}"),
    (
        rules.OPEN_LABEL_CAP,
        "- {name: myhost_x_total, type: counter, help: h, labels: {user: {open: true, max_values: 20000}}}",
    ),
]


#: Span rules: (rule, the spans section, the metrics) of a file that breaks only that rule.
SPAN_FAILING_EXAMPLES: list[tuple[Rule, str, str]] = [
    (rules.SPAN_NAME, "- {name: myhost_jobs_run, help: h}", "[]"),
    (rules.SPAN_NAME, "- {name: other.jobs.run, help: h}", "[]"),
    (rules.HELP, "- {name: myhost.jobs.run, help: ''}", "[]"),
    (rules.SPAN_ATTRIBUTES, "- {name: myhost.jobs.run, help: h, attributes: {Queue: open}}", "[]"),
    (rules.SPAN_ATTRIBUTES, "- {name: myhost.jobs.run, help: h, attributes: {q: {values: ['', a]}}}", "[]"),
    (
        rules.SPAN_ATTRIBUTES,
        "- {name: myhost.jobs.run, help: h, events: [{name: retried}, {name: retried}]}",
        "[]",
    ),
    (
        rules.DUPLICATE_SPAN,
        "- {name: myhost.jobs.run, help: h}\n- {name: myhost.jobs.run, help: h}",
        "[]",
    ),
    (
        rules.SPAN_LABEL_CONFLICT,
        "- {name: myhost.jobs.run, help: h, attributes: {queue: {values: [fast, bulk]}}}",
        "[{name: myhost_jobs_total, type: counter, help: h, labels: {queue: {values: [fast, slow]}}}]",
    ),
    (
        rules.SPAN_LABEL_CONFLICT,
        "- {name: myhost.jobs.run, help: h, attributes: {queue: {type: int}}}",
        "[{name: myhost_jobs_total, type: counter, help: h, labels: {queue: {values: [fast, slow]}}}]",
    ),
    (
        rules.SPAN_LABEL_CONFLICT,
        "- {name: myhost.jobs.run, help: h, attributes: {queue: open}}",
        "[{name: myhost_jobs_total, type: counter, help: h, labels: {queue: {values: [fast, slow]}}}]",
    ),
]


@pytest.mark.parametrize(
    ("rule", "spans", "metrics"), SPAN_FAILING_EXAMPLES, ids=lambda x: getattr(x, "name", "")
)
def test_each_span_rule_fails_its_example(tmp_path: Path, rule: Rule, spans: str, metrics: str) -> None:
    path = tmp_path / "host.yaml"
    body = textwrap.indent(spans, "  ")
    path.write_text(
        f"namespace: myhost\nversion: 1.0.0\nmetrics: {metrics}\nspans:\n{body}\n", encoding="utf-8"
    )
    findings = lint(host_contract(path))
    assert [f.rule for f in findings] == [rule], [str(f) for f in findings]
    assert findings[0].location.path == str(path) and findings[0].location.line >= 5


def test_a_span_attribute_agreeing_with_its_label_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "host.yaml"
    path.write_text(
        "namespace: myhost\nversion: 1.0.0\n"
        "metrics: [{name: myhost_jobs_total, type: counter, help: h,"
        " labels: {queue: {values: [fast, slow]}}}]\n"
        "spans:\n  - {name: myhost.jobs.run, help: h, attributes: {queue: {values: [fast]}, n: {type: int}},"
        " events: [{name: retried, attributes: {attempt: {type: int}}}]}\n",
        encoding="utf-8",
    )
    assert lint(host_contract(path)) == []


@pytest.mark.parametrize(("rule", "metrics"), FAILING_EXAMPLES, ids=lambda x: getattr(x, "name", ""))
def test_each_rule_fails_its_example(write_contract: ContractWriter, rule: Rule, metrics: str) -> None:
    path = write_contract(metrics)
    findings = lint(host_contract(path))
    assert [f.rule for f in findings] == [rule], [str(f) for f in findings]
    finding = findings[0]
    assert finding.location.path == str(path)
    assert finding.location.line >= 4
    assert str(finding).startswith(f"{path}:{finding.location.line}: {rule.id} {rule.name}:")


def test_every_rule_has_a_failing_example() -> None:
    exemplified = {rule for rule, _ in FAILING_EXAMPLES} | {rule for rule, _, _ in SPAN_FAILING_EXAMPLES}
    assert exemplified == set(RULES)
    assert len({rule.id for rule in RULES}) == len(RULES)


def test_a_clean_host_contract_has_no_findings(write_contract: ContractWriter) -> None:
    path = write_contract(
        """
        - {name: myhost_requests_total, type: counter, help: h, labels: {route: {values: [a]}}}
        - {name: myhost_busy_seconds_total, type: counter, unit: seconds, help: h}
        - {name: myhost_queue_bytes, type: gauge, unit: bytes, help: h, multiprocess_mode: max}
        - {name: myhost_hit_ratio, type: gauge, unit: ratio, help: h}
        - {name: myhost_old, type: gauge, help: h, stability: deprecated, replaced_by: myhost_hit_ratio}
        """
    )
    assert lint(host_contract(path)) == []


def test_replaced_by_without_deprecation_is_only_a_warning(write_contract: ContractWriter) -> None:
    path = write_contract(
        "- {name: myhost_a, type: gauge, help: h, replaced_by: myhost_b}\n"
        "- {name: myhost_b, type: gauge, help: h}"
    )
    [finding] = lint(host_contract(path))
    assert finding.severity is Severity.WARNING


def test_the_library_contract_is_lint_clean(library_contract: Contract) -> None:
    assert lint(library_contract) == []


def test_loading_with_check_refuses_a_contract_with_lint_errors(
    write_contract: ContractWriter,
) -> None:
    path = write_contract("- {name: myhost_requests, type: counter, help: h}")
    with pytest.raises(ContractError, match="CM003 counter-total"):
        load_contract(path, entry_points=False)


def test_the_documented_example_is_valid_and_every_rule_is_documented(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "contract.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "shared.yaml").write_text("namespace: shared\nversion: 1.0.0\nmetrics: []\n")
    (tmp_path / "host.yaml").write_text(example)
    contract = host_contract(tmp_path / "host.yaml")
    assert len(contract) == 5
    assert lint(contract) == []
    for rule in RULES:
        assert f"| {rule.id} | {rule.name} |" in text
