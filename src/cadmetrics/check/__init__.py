"""Offline checks of PromQL in Grafana dashboards and Prometheus rules against the contract.

Every expression is parsed by a real PromQL parser (``promql-parser``, the ``check`` extra) and
evaluated symbolically: each sub-expression gets its kind and the exact label sets its series
can carry, derived from the contract. That finds, without a Prometheus server, the queries that
can never return anything (a matcher value outside a closed set, a label an aggregation already
dropped, two sides of a division that share no labels) as well as metrics the contract does not
have and counters, gauges and histograms used against their type. docs/check.md lists the
checks (``CK001``...).

- :func:`check_dashboards` and :func:`check_rules` take files or directories;
- :func:`check_expression` judges one expression;
- each returns a list of :class:`Finding`.

Each takes ``limits=``, a :class:`Limits`: an expression longer, more deeply nested or with more
operators than those bounds is not parsed but reported (``CK001``), since the parser's memory
and time grow with the square of an expression's depth (see :mod:`cadmetrics.check.limits`).

The parser is imported when a check runs, so this package imports without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from cadmetrics.check.catalog import DEFAULT_SCRAPE_LABELS, Series, SeriesType
from cadmetrics.check.findings import CHECKS, Check, Finding, Place
from cadmetrics.check.labels import Kind, LabelSet, Value
from cadmetrics.check.limits import DEFAULT_LIMITS, Limits
from cadmetrics.check.promql import MissingCheckDependency, promql
from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.lint import Severity
from cadmetrics.contract.model import Contract

PathLike = str | os.PathLike[str]

__all__ = [
    "CHECKS",
    "DEFAULT_SCRAPE_LABELS",
    "Check",
    "Finding",
    "Limits",
    "MissingCheckDependency",
    "Severity",
    "check_dashboards",
    "check_expression",
    "check_rules",
]


def check_expression(
    expr: str,
    contract: Contract | None = None,
    *,
    known: Mapping[str, frozenset[str]] | None = None,
    alert: bool = False,
    scrape_labels: Iterable[str] = DEFAULT_SCRAPE_LABELS,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Finding]:
    """The findings of one PromQL expression.

    ``known`` names further series (recorded elsewhere) with their exact label names; ``alert``
    judges the expression as an alerting rule's (it needs a condition)."""
    promql()
    from cadmetrics.check.catalog import Catalog
    from cadmetrics.check.expression import check_text

    extra = {
        name: Series(
            name,
            Value(Kind.INSTANT, (LabelSet(frozenset(labels)),), {}, (name,)),
            SeriesType.UNKNOWN,
            f"the recorded series {name}",
        )
        for name, labels in (known or {}).items()
    }
    catalog = Catalog(
        contract if contract is not None else load_contract(),
        scrape_labels=scrape_labels,
        recorded=extra.get,
        recorded_names=list(extra),
    )
    return list(check_text(expr, catalog, Place(), alert=alert, limits=limits).findings)


def check_dashboards(
    paths: Sequence[PathLike],
    contract: Contract | None = None,
    *,
    scrape_labels: Iterable[str] = DEFAULT_SCRAPE_LABELS,
    rules: Sequence[PathLike] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> list[Finding]:
    """The findings of every Grafana dashboard in ``paths`` (files or directories of ``*.json``).

    Series recorded by the rule files in ``rules`` count as known. A file that cannot be read
    raises :class:`cadmetrics.errors.InputError`."""
    promql()
    from cadmetrics.check.files import read_dashboards, read_rule_files
    from cadmetrics.check.grafana import check_dashboard
    from cadmetrics.check.rules import RuleSet

    contract = contract if contract is not None else load_contract()
    rule_set = RuleSet(read_rule_files(rules), contract, scrape_labels=scrape_labels, limits=limits)
    findings: list[Finding] = []
    for dashboard in read_dashboards(paths):
        findings.extend(check_dashboard(dashboard, rule_set.catalog, limits))
    return findings


def check_rules(
    paths: Sequence[PathLike],
    contract: Contract | None = None,
    *,
    scrape_labels: Iterable[str] = DEFAULT_SCRAPE_LABELS,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Finding]:
    """The findings of every Prometheus rule file in ``paths`` (files or directories of
    ``*.yaml``/``*.yml``), checked together: each file's recording rules are known to all. A
    file that cannot be read raises :class:`cadmetrics.errors.InputError`."""
    promql()
    from cadmetrics.check.files import read_rule_files
    from cadmetrics.check.rules import RuleSet

    contract = contract if contract is not None else load_contract()
    return RuleSet(read_rule_files(paths), contract, scrape_labels=scrape_labels, limits=limits).findings()
