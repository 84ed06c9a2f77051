"""Rendering a dashboard to Grafana's JSON model (schema 39, importable as is: the data source
is a dashboard variable), and writing the shipped files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cadmetrics.dashboards.model import DATASOURCE, Dashboard, Panel


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


def write(directory: Path, dashboards: Sequence[Dashboard]) -> list[Path]:
    """Write each of ``dashboards`` to ``directory`` as ``UID.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in dashboards:
        path = directory / f"{dashboard.uid}.json"
        path.write_text(text(dashboard), encoding="utf-8")
        written.append(path)
    return written
