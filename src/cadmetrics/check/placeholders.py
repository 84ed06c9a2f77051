"""Stand-ins for values only known when a query runs (Grafana template variables).

A variable inside a label matcher's value, or used as a label or metric name, is replaced by a
name that starts with :data:`PREFIX`; the checker never judges a value or a name that holds one,
since the real value is chosen on the dashboard.
"""

from __future__ import annotations

PREFIX = "__grafana_var_"


def placeholder(variable: str) -> str:
    return f"{PREFIX}{variable}__"


def holds_placeholder(text: str) -> bool:
    return PREFIX in text
