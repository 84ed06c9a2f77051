"""Reading YAML nodes with every problem located: the generic half of the contract's loader.

A :class:`NodeReader` reads one file's composed node tree (PyYAML nodes keep their marks), and
turns a wrong type, a missing or unknown key, or a value a constructor refuses into a
:class:`~cadmetrics.errors.ContractLoadError` naming file, line and rule. The contract's schema
(:mod:`cadmetrics.contract.loader`, :mod:`cadmetrics.contract.span_schema`) is written with it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import NoReturn, TypeVar

import yaml
from yaml.constructor import SafeConstructor

from cadmetrics.contract.model import Location
from cadmetrics.errors import ContractLoadError

#: How much of an over-long name or value a message quotes.
_SHOWN_CHARS = 120
_YAML_TAG = "tag:yaml.org,2002:"

_E = TypeVar("_E", bound=enum.Enum)
_T = TypeVar("_T")


class NodeReader:
    """Reads the nodes of the file at ``path``; ``fail`` turns any problem into a located error."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._constructor = SafeConstructor()

    def fail(self, node: yaml.Node | None, rule: str, message: str) -> NoReturn:
        line = node.start_mark.line + 1 if node is not None else 0
        raise ContractLoadError(self.path, line, rule, message)

    def is_null(self, node: yaml.Node) -> bool:
        return is_null(node)

    def location(self, node: yaml.Node) -> Location:
        return Location(self.path, node.start_mark.line + 1)

    def pairs(self, node: yaml.Node, what: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, "schema-type", f"{what} must be a mapping")
        seen: set[str] = set()
        pairs = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "schema-type", f"{what}: keys must be strings")
            if key_node.value in seen:
                self.fail(key_node, "duplicate-key", f"{what}: key {key_node.value!r} appears twice")
            seen.add(key_node.value)
            pairs.append((key_node, value_node))
        return pairs

    def mapping(self, node: yaml.Node, what: str, known: tuple[str, ...]) -> dict[str, yaml.Node]:
        fields = {}
        for key_node, value_node in self.pairs(node, what):
            if str(key_node.value).startswith("x-"):
                continue  # extension keys, e.g. to hold YAML anchors shared by several metrics
            if key_node.value not in known:
                self.fail(
                    key_node,
                    "unknown-key",
                    f"{what}: unknown key {key_node.value!r} (known: {', '.join(known)})",
                )
            fields[key_node.value] = value_node
        return fields

    def required(self, fields: dict[str, yaml.Node], parent: yaml.Node, key: str, what: str) -> yaml.Node:
        if key not in fields:
            self.fail(parent, "required-key", f"{what} lacks the required key {key!r}")
        return fields[key]

    def optional(self, fields: dict[str, yaml.Node], key: str, read: Callable[[yaml.Node], _T]) -> _T | None:
        node = fields.get(key)
        return None if node is None or is_null(node) else read(node)

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, "schema-type", f"{what} must be a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, what: str) -> object:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, "schema-type", f"{what} must be a single value")
        try:
            return self._constructor.construct_object(node, deep=True)
        except Exception as exc:
            # The one place PyYAML's constructors run. An unsafe tag, an impossible date or bad
            # base64 is a YAMLError or ValueError; an explicit tag on text it does not fit
            # (``!!bool ''``, ``!!timestamp x``, ``!!int _``) fails inside the constructor as a
            # KeyError, AttributeError or IndexError. Either way the value cannot be read.
            self.fail(
                node, "schema-type", f"{what}: cannot read this value: {_constructor_problem(node, exc)}"
            )

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node, what)
        if not isinstance(value, str):
            self.fail(node, "schema-type", f"{what} must be a string, not {value!r}")
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            self.fail(node, "schema-type", f"{what} must be true or false, not {value!r}")
        return value

    def integer(self, node: yaml.Node, what: str) -> int:
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(node, "schema-type", f"{what} must be an integer, not {value!r}")
        return value

    def number(self, node: yaml.Node, what: str) -> float:
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(node, "schema-type", f"{what} must be numbers, not {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer literal beyond the largest float (about 1.8e308)
            self.fail(node, "number-range", f"{what}: {clip(str(node.value))} is out of the range of a float")
        if math.isnan(number):
            self.fail(node, "schema-type", f"{what} must not be NaN")
        return number

    def enum(self, node: yaml.Node, kind: type[_E], what: str) -> _E:
        value = self.string(node, what)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            self.fail(node, "enum-value", f"{what} {value!r} is not one of {allowed}")


def _constructor_problem(node: yaml.Node, exc: Exception) -> str:
    """What a failed PyYAML constructor means, in words: its own problem text when it has one,
    else the value and the tag it does not fit (a bare ``KeyError: ''`` says nothing)."""
    problem = getattr(exc, "problem", None)
    if isinstance(problem, str) and problem:
        return problem
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    tag = str(node.tag)
    shown_tag = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
    return f"{clip(str(node.value))!r} is not a valid {shown_tag} value"


def clip(text: str) -> str:
    """``text``, cut short when quoting all of it would bury the message."""
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}... ({len(text)} characters)"


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
