"""Lint rules for a contract: the conventions that keep its names usable in PromQL and OTel.

Each rule has a stable id (``CM001``...) and a short name, so that a finding can be looked up
and so that tests can show one failing example per rule. Rules look at the composed contract,
so cross-file rules (duplicates, replacements) see every file at once.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterator

import attrs

from cadmetrics.contract.model import (
    DEFAULT_OPEN_LABEL_CAP,
    OVERFLOW_VALUE,
    AttributeSpec,
    AttributeType,
    Contract,
    Location,
    MetricSpec,
    MetricType,
    SpanSpec,
    Stability,
    Unit,
    definition_difference,
)
from cadmetrics.contract.naming import series_names


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@attrs.frozen
class Rule:
    id: str
    name: str
    summary: str


@attrs.frozen
class Finding:
    rule: Rule
    message: str
    location: Location
    metric: str | None = None
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.location}: {self.rule.id} {self.rule.name}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule.id,
            "name": self.rule.name,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.location.path,
            "line": self.location.line,
            "metric": self.metric,
        }


#: The largest cap an open label may declare (rule CM017): as many values as a closed set may
#: list (:data:`cadmetrics.contract.loader.MAX_LABEL_VALUES`). Each value is a series per
#: combination of the other labels, and telemetry keeps the admitted values in memory.
MAX_OPEN_LABEL_CAP = 10_000

NAME_FORMAT = Rule("CM001", "name-format", "metric names match [a-z_][a-z0-9_]*")
NAME_NAMESPACE = Rule(
    "CM002",
    "name-namespace",
    "metric names start with one of their file's namespaces and _, unless another library provides them",
)
COUNTER_TOTAL = Rule("CM003", "counter-total", "counter names end in _total")
TOTAL_ONLY_COUNTERS = Rule("CM004", "total-only-counters", "only counter names end in _total")
UNIT_SUFFIX = Rule("CM005", "unit-suffix", "a unit implies its suffix, and a suffix its unit")
LABEL_NAME = Rule("CM006", "label-name", "label names match [a-zA-Z_][a-zA-Z0-9_]*")
LABEL_RESERVED = Rule(
    "CM007",
    "label-reserved",
    "label names are not le, quantile, job, instance, __* or otel_scope_*",
)
BUCKETS = Rule("CM008", "buckets", "buckets are non-empty, finite and strictly increasing")
BUCKETS_TYPE = Rule("CM009", "buckets-type", "only histograms declare buckets")
HELP = Rule("CM010", "help", "every metric has a non-empty help text")
DUPLICATE = Rule("CM011", "duplicate-name", "no two metrics share a name")
DEPRECATED = Rule("CM012", "deprecated-replacement", "deprecated metrics name an existing replacement")
MULTIPROCESS = Rule("CM013", "multiprocess-mode", "only gauges declare a multiprocess_mode")
LABEL_VALUES = Rule("CM014", "label-values", "closed label values are non-empty and not reserved")
NEGATIVE_BUCKETS = Rule(
    "CM015",
    "negative-buckets",
    "histograms observe non-negative values (OpenTelemetry drops negative ones)",
)
NAME_COLLISION = Rule(
    "CM016",
    "name-collision",
    "no two metrics share a series name (x, x_total, x_bucket...) or an OpenTelemetry name",
)
OPEN_LABEL_CAP = Rule(
    "CM017",
    "open-label-cap",
    f"an open label's cap is at most {MAX_OPEN_LABEL_CAP} distinct values",
)
SPAN_NAME = Rule(
    "CM018",
    "span-name",
    "span names are dotted lower-case words starting with their namespace (ns.component.operation)",
)
SPAN_ATTRIBUTES = Rule(
    "CM019",
    "span-attributes",
    "span and event attribute names are dotted lower-case words, closed values non-empty, events unique",
)
DUPLICATE_SPAN = Rule("CM020", "duplicate-span", "no two spans share a name")
SPAN_LABEL_CONFLICT = Rule(
    "CM021",
    "span-label-conflict",
    "a span attribute named like a metric label admits no value the label does not",
)

RULES = (
    NAME_FORMAT,
    NAME_NAMESPACE,
    COUNTER_TOTAL,
    TOTAL_ONLY_COUNTERS,
    UNIT_SUFFIX,
    LABEL_NAME,
    LABEL_RESERVED,
    BUCKETS,
    BUCKETS_TYPE,
    HELP,
    DUPLICATE,
    DEPRECATED,
    MULTIPROCESS,
    LABEL_VALUES,
    NEGATIVE_BUCKETS,
    NAME_COLLISION,
    OPEN_LABEL_CAP,
    SPAN_NAME,
    SPAN_ATTRIBUTES,
    DUPLICATE_SPAN,
    SPAN_LABEL_CONFLICT,
)

_METRIC_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED_LABELS = frozenset({"le", "quantile", "job", "instance"})
_RESERVED_PREFIXES = ("__", "otel_scope_")
_UNIT_SUFFIXES = {unit.suffix: unit for unit in Unit if unit is not Unit.NONE}

_Check = Callable[[MetricSpec], Iterator[tuple[Rule, str]]]

#: Rules whose findings are advice rather than errors.
_WARNING_RULES = frozenset({"CM015"})


def _names(spec: MetricSpec) -> Iterator[tuple[Rule, str]]:
    if not _METRIC_NAME.fullmatch(spec.name):
        yield NAME_FORMAT, f"{spec.name!r} does not match [a-z_][a-z0-9_]*"
    is_total = spec.name.endswith("_total")
    if spec.type is MetricType.COUNTER and not is_total:
        yield COUNTER_TOTAL, f"counter {spec.name!r} must end in _total"
    if spec.type is not MetricType.COUNTER and is_total:
        yield TOTAL_ONLY_COUNTERS, f"{spec.type} {spec.name!r} must not end in _total"


def _unit(spec: MetricSpec) -> Iterator[tuple[Rule, str]]:
    stem = spec.name.removesuffix("_total")
    if spec.unit is not Unit.NONE and not stem.endswith(spec.unit.suffix):
        where = " before _total" if spec.type is MetricType.COUNTER else ""
        yield UNIT_SUFFIX, f"unit {spec.unit} needs the name to end in {spec.unit.suffix}{where}"
    for suffix, unit in _UNIT_SUFFIXES.items():
        if stem.endswith(suffix) and spec.unit is not unit:
            yield (
                UNIT_SUFFIX,
                f"the name ends in {suffix} but declares unit {spec.unit}, not {unit}",
            )


def _labels(spec: MetricSpec) -> Iterator[tuple[Rule, str]]:
    for label in spec.labels:
        if not _LABEL.fullmatch(label.name):
            yield LABEL_NAME, f"label {label.name!r} does not match [a-zA-Z_][a-zA-Z0-9_]*"
        if label.name in _RESERVED_LABELS or label.name.startswith(_RESERVED_PREFIXES):
            yield LABEL_RESERVED, f"label {label.name!r} is reserved by Prometheus or the exporters"
        if label.max_values is not None and label.max_values > MAX_OPEN_LABEL_CAP:
            yield (
                OPEN_LABEL_CAP,
                f"open label {label.name!r} admits {label.max_values} values, more than "
                f"{MAX_OPEN_LABEL_CAP}; a label with that many values is an identifier: put it in a "
                f"log or a span attribute, or let 'open' cap it at {DEFAULT_OPEN_LABEL_CAP}",
            )
        for value in label.values or ():
            if not value:
                yield LABEL_VALUES, f"label {label.name!r} lists an empty value"
            if value == OVERFLOW_VALUE:
                yield (
                    LABEL_VALUES,
                    f"label {label.name!r}: {OVERFLOW_VALUE!r} is reserved for overflow",
                )


def _buckets(spec: MetricSpec) -> Iterator[tuple[Rule, str]]:
    if spec.buckets is None:
        return
    if spec.type is not MetricType.HISTOGRAM:
        yield BUCKETS_TYPE, f"{spec.type} {spec.name!r} declares buckets; only histograms have them"
        return
    if not spec.buckets:
        yield BUCKETS, "a histogram needs at least one bucket"
    if not all(math.isfinite(b) for b in spec.buckets):
        yield BUCKETS, "buckets must be finite (+Inf is always added)"
    if any(b >= a for b, a in zip(spec.buckets, spec.buckets[1:], strict=False)):
        yield BUCKETS, f"buckets must be strictly increasing: {list(spec.buckets)}"
    if spec.buckets and spec.buckets[0] < 0:
        yield (
            NEGATIVE_BUCKETS,
            (
                "negative buckets: OpenTelemetry histograms drop negative observations; "
                "observe a magnitude and put the sign in a label"
            ),
        )


def _help(spec: MetricSpec) -> Iterator[tuple[Rule, str]]:
    if not spec.help.strip():
        yield HELP, f"{spec.name!r} has no help text"


def _multiprocess(spec: MetricSpec) -> Iterator[tuple[Rule, str]]:
    if spec.multiprocess_mode is not None and spec.type is not MetricType.GAUGE:
        yield MULTIPROCESS, f"{spec.type} {spec.name!r} declares multiprocess_mode; only gauges do"


_PER_METRIC: tuple[_Check, ...] = (_names, _unit, _labels, _buckets, _help, _multiprocess)


def lint(contract: Contract) -> list[Finding]:
    """Every rule broken by ``contract``, in file order."""
    findings: list[Finding] = []
    seen: dict[str, MetricSpec] = {}
    occupied: dict[str, MetricSpec] = {}
    namespaces = {part.path: part.namespaces for part in contract.parts}
    for spec in contract:
        for check in _PER_METRIC:
            for rule, message in check(spec):
                severity = Severity.WARNING if rule.id in _WARNING_RULES else Severity.ERROR
                findings.append(Finding(rule, message, spec.location, spec.name, severity))
        findings.extend(_namespace(spec, namespaces.get(spec.location.path, (spec.namespace,))))
        earlier = seen.setdefault(spec.name, spec)
        if earlier is not spec:
            findings.append(
                Finding(
                    DUPLICATE,
                    f"{spec.name!r} is already declared at {earlier.location}"
                    f"{definition_difference(earlier, spec)}",
                    spec.location,
                    spec.name,
                )
            )
        else:
            findings.extend(_collisions(spec, occupied))
        findings.extend(_replacement(spec, contract))
    findings.extend(_span_findings(contract))
    return findings


_SPAN_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")


def _span_findings(contract: Contract) -> Iterator[Finding]:
    labels = _label_domains(contract)
    seen: dict[str, SpanSpec] = {}
    for span in contract.spans:
        problems: list[tuple[Rule, str]] = []
        if not _SPAN_NAME.fullmatch(span.name):
            problems.append(
                (SPAN_NAME, f"span {span.name!r} is not dotted lower-case words (ns.component.op)")
            )
        elif not span.name.startswith(span.namespace + "."):
            problems.append((SPAN_NAME, f"span {span.name!r} does not start with {span.namespace + '.'!r}"))
        if not span.help.strip():
            problems.append((HELP, f"span {span.name!r} has no help text"))
        problems.extend(_attribute_problems(span.attributes, f"span {span.name!r}"))
        event_names: set[str] = set()
        for event in span.events:
            if not _ATTRIBUTE_NAME.fullmatch(event.name):
                problems.append((SPAN_ATTRIBUTES, f"event {event.name!r} is not dotted lower-case words"))
            if event.name in event_names:
                problems.append((SPAN_ATTRIBUTES, f"event {event.name!r} is declared twice"))
            event_names.add(event.name)
            problems.extend(_attribute_problems(event.attributes, f"event {event.name!r}"))
        for attribute in span.attributes:
            conflict = _conflict(attribute, labels[attribute.name]) if attribute.name in labels else ""
            if conflict:
                problems.append((SPAN_LABEL_CONFLICT, f"attribute {attribute.name!r} {conflict}"))
        earlier = seen.setdefault(span.name, span)
        if earlier is not span:
            problems.append((DUPLICATE_SPAN, f"span {span.name!r} is already declared at {earlier.location}"))
        for rule, message in problems:
            yield Finding(rule, message, span.location, span.name)


def _attribute_problems(attributes: tuple[AttributeSpec, ...], owner: str) -> Iterator[tuple[Rule, str]]:
    for attribute in attributes:
        if not _ATTRIBUTE_NAME.fullmatch(attribute.name):
            yield SPAN_ATTRIBUTES, f"{owner}: attribute {attribute.name!r} is not dotted lower-case words"
        if any(not value for value in attribute.values or ()):
            yield SPAN_ATTRIBUTES, f"{owner}: attribute {attribute.name!r} lists an empty value"
        if attribute.max_values is not None and attribute.max_values > MAX_OPEN_LABEL_CAP:
            yield (
                OPEN_LABEL_CAP,
                f"{owner}: attribute {attribute.name!r} admits {attribute.max_values} values",
            )


def _label_domains(contract: Contract) -> dict[str, frozenset[str] | None]:
    """Every metric label name and the values it admits across the contract (None: open)."""
    domains: dict[str, frozenset[str] | None] = {}
    for spec in contract:
        for label in spec.labels:
            if label.values is None or (label.name in domains and domains[label.name] is None):
                domains[label.name] = None
            else:
                domains[label.name] = domains.get(label.name, frozenset()) | frozenset(label.values)  # type: ignore[operator]
    return domains


def _conflict(attribute: AttributeSpec, domain: frozenset[str] | object | None) -> str:
    """How ``attribute`` contradicts the metric label of its name (``""`` when it does not):
    a dashboard that filters a label by a span's attribute value must find it there."""
    if domain is None or not isinstance(domain, frozenset):
        return ""  # no such label, or an open one
    if attribute.type is not AttributeType.STRING:
        return f"is a {attribute.type}, but the metric label of that name is a string"
    if attribute.values is None:
        return f"admits any value, but the metric label of that name admits only {', '.join(sorted(domain))}"
    stray = sorted(set(attribute.values) - domain)
    if stray:
        return f"admits {', '.join(stray)}, which the metric label of that name never takes"
    return ""


def _namespace(spec: MetricSpec, namespaces: tuple[str, ...]) -> Iterator[Finding]:
    if spec.provided_by is not None or any(spec.name.startswith(ns + "_") for ns in namespaces):
        return
    listed = " or ".join(repr(ns + "_") for ns in namespaces)
    yield Finding(
        NAME_NAMESPACE,
        f"{spec.name!r} does not start with {listed}; add its prefix to the file's namespaces, or "
        "name who registers it with provided_by",
        spec.location,
        spec.name,
    )


def _collisions(spec: MetricSpec, occupied: dict[str, MetricSpec]) -> Iterator[Finding]:
    """One finding per earlier metric that ``spec`` collides with (on its first shared name)."""
    reported: set[str] = set()
    for name in series_names(spec):
        other = occupied.setdefault(name, spec)
        if other is not spec and other.name not in reported:
            reported.add(other.name)
            what = (
                f"OpenTelemetry name {name.removeprefix('otel:')!r}"
                if name.startswith("otel:")
                else f"series {name!r}"
            )
            yield Finding(
                NAME_COLLISION,
                f"{spec.name!r} would export {what}, which {other.name!r} ({other.location}) also exports",
                spec.location,
                spec.name,
            )


def _replacement(spec: MetricSpec, contract: Contract) -> Iterator[Finding]:
    if spec.stability is not Stability.DEPRECATED:
        if spec.replaced_by is not None:
            yield Finding(
                DEPRECATED,
                f"{spec.name!r} names replaced_by but is not deprecated",
                spec.location,
                spec.name,
                Severity.WARNING,
            )
        return
    if spec.replaced_by is None:
        message = f"deprecated {spec.name!r} must name its replacement in replaced_by"
    elif spec.replaced_by == spec.name:
        message = f"deprecated {spec.name!r} cannot replace itself"
    elif spec.replaced_by not in contract:
        message = f"deprecated {spec.name!r} is replaced_by {spec.replaced_by!r}, which is not declared"
    else:
        return
    yield Finding(DEPRECATED, message, spec.location, spec.name)
