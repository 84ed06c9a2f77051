"""The one exception tree of cadmetrics.

Every error a host can see derives from :class:`CadMetricsError`, so a host can catch the
library's failures without catching its own. Each error says what was wrong, where (file and
line, metric and label) and, where there is one, what to do about it.
"""

from __future__ import annotations


class CadMetricsError(Exception):
    """Root of every error raised by cadmetrics."""


class ContractError(CadMetricsError):
    """The contract was misused: an unknown metric, the wrong type, or a contract that fails
    its own rules."""


class ContractLoadError(ContractError):
    """A contract file could not be read or does not follow the schema.

    ``path`` and ``line`` (1-based, 0 when unknown) point at the offending node; ``rule`` names
    the schema rule that was broken so that a reader can look it up.
    """

    def __init__(self, path: str, line: int, rule: str, message: str) -> None:
        self.path = path
        self.line = line
        self.rule = rule
        self.message = message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: [{rule}] {message}")


class ContractCollisionError(ContractLoadError):
    """Two contract files declare the same metric; the message names both places."""


class LabelError(ContractError):
    """Labels given at emission do not fit the contract (strict mode only; production mode
    replaces the value with the overflow value and counts it)."""


class TelemetryError(CadMetricsError):
    """A telemetry backend could not be set up: a missing optional dependency, or a metric
    already registered by someone else in the same registry."""


class InputError(CadMetricsError):
    """Input given to a command or function could not be read (a missing file, an unreachable
    URL, text that is not what it should be)."""


class ModelError(CadMetricsError):
    """A model could not be scanned or loaded."""


class UnknownScanMode(ModelError, ValueError):
    """A scan mode name that is not audit, blocklist or allowlist (or a legacy alias). Raised
    when a scanner or loader is built, so that a misspelt mode never means "no scan"."""


class UnsupportedModelFormat(ModelError):
    """Content that is none of the model formats the scanner knows: never "safe"."""


class ModelRefused(ModelError):
    """A model load refused before commit; ``reason`` is the contract's refusal reason."""

    reason = "load_error"


class ModelTooLarge(ModelRefused):
    reason = "too_large"


class HashNotAllowed(ModelRefused):
    reason = "hash_not_allowed"


class ModelBlocked(ModelRefused):
    """The scan (or the restricted unpickler) blocked the model; ``report`` says why."""

    reason = "blocked"

    def __init__(self, message: str, report: object = None, block_reason: str = "dangerous_global") -> None:
        super().__init__(message)
        self.report = report
        self.block_reason = block_reason  # the contract's reason for the blocking finding


class InterfaceInvalid(ModelRefused):
    """The loaded object lacks the declared interface; ``failure`` is the contract's reason
    (missing_method, not_callable, probe_error, wrong_shape, non_finite)."""

    reason = "interface_invalid"

    def __init__(self, message: str, failure: str) -> None:
        super().__init__(message)
        self.failure = failure


class ModelLoadFailed(ModelRefused):
    """The stream passed the scan but could not be unpickled (a missing class, a bad state)."""

    reason = "load_error"


class HealthCheckFailed(ModelRefused):
    """The host's health check refused a committed model; the loader rolled back."""

    reason = "interface_invalid"


class NoSnapshot(ModelError):
    """A rollback asked for a snapshot that does not exist or none validates."""


class FeatureError(CadMetricsError):
    """A feature vector could not be computed. ``reason`` is the contract's error reason
    (``cadmetrics_feature_extraction_errors_total``) and ``format`` the input's format."""

    def __init__(self, message: str, *, reason: str = "internal", format: str = "unknown") -> None:
        super().__init__(message)
        self.reason = reason
        self.format = format


class FeatureInputError(FeatureError, InputError):
    """A CAD file (or in-memory mesh) that cannot give features: empty, truncated, malformed,
    non-finite, degenerate, too large or of no supported format. The message names the
    source and the problem; ``reason`` is one of the contract's error reasons."""


class MissingDependency(FeatureError):
    """A format needs an optional extra that is not installed; the message names the extra."""

    def __init__(self, message: str, *, format: str = "unknown") -> None:
        super().__init__(message, reason="missing_dependency", format=format)


class VectorStoreError(CadMetricsError):
    """The vector store cannot do what was asked: it is open elsewhere, a migration is pending,
    or a plan no longer fits the store. The message says what to do."""


class VectorInputError(VectorStoreError, InputError, ValueError):
    """A record that the store refuses before writing anything: a duplicate id, a vector of the
    wrong dimension for its version, a non-finite value, metadata that is not JSON. The message
    names the record's id (and its position in a batch)."""


class StoreCorruptError(VectorStoreError):
    """Files of a vector store that do not read back as written (a damaged manifest, a segment
    of the wrong size, a log damaged before its end). Nothing is repaired or dropped silently:
    the message names the file and the offset."""


class DriftError(CadMetricsError, ValueError):
    """Data a drift baseline or monitor cannot use: the wrong width, too few rows, non-finite
    values, or a file that is not a baseline. The message names the feature, row or file."""
