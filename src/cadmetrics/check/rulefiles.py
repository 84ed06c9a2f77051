"""Prometheus rule files, read with the line of every rule.

A rule file is YAML with ``groups: [{name, rules: [{alert|record, expr, ...}]}]``; the same
groups under ``spec:`` (a Kubernetes ``PrometheusRule``) are read too, and a file may hold
several YAML documents. The file is walked as YAML nodes rather than loaded as plain data so
that every finding can name its line. Mistakes Prometheus would refuse to load (a rule without
``expr``, both or neither of ``alert``/``record``, a misspelt field, a bad record name) are
findings, not exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import yaml

from cadmetrics.check.findings import FILE_STRUCTURE, Finding, Place, make_finding
from cadmetrics.check.limits import MAX_RULE_FILE_CHARS
from cadmetrics.contract.lint import Severity
from cadmetrics.errors import InputError

RULE_FIELDS = frozenset({"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"})
GROUP_FIELDS = frozenset(
    {"name", "interval", "query_offset", "limit", "rules", "labels", "partial_response_strategy"}
)
_RECORD_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@attrs.frozen
class Rule:
    kind: str  # "alert" or "record"
    name: str
    expr: str
    group: str
    path: str
    line: int
    labels: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def place(self) -> Place:
        return Place(self.path, f"{self.group} > {self.kind} {self.name}", self.line)


@attrs.frozen
class RuleFile:
    path: str
    rules: tuple[Rule, ...]
    problems: tuple[Finding, ...] = ()


def read_rule_file(path: Path, *, named: bool = True) -> RuleFile | None:
    """The rules of ``path``; ``None`` for a YAML file found in a directory that holds no rule
    groups (a promtool test file, say). Raises :class:`InputError` when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read rule file {path}: {exc}") from None
    name = str(path)
    if len(text) > MAX_RULE_FILE_CHARS:
        problem = f"not read: {len(text)} characters, more than a rule file may hold ({MAX_RULE_FILE_CHARS})"
        return RuleFile(name, (), (make_finding(FILE_STRUCTURE, problem, Place(name, "", 0)),))
    try:
        documents = [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        finding = make_finding(FILE_STRUCTURE, f"not valid YAML: {problem}", Place(name, "", line))
        return RuleFile(name, (), (finding,))
    except RecursionError:  # PyYAML composes nested collections recursively
        finding = make_finding(FILE_STRUCTURE, "not a rule file: YAML nested too deeply", Place(name, "", 0))
        return RuleFile(name, (), (finding,))
    reader = _Reader(name)
    found_groups = False
    for document in documents:
        groups = _groups_node(document)
        if groups is not None:
            found_groups = True
            reader.groups(groups)
    if not found_groups:
        if not named:
            return None
        reader.problem("no rule groups: a rule file has a top-level groups: list (or spec.groups:)", 1)
    return RuleFile(name, tuple(reader.rules), tuple(reader.problems))


def _groups_node(document: yaml.Node) -> yaml.Node | None:
    fields = _mapping(document)
    if fields is None:
        return None
    if "groups" in fields:
        return fields["groups"]
    spec = _mapping(fields["spec"]) if "spec" in fields else None
    return spec.get("groups") if spec is not None else None


class _Reader:
    """Walks group and rule nodes, collecting rules and structure problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rules: list[Rule] = []
        self.problems: list[Finding] = []
        self._group_names: set[str] = set()

    def problem(self, message: str, line: int, location: str = "", severity: Severity | None = None) -> None:
        self.problems.append(
            make_finding(FILE_STRUCTURE, message, Place(self.path, location, line), "", severity)
        )

    def groups(self, node: yaml.Node) -> None:
        if not isinstance(node, yaml.SequenceNode):
            if not _is_null(node):
                self.problem("groups: must be a list of groups", _line(node))
            return
        for group in node.value:
            self.group(group)

    def group(self, node: yaml.Node) -> None:
        fields = _mapping(node)
        if fields is None:
            self.problem("a group must be a mapping with name: and rules:", _line(node))
            return
        name = _scalar(fields.get("name"))
        if not name:
            self.problem("a group has no name:", _line(node))
            name = "<unnamed group>"
        elif name in self._group_names:
            self.problem(f"group {name} is repeated in the same file", _line(node), f"{name}")
        self._group_names.add(name)
        for key in sorted(set(fields) - GROUP_FIELDS):
            self.problem(
                f"group {name} has an unknown field {key}:", _line(fields[key]), name, Severity.WARNING
            )
        group_labels = self.labels(fields.get("labels"), name)
        rules = fields.get("rules")
        if rules is None or _is_null(rules):
            return
        if not isinstance(rules, yaml.SequenceNode):
            self.problem(f"rules: of group {name} must be a list", _line(rules), name)
            return
        for rule in rules.value:
            self.rule(rule, name, group_labels)

    def rule(self, node: yaml.Node, group: str, group_labels: Mapping[str, str]) -> None:
        line = _line(node)
        fields = _mapping(node)
        if fields is None:
            self.problem("a rule must be a mapping with expr: and alert: or record:", line, group)
            return
        alert, record = _scalar(fields.get("alert")) or "", _scalar(fields.get("record")) or ""
        kind, name = ("alert", alert) if alert else ("record", record)
        location = f"{group} > {kind} {name or '?'}"
        if bool(alert) == bool(record):
            self.problem("a rule needs exactly one of alert: and record:", line, location)
            return
        for key in sorted(set(fields) - RULE_FIELDS):
            self.problem(f"unknown field {key}: (Prometheus refuses the file)", _line(fields[key]), location)
        if record and not _RECORD_NAME.fullmatch(record):
            self.problem(f"{record!r} is not a valid metric name for a recording rule", line, location)
            return
        expr = _scalar(fields.get("expr"))
        if not expr or not expr.strip():
            self.problem("the rule has no expr:", line, location)
            return
        labels = {**group_labels, **self.labels(fields.get("labels"), location)}
        self.rules.append(Rule(kind, name, expr, group, self.path, line, labels))

    def labels(self, node: yaml.Node | None, location: str) -> dict[str, str]:
        if node is None or _is_null(node):
            return {}
        fields = _mapping(node)
        if fields is None:
            self.problem("labels: must be a mapping of label names to values", _line(node), location)
            return {}
        return {key: _scalar(value) or "" for key, value in fields.items()}


def _mapping(node: yaml.Node | None) -> dict[str, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return {str(key.value): value for key, value in node.value if isinstance(key, yaml.ScalarNode)}


def _scalar(node: yaml.Node | None) -> str | None:
    if isinstance(node, yaml.ScalarNode) and not _is_null(node):
        return str(node.value)
    return None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def iter_rules(files: list[RuleFile]) -> Iterator[Rule]:
    for rule_file in files:
        yield from rule_file.rules
