"""ONNX models: protobuf, no pickle; the danger is where their external data points.

An ONNX model may keep large tensors in files beside it, named by a ``location`` in each
tensor's ``external_data``. A location that leaves the model's folder (an absolute path,
``..``, a link) makes a loader read, or a converter write, files anywhere: onnx's own
path-traversal advisories worked that way. This module walks the protobuf wire format of
``ModelProto`` (the ``onnx`` package is not needed) down to every tensor the model holds,
including those inside nested graphs (``If``/``Loop`` bodies) and functions, and returns every
external location. Nesting and size are bounded, so a crafted file cannot exhaust the stack.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

import attrs

#: Messages nested deeper than this are refused (real models nest graphs a few levels).
MAX_DEPTH = 64

# Field numbers of onnx.proto3 that lead to tensors.
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_ATTRIBUTE = 5
_FUNCTION_NODE = 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS = 5, 6, 10, 11
_ATTR_SPARSE_TENSOR, _ATTR_SPARSE_TENSORS = 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA = 8, 13
_ENTRY_KEY, _ENTRY_VALUE = 1, 2

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class OnnxFormatError(ValueError):
    """Bytes that are not a well-formed protobuf message of ONNX's shape."""


@attrs.frozen
class ExternalData:
    tensor: str  # the tensor's name
    location: str  # as written in the model


def _fields(data: memoryview) -> Iterator[tuple[int, int, memoryview | int]]:
    """(field number, wire type, value) of each field of one message."""
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise OnnxFormatError("field number 0")
        if wire == _VARINT:
            value, position = _varint(data, position)
            yield field, wire, value
        elif wire == _LENGTH:
            length, position = _varint(data, position)
            if length > end - position:
                raise OnnxFormatError(f"field {field} runs {length} bytes past the message's end")
            yield field, wire, data[position : position + length]
            position += length
        elif wire in (_FIXED64, _FIXED32):
            position += 8 if wire == _FIXED64 else 4
            if position > end:
                raise OnnxFormatError(f"field {field} runs past the message's end")
            yield field, wire, 0
        else:
            raise OnnxFormatError(f"wire type {wire} (groups are not used by ONNX)")


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if position >= len(data):
            raise OnnxFormatError("a varint runs past the end")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
    raise OnnxFormatError("a varint longer than 10 bytes")


def _submessages(data: memoryview, numbers: tuple[int, ...]) -> Iterator[tuple[int, memoryview]]:
    for field, wire, value in _fields(data):
        if field in numbers:
            if wire != _LENGTH or not isinstance(value, memoryview):
                raise OnnxFormatError(f"field {field} should be a message")
            yield field, value


def looks_like_onnx(data: bytes | memoryview) -> bool:
    """A ModelProto: it parses whole as protobuf, starts with ``ir_version`` and has a graph."""
    view = memoryview(data)
    if bytes(view[:1]) != b"\x08":
        return False
    try:
        fields = {field: wire for field, wire, _value in _fields(view)}
    except OnnxFormatError:
        return False
    return fields.get(1) == _VARINT and fields.get(_MODEL_GRAPH) == _LENGTH


def external_data(data: bytes | memoryview) -> list[ExternalData]:
    """Every external-data location of every tensor the model holds."""
    found: list[ExternalData] = []
    for field, message in _submessages(memoryview(data), (_MODEL_GRAPH, _MODEL_FUNCTIONS)):
        if field == _MODEL_GRAPH:
            _graph(message, found, 1)
        else:
            _nodes(message, _FUNCTION_NODE, found, 1)
    return found


def _graph(data: memoryview, found: list[ExternalData], depth: int) -> None:
    _deep(depth)
    for field, message in _submessages(data, (_GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER)):
        if field == _GRAPH_INITIALIZER:
            _tensor(message, found)
        else:
            _sparse(message, found)
    _nodes(data, _GRAPH_NODE, found, depth)


def _nodes(data: memoryview, node_field: int, found: list[ExternalData], depth: int) -> None:
    _deep(depth)
    for _field, node in _submessages(data, (node_field,)):
        for _field, attribute in _submessages(node, (_NODE_ATTRIBUTE,)):
            for kind, message in _submessages(
                attribute,
                (_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE_TENSOR, _ATTR_SPARSE_TENSORS),
            ):
                if kind in (_ATTR_T, _ATTR_TENSORS):
                    _tensor(message, found)
                elif kind in (_ATTR_SPARSE_TENSOR, _ATTR_SPARSE_TENSORS):
                    _sparse(message, found)
                else:
                    _graph(message, found, depth + 1)


def _sparse(data: memoryview, found: list[ExternalData]) -> None:
    for _field, tensor in _submessages(data, (_SPARSE_VALUES, _SPARSE_INDICES)):
        _tensor(tensor, found)


def _tensor(data: memoryview, found: list[ExternalData]) -> None:
    name = ""
    locations: list[str] = []
    for field, wire, value in _fields(data):
        if field == _TENSOR_NAME and isinstance(value, memoryview):
            name = _text(value)
        elif field == _TENSOR_EXTERNAL_DATA and wire == _LENGTH and isinstance(value, memoryview):
            entry = {f: _text(v) for f, w, v in _fields(value) if w == _LENGTH and isinstance(v, memoryview)}
            if entry.get(_ENTRY_KEY) == "location":
                locations.append(entry.get(_ENTRY_VALUE, ""))
    found.extend(ExternalData(name, location) for location in locations)


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _deep(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise OnnxFormatError(f"graphs nested more than {MAX_DEPTH} deep")


def escapes(location: str, folder: Path | None) -> str | None:
    """Why ``location`` leaves the model's folder, or ``None`` when it stays inside. Without
    a folder (a model given as bytes) only the written path is judged; with one, links are
    followed as a loader would follow them."""
    if not location:
        return "an empty location"
    if "\x00" in location:
        return "a NUL byte in the location"
    windows = PureWindowsPath(location)
    if PurePosixPath(location).is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        return "an absolute path"
    if ".." in PurePosixPath(location.replace("\\", "/")).parts:
        return "a '..' component"
    if folder is not None:
        target = Path(os.path.realpath(folder / location))
        root = Path(os.path.realpath(folder))
        if target != root and root not in target.parents:
            return f"a link that resolves to {target}"
    return None
