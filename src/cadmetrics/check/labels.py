"""The label algebra: which label names the series of an expression can carry.

The contract says exactly which labels each metric has (prometheus_client always sets every
declared label), and Prometheus adds its target labels (``job``, ``instance``) on scrape. So the
label names of a selector's series are known exactly, and so are those of everything built on
it: ``sum by (a)`` keeps exactly ``a``, ``rate`` keeps them all, ``on(a)`` one-to-one matching
keeps ``a`` alone... An expression may yield series of several shapes (``x or vector(0)``), so a
value carries every possible label set, not their union: a binary operation that no pair of
shapes can match can never return anything.

Each label set also remembers which labels an operation removed and where, so that a label
used afterwards can be reported as "dropped by ``sum by (mode)``" rather than "unknown".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

#: More shapes than this (a long chain of ``or``) and the value is treated as unknown.
MAX_SHAPES = 32


class Kind(enum.StrEnum):
    INSTANT = "instant vector"
    RANGE = "range vector"
    SCALAR = "scalar"
    STRING = "string"


class Usage(enum.Enum):
    """How an operation uses the samples of its operand: what a counter may be fed to."""

    VALUE = "value"  # the sample values matter (arithmetic, comparisons, sum, *_over_time...)
    COUNTER_FUNCTION = "counter function"  # rate, irate, increase, resets, changes
    EXISTENCE = "existence"  # only which series exist (count, group, absent, right of and/unless)


@attrs.frozen
class LabelSet:
    """One possible set of label names (``__name__`` aside), and the labels removed on the
    way with what removed them (for messages)."""

    names: frozenset[str]
    dropped: tuple[tuple[str, str], ...] = ()

    def __contains__(self, label: object) -> bool:
        return label in self.names

    def dropped_by(self, label: str) -> str | None:
        for name, by in self.dropped:
            if name == label:
                return by
        return None

    def keep(self, labels: Iterable[str], by: str) -> LabelSet:
        """Only ``labels`` remain; the others are remembered as dropped by ``by``."""
        kept = frozenset(labels) & self.names
        return LabelSet(kept, _merge_dropped(self.dropped, self.names - kept, by))

    def remove(self, labels: Iterable[str], by: str) -> LabelSet:
        gone = frozenset(labels) & self.names
        return LabelSet(self.names - gone, _merge_dropped(self.dropped, gone, by))

    def add(self, labels: Iterable[str]) -> LabelSet:
        added = frozenset(labels)
        return LabelSet(
            self.names | added, tuple((name, by) for name, by in self.dropped if name not in added)
        )


def _merge_dropped(
    dropped: tuple[tuple[str, str], ...], labels: frozenset[str], by: str
) -> tuple[tuple[str, str], ...]:
    earlier = {name for name, _ in dropped}
    return dropped + tuple((name, by) for name in sorted(labels) if name not in earlier)


@attrs.frozen(eq=False)
class Value:
    """What an expression evaluates to: its kind and, for vectors, its possible label sets
    (``None`` when not known: a metric outside the contract, whose labels nobody declared).

    ``domains`` maps a label to the closed set of values it can take, where the contract
    declares one; ``sources`` names the metrics (or recorded series) the series come from.
    """

    kind: Kind
    shapes: tuple[LabelSet, ...] | None = None
    domains: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    sources: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return self.shapes is not None

    @property
    def is_vector(self) -> bool:
        return self.kind in (Kind.INSTANT, Kind.RANGE)

    def has_anywhere(self, label: str) -> bool:
        """True when some shape carries ``label`` (or the shapes are not known)."""
        return self.shapes is None or any(label in shape for shape in self.shapes)

    def dropped_by(self, label: str) -> str | None:
        """What removed ``label`` from every shape that lacks it, if anything did."""
        for shape in self.shapes or ():
            by = shape.dropped_by(label)
            if by is not None:
                return by
        return None

    def with_shapes(self, shapes: Iterable[LabelSet] | None, kind: Kind | None = None) -> Value:
        """The same sources with other shapes; domains shrink to the labels still present."""
        kind = kind or self.kind
        if shapes is None:
            return Value(kind, None, {}, self.sources)
        unique = dedupe(shapes)
        if unique is None:
            return Value(kind, None, {}, self.sources)
        present = frozenset().union(*(shape.names for shape in unique)) if unique else frozenset()
        domains = {label: values for label, values in self.domains.items() if label in present}
        return Value(kind, unique, domains, self.sources)

    def describe_labels(self) -> str:
        """The label sets in words, for messages: ``{job, version}`` or ``{job} or {}``."""
        if self.shapes is None:
            return "unknown labels"
        return " or ".join(describe(shape.names) for shape in self.shapes) or "no series"

    def source_text(self) -> str:
        return ", ".join(self.sources) if self.sources else "the expression"


def describe(names: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(names)) + "}"


def dedupe(shapes: Iterable[LabelSet]) -> tuple[LabelSet, ...] | None:
    """Shapes with equal names merged (their drop records joined); ``None`` past MAX_SHAPES."""
    merged: dict[frozenset[str], LabelSet] = {}
    for shape in shapes:
        before = merged.get(shape.names)
        if before is None:
            merged[shape.names] = shape
        else:
            extra = tuple(item for item in shape.dropped if item[0] not in dict(before.dropped))
            merged[shape.names] = LabelSet(shape.names, before.dropped + extra)
        if len(merged) > MAX_SHAPES:
            return None
    return tuple(merged.values())


def scalar() -> Value:
    return Value(Kind.SCALAR)


def unknown(kind: Kind = Kind.INSTANT, sources: tuple[str, ...] = ()) -> Value:
    return Value(kind, None, {}, sources)


def merge_domains(*values: Value) -> dict[str, frozenset[str]]:
    """Domains of series that may come from any of ``values``: a label is closed only when it is
    closed wherever it is present."""
    result: dict[str, frozenset[str]] = {}
    open_labels: set[str] = set()
    for value in values:
        present = frozenset().union(*(shape.names for shape in value.shapes or ()))
        for label in present:
            domain = value.domains.get(label)
            if domain is None:
                open_labels.add(label)
            else:
                result[label] = result.get(label, frozenset()) | domain
    for label in open_labels:
        result.pop(label, None)
    return result
