"""Prometheus rule files: recorded series, file structure, and where findings point."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cadmetrics.check import Finding, check_rules
from cadmetrics.errors import InputError
from tests.check.support import CONTRACT
from tests.conftest import REPOSITORY

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def check(*paths: Path) -> list[Finding]:
    return check_rules(list(paths), CONTRACT)


def test_the_shipped_rules_pass() -> None:
    alerts = REPOSITORY / "contracts" / "alerts"
    assert check(alerts) == []  # the promtool test file beside them is skipped: it has no groups


def test_recorded_series_are_known_across_files_in_any_order(tmp_path: Path) -> None:
    recording = write(
        tmp_path,
        """
        groups:
          - name: recording
            rules:
              - record: job_version:cadmetrics_extractions:rate5m
                expr: sum by (job, version) (rate(cadmetrics_feature_extractions_total[5m]))
        """,
        "a.yaml",
    )
    alerting = write(
        tmp_path,
        """
        groups:
          - name: alerting
            rules:
              - alert: Quiet
                expr: sum by (job) (job_version:cadmetrics_extractions:rate5m{version="v4"}) < 1
              - alert: Broken
                expr: sum by (result) (job_version:cadmetrics_extractions:rate5m) < 1
        """,
        "b.yaml",
    )
    for order in ((alerting, recording), (recording, alerting)):
        (finding,) = check(*order)
        assert finding.code == "CK011" and finding.location == "alerting > alert Broken"
        assert finding.path == str(alerting) and finding.line == 6
        assert "in the recording rule job_version:cadmetrics_extractions:rate5m" in finding.message
    (unknown,) = [f for f in check(alerting) if f.location.endswith("Quiet")]
    assert unknown.code == "CK002"


def test_recorded_series_depend_on_each_other_and_carry_their_labels_block(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        groups:
          - name: g
            labels: {team: cad}
            rules:
              - record: job:cadmetrics_error_ratio:rate5m
                expr: job:cadmetrics_errors:rate5m / job:cadmetrics_requests:rate5m
              - record: job:cadmetrics_errors:rate5m
                expr: sum by (job) (rate(cadmetrics_feature_extractions_total{result="error"}[5m]))
                labels: {tier: gold}
              - record: job:cadmetrics_requests:rate5m
                expr: sum by (job) (rate(cadmetrics_feature_extractions_total[5m]))
                labels: {tier: gold}
              - alert: ErrorsHigh
                expr: job:cadmetrics_error_ratio:rate5m{tier="gold", team="cad"} > 0.05
              - alert: WrongTier
                expr: job:cadmetrics_errors:rate5m{tier="silver"} > 0
              - alert: NoVersion
                expr: max by (version) (job:cadmetrics_error_ratio:rate5m) > 0
        """,
    )
    found = check(path)
    assert [(f.code, f.location) for f in found] == [
        ("CK005", "g > alert WrongTier"),
        ("CK011", "g > alert NoVersion"),
    ]
    assert 'tier="silver" never matches' in found[0].message


def test_a_name_recorded_by_several_rules_has_all_their_label_sets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        groups:
          - name: g
            rules:
              - record: cadmetrics:stored
                expr: sum by (job, version) (cadmetrics_vectors_stored)
              - record: cadmetrics:stored
                expr: sum by (job) (cadmetrics_vectors_stored)
              - alert: A
                expr: max by (version) (cadmetrics:stored) > 0
              - alert: B
                expr: cadmetrics:stored > on(job, version) cadmetrics:stored
        """,
    )
    assert check(path) == []


def test_a_cycle_of_recording_rules_does_not_loop(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        groups:
          - name: g
            rules:
              - record: a:x
                expr: b:x + 1
              - record: b:x
                expr: a:x * 2
              - alert: Loop
                expr: a:x > 1
        """,
    )
    assert check(path) == []


def test_alert_without_condition_and_a_record_shadowing_the_contract(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        groups:
          - name: g
            rules:
              - alert: AlwaysFires
                expr: max by (job) (cadmetrics_model_rollback_level)
              - record: cadmetrics_vectors_stored
                expr: sum by (job, instance, version) (cadmetrics_vectors_stored)
        """,
    )
    first, second = check(path)
    assert (first.code, first.line, first.severity) == ("CK012", 4, "warning")
    assert (second.code, second.line, second.location) == ("CK015", 6, "g > record cadmetrics_vectors_stored")


def test_structure_mistakes_are_findings_with_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        groups:
          - name: g
            rules:
              - alert: NoExpr
              - alert: Both
                record: both
                expr: vector(1) > 0
              - record: not a name
                expr: vector(1)
              - alert: Typo
                epxr: vector(1) > 0
                expr: vector(1) > 0
          - rules: []
          - name: g
            rules: {}
        """,
    )
    found = [(f.code, f.line, f.message) for f in check(path)]
    assert found == [
        ("CK014", 4, "the rule has no expr:"),
        ("CK014", 5, "a rule needs exactly one of alert: and record:"),
        ("CK014", 8, "'not a name' is not a valid metric name for a recording rule"),
        ("CK014", 11, "unknown field epxr: (Prometheus refuses the file)"),
        ("CK014", 13, "a group has no name:"),
        ("CK014", 14, "group g is repeated in the same file"),
        ("CK014", 15, "rules: of group g must be a list"),
    ]


def test_invalid_yaml_is_a_finding_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  - name: g\n    rules: [\n      {alert: x, expr: 'a > 1'\n")
    (finding,) = check(path)
    assert finding.code == "CK014" and finding.line == 5 and finding.message.startswith("not valid YAML")


def test_files_without_groups(tmp_path: Path) -> None:
    named = write(tmp_path, "rule_files: [x.yaml]\ntests: []\n", "x.test.yaml")
    (finding,) = check(named)
    assert finding.code == "CK014" and "no rule groups" in finding.message
    folder = tmp_path / "folder"
    folder.mkdir()
    write(folder, "rule_files: [x.yaml]\ntests: []\n", "x.test.yaml")
    write(folder, "not rules", "notes.txt")
    assert check(folder) == []


def test_kubernetes_prometheus_rule_and_several_documents(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        apiVersion: monitoring.coreos.com/v1
        kind: PrometheusRule
        metadata: {name: cad}
        spec:
          groups:
            - name: k8s
              rules:
                - alert: Bad
                  expr: cadmetrics_model_rollback_level{reason="x"} > 0
        ---
        groups:
          - name: plain
            rules:
              - alert: AlsoBad
                expr: cadmetrics_model_rollback_levels > 0
        """,
    )
    assert [(f.code, f.location, f.line) for f in check(path)] == [
        ("CK004", "k8s > alert Bad", 8),
        ("CK002", "plain > alert AlsoBad", 14),
    ]


def test_an_unreadable_rule_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read rule file"):
        check(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"groups: [] # \xe9\n")
    with pytest.raises(InputError, match=r"latin\.yaml"):
        check(latin)
