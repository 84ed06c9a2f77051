"""Model loading: the pickle security scan (this package's ``scan``) and its policies."""

from cadmetrics.models.policy import (
    DEFAULT_ALLOWLIST,
    DEFAULT_BLOCKLIST,
    DEFAULT_POLICY,
    Mode,
    Policy,
    parse_mode,
)
from cadmetrics.models.report import GlobalRef, Problem, ScanReport, Verdict
from cadmetrics.models.scan import scan

__all__ = [
    "DEFAULT_ALLOWLIST",
    "DEFAULT_BLOCKLIST",
    "DEFAULT_POLICY",
    "GlobalRef",
    "Mode",
    "Policy",
    "Problem",
    "ScanReport",
    "Verdict",
    "parse_mode",
    "scan",
]
