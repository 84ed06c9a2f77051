"""The shipped dashboards and alert rules: up to date, complete, and passing promtool."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cadmetrics import dashboards
from cadmetrics.contract.compose import load_contract
from tests.conftest import REPOSITORY, server_binary

DASHBOARDS = REPOSITORY / "contracts" / "dashboards"
ALERTS = REPOSITORY / "contracts" / "alerts"
RULES = ALERTS / "cadmetrics.rules.yaml"
RULE_TESTS = ALERTS / "cadmetrics.rules.test.yaml"
RUNBOOKS = REPOSITORY / "docs" / "runbooks.md"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_files_are_what_the_module_renders() -> None:
    expected = {f"{board.uid}.json": dashboards.text(board) for board in dashboards.DASHBOARDS}
    found = {path.name: path.read_text(encoding="utf-8") for path in dashboard_files()}
    assert found == expected, "regenerate: python -m cadmetrics.dashboards contracts/dashboards"


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda path: path.name)
def test_a_dashboard_is_importable_as_is(path: Path) -> None:
    board = json.loads(path.read_text(encoding="utf-8"))
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"  # no data source uid of ours inside
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"], panel["title"]
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_every_contract_metric_is_on_a_dashboard_panel() -> None:
    parser = pytest.importorskip("promql_parser", reason="needs the check extra (promql-parser)")
    used: set[str] = set()

    def collect(node: Any) -> None:
        name = getattr(node, "name", None)
        if type(node).__name__ == "VectorSelector" and isinstance(name, str):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
        for child in ("expr", "lhs", "rhs", "param", "vector_selector"):
            inner = getattr(node, child, None)
            if inner is not None and not isinstance(inner, str | int | float):
                collect(inner)
        for argument in getattr(node, "args", None) or []:
            collect(argument)

    for path in dashboard_files():
        for expr in queries(json.loads(path.read_text(encoding="utf-8"))):
            text = expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$job", ".+")
            collect(parser.parse(text))
    declared = {spec.name for spec in load_contract()}
    assert declared - used == set()
    assert used - declared == set()


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_summary_a_description_and_a_runbook() -> None:
    headings = set(re.findall(r"^## (\w+)$", RUNBOOKS.read_text(encoding="utf-8"), flags=re.MULTILINE))
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert annotations["runbook_url"] == f"docs/runbooks.md#{rule['alert'].lower()}"
        assert rule["alert"] in headings, f"docs/runbooks.md has no section for {rule['alert']}"
    assert headings == {rule["alert"] for rule in alert_rules()}


def test_every_alert_has_unit_tests_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    promtool = server_binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name], cwd=ALERTS, capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_shipped_dashboards_and_rules_pass_the_offline_checker() -> None:
    pytest.importorskip("promql_parser", reason="needs the check extra (promql-parser)")
    from cadmetrics.check import check_dashboards, check_rules

    assert check_rules([ALERTS]) == []
    assert check_dashboards([DASHBOARDS], rules=[ALERTS]) == []


def test_latency_panels_show_exemplars_and_only_they_do() -> None:
    latency = re.compile(r"histogram_quantile\(.*_seconds_bucket")
    seen = 0
    for path in dashboard_files():
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in panel.get("targets", []):
                is_latency = bool(latency.search(target["expr"]))
                assert target["exemplar"] is is_latency, (path.name, panel["title"], target["expr"])
                seen += is_latency
    assert seen >= 4  # extraction, model load, search, migration
