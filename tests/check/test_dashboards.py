"""Grafana dashboards: where queries are found, how variables are replaced, what is reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cadmetrics.check import Finding, Severity, check_dashboards
from cadmetrics.check.variables import Variable, substitute
from cadmetrics.errors import InputError
from tests.check.support import CONTRACT
from tests.conftest import REPOSITORY

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")

GOOD = 'sum by (version) (rate(cadmetrics_feature_extractions_total{job=~"$job"}[$__rate_interval]))'
BAD_VALUE = 'sum(rate(cadmetrics_feature_extractions_total{result="failed"}[5m]))'
PROMETHEUS = {"type": "prometheus", "uid": "${datasource}"}


def target(expr: str, ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"refId": ref, "expr": expr, **extra}


def panel(title: str, *targets: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "timeseries", "title": title, "datasource": PROMETHEUS, "targets": list(targets), **extra}


def board(
    *panels: dict[str, Any], variables: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    job = {
        "name": "job",
        "type": "query",
        "datasource": PROMETHEUS,
        "query": {"query": "label_values(cadmetrics_feature_extractions_total, job)", "refId": "v"},
        "current": {"text": "All", "value": "$__all"},
    }
    datasource = {"name": "datasource", "type": "datasource", "query": "prometheus"}
    templating = {"list": [datasource, job, *(variables or [])]}
    return {"title": "Board", "panels": list(panels), "templating": templating, **extra}


def check(tmp_path: Path, dashboard: dict[str, Any], name: str = "board.json") -> list[Finding]:
    path = tmp_path / name
    path.write_text(json.dumps(dashboard, indent=2), encoding="utf-8")
    return check_dashboards([path], CONTRACT)


def test_the_shipped_dashboards_pass() -> None:
    dashboards = REPOSITORY / "contracts" / "dashboards"
    assert sorted(dashboards.glob("*.json")), "no shipped dashboards"
    assert check_dashboards([dashboards], CONTRACT) == []


def test_a_finding_names_the_dashboard_panel_and_query(tmp_path: Path) -> None:
    (finding,) = check(tmp_path, board(panel("Errors", target(GOOD), target(BAD_VALUE, "B"))))
    assert finding.code == "CK005"
    assert finding.location == "Board > Errors > B"
    assert finding.path == str(tmp_path / "board.json")
    assert finding.line > 0  # the query's line in the file
    assert 'result="failed"' in finding.expression


def test_queries_in_rows_collapsed_rows_and_the_api_form_are_found(tmp_path: Path) -> None:
    collapsed = {
        "type": "row",
        "title": "Row",
        "collapsed": True,
        "panels": [panel("Inner", target(BAD_VALUE))],
    }
    (inner,) = check(tmp_path, {"dashboard": board(collapsed)})
    assert inner.location == "Board > Row > Inner > A"
    old = {"title": "Old", "rows": [{"title": "First row", "panels": [panel("P", target(BAD_VALUE))]}]}
    (row,) = check(tmp_path, old, "old.json")
    assert row.location == "Old > First row > P > A"


def test_targets_of_other_data_sources_are_skipped(tmp_path: Path) -> None:
    logql = 'sum(count_over_time({app="cad"} |= "error" [5m]))'
    loki = {"type": "loki", "uid": "logs"}
    logs_variable = {"name": "logs", "type": "datasource", "query": "loki"}
    mixed = panel(
        "Mixed",
        target(logql, "A", datasource=loki),
        target(BAD_VALUE, "B", datasource=PROMETHEUS),
        datasource={"type": "datasource", "uid": "-- Mixed --"},
    )
    dashboard = board(
        panel("Logs", target(logql), datasource=loki),
        panel("Logs by variable", target(logql), datasource="${logs}"),
        panel("Expressions", target("$A + 1", "B", datasource={"type": "__expr__", "uid": "__expr__"})),
        mixed,
        variables=[logs_variable],
    )
    (finding,) = check(tmp_path, dashboard)
    assert finding.location == "Board > Mixed > B"


def test_label_values_variables_are_checked(tmp_path: Path) -> None:
    variables: list[dict[str, Any]] = [
        {"name": "v", "type": "query", "query": "label_values(cadmetrics_vectors_stored, version)"},
        {
            "name": "w",
            "type": "query",
            "query": 'label_values(cadmetrics_vectors_stored{job=~"$job"}, reason)',
        },
        {
            "name": "x",
            "type": "query",
            "query": {"query": "label_values(cadmetrics_vectors_storred, version)"},
        },
        {"name": "y", "type": "query", "query": "query_result(topk(3, cadmetrics_vectors_stored))"},
        {"name": "z", "type": "query", "query": "label_values(cadmetrics_feature_extractions_total, result)"},
    ]
    found = check(tmp_path, board(variables=variables))
    assert [(f.code, f.location) for f in found] == [
        ("CK004", "Board > variable w"),
        ("CK002", "Board > variable x"),
    ]
    assert "reason" in found[0].message
    assert "did you mean cadmetrics_vectors_stored" in found[1].message


def test_annotation_queries_are_checked(tmp_path: Path) -> None:
    annotations = {
        "list": [{"name": "Rollbacks", "datasource": PROMETHEUS, "expr": "cadmetrics_model_rollbacks"}]
    }
    (finding,) = check(tmp_path, board(annotations=annotations))
    assert finding.code == "CK003" and finding.location == "Board > annotation Rollbacks"


def test_an_instant_table_query_may_return_a_range_vector(tmp_path: Path) -> None:
    range_query = "cadmetrics_model_rollback_level[10m]"
    assert check(tmp_path, board(panel("Table", target(range_query, instant=True, range=False)))) == []
    (finding,) = check(tmp_path, board(panel("Graph", target(range_query))))
    assert finding.code == "CK001" and "range vector" in finding.message


def test_template_variables(tmp_path: Path) -> None:
    variables = [
        {"name": "window", "type": "interval", "current": {"value": "10m"}},
        {"name": "n", "type": "custom", "current": {"value": "5"}},
        {"name": "many", "type": "custom", "current": {"value": ["1", "2"]}},
        {"name": "by", "type": "custom", "current": {"value": "level"}},
    ]
    good = [
        'topk($n, sum by ($by) (rate(cadmetrics_feature_cache_hits_total{level=~"${job:regex}"}[$window])))',
        "rate(cadmetrics_feature_extractions_total[[[window]]])",
        'max(cadmetrics_model_rollback_level{job="[[job]]"} @ ${__to:date:seconds})',
        "sum(increase(cadmetrics_feature_extractions_total[$__range])) / $__range_s",
        'label_replace(max(cadmetrics_model_rollback_level), "x", "$1", "", "(.*)")',
    ]
    targets = [target(expr, f"T{index}") for index, expr in enumerate(good)]
    assert check(tmp_path, board(panel("Good", *targets), variables=variables)) == []
    bad = [target("topk($many, cadmetrics_model_rollback_level)", "A"), target("rate(x[$nowhere])", "B")]
    guessed, undefined = check(tmp_path, board(panel("Bad", *bad), variables=variables))
    assert guessed.code == "CK013" and guessed.severity is Severity.WARNING and "$many" in guessed.message
    assert (
        undefined.code == "CK013" and undefined.severity is Severity.ERROR and "$nowhere" in undefined.message
    )
    assert guessed.expression == "topk($many, cadmetrics_model_rollback_level)"
    # a label chosen on the dashboard: what is built on it is not judged
    chosen = "sum by ($many) (rate(cadmetrics_feature_extractions_total[5m])) / on($many) vector(1)"
    assert check(tmp_path, board(panel("Chosen", target(chosen)), variables=variables)) == []


def test_a_variable_in_a_matcher_value_is_not_judged_but_shown_as_written(tmp_path: Path) -> None:
    expr = 'rate(cadmetrics_feature_extractions_total{result="$job", version="v9"}[5m])'
    (finding,) = check(tmp_path, board(panel("P", target(expr))))
    assert "v9" in finding.message
    assert 'result="$job"' in finding.expression


def test_substitution_keeps_strings_and_regex_group_references() -> None:
    variables = {"job": Variable("job"), "w": Variable("w", "interval", "$__auto_interval_w")}
    result = substitute('label_replace(x{job=~"$job"}, "a", "$1", "b", "(.*)")[$w:]', variables)
    assert result.text == 'label_replace(x{job=~"__grafana_var_job__"}, "a", "$1", "b", "(.*)")[1m:]'
    assert result.undefined == () and result.guessed == ()
    assert substitute("x{a='$job\\'s'}", variables).text == "x{a='__grafana_var_job__\\'s'}"


def test_invalid_json_and_files_that_are_not_dashboards(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "panels": [\n    {"title": }\n  ]\n}\n', encoding="utf-8")
    (finding,) = check_dashboards([broken], CONTRACT)
    assert finding.code == "CK014" and finding.line == 3 and "not valid JSON" in finding.message
    other = tmp_path / "package.json"
    other.write_text('{"name": "x"}', encoding="utf-8")
    (named,) = check_dashboards([other], CONTRACT)
    assert named.code == "CK014" and "not a Grafana dashboard" in named.message
    other_dir = tmp_path / "dir"
    other_dir.mkdir()
    (other_dir / "package.json").write_text('{"name": "x"}', encoding="utf-8")
    (other_dir / "notes.txt").write_text("not json", encoding="utf-8")
    assert check_dashboards([other_dir], CONTRACT) == []  # skipped when found in a directory


def test_an_unreadable_dashboard_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read dashboard .*missing\.json"):
        check_dashboards([tmp_path / "missing.json"], CONTRACT)


def test_recorded_series_of_rule_files_are_known_to_dashboards(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n- name: g\n  rules:\n  - record: job:cadmetrics_extractions:rate5m\n"
        "    expr: sum by (job, version) (rate(cadmetrics_feature_extractions_total[5m]))\n",
        encoding="utf-8",
    )
    path = tmp_path / "board.json"
    expr = 'sum by (version) (job:cadmetrics_extractions:rate5m{version="v1", result="error"})'
    path.write_text(json.dumps(board(panel("P", target(expr)))), encoding="utf-8")
    (unknown,) = check_dashboards([path], CONTRACT)
    assert unknown.code == "CK002"
    (dropped,) = check_dashboards([path], CONTRACT, rules=[rules])
    assert dropped.code == "CK011"  # the recorded series is known: its labels are {job, version}
    assert (
        "sum by (job, version) (in the recording rule job:cadmetrics_extractions:rate5m)" in dropped.message
    )
