"""Admission of label sets: the contract's rules for label names and values, applied once per
distinct label set.

Strict mode raises :class:`LabelError` on the first violation (tests want to know). Production
mode never exports an unadmitted value as is and never breaks the caller: the value becomes
:data:`OVERFLOW_VALUE`, a missing label gets it too, an unexpected label is dropped, and each
replacement is reported to ``on_overflow`` (which counts it on the overflow counter).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from cadmetrics.contract.model import OVERFLOW_VALUE, LabelSpec, MetricSpec
from cadmetrics.errors import LabelError

OverflowHook = Callable[[str, str], None]


class LabelAdmission:
    """Admits label sets for one metric; thread-safe (open labels share a seen-values set)."""

    __slots__ = ("_allowed", "_lock", "_on_overflow", "_seen", "spec", "strict")

    def __init__(self, spec: MetricSpec, strict: bool, on_overflow: OverflowHook) -> None:
        self.spec = spec
        self.strict = strict
        self._on_overflow = on_overflow
        self._allowed = {
            label.name: frozenset(label.values) for label in spec.labels if label.values is not None
        }
        self._seen: dict[str, set[str]] = {label.name: set() for label in spec.labels if label.values is None}
        self._lock = threading.Lock()

    def admit(self, labels: Mapping[str, object]) -> tuple[tuple[str, ...], bool]:
        """The label values in contract order, and whether they were admitted unchanged.

        Open-label values are committed only once the whole label set has been judged, so a
        label set refused in strict mode takes no slot of ``max_values``.
        """
        overflowed = self._check_names(labels)
        values = []
        with self._lock:
            pending: list[tuple[str, str]] = []
            for label in self.spec.labels:
                if label.name not in labels:
                    values.append(OVERFLOW_VALUE)  # already counted as missing
                    continue
                raw = labels[label.name]
                value = "" if raw is None else raw if isinstance(raw, str) else str(raw)
                if raw is None:
                    self._refuse(f"label {label.name!r} is None")
                elif self._admits(label, value, pending):
                    values.append(value)
                    continue
                else:
                    self._refuse(f"label {label.name!r} value {value!r} is not admitted: {label.describe()}")
                overflowed.append(label.name)
                values.append(OVERFLOW_VALUE)
            for name, value in pending:
                self._seen[name].add(value)
        for name in overflowed:
            self._on_overflow(self.spec.name, name)
        return tuple(values), not overflowed

    def _check_names(self, labels: Mapping[str, object]) -> list[str]:
        declared = self.spec.label_names
        missing = [name for name in declared if name not in labels]
        unexpected = sorted(name for name in labels if name not in declared)
        if missing or unexpected:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if unexpected:
                parts.append("unexpected " + ", ".join(unexpected))
            wanted = ", ".join(declared) or "none"
            self._refuse(f"labels must be exactly ({wanted}): {'; '.join(parts)}")
        return missing + unexpected

    def _admits(self, label: LabelSpec, value: str, pending: list[tuple[str, str]]) -> bool:
        """Whether ``value`` is admitted; a new open value is added to ``pending``."""
        allowed = self._allowed.get(label.name)
        if allowed is not None:
            return value in allowed
        seen = self._seen[label.name]
        if value in seen or (label.name, value) in pending:
            return True
        taken = len(seen) + sum(1 for name, _ in pending if name == label.name)
        if taken < (label.max_values or 0):
            pending.append((label.name, value))
            return True
        return False

    def _refuse(self, problem: str) -> None:
        if self.strict:
            raise LabelError(f"{self.spec.name} ({self.spec.location}): {problem}")
