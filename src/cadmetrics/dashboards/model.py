"""What a dashboard is made of (dashboards, rows, panels, queries) and the PromQL helpers the
boards are written with: every query filters on ``job=~"$job"`` and rates over Grafana's
``$__rate_interval``."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

RATE = "$__rate_interval"
JOB = 'job=~"$job"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@attrs.frozen
class Query:
    expr: str
    legend: str = ""
    #: Show the series' exemplars (the trace ids a slow bucket links to), for latency panels.
    exemplar: bool = False


@attrs.frozen
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    kind: str = "timeseries"  # or "stat"
    width: int = 12


@attrs.frozen
class Row:
    title: str
    panels: tuple[Panel, ...]


@attrs.frozen
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    job_metric: str  # a metric every host of this dashboard exports: the job variable lists its jobs


def rate(metric: str, matchers: str = "", window: str = RATE) -> str:
    selector = f"{metric}{{{JOB}{', ' + matchers if matchers else ''}}}"
    return f"rate({selector}[{window}])"


def increase(metric: str, matchers: str = "") -> str:
    selector = f"{metric}{{{JOB}{', ' + matchers if matchers else ''}}}"
    return f"increase({selector}[$__range])"


def summed(by: str, expr: str) -> str:
    return f"sum by ({by}) ({expr})"


def gauge(metric: str) -> str:
    return f"{metric}{{{JOB}}}"


def quantiles(
    histogram: str, by: Sequence[str], levels: Sequence[float], matchers: str = "", *, rare: bool = False
) -> tuple[Query, ...]:
    """``histogram_quantile`` at each level over the histogram's buckets, kept by ``by``; a
    ``rare`` event (a migration) is taken over the dashboard's whole range, not a rate window.
    A duration's quantiles show its exemplars: the trace of a slow request is a click away."""
    keep = ", ".join(["le", *by])
    legend = " ".join("{{" + label + "}}" for label in by)
    buckets = (increase if rare else rate)(histogram + "_bucket", matchers)
    return tuple(
        Query(
            f"histogram_quantile({level}, sum by ({keep}) ({buckets}))",
            f"p{round(level * 100)} {legend}".strip(),
            exemplar=histogram.endswith("_seconds"),
        )
        for level in levels
    )
