"""What the offline checker reports: one finding per problem, under a stable code.

Each check has a code (``CK001``...), a short name and a default severity, so that a finding can
be looked up in docs/check.md and filtered by tools. A finding names the file, the place in it
(dashboard > panel > query, or rule group > rule), the expression excerpt that holds the
problem, and a message that names the metric, label or value at fault.
"""

from __future__ import annotations

import attrs

from cadmetrics.contract.lint import Severity  # graded as the contract linter grades


@attrs.frozen
class Check:
    """One kind of problem the checker knows: its code, short name and what it means."""

    code: str
    name: str
    summary: str
    severity: Severity = Severity.ERROR


@attrs.frozen
class Place:
    """Where an expression lives: a file, a readable path inside it and a 1-based line (0 when
    not known)."""

    path: str = ""
    location: str = ""
    line: int = 0


@attrs.frozen
class Finding:
    """One problem in one expression (or one file)."""

    code: str
    name: str
    severity: Severity
    message: str
    path: str = ""
    location: str = ""
    expression: str = ""
    line: int = 0

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = self.path or "<expression>"
        if self.line:
            where += f":{self.line}"
        text = f"{where}: {self.severity.value} {self.code} {self.name}"
        if self.location:
            text += f" [{self.location}]"
        text += f": {self.message}"
        if self.expression:
            text += f"\n    in: {self.expression}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "location": self.location,
            "expression": self.expression,
        }


INVALID_EXPRESSION = Check(
    "CK001", "invalid-expression", "the expression does not parse, or its result is not a vector or scalar"
)
UNKNOWN_METRIC = Check(
    "CK002", "unknown-metric", "a metric that is neither in the contract nor recorded by a checked rule"
)
SUFFIX_TYPE = Check(
    "CK003",
    "suffix-type",
    "_bucket/_sum/_count only on histograms, _total only on counters, never a histogram's bare name",
)
UNKNOWN_LABEL = Check("CK004", "unknown-label", "a label matcher on a label the series does not carry")
LABEL_VALUE = Check(
    "CK005", "label-value", "a matcher value outside the label's closed set (or the histogram's buckets)"
)
GROUPING_LABEL = Check(
    "CK006",
    "grouping-label",
    "a by/without/on/ignoring/group_left/group_right label (or a label function's source label) "
    "that the operand does not carry",
)
RATE_OF_GAUGE = Check("CK007", "rate-of-gauge", "rate/irate/increase over a gauge")
BARE_COUNTER = Check(
    "CK008", "bare-counter", "a counter whose value is used without rate/irate/increase/resets/changes"
)
QUANTILE_WITHOUT_LE = Check(
    "CK009", "quantile-without-le", "histogram_quantile over series that do not carry le"
)
NEVER_MATCHES = Check(
    "CK010",
    "never-matches",
    "a binary operation whose two sides can never share the labels they are matched on",
)
DROPPED_LABEL = Check(
    "CK011", "dropped-label", "a label used after an aggregation (or on()) has already removed it"
)
ALERT_WITHOUT_CONDITION = Check(
    "CK012",
    "alert-without-condition",
    "an alert expression with no comparison (or absent()) that filters its result",
    Severity.WARNING,
)
TEMPLATE_VARIABLE = Check(
    "CK013", "template-variable", "a Grafana template variable that could not be substituted"
)
FILE_STRUCTURE = Check(
    "CK014", "file-structure", "a dashboard or rule file that is not valid JSON/YAML or lacks required fields"
)
RECORD_SHADOWS_CONTRACT = Check(
    "CK015", "record-shadows-contract", "a recording rule whose name is a series of a contract metric"
)

DEPRECATED_METRIC = Check(
    "CK016",
    "deprecated-metric",
    "a metric the contract marks deprecated (the message names its replacement)",
    Severity.WARNING,
)

CHECKS: tuple[Check, ...] = (
    INVALID_EXPRESSION,
    UNKNOWN_METRIC,
    SUFFIX_TYPE,
    UNKNOWN_LABEL,
    LABEL_VALUE,
    GROUPING_LABEL,
    RATE_OF_GAUGE,
    BARE_COUNTER,
    QUANTILE_WITHOUT_LE,
    NEVER_MATCHES,
    DROPPED_LABEL,
    ALERT_WITHOUT_CONDITION,
    TEMPLATE_VARIABLE,
    FILE_STRUCTURE,
    RECORD_SHADOWS_CONTRACT,
    DEPRECATED_METRIC,
)


def make_finding(
    check: Check,
    message: str,
    place: Place,
    expression: str = "",
    severity: Severity | None = None,
) -> Finding:
    """A finding of ``check`` at ``place`` (with the check's own severity unless one is given)."""
    return Finding(
        code=check.code,
        name=check.name,
        severity=severity or check.severity,
        message=message,
        path=place.path,
        location=place.location,
        expression=expression,
        line=place.line,
    )
