"""Verification: does what a process really exported agree with the contract?

Every family inside the contract's namespaces must be declared, with the declared type,
exactly the declared label names, admitted label values (closed sets; open sets within
``max_values``; the overflow value is always admitted, its counter tells the story), the
declared buckets and, where the source carries it, the declared unit. Declared metrics that
were never emitted are reported as absent: a warning, or an error with ``require_all``.
An untyped family (``unknown``) satisfies a declared gauge: it claims no type, and Prometheus
stores it as a gauge.
"""

from __future__ import annotations

import enum
import json
import math
from collections import defaultdict
from collections.abc import Iterable

import attrs

from cadmetrics.contract.coverage import Coverage, emitted_values
from cadmetrics.contract.model import OVERFLOW_VALUE, Contract, MetricSpec, MetricType
from cadmetrics.contract.naming import otel_unit
from cadmetrics.contract.observed import AUXILIARY_SUFFIXES, Observation, ObservedFamily, Sample

#: Labels an exporter may add that no contract declares: ``pid`` on prometheus_client's
#: multiprocess gauges in ``all``/``liveall`` mode, ``otel_scope_*`` from OTel's exporter.
_EXPORTER_LABEL_PREFIXES = ("otel_scope_",)
_PID_MODES = frozenset({"all", "liveall", None})


class Kind(enum.StrEnum):
    UNDECLARED = "undeclared"
    TYPE = "type"
    LABELS = "labels"
    LABEL_VALUE = "label-value"
    CARDINALITY = "cardinality"
    BUCKETS = "buckets"
    UNIT = "unit"
    EXEMPLAR = "exemplar"
    EVENT = "event"
    ABSENT = "absent"


@attrs.frozen
class Violation:
    kind: Kind
    metric: str
    message: str
    error: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "metric": self.metric,
            "message": self.message,
            "severity": "error" if self.error else "warning",
        }


@attrs.frozen
class VerificationReport:
    origin: str
    violations: tuple[Violation, ...]
    checked: tuple[str, ...]  # declared families found with data
    foreign: int  # families outside the contract's namespaces, not checked
    coverage: Coverage | None = None

    @property
    def errors(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.error)

    @property
    def ok(self) -> bool:
        return not self.errors

    def render(self, *, coverage: bool = False) -> str:
        """The verdict and every violation; with ``coverage``, what was never emitted too."""
        warnings = len(self.violations) - len(self.errors)
        verdict = "PASS" if self.ok else "FAIL"
        noun = self.coverage.noun if self.coverage is not None else "metrics"
        foreign = "families" if noun == "metrics" else noun
        lines = [
            f"contract verification of {self.origin}: {verdict} "
            f"({len(self.errors)} errors, {warnings} warnings; {len(self.checked)} declared "
            f"{noun} seen, {self.foreign} foreign {foreign} ignored)"
        ]
        for v in sorted(self.violations, key=lambda v: (not v.error, v.metric, v.kind)):
            lines.append(f"  {'error' if v.error else 'warning':7} {v.kind:11} {v.metric}: {v.message}")
        if coverage and self.coverage is not None:
            lines.extend(self.coverage.render())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "ok": self.ok,
            "checked": list(self.checked),
            "foreign": self.foreign,
            "violations": [v.to_dict() for v in self.violations],
            "coverage": self.coverage.to_dict() if self.coverage is not None else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def verify(observation: Observation, contract: Contract, *, require_all: bool = False) -> VerificationReport:
    """Check ``observation`` against ``contract``."""
    return verify_all([observation], contract, require_all=require_all)


def verify_all(
    observations: Iterable[Observation], contract: Contract, *, require_all: bool = False
) -> VerificationReport:
    """Check several sources as one report; a metric counts as present if any source has it."""
    sources = list(observations)
    violations: list[Violation] = []
    checked: list[str] = []
    exported: set[str] = set()
    foreign = 0
    for observation in sources:
        for family in observation.families:
            # a family exported under a declared name but another type is a type mismatch,
            # even though the counter convention changed its name (``x`` -> ``x_total``)
            spec = contract.get(family.name) or contract.get(family.source_name)
            if spec is None and _creation_time_of_declared(family.name, contract):
                continue
            if spec is None:
                if contract.owns(family.name):
                    violations.append(
                        Violation(
                            Kind.UNDECLARED,
                            family.name,
                            "exported but not declared in the contract",
                        )
                    )
                else:
                    foreign += 1
                continue
            exported.add(spec.name)
            violations.extend(_check_family(family, spec, observation.format))
            if family.has_data and spec.name not in checked:
                checked.append(spec.name)
    for spec in contract:
        if spec.name not in checked:
            where = "never emitted" if spec.name in exported else "not exported at all"
            violations.append(Violation(Kind.ABSENT, spec.name, f"declared but {where}", require_all))
    origin = " + ".join(obs.origin for obs in sources) or "<nothing>"
    coverage = Coverage.of(contract, checked, emitted_values(sources, contract))
    return VerificationReport(origin, tuple(violations), tuple(checked), foreign, coverage)


def _creation_time_of_declared(name: str, contract: Contract) -> bool:
    """prometheus_client's text format exports a counter's or histogram's creation time as a
    gauge family of its own, ``x_created``; it belongs to the declared metric."""
    if not name.endswith("_created"):
        return False
    stem = name.removesuffix("_created")
    counter = contract.get(stem + "_total")
    histogram = contract.get(stem)
    return (counter is not None and counter.type is MetricType.COUNTER) or (
        histogram is not None and histogram.type is MetricType.HISTOGRAM
    )


def _check_family(family: ObservedFamily, spec: MetricSpec, source_format: str) -> list[Violation]:
    problems: list[Violation] = []
    untyped_gauge = family.type == "unknown" and spec.type is MetricType.GAUGE
    if family.type != spec.type.value and not untyped_gauge:
        problems.append(
            Violation(Kind.TYPE, spec.name, f"exported as {family.type}, declared as {spec.type}")
        )
        return problems
    problems.extend(_check_unit(family, spec, source_format))
    samples = [s for s in family.samples if not s.name.endswith(AUXILIARY_SUFFIXES)]
    problems.extend(_check_exemplars(samples, spec))
    problems.extend(_check_labels(samples, spec))
    if spec.type is MetricType.HISTOGRAM:
        problems.extend(_check_buckets(family, samples, spec))
    return problems


def _check_unit(family: ObservedFamily, spec: MetricSpec, source_format: str) -> list[Violation]:
    if source_format == "otel":
        expected = otel_unit(spec)
        if family.unit != expected:
            return [Violation(Kind.UNIT, spec.name, f"OTel unit {family.unit!r}, declared {expected!r}")]
        return []
    if family.unit and family.unit != spec.unit.value:
        return [Violation(Kind.UNIT, spec.name, f"unit {family.unit!r}, declared {spec.unit.value!r}")]
    return []


#: What an exemplar may carry: the ids that link a sample to its trace, and nothing else (an
#: exemplar's labels are not limited by the contract, so they must not smuggle data in).
_EXEMPLAR_LABELS = frozenset({"trace_id", "span_id"})


def _check_exemplars(samples: list[Sample], spec: MetricSpec) -> list[Violation]:
    for sample in samples:
        if sample.exemplar is None:
            continue
        names = {name for name, _ in sample.exemplar}
        if not names or not names <= _EXEMPLAR_LABELS or "trace_id" not in names:
            shown = ", ".join(sorted(names)) or "none"
            return [
                Violation(
                    Kind.EXEMPLAR,
                    spec.name,
                    f"an exemplar carries ({shown}); exemplars carry trace_id and span_id only",
                )
            ]
    return []


def _multiprocess_pid(samples: list[Sample], spec: MetricSpec) -> bool:
    """prometheus_client's multiprocess mode adds ``pid`` to every sample of a gauge in mode
    ``all``/``liveall`` (its default); a stray ``pid`` on some samples is not that."""
    return (
        spec.type is MetricType.GAUGE
        and spec.multiprocess_mode in _PID_MODES
        and spec.label("pid") is None
        and bool(samples)
        and all(any(k == "pid" for k, _ in s.labels) for s in samples)
    )


def _check_labels(samples: list[Sample], spec: MetricSpec) -> list[Violation]:
    problems: list[Violation] = []
    declared = set(spec.label_names)
    tolerated = {"pid"} if _multiprocess_pid(samples, spec) else set()
    label_sets: dict[frozenset[str], None] = {}
    values: dict[str, set[str]] = defaultdict(set)
    for sample in samples:
        labels = {
            k: v
            for k, v in sample.labels
            if not k.startswith(_EXPORTER_LABEL_PREFIXES)
            and k not in tolerated
            and not (k == "le" and sample.name.endswith("_bucket"))
        }
        label_sets.setdefault(frozenset(labels))
        for key, value in labels.items():
            values[key].add(value)
    shown = [f"({', '.join(sorted(names)) or 'none'})" for names in label_sets]
    expected = f"({', '.join(sorted(declared)) or 'none'})"
    if len(label_sets) > 1:
        # the mark of one name defined twice (two modules, two registries) with different labels
        problems.append(
            Violation(
                Kind.LABELS,
                spec.name,
                f"exported with {len(label_sets)} label sets {', '.join(shown)}: one name defined "
                f"more than once with different labels? declared {expected}",
            )
        )
    elif label_sets and next(iter(label_sets)) != declared:
        problems.append(
            Violation(Kind.LABELS, spec.name, f"labels {shown[0]} differ from the declared {expected}")
        )
    for label in spec.labels:
        found = values.get(label.name, set()) - {OVERFLOW_VALUE}
        if label.values is not None:
            stray = sorted(found - set(label.values))
            if stray:
                problems.append(
                    Violation(
                        Kind.LABEL_VALUE,
                        spec.name,
                        f"label {label.name!r} has values {stray} outside the declared set "
                        f"({', '.join(label.values)})",
                    )
                )
        elif label.max_values is not None and len(found) > label.max_values:
            problems.append(
                Violation(
                    Kind.CARDINALITY,
                    spec.name,
                    f"label {label.name!r} has {len(found)} distinct values, more than "
                    f"max_values {label.max_values}",
                )
            )
    return problems


def _check_buckets(family: ObservedFamily, samples: list[Sample], spec: MetricSpec) -> list[Violation]:
    declared = tuple(spec.buckets or ())
    if family.buckets is not None:
        found = family.buckets
    else:
        edges: set[float] = set()
        for sample in samples:
            if sample.name.endswith("_bucket"):
                le = sample.label_map.get("le")
                if le is None:
                    continue
                try:
                    edges.add(float(le))
                except ValueError:
                    return [Violation(Kind.BUCKETS, spec.name, f"bucket bound le={le!r} is not a number")]
        if not edges:
            return []
        found = tuple(sorted(e for e in edges if not math.isinf(e)))
    if len(found) != len(declared) or any(
        not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(found, declared, strict=False)
    ):
        return [
            Violation(
                Kind.BUCKETS,
                spec.name,
                f"buckets {_fmt(found)} differ from the declared {_fmt(declared)}",
            )
        ]
    return []


def _fmt(buckets: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{b:g}" for b in buckets) + "]"
