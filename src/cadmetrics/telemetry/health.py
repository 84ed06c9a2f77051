"""Health: each component's status (pass, warn, fail) and why, in the shape of the IETF draft
"Health Check Response Format for HTTP APIs" (``application/health+json``), so that a host's
``/health`` returns :meth:`HealthReport.to_json` as it is.

Components answer ``health()`` with :class:`Check` values; :func:`cadmetrics.health` gathers
them into one :class:`HealthReport`, whose status is the worst of its checks, and sets the
``cadmetrics_health_status`` gauge per component for the dashboards and alerts.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Iterable
from typing import Any

import attrs

#: The media type of the draft's responses.
MEDIA_TYPE = "application/health+json"

#: The gauge each component's status is set on (0 pass, 1 warn, 2 fail).
STATUS_METRIC = "cadmetrics_health_status"


class Status(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        """0, 1, 2: the gauge's value, and the order in which statuses are worse."""
        return (Status.PASS, Status.WARN, Status.FAIL).index(self)


@attrs.frozen
class Check:
    """One measurement of one component: its status and, when not pass, why (``output``)."""

    component: str  # features, models, vectors, drift
    measurement: str  # shared_cache, serving, snapshots, store, baseline_age...
    status: Status
    output: str = ""
    observed_value: float | str | None = None
    observed_unit: str | None = None
    time: datetime.datetime = attrs.field(factory=lambda: datetime.datetime.now(datetime.UTC))

    @property
    def key(self) -> str:
        """The draft's ``checks`` key: ``component:measurement``."""
        return f"{self.component}:{self.measurement}"

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"componentType": "component", "status": self.status.value}
        if self.observed_value is not None:
            found["observedValue"] = self.observed_value
        if self.observed_unit is not None:
            found["observedUnit"] = self.observed_unit
        if self.output:
            found["output"] = self.output
        found["time"] = self.time.isoformat(timespec="seconds").replace("+00:00", "Z")
        return found


@attrs.frozen
class HealthReport:
    """Every check, and the overall status: the worst of them (pass when there are none)."""

    checks: tuple[Check, ...]
    version: str = ""
    service_id: str = ""
    description: str = "cadmetrics components"

    @property
    def status(self) -> Status:
        return max((check.status for check in self.checks), key=lambda s: s.severity, default=Status.PASS)

    def component_status(self) -> dict[str, Status]:
        """Each component's worst status."""
        worst: dict[str, Status] = {}
        for check in self.checks:
            known = worst.get(check.component, Status.PASS)
            worst[check.component] = max(known, check.status, key=lambda s: s.severity)
        return worst

    @property
    def http_status(self) -> int:
        """What ``/health`` answers with: 200 for pass and warn, 503 for fail (as the draft says)."""
        return 503 if self.status is Status.FAIL else 200

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"status": self.status.value}
        if self.version:
            found["version"] = self.version
        if self.service_id:
            found["serviceId"] = self.service_id
        found["description"] = self.description
        checks: dict[str, list[dict[str, Any]]] = {}
        for check in self.checks:
            checks.setdefault(check.key, []).append(check.to_dict())
        found["checks"] = checks
        return found

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def report_of(checks: Iterable[Check], **details: str) -> HealthReport:
    return HealthReport(tuple(checks), **details)
