"""Drafting a contract from what an application already exports.

The input is what verification reads (:class:`~cadmetrics.contract.observed.Observation`: an
exposition, a live registry, OTel or OTLP data) plus, for a live registry, the label names and
buckets of metrics with no series yet (:mod:`cadmetrics.contract.declarations`). Each family
becomes a declaration; whatever was inferred rather than read (a unit from a name's suffix, a
closed set from the values seen, a type for untyped data) carries a note that the rendering
writes beside it as a ``guess:`` comment, so that a person reviews it.

A draft lints clean by construction: a family that cannot be declared as exported (a summary,
an upper-case name, a gauge ending in ``_total``) is left out and listed with the reason, and
the draft is linted before it is rendered, dropping any declaration a rule refuses. Drafting the
same input twice gives the same text; against an ``existing`` contract only what it lacks is
drafted, and what changed in metrics it declares is listed for a person to edit.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

import attrs

from cadmetrics.contract import loader
from cadmetrics.contract.declarations import Declaration, Declarations
from cadmetrics.contract.lint import Severity, lint
from cadmetrics.contract.loader import DEFAULT_BUCKETS
from cadmetrics.contract.model import (
    DEFAULT_OPEN_LABEL_CAP,
    OVERFLOW_VALUE,
    Contract,
    ContractPart,
    LabelSpec,
    MetricSpec,
    MetricType,
    Unit,
)
from cadmetrics.contract.observed import AUXILIARY_SUFFIXES, Observation, ObservedFamily

#: A label with at most this many distinct values seen is drafted as a closed set (of those
#: values); one with more is open. Ten is where Prometheus' instrumentation guidance starts to
#: worry about a metric's series.
DEFAULT_CLOSED_MAX = 10

#: The largest cap a drafted open label gets (lint rule CM017's bound).
_MAX_CAP = 10_000

#: Families prometheus_client's default collectors register (process, platform, GC): drafted
#: as ``provided_by: prometheus_client``, outside the application's namespaces.
PROMETHEUS_CLIENT_NAMES = frozenset(
    {
        "process_virtual_memory_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "python_gc_objects_collected_total",
        "python_gc_objects_uncollectable_total",
        "python_gc_collections_total",
        "python_info",
    }
)

_TYPES = {"counter": MetricType.COUNTER, "gauge": MetricType.GAUGE, "histogram": MetricType.HISTOGRAM}
#: Exported types a gauge declares faithfully, with what to say about it.
_AS_GAUGE = {
    "unknown": "untyped in the source; declared as a gauge",
    "untyped": "untyped in the source; declared as a gauge",
}
_NAMESPACE = re.compile(r"([a-z][a-z0-9]*)_")
_UNIT_BY_SUFFIX = {unit.suffix: unit for unit in Unit if unit is not Unit.NONE}
_OTEL_UNITS = {unit.ucum: unit for unit in Unit if unit is not Unit.NONE}
_EXPORTER_LABELS = ("otel_scope_",)


@attrs.frozen
class DraftMetric:
    """One drafted declaration, and the notes on what in it was guessed, keyed by where they
    go: ``type``, ``unit``, ``help``, ``provided_by``, ``labels``, ``label:NAME``, ``buckets``."""

    spec: MetricSpec
    notes: Mapping[str, str]
    default_buckets: bool = False  # buckets unknown: the loader's defaults, not written out


@attrs.frozen
class Draft:
    """A drafted contract: declarations, and what was left out or changed, in words."""

    origins: tuple[str, ...]
    namespaces: tuple[str, ...]
    version: str
    metrics: tuple[DraftMetric, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (family, why it is not declared)
    changes: tuple[tuple[str, str], ...] = ()  # (declared metric, what the source shows now)
    notes: tuple[str, ...] = ()
    update_of: str | None = None

    def contract(self, path: str = "<draft>") -> Contract:
        """The draft as a contract (what lint and verification see)."""
        main = self.namespaces[0] if self.namespaces else "draft"
        part = ContractPart(main, self.version, path, self.namespaces or (main,))
        specs = tuple(
            attrs.evolve(m.spec, location=attrs.evolve(m.spec.location, path=path)) for m in self.metrics
        )
        return Contract(parts=(part,), metrics=specs)


def infer_contract(
    observations: Iterable[Observation],
    declarations: Declarations | None = None,
    *,
    existing: Contract | None = None,
    closed_max: int = DEFAULT_CLOSED_MAX,
    version: str = "0.1.0",
) -> Draft:
    """Draft the declarations of every family in ``observations`` (and ``declarations``) that
    ``existing`` lacks."""
    if closed_max < 0:
        raise ValueError(f"closed_max must be >= 0, not {closed_max}")
    sources = list(observations)
    declared = declarations.by_name if declarations is not None else {}
    families = _merge(family for observation in sources for family in observation.families)
    skipped: dict[str, str] = {}
    changes: list[tuple[str, str]] = []
    drafted: list[DraftMetric] = []
    single = len(sources) == 1
    for name in sorted(set(families) | set(declared)):
        family = families.get(name)
        if family is not None and _creation_time(name, families, declared):
            continue
        if existing is not None and name in existing:
            if family is not None:
                changes.extend((name, change) for change in _changes(family, existing.require(name)))
            continue
        why = _undeclarable(name, family, declared.get(name))
        if why is not None:
            skipped[name] = why
            continue
        drafted.append(_draft(name, family, declared.get(name), closed_max, single))
    if existing is not None:
        version = existing.version
    kept, refused = _lint_clean(drafted, version, existing)
    skipped.update(refused)
    namespaces = sorted({m.spec.namespace for m in kept if m.spec.provided_by is None})
    if existing is not None:
        namespaces = [ns for ns in namespaces if ns not in existing.namespaces]
    notes = declarations.notes if declarations is not None else ()
    return Draft(
        origins=tuple(observation.origin for observation in sources),
        namespaces=tuple(namespaces),
        version=version,
        metrics=tuple(kept),
        skipped=tuple(sorted(skipped.items())),
        changes=tuple(changes),
        notes=tuple(notes),
        update_of=existing.parts[-1].path if existing is not None and existing.parts else None,
    )


def _merge(families: Iterable[ObservedFamily]) -> dict[str, ObservedFamily]:
    """One family per name: the samples of every source, the first help, unit and buckets."""
    merged: dict[str, ObservedFamily] = {}
    for family in families:
        earlier = merged.get(family.name)
        if earlier is None:
            merged[family.name] = family
            continue
        merged[family.name] = attrs.evolve(
            earlier,
            samples=earlier.samples + family.samples,
            help=earlier.help or family.help,
            unit=earlier.unit or family.unit,
            buckets=earlier.buckets or family.buckets,
        )
    return merged


def _creation_time(
    name: str, families: Mapping[str, ObservedFamily], declared: Mapping[str, Declaration]
) -> bool:
    """prometheus_client's classic text exports a counter's, histogram's or summary's creation
    time as a gauge family ``x_created``; it is part of that metric, not one to declare."""
    if not name.endswith("_created"):
        return False
    stem = name.removesuffix("_created")
    for owner, kind in ((stem + "_total", "counter"), (stem, "histogram"), (stem, "summary")):
        found = families.get(owner)
        if (found is not None and found.type == kind) or (owner in declared and declared[owner].type == kind):
            return True
    return False


def _undeclarable(name: str, family: ObservedFamily | None, declaration: Declaration | None) -> str | None:
    kind = family.type if family is not None else declaration.type if declaration is not None else ""
    if kind not in _TYPES and kind not in _AS_GAUGE:
        return f"a {kind}: a contract declares counters, gauges and histograms"
    if name not in PROMETHEUS_CLIENT_NAMES and _NAMESPACE.match(name) is None:
        return "no namespace prefix (a lower-case word and _) to declare it under"
    return None


def _draft(
    name: str,
    family: ObservedFamily | None,
    declaration: Declaration | None,
    closed_max: int,
    single: bool,
) -> DraftMetric:
    notes: dict[str, str] = {}
    exported = family.type if family is not None else declaration.type if declaration is not None else ""
    kind = _TYPES.get(exported, MetricType.GAUGE)
    if exported in _AS_GAUGE:
        notes["type"] = _AS_GAUGE[exported]
    unit = _unit(name, family, notes)
    help_text = (family.help if family is not None else "").strip()
    if not help_text:
        help_text = f"{name} (no help text in the source)."
        notes["help"] = "the source has no help text: write what it counts and why"
    provided_by = None
    namespace_match = _NAMESPACE.match(name)
    namespace = namespace_match.group(1) if namespace_match is not None else name
    if name in PROMETHEUS_CLIENT_NAMES:
        provided_by = "prometheus_client"
        notes["provided_by"] = "registered by prometheus_client's default collectors"
    labels = _labels(family, declaration, closed_max, single, notes)
    buckets: tuple[float, ...] | None = None
    default_buckets = False
    if kind is MetricType.HISTOGRAM:
        buckets = _buckets(family, declaration)
        if buckets is None:
            buckets = DEFAULT_BUCKETS
            default_buckets = True
            notes["buckets"] = "no series yet: prometheus_client's default buckets assumed"
    spec = MetricSpec(
        name=name,
        type=kind,
        help=help_text,
        namespace=namespace,
        unit=unit,
        labels=labels,
        buckets=buckets,
        provided_by=provided_by,
    )
    return DraftMetric(spec, notes, default_buckets)


def _unit(name: str, family: ObservedFamily | None, notes: dict[str, str]) -> Unit:
    """The unit the name's suffix implies (lint requires the two to agree), noted as a guess
    unless the source carried the same unit."""
    stem = name.removesuffix("_total")
    unit = next((u for suffix, u in _UNIT_BY_SUFFIX.items() if stem.endswith(suffix)), Unit.NONE)
    carried = family.unit if family is not None else None
    carried_unit: Unit | None = _OTEL_UNITS.get(carried or "")
    if carried_unit is None:
        carried_unit = next((u for u in Unit if u.value == carried), None)
    if unit is not Unit.NONE and carried_unit is not unit:
        notes["unit"] = f"from the name's suffix {unit.suffix}"
    elif unit is Unit.NONE and carried and carried_unit is not Unit.NONE:
        notes["unit"] = f"the source says {carried!r}, which the contract has no unit for"
    return unit


def _labels(
    family: ObservedFamily | None,
    declaration: Declaration | None,
    closed_max: int,
    single: bool,
    notes: dict[str, str],
) -> tuple[LabelSpec, ...]:
    seen: dict[str, set[str]] = defaultdict(set)
    label_sets: set[frozenset[str]] = set()
    for sample in family.samples if family is not None else ():
        if sample.name.endswith(AUXILIARY_SUFFIXES):
            continue
        names = []
        for key, value in sample.labels:
            if key.startswith(_EXPORTER_LABELS) or (key == "le" and sample.name.endswith("_bucket")):
                continue
            names.append(key)
            if value != OVERFLOW_VALUE:
                seen[key].add(value)
        label_sets.add(frozenset(names))
    names = sorted({n for s in label_sets for n in s})
    if declaration is not None:
        names = list(dict.fromkeys([*declaration.label_names, *names]))
    elif family is not None and not family.samples:
        notes["labels"] = "no series yet, so its labels are unknown: add them (or infer from a live registry)"
    if len(label_sets) > 1:
        shown = ", ".join(sorted("(" + ", ".join(sorted(s)) + ")" for s in label_sets))
        notes["labels"] = f"exported with several label sets {shown}: one name defined twice?"
    scrape = "in one scrape" if single else "in the sources"
    specs = []
    for name in names:
        values = sorted(seen.get(name, set()))
        if not values:
            notes[f"label:{name}"] = "open: no series yet, no value seen"
            specs.append(LabelSpec(name, None, DEFAULT_OPEN_LABEL_CAP))
        elif len(values) <= min(closed_max, loader.MAX_LABEL_VALUES) and "" not in values:
            seen_values = "the value" if len(values) == 1 else f"the {len(values)} values"
            notes[f"label:{name}"] = f"closed: {seen_values} seen {scrape}; add any it may also take"
            specs.append(LabelSpec(name, tuple(values)))
        else:
            notes[f"label:{name}"] = f"open: {len(values)} distinct values seen {scrape}"
            specs.append(LabelSpec(name, None, _cap(len(values))))
    return tuple(specs)


def _cap(seen: int) -> int:
    """The default cap when it leaves room to double what was seen, else the next hundred past
    double, within lint's bound."""
    if 2 * seen <= DEFAULT_OPEN_LABEL_CAP:
        return DEFAULT_OPEN_LABEL_CAP
    return min(_MAX_CAP, -(-2 * seen // 100) * 100)


def _buckets(family: ObservedFamily | None, declaration: Declaration | None) -> tuple[float, ...] | None:
    if family is not None and family.buckets is not None:
        return family.buckets
    if family is not None:
        edges: set[float] = set()
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                try:
                    edge = float(sample.label_map.get("le", "nan"))
                except ValueError:
                    continue
                if math.isfinite(edge):
                    edges.add(edge)
        if edges:
            return tuple(sorted(edges))
    if declaration is not None and declaration.buckets:
        return declaration.buckets
    return None


def _changes(family: ObservedFamily, spec: MetricSpec) -> list[str]:
    """What the source shows of a declared metric that its declaration does not admit."""
    found: list[str] = []
    kind = _TYPES.get(family.type)
    if kind is not None and kind is not spec.type:
        found.append(f"exported as a {family.type}, declared as a {spec.type}")
        return found
    seen: dict[str, set[str]] = defaultdict(set)
    for sample in family.samples:
        if sample.name.endswith(AUXILIARY_SUFFIXES):
            continue
        for key, value in sample.labels:
            if key.startswith(_EXPORTER_LABELS) or (key == "le" and sample.name.endswith("_bucket")):
                continue
            seen[key].add(value)
    new_labels = sorted(set(seen) - set(spec.label_names))
    if new_labels:
        found.append(f"new label(s) {', '.join(new_labels)}: a breaking change, declare them by hand")
    for label in spec.labels:
        if label.values is None:
            continue
        new_values = sorted(seen.get(label.name, set()) - set(label.values) - {OVERFLOW_VALUE})
        if new_values:
            found.append(f"label {label.name!r} has new value(s) {new_values}: add them to its values")
    return found


def _lint_clean(
    drafted: list[DraftMetric], version: str, existing: Contract | None
) -> tuple[list[DraftMetric], dict[str, str]]:
    """The drafted metrics every lint rule accepts (with ``existing``, so that a collision with
    a declared name counts), and why each other one was left out."""
    refused: dict[str, str] = {}
    kept = list(drafted)
    while True:
        namespaces = tuple(sorted({m.spec.namespace for m in kept})) or ("draft",)
        part = ContractPart(namespaces[0], version, "<draft>", namespaces)
        earlier = tuple(existing) if existing is not None else ()
        parts = (*existing.parts, part) if existing is not None else (part,)
        specs = tuple(
            attrs.evolve(m.spec, location=attrs.evolve(m.spec.location, path="<draft>")) for m in kept
        )
        findings = [
            f
            for f in lint(Contract(parts=parts, metrics=earlier + specs))
            if f.severity is Severity.ERROR and f.location.path == "<draft>"
        ]
        if not findings:
            return kept, refused
        for finding in findings:
            if finding.metric is not None:
                refused.setdefault(
                    finding.metric, f"{finding.rule.id} {finding.rule.name}: {finding.message}"
                )
        kept = [m for m in kept if m.spec.name not in refused]


def _located(spec: MetricSpec, path: str) -> MetricSpec:
    return attrs.evolve(spec, location=attrs.evolve(spec.location, path=path))
