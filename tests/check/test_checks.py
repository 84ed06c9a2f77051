"""Every check of an expression: a failing example, and the fixed expression that passes."""

from __future__ import annotations

import pytest

from cadmetrics.check import CHECKS, Severity
from tests.check.support import codes, findings
from tests.conftest import ContractWriter, host_contract

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")

EXTRACTIONS = "cadmetrics_feature_extractions_total"  # counter {version, result}
DURATION = "cadmetrics_feature_extraction_duration_seconds"  # histogram {version, format}
ROLLBACK = "cadmetrics_model_rollback_level"  # gauge, no labels
BLOCKED = "cadmetrics_model_opcode_blocked_total"  # counter {reason, mode}

#: (code, failing expression, passing expression)
EXAMPLES: list[tuple[str, str, str]] = [
    ("CK001", f"sum(rate({EXTRACTIONS}[5m])", f"sum(rate({EXTRACTIONS}[5m]))"),
    ("CK001", f"rate({EXTRACTIONS}[5m])[10m:1m]", f"rate({EXTRACTIONS}[5m])"),
    ("CK002", "rate(cadmetrics_feature_extraction_total[5m])", f"rate({EXTRACTIONS}[5m])"),
    ("CK002", "rate(http_requests_total[5m])", f"rate({EXTRACTIONS}[5m])"),
    ("CK003", f"rate({DURATION}[5m])", f"rate({DURATION}_count[5m])"),
    ("CK003", f"rate({EXTRACTIONS.removesuffix('_total')}_bucket[5m])", f"rate({DURATION}_bucket[5m])"),
    ("CK003", f"{ROLLBACK}_total", ROLLBACK),
    ("CK003", "rate(cadmetrics_feature_extractions[5m])", f"rate({EXTRACTIONS}[5m])"),
    ("CK004", f'rate({EXTRACTIONS}{{format="stl"}}[5m])', f'rate({DURATION}_count{{format="stl"}}[5m])'),
    ("CK005", f'rate({EXTRACTIONS}{{result="failed"}}[5m])', f'rate({EXTRACTIONS}{{result="error"}}[5m])'),
    ("CK005", f'rate({EXTRACTIONS}{{version=~"v5|v6"}}[5m])', f'rate({EXTRACTIONS}{{version=~"v3|v4"}}[5m])'),
    ("CK005", f'rate({DURATION}_bucket{{le="0.3"}}[5m])', f'rate({DURATION}_bucket{{le="0.25"}}[5m])'),
    ("CK006", f"sum by (format) (rate({EXTRACTIONS}[5m]))", f"sum by (version) (rate({EXTRACTIONS}[5m]))"),
    (
        "CK006",
        f"rate({EXTRACTIONS}[5m]) * on(version) group_left(format) cadmetrics_vectors_stored",
        f"rate({EXTRACTIONS}[5m]) * on(version, job, instance) group_left cadmetrics_vectors_stored",
    ),
    ("CK007", f"rate({ROLLBACK}[5m])", f"deriv({ROLLBACK}[5m])"),
    ("CK007", "increase(cadmetrics_vectors_stored[1h])", "delta(cadmetrics_vectors_stored[1h])"),
    ("CK008", f"sum({EXTRACTIONS})", f"sum(rate({EXTRACTIONS}[5m]))"),
    ("CK008", f"{DURATION}_count > 10", f"increase({DURATION}_count[1h]) > 10"),
    ("CK008", f"rate(sum({EXTRACTIONS})[5m:1m])", f"sum(rate({EXTRACTIONS}[5m]))"),
    (
        "CK009",
        f"histogram_quantile(0.9, sum by (version) (rate({DURATION}_bucket[5m])))",
        f"histogram_quantile(0.9, sum by (le, version) (rate({DURATION}_bucket[5m])))",
    ),
    (
        "CK010",
        f"rate({EXTRACTIONS}[5m]) / rate({DURATION}_count[5m])",
        f"sum by (version) (rate({EXTRACTIONS}[5m])) / sum by (version) (rate({DURATION}_count[5m]))",
    ),
    (
        "CK011",
        f"sum by (reason) (sum by (mode) (rate({BLOCKED}[5m])))",
        f"sum by (reason) (sum by (mode, reason) (rate({BLOCKED}[5m])))",
    ),
]


@pytest.mark.parametrize(
    ("code", "failing", "passing"), EXAMPLES, ids=[f"{e[0]}-{i}" for i, e in enumerate(EXAMPLES)]
)
def test_a_failing_expression_gives_the_finding_and_its_fix_passes(
    code: str, failing: str, passing: str
) -> None:
    assert code in codes(failing), findings(failing)
    assert findings(passing) == []


def test_every_check_has_an_example_or_a_test_of_its_own() -> None:
    exercised = {code for code, _, _ in EXAMPLES} | {"CK012", "CK013", "CK014", "CK015", "CK016"}
    assert {check.code for check in CHECKS} == exercised
    assert len({check.name for check in CHECKS}) == len(CHECKS)


def test_an_alert_needs_a_condition() -> None:
    assert codes(f"max({ROLLBACK})", alert=True) == ["CK012"]
    assert codes(f"max({ROLLBACK}) > 0", alert=True) == []
    assert codes(f"absent({ROLLBACK})", alert=True) == []
    assert codes(f"max({ROLLBACK}) > bool 0", alert=True) == ["CK012"]
    # a condition on one side of `and`, on both sides of `or`, inside an aggregation
    assert codes(f"max({ROLLBACK}) and max({ROLLBACK}) > 0", alert=True) == []
    assert codes(f"(max({ROLLBACK}) > 0) or max({ROLLBACK})", alert=True) == ["CK012"]
    assert codes(f"count({ROLLBACK} > 1)", alert=True) == []
    assert codes("vector(1)", alert=True) == ["CK012"]  # the watchdog: deliberate, so a warning
    assert findings("vector(1)", alert=True)[0].severity is Severity.WARNING
    assert codes(f"max({ROLLBACK})") == []  # a query is not an alert


def test_a_parse_error_is_a_finding_with_the_parser_message() -> None:
    (finding,) = findings(f"rate({EXTRACTIONS})")
    assert finding.code == "CK001"
    assert "expected type matrix" in finding.message and EXTRACTIONS in finding.expression
    assert codes("") == ["CK001"]


def test_unknown_metrics_are_named_with_the_nearest_declared_ones() -> None:
    (finding,) = findings("rate(cadmetrics_feature_extraction_total[5m])")
    assert finding.message.startswith("metric cadmetrics_feature_extraction_total is not in the contract")
    assert "did you mean cadmetrics_feature_extractions_total" in finding.message
    (foreign,) = findings("rate(http_requests_total[5m])")
    assert "outside the contract's namespaces: cadmetrics" in foreign.message


def test_a_foreign_metric_gives_one_finding_and_nothing_built_on_it() -> None:
    expr = (
        'sum by (nonsense) (rate(http_requests_total{code="500"}[5m])) / on(other) '
        "sum by (more) (rate(http_requests_total[5m])) > 0.1"
    )
    (finding,) = findings(expr, alert=True)
    assert finding.code == "CK002" and "http_requests_total" in finding.message
    # ...also when it meets a contract metric
    assert codes(f"rate(http_requests_total[5m]) / on(zzz) rate({EXTRACTIONS}[5m])") == ["CK002"]


def test_counters_may_be_read_by_existence_checks_and_counter_functions() -> None:
    for expr in (
        f"count({EXTRACTIONS})",
        f"group by (version) ({EXTRACTIONS})",
        f"absent({EXTRACTIONS})",
        f"absent_over_time({EXTRACTIONS}[1h])",
        f"count_over_time({EXTRACTIONS}[1h])",
        f"timestamp({EXTRACTIONS})",
        f"resets({EXTRACTIONS}[1h])",
        f"changes({DURATION}_count[1h])",
        f"irate({EXTRACTIONS}[5m])",
        f"rate({EXTRACTIONS}[5m]) and {EXTRACTIONS}",  # the right side of and: existence only
        f"rate({EXTRACTIONS}[5m]) unless {EXTRACTIONS}{{result='error'}}",
        f"label_replace(rate({EXTRACTIONS}[5m]), 'v', '$1', 'version', '(.*)')",
        "cadmetrics_feature_extractions_created",  # the creation time is a gauge
    ):
        assert findings(expr) == [], expr
    for expr in (
        f"{EXTRACTIONS} > 0",
        f"max_over_time({EXTRACTIONS}[1h])",
        f"delta({EXTRACTIONS}[1h])",
        f"topk(3, {EXTRACTIONS})",
        f"{EXTRACTIONS} or rate({EXTRACTIONS}[5m])",
        f"-{EXTRACTIONS}",
        f"histogram_quantile(0.5, sum by (le) ({DURATION}_bucket))",
    ):
        assert codes(expr) == ["CK008"], expr


def test_a_gauge_through_a_subquery_is_still_not_rated() -> None:
    assert codes(f"rate(({ROLLBACK})[10m:1m])") == ["CK007"]
    assert codes(f'rate(label_replace({ROLLBACK}, "a", "b", "", "")[10m:1m])') == ["CK007"]
    assert codes(f"max_over_time(({ROLLBACK})[10m:1m])") == []


def test_matcher_values_outside_closed_sets() -> None:
    (equal,) = findings(f'rate({EXTRACTIONS}{{result="failed"}}[5m])')
    assert equal.severity is Severity.ERROR
    assert equal.message == (
        f'result="failed" never matches: label result of {EXTRACTIONS} is one of cached, computed, error'
    )
    (unequal,) = findings(f'rate({EXTRACTIONS}{{result!="failed"}}[5m])')
    assert unequal.severity is Severity.WARNING and "filters nothing" in unequal.message
    assert findings(f'rate({EXTRACTIONS}{{result=~"err.*|cach.+"}}[5m])') == []
    assert codes(f'rate({EXTRACTIONS}{{result=~"failed|broken"}}[5m])') == ["CK005"]
    assert codes(f'rate({EXTRACTIONS}{{result!~"computed|cached|error"}}[5m])') == ["CK005"]
    assert findings(f'rate({EXTRACTIONS}{{result!~"computed|cached"}}[5m])') == []
    # the overflow value is always admitted; open labels and unparsable (RE2-only) regexes are not judged
    assert findings(f'rate({EXTRACTIONS}{{result="__overflow__"}}[5m])') == []
    assert findings('rate(cadmetrics_drift_anomalies_total{feature_group="anything"}[5m])') == []
    assert findings(f'rate({EXTRACTIONS}{{result=~"\\\\pL+"}}[5m])') == []


def test_le_matchers_are_judged_against_the_buckets_as_numbers() -> None:
    for value in ("1", "1.0", "0.25", "+Inf", "30"):
        assert findings(f'rate({DURATION}_bucket{{le="{value}"}}[5m])') == [], value
    (finding,) = findings(f'rate({DURATION}_bucket{{le="0.3"}}[5m])')
    assert "0.001, 0.0025" in finding.message and "+Inf" in finding.message
    assert findings(f'rate({DURATION}_bucket{{le=~"1(\\\\.0)?|2\\\\.5"}}[5m])') == []
    assert codes(f'rate({DURATION}_bucket{{le=~"0\\\\.3.*"}}[5m])') == ["CK005"]
    assert codes(f'rate({DURATION}_count{{le="1"}}[5m])') == ["CK004"]  # only _bucket has le


def test_matchers_on_labels_the_metric_lacks() -> None:
    (finding,) = findings(f'rate({EXTRACTIONS}{{format="stl"}}[5m])')
    assert finding.message == (
        f'matcher format="stl": {EXTRACTIONS} has no label format '
        "(labels: {instance, job, result, version})"
    )
    assert findings(f'rate({EXTRACTIONS}{{job="cad", instance=~".+"}}[5m])') == []
    assert findings(f'{{__name__="{ROLLBACK}"}}') == []
    assert codes(f'{{__name__="{ROLLBACK}", version="v1"}}') == ["CK004"]


def test_scrape_labels_are_a_parameter() -> None:
    from cadmetrics.check import check_expression
    from tests.check.support import CONTRACT

    expr = f'max by (cluster) ({ROLLBACK}{{cluster="eu"}})'
    assert [f.code for f in check_expression(expr, CONTRACT)] == ["CK004", "CK006"]
    assert check_expression(expr, CONTRACT, scrape_labels=("job", "instance", "cluster")) == []


def test_without_and_on_labels_that_nothing_carries_are_warnings() -> None:
    (without,) = findings(f"sum without (format) (rate({EXTRACTIONS}[5m]))")
    assert without.code == "CK006" and without.severity is Severity.WARNING
    (on,) = findings(
        f"sum by (job) (rate({EXTRACTIONS}[5m])) / on(job, zone) sum by (job) (rate({DURATION}_count[5m]))"
    )
    assert on.code == "CK006" and on.severity is Severity.WARNING and "zone" in on.message


def test_label_function_sources() -> None:
    assert codes(f'label_replace({ROLLBACK}, "x", "$1", "version", "(.*)")') == ["CK006"]
    assert codes(f'label_join({ROLLBACK}, "x", "-", "job", "mode")') == ["CK006"]
    assert codes(f'sort_by_label({ROLLBACK}, "reason")') == ["CK006"]
    assert findings(f'label_join({ROLLBACK}, "x", "-", "job", "instance")') == []


def test_histogram_quantile_without_le_names_what_dropped_it() -> None:
    (finding,) = findings(f"histogram_quantile(0.9, sum by (version) (rate({DURATION}_bucket[5m])))")
    assert finding.code == "CK009"
    assert "sum by (version) removed it" in finding.message
    (plain,) = findings(f"histogram_quantile(0.9, rate({DURATION}_count[5m]))")
    assert plain.code == "CK009" and f"{DURATION}_count has none" in plain.message


def test_findings_name_their_expression_excerpt() -> None:
    (finding,) = findings(f'sum(rate({EXTRACTIONS}{{result="failed"}}[5m]))')
    assert finding.expression == f'{EXTRACTIONS}{{result="failed"}}[5m]'
    assert str(finding).startswith("<expression>: error CK005 label-value: result=")
    assert finding.to_dict()["code"] == "CK005"


def test_a_deprecated_metric_is_a_warning_naming_its_replacement(write_contract: ContractWriter) -> None:
    from cadmetrics.check import check_expression

    path = write_contract(
        """
        - {name: myhost_jobs_total, type: counter, help: h}
        - {name: myhost_tasks_total, type: counter, help: h, stability: deprecated,
           replaced_by: myhost_jobs_total}
        """
    )
    contract = host_contract(path)
    (finding,) = check_expression("sum(rate(myhost_tasks_total[5m]))", contract)
    assert finding.code == "CK016" and finding.severity is Severity.WARNING
    assert finding.message == "myhost_tasks_total is deprecated in the contract: use myhost_jobs_total"
    assert check_expression("sum(rate(myhost_jobs_total[5m]))", contract) == []
