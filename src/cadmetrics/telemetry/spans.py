"""Spans as the contract declares them: attributes admitted like labels, events checked, and a
no-op that costs about what a metric no-op costs when tracing is off.

``Telemetry.span(name, **attributes)`` returns a :class:`SpanScope`; ``with`` it, and the
:class:`ActiveSpan` it yields takes more attributes (``set``) and events (``event``). Strict
mode raises :class:`~cadmetrics.errors.LabelError` on the first attribute the contract does not
admit, or when a required one is still missing as the span ends. Production mode never breaks
the caller: an undeclared or ill-typed attribute is dropped, a string outside its set or past
its cap becomes :data:`OVERFLOW_VALUE`, a required one missing is only counted; each is
reported to ``on_overflow`` (the span-attribute overflow counter).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from cadmetrics.contract.model import OVERFLOW_VALUE, AttributeSpec, AttributeType, SpanSpec
from cadmetrics.errors import LabelError

OverflowHook = Callable[[str, str], None]

#: How many distinct attribute sets one span keeps admitted (each a few hundred bytes).
_ADMITTED_SETS = 4096
AttributeValue = str | bool | int | float


class AttributeAdmission:
    """Admits the attributes of one span (and its events); thread-safe, as open attributes
    share a seen-values set per attribute."""

    __slots__ = ("_admitted", "_by_name", "_lock", "_on_overflow", "_required", "_seen", "spec", "strict")

    def __init__(self, spec: SpanSpec, strict: bool, on_overflow: OverflowHook) -> None:
        self.spec = spec
        self.strict = strict
        self._on_overflow = on_overflow
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()
        self._required = frozenset(attribute.name for attribute in spec.attributes if attribute.required)
        self._by_name: dict[int, dict[str, AttributeSpec]] = {
            id(attributes): {attribute.name: attribute for attribute in attributes}
            for attributes in (spec.attributes, *(event.attributes for event in spec.events))
        }
        # Attribute sets admitted whole and unchanged, by their items: a span started again with
        # the same attributes costs one lookup. Bounded, as integer attributes need not repeat.
        self._admitted: dict[tuple[object, ...], dict[str, AttributeValue]] = {}

    def admit(
        self, attributes: Mapping[str, object], declared: tuple[AttributeSpec, ...], owner: str = ""
    ) -> dict[str, AttributeValue]:
        """The attributes to record: declared, of their type, within their set or cap."""
        # the types belong to the key: True == 1 == 1.0 as keys, but not as attributes
        key = (owner, *attributes.items(), *map(type, attributes.values()))
        try:
            known = self._admitted.get(key)
        except TypeError:  # an unhashable value: judged below, and refused
            known = None
        if known is not None:
            return known
        admitted: dict[str, AttributeValue] = {}
        by_name = self._by_name.get(id(declared)) or {attribute.name: attribute for attribute in declared}
        unchanged = True
        for name, value in attributes.items():
            attribute = by_name.get(name)
            if attribute is None:
                self.refuse(name, f"{owner}attribute {name!r} is not declared")
                unchanged = False
                continue
            if not attribute.type.admits(value):
                self.refuse(name, f"{owner}attribute {name!r} must be a {attribute.type}, not {value!r}")
                unchanged = False
                continue
            checked = self._within(attribute, value, owner)  # type: ignore[arg-type]
            if checked is not None:
                admitted[name] = checked
            unchanged = unchanged and checked is value
        if unchanged and len(self._admitted) < _ADMITTED_SETS:
            self._admitted[key] = admitted
        return admitted

    def missing(self, present: set[str]) -> None:
        """Report the required attributes not in ``present`` (the span is ending)."""
        if self._required <= present:
            return
        for attribute in self.spec.attributes:
            if attribute.required and attribute.name not in present:
                self.refuse(attribute.name, f"required attribute {attribute.name!r} was never set")

    def _within(self, attribute: AttributeSpec, value: AttributeValue, owner: str) -> AttributeValue | None:
        if attribute.values is not None:
            if str(value) in attribute.values:
                return value
            self.refuse(
                attribute.name,
                f"{owner}attribute {attribute.name!r} value {value!r} is not admitted: "
                f"{attribute.describe()}",
            )
            return OVERFLOW_VALUE if attribute.type is AttributeType.STRING else None
        if attribute.max_values is None:
            return value
        key = (owner, attribute.name)
        with self._lock:
            seen = self._seen.setdefault(key, set())
            if str(value) in seen:
                return value
            if len(seen) < attribute.max_values:
                seen.add(str(value))
                return value
        self.refuse(
            attribute.name, f"{owner}attribute {attribute.name!r}: more than {attribute.max_values} values"
        )
        return OVERFLOW_VALUE

    def refuse(self, attribute: str, problem: str) -> None:
        """Raise in strict mode; otherwise count ``attribute`` as overflowed."""
        if self.strict:
            raise LabelError(f"{self.spec.name} ({self.spec.location}): {problem}")
        self._on_overflow(self.spec.name, attribute)


class ActiveSpan:
    """The span of a ``with telemetry.span(...)`` block: more attributes, and events."""

    __slots__ = ("_admission", "_present", "_span")

    def __init__(self, span: Any, admission: AttributeAdmission, present: set[str]) -> None:
        self._span = span
        self._admission = admission
        self._present = present

    def set(self, **attributes: object) -> None:
        admitted = self._admission.admit(attributes, self._admission.spec.attributes)
        self._present.update(attributes)
        if self._span is not None and admitted:
            self._span.set_attributes(admitted)

    def event(self, name: str, **attributes: object) -> None:
        """Record event ``name`` (declared on the span) with its attributes."""
        spec = self._admission.spec.event(name)
        if spec is None:
            self._admission.refuse(name, f"event {name!r} is not declared")
            return
        admitted = self._admission.admit(attributes, spec.attributes, f"event {name!r}: ")
        if self._span is not None:
            self._span.add_event(name, admitted)

    @property
    def trace_id(self) -> str | None:
        """The span's trace id as 32 hex digits, or None when nothing is traced."""
        context = self._span.get_span_context() if self._span is not None else None
        return f"{context.trace_id:032x}" if context is not None and context.is_valid else None


class SpanScope:
    """A span about to start: its ``with`` block is the span's lifetime."""

    __slots__ = ("_active", "_admission", "_attributes", "_manager", "_tracer")

    def __init__(self, admission: AttributeAdmission, tracer: Any, attributes: Mapping[str, object]) -> None:
        self._admission = admission
        self._tracer = tracer
        self._attributes = attributes
        self._manager: Any = None
        self._active: ActiveSpan | None = None

    def __enter__(self) -> ActiveSpan:
        spec = self._admission.spec
        admitted = self._admission.admit(self._attributes, spec.attributes)
        span = None
        if self._tracer is not None:
            self._manager = self._tracer.start(spec, admitted)
            span = self._manager.__enter__()
        self._active = ActiveSpan(span, self._admission, set(self._attributes))
        return self._active

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if kind is None and self._active is not None:
                self._admission.missing(self._active._present)  # noqa: SLF001 - its own scope
        finally:
            if self._manager is not None:
                self._manager.__exit__(kind, error, traceback)


class NoopSpan:
    """Tracing off and not strict: takes everything, keeps nothing."""

    __slots__ = ()
    trace_id = None

    def set(self, **attributes: object) -> None:
        pass

    def event(self, name: str, **attributes: object) -> None:
        pass

    def __enter__(self) -> NoopSpan:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        return None


NOOP_SPAN = NoopSpan()


#: What ``with telemetry.span(...) as span`` gives: a span, or the no-op.
SpanHandle = ActiveSpan | NoopSpan
