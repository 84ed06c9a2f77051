"""The metrics contract: schema, loading, lint, composition, diff, docs and verification.

This layer knows no telemetry backend; it reads formats (YAML, exposition text, OTel data)
only to compare them with the declaration.
"""

from cadmetrics.contract.compose import load_contract, packaged_contract_path
from cadmetrics.contract.lint import Finding, Severity
from cadmetrics.contract.model import (
    OVERFLOW_VALUE,
    Contract,
    LabelSpec,
    Location,
    MetricSpec,
    MetricType,
    Stability,
    Unit,
)

__all__ = [
    "OVERFLOW_VALUE",
    "Contract",
    "Finding",
    "LabelSpec",
    "Location",
    "MetricSpec",
    "MetricType",
    "Severity",
    "Stability",
    "Unit",
    "load_contract",
    "packaged_contract_path",
]
