"""The vectors and drift dashboard: the store, search, migrations and drift."""

from __future__ import annotations

from cadmetrics.dashboards.model import Dashboard, Panel, Query, Row, gauge, increase, quantiles, summed

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
