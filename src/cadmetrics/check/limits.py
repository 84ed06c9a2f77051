"""Bounds on an expression's size, checked before the expression reaches the PromQL parser.

The parser (``promql-parser`` 0.12, Rust behind Python bindings) spends time and memory that
grow with the number of nodes times the depth of the syntax tree, and it recurses on the
native stack. Measured on CPython 3.11 with the default 8 MiB main-thread stack:

- a flat chain ``1 + 1 + ...`` (a left-deep tree, one level per operator): 1,000 terms (4 KB)
  take 0.16 s and 150 MB, 2,000 terms 0.64 s and 565 MB, 3,000 terms 1.5 s and 1.25 GB,
  4,000 terms (16 KB) 3.3 s and 2.2 GB; from about 4,200 terms the process dies with a
  segmentation fault (a native stack overflow), whatever memory it may use;
- nested parentheses ``((...(1)...))``: depth 1,000 takes 0.07 s and 81 MB, 2,000 0.26 s and
  288 MB, 4,000 1.1 s and 1.1 GB, 8,000 6.6 s and 4.4 GB; depth 10,000 is a segmentation fault.
  Nested ``sum(...)`` grows the same way (2,000 deep: 0.47 s, 288 MB);
- a balanced tree of 16,383 terms (98 KB, depth 14) takes only 0.33 s and 195 MB: length alone
  is not what costs, depth is.

The analyzer then recurses in Python, two frames per level of the tree: about 500 levels (a
chain of 500 ``+``, or 1,000 nested ``sum``) reach Python's default recursion limit of 1,000.

Real dashboards and rules stay far below every bound here: their expressions are under 1,000
characters, nest under 10 brackets deep and hold a few dozen operators at most. Every bound
is a module constant and a field of :class:`Limits`, which the checker's entry points take.
A bracket nests no node deeper than its depth, and every other level of the tree is an
operator, so the tree is at most ``max_nesting + max_operators + 1`` levels deep: 225 with the
defaults, under :data:`MAX_TREE_DEPTH`, which the analyzer is checked against after parsing
(for limits raised above the defaults).
"""

from __future__ import annotations

import re

import attrs

#: Characters in one expression (after Grafana's variables are replaced). The bound that is
#: checked first, so the scan below never reads more than this many characters.
MAX_EXPRESSION_LENGTH = 10_000
#: How deep ``(``, ``[`` and ``{`` may nest (outside strings and comments). Real
#: expressions nest under 10 deep; the parser's cost grows with the square of the depth.
MAX_NESTING_DEPTH = 64
#: Binary and unary operators in one expression (``+ - * / % ^``, comparisons, ``and``,
#: ``or``, ``unless``, ``atan2``), outside label matchers, strings and comments. A flat chain
#: of operators is a tree as deep as it is long, which the length bound alone would let
#: through: 10,000 characters hold 5,000 terms of ``1+1+...``, past the parser's crash.
MAX_OPERATORS = 160
#: Levels of the parsed syntax tree that the analyzer (and the alert-condition check) will
#: walk: at two Python frames per level it stays far from the default recursion limit,
#: whatever the caller's own depth up to about 450 frames. Not configurable, since it
#: protects the interpreter rather than expressing a policy.
MAX_TREE_DEPTH = 256
#: Characters in one rule file. PyYAML composes 50 to 200 kilobytes a second in pure Python
#: (flow-style YAML is the slow end): a 1.6 MB file took 30 s to read, an 8 MB one longer. Real
#: rule files are tens of kilobytes; the largest public ones (the Kubernetes mixin's alerts,
#: rendered into one file) are about 200 KB.
MAX_RULE_FILE_CHARS = 400_000


@attrs.frozen
class Limits:
    """The bounds an expression must stay within to be parsed and judged."""

    max_length: int = MAX_EXPRESSION_LENGTH
    max_nesting: int = MAX_NESTING_DEPTH
    max_operators: int = MAX_OPERATORS


DEFAULT_LIMITS = Limits()


@attrs.frozen
class Size:
    """What the bounds are measured on: characters, deepest bracket nesting and operators."""

    length: int
    nesting: int
    operators: int


# One token per match: a string (an unterminated one runs to the end), a comment, a name or
# keyword, an operator, or a bracket. Anything else (digits, commas, spaces) is skipped.
_TOKEN = re.compile(
    r"""
      "(?:[^"\\]|\\.)*"?
    | '(?:[^'\\]|\\.)*'?
    | `[^`]*`?
    | \#[^\n]*
    | [A-Za-z_:][A-Za-z0-9_:]*
    | ==|!=|<=|>=|=~|!~
    | [-+*/%^<>=]
    | [(\[{]
    | [)\]}]
    """,
    re.VERBOSE | re.DOTALL,
)
_WORD_OPERATORS = frozenset({"and", "or", "unless", "atan2"})
_SYMBOL_OPERATORS = frozenset({"==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "^", "<", ">"})
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")


def measure(text: str) -> Size:
    """The size of ``text`` in one linear pass that skips string literals and comments.

    Operators are counted generously (the ``-`` of ``1e-5`` counts, as does a label called
    ``or`` in ``by (or)``): the count is an upper bound, which is what the bound needs."""
    depth = nesting = operators = 0
    in_matchers = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first in _OPENERS:
            depth += 1
            nesting = max(nesting, depth)
            in_matchers += first == "{"
        elif first in _CLOSERS:
            depth = max(depth - 1, 0)
            in_matchers = max(in_matchers - (first == "}"), 0)
        elif in_matchers:
            continue  # label matchers: = != =~ !~ compare a label, they build no tree
        elif token in _SYMBOL_OPERATORS or token.lower() in _WORD_OPERATORS:
            operators += 1
    return Size(len(text), nesting, operators)


def exceeded(text: str, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """Why ``text`` is too large to be parsed, or ``None`` when it is within ``limits``."""
    if len(text) > limits.max_length:
        return (
            f"the expression is {len(text):,} characters long, over the checker's bound of "
            f"{limits.max_length:,} (max_length)"
        )
    size = measure(text)
    if size.nesting > limits.max_nesting:
        return (
            f"brackets nest {size.nesting:,} deep, over the checker's bound of {limits.max_nesting:,} "
            "(max_nesting)"
        )
    if size.operators > limits.max_operators:
        return (
            f"the expression holds {size.operators:,} operators, over the checker's bound of "
            f"{limits.max_operators:,} (max_operators)"
        )
    return None
