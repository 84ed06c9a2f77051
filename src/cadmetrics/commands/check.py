"""``cadmetrics check dashboards|rules PATH...``: the offline checker on the command line.

Exit 0 when no finding is an error (warnings allowed), 1 when any is, 2 when a file cannot be
read (the other files are still checked) or the PromQL parser is not installed. ``--json``
prints the findings as a list of objects; unreadable files are reported on stderr either way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from cadmetrics.check.catalog import DEFAULT_SCRAPE_LABELS
from cadmetrics.check.findings import Finding
from cadmetrics.check.limits import DEFAULT_LIMITS, Limits
from cadmetrics.check.promql import promql
from cadmetrics.commands.contract import command_contract
from cadmetrics.contract.lint import Severity
from cadmetrics.errors import InputError

OK, VIOLATIONS, UNREADABLE = 0, 1, 2


def run_check(
    target: str,
    paths: Sequence[str],
    *,
    contract_paths: Sequence[str] = (),
    standalone: bool = False,
    scrape_labels: Sequence[str] = (),
    rules: Sequence[str] = (),
    as_json: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    out: TextIO,
    err: TextIO,
) -> int:
    """Check the dashboards (``target="dashboards"``) or rule files (``"rules"``) in ``paths``,
    each expression within ``limits``."""
    promql()
    from cadmetrics.check.files import read_dashboards, read_rule_files
    from cadmetrics.check.grafana import check_dashboard
    from cadmetrics.check.rules import RuleSet

    contract = command_contract(list(contract_paths), standalone=standalone)
    labels = tuple(dict.fromkeys((*DEFAULT_SCRAPE_LABELS, *scrape_labels)))
    errors: list[InputError] = []
    if target == "dashboards":
        recorded = RuleSet(read_rule_files(rules, errors), contract, scrape_labels=labels, limits=limits)
        dashboards = read_dashboards(paths, errors)
        findings = [
            finding for board in dashboards for finding in check_dashboard(board, recorded.catalog, limits)
        ]
        checked = len(dashboards)
    else:
        rule_files = read_rule_files(paths, errors)
        findings = RuleSet(rule_files, contract, scrape_labels=labels, limits=limits).findings()
        checked = len(rule_files)
    for error in errors:
        err.write(f"cadmetrics: error: {error}\n")
    if as_json:
        out.write(json.dumps([finding.to_dict() for finding in findings], indent=2) + "\n")
    else:
        for finding in findings:
            out.write(f"{finding}\n")
        out.write(_summary(findings, checked, target) + "\n")
    if errors:
        return UNREADABLE
    return VIOLATIONS if any(finding.severity is Severity.ERROR for finding in findings) else OK


def _summary(findings: Sequence[Finding], checked: int, target: str) -> str:
    errors = sum(finding.severity is Severity.ERROR for finding in findings)
    warnings = len(findings) - errors
    kind = "dashboard" if target == "dashboards" else "rule file"
    return f"{checked} {kind}(s) checked: {errors} error(s), {warnings} warning(s)"
