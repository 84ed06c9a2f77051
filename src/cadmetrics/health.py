"""``cadmetrics.health(...)``: one health report over the components a host runs.

Each component answers ``health()`` with its checks (see :mod:`cadmetrics.telemetry.health`);
this gathers them, and, given a Telemetry, sets each component's status on the
``cadmetrics_health_status`` gauge, so that a dashboard shows it and an alert fires on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.health import STATUS_METRIC, Check, HealthReport


class HasHealth(Protocol):
    def health(self) -> list[Check]: ...


def health(
    *components: HasHealth | Iterable[Check] | Any,
    telemetry: Telemetry | None = None,
    version: str = "",
    service_id: str = "",
) -> HealthReport:
    """The report over ``components`` (FeatureExtractor, ModelLoader, VectorStore,
    DriftMonitor, or anything with a ``health()`` method returning checks), or over checks
    already taken (what a component's ``health()`` answered earlier, say before it closed)."""
    checks: list[Check] = []
    for component in components:
        answer = getattr(component, "health", None)
        if answer is not None:
            checks.extend(answer())
        elif isinstance(component, list | tuple) and all(isinstance(c, Check) for c in component):
            checks.extend(component)
        else:
            raise TypeError(f"{type(component).__name__} has no health() method")
    report = HealthReport(tuple(checks), version=version, service_id=service_id)
    if telemetry is not None:
        gauge = telemetry.gauge(STATUS_METRIC)
        for component, status in report.component_status().items():
            gauge.set(status.severity, component=component)
    return report
