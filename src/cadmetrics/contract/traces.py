"""Spans as a process really exported them, and their verification against the contract.

The sources are the OpenTelemetry SDK's finished spans (``ReadableSpan``, what an
``InMemorySpanExporter`` holds) and OTLP ``ExportTraceServiceRequest`` messages (what a
receiver got over the wire, or their bytes). Every span inside the contract's namespaces must
be declared, with its declared kind; every attribute declared, of its type, within its closed
set or cap (the overflow value is admitted: its counter tells the story), required ones
present; every event declared, its attributes checked the same way, except OpenTelemetry's own
``exception`` event, which any span ended by an exception carries.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import attrs

from cadmetrics.contract.coverage import Coverage
from cadmetrics.contract.model import OVERFLOW_VALUE, AttributeSpec, Contract
from cadmetrics.contract.verify import Kind, VerificationReport, Violation
from cadmetrics.errors import InputError

Attributes = tuple[tuple[str, Any], ...]

#: The event OpenTelemetry records on a span that an exception left (its semantic conventions'
#: ``exception.type``, ``.message``, ``.stacktrace`` attributes): every span may carry it.
EXCEPTION_EVENT = "exception"

#: OTLP's span kind numbers (``Span.SpanKind``), and the SDK enum's names, in the contract's words.
_OTLP_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@attrs.frozen
class ObservedSpan:
    name: str
    kind: str
    attributes: Attributes
    events: tuple[tuple[str, Attributes], ...] = ()


@attrs.frozen
class TraceObservation:
    """Every span of one source (``origin`` says which)."""

    origin: str
    spans: tuple[ObservedSpan, ...]


def from_spans(spans: Iterable[Any], origin: str = "spans") -> TraceObservation:
    """From the SDK's finished spans (``ReadableSpan``)."""
    found = []
    for span in spans:
        events = tuple(
            (event.name, tuple(sorted(dict(event.attributes or {}).items()))) for event in span.events
        )
        found.append(
            ObservedSpan(
                span.name,
                span.kind.name.lower(),
                _sorted(span.attributes),
                events,
            )
        )
    return TraceObservation(origin, tuple(found))


def from_otlp_traces(request: Any, origin: str = "otlp traces") -> TraceObservation:
    """From one OTLP ``ExportTraceServiceRequest`` (the message, or its serialized bytes)."""
    if isinstance(request, bytes | bytearray | memoryview):
        request = _parse(bytes(request), origin)
    found = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                events = tuple((event.name, _otlp_attributes(event.attributes)) for event in span.events)
                kind = _OTLP_KINDS.get(int(span.kind), str(span.kind))
                found.append(ObservedSpan(span.name, kind, _otlp_attributes(span.attributes), events))
    return TraceObservation(origin, tuple(found))


def _sorted(attributes: Any) -> Attributes:
    return tuple(sorted(dict(attributes or {}).items()))


def _otlp_attributes(pairs: Any) -> Attributes:
    values = {}
    for pair in pairs:
        which = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, which) if which else None
    return tuple(sorted(values.items()))


def _parse(payload: bytes, origin: str) -> Any:
    try:
        module = importlib.import_module("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
        decode_error: type[Exception] = importlib.import_module("google.protobuf.message").DecodeError
    except ImportError as exc:
        raise InputError(
            "reading OTLP traces needs opentelemetry-proto: pip install 'cadmetrics[otel]'"
        ) from exc
    request = module.ExportTraceServiceRequest()
    try:
        request.ParseFromString(payload)
    except MemoryError:
        raise
    except Exception as exc:  # the C backend raises DecodeError, the Python one others too
        problem = str(exc) if isinstance(exc, decode_error) else f"{type(exc).__name__}: {exc}"
        raise InputError(f"{origin}: not an OTLP ExportTraceServiceRequest: {problem}") from exc
    return request


def verify_spans(observations: Iterable[TraceObservation], contract: Contract) -> VerificationReport:
    """Check every span of ``observations`` against ``contract``'s spans."""
    sources = list(observations)
    checker = _SpanChecker(contract)
    for observation in sources:
        for span in observation.spans:
            checker.check(span)
    violations = tuple(dict.fromkeys(checker.violations + checker.over_caps()))
    origin = " + ".join(obs.origin for obs in sources) or "<nothing>"
    coverage = Coverage.of_spans(contract.spans, checker.seen, checker.values)
    return VerificationReport(origin, violations, tuple(checker.seen), checker.foreign, coverage)


class _SpanChecker:
    """What the spans seen so far broke, and what they covered."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.violations: list[Violation] = []
        self.seen: dict[str, None] = {}
        self.values: set[tuple[str, str, str]] = set()  # closed attribute values seen (coverage)
        self.distinct: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # (span, event, attribute)
        self.foreign = 0

    def report(self, kind: Kind, span: str, message: str) -> None:
        self.violations.append(Violation(kind, span, message))

    def check(self, span: ObservedSpan) -> None:
        spec = self.contract.span(span.name)
        if spec is None:
            if self.contract.owns_span(span.name):
                self.report(Kind.UNDECLARED, span.name, "span exported but not declared")
            else:
                self.foreign += 1
            return
        self.seen[spec.name] = None
        if span.kind != spec.kind.value:
            self.report(Kind.TYPE, spec.name, f"span kind {span.kind}, declared {spec.kind}")
        self.attributes(spec.name, "", span.attributes, spec.attributes)
        present = {name for name, _ in span.attributes}
        missing = [a.name for a in spec.attributes if a.required and a.name not in present]
        if missing:
            self.report(Kind.LABELS, spec.name, f"required attribute(s) {', '.join(missing)} missing")
        for event_name, event_attributes in span.events:
            if event_name == EXCEPTION_EVENT:
                continue
            event = spec.event(event_name)
            if event is None:
                self.report(Kind.EVENT, spec.name, f"event {event_name!r} is not declared")
            else:
                self.attributes(spec.name, event_name, event_attributes, event.attributes)

    def attributes(
        self, span: str, event: str, found: Attributes, declared: tuple[AttributeSpec, ...]
    ) -> None:
        """Check one span's (or one of its events') attributes."""
        owner = f"event {event!r}: " if event else ""
        by_name = {attribute.name: attribute for attribute in declared}
        for name, value in found:
            attribute = by_name.get(name)
            what = f"{owner}attribute {name!r}"
            if attribute is None:
                self.report(Kind.LABELS, span, f"{what} is not declared")
            elif not attribute.type.admits(value):
                self.report(Kind.TYPE, span, f"{what} is {value!r}, declared {attribute.type}")
            elif value == OVERFLOW_VALUE:
                continue
            elif attribute.values is not None:
                if str(value) not in attribute.values:
                    allowed = ", ".join(attribute.values)
                    self.report(Kind.LABEL_VALUE, span, f"{what} has {value!r} outside ({allowed})")
                elif not event:
                    self.values.add((span, name, str(value)))
            elif attribute.max_values is not None:
                self.distinct[(span, event, name)].add(str(value))

    def over_caps(self) -> list[Violation]:
        problems = []
        for (span_name, event_name, name), found in self.distinct.items():
            spec = self.contract.span(span_name)
            owner = spec.event(event_name) if spec is not None and event_name else spec
            attribute = owner.attribute(name) if owner is not None else None
            if attribute is None or attribute.max_values is None or len(found) <= attribute.max_values:
                continue
            where = f"event {event_name!r}: " if event_name else ""
            problems.append(
                Violation(
                    Kind.CARDINALITY,
                    span_name,
                    f"{where}attribute {name!r}: {len(found)} distinct values, past {attribute.max_values}",
                )
            )
        return problems
