"""How a contract name maps to OpenTelemetry and back.

OpenTelemetry names carry neither ``_total`` nor a unit suffix: the unit travels separately
(UCUM) and exporters add the suffixes. Naming instruments this way makes the Prometheus
exporter (and any OTLP-to-Prometheus translation) produce exactly the contract's names:
``cadmetrics_model_load_duration`` with unit ``s`` becomes
``cadmetrics_model_load_duration_seconds``, and a counter gets ``_total`` back. The ratio unit
is the exception: the exporters map ``1`` to no suffix, so ``_ratio`` stays in the name.
"""

from __future__ import annotations

from collections.abc import Mapping

from cadmetrics.contract.model import Contract, MetricSpec, MetricType, Unit


def otel_name(spec: MetricSpec) -> str:
    """The OpenTelemetry instrument name for ``spec``."""
    name = spec.name
    if spec.type is MetricType.COUNTER:
        name = name.removesuffix("_total")
    if spec.unit in (Unit.SECONDS, Unit.BYTES):
        name = name.removesuffix(spec.unit.suffix)
    return name


def otel_unit(spec: MetricSpec) -> str:
    """The UCUM unit string for ``spec`` (empty for unitless metrics)."""
    return spec.unit.ucum


def otel_index(contract: Contract) -> Mapping[str, MetricSpec]:
    """Declared metrics by their OpenTelemetry instrument name."""
    return {otel_name(spec): spec for spec in contract}


_UCUM_SUFFIX = {"s": "_seconds", "By": "_bytes"}


def prometheus_name_for_otel(name: str, unit: str, monotonic_sum: bool) -> str:
    """The Prometheus name the exporter gives an OTel instrument we do not declare, so that a
    report about it names what an operator would see on a dashboard."""
    suffix = _UCUM_SUFFIX.get(unit, "")
    if suffix and not name.endswith(suffix):
        name += suffix
    if monotonic_sum and not name.endswith("_total"):
        name += "_total"
    return name
