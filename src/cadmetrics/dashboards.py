"""The Grafana dashboards shipped in ``contracts/dashboards/``, declared once as data.

Each panel is a title, a unit and its PromQL, written against the contract's metric names and
label sets; this module renders them to Grafana's dashboard JSON (schema 39, importable as is:
the data source is a dashboard variable). ``python -m cadmetrics.dashboards contracts/dashboards``
writes the files; a test fails when they differ from what this module renders, and
``cadmetrics check dashboards`` checks every query against the contract.

Every query filters on ``job=~"$job"``, a variable listing the jobs that export cadmetrics
metrics, so one dashboard serves several hosts. Quantile panels use ``histogram_quantile``
over ``_bucket`` series aggregated ``by (le, ...)``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


_ERRORS = rate("cadmetrics_feature_extractions_total", 'result="error"')


def _ratio_of_hits() -> str:
    hits = f"sum by (level) ({rate('cadmetrics_feature_cache_hits_total')})"
    misses = f"sum by (level) ({rate('cadmetrics_feature_cache_misses_total')})"
    return f"{hits} / ({hits} + {misses})"


FEATURES = Dashboard(
    uid="cadmetrics-features",
    title="cadmetrics / feature extraction",
    description="Feature extraction from CAD files: throughput, latency, errors, the two cache levels "
    "and their tuning, and the distributions of the v4 shape features.",
    job_metric="cadmetrics_feature_extractions_total",
    rows=(
        Row(
            "Extraction",
            (
                Panel(
                    "Extractions per second",
                    (
                        Query(
                            f"sum by (version, result) ({rate('cadmetrics_feature_extractions_total')})",
                            "{{version}} {{result}}",
                        ),
                    ),
                    unit="reqps",
                    description="Requests by feature version and outcome: computed, from a cache, failed.",
                ),
                Panel(
                    "Extraction latency (cache misses)",
                    quantiles(
                        "cadmetrics_feature_extraction_duration_seconds", ["version"], [0.5, 0.9, 0.99]
                    ),
                    unit="s",
                    description="Time to parse a file and compute its vector, from the duration histogram.",
                ),
                Panel(
                    "Errors by format and reason",
                    (
                        Query(
                            f"sum by (format, reason) ({rate('cadmetrics_feature_extraction_errors_total')})",
                            "{{format}} {{reason}}",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "Error ratio",
                    (
                        Query(
                            f"sum({_ERRORS}) / sum({rate('cadmetrics_feature_extractions_total')})",
                            "errors / requests",
                        ),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "Degraded inputs by format and flaw",
                    (
                        Query(
                            f"sum by (format, quality) ({rate('cadmetrics_feature_degraded_total')})",
                            "{{format}} {{quality}}",
                        ),
                    ),
                    unit="reqps",
                    description="Vectors computed from open, non-manifold or inconsistently wound meshes, "
                    "polygon soups, B-Rep parts without a solid and repaired drawings (a vector's quality).",
                ),
            ),
        ),
        Row(
            "Cache",
            (
                Panel("Hit ratio per level", (Query(_ratio_of_hits(), "{{level}}"),), unit="percentunit"),
                Panel(
                    "Entries and the recommended capacity",
                    (
                        Query(
                            f"sum by (level) ({gauge('cadmetrics_feature_cache_entries')})",
                            "entries {{level}}",
                        ),
                        Query(
                            f"max({gauge('cadmetrics_feature_cache_recommended_capacity_entries')})",
                            "recommended entries",
                        ),
                    ),
                ),
                Panel(
                    "Shared cache (L2) errors",
                    (
                        Query(
                            f"sum by (operation) ({rate('cadmetrics_feature_cache_errors_total')})",
                            "{{operation}}",
                        ),
                    ),
                    unit="ops",
                    description="Failed Redis operations; extraction goes on without the shared level.",
                ),
                Panel(
                    "Recommended capacity in bytes",
                    (Query(f"max({gauge('cadmetrics_feature_cache_recommended_capacity_bytes')})", "bytes"),),
                    unit="bytes",
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Recommended TTL",
                    (Query(f"max({gauge('cadmetrics_feature_cache_recommended_ttl_seconds')})", "ttl"),),
                    unit="s",
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Tuning target hit ratio",
                    (Query(f"max({gauge('cadmetrics_feature_cache_target_hit_ratio')})", "target"),),
                    unit="percentunit",
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Tuning requests",
                    (
                        Query(
                            f"sum by (result) ({increase('cadmetrics_feature_cache_tuning_requests_total')})",
                            "{{result}}",
                        ),
                    ),
                    kind="stat",
                    width=6,
                ),
            ),
        ),
        Row(
            "v4 shape features",
            (
                Panel(
                    "Surface patches per part",
                    quantiles("cadmetrics_feature_surface_count", [], [0.1, 0.5, 0.9]),
                    description="Distribution of the v4 feature surface_count (a cube has 6, a cylinder 3).",
                ),
                Panel(
                    "Shape entropy",
                    quantiles("cadmetrics_feature_shape_entropy", ["distribution"], [0.1, 0.5, 0.9]),
                    unit="bits",  # Grafana has no bit-entropy unit; "bits" reads right
                    description="Entropy of the D2 and patch-area distributions (v4 features), in bits.",
                ),
            ),
        ),
    ),
)

MODELS = Dashboard(
    uid="cadmetrics-models",
    title="cadmetrics / model security",
    description="Pickle security scan, restricted loading, interface validation, reloads and rollbacks.",
    job_metric="cadmetrics_model_opcode_scans_total",
    rows=(
        Row(
            "Scan",
            (
                Panel(
                    "Scan mode",
                    (Query(f"max({gauge('cadmetrics_model_opcode_mode')})", "mode"),),
                    kind="stat",
                    width=6,
                    description="0 audit (nothing blocked), 1 blocklist, 2 allowlist.",
                ),
                Panel(
                    "Scans by verdict",
                    (
                        Query(
                            f"sum by (mode, result) ({rate('cadmetrics_model_opcode_scans_total')})",
                            "{{mode}} {{result}}",
                        ),
                    ),
                    unit="ops",
                    width=18,
                ),
                Panel(
                    "Blocked loads by reason",
                    (
                        Query(
                            f"sum by (reason, mode) ({increase('cadmetrics_model_opcode_blocked_total')})",
                            "{{reason}} ({{mode}})",
                        ),
                    ),
                ),
                Panel(
                    "Load refusals by step",
                    (
                        Query(
                            f"sum by (reason) ({increase('cadmetrics_model_load_refusals_total')})",
                            "{{reason}}",
                        ),
                    ),
                ),
                Panel(
                    "Interface validation failures",
                    (
                        Query(
                            summed(
                                "reason", increase("cadmetrics_model_interface_validation_failures_total")
                            ),
                            "{{reason}}",
                        ),
                    ),
                ),
                Panel(
                    "Load latency",
                    quantiles("cadmetrics_model_load_duration_seconds", ["mode"], [0.5, 0.99]),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Serving",
            (
                Panel(
                    "Reloads by result",
                    (Query(f"sum by (result) ({increase('cadmetrics_model_reloads_total')})", "{{result}}"),),
                ),
                Panel(
                    "Rollbacks by reason",
                    (
                        Query(
                            f"sum by (reason) ({increase('cadmetrics_model_rollbacks_total')})", "{{reason}}"
                        ),
                    ),
                ),
                Panel(
                    "Rollback level",
                    (Query(f"max({gauge('cadmetrics_model_rollback_level')})", "level"),),
                    kind="stat",
                    description="0: the newest committed model serves; n: rolled back n snapshots.",
                ),
                Panel(
                    "Snapshots available",
                    (Query(f"min({gauge('cadmetrics_model_snapshots_available')})", "snapshots"),),
                    kind="stat",
                    description="Valid snapshots a rollback can return to (the fewest over the jobs).",
                ),
            ),
        ),
    ),
)

VECTORS = Dashboard(
    uid="cadmetrics-vectors",
    title="cadmetrics / vectors and drift",
    description="The vector store (size by version, search latency, migrations) and the drift of the "
    "stored features against their baseline.",
    job_metric="cadmetrics_vectors_stored",
    rows=(
        Row(
            "Store",
            (
                Panel(
                    "Vectors stored by version",
                    (Query(f"sum by (version) ({gauge('cadmetrics_vectors_stored')})", "{{version}}"),),
                ),
                Panel(
                    "Search latency",
                    quantiles("cadmetrics_vector_search_duration_seconds", ["method"], [0.5, 0.99]),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Migrations",
            (
                Panel(
                    "Migrations",
                    (
                        Query(
                            summed(
                                "from_version, to_version, result",
                                increase("cadmetrics_vector_migrations_total"),
                            ),
                            "{{from_version}} -> {{to_version}} {{result}}",
                        ),
                    ),
                ),
                Panel(
                    "Records moved, by how their features were obtained",
                    (
                        Query(
                            f"sum by (method) ({increase('cadmetrics_vector_migrated_records_total')})",
                            "{{method}}",
                        ),
                    ),
                ),
                Panel(
                    "Downgrades",
                    (
                        Query(
                            summed(
                                "from_version, to_version", increase("cadmetrics_vector_downgrades_total")
                            ),
                            "{{from_version}} -> {{to_version}}",
                        ),
                    ),
                    description="Vectors moved to an older version: features dropped by name.",
                ),
                Panel(
                    "Dimension change per migration",
                    quantiles(
                        "cadmetrics_vector_migration_dimension_delta", ["direction"], [0.5, 1.0], rare=True
                    ),
                    description="Dimensions added (upgrade) or dropped (downgrade) per migration.",
                ),
                Panel(
                    "Migration duration",
                    quantiles(
                        "cadmetrics_vector_migration_duration_seconds",
                        ["from_version", "to_version"],
                        [0.9],
                        rare=True,
                    ),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Drift",
            (
                Panel(
                    "PSI by feature group",
                    quantiles("cadmetrics_drift_score", ["feature_group"], [0.5, 0.9], 'statistic="psi"'),
                    description="Population stability index per window; above 0.2 is a significant shift.",
                ),
                Panel(
                    "KS statistic by feature group",
                    quantiles("cadmetrics_drift_score", ["feature_group"], [0.5, 0.9], 'statistic="ks"'),
                ),
                Panel(
                    "Drift anomalies",
                    (
                        Query(
                            f"sum by (feature_group) ({increase('cadmetrics_drift_anomalies_total')})",
                            "{{feature_group}}",
                        ),
                    ),
                    description="Windows whose score lies over 3 standard deviations from the recent series.",
                ),
                Panel(
                    "Baseline age",
                    (
                        Query(f"max({gauge('cadmetrics_drift_baseline_age_seconds')})", "age"),
                        Query(f"max({gauge('cadmetrics_drift_baseline_stale')})", "stale"),
                    ),
                    unit="s",
                    kind="stat",
                    description="Age of the drift baseline; stale is 1 past its configured maximum age.",
                ),
            ),
        ),
    ),
)

TELEMETRY = Dashboard(
    uid="cadmetrics-telemetry",
    title="cadmetrics / telemetry health",
    description="The telemetry itself: components' health, label values and span attributes the "
    "contract did not admit.",
    job_metric="cadmetrics_telemetry_label_overflow_total",
    rows=(
        Row(
            "Health",
            (
                Panel(
                    "Component health",
                    (Query(f"max by (component) ({gauge('cadmetrics_health_status')})", "{{component}}"),),
                    width=24,
                    description="Each component's status at its last health check: 0 pass, 1 warn, "
                    "2 fail (its /health answers 503).",
                ),
            ),
        ),
        Row(
            "Labels",
            (
                Panel(
                    "Label overflow",
                    (
                        Query(
                            f"sum by (metric, label) ({rate('cadmetrics_telemetry_label_overflow_total')})",
                            "{{metric}} {{label}}",
                        ),
                    ),
                    unit="ops",
                    width=12,
                    description="Label values replaced by __overflow__: a closed set missed a value, or an "
                    "open label passed its limit. Each one hides a series from the dashboards.",
                ),
                Panel(
                    "Span attribute overflow",
                    (
                        Query(
                            "sum by (span, attribute) "
                            f"({rate('cadmetrics_telemetry_span_attribute_overflow_total')})",
                            "{{span}} {{attribute}}",
                        ),
                    ),
                    unit="ops",
                    width=12,
                    description="Span attributes dropped or replaced by __overflow__: undeclared, of the "
                    "wrong type, outside their set or required and missing. Traces lose them.",
                ),
            ),
        ),
    ),
)

DASHBOARDS = (FEATURES, MODELS, VECTORS, TELEMETRY)


def render(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y = 0, y + 8
            panels.append(_panel(panel, len(panels) + 1, x, y))
            x += panel.width
        y += 8
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["cadmetrics"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": _variables(dashboard)},
        "panels": panels,
    }


def _panel(panel: Panel, number: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + index),
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "datasource": DATASOURCE,
            "range": True,
            "exemplar": query.exemplar,
        }
        for index, query in enumerate(panel.queries)
    ]
    options: dict[str, Any] = (
        {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
        if panel.kind == "timeseries"
        else {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    )
    return {
        "id": number,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": options,
        "targets": targets,
    }


def _variables(dashboard: Dashboard) -> list[dict[str, Any]]:
    jobs = f"label_values({dashboard.job_metric}, job)"
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
        },
        {
            "name": "job",
            "label": "Job",
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": jobs, "refId": "jobs"},
            "definition": jobs,
            "includeAll": True,
            "multi": True,
            "allValue": ".+",
            "current": {},
            "refresh": 2,
            "sort": 1,
            "hide": 0,
        },
    ]


def text(dashboard: Dashboard) -> str:
    return json.dumps(render(dashboard), indent=2) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in DASHBOARDS:
        path = directory / f"{dashboard.uid}.json"
        path.write_text(text(dashboard), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    write(Path(sys.argv[1]))
