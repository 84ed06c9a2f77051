"""How a contract name maps to OpenTelemetry and back.

OpenTelemetry names carry neither ``_total`` nor a unit suffix: the unit travels separately
(UCUM) and exporters add the suffixes. Naming instruments this way makes the Prometheus
exporter (and any OTLP-to-Prometheus translation) produce exactly the contract's names:
``cadmetrics_model_load_duration`` with unit ``s`` becomes
``cadmetrics_model_load_duration_seconds``, and a counter gets ``_total`` back. The ratio unit
is the exception: the exporters map ``1`` to no suffix, so ``_ratio`` stays in the name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cadmetrics.contract.model import Contract, MetricSpec, MetricType, Unit


def otel_name(spec: MetricSpec) -> str:
    """The OpenTelemetry instrument name for ``spec``."""
    name = spec.name
    if spec.type is MetricType.COUNTER:
        name = name.removesuffix("_total")
    if _UNIT_WORDS.get(spec.unit.ucum):  # the exporters add this suffix back from the unit
        name = name.removesuffix(spec.unit.suffix)
    return name


def otel_unit(spec: MetricSpec) -> str:
    """The UCUM unit string for ``spec`` (empty for unitless metrics)."""
    return spec.unit.ucum


def otel_index(contract: Contract) -> Mapping[str, MetricSpec]:
    """Declared metrics by their OpenTelemetry instrument name."""
    return {otel_name(spec): spec for spec in contract}


#: The exporter's words for common UCUM units (opentelemetry-exporter-prometheus's mapping).
_UNIT_WORDS = {
    **{unit.ucum: unit.value for unit in (Unit.SECONDS, Unit.BYTES)},
    "1": "",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "min": "minutes",
    "h": "hours",
    "d": "days",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "%": "percent",
}
_INVALID = re.compile(r"[^a-zA-Z0-9:]+")
_ANNOTATION = re.compile(r"{.*}")


def prometheus_name_for_otel(name: str, unit: str, monotonic_sum: bool) -> str:
    """The Prometheus name the exporter gives an OTel instrument we do not declare, so that a
    report about it names what an operator would see on a dashboard (and so that it is
    recognised as lying inside a contract namespace)."""
    name = _INVALID.sub("_", name)
    if name[:1].isdigit():
        name = "_" + name[1:]
    word = _UNIT_WORDS.get(unit)
    if word is None:
        word = _INVALID.sub("_", _ANNOTATION.sub("", unit)).strip("_")
    if word and not name.endswith("_" + word):
        name += "_" + word
    if monotonic_sum and not name.endswith("_total"):
        name += "_total"
    return name


def series_names(spec: MetricSpec) -> tuple[str, ...]:
    """Every name a metric occupies: its Prometheus series (as prometheus_client registers
    them) and its OpenTelemetry instrument name. Two metrics must not share any."""
    names: tuple[str, ...]
    if spec.type is MetricType.COUNTER:
        stem = spec.name.removesuffix("_total")
        names = (stem, spec.name, stem + "_created")
    elif spec.type is MetricType.HISTOGRAM:
        names = tuple(spec.name + suffix for suffix in ("", "_bucket", "_count", "_sum", "_created"))
    else:
        names = (spec.name,)
    return (*names, "otel:" + otel_name(spec))
