"""Model loading: the pickle security scan, its policies, and the loader with snapshots."""

from cadmetrics.models.interface import Interface
from cadmetrics.models.loader import ModelLoader
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
    "Interface",
    "Mode",
    "ModelLoader",
    "Policy",
    "Problem",
    "ScanReport",
    "Verdict",
    "parse_mode",
    "scan",
]
