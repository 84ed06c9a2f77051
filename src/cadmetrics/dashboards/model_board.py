"""The model security dashboard: scans, blocks, refusals, reloads, rollbacks and snapshots."""

from __future__ import annotations

from cadmetrics.dashboards.model import Dashboard, Panel, Query, Row, gauge, increase, quantiles, rate, summed

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
