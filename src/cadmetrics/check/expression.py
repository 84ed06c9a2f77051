"""One expression from parse to findings: the step shared by dashboards, rules and the API."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from cadmetrics.check.analyzer import Analyzer, Use
from cadmetrics.check.catalog import Catalog
from cadmetrics.check.conditions import filters
from cadmetrics.check.depth import tree_depth
from cadmetrics.check.findings import (
    ALERT_WITHOUT_CONDITION,
    INVALID_EXPRESSION,
    UNKNOWN_LABEL,
    Finding,
    Place,
    make_finding,
)
from cadmetrics.check.labels import Kind, Usage, Value
from cadmetrics.check.limits import DEFAULT_LIMITS, MAX_TREE_DEPTH, Limits, exceeded
from cadmetrics.check.promql import excerpt, parse


@attrs.frozen
class Checked:
    """The findings of one expression and what it evaluates to (``None`` when it did not parse)."""

    findings: tuple[Finding, ...]
    value: Value | None


def check_text(
    text: str,
    catalog: Catalog,
    place: Place,
    *,
    alert: bool = False,
    allow_range: bool = False,
    usage: Usage = Usage.VALUE,
    listed_label: str | None = None,
    unparsable: Callable[[str], Finding] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Checked:
    """Parse ``text`` and judge it.

    ``alert`` adds the alert-condition check; ``allow_range`` admits a range vector as the
    result (an instant query in a dashboard table); ``usage`` says how the result is used
    (``EXISTENCE`` for a query that only lists series); ``listed_label`` is a label whose values
    are listed (Grafana's ``label_values``), which the series must carry; ``unparsable`` makes
    the finding for a parse error (by default an invalid-expression finding). An expression
    beyond ``limits`` is not parsed, and one whose tree is deeper than the analyzer walks is not
    judged: either gives an invalid-expression finding that names the bound."""
    too_large = exceeded(text, limits)
    if too_large is not None:
        return _not_checked(too_large, text, place)
    tree = parse(text)
    if isinstance(tree, str):
        if unparsable is not None:
            return Checked((unparsable(tree),), None)
        finding = make_finding(INVALID_EXPRESSION, f"not valid PromQL: {tree}", place, _shorten(text))
        return Checked((finding,), None)
    depth = tree_depth(tree)
    if depth > MAX_TREE_DEPTH:
        return _not_checked(
            f"its syntax tree is {depth:,} levels deep, over the analyzer's bound of {MAX_TREE_DEPTH:,}",
            text,
            place,
        )
    analyzer = Analyzer(catalog, place)
    value = analyzer.evaluate(tree, Use(usage))
    if listed_label is not None:
        analyzer.require(value, listed_label, f"label_values(..., {listed_label})", tree, UNKNOWN_LABEL)
    findings = list(analyzer.findings)
    if value.kind is Kind.STRING or (value.kind is Kind.RANGE and not allow_range):
        findings.append(
            make_finding(
                INVALID_EXPRESSION,
                f"the result is a {value.kind}: a query over time and a rule need an instant vector "
                "or a scalar",
                place,
                excerpt(tree),
            )
        )
    if alert and not filters(tree):
        findings.append(
            make_finding(
                ALERT_WITHOUT_CONDITION,
                "the alert has no condition (no comparison and no absent()): it fires for every "
                "series the expression returns, as soon as they exist",
                place,
                excerpt(tree),
            )
        )
    return Checked(tuple(findings), value)


def _not_checked(reason: str, text: str, place: Place) -> Checked:
    """The finding of an expression too large to be parsed or judged safely."""
    finding = make_finding(INVALID_EXPRESSION, f"too large to check: {reason}", place, _shorten(text))
    return Checked((finding,), None)


def _shorten(text: str, limit: int = 160) -> str:
    head = text[: limit * 4]  # an expression may be megabytes long: flatten only what is shown
    flat = " ".join(head.split())
    return flat if len(flat) <= limit and len(head) == len(text) else flat[: limit - 1] + "…"
