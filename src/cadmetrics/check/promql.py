"""The PromQL parser, imported only when an expression is checked.

``promql-parser`` (a binding of the Rust parser that follows Prometheus's grammar) is an
optional dependency, the ``check`` extra, so that the core library imports without it. A parse
error is never raised to the caller: it becomes a finding carrying the parser's own message.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import TYPE_CHECKING

from cadmetrics.errors import CadMetricsError

if TYPE_CHECKING:
    from promql_parser import Expr


class MissingCheckDependency(CadMetricsError, ImportError):
    """``cadmetrics check`` needs the PromQL parser of the ``check`` extra."""


def promql() -> ModuleType:
    """The ``promql_parser`` module, or an error that says which extra to install."""
    try:
        import promql_parser
    except ImportError:
        raise MissingCheckDependency(
            "checking PromQL needs the promql-parser package: pip install 'cadmetrics[check]'"
        ) from None
    return promql_parser


def parse(text: str) -> Expr | str:
    """The expression's syntax tree, or the parser's message when ``text`` is not PromQL."""
    parser = promql()
    try:
        tree: Expr = parser.parse(text)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException (BaseException)
        message = str(exc).strip() or type(exc).__name__
        return message.splitlines()[0]
    return tree


def excerpt(node: object, limit: int = 160) -> str:
    """A one-line rendering of ``node`` for a finding, shortened to ``limit`` characters."""
    prettify = getattr(node, "prettify", None)
    text = prettify() if callable(prettify) else str(node)
    text = _INNER_PAREN_SPACES.sub("", _SPACES.sub(" ", str(text)).strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SPACES = re.compile(r"\s+")
_INNER_PAREN_SPACES = re.compile(r"(?<=\() | (?=\))")
