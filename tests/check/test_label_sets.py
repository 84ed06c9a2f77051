"""The exact label sets of expressions, as Prometheus's engine would produce them."""

from __future__ import annotations

import pytest

from tests.check.support import codes, findings, label_sets

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")

EXTRACTIONS = "cadmetrics_feature_extractions_total"  # {version, result}
DURATION = "cadmetrics_feature_extraction_duration_seconds"  # {version, format}
STORED = "cadmetrics_vectors_stored"  # gauge {version}
ROLLBACK = "cadmetrics_model_rollback_level"  # gauge {}
TARGET = {"job", "instance"}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (EXTRACTIONS, [TARGET | {"version", "result"}]),
        (f"{DURATION}_bucket", [TARGET | {"version", "format", "le"}]),
        (f"{DURATION}_sum", [TARGET | {"version", "format"}]),
        (f"rate({EXTRACTIONS}[5m] offset 1h)", [TARGET | {"version", "result"}]),
        (f"sum by (version) (rate({EXTRACTIONS}[5m]))", [{"version"}]),
        (f"sum(rate({EXTRACTIONS}[5m])) by (version)", [{"version"}]),
        (f"sum without (instance, result) (rate({EXTRACTIONS}[5m]))", [{"job", "version"}]),
        (f"sum(rate({EXTRACTIONS}[5m]))", [set()]),
        (f"topk(3, rate({EXTRACTIONS}[5m]))", [TARGET | {"version", "result"}]),
        (f"topk by (version) (3, rate({EXTRACTIONS}[5m]))", [TARGET | {"version", "result"}]),
        (f'count_values by (job) ("level", {ROLLBACK})', [{"job", "level"}]),
        (f"histogram_quantile(0.9, sum by (le, format) (rate({DURATION}_bucket[5m])))", [{"format"}]),
        (f'label_replace({STORED}, "v", "$1", "version", "(.*)")', [TARGET | {"version", "v"}]),
        (
            f'label_replace({STORED}, "v", "$1", "version", "v(1|2)")',
            [TARGET | {"version"}, TARGET | {"version", "v"}],
        ),
        (f'label_replace({STORED}, "version", "", "", "")', [TARGET]),
        (f'label_join({STORED}, "where", "/", "job", "instance")', [TARGET | {"version", "where"}]),
        (f'absent({STORED}{{version="v1", job=~"a.*"}})', [{"version"}]),
        (f"sum({STORED}) or vector(0)", [set()]),
        (f"sum by (version) ({STORED}) or vector(0)", [set(), {"version"}]),
        (f"{ROLLBACK} > 0", [TARGET]),
        (f"{ROLLBACK} > bool 0", [TARGET]),
        (f"-{STORED}", [TARGET | {"version"}]),
        (f"2 * {STORED}", [TARGET | {"version"}]),
        (f"scalar(sum({ROLLBACK})) * {STORED}", [TARGET | {"version"}]),
        # one-to-one matching with on() keeps the matching labels only; ignoring() drops the ignored
        (f"rate({EXTRACTIONS}[5m]) > on(job, instance) {ROLLBACK}", [TARGET]),
        (f"rate({EXTRACTIONS}[5m]) / ignoring(result) group_left {STORED}", [TARGET | {"version", "result"}]),
        (
            f"sum by (job, version, result) (rate({EXTRACTIONS}[5m])) / ignoring(result) "
            f"group_left sum by (job, version) (rate({EXTRACTIONS}[5m]))",
            [{"job", "version", "result"}],
        ),
        (
            f"{ROLLBACK} * on(job, instance) group_left(version) {STORED}",
            [TARGET | {"version"}],
        ),
        (
            f"{STORED} * on(job, instance) group_right(version) {ROLLBACK}",
            [TARGET | {"version"}],
        ),
        (f"{STORED} and on(job) {ROLLBACK}", [TARGET | {"version"}]),
        (f"{STORED} unless {STORED}{{version='v1'}}", [TARGET | {"version"}]),
        (f"{STORED} or {ROLLBACK}", [TARGET, TARGET | {"version"}]),
    ],
)
def test_label_sets(expr: str, expected: list[set[str]]) -> None:
    assert label_sets(expr) == sorted(expected, key=sorted)


def test_a_metric_outside_the_contract_has_unknown_labels() -> None:
    assert label_sets("sum by (x) (rate(http_requests_total[5m]))") is None
    assert label_sets("rate(http_requests_total[5m]) + cadmetrics_model_rollback_level") is None


def test_the_examples_of_the_issue() -> None:
    ratio = f"sum by (version) (rate({EXTRACTIONS}[5m])) / sum by (version) (rate({DURATION}_count[5m]))"
    assert findings(ratio) == []
    assert label_sets(ratio) == [{"version"}]
    lacking = (
        f"sum by (version, result) (rate({EXTRACTIONS}[5m])) / on(result) "
        f"sum by (version) (rate({DURATION}_count[5m]))"
    )
    (finding,) = findings(lacking)
    assert finding.code == "CK010"
    assert "on(result) compares result" in finding.message
    assert "{result, version}" in finding.message and "{version}" in finding.message
    assert codes(f"histogram_quantile(0.9, sum by (version) (rate({DURATION}_bucket[5m])))") == ["CK009"]


def test_one_to_one_matching_needs_identical_label_sets() -> None:
    (finding,) = findings(f"rate({EXTRACTIONS}[5m]) / rate({DURATION}_count[5m])")
    assert finding.code == "CK010"
    assert "differ in format, result" in finding.message
    assert codes(f"{STORED} > {ROLLBACK}") == ["CK010"]
    assert codes(f"{STORED} > ignoring(version) {ROLLBACK}") == []
    assert codes(f"{STORED} > on(job, instance) {ROLLBACK}") == []
    assert codes(f"{STORED} and {ROLLBACK}") == ["CK010"]
    assert codes(f"{STORED} or {ROLLBACK}") == []  # or never needs a match


def test_unless_that_can_never_match_removes_nothing_a_warning() -> None:
    (finding,) = findings(f"{ROLLBACK} unless on(version) {STORED}")
    assert finding.code == "CK010" and finding.severity == "warning"
    assert "can never remove anything" in finding.message


def test_a_label_dropped_by_an_aggregation_and_used_afterwards() -> None:
    blocked = "cadmetrics_model_opcode_blocked_total"  # {reason, mode}
    (by,) = findings(f"sum by (reason) (sum by (mode) (rate({blocked}[5m])))")
    assert by.code == "CK011" and "sum by (mode) already removed it" in by.message
    (on,) = findings(
        f"sum by (mode) (rate({blocked}[5m])) / on(reason) group_left "
        f"sum by (reason, mode) (rate({blocked}[5m]))"
    )
    assert on.code == "CK011" and "reason" in on.message and "sum by (mode)" in on.message
    # group_left keeps the many side's labels: version is still there...
    assert findings(f"sum by (version) ({STORED} > on(job, instance) group_left {ROLLBACK})") == []
    (kept,) = findings(f"sum by (version) ({STORED} > on(job, instance) {ROLLBACK})")
    assert kept.code == "CK011" and "on(instance, job)" in kept.message  # ...one-to-one on() drops it


def test_alternative_shapes_match_when_one_pair_does() -> None:
    expr = f"(sum by (version) (rate({EXTRACTIONS}[5m])) or vector(0)) / sum by (version) ({STORED})"
    assert findings(expr) == []
    assert label_sets(expr) == [{"version"}]
