"""A small prometheus_client application with the habits of real ones, for ``contract infer``:
metrics under many name prefixes, counters named without ``_total`` in the source, labelled
metrics with no series yet, a histogram with buckets of its own, an info metric, a summary (no
contract type), and prometheus_client's process collector on the same registry.

``REGISTRY`` is filled when the module is imported (as an application's metrics modules are);
:func:`serve_some_traffic` then emits what a first scrape would show, and :func:`grow` what a
later release adds.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    Summary,
    generate_latest,
)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

BILLING_INVOICES = Counter("billing_invoices", "Invoices sent.", ["currency"], registry=REGISTRY)
BILLING_FAILURES = Counter(
    "billing_payment_failures", "Payments refused, by reason.", ["reason"], registry=REGISTRY
)  # no series until the first refusal
SEARCH_QUERIES = Counter("search_queries_total", "Queries answered.", ["index", "status"], registry=REGISTRY)
SEARCH_LATENCY = Histogram(
    "search_query_duration_seconds",
    "Time to answer a query.",
    ["index"],
    buckets=(0.002, 0.01, 0.05, 0.2, 1.0, 5.0),
    registry=REGISTRY,
)
INGEST_PAYLOAD = Histogram(
    "ingest_payload_bytes",
    "Size of uploaded CAD files.",
    ["format"],
    buckets=(1e3, 1e5, 1e7, 1e9),
    registry=REGISTRY,
)  # no series yet: its buckets are known only to the registry
STORAGE_USED = Gauge("storage_used_bytes", "Bytes held in object storage.", registry=REGISTRY)
AUTH_SESSIONS = Gauge("auth_active_sessions", "Open sessions, by tenant.", ["tenant"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("queue_depth", "Jobs waiting.", ["queue"], registry=REGISTRY)
CACHE_HIT = Gauge("cache_hit_ratio", "Share of lookups answered by the cache.", registry=REGISTRY)
BUILD = Info("build", "The running build.", registry=REGISTRY)
RENDER_TIME = Summary("render_time_seconds", "Thumbnail render time.", registry=REGISTRY)

#: Tenants seen: more than a closed set holds.
TENANTS = tuple(f"tenant-{n:02d}" for n in range(24))


def serve_some_traffic() -> None:
    BILLING_INVOICES.labels("EUR").inc(3)
    BILLING_INVOICES.labels("USD").inc()
    for index, status in (("parts", "ok"), ("parts", "error"), ("drawings", "ok")):
        SEARCH_QUERIES.labels(index, status).inc()
    for seconds in (0.001, 0.03, 0.4):
        SEARCH_LATENCY.labels("parts").observe(seconds)
    STORAGE_USED.set(123_456_789)
    for n, tenant in enumerate(TENANTS):
        AUTH_SESSIONS.labels(tenant).set(n)
    QUEUE_DEPTH.labels("fast").set(2)
    QUEUE_DEPTH.labels("slow").set(7)
    CACHE_HIT.set(0.93)
    BUILD.info({"version": "1.4.2", "commit": "abc123"})
    RENDER_TIME.observe(0.2)


#: What a later release adds: a new metric family, and a new value of a closed label.
EXPORT_JOBS = Counter("export_jobs", "Exports run, by target format.", ["target"], registry=None)


def grow() -> None:
    REGISTRY.register(EXPORT_JOBS)
    EXPORT_JOBS.labels("step").inc()
    QUEUE_DEPTH.labels("bulk").set(40)
    BILLING_FAILURES.labels("card_declined").inc()
    INGEST_PAYLOAD.labels("stl").observe(5e5)


def exposition(openmetrics: bool = False) -> str:
    if openmetrics:
        from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

        text: bytes = generate_openmetrics(REGISTRY)  # type: ignore[no-untyped-call]
        return text.decode()
    return generate_latest(REGISTRY).decode()
