"""``cadmetrics check``: exit 0 without errors, 1 with, 2 for unreadable input; text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cadmetrics.cli import main
from tests.conftest import REPOSITORY, ContractWriter

pytest.importorskip("promql_parser", reason="the checker needs the check extra (promql-parser)")

RULES = """\
groups:
  - name: g
    rules:
      - alert: {name}
        expr: {expr}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rules(tmp_path: Path, expr: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(RULES.format(name="A", expr=expr), encoding="utf-8")
    return path


def test_the_shipped_assets_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "rules", str(REPOSITORY / "contracts" / "alerts"))
    assert code == 0 and out.endswith("1 rule file(s) checked: 0 error(s), 0 warning(s)\n")
    code, out, _ = run(capsys, "check", "dashboards", str(REPOSITORY / "contracts" / "dashboards"))
    assert code == 0 and "0 error(s)" in out


def test_errors_exit_1_and_warnings_alone_exit_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = rules(tmp_path, "cadmetrics_model_rollback_level{reason='x'} > 0")
    code, out, _ = run(capsys, "check", "rules", str(bad))
    assert code == 1
    assert f'{bad}:4: error CK004 unknown-label [g > alert A]: matcher reason="x"' in out
    assert '    in: cadmetrics_model_rollback_level{reason="x"}' in out
    warned = rules(tmp_path, "max(cadmetrics_model_rollback_level)", "warned.yaml")
    code, out, _ = run(capsys, "check", "rules", str(warned))
    assert code == 0 and "warning CK012" in out and "0 error(s), 1 warning(s)" in out


def test_json_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = rules(tmp_path, "rate(cadmetrics_model_rollback_level[5m]) > 0")
    code, out, _ = run(capsys, "check", "rules", "--json", str(bad))
    assert code == 1
    (finding,) = json.loads(out)
    assert finding["code"] == "CK007" and finding["path"] == str(bad) and finding["line"] == 4
    assert set(finding) == {"code", "name", "severity", "message", "path", "line", "location", "expression"}


def test_an_unreadable_file_exits_2_and_the_others_are_still_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = rules(tmp_path, "cadmetrics_model_rollback_levels > 0")
    code, out, err = run(capsys, "check", "rules", str(tmp_path / "missing.yaml"), str(bad))
    assert code == 2
    assert err.count("\n") == 1 and "cannot read rule file" in err and "missing.yaml" in err
    assert "CK002" in out


def test_scrape_labels_rules_for_dashboards_and_host_contracts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, write_contract: ContractWriter
) -> None:
    clustered = rules(tmp_path, "max by (cluster) (cadmetrics_model_rollback_level) > 0")
    assert run(capsys, "check", "rules", str(clustered))[0] == 1
    assert run(capsys, "check", "rules", "--scrape-label", "cluster", str(clustered))[0] == 0

    host = write_contract(
        "- {name: myhost_jobs_total, type: counter, help: h, labels: {queue: {values: [a, b]}}}"
    )
    hosted = rules(tmp_path, "sum by (queue) (rate(myhost_jobs_total{queue='c'}[5m])) > 0", "hosted.yaml")
    code, out, _ = run(capsys, "check", "rules", str(hosted))
    assert code == 1 and "CK002" in out
    code, out, _ = run(capsys, "check", "rules", "--contract", str(host), str(hosted))
    assert code == 1 and "CK005" in out and 'queue="c" never matches' in out

    recording = tmp_path / "recording.yaml"
    recording.write_text(
        "groups:\n- name: r\n  rules:\n  - record: job:rollback:max\n"
        "    expr: max by (job) (cadmetrics_model_rollback_level)\n",
        encoding="utf-8",
    )
    dashboard = tmp_path / "board.json"
    dashboard.write_text(
        json.dumps(
            {
                "title": "B",
                "panels": [{"title": "P", "targets": [{"refId": "A", "expr": "job:rollback:max"}]}],
            }
        ),
        encoding="utf-8",
    )
    assert run(capsys, "check", "dashboards", str(dashboard))[0] == 1
    assert run(capsys, "check", "dashboards", "--rules", str(recording), str(dashboard))[0] == 0


def test_without_the_parser_the_error_names_the_extra(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "promql_parser", None)
    code, out, err = run(capsys, "check", "rules", str(rules(tmp_path, "vector(1) > 0")))
    assert code == 2 and out == ""
    assert (
        err == "cadmetrics: error: checking PromQL needs the promql-parser package: "
        "pip install 'cadmetrics[check]'\n"
    )


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "check")[0] == 2
    assert run(capsys, "check", "rules")[0] == 2
    assert run(capsys, "check", "alerts", "x.yaml")[0] == 2


def test_the_package_imports_without_the_parser() -> None:
    script = (
        "import sys; sys.modules['promql_parser'] = None\n"
        "import cadmetrics.check as check\n"
        "try:\n"
        "    check.check_expression('vector(1)')\n"
        "except check.MissingCheckDependency as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "pip install 'cadmetrics[check]'" in result.stdout


def test_standalone_checks_against_the_hosts_contract_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, write_contract: ContractWriter
) -> None:
    host = write_contract("- {name: myhost_jobs_total, type: counter, help: h}")
    library = rules(tmp_path, "cadmetrics_model_rollback_level > 0", "library.yaml")
    assert run(capsys, "check", "rules", "--contract", str(host), str(library))[0] == 0
    code, out, _ = run(capsys, "check", "rules", "--standalone", "--contract", str(host), str(library))
    assert code == 1 and "metric cadmetrics_model_rollback_level is not in the contract" in out
    code, _, err = run(capsys, "check", "rules", "--standalone", str(library))
    assert code == 2 and "--standalone needs the host's contract" in err
