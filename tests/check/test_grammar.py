"""The whole grammar goes through the checker: correct queries give no finding, and a mistake
buried deep inside one is still found."""

from __future__ import annotations

import pytest

from tests.check.support import codes, findings

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")

EXTRACTIONS = "cadmetrics_feature_extractions_total"
DURATION = "cadmetrics_feature_extraction_duration_seconds"
STORED = "cadmetrics_vectors_stored"
ROLLBACK = "cadmetrics_model_rollback_level"

CORRECT = [
    f"rate({EXTRACTIONS}[5m] offset 1h)",
    f"rate({EXTRACTIONS}[5m] offset -30m)",
    f"rate({EXTRACTIONS}[5m] @ 1700000000)",
    f"rate({EXTRACTIONS}[5m] @ start())",
    f"sum(rate({EXTRACTIONS}[5m] @ end() offset 5m))",
    f"max_over_time(sum by (version) (rate({EXTRACTIONS}[5m]))[1h:5m])",
    f"max_over_time(sum by (version) (rate({EXTRACTIONS}[5m]))[1h:])",
    f"avg_over_time(rate({EXTRACTIONS}[5m])[1h:1m] offset 1d)",
    f"quantile_over_time(0.9, {ROLLBACK}[1h])",
    f"predict_linear({STORED}[6h], 24 * 3600) < 0",
    f"sum by (job, version) (rate({EXTRACTIONS}[5m])) / on(job) group_left "
    f"sum by (job) (rate({EXTRACTIONS}[5m]))",
    f"sum by (job, version) (rate({EXTRACTIONS}[5m])) / ignoring(version) group_left "
    f"sum by (job) (rate({EXTRACTIONS}[5m]))",
    f"sum by (job) (rate({EXTRACTIONS}[5m])) * on(job) group_right sum by (job, version) ({STORED})",
    f"max by (job) ({ROLLBACK}) * on(job) group_left(version) max by (job, version) ({STORED})",
    f"sum by (version) (sum by (version, result) (rate({EXTRACTIONS}[5m])))",
    f"topk(3, sum by (version) (rate({EXTRACTIONS}[5m])))",
    f"bottomk by (job) (1, max by (job, version) ({STORED}))",
    f"count(count by (version) ({STORED}))",
    f'count_values("level", max by (job) ({ROLLBACK}))',
    f'sum by (v) (label_replace(rate({EXTRACTIONS}[5m]), "v", "$1", "version", "v(.*)"))',
    f'label_join(sum by (version, result) (rate({EXTRACTIONS}[5m])), "key", "/", "version", "result")',
    f"sum(rate({EXTRACTIONS}[5m])) or vector(0)",
    f"sum by (version) (rate({EXTRACTIONS}[5m])) or on(version) sum by (version) ({STORED}) * 0",
    f"-{ROLLBACK}",
    f"-(max({ROLLBACK}) - 1)",
    f"(max by (job) ({ROLLBACK}) > 0) and (max by (job) ({ROLLBACK}) < 10)",
    f"((max by (job) ({ROLLBACK})) > bool 0) == 1",
    f"max by (job) ({ROLLBACK}) > bool on(job) max by (job) (cadmetrics_model_snapshots_available)",
    f"sum(rate({EXTRACTIONS}[5m])) ^ 2 % 3 atan2 4",
    "time() - max(cadmetrics_drift_baseline_age_seconds)",
    f"scalar(max({ROLLBACK})) > bool 0",
    "vector(1)",
    f'absent({STORED}{{version="v4"}})',
    f"absent_over_time({ROLLBACK}[10m])",
    f"sort_desc(sum by (version) ({STORED}))",
    f"clamp(max by (job) ({ROLLBACK}), 0, 5)",
    f"round(sum(rate({EXTRACTIONS}[5m])), 0.1)",
    "day_of_week() == 1",
    f"hour(max({ROLLBACK}) * 0 + time()) > 8",
    f'{{__name__="{STORED}", version="v1"}}',
    f'sum by (le) (rate({DURATION}_bucket{{le=~"0\\\\.5|1|\\\\+Inf"}}[5m]))',
    f"histogram_quantile(0.5, sum by (le) (rate({DURATION}_bucket[5m] offset 1d)))",
    f"histogram_quantile(0.99, sum by (le, version) (increase({DURATION}_bucket[1h])) > 0)",
    f"sum(rate({DURATION}_sum[5m])) / sum(rate({DURATION}_count[5m]))",
]


@pytest.mark.parametrize("expr", CORRECT)
def test_correct_queries_give_no_finding(expr: str) -> None:
    assert findings(expr) == []


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        (
            f'max_over_time(sum by (version) (rate({EXTRACTIONS}{{result="bad"}}[5m]))[1h:5m] offset 1h)',
            "CK005",
        ),
        (
            f"-(sum by (version, result) (rate({EXTRACTIONS}[5m])) / on(result) sum by (version) ({STORED}))",
            "CK010",
        ),
        (f"(((rate({ROLLBACK}[5m]))))", "CK007"),
        (f"sum(rate({EXTRACTIONS}[5m] @ start())) or sum by (oops) ({STORED})", "CK006"),
        (f'label_replace(sum by (job) ({STORED}), "v", "$1", "version", "(.*)")', "CK011"),
        (f'count_values("x", {EXTRACTIONS})', "CK008"),
        (f"{ROLLBACK} > bool on(job) group_left(reason) {STORED}", "CK006"),
    ],
)
def test_a_mistake_deep_inside_is_found(expr: str, code: str) -> None:
    assert code in codes(expr), findings(expr)
