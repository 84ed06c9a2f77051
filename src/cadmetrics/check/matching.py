"""Vector matching: which series of two operands a binary operation pairs, and what labels the
result carries.

Prometheus pairs the series of two vectors by their matching labels: all of them (one-to-one
without a modifier), the ``on(...)`` labels, or all but the ``ignoring(...)`` ones. With the
exact label sets of both sides (see :mod:`cadmetrics.check.labels`), an operation that no pair
of shapes can satisfy can never return anything (or, for ``unless``, never remove anything), and
that is reported with the labels the two sides differ in. The result's labels follow the
engine: one-to-one ``on()`` keeps only the matching labels, ``ignoring()`` drops the ignored
ones, ``group_left``/``group_right`` keep the "many" side's labels and copy the listed ones from
the "one" side, ``and``/``unless`` keep the left side's and ``or`` either side's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs
import promql_parser as pp

from cadmetrics.check.findings import DROPPED_LABEL, GROUPING_LABEL, NEVER_MATCHES, Check
from cadmetrics.check.labels import Kind, LabelSet, Value, merge_domains, unknown
from cadmetrics.check.placeholders import holds_placeholder
from cadmetrics.contract.lint import Severity


class Reporter(Protocol):
    """Where matching reports what it finds (the analyzer of the whole expression)."""

    def report(self, check: Check, message: str, node: object, severity: Severity | None = None) -> None: ...

    def require(self, value: Value, label: str, what: str, node: object, check: Check = ...) -> bool: ...


SET_OPERATORS = frozenset({"and", "or", "unless"})


class VectorMatching:
    """Vector matching of one binary operation between two vectors of known labels."""

    def __init__(self, analyzer: Reporter, node: pp.BinaryExpr, op: str, lhs: Value, rhs: Value) -> None:
        self.analyzer = analyzer
        self.node = node
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        modifier = node.modifier
        matching = modifier.matching if modifier is not None else None
        self.on = matching is not None and matching.type == pp.LabelModifierType.Include
        self.ignoring = matching is not None and not self.on
        self.labels = frozenset(matching.labels) if matching is not None else frozenset()
        card = str(modifier.card) if modifier is not None else ""
        self.group_left = card.endswith("ManyToOne")
        self.group_right = card.endswith("OneToMany")
        self.extra = tuple(modifier.group_labels or ()) if modifier is not None else ()
        listed = ", ".join(sorted(self.labels))
        self.clause = f"on({listed})" if self.on else f"ignoring({listed})" if self.ignoring else ""

    def key(self, shape: LabelSet) -> frozenset[str]:
        if self.on:
            return shape.names & self.labels
        if self.ignoring:
            return shape.names - self.labels
        return shape.names

    def result(self) -> Value:
        lhs_shapes = self.lhs.shapes or ()
        rhs_shapes = self.rhs.shapes or ()
        self._check_modifier_labels()
        if self.op == "or":
            merged = Value(Kind.INSTANT, (*lhs_shapes, *rhs_shapes))
            value = merged.with_shapes(merged.shapes)
            return attrs.evolve(value, domains=merge_domains(self.lhs, self.rhs), sources=self._sources())
        pairs = [
            (left, right) for left in lhs_shapes for right in rhs_shapes if self.key(left) == self.key(right)
        ]
        if not pairs:
            self._never(lhs_shapes, rhs_shapes)
            if self.op == "unless":
                return attrs.evolve(self.lhs, kind=Kind.INSTANT)
            return unknown(Kind.INSTANT, self._sources())
        if self.op in ("and", "unless"):
            kept = [left for left, _ in pairs] if self.op == "and" else list(lhs_shapes)
            return attrs.evolve(self.lhs.with_shapes(kept, Kind.INSTANT), sources=self._sources())
        if self.group_left or self.group_right:
            many, one = (self.lhs, self.rhs) if self.group_left else (self.rhs, self.lhs)
            shapes = []
            for left, right in pairs:
                many_shape, one_shape = (left, right) if self.group_left else (right, left)
                missing = [label for label in self.extra if label not in one_shape]
                present = [label for label in self.extra if label in one_shape]
                side = "group_left" if self.group_left else "group_right"
                shapes.append(many_shape.remove(missing, f"{side}({', '.join(self.extra)})").add(present))
            value = many.with_shapes(shapes, Kind.INSTANT)
            domains = dict(value.domains)
            for label in self.extra:
                if label in one.domains:
                    domains[label] = one.domains[label]
                else:
                    domains.pop(label, None)
            return attrs.evolve(value, domains=domains, sources=self._sources())
        if self.on:
            shapes = [left.keep(self.labels, self.clause) for left, _ in pairs]
        elif self.ignoring:
            shapes = [left.remove(self.labels, self.clause) for left, _ in pairs]
        else:
            shapes = [left for left, _ in pairs]
        return attrs.evolve(self.lhs.with_shapes(shapes, Kind.INSTANT), sources=self._sources())

    def _sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.lhs.sources, *self.rhs.sources)))

    def _check_modifier_labels(self) -> None:
        for label in sorted(self.labels):
            if label == "__name__" or holds_placeholder(label):
                continue
            if not self.lhs.has_anywhere(label) and not self.rhs.has_anywhere(label):
                dropped = self.lhs.dropped_by(label) or self.rhs.dropped_by(label)
                if dropped is not None:
                    self.analyzer.report(
                        DROPPED_LABEL,
                        f"{self.clause} uses label {label}, but {dropped} already removed it from both sides",
                        self.node,
                    )
                else:
                    self.analyzer.report(
                        GROUPING_LABEL,
                        f"{self.clause}: neither side carries label {label} (left "
                        f"{self.lhs.describe_labels()}, right {self.rhs.describe_labels()}), "
                        "so it has no effect",
                        self.node,
                        Severity.WARNING,
                    )
        if self.extra:
            one, side = (self.rhs, "right") if self.group_left else (self.lhs, "left")
            clause = f"{'group_left' if self.group_left else 'group_right'}({', '.join(self.extra)})"
            for label in self.extra:
                self.analyzer.require(one, label, f"{clause} (copying from the {side} side)", self.node)

    def _never(self, lhs_shapes: Sequence[LabelSet], rhs_shapes: Sequence[LabelSet]) -> None:
        left, right = min(
            ((left, right) for left in lhs_shapes for right in rhs_shapes),
            key=lambda pair: len(self.key(pair[0]) ^ self.key(pair[1])),
        )
        differ = sorted(self.key(left) ^ self.key(right))
        if self.on:
            basis = f"{self.clause} compares {', '.join(sorted(self.labels)) or 'no labels'}"
        elif self.ignoring:
            basis = f"{self.clause} compares every other label"
        elif self.op in SET_OPERATORS:
            basis = f"`{self.op}` without on()/ignoring() compares all labels"
        else:
            basis = "one-to-one matching without on()/ignoring() compares all labels"
        what = (
            f"`{self.op}` can never remove anything"
            if self.op == "unless"
            else f"`{self.op}` can never match, so it returns nothing"
        )
        severity = Severity.WARNING if self.op == "unless" else None
        for label in differ:
            side_value, side = (self.lhs, "left") if label not in left else (self.rhs, "right")
            dropped = side_value.dropped_by(label)
            if dropped is not None:
                self.analyzer.report(
                    DROPPED_LABEL,
                    f"{what}: {basis}, and label {label} was removed from the {side} side by {dropped} "
                    f"(left {self.lhs.describe_labels()}, right {self.rhs.describe_labels()})",
                    self.node,
                    severity,
                )
                return
        self.analyzer.report(
            NEVER_MATCHES,
            f"{what}: {basis}, and the left side carries {self.lhs.describe_labels()} while the right "
            f"side carries {self.rhs.describe_labels()} (they differ in {', '.join(differ)})",
            self.node,
            severity,
        )
