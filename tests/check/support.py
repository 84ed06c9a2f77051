"""Helpers of the checker's tests: findings and label sets of one expression, on the real contract."""

from __future__ import annotations

from collections.abc import Mapping

from cadmetrics.check import Finding, check_expression
from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.model import Contract

CONTRACT: Contract = load_contract()


def findings(
    expr: str, *, known: Mapping[str, frozenset[str]] | None = None, alert: bool = False
) -> list[Finding]:
    return check_expression(expr, CONTRACT, known=known, alert=alert)


def codes(expr: str, *, known: Mapping[str, frozenset[str]] | None = None, alert: bool = False) -> list[str]:
    return [finding.code for finding in findings(expr, known=known, alert=alert)]


def label_sets(expr: str) -> list[set[str]] | None:
    """The possible label sets of ``expr``'s result (``None`` when unknown)."""
    from cadmetrics.check.analyzer import Analyzer
    from cadmetrics.check.catalog import Catalog
    from cadmetrics.check.findings import Place
    from cadmetrics.check.promql import parse

    tree = parse(expr)
    assert not isinstance(tree, str), tree
    value = Analyzer(Catalog(CONTRACT), Place()).evaluate(tree)
    if value.shapes is None:
        return None
    return sorted((set(shape.names) for shape in value.shapes), key=sorted)
