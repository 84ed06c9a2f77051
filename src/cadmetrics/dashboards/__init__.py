"""The Grafana dashboards shipped in ``contracts/dashboards/``, declared once as data.

Each panel is a title, a unit and its PromQL, written against the contract's metric names and
label sets; this package renders them to Grafana's dashboard JSON (schema 39, importable as is:
the data source is a dashboard variable). ``python -m cadmetrics.dashboards contracts/dashboards``
writes the files; a test fails when they differ from what it renders, and
``cadmetrics check dashboards`` checks every query against the contract.

Every query filters on ``job=~"$job"``, a variable listing the jobs that export cadmetrics
metrics, so one dashboard serves several hosts. Quantile panels use ``histogram_quantile``
over ``_bucket`` series aggregated ``by (le, ...)``.
"""

from cadmetrics.dashboards.feature_board import FEATURES
from cadmetrics.dashboards.model import Dashboard, Panel, Query, Row
from cadmetrics.dashboards.model_board import MODELS
from cadmetrics.dashboards.render import render, text, write
from cadmetrics.dashboards.telemetry_board import TELEMETRY
from cadmetrics.dashboards.vector_board import VECTORS

DASHBOARDS = (FEATURES, MODELS, VECTORS, TELEMETRY)

__all__ = ["DASHBOARDS", "Dashboard", "Panel", "Query", "Row", "render", "text", "write"]
