"""What a process really exported, in one neutral shape, whatever it came from.

Verification and the test helpers read an :class:`Observation`, built from Prometheus
exposition text (classic or OpenMetrics, parsed by prometheus_client's own parsers), from a
live ``CollectorRegistry``, or from OpenTelemetry ``MetricsData`` (an ``InMemoryMetricReader``'s
output). OTel histograms are spelled out as Prometheus-style ``_bucket``/``_count``/``_sum``
samples so that one set of checks serves both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from cadmetrics.contract.model import Contract
from cadmetrics.contract.naming import otel_index, prometheus_name_for_otel
from cadmetrics.errors import InputError

LabelPairs = tuple[tuple[str, str], ...]

#: Samples that accompany a family without being its values: creation times, gauge histograms.
AUXILIARY_SUFFIXES = ("_created", "_gcount", "_gsum")


@attrs.frozen
class Sample:
    name: str
    labels: LabelPairs
    value: float

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@attrs.frozen
class ObservedFamily:
    """One metric family as exported. ``name`` is the contract-style name (counters with
    ``_total``); ``type`` is the exported type string; ``unit`` is None when the source does
    not carry units (classic text format)."""

    name: str
    type: str
    samples: tuple[Sample, ...]
    unit: str | None = None
    buckets: tuple[float, ...] | None = None  # OTel explicit bounds, when known directly
    source_name: str = ""  # the name in the source (the OTel instrument name, say)

    @property
    def has_data(self) -> bool:
        """Whether anything was emitted. prometheus_client exports an unlabelled counter or
        histogram at zero from the start; a zero counter or an empty histogram is therefore
        "never emitted". An unlabelled gauge at zero cannot be told from one set to zero and
        counts as emitted."""
        samples = [s for s in self.samples if not s.name.endswith(AUXILIARY_SUFFIXES)]
        if self.type == "counter":
            return any(s.value != 0 for s in samples)
        if self.type == "histogram":
            return any(s.name.endswith("_count") and s.value != 0 for s in samples)
        return bool(samples)


@attrs.frozen
class Observation:
    """Every family of one source (``origin`` says which: a file, a URL, ``otel``...)."""

    origin: str
    families: tuple[ObservedFamily, ...]
    format: str = "prometheus"  # or "otel"

    def family(self, name: str) -> ObservedFamily | None:
        for family in self.families:
            if family.name == name:
                return family
        return None

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``.

        ``name`` is a sample name (``x_total``, ``x_bucket``, ``x_sum``, ``x_count``) or a
        histogram's family name, which reads its ``_count``. Absent series read as 0, so that
        deltas around a block work from the first emission.
        """
        family = self.family(name)
        if family is not None and family.type == "histogram":
            name += "_count"
        wanted = {k: str(v) for k, v in labels.items()}
        total = 0.0
        for fam in self.families:
            for sample in fam.samples:
                if sample.name == name and wanted.items() <= sample.label_map.items():
                    total += sample.value
        return total


def _pairs(labels: Mapping[str, Any]) -> LabelPairs:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


# -- Prometheus -------------------------------------------------------------------------------


def from_prometheus_metrics(metrics: Iterable[Any], origin: str) -> Observation:
    """From prometheus_client ``Metric`` objects (a registry's ``collect()`` or a parser's)."""
    families = []
    for metric in metrics:
        name = metric.name
        if metric.type == "counter" and not name.endswith("_total"):
            name += "_total"
        samples = tuple(Sample(s.name, _pairs(s.labels), float(s.value)) for s in metric.samples)
        families.append(
            ObservedFamily(name, metric.type, samples, metric.unit or None, source_name=metric.name)
        )
    return Observation(origin, tuple(families))


def from_exposition(text: str, origin: str = "<exposition>") -> Observation:
    """Parse Prometheus text format 0.0.4 or OpenMetrics 1.0 (recognised by its ``# EOF``)."""
    try:
        if text.rstrip().endswith("# EOF"):
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
        else:
            from prometheus_client.parser import text_string_to_metric_families
    except ImportError as exc:
        raise InputError(
            "reading exposition text needs prometheus_client: pip install 'cadmetrics[prometheus]'"
        ) from exc
    try:
        families = list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise InputError(f"{origin}: not valid Prometheus exposition text: {exc}") from exc
    except RecursionError:
        raise InputError(f"{origin}: not valid Prometheus exposition text: nested too deeply") from None
    observation = from_prometheus_metrics(families, origin)
    written = set(_SAMPLE_NAME.findall(text))
    return attrs.evolve(observation, families=tuple(_as_written(f, written) for f in observation.families))


_SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?=[{\s])", re.MULTILINE)


def _as_written(family: ObservedFamily, written: set[str]) -> ObservedFamily:
    """The classic parser files a counter sample written without ``_total`` under
    ``x_total``; Prometheus stores it as written, so the family is reported under that name."""
    if family.type != "counter" or family.name in written or family.source_name not in written:
        return family
    samples = tuple(
        attrs.evolve(s, name=family.source_name) if s.name == family.name else s for s in family.samples
    )
    return attrs.evolve(family, name=family.source_name, samples=samples)


def from_registry(registry: Any, origin: str = "<registry>") -> Observation:
    """Read a live prometheus_client ``CollectorRegistry`` (no text round trip)."""
    return from_prometheus_metrics(registry.collect(), origin)


# -- OpenTelemetry ----------------------------------------------------------------------------


def from_otel(metrics_data: Any, contract: Contract, origin: str = "otel") -> Observation:
    """From OpenTelemetry ``MetricsData``. Instrument names are mapped back to contract names
    (``cadmetrics_model_load_duration`` + ``s`` -> ``..._seconds``); undeclared instruments get
    the name the Prometheus exporter would give them."""
    if metrics_data is None:
        return Observation(origin, (), "otel")
    by_otel_name = otel_index(contract)
    families = []
    for resource_metrics in metrics_data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                families.append(_otel_family(metric, by_otel_name))
    return Observation(origin, tuple(families), "otel")


def _otel_family(metric: Any, by_otel_name: Mapping[str, Any]) -> ObservedFamily:
    data = metric.data
    kind = type(data).__name__
    monotonic = kind == "Sum" and bool(getattr(data, "is_monotonic", False))
    if kind == "Histogram":
        exported_type = "histogram"
    elif kind == "ExponentialHistogram":
        exported_type = "exponential_histogram"  # no explicit buckets: never what a contract declares
    elif monotonic:
        exported_type = "counter"
    elif kind in ("Sum", "Gauge"):
        exported_type = "gauge"
    else:
        exported_type = kind.lower()
    spec = by_otel_name.get(metric.name)
    name = (
        spec.name if spec is not None else prometheus_name_for_otel(metric.name, metric.unit or "", monotonic)
    )
    samples: list[Sample] = []
    bounds: tuple[float, ...] | None = None
    for point in data.data_points:
        labels = _pairs(point.attributes or {})
        if exported_type == "histogram":
            bounds = tuple(float(b) for b in point.explicit_bounds)
            samples.extend(_histogram_samples(name, labels, point))
        elif exported_type == "exponential_histogram":
            samples.append(Sample(name + "_count", labels, float(point.count)))
            samples.append(Sample(name + "_sum", labels, float(point.sum)))
        else:
            samples.append(Sample(name, labels, float(point.value)))
    return ObservedFamily(name, exported_type, tuple(samples), metric.unit or "", bounds, metric.name)


def _histogram_samples(name: str, labels: LabelPairs, point: Any) -> list[Sample]:
    samples = []
    cumulative = 0.0
    edges = [*point.explicit_bounds, math.inf]
    for edge, count in zip(edges, point.bucket_counts, strict=False):
        cumulative += count
        le = "+Inf" if math.isinf(edge) else repr(float(edge))
        samples.append(Sample(name + "_bucket", tuple(sorted((*labels, ("le", le)))), cumulative))
    samples.append(Sample(name + "_count", labels, float(point.count)))
    samples.append(Sample(name + "_sum", labels, float(point.sum)))
    return samples


def require_declared(contract: Contract, name: str) -> None:
    """Reading helpers refuse names the contract lacks: a typo should not read as zero."""
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name.removesuffix(suffix) in contract:
            return
    contract.require(name)
