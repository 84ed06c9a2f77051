"""Grafana dashboards: every PromQL query in a dashboard's JSON, with the panel that holds it.

Queries live in panel targets (``panels[]``, the panels of collapsed rows, and the ``rows[]``
of the old schema), in template variables (``label_values(metric, label)``,
``query_result(expr)``) and in annotation queries. A dashboard exported through the API
(``{"dashboard": {...}}``) is read too. Targets of other data sources (Loki, expressions,
test data...) are skipped: their ``expr`` is not PromQL. Template variables are replaced first
(see :mod:`cadmetrics.check.variables`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from cadmetrics.check.catalog import Catalog
from cadmetrics.check.expression import check_text
from cadmetrics.check.findings import (
    FILE_STRUCTURE,
    INVALID_EXPRESSION,
    TEMPLATE_VARIABLE,
    Finding,
    Place,
    make_finding,
)
from cadmetrics.check.labels import Usage
from cadmetrics.check.limits import DEFAULT_LIMITS, Limits
from cadmetrics.check.placeholders import PREFIX, holds_placeholder
from cadmetrics.check.variables import Variable, substitute, variables_of
from cadmetrics.contract.lint import Severity
from cadmetrics.errors import InputError

_LABEL_VALUES = re.compile(r"\s*label_values\((?P<body>.*)\)\s*", re.DOTALL)
_QUERY_RESULT = re.compile(r"\s*query_result\((?P<body>.*)\)\s*", re.DOTALL)
_PLACEHOLDER = re.compile(re.escape(PREFIX) + r"(\w+?)__")
_SPECIAL_SOURCES = {"-- Mixed --": "mixed", "-- Grafana --": "grafana", "-- Dashboard --": "dashboard"}


@attrs.frozen
class Query:
    """One PromQL text of a dashboard and how it is run."""

    text: str
    place: Place
    instant: bool = False
    listed_label: str | None = None  # label_values(selector, label)
    variable: bool = False


@attrs.frozen
class Dashboard:
    path: str
    title: str
    variables: Mapping[str, Variable]
    queries: tuple[Query, ...]
    problems: tuple[Finding, ...] = ()


def read_dashboard(path: Path, *, named: bool = True) -> Dashboard | None:
    """The queries of the dashboard in ``path``; ``None`` for a JSON file found in a directory
    that is not a dashboard. Raises :class:`InputError` when the file cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read dashboard {path}: {exc}") from None
    name = str(path)
    too_deep = make_finding(FILE_STRUCTURE, "not a dashboard: JSON nested too deeply", Place(name, "", 0))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        finding = make_finding(FILE_STRUCTURE, f"not valid JSON: {exc.msg}", Place(name, "", exc.lineno))
        return Dashboard(name, "", {}, (), (finding,))
    except RecursionError:  # the decoder nests one C call per level
        return Dashboard(name, "", {}, (), (too_deep,))
    board = _dashboard_object(document)
    if board is None:
        if not named:
            return None
        finding = make_finding(
            FILE_STRUCTURE,
            "not a Grafana dashboard: no panels, rows or dashboard object at the top",
            Place(name, "", 1),
        )
        return Dashboard(name, "", {}, (), (finding,))
    try:
        return _with_lines(parse_dashboard(board, name), text)
    except RecursionError:  # rows and panels nested hundreds deep
        return Dashboard(name, "", {}, (), (too_deep,))


def _dashboard_object(document: object) -> dict[str, Any] | None:
    if not isinstance(document, dict):
        return None
    inner = document.get("dashboard")
    if isinstance(inner, dict) and ("panels" in inner or "rows" in inner):
        return inner
    if "panels" in document or "rows" in document:
        return document
    return None


def parse_dashboard(board: Mapping[str, Any], path: str = "") -> Dashboard:
    """The queries of a dashboard already loaded from JSON."""
    title = str(board.get("title") or "untitled dashboard")
    variables = variables_of(board)
    queries: list[Query] = []
    panels = board.get("panels")
    for panel, trail in _panels(panels if isinstance(panels, list) else [], (title,)):
        queries.extend(_targets(panel, trail, variables, path))
    rows = board.get("rows")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("panels"), list):
            row_trail = (title, str(row.get("title") or "row"))
            for panel, trail in _panels(row["panels"], row_trail):
                queries.extend(_targets(panel, trail, variables, path))
    queries.extend(_variable_queries(board, title, variables, path))
    queries.extend(_annotation_queries(board, title, variables, path))
    return Dashboard(path, title, variables, tuple(queries))


def _with_lines(dashboard: Dashboard, text: str) -> Dashboard:
    """Each query with its line in the file, where its text occurs there exactly once."""
    queries = []
    for query in dashboard.queries:
        needle = json.dumps(query.text)[1:-1]
        first = text.find(needle)
        if first >= 0 and text.find(needle, first + 1) < 0:
            place = attrs.evolve(query.place, line=text.count("\n", 0, first) + 1)
            queries.append(attrs.evolve(query, place=place))
        else:
            queries.append(query)
    return attrs.evolve(dashboard, queries=tuple(queries))


def _panels(panels: list[Any], trail: tuple[str, ...]) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    for panel in panels:
        if not isinstance(panel, dict):
            continue
        here = (*trail, str(panel.get("title") or f"panel {panel.get('id', '?')}"))
        yield panel, here
        nested = panel.get("panels")
        if isinstance(nested, list):
            yield from _panels(nested, here)


def _targets(
    panel: Mapping[str, Any], trail: tuple[str, ...], variables: Mapping[str, Variable], path: str
) -> Iterator[Query]:
    panel_source = _source_type(panel.get("datasource"), variables)
    targets = panel.get("targets")
    for position, target in enumerate(targets if isinstance(targets, list) else []):
        if not isinstance(target, dict):
            continue
        expr = target.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            continue
        source = _source_type(target.get("datasource"), variables) if "datasource" in target else None
        if source in (None, "mixed"):
            source = panel_source if panel_source != "mixed" else None
        if not _is_prometheus(source):
            continue
        ref = str(target.get("refId") or f"query {position + 1}")
        instant = bool(target.get("instant")) and not target.get("range")
        yield Query(expr, Place(path, " > ".join((*trail, ref))), instant=instant)


def _variable_queries(
    board: Mapping[str, Any], title: str, variables: Mapping[str, Variable], path: str
) -> Iterator[Query]:
    templating = board.get("templating")
    items = templating.get("list") if isinstance(templating, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("type") != "query":
            continue
        if not _is_prometheus(_source_type(item.get("datasource"), variables)):
            continue
        query = item.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if not isinstance(query, str):
            continue
        place = Place(path, f"{title} > variable {item.get('name', '?')}")
        values = _LABEL_VALUES.fullmatch(query)
        if values is not None:
            selector, _, label = values.group("body").rpartition(",")
            if selector.strip():
                yield Query(selector.strip(), place, instant=True, listed_label=label.strip(), variable=True)
            continue
        result = _QUERY_RESULT.fullmatch(query)
        if result is not None:
            yield Query(result.group("body"), place, instant=True, variable=True)


def _annotation_queries(
    board: Mapping[str, Any], title: str, variables: Mapping[str, Variable], path: str
) -> Iterator[Query]:
    annotations = board.get("annotations")
    items = annotations.get("list") if isinstance(annotations, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("expr"), str) or not item["expr"].strip():
            continue
        if not _is_prometheus(_source_type(item.get("datasource"), variables)):
            continue
        yield Query(item["expr"], Place(path, f"{title} > annotation {item.get('name', '?')}"))


def _source_type(source: object, variables: Mapping[str, Variable]) -> str | None:
    """The plugin type of a data source reference, where the dashboard tells it."""
    if isinstance(source, dict):
        kind = source.get("type")
        uid = source.get("uid")
        if isinstance(uid, str) and uid in _SPECIAL_SOURCES:
            return _SPECIAL_SOURCES[uid]
        if isinstance(kind, str) and kind:
            return kind
        return _source_type(uid, variables) if isinstance(uid, str) else None
    if isinstance(source, str):
        if source in _SPECIAL_SOURCES:
            return _SPECIAL_SOURCES[source]
        name = source.strip("${}")
        variable = variables.get(name)
        if source.startswith("$") and variable is not None and variable.type == "datasource":
            return variable.query or None
    return None


def _is_prometheus(source: str | None) -> bool:
    """Unknown sources (the default one, a source named in an old dashboard) count as Prometheus."""
    return source is None or "prometheus" in source.lower()


def check_dashboard(dashboard: Dashboard, catalog: Catalog, limits: Limits = DEFAULT_LIMITS) -> list[Finding]:
    """Every finding of one dashboard, query by query (each within ``limits`` once its variables
    are replaced)."""
    findings = list(dashboard.problems)
    for query in dashboard.queries:
        findings.extend(_check_query(query, dashboard.variables, catalog, limits))
    return findings


def _check_query(
    query: Query, variables: Mapping[str, Variable], catalog: Catalog, limits: Limits
) -> list[Finding]:
    substituted = substitute(query.text, variables)
    flat = " ".join(query.text.split())
    if substituted.undefined:
        return [
            make_finding(
                TEMPLATE_VARIABLE,
                f"${name} is not a variable of this dashboard (nor one of Grafana's), so the query "
                "cannot run as written",
                query.place,
                flat,
            )
            for name in substituted.undefined
        ]

    def unparsable(message: str) -> Finding:
        if substituted.guessed:
            names = ", ".join(f"${name}" for name in substituted.guessed)
            return make_finding(
                TEMPLATE_VARIABLE,
                f"{names} stands where PromQL needs a name or a number, and the dashboard stores no "
                f"single current value to check the query with (the parser says: {message})",
                query.place,
                flat,
                Severity.WARNING,
            )
        return make_finding(INVALID_EXPRESSION, f"not valid PromQL: {message}", query.place, flat)

    checked = check_text(
        substituted.text,
        catalog,
        query.place,
        allow_range=query.instant,
        usage=Usage.EXISTENCE if query.variable else Usage.VALUE,
        listed_label=query.listed_label,
        unparsable=unparsable,
        limits=limits,
    )
    return [_restore_variables(finding) for finding in checked.findings]


def _restore_variables(finding: Finding) -> Finding:
    """Show a variable's placeholder as the variable again in the expression excerpt."""
    if not holds_placeholder(finding.expression):
        return finding
    return attrs.evolve(finding, expression=_PLACEHOLDER.sub(r"$\1", finding.expression))
