"""Value types of the metrics contract: what one metric is, and what a whole contract is.

They are frozen attrs classes so that a contract, once loaded and checked, cannot drift while a
process runs; every element remembers where it was declared so that any later complaint
(lint, verification, emission) can point the reader at the file and line to change.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterator, Mapping

import attrs

from cadmetrics.errors import ContractError

#: The cap of an open label declared without one (``tenant: open``): distinct values admitted
#: per process before the overflow value takes over. One hundred values are already a hundred
#: series per combination of the other labels; a label past that is usually an id, which belongs
#: in a log or a trace, not in a label.
DEFAULT_OPEN_LABEL_CAP = 100

#: The one value that replaces a label value the contract does not admit (production mode).
#: Verification accepts it for every label, because the overflow counter already reports it.
OVERFLOW_VALUE = "__overflow__"


class MetricType(enum.StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Unit(enum.StrEnum):
    """Units the contract admits; each implies a name suffix and an OpenTelemetry (UCUM) unit."""

    SECONDS = "seconds"
    BYTES = "bytes"
    RATIO = "ratio"
    NONE = "none"

    @property
    def suffix(self) -> str:
        """The suffix a metric name of this unit ends with (before ``_total``), or ``""``."""
        return "" if self is Unit.NONE else f"_{self.value}"

    @property
    def ucum(self) -> str:
        """The UCUM code OpenTelemetry uses; the Prometheus exporter maps it back to the suffix."""
        return _UCUM[self]


_UCUM = {Unit.SECONDS: "s", Unit.BYTES: "By", Unit.RATIO: "1", Unit.NONE: ""}


class Stability(enum.StrEnum):
    EXPERIMENTAL = "experimental"
    STABLE = "stable"
    DEPRECATED = "deprecated"


#: prometheus_client's gauge modes for multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
MULTIPROCESS_MODES = frozenset(
    {
        "all",
        "liveall",
        "min",
        "livemin",
        "max",
        "livemax",
        "sum",
        "livesum",
        "mostrecent",
        "livemostrecent",
    }
)


@attrs.frozen(order=True)
class Location:
    """Where something was declared: a file and a 1-based line (0 when not known)."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


UNKNOWN_LOCATION = Location("<unknown>")


@attrs.frozen
class LabelSpec:
    """One label of a metric: a closed set of ``values``, or an open set capped at
    ``max_values`` distinct values per process (written ``open`` for the default cap)."""

    name: str
    values: tuple[str, ...] | None = None
    max_values: int | None = None
    location: Location = attrs.field(default=UNKNOWN_LOCATION, eq=False)

    @property
    def closed(self) -> bool:
        return self.values is not None

    def describe(self) -> str:
        if self.values is not None:
            return "one of " + ", ".join(self.values)
        return f"at most {self.max_values} distinct values"


@attrs.frozen
class MetricSpec:
    """One declared metric. ``name`` is the Prometheus name (counters include ``_total``)."""

    name: str
    type: MetricType
    help: str
    namespace: str
    unit: Unit = Unit.NONE
    labels: tuple[LabelSpec, ...] = ()
    buckets: tuple[float, ...] | None = None
    stability: Stability = Stability.STABLE
    replaced_by: str | None = None
    multiprocess_mode: str | None = None
    component: str | None = None
    #: Who registers the metric when it is not cadmetrics (``prometheus_client`` for its
    #: ``process_*`` and ``python_*`` collectors, or the host's own code): the contract declares
    #: and verifies it, and Telemetry never creates it, so the two never fight over the name.
    provided_by: str | None = None
    location: Location = attrs.field(default=UNKNOWN_LOCATION, eq=False)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def label(self, name: str) -> LabelSpec | None:
        for label in self.labels:
            if label.name == name:
                return label
        return None


class SpanKind(enum.StrEnum):
    """OpenTelemetry's span kinds."""

    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class AttributeType(enum.StrEnum):
    """The value types a span attribute may declare (OpenTelemetry's primitive types)."""

    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"

    def admits(self, value: object) -> bool:
        """Whether ``value`` is of this type as OpenTelemetry stores it (a bool is no int)."""
        if self is AttributeType.STRING:
            return isinstance(value, str)
        if self is AttributeType.BOOL:
            return isinstance(value, bool)
        if self is AttributeType.INT:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, float | int) and not isinstance(value, bool)


@attrs.frozen
class AttributeSpec:
    """One attribute of a span or span event: its type, a closed set of ``values`` (strings or
    integers, written as strings) or an open set capped at ``max_values`` (strings only), and
    whether every span must carry it."""

    name: str
    type: AttributeType = AttributeType.STRING
    values: tuple[str, ...] | None = None
    max_values: int | None = None
    required: bool = True
    location: Location = attrs.field(default=UNKNOWN_LOCATION, eq=False)

    @property
    def closed(self) -> bool:
        return self.values is not None

    def describe(self) -> str:
        if self.values is not None:
            return "one of " + ", ".join(self.values)
        if self.max_values is not None:
            return f"any {self.type} (at most {self.max_values} distinct)"
        return f"any {self.type}"


@attrs.frozen
class EventSpec:
    """One event a span may record, with its attributes."""

    name: str
    attributes: tuple[AttributeSpec, ...] = ()
    location: Location = attrs.field(default=UNKNOWN_LOCATION, eq=False)

    def attribute(self, name: str) -> AttributeSpec | None:
        return next((a for a in self.attributes if a.name == name), None)


@attrs.frozen
class SpanSpec:
    """One declared span: its name (``namespace.component.operation``), kind, attributes and
    events."""

    name: str
    help: str
    namespace: str
    kind: SpanKind = SpanKind.INTERNAL
    attributes: tuple[AttributeSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    component: str | None = None
    stability: Stability = Stability.STABLE
    location: Location = attrs.field(default=UNKNOWN_LOCATION, eq=False)

    def attribute(self, name: str) -> AttributeSpec | None:
        return next((a for a in self.attributes if a.name == name), None)

    def event(self, name: str) -> EventSpec | None:
        return next((e for e in self.events if e.name == name), None)


def definition_difference(first: MetricSpec, second: MetricSpec) -> str:
    """How two declarations of one name differ, as a clause for a message (``""`` when alike):
    two definitions with different labels are the case a registry hides, the first one
    registered winning silently."""
    if first.type is not second.type:
        return f" as a {first.type}, here as a {second.type}"
    if first.label_names != second.label_names:
        return (
            f" with labels ({', '.join(first.label_names) or 'none'}), "
            f"here with ({', '.join(second.label_names) or 'none'})"
        )
    if first != attrs.evolve(second, namespace=first.namespace):
        return " with another definition"
    return ""


@attrs.frozen
class ContractPart:
    """One file that went into a contract: its namespaces (the first is its main one), its own
    version and where it is."""

    namespace: str
    version: str
    path: str
    namespaces: tuple[str, ...] = attrs.field()

    @namespaces.default
    def _only_the_main_namespace(self) -> tuple[str, ...]:
        return (self.namespace,)


@attrs.frozen
class Contract:
    """A loaded (possibly composed) contract: an ordered set of metrics with unique names.

    Lookup by name is a dict built once; ``require`` is what telemetry uses when a component
    asks for an instrument, so an unknown name fails with the nearest declared names.
    """

    parts: tuple[ContractPart, ...]
    metrics: tuple[MetricSpec, ...]
    spans: tuple[SpanSpec, ...] = ()
    _by_name: Mapping[str, MetricSpec] = attrs.field(init=False, repr=False, eq=False)
    _spans_by_name: Mapping[str, SpanSpec] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        by_name: dict[str, MetricSpec] = {}
        for spec in self.metrics:
            by_name.setdefault(spec.name, spec)
        object.__setattr__(self, "_by_name", by_name)
        spans: dict[str, SpanSpec] = {}
        for span in self.spans:
            spans.setdefault(span.name, span)
        object.__setattr__(self, "_spans_by_name", spans)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ns for part in self.parts for ns in part.namespaces))

    @property
    def version(self) -> str:
        """The version of the first part: the library's own contract when it is included."""
        return self.parts[0].version if self.parts else "0.0.0"

    def __iter__(self) -> Iterator[MetricSpec]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> MetricSpec | None:
        return self._by_name.get(name)

    def require(self, name: str, type: MetricType | None = None) -> MetricSpec:
        """The metric called ``name``, or a :class:`ContractError` that says what is declared."""
        spec = self._by_name.get(name)
        if spec is None:
            near = difflib.get_close_matches(name, list(self._by_name), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ContractError(f"metric {name!r} is not declared in the contract{hint}")
        if type is not None and spec.type is not type:
            raise ContractError(
                f"metric {name!r} is declared as a {spec.type} ({spec.location}), not a {type}"
            )
        return spec

    def span(self, name: str) -> SpanSpec | None:
        return self._spans_by_name.get(name)

    def require_span(self, name: str) -> SpanSpec:
        """The span called ``name``, or a :class:`ContractError` with the nearest names."""
        spec = self._spans_by_name.get(name)
        if spec is None:
            near = difflib.get_close_matches(name, list(self._spans_by_name), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ContractError(f"span {name!r} is not declared in the contract{hint}")
        return spec

    def owns_span(self, name: str) -> bool:
        """True when span ``name`` lies in one of the contract's namespaces (``ns.``...)."""
        return any(name.startswith(ns + ".") for ns in self.namespaces)

    def emitted_here(self) -> Iterator[MetricSpec]:
        """The metrics cadmetrics' Telemetry creates: all but those another library provides."""
        return (spec for spec in self.metrics if spec.provided_by is None)

    def owns(self, name: str) -> bool:
        """True when ``name`` lies in one of the contract's namespaces (``ns_...``)."""
        return any(name.startswith(ns + "_") for ns in self.namespaces)
