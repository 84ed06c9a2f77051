"""Label matcher values against what the contract admits.

A label with a closed set (``values: [...]``) can only carry those values (or the overflow value
the telemetry layer substitutes for anything else), and a histogram's ``le`` only its declared
bucket bounds and ``+Inf``. So ``result="eror"`` selects nothing, ``result!="eror"`` filters
nothing, and ``version=~"v5|v6"`` selects nothing: Prometheus regexes are fully anchored, so a
regex is judged with :func:`re.fullmatch` against each admitted value. A regex Python cannot
compile (RE2 syntax it lacks) is not judged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import attrs

from cadmetrics.contract.lint import Severity
from cadmetrics.contract.model import OVERFLOW_VALUE

#: Matcher operators by the parser's names for them.
MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


@attrs.frozen
class ValueProblem:
    severity: Severity
    message: str


def closed_set_problem(
    op: str, label: str, value: str, allowed: frozenset[str], owner: str
) -> ValueProblem | None:
    """What is wrong with ``label op "value"`` when ``label`` takes only ``allowed`` values."""
    admitted = allowed | {OVERFLOW_VALUE}
    listing = ", ".join(sorted(allowed))
    if op == "=" and value not in admitted:
        return ValueProblem(
            Severity.ERROR,
            f'{label}="{value}" never matches: label {label} of {owner} is one of {listing}',
        )
    if op == "!=" and value not in admitted:
        return ValueProblem(
            Severity.WARNING,
            f'{label}!="{value}" filters nothing: label {label} of {owner} is one of {listing}',
        )
    if op in ("=~", "!~"):
        pattern = _compile(value)
        if pattern is None:
            return None
        matched = {candidate for candidate in allowed if pattern.fullmatch(candidate)}
        if op == "=~" and not matched and not pattern.fullmatch(OVERFLOW_VALUE):
            return ValueProblem(
                Severity.ERROR,
                f'{label}=~"{value}" matches none of the values of label {label} of {owner} ({listing})',
            )
        if op == "!~" and matched == set(allowed):
            severity = Severity.ERROR if pattern.fullmatch(OVERFLOW_VALUE) else Severity.WARNING
            rest = "nothing" if severity is Severity.ERROR else f"only {OVERFLOW_VALUE}"
            return ValueProblem(
                severity,
                f'{label}!~"{value}" excludes every value of label {label} of {owner} ({listing}): '
                f"it leaves {rest}",
            )
    return None


def bucket_problem(op: str, value: str, buckets: Iterable[float], owner: str) -> ValueProblem | None:
    """What is wrong with ``le op "value"`` on the _bucket series of a histogram with ``buckets``.

    Bounds are compared as numbers (``le="1"`` and ``le="1.0"`` are the same bound: the text
    depends on the client library and the Prometheus version); a regex is tried against both
    spellings of every bound."""
    bounds = (*buckets, math.inf)
    listing = ", ".join(_spellings(bound)[0] for bound in bounds)
    if op in ("=", "!="):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if any(number == bound for bound in bounds):
            return None
        if op == "=":
            return ValueProblem(
                Severity.ERROR, f'le="{value}" never matches: {owner} has the bucket bounds {listing}'
            )
        return ValueProblem(
            Severity.WARNING, f'le!="{value}" filters nothing: {owner} has the bucket bounds {listing}'
        )
    pattern = _compile(value)
    if pattern is None:
        return None
    matched = [bound for bound in bounds if any(pattern.fullmatch(text) for text in _spellings(bound))]
    if op == "=~" and not matched:
        return ValueProblem(
            Severity.ERROR, f'le=~"{value}" matches none of the bucket bounds of {owner} ({listing})'
        )
    if op == "!~" and len(matched) == len(bounds):
        return ValueProblem(
            Severity.ERROR, f'le!~"{value}" excludes every bucket bound of {owner} ({listing})'
        )
    return None


def _spellings(bound: float) -> tuple[str, ...]:
    if math.isinf(bound):
        return ("+Inf",)
    text = repr(float(bound))
    short = text.removesuffix(".0")
    return (short, text) if short != text else (text,)


def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None
