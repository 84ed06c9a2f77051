"""Every series name a query may select, and what each one is.

A contract metric becomes the series Prometheus really stores: a counter ``x_total`` (and its
``x_created``), a gauge ``x``, a histogram's ``x_bucket`` (with ``le``), ``x_count``, ``x_sum``
(and ``x_created``), each carrying the metric's labels plus the target labels Prometheus adds on
scrape. Recording rules add their own names, and Prometheus's own per-target series (``up``,
``scrape_*``) are known too. A name that is none of these is diagnosed: a suffix that does not
fit the metric's type, or a metric the contract does not have.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterable, Mapping

import attrs

from cadmetrics.check.findings import SUFFIX_TYPE, UNKNOWN_METRIC, Check
from cadmetrics.check.labels import Kind, LabelSet, Value
from cadmetrics.contract.compose import packaged_contract_path
from cadmetrics.contract.model import Contract, MetricSpec, MetricType

#: How many namespaces an unknown-metric message lists; past it, it says how many there are.
_NAMESPACES_LISTED = 3

#: The target labels Prometheus attaches to every scraped series by default.
DEFAULT_SCRAPE_LABELS: tuple[str, ...] = ("job", "instance")

#: Series Prometheus writes for each scrape target: they carry the target labels alone.
TARGET_SERIES = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
)

#: Series Prometheus writes for alerting rules: their labels depend on every alert, so unknown.
ALERT_SERIES = ("ALERTS", "ALERTS_FOR_STATE")

HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


class SeriesType(enum.StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    UNKNOWN = "unknown"  # recorded series and Prometheus's own alert series: no type to judge


@attrs.frozen(eq=False)
class Series:
    """A selectable series name: its labels (``value``), its type and where it comes from."""

    name: str
    value: Value
    type: SeriesType
    description: str
    metric: MetricSpec | None = None
    buckets: tuple[float, ...] | None = None  # the le values of a histogram's _bucket series


Resolver = Callable[[str], "Series | None"]


class Catalog:
    """Series names of a contract (plus scrape labels), of recording rules and of Prometheus."""

    def __init__(
        self,
        contract: Contract,
        *,
        scrape_labels: Iterable[str] = DEFAULT_SCRAPE_LABELS,
        recorded: Resolver | None = None,
        recorded_names: Iterable[str] = (),
    ) -> None:
        self.contract = contract
        self.scrape_labels = frozenset(scrape_labels)
        self._recorded = recorded
        self._recorded_names = tuple(recorded_names)
        self._series: dict[str, Series] = {}
        for spec in contract:
            for series in self._series_of(spec):
                self._series.setdefault(series.name, series)
        target = LabelSet(self.scrape_labels)
        for name in TARGET_SERIES:
            self._series.setdefault(
                name,
                Series(name, Value(Kind.INSTANT, (target,), {}, (name,)), SeriesType.GAUGE, "target series"),
            )
        for name in ALERT_SERIES:
            self._series.setdefault(
                name, Series(name, Value(Kind.INSTANT, None, {}, (name,)), SeriesType.UNKNOWN, "alert series")
            )

    def contract_series(self, name: str) -> Series | None:
        """The series ``name`` of a contract metric (or of Prometheus itself)."""
        return self._series.get(name)

    def lookup(self, name: str) -> Series | None:
        series = self._series.get(name)
        if series is None and self._recorded is not None:
            series = self._recorded(name)
        return series

    def names(self) -> list[str]:
        return [*self._series, *self._recorded_names]

    def diagnose(self, name: str) -> tuple[Check, str]:
        """Why ``name`` selects nothing: a suffix that does not fit the metric's type, or a
        metric the contract lacks (with the nearest names)."""
        spec = self.contract.get(name)
        if spec is not None and spec.type is MetricType.HISTOGRAM:
            return SUFFIX_TYPE, (
                f"{name} is a histogram: it has no series of its own name; select "
                f"{name}_bucket, {name}_count or {name}_sum"
            )
        counter = self.contract.get(name + "_total")
        if counter is not None and counter.type is MetricType.COUNTER:
            return SUFFIX_TYPE, f"{name} is the counter {counter.name}: counters are stored with _total"
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                base = _declared(self.contract, name.removesuffix(suffix))
                if base is not None and base.type is not MetricType.HISTOGRAM:
                    return SUFFIX_TYPE, (
                        f"{base.name} is a {base.type}, not a histogram: it has no {suffix} series"
                    )
        if name.endswith("_total"):
            base = self.contract.get(name.removesuffix("_total"))
            if base is not None:
                return SUFFIX_TYPE, f"{base.name} is a {base.type}: only counters end in _total"
        message = f"metric {name} is not in the contract"
        if not self.contract.owns(name):
            namespaces = self.contract.namespaces
            if len(namespaces) <= _NAMESPACES_LISTED:
                message += f" (it lies outside the contract's namespaces: {', '.join(namespaces)})"
            else:
                message += f" (it lies outside the contract's {len(namespaces)} namespaces)"
        near = self.suggestions(name)
        if near:
            message += f"; did you mean {', '.join(near)}?"
        return UNKNOWN_METRIC, message

    def suggestions(self, name: str) -> list[str]:
        """The known names nearest ``name``: the host's own first (a host's typo is most likely
        one of its own names, not one of the library's), then any other. A recorded series is
        offered only when its labels are known (not built on unknown metrics) and it is not a
        recording of the same wrong name (``job:x:rate5m`` for a wrong ``x``). A creation-time
        series is offered only for a name that asks for one."""
        library = str(packaged_contract_path())
        own = [
            series.name
            for series in self._series.values()
            if series.metric is not None and series.metric.location.path != library
        ]
        for pool in (own, self.names()):
            near = [
                candidate
                for candidate in difflib.get_close_matches(name, pool, n=6, cutoff=0.75)
                if self._known(candidate)
                and name not in candidate
                and (name.endswith("_created") or not candidate.endswith("_created"))
            ]
            if near:
                return near[:3]
        return []

    def _known(self, name: str) -> bool:
        series = self.lookup(name)
        return series is not None and (
            series.type is not SeriesType.UNKNOWN or series.value.shapes is not None
        )

    def _series_of(self, spec: MetricSpec) -> list[Series]:
        labels = frozenset(spec.label_names) | self.scrape_labels
        domains: Mapping[str, frozenset[str]] = {
            label.name: frozenset(label.values) for label in spec.labels if label.values is not None
        }

        def series(
            name: str, type_: SeriesType, description: str, extra: frozenset[str] = frozenset()
        ) -> Series:
            value = Value(Kind.INSTANT, (LabelSet(labels | extra),), domains, (name,))
            buckets = spec.buckets if "le" in extra else None
            return Series(name, value, type_, description, spec, buckets)

        if spec.type is MetricType.COUNTER:
            stem = spec.name.removesuffix("_total")
            return [
                series(spec.name, SeriesType.COUNTER, f"the counter {spec.name}"),
                series(stem + "_created", SeriesType.GAUGE, f"the creation time of {spec.name}"),
            ]
        if spec.type is MetricType.HISTOGRAM:
            return [
                series(
                    spec.name + "_bucket",
                    SeriesType.COUNTER,
                    f"the cumulative bucket counter of histogram {spec.name}",
                    frozenset({"le"}),
                ),
                series(
                    spec.name + "_count",
                    SeriesType.COUNTER,
                    f"the observation counter of histogram {spec.name}",
                ),
                series(spec.name + "_sum", SeriesType.COUNTER, f"the running sum of histogram {spec.name}"),
                series(spec.name + "_created", SeriesType.GAUGE, f"the creation time of {spec.name}"),
            ]
        return [series(spec.name, SeriesType.GAUGE, f"the gauge {spec.name}")]


def _declared(contract: Contract, base: str) -> MetricSpec | None:
    """The metric ``base`` names, as declared or as a counter's name without _total."""
    spec = contract.get(base)
    if spec is None and not base.endswith("_total"):
        spec = contract.get(base + "_total")
    return spec
