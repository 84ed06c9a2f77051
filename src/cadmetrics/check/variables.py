"""Grafana template variables, replaced so that a dashboard query parses as PromQL.

Grafana rewrites ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]`` before it sends a query,
so the text in a dashboard is not PromQL yet. Each use is replaced according to where it
stands:

- Grafana's own interval and range variables (``$__rate_interval``, ``$__interval``,
  ``$__range``...) become a fixed duration (or number, for ``_ms``/``_s`` and ``$__from``/``$__to``);
- inside a quoted string (a matcher value such as ``job=~"$job"``) a variable becomes a
  placeholder the checker never judges, since the user picks the value on the dashboard;
- inside a range (``[$window]``) it becomes its current value when that is a duration, else 5m;
- anywhere else (a metric or label name, a number) it becomes its current value when the
  dashboard stores exactly one, else a placeholder name.

A variable the dashboard does not define is left as it is (Grafana does the same) and reported
when it stands outside a string, where it breaks the query; inside a string ``$1`` is a regex
group reference of label_replace, not a variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from cadmetrics.check.placeholders import placeholder

#: Stand-in values of Grafana's built-in variables.
BUILTIN_DURATIONS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__auto_interval": "1m",
    "__auto": "1m",
}
BUILTIN_NUMBERS = {
    "__interval_ms": "60000",
    "__rate_interval_ms": "300000",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__from": "1700000000000",
    "__to": "1700003600000",
}
DEFAULT_DURATION = "5m"

_VARIABLE = re.compile(
    r"\$\{(?P<braced>\w+)(?::(?P<format>[^}]*))?\}|\[\[(?P<old>\w+)(?::[^\]]*)?\]\]|\$(?P<plain>\w+)"
)
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


@attrs.frozen
class Variable:
    """A dashboard variable: its name, its type and its one current value, when it has one."""

    name: str
    type: str = "query"
    current: str | None = None
    query: str = ""  # for a data source variable, the plugin type it lists (prometheus, loki...)


@attrs.frozen
class Substitution:
    text: str
    undefined: tuple[str, ...] = ()  # used outside strings, defined nowhere
    guessed: tuple[str, ...] = ()  # used outside strings with no single current value


def substitute(text: str, variables: Mapping[str, Variable]) -> Substitution:
    """``text`` with every template variable replaced (see the module's docstring)."""
    out: list[str] = []
    undefined: list[str] = []
    guessed: list[str] = []
    quote = ""
    depth = 0
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote != "`":
                out.append(text[i : i + 2])
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        match = _VARIABLE.match(text, i) if char in "$[" else None
        if match is None:
            if not quote:
                depth += (char == "[") - (char == "]")
            out.append(char)
            i += 1
            continue
        name = match.group("braced") or match.group("old") or match.group("plain") or ""
        value = _replacement(name, match.group("format") or "", variables, bool(quote), depth > 0)
        if value is None:
            if not quote and not name.isdigit():
                undefined.append(name)
            out.append(match.group(0))
        else:
            if not quote and depth == 0 and name in variables and _current(name, variables) is None:
                guessed.append(name)
            out.append(value)
        i = match.end()
    return Substitution("".join(out), tuple(dict.fromkeys(undefined)), tuple(dict.fromkeys(guessed)))


def _replacement(
    name: str, format_: str, variables: Mapping[str, Variable], in_string: bool, in_range: bool
) -> str | None:
    if name in BUILTIN_DURATIONS or name.startswith("__auto_interval"):
        return BUILTIN_DURATIONS.get(name, "1m")
    if name in BUILTIN_NUMBERS:
        number = BUILTIN_NUMBERS[name]
        return number[:-3] if name in ("__from", "__to") and format_.endswith("seconds") else number
    if name not in variables:
        return None
    if in_string:
        return placeholder(name)
    current = _current(name, variables)
    if in_range:
        if current is not None and current.startswith("$__"):
            return _replacement(current[1:], "", variables, False, True)
        return current if current is not None and _DURATION.fullmatch(current) else DEFAULT_DURATION
    return current if current is not None else placeholder(name)


def _current(name: str, variables: Mapping[str, Variable]) -> str | None:
    variable = variables.get(name)
    return None if variable is None else variable.current


def variables_of(dashboard: Mapping[str, object]) -> dict[str, Variable]:
    """The dashboard's template variables by name."""
    templating = dashboard.get("templating")
    items = templating.get("list") if isinstance(templating, dict) else None
    found: dict[str, Variable] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        query = item.get("query")
        found[item["name"]] = Variable(
            name=item["name"],
            type=str(item.get("type", "query")),
            current=_single_value(item.get("current")),
            query=query if isinstance(query, str) else "",
        )
    return found


def _single_value(current: object) -> str | None:
    """The variable's current value when it is exactly one concrete value."""
    if not isinstance(current, dict):
        return None
    value = current.get("value")
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if not isinstance(value, str) or not value or value == "$__all":
        return None
    return value
