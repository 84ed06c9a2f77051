"""How deep a parsed expression is, measured without recursion.

The analyzer and the alert-condition check walk the syntax tree recursively, which is the
plain way to compute PromQL's semantics bottom up. Before they do, the tree's depth is
measured here with an explicit stack, so that a tree deeper than
:data:`cadmetrics.check.limits.MAX_TREE_DEPTH` becomes a finding instead of a
``RecursionError`` (only limits raised above the defaults let such a tree through). The
children followed are exactly those the analyzer evaluates.

This module imports the PromQL parser's types, so it is imported only once the parser is
known to be installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp


def children(node: pp.Expr) -> Iterator[pp.Expr]:
    """The sub-expressions of ``node`` that the analyzer evaluates recursively."""
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        yield node.expr
    elif isinstance(node, pp.BinaryExpr):
        yield node.lhs
        yield node.rhs
    elif isinstance(node, pp.AggregateExpr):
        if isinstance(node.param, pp.Expr):
            yield node.param
        yield node.expr
    elif isinstance(node, pp.Call):
        yield from (arg for arg in node.args if isinstance(arg, pp.Expr))


def tree_depth(tree: pp.Expr) -> int:
    """The number of levels of ``tree`` (a lone selector is 1 deep), in one pass over its nodes."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(node))
    return deepest
