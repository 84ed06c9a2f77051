"""The telemetry health dashboard: the components' health and what the contract did not admit."""

from __future__ import annotations

from cadmetrics.dashboards.model import Dashboard, Panel, Query, Row, gauge, rate

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
