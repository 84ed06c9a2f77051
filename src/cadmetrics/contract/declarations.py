"""What a live prometheus_client registry declares beyond what it exports: the label names and
bucket bounds of metrics that have no series yet.

A labelled metric exports nothing until a first ``labels(...)`` call, so neither an exposition
nor ``registry.collect()`` says which labels it has. prometheus_client offers no public way to
ask (client_python issue #689, open since 2021); this module reads the registry's collectors and
each metric's label names and bounds from the attributes prometheus_client keeps them in, one
getattr at a time. Where an attribute is missing (another version, a custom collector), the
metric is simply not declared here, and :func:`read_declarations` says so in its notes, so that
a draft marks its labels as unknown instead of guessing.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

#: The attributes read. prometheus_client has kept them since 0.4 (2018).
_COLLECTORS = "_collector_to_names"
_NAME = "_name"
_TYPE = "_type"
_LABEL_NAMES = "_labelnames"
_UPPER_BOUNDS = "_upper_bounds"


@attrs.frozen
class Declaration:
    """One metric as registered: its contract-style name (counters with ``_total``), type,
    label names and, for a histogram, its finite bucket bounds."""

    name: str
    type: str
    label_names: tuple[str, ...]
    buckets: tuple[float, ...] | None = None


@attrs.frozen
class Declarations:
    """The registry's declarations by name, and what could not be read, in words."""

    by_name: dict[str, Declaration]
    notes: tuple[str, ...] = ()


def read_declarations(registry: Any) -> Declarations:
    """Label names and buckets of every metric ``registry`` holds, series or not."""
    collectors = getattr(registry, _COLLECTORS, None)
    if not isinstance(collectors, dict):
        return Declarations(
            {},
            (
                f"{type(registry).__name__} has no {_COLLECTORS}: label names of metrics without "
                "series could not be read",
            ),
        )
    found: dict[str, Declaration] = {}
    unread: list[str] = []
    for collector in list(collectors):
        declaration = _declaration(collector)
        if declaration is not None:
            found[declaration.name] = declaration
        elif not _is_library_collector(collector):
            unread.append(type(collector).__name__)
    notes: tuple[str, ...] = ()
    if unread:
        notes = (
            "collectors without readable declarations (their families are drafted from their "
            "samples alone): " + ", ".join(sorted(set(unread))),
        )
    return Declarations(dict(sorted(found.items())), notes)


def _declaration(collector: Any) -> Declaration | None:
    name = getattr(collector, _NAME, None)
    kind = getattr(collector, _TYPE, None)
    label_names = getattr(collector, _LABEL_NAMES, None)
    if not isinstance(name, str) or not isinstance(kind, str) or not isinstance(label_names, tuple | list):
        return None
    if kind == "counter" and not name.endswith("_total"):
        name += "_total"
    buckets = None
    bounds = getattr(collector, _UPPER_BOUNDS, None)
    if kind == "histogram" and isinstance(bounds, list | tuple):
        buckets = tuple(float(b) for b in bounds if not math.isinf(float(b)))
    return Declaration(name, kind, tuple(str(n) for n in label_names), buckets)


def _is_library_collector(collector: Any) -> bool:
    """prometheus_client's own process, platform and GC collectors export every series they
    have from the start: nothing is hidden in them."""
    return type(collector).__module__.startswith("prometheus_client.")
