""" "Did you mean": the host's own names first, never a name that is unknown itself or a
recording of the same wrong name, and never a list of thirty namespaces."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cadmetrics.check import check_expression, check_rules
from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.model import Contract

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")


def _host(tmp_path: Path, text: str) -> Contract:
    path = tmp_path / "host.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_contract(path, entry_points=False)


def test_the_hosts_own_names_come_first(tmp_path: Path) -> None:
    # "cadmetrics_model_loads_total" is a library name close to the typo too
    contract = _host(
        tmp_path,
        """
        namespace: cadmetrics_host
        version: 1.0.0
        metrics:
          - {name: cadmetrics_host_model_loads_total, type: counter, help: h}
        """,
    )
    [finding] = check_expression("rate(cadmetrics_host_model_load_total[5m])", contract)
    assert finding.message.endswith("did you mean cadmetrics_host_model_loads_total?")


def test_a_recording_of_the_same_wrong_name_or_of_unknown_metrics_is_never_offered(tmp_path: Path) -> None:
    contract = _host(
        tmp_path,
        """
        namespace: app
        version: 1.0.0
        metrics:
          - {name: app_jobs_total, type: counter, help: h}
        """,
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent(
            """
            groups:
              - name: g
                rules:
                  - record: job:app_job_total:rate5m
                    expr: sum by (job) (rate(app_job_total[5m]))
                  - record: job:app_jobs_totals:rate5m
                    expr: sum by (job) (rate(app_jobs_totals[5m]))
                  - alert: Jobs
                    expr: job:app_jobs_total:rate5m > 1
            """
        ).lstrip("\n"),
        encoding="utf-8",
    )
    messages = [finding.message for finding in check_rules([rules], contract)]
    typo = next(m for m in messages if m.startswith("metric app_job_total is not"))
    assert "job:app_job_total:rate5m" not in typo
    assert typo.endswith("did you mean app_jobs_total?")
    unknown = next(m for m in messages if m.startswith("metric job:app_jobs_total:rate5m is not"))
    # the nearest recorded name is built on an unknown metric: its labels are unknown
    assert "job:app_jobs_totals:rate5m" not in unknown


def test_many_namespaces_are_counted_not_listed(tmp_path: Path) -> None:
    names = [f"team{n}" for n in range(30)]
    contract = _host(
        tmp_path,
        f"""
        namespaces: [{", ".join(names)}]
        version: 1.0.0
        metrics:
          - {{name: team0_jobs_total, type: counter, help: h}}
        """,
    )
    [finding] = check_expression("rate(http_requests_total[5m])", contract)
    assert "outside the contract's 31 namespaces" in finding.message  # the library's too
    assert "team7" not in finding.message
