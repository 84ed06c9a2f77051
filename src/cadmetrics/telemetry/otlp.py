"""OTLP over HTTP: push the contract's instruments to a collector (or any OTLP receiver).

Use the reader with :func:`cadmetrics.telemetry.otel.meter_provider`, so that the contract's
views fix the histograms' bucket boundaries::

    provider = meter_provider(contract, [otlp_reader("http://collector:4318/v1/metrics")])
    telemetry = Telemetry(contract, [provider])

Every instrument kind is exported with cumulative temporality, whatever
``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` says: the contract declares Prometheus
counters and histograms, and Prometheus (its OTLP receiver, the collector's Prometheus
exporters) takes cumulative data; delta sums would be dropped or would need a conversion
stage. What a receiver got can be checked against the contract with
:func:`cadmetrics.contract.observed.from_otlp` and :func:`cadmetrics.contract.verify.verify`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from cadmetrics.errors import TelemetryError

try:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
        _Gauge,
    )
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        MetricReader,
        PeriodicExportingMetricReader,
    )
except ImportError as exc:  # pragma: no cover - exercised by the nometrics environment
    raise TelemetryError(
        "OTLP export needs the OpenTelemetry SDK and its OTLP/HTTP exporter: pip install 'cadmetrics[otel]'"
    ) from exc

#: The path an OTLP/HTTP receiver takes metrics on (the OTLP specification's default).
METRICS_PATH = "/v1/metrics"

#: Cumulative for every instrument class the SDK knows, synchronous gauges included.
CUMULATIVE: dict[type, AggregationTemporality] = dict.fromkeys(
    (Counter, UpDownCounter, Histogram, _Gauge, ObservableCounter, ObservableUpDownCounter, ObservableGauge),
    AggregationTemporality.CUMULATIVE,
)


def metrics_endpoint(endpoint: str) -> str:
    """``endpoint`` with the metrics path when it is a bare base URL
    (``http://collector:4318`` -> ``http://collector:4318/v1/metrics``). The exporter posts to
    the URL it is given as is, and a collector answers 404 on ``/``: an easy mistake to make
    and a silent one, since export failures are only logged."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TelemetryError(f"OTLP endpoint {endpoint!r} is not an http(s) URL")
    if parts.path in ("", "/"):
        return parts._replace(path=METRICS_PATH).geturl()
    return endpoint


def otlp_reader(
    endpoint: str,
    *,
    interval_seconds: float = 60.0,
    timeout_seconds: float = 10.0,
    headers: Mapping[str, str] | None = None,
    compression: Literal["gzip", "deflate", "none"] | None = None,
) -> MetricReader:
    """A reader that pushes every ``interval_seconds`` (and on ``force_flush``/``shutdown``
    of its provider) to ``endpoint`` over OTLP/HTTP with protobuf payloads.

    ``interval_seconds=math.inf`` exports only when asked (``provider.force_flush()``), for
    short-lived jobs. ``timeout_seconds`` bounds one export, retries included. ``headers``
    (authentication, tenant) and ``compression`` default to the ``OTEL_EXPORTER_OTLP_METRICS_*``
    environment variables, as the exporter reads them.
    """
    if not interval_seconds > 0:
        raise TelemetryError(f"OTLP export interval must be positive, got {interval_seconds}")
    if not (timeout_seconds > 0 and math.isfinite(timeout_seconds)):
        raise TelemetryError(f"OTLP export timeout must be positive and finite, got {timeout_seconds}")
    exporter = OTLPMetricExporter(
        endpoint=metrics_endpoint(endpoint),
        headers=dict(headers) if headers is not None else None,
        timeout=timeout_seconds,
        compression=Compression(compression) if compression is not None else None,
        preferred_temporality=CUMULATIVE,
    )
    reader: MetricReader = PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=interval_seconds * 1000,
        export_timeout_millis=timeout_seconds * 1000,
    )
    return reader
