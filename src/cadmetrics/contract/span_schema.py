"""The ``spans:`` section of a contract file: spans, their attributes and events.

Read with the same node reader as metrics (:class:`cadmetrics.contract.loader.Reader`), so a
wrong key, type or value is a located :class:`~cadmetrics.errors.ContractLoadError` too.
Attributes are written as labels are (``open``, ``{values: [...]}``), plus ``type`` (string
by default: OpenTelemetry's string, int, float or bool) and ``required`` (true by default).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import yaml

from cadmetrics.contract.model import (
    DEFAULT_OPEN_LABEL_CAP,
    AttributeSpec,
    AttributeType,
    EventSpec,
    Location,
    SpanKind,
    SpanSpec,
    Stability,
)

if TYPE_CHECKING:
    from cadmetrics.contract.loader import Reader

_SPAN_KEYS = ("name", "kind", "help", "attributes", "events", "component", "stability")
_EVENT_KEYS = ("name", "attributes")
_ATTRIBUTE_KEYS = ("type", "values", "open", "max_values", "required")
_OPEN = "open"
_INTEGER = re.compile(r"-?\d+")


def read_span(reader: Reader, node: yaml.Node, namespaces: tuple[str, ...]) -> SpanSpec:
    fields = reader.mapping(node, "a span", _SPAN_KEYS)
    name = reader.string(reader.required(fields, node, "name", "a span"), "name")
    what = f"span {name!r}"
    help_node = reader.required(fields, node, "help", what)
    help_text = "" if reader.is_null(help_node) else reader.string(help_node, f"{what}: help")
    kind = reader.optional(fields, "kind", lambda n: reader.enum(n, SpanKind, f"{what}: kind"))
    stability = reader.optional(
        fields, "stability", lambda n: reader.enum(n, Stability, f"{what}: stability")
    )
    attributes_node = fields.get("attributes")
    events_node = fields.get("events")
    events: tuple[EventSpec, ...] = ()
    if events_node is not None and not reader.is_null(events_node):
        events = tuple(_event(reader, item, what) for item in reader.sequence(events_node, f"{what}: events"))
    return SpanSpec(
        name=name,
        help=help_text.strip(),
        namespace=_namespace_of(name, namespaces),
        kind=kind or SpanKind.INTERNAL,
        attributes=() if attributes_node is None else _attributes(reader, attributes_node, what),
        events=events,
        component=reader.optional(fields, "component", lambda n: reader.string(n, what)),
        stability=stability or Stability.STABLE,
        location=reader.location(node),
    )


def _event(reader: Reader, node: yaml.Node, what: str) -> EventSpec:
    fields = reader.mapping(node, f"{what}: an event", _EVENT_KEYS)
    name = reader.string(reader.required(fields, node, "name", f"{what}: an event"), "name")
    attributes_node = fields.get("attributes")
    attributes = (
        () if attributes_node is None else _attributes(reader, attributes_node, f"{what}: event {name!r}")
    )
    return EventSpec(name, attributes, reader.location(node))


def _attributes(reader: Reader, node: yaml.Node, what: str) -> tuple[AttributeSpec, ...]:
    if reader.is_null(node):
        return ()
    return tuple(
        _attribute(reader, str(key.value), value, f"{what}: attribute {key.value!r}", reader.location(key))
        for key, value in reader.pairs(node, f"{what}: attributes")
    )


def _attribute(reader: Reader, name: str, node: yaml.Node, where: str, location: Location) -> AttributeSpec:
    if isinstance(node, yaml.ScalarNode) and node.value == _OPEN:
        return AttributeSpec(name, max_values=DEFAULT_OPEN_LABEL_CAP, location=location)
    fields = reader.mapping(node, where, _ATTRIBUTE_KEYS)
    kind = reader.optional(fields, "type", lambda n: reader.enum(n, AttributeType, f"{where}: type"))
    kind = kind or AttributeType.STRING
    required = reader.optional(fields, "required", lambda n: reader.boolean(n, f"{where}: required"))
    values = reader.label_values(fields["values"], where) if "values" in fields else None
    capped = "open" in fields or "max_values" in fields
    if values is not None and capped:
        reader.fail(node, "attribute-spec", f"{where}: a closed set (values) cannot also be open")
    if kind in (AttributeType.FLOAT, AttributeType.BOOL) and (values is not None or capped):
        reader.fail(node, "attribute-spec", f"{where}: a {kind} attribute takes neither values nor a cap")
    if kind is AttributeType.INT and capped:
        reader.fail(node, "attribute-spec", f"{where}: an int attribute is a closed set or any integer")
    for value in values or () if kind is AttributeType.INT else ():
        if not _INTEGER.fullmatch(value):
            reader.fail(fields["values"], "attribute-spec", f"{where}: {value!r} is not an integer")
    max_values = None
    if kind is AttributeType.STRING and values is None:
        max_values = DEFAULT_OPEN_LABEL_CAP
        if "max_values" in fields:
            max_values = reader.integer(fields["max_values"], f"{where}: max_values")
            if max_values < 1:
                reader.fail(fields["max_values"], "attribute-spec", f"{where}: max_values must be >= 1")
    return AttributeSpec(
        name,
        kind,
        values,
        max_values,
        True if required is None else required,
        location,
    )


def _namespace_of(name: str, namespaces: tuple[str, ...]) -> str:
    """The namespace span ``name`` lies in (``ns.``...): the longest of the file's, or the main one."""
    matching = [ns for ns in namespaces if name.startswith(ns + ".")]
    return max(matching, key=len) if matching else namespaces[0]
