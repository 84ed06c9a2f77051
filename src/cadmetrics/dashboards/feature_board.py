"""The feature extraction dashboard: throughput, latency, errors, the cache and its tuning."""

from __future__ import annotations

from cadmetrics.dashboards.model import Dashboard, Panel, Query, Row, gauge, increase, quantiles, rate

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
