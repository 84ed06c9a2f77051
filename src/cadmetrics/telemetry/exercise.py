"""Emit one sample on every declared metric, with admitted labels: the smallest proof that a
contract, its instruments and a backend agree (used by the demo, the tests and benchmarks)."""

from __future__ import annotations

from cadmetrics.contract.model import MetricSpec, MetricType
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.instruments import Counter, Gauge, Histogram


def sample_labels(spec: MetricSpec) -> dict[str, str]:
    """The first admitted value of every label (``sample`` for open labels)."""
    return {label.name: label.values[0] if label.values else "sample" for label in spec.labels}


def exercise(telemetry: Telemetry) -> int:
    """Emit once on every metric of ``telemetry``'s contract that cadmetrics creates (not those
    another library provides); returns how many were emitted."""
    emitted = 0
    for spec in telemetry.contract.emitted_here():
        emitted += 1
        labels = sample_labels(spec)
        instrument = telemetry.instrument(spec.name)
        if spec.type is MetricType.COUNTER and isinstance(instrument, Counter):
            instrument.inc(1, **labels)
        elif spec.type is MetricType.GAUGE and isinstance(instrument, Gauge):
            instrument.set(1, **labels)
        elif isinstance(instrument, Histogram):
            buckets = spec.buckets or (1.0,)
            instrument.observe(buckets[len(buckets) // 2], **labels)
    return emitted
