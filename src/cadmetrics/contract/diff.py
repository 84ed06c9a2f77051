"""Comparing two versions of a contract: which changes break dashboards, alerts and hosts.

Breaking: a metric removed, its type, unit or buckets changed, a label added or removed, a
closed set of values narrowed (or an open label closed, or its cap lowered). For spans: a span,
attribute or event removed, a kind or an attribute's type changed, a closed set narrowed, a
required attribute added or an optional one made required. Everything else (new metrics, spans,
events, optional attributes, values, help text, stability) is compatible. A breaking change should come
with a new major version; the diff says so when it does not.
"""

from __future__ import annotations

import enum
import json
import re

import attrs

from cadmetrics.contract.model import AttributeSpec, Contract, LabelSpec, MetricSpec, SpanSpec


class Impact(enum.StrEnum):
    BREAKING = "breaking"
    COMPATIBLE = "compatible"


@attrs.frozen
class Change:
    impact: Impact
    metric: str
    what: str

    def __str__(self) -> str:
        return f"{self.impact:10} {self.metric}: {self.what}"


@attrs.frozen
class ContractDiff:
    old_version: str
    new_version: str
    changes: tuple[Change, ...]

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.impact is Impact.BREAKING)

    @property
    def needs_major_bump(self) -> bool:
        return bool(self.breaking) and _major(self.new_version) <= _major(self.old_version)

    def render(self) -> str:
        lines = [
            f"contract {self.old_version} -> {self.new_version}: {len(self.breaking)} breaking, "
            f"{len(self.changes) - len(self.breaking)} compatible change(s)"
        ]
        lines.extend(f"  {change}" for change in self.changes)
        if self.needs_major_bump:
            lines.append(f"  note: breaking changes need a new major version (still {self.new_version})")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "old_version": self.old_version,
                "new_version": self.new_version,
                "breaking": len(self.breaking),
                "needs_major_bump": self.needs_major_bump,
                "changes": [attrs.asdict(c) for c in self.changes],
            },
            indent=2,
        )


def _major(version: str) -> int:
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else 0


def diff_contracts(old: Contract, new: Contract) -> ContractDiff:
    changes: list[Change] = []
    for spec in old:
        other = new.get(spec.name)
        if other is None:
            changes.append(Change(Impact.BREAKING, spec.name, "metric removed"))
        else:
            changes.extend(_metric_changes(spec, other))
    for spec in new:
        if spec.name not in old:
            changes.append(Change(Impact.COMPATIBLE, spec.name, f"metric added ({spec.type})"))
    for span in old.spans:
        other_span = new.span(span.name)
        if other_span is None:
            changes.append(Change(Impact.BREAKING, span.name, "span removed"))
        else:
            changes.extend(_span_changes(span, other_span))
    for span in new.spans:
        if old.span(span.name) is None:
            changes.append(Change(Impact.COMPATIBLE, span.name, "span added"))
    return ContractDiff(old.version, new.version, tuple(changes))


def _span_changes(old: SpanSpec, new: SpanSpec) -> list[Change]:
    out = []
    if old.kind is not new.kind:
        out.append(Change(Impact.BREAKING, old.name, f"kind changed from {old.kind} to {new.kind}"))
    out += [Change(i, old.name, w) for i, w in _attribute_changes(old.attributes, new.attributes, "")]
    new_events = {event.name: event for event in new.events}
    for event in old.events:
        if event.name not in new_events:
            out.append(Change(Impact.BREAKING, old.name, f"event {event.name!r} removed"))
            continue
        where = f"event {event.name!r}: "
        changed = _attribute_changes(event.attributes, new_events[event.name].attributes, where)
        out += [Change(i, old.name, w) for i, w in changed]
    out += [
        Change(Impact.COMPATIBLE, old.name, f"event {event.name!r} added")
        for event in new.events
        if old.event(event.name) is None
    ]
    if old.help != new.help:
        out.append(Change(Impact.COMPATIBLE, old.name, "help text changed"))
    return out


def _attribute_changes(
    old: tuple[AttributeSpec, ...], new: tuple[AttributeSpec, ...], where: str
) -> list[tuple[Impact, str]]:
    out: list[tuple[Impact, str]] = []
    new_by_name = {attribute.name: attribute for attribute in new}
    old_names = {attribute.name for attribute in old}
    for attribute in old:
        other = new_by_name.get(attribute.name)
        what = f"{where}attribute {attribute.name!r}"
        if other is None:
            out.append((Impact.BREAKING, f"{what} removed"))
            continue
        if attribute.type is not other.type:
            out.append((Impact.BREAKING, f"{what}: type changed from {attribute.type} to {other.type}"))
            continue
        if other.required and not attribute.required:
            out.append((Impact.BREAKING, f"{what}: now required"))
        out += _label_changes(attribute, other, what)
    for attribute in new:
        if attribute.name not in old_names:
            impact = Impact.BREAKING if attribute.required else Impact.COMPATIBLE
            needed = "required" if attribute.required else "optional"
            out.append((impact, f"{where}{needed} attribute {attribute.name!r} added"))
    return out


def _metric_changes(old: MetricSpec, new: MetricSpec) -> list[Change]:
    name = old.name
    out: list[Change] = []

    def breaking(what: str) -> None:
        out.append(Change(Impact.BREAKING, name, what))

    def compatible(what: str) -> None:
        out.append(Change(Impact.COMPATIBLE, name, what))

    if old.type is not new.type:
        breaking(f"type changed from {old.type} to {new.type}")
    if old.unit is not new.unit:
        breaking(f"unit changed from {old.unit} to {new.unit}")
    if old.buckets != new.buckets:
        breaking(f"buckets changed from {list(old.buckets or ())} to {list(new.buckets or ())}")
    old_labels = {label.name: label for label in old.labels}
    new_labels = {label.name: label for label in new.labels}
    for label in old.labels:
        if label.name not in new_labels:
            breaking(f"label {label.name!r} removed")
        else:
            changed = _label_changes(label, new_labels[label.name], f"label {label.name!r}")
            out.extend(Change(impact, name, what) for impact, what in changed)
    for label in new.labels:
        if label.name not in old_labels:
            breaking(f"label {label.name!r} added")
    if old.help != new.help:
        compatible("help text changed")
    if old.stability is not new.stability:
        compatible(f"stability changed from {old.stability} to {new.stability}")
    if old.multiprocess_mode != new.multiprocess_mode:
        compatible(f"multiprocess_mode changed from {old.multiprocess_mode} to {new.multiprocess_mode}")
    return out


def _label_changes(
    old: LabelSpec | AttributeSpec, new: LabelSpec | AttributeSpec, where: str
) -> list[tuple[Impact, str]]:
    if old.values is not None and new.values is not None:
        removed = [v for v in old.values if v not in new.values]
        added = [v for v in new.values if v not in old.values]
        out = []
        if removed:
            out.append((Impact.BREAKING, f"{where}: values narrowed, removed {removed}"))
        if added:
            out.append((Impact.COMPATIBLE, f"{where}: values added {added}"))
        return out
    if old.values is None and new.values is not None:
        return [(Impact.BREAKING, f"{where}: open set closed to {list(new.values)}")]
    if old.values is not None and new.values is None:
        return [(Impact.COMPATIBLE, f"{where}: closed set opened (max_values {new.max_values})")]
    if (new.max_values or 0) < (old.max_values or 0):
        return [
            (
                Impact.BREAKING,
                f"{where}: max_values lowered from {old.max_values} to {new.max_values}",
            )
        ]
    if new.max_values != old.max_values:
        return [
            (
                Impact.COMPATIBLE,
                f"{where}: max_values raised from {old.max_values} to {new.max_values}",
            )
        ]
    return []
