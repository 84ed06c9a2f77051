"""The prometheus_client backend: one collector per declared metric in a registry.

The series objects handed back are prometheus_client's own label children, so once the facade
has cached a label set an emission costs what ``child.inc()`` costs, less than the usual
``metric.labels(...).inc()`` idiom. Multiprocess mode works as prometheus_client's does: set
``PROMETHEUS_MULTIPROC_DIR`` before the process starts, and serve :func:`multiprocess_registry`.
"""

from __future__ import annotations

import os
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
    __slots__ = ("_labelled", "_metric")

    def __init__(self, metric: Any, labelled: bool) -> None:
        self._metric = metric
        self._labelled = labelled

    def series(self, values: tuple[str, ...]) -> Series:
        child: Series = self._metric.labels(*values) if self._labelled else self._metric
        return child


class PrometheusBackend:
    """Registers every bound metric in ``registry`` (prometheus_client's default one if None)."""

    name = "prometheus"

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else prometheus_client.REGISTRY

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
        return PrometheusMetric(metric, bool(spec.labels))


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
