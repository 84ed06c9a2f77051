"""Coverage: which declared metrics, and which declared values of closed labels, were emitted.

Verification says whether what was emitted agrees with the contract; coverage says how much of
the contract a run exercised, so that a host's CI can require that its tests emit (say) nine
declared metrics in ten, and see which ones and which label values they never reach.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from cadmetrics.contract.model import OVERFLOW_VALUE, AttributeSpec, Contract, LabelSpec, MetricSpec, SpanSpec
from cadmetrics.contract.observed import AUXILIARY_SUFFIXES, Observation, ObservedFamily, Sample

#: ``(metric, label, value)``: one declared value of one closed label.
LabelValue = tuple[str, str, str]

#: How many missing entries a rendering lists before it says how many more there are.
_LISTED = 50


@attrs.frozen
class Coverage:
    """The declared metrics and closed-label values considered, and those emitted."""

    metrics: tuple[str, ...]
    emitted: frozenset[str]
    values: tuple[LabelValue, ...]
    emitted_values: frozenset[LabelValue]
    noun: str = "metrics"  # or "spans": what ``metrics`` names

    @classmethod
    def of(
        cls, specs: Iterable[MetricSpec], emitted: Iterable[str], emitted_values: Iterable[LabelValue]
    ) -> Coverage:
        """Coverage of declared metrics, and of the closed values of their labels."""
        chosen = list(specs)
        return cls._of([(spec.name, spec.labels) for spec in chosen], emitted, emitted_values, "metrics")

    @classmethod
    def of_spans(
        cls, specs: Iterable[SpanSpec], emitted: Iterable[str], emitted_values: Iterable[LabelValue]
    ) -> Coverage:
        """Coverage of declared spans, and of the closed values of their attributes."""
        chosen = list(specs)
        return cls._of([(spec.name, spec.attributes) for spec in chosen], emitted, emitted_values, "spans")

    @classmethod
    def _of(
        cls,
        declared: list[tuple[str, tuple[LabelSpec, ...] | tuple[AttributeSpec, ...]]],
        emitted: Iterable[str],
        emitted_values: Iterable[LabelValue],
        noun: str,
    ) -> Coverage:
        names = tuple(name for name, _ in declared)
        values = tuple(
            (name, labelled.name, value)
            for name, labels in declared
            for labelled in labels
            for value in labelled.values or ()
        )
        covered = frozenset(emitted_values) & set(values)
        return cls(names, frozenset(emitted) & set(names), values, covered, noun)

    @property
    def ratio(self) -> float:
        """Declared metrics emitted, as a fraction (1.0 when nothing is declared)."""
        return len(self.emitted) / len(self.metrics) if self.metrics else 1.0

    @property
    def values_ratio(self) -> float:
        """Declared values of closed labels emitted, as a fraction (1.0 when there are none)."""
        return len(self.emitted_values) / len(self.values) if self.values else 1.0

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(name for name in self.metrics if name not in self.emitted)

    @property
    def missing_values(self) -> tuple[LabelValue, ...]:
        return tuple(value for value in self.values if value not in self.emitted_values)

    def summary(self) -> str:
        return (
            f"{len(self.emitted)} of {len(self.metrics)} declared {self.noun} emitted ({self.ratio:.0%}), "
            f"{len(self.emitted_values)} of {len(self.values)} closed {self._valued} values "
            f"({self.values_ratio:.0%})"
        )

    @property
    def _valued(self) -> str:
        return "label" if self.noun == "metrics" else "attribute"

    def render(self) -> list[str]:
        """The summary, then what was never emitted: metrics, then values by metric and label."""
        lines = [f"coverage: {self.summary()}"]
        if self.missing:
            lines.append(f"  {self.noun} never emitted:")
            lines += [f"    {name}" for name in self.missing[:_LISTED]]
            if len(self.missing) > _LISTED:
                lines.append(f"    ... and {len(self.missing) - _LISTED} more")
        grouped: dict[tuple[str, str], list[str]] = {}
        for metric, label, value in self.missing_values:
            if metric in self.emitted:  # a metric never emitted is listed once, above
                grouped.setdefault((metric, label), []).append(value)
        if grouped:
            lines.append(f"  closed {self._valued} values never emitted:")
            entries = list(grouped.items())
            lines += [
                f"    {metric} {label}: {', '.join(values)}" for (metric, label), values in entries[:_LISTED]
            ]
            if len(entries) > _LISTED:
                lines.append(f"    ... and {len(entries) - _LISTED} more")
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "metrics": {
                "declared": len(self.metrics),
                "emitted": len(self.emitted),
                "ratio": self.ratio,
                "missing": list(self.missing),
            },
            "label_values": {
                "declared": len(self.values),
                "emitted": len(self.emitted_values),
                "ratio": self.values_ratio,
                "missing": [{"metric": m, "label": label, "value": v} for m, label, v in self.missing_values],
            },
        }


def emitted_values(observations: Iterable[Observation], contract: Contract) -> set[LabelValue]:
    """Every ``(metric, label, value)`` of a declared closed label that carries data in
    ``observations`` (a counter's pre-created zero is not an emission, as in verification)."""
    found: set[LabelValue] = set()
    for observation in observations:
        for family in observation.families:
            spec = contract.get(family.name) or contract.get(family.source_name)
            if spec is None:
                continue
            closed = {label.name for label in spec.labels if label.values is not None}
            if not closed:
                continue
            for sample in _data_samples(family):
                for key, value in sample.labels:
                    if key in closed and value != OVERFLOW_VALUE:
                        found.add((spec.name, key, value))
    return found


def _data_samples(family: ObservedFamily) -> list[Sample]:
    samples = [s for s in family.samples if not s.name.endswith(AUXILIARY_SUFFIXES)]
    if family.type == "counter":
        return [s for s in samples if s.value != 0]
    if family.type == "histogram":
        return [s for s in samples if s.name.endswith("_count") and s.value != 0]
    return list(samples)
