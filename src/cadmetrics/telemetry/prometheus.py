"""The prometheus_client backend: one collector per declared metric in a registry.

The series objects handed back are prometheus_client's own label children, so once the facade
has cached a label set an emission costs what ``child.inc()`` costs, less than the usual
``metric.labels(...).inc()`` idiom. Multiprocess mode works as prometheus_client's does: set
``PROMETHEUS_MULTIPROC_DIR`` before the process starts, and serve :func:`multiprocess_registry`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cadmetrics.contract.model import MetricSpec, MetricType, Unit
from cadmetrics.errors import TelemetryError
from cadmetrics.telemetry.backend import Series

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry
except ImportError as exc:  # pragma: no cover - exercised by the nometrics environment
    raise TelemetryError(
        "the prometheus backend needs prometheus_client: pip install 'cadmetrics[prometheus]'"
    ) from exc


class PrometheusMetric:
    __slots__ = ("_exemplars", "_labelled", "_metric")

    def __init__(self, metric: Any, labelled: bool, exemplars: ExemplarSource | None = None) -> None:
        self._metric = metric
        self._labelled = labelled
        self._exemplars = exemplars

    def series(self, values: tuple[str, ...]) -> Series:
        child: Series = self._metric.labels(*values) if self._labelled else self._metric
        if self._exemplars is not None:
            return _ExemplarSeries(child, self._exemplars)
        return child


ExemplarSource = Callable[[], "dict[str, str] | None"]


class _ExemplarSeries:
    """A histogram child whose observations carry the active span's ids as an exemplar."""

    __slots__ = ("_child", "_source")

    def __init__(self, child: Any, source: ExemplarSource) -> None:
        self._child = child
        self._source = source

    def observe(self, value: float) -> None:
        self._child.observe(value, self._source())

    def inc(self, amount: float = 1.0) -> None:  # pragma: no cover - the facade never calls it
        raise TypeError("a histogram cannot inc")

    def set(self, value: float) -> None:  # pragma: no cover - the facade never calls it
        raise TypeError("a histogram cannot set")


class PrometheusBackend:
    """Registers every bound metric in ``registry`` (prometheus_client's default one if None)."""

    name = "prometheus"

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self._exemplars: ExemplarSource | None = None

    def use_exemplars(self, source: ExemplarSource) -> None:
        """Give histograms in seconds bound from now on the exemplars ``source`` returns (the
        active span's ids). Multiprocess mode keeps none: its files hold values only."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._exemplars = source

    def bind(self, spec: MetricSpec) -> PrometheusMetric:
        common: dict[str, Any] = {
            "name": spec.name,
            "documentation": spec.help,
            "labelnames": spec.label_names,
            "registry": self.registry,
        }
        if spec.unit is not Unit.NONE:
            common["unit"] = spec.unit.value
        try:
            if spec.type is MetricType.COUNTER:
                metric: Any = prometheus_client.Counter(**common)
            elif spec.type is MetricType.GAUGE:
                mode: Any = spec.multiprocess_mode or "all"  # checked against the modes on load
                metric = prometheus_client.Gauge(multiprocess_mode=mode, **common)
            else:
                metric = prometheus_client.Histogram(buckets=spec.buckets or (), **common)
        except ValueError as exc:
            raise TelemetryError(
                f"cannot register {spec.name} in the prometheus registry: {exc}. Share one "
                "Telemetry per registry, or give each Telemetry its own CollectorRegistry"
            ) from exc
        exemplars = (
            self._exemplars if spec.type is MetricType.HISTOGRAM and spec.unit is Unit.SECONDS else None
        )
        return PrometheusMetric(metric, bool(spec.labels), exemplars)


def multiprocess_registry() -> CollectorRegistry:
    """A registry that gathers every process's values from ``PROMETHEUS_MULTIPROC_DIR``; serve
    this one (not the default registry) from the process that answers scrapes."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise TelemetryError(
            "multiprocess mode needs PROMETHEUS_MULTIPROC_DIR set (to an empty directory) "
            "before the processes start"
        )
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
