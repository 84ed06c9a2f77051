"""Whether an alert expression has a condition.

An alerting rule fires for every series its expression returns. Without a filter (a comparison
that is not ``bool``, or ``absent()``) it returns every series that exists, so the alert fires
as soon as the metric does. An expression filters when:

- it is a comparison without ``bool``, or ``absent()`` / ``absent_over_time()``;
- it is ``a and b`` where either side filters, ``a unless b`` where ``a`` filters, or
  ``a or b`` where both do;
- it is arithmetic, a function or an aggregation over something that filters (``count(x > 1)``
  returns nothing when nothing is over 1).

Deliberately unconditional alerts (the "watchdog" ``vector(1)``) are reported as warnings.
"""

from __future__ import annotations

import promql_parser as pp

from cadmetrics.check.analyzer import COMPARISONS


def filters(node: pp.Expr) -> bool:
    """True when ``node`` returns only the series that meet a condition."""
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr):
        return filters(node.expr)
    if isinstance(node, pp.BinaryExpr):
        op = str(node.op)
        returns_bool = node.modifier is not None and node.modifier.return_bool
        if op in COMPARISONS:
            return not returns_bool or filters(node.lhs) or filters(node.rhs)
        if op == "or":
            return filters(node.lhs) and filters(node.rhs)
        if op == "unless":
            return filters(node.lhs)
        return filters(node.lhs) or filters(node.rhs)
    if isinstance(node, pp.Call):
        if node.func.name in ("absent", "absent_over_time"):
            return True
        # A loop rather than any() over a generator: one frame per nested call, not three.
        for arg in node.args:  # noqa: SIM110
            if isinstance(arg, pp.Expr) and filters(arg):
                return True
        return False
    if isinstance(node, pp.AggregateExpr):
        return filters(node.expr)
    if isinstance(node, pp.SubqueryExpr):
        return filters(node.expr)
    return False
