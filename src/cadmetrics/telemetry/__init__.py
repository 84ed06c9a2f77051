"""Telemetry: the contract bound to backends (prometheus_client, OpenTelemetry, no-op, fan-out).

Backend modules are imported only when asked for, so this package imports without either
metrics library installed.
"""

from cadmetrics.telemetry.backend import Backend, BackendMetric, Series
from cadmetrics.telemetry.facade import OVERFLOW_METRIC, Telemetry, available_backends
from cadmetrics.telemetry.instruments import Counter, Gauge, Histogram, Instrument

__all__ = [
    "OVERFLOW_METRIC",
    "Backend",
    "BackendMetric",
    "Counter",
    "Gauge",
    "Histogram",
    "Instrument",
    "Series",
    "Telemetry",
    "available_backends",
]
