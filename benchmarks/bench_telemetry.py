"""Cost of one emission: cadmetrics' contract-checked instruments against the raw clients.

Side by side in one run, interleaved so that machine noise hits both sides alike; the best of
several repeats is kept. Measured, per call, with two labels:

- prometheus backend: ``counter.inc(mode=..., result=...)`` vs prometheus_client's usual
  ``Counter.labels(mode=..., result=...).inc()``; the same for a histogram's ``observe``;
- otel backend: ``counter.inc(...)`` vs the SDK's ``counter.add(1, attributes)`` with a
  prebuilt attributes dict (the SDK's cheapest idiom);
- no backends (production mode): the no-op instrument;
- spans: ``with telemetry.span(name, **4 attributes)`` on the OpenTelemetry SDK's tracer
  (attributes checked against the contract) vs the SDK's own
  ``tracer.start_as_current_span(name, attributes=...)``, both on a provider without
  processors, so that the difference is what the contract adds; and the no-op span (tracing
  off) beside the no-op counter.

Targets: prometheus ratio <= 1.0, otel ratio <= 1.1, span ratio <= 1.1, no-op <= 150 ns,
no-op span <= 2x the no-op counter. Run:
``python benchmarks/bench_telemetry.py [--quick]``.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as RawCounter
from prometheus_client import Histogram as RawHistogram

from cadmetrics import Telemetry, load_contract
from cadmetrics.telemetry.otel import meter_provider

SCANS = "cadmetrics_model_opcode_scans_total"
SEARCH = "cadmetrics.vectors.search"
SEARCH_ATTRIBUTES: dict[str, str | int] = {"version": "v4", "method": "exact", "k": 10, "queries": 1}
DURATION = "cadmetrics_feature_extraction_duration_seconds"


def best_ns(calls: dict[str, Callable[[], None]], number: int, repeat: int) -> dict[str, float]:
    """Best ns per call of each callable, measured in interleaved rounds."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, call in calls.items():
            seconds = timeit.timeit(call, number=number)
            best[name] = min(best[name], seconds / number * 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations, for a smoke run")
    args = parser.parse_args()
    number, repeat = (20_000, 3) if args.quick else (200_000, 7)
    contract = load_contract()
    spec = contract.require(DURATION)

    prom = Telemetry(contract, [CollectorRegistry()])
    scans = prom.counter(SCANS)
    duration = prom.histogram(DURATION)
    raw_registry = CollectorRegistry()
    raw_scans = RawCounter("raw_scans_total", "raw", ["mode", "result"], registry=raw_registry)
    raw_duration = RawHistogram(
        "raw_duration_seconds",
        "raw",
        ["version", "format"],
        buckets=spec.buckets or (),
        registry=raw_registry,
    )

    otel = Telemetry(contract, [meter_provider(contract, [InMemoryMetricReader()])])
    otel_scans = otel.counter(SCANS)
    raw_meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("raw")
    raw_otel_scans = raw_meter.create_counter("raw_scans")
    attributes = {"mode": "blocklist", "result": "allowed"}

    noop_scans = Telemetry(contract).counter(SCANS)

    traced = Telemetry(contract, tracer_provider=TracerProvider())
    raw_tracer = TracerProvider().get_tracer("raw")
    untraced = Telemetry(contract)

    def span() -> None:
        with traced.span(SEARCH, version="v4", method="exact", k=10, queries=1):
            pass

    def raw_span() -> None:
        with raw_tracer.start_as_current_span(SEARCH, attributes=SEARCH_ATTRIBUTES):
            pass

    def noop_span() -> None:
        with untraced.span(SEARCH, version="v4", method="exact", k=10, queries=1):
            pass

    calls: dict[str, Callable[[], None]] = {
        "prometheus counter, cadmetrics": lambda: scans.inc(mode="blocklist", result="allowed"),
        "prometheus counter, raw .labels().inc()": lambda: raw_scans.labels(
            mode="blocklist", result="allowed"
        ).inc(),
        "prometheus histogram, cadmetrics": lambda: duration.observe(0.02, version="v4", format="stl"),
        "prometheus histogram, raw .labels().observe()": lambda: raw_duration.labels(
            version="v4", format="stl"
        ).observe(0.02),
        "otel counter, cadmetrics": lambda: otel_scans.inc(mode="blocklist", result="allowed"),
        "otel counter, raw counter.add(1, attrs)": lambda: raw_otel_scans.add(1, attributes),
        "no-op counter, cadmetrics": lambda: noop_scans.inc(mode="blocklist", result="allowed"),
        "span, cadmetrics (SDK tracer)": span,
        "span, raw start_as_current_span()": raw_span,
        "no-op span, cadmetrics": noop_span,
    }
    best = best_ns(calls, number, repeat)
    width = max(map(len, best))
    print(f"{'emission (2 labels)':{width}}  ns/call")
    for name, ns in best.items():
        print(f"{name:{width}}  {ns:8.0f}")

    def ratio(ours: str, theirs: str) -> float:
        return best[ours] / best[theirs]

    rows = [
        (
            "prometheus counter",
            ratio("prometheus counter, cadmetrics", "prometheus counter, raw .labels().inc()"),
            1.0,
        ),
        (
            "prometheus histogram",
            ratio("prometheus histogram, cadmetrics", "prometheus histogram, raw .labels().observe()"),
            1.0,
        ),
        ("otel counter", ratio("otel counter, cadmetrics", "otel counter, raw counter.add(1, attrs)"), 1.1),
        ("span", ratio("span, cadmetrics (SDK tracer)", "span, raw start_as_current_span()"), 1.1),
        ("no-op span / no-op counter", ratio("no-op span, cadmetrics", "no-op counter, cadmetrics"), 2.0),
    ]
    print()
    print(f"{'ratio cadmetrics / raw':{width}}  ratio   target  verdict")
    for name, value, target in rows:
        verdict = "met" if value <= target else "MISSED"
        print(f"{name:{width}}  {value:5.2f}   <= {target:.1f}  {verdict}")
    noop = best["no-op counter, cadmetrics"]
    print(f"{'no-op counter (ns)':{width}}  {noop:5.0f}   <= 150  {'met' if noop <= 150 else 'MISSED'}")


if __name__ == "__main__":
    main()
