"""What a process really exported, in one neutral shape, whatever it came from.

Verification and the test helpers read an :class:`Observation`, built from Prometheus
exposition text (classic or OpenMetrics, parsed by prometheus_client's own parsers), from a
live ``CollectorRegistry``, from OpenTelemetry ``MetricsData`` (an ``InMemoryMetricReader``'s
output), or from an OTLP ``ExportMetricsServiceRequest`` (what a receiver got over the wire).
OTel histograms are spelled out as Prometheus-style ``_bucket``/``_count``/``_sum`` samples so
that one set of checks serves both.
"""

from __future__ import annotations

import importlib
import math
import re
import time
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
    exemplar: LabelPairs | None = None  # an OpenMetrics exemplar's labels, when it has one

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
    help: str = ""  # HELP text, or an OTel instrument's description

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
        if metric.type == "info" and not name.endswith("_info"):
            name += "_info"
        samples, kind = _prometheus_samples(metric)
        kind = _STORED_AS.get(kind, kind)
        families.append(
            ObservedFamily(
                name,
                kind,
                samples,
                metric.unit or None,
                source_name=metric.name,
                help=metric.documentation or "",
            )
        )
    return Observation(origin, tuple(families))


#: OpenMetrics types Prometheus stores as gauges: an info metric ``x`` is the gauge ``x_info``
#: (value 1, the facts in its labels), a state set one gauge series per state. The classic text
#: format writes them so; reading them as gauges makes a live registry, OpenMetrics and
#: classic text agree.
_STORED_AS = {"info": "gauge", "stateset": "gauge"}


def _prometheus_samples(metric: Any) -> tuple[tuple[Sample, ...], str]:
    """A family's samples and exported type. A native histogram sample (OpenMetrics'
    ``x {count:..,sum:..,schema:..}``) has no value and may have no labels; it is spelled out as
    ``_count`` and ``_sum`` unless the family also carries the classic series. A family of
    native histograms alone has no explicit buckets, so it is typed apart, as OTel's
    exponential histograms are: never what a contract declares."""
    native = [s for s in metric.samples if getattr(s, "native_histogram", None) is not None]
    classic = [s for s in metric.samples if getattr(s, "native_histogram", None) is None]
    samples = [Sample(s.name, _pairs(s.labels or {}), float(s.value), _exemplar(s)) for s in classic]
    if not native:
        return tuple(samples), metric.type
    if any(s.name == metric.name + "_count" for s in classic):
        return tuple(samples), metric.type
    for s in native:
        labels = _pairs(s.labels or {})
        samples.append(Sample(s.name + "_count", labels, float(s.native_histogram.count_value)))
        samples.append(Sample(s.name + "_sum", labels, float(s.native_histogram.sum_value)))
    return tuple(samples), "native_histogram"


def _exemplar(sample: Any) -> LabelPairs | None:
    exemplar = getattr(sample, "exemplar", None)
    return None if exemplar is None else _pairs(exemplar.labels or {})


def from_exposition(text: str, origin: str = "<exposition>") -> Observation:
    """Parse Prometheus text format 0.0.4 or OpenMetrics 1.0 (recognised by its ``# EOF``).

    Text that cannot be read is an :class:`InputError` naming ``origin``, whatever failed:
    prometheus_client's parsers report most problems as ``ValueError`` but let others escape
    (a native histogram without ``schema`` as ``KeyError``, an integer beyond float range as
    ``OverflowError``), and the parsed samples are converted lazily, as the parser yields them.
    This is the one place where those foreign errors become the library's."""
    try:
        if text.rstrip().endswith("# EOF"):
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
        else:
            from prometheus_client.parser import text_string_to_metric_families
    except ImportError as exc:
        raise InputError(
            "reading exposition text needs prometheus_client: pip install 'cadmetrics[prometheus]'"
        ) from exc
    started = time.perf_counter()
    try:
        parsed = text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
        observation = from_prometheus_metrics(parsed, origin)  # the parser runs as this reads
    except MemoryError:
        raise
    except RecursionError:
        raise InputError(f"{origin}: not valid Prometheus exposition text: nested too deeply") from None
    except Exception as exc:
        spent = time.perf_counter() - started
        where = _failing_line(text, text_string_to_metric_families, origin, spent)
        raise InputError(
            f"{origin}: not valid Prometheus exposition text: {where}{_parse_problem(exc)}"
        ) from exc
    written = set(_SAMPLE_NAME.findall(text))
    return attrs.evolve(observation, families=tuple(_as_written(f, written) for f in observation.families))


def _failing_line(text: str, parse: Any, origin: str, spent: float) -> str:
    """``"line N ('...'): "``: the first line whose reading fails, found by bisecting on how
    many lines are read (the parsers say what failed, not where). Each step reads up to the
    whole text again, so the search is made only where reading it once took ``spent`` seconds
    few enough that all the steps stay within :data:`_LOCATING_SECONDS`; otherwise, and when
    no line is found, the answer is empty."""
    lines = text.splitlines(keepends=True)
    if spent * max(1, len(lines)).bit_length() > _LOCATING_SECONDS:
        return ""
    openmetrics = text.rstrip().endswith("# EOF")

    def fails(count: int) -> bool:
        prefix = "".join(lines[:count])
        if openmetrics and not prefix.rstrip().endswith("# EOF"):
            prefix += "" if prefix.endswith("\n") or not prefix else "\n"
            prefix += "# EOF\n"
        try:
            from_prometheus_metrics(parse(prefix), origin)
        except Exception:  # any failure: the same ones the caller turns into an InputError
            return True
        return False

    if not lines or not fails(len(lines)):
        return ""
    good, bad = 0, len(lines)
    while good + 1 < bad:
        middle = (good + bad) // 2
        if fails(middle):
            bad = middle
        else:
            good = middle
    shown = lines[bad - 1].strip()
    return f"line {bad} ({shown[:80] + '...' if len(shown) > 80 else shown!r}): "


def _parse_problem(exc: Exception) -> str:
    """A parser's failure in words: a bare ``KeyError: 'schema'`` names a missing field."""
    if isinstance(exc, KeyError) and exc.args:
        return f"a required field {exc.args[0]!r} is missing"
    if isinstance(exc, OverflowError):
        return f"a number is out of the range of a float ({exc})"
    return str(exc) or type(exc).__name__


#: What finding the failing line of a text may cost, at most (a bisection reads it again
#: some twenty times for a text of a million lines).
_LOCATING_SECONDS = 1.0

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
    return _family(
        metric.name,
        metric.unit or "",
        type(data).__name__,
        data=data,
        points=data.data_points,
        by_otel_name=by_otel_name,
        description=metric.description or "",
    )


#: OTLP's aggregation temporality (the SDK's ``AggregationTemporality`` has the same numbers).
_CUMULATIVE = 2
_TEMPORALITY = {0: "unspecified", 1: "delta"}


def _family(
    otel_name: str,
    unit: str,
    kind: str,
    *,
    data: Any,
    points: Iterable[Any],
    by_otel_name: Mapping[str, Any],
    description: str = "",
) -> ObservedFamily:
    """One family from an OTel metric, whichever form it came in: ``kind`` is the SDK's data
    class name (``Sum``, ``Gauge``, ``Histogram``...), ``points`` carry ``attributes`` as a
    mapping. Only cumulative sums and histograms are the Prometheus counters, gauges and
    histograms a contract declares; delta data is typed apart, so that it reads as a type
    mismatch."""
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
    temporality = int(getattr(data, "aggregation_temporality", _CUMULATIVE))
    if kind in ("Sum", "Histogram") and temporality != _CUMULATIVE:
        exported_type += f" ({_TEMPORALITY.get(temporality, str(temporality))} temporality)"
    spec = by_otel_name.get(otel_name)
    name = spec.name if spec is not None else prometheus_name_for_otel(otel_name, unit, monotonic)
    samples: list[Sample] = []
    bounds: tuple[float, ...] | None = None
    for point in points:
        labels = _pairs(point.attributes or {})
        if kind == "Histogram":
            # every point's bounds count: the family reports the first that is not declared
            found = tuple(float(b) for b in point.explicit_bounds)
            if bounds is None or (spec is not None and bounds == spec.buckets):
                bounds = found
            samples.extend(_histogram_samples(name, labels, point))
        elif kind in ("ExponentialHistogram", "Summary"):
            samples.append(Sample(name + "_count", labels, float(point.count)))
            samples.append(Sample(name + "_sum", labels, float(point.sum)))
        else:
            samples.append(Sample(name, labels, float(point.value)))
    return ObservedFamily(name, exported_type, tuple(samples), unit, bounds, otel_name, description)


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


# -- OTLP -------------------------------------------------------------------------------------


def from_otlp(request: Any, contract: Contract, origin: str = "otlp") -> Observation:
    """From one OTLP ``ExportMetricsServiceRequest`` (the protobuf message an OTLP receiver
    decodes, or its serialized bytes), read like :func:`from_otel`: the same name mapping,
    units, attributes and bounds, so that what crossed the wire is verified as the SDK's own
    data is. Resource and scope attributes are not labels and are left out.

    With cumulative temporality each export carries every series so far: the latest request
    of a process is its whole state (several requests go to ``verify_all``)."""
    if isinstance(request, bytes | bytearray | memoryview):
        request = _parse_otlp(bytes(request), origin)
    by_otel_name = otel_index(contract)
    families = []
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                field = metric.WhichOneof("data")
                if field is None:  # a metric without data: nothing was exported under it
                    continue
                data = getattr(metric, field)
                kind = _OTLP_KINDS.get(field, field)
                points = [_OtlpPoint.of(point) for point in data.data_points]
                families.append(
                    _family(
                        metric.name,
                        metric.unit,
                        kind,
                        data=data,
                        points=points,
                        by_otel_name=by_otel_name,
                        description=metric.description,
                    )
                )
    return Observation(origin, tuple(families), "otel")


#: OTLP's ``Metric.data`` fields by the SDK class name that :func:`_family` reads.
_OTLP_KINDS = {
    "sum": "Sum",
    "gauge": "Gauge",
    "histogram": "Histogram",
    "exponential_histogram": "ExponentialHistogram",
    "summary": "Summary",
}


def _parse_otlp(payload: bytes, origin: str) -> Any:
    try:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        # by module name: protobuf ships no type stubs
        decode_error: type[Exception] = importlib.import_module("google.protobuf.message").DecodeError
    except ImportError as exc:
        raise InputError(
            "reading OTLP payloads needs opentelemetry-proto: pip install 'cadmetrics[otel]'"
        ) from exc
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(payload)
    except MemoryError:
        raise
    except Exception as exc:
        # The one place OTLP bytes are decoded. The C (upb) backend reports every problem as a
        # DecodeError; the pure-Python backend lets some escape as what they are (a string
        # field of invalid UTF-8 is a UnicodeDecodeError).
        problem = str(exc) if isinstance(exc, decode_error) else f"{type(exc).__name__}: {exc}"
        raise InputError(f"{origin}: not an OTLP ExportMetricsServiceRequest: {problem}") from exc
    return request


@attrs.frozen
class _OtlpPoint:
    """An OTLP data point in the SDK point's shape (attributes as a mapping, one ``value``)."""

    attributes: dict[str, Any]
    value: float = 0.0
    count: float = 0.0
    sum: float = 0.0
    explicit_bounds: tuple[float, ...] = ()
    bucket_counts: tuple[int, ...] = ()

    @classmethod
    def of(cls, point: Any) -> _OtlpPoint:
        attributes = {kv.key: _any_value(kv.value) for kv in point.attributes}
        if "value" in point.DESCRIPTOR.oneofs_by_name:  # NumberDataPoint: as_int or as_double
            which = point.WhichOneof("value")
            return cls(attributes, float(getattr(point, which)) if which else 0.0)
        return cls(
            attributes,
            count=float(point.count),
            sum=float(point.sum),
            explicit_bounds=tuple(getattr(point, "explicit_bounds", ())),
            bucket_counts=tuple(getattr(point, "bucket_counts", ())),
        )


def _any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as the Python value the SDK would hold (so ``str()`` agrees)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else ""


def require_declared(contract: Contract, name: str) -> None:
    """Reading helpers refuse names the contract lacks: a typo should not read as zero."""
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name.removesuffix(suffix) in contract:
            return
    contract.require(name)
