"""safetensors files: a JSON header that must describe the bytes after it exactly.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, and the tensors' bytes. There is no pickle, so nothing
in it can run; what can go wrong is a header that lies (ranges out of bounds, overlapping,
leaving holes or trailing bytes, a shape that does not fit its range), which is how readers
are made to read memory they should not. The checks follow the reference implementation's.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

#: The reference implementation refuses headers larger than this.
MAX_HEADER = 100_000_000

#: Bits per element of every dtype the format defines.
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}

#: How the numpy loader returns each dtype (8-bit floats and bfloat16 as their raw bits,
#: unless ml_dtypes is installed).
NUMPY_DTYPES = {
    "BOOL": "bool",
    "U8": "u1",
    "I8": "i1",
    "F8_E5M2": "u1",
    "F8_E4M3": "u1",
    "F8_E8M0": "u1",
    "I16": "<i2",
    "U16": "<u2",
    "F16": "<f2",
    "BF16": "<u2",
    "I32": "<i4",
    "U32": "<u4",
    "F32": "<f4",
    "F64": "<f8",
    "I64": "<i8",
    "U64": "<u8",
    "C64": "<c8",
}


class SafetensorsError(ValueError):
    """A header that does not describe the file."""


@attrs.frozen
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets into the data section
    end: int


@attrs.frozen
class SafetensorsHeader:
    tensors: tuple[TensorEntry, ...]
    metadata: Mapping[str, str]
    data_start: int  # file offset of the data section


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """The first bytes are a plausible header length followed by a JSON object."""
    if len(head) < 9:
        return False
    (length,) = struct.unpack_from("<Q", head)
    return 2 <= length <= min(MAX_HEADER, size - 8) and head[8:9] == b"{"


def read_header(data: bytes | memoryview, size: int) -> SafetensorsHeader:
    """The header of a file of ``size`` bytes whose first bytes are ``data`` (at least the
    header), checked against the file. Raises :class:`SafetensorsError` naming what lies."""
    if size < 8 or len(data) < 8:
        raise SafetensorsError("shorter than the 8-byte header length")
    (length,) = struct.unpack_from("<Q", data)
    if length > MAX_HEADER or 8 + length > size or 8 + length > len(data):
        raise SafetensorsError(f"a header of {length} bytes does not fit a file of {size}")
    try:
        parsed = json.loads(bytes(data[8 : 8 + length]).decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SafetensorsError(f"the header is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise SafetensorsError("the header is not a JSON object")
    metadata = parsed.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise SafetensorsError("__metadata__ must map strings to strings")
    tensors = [_entry(name, spec) for name, spec in parsed.items()]
    data_size = size - 8 - length
    position = 0
    for entry in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if entry.begin != position:
            problem = "overlaps the tensor before it" if entry.begin < position else "leaves a hole before it"
            raise SafetensorsError(f"tensor {entry.name!r} at [{entry.begin}, {entry.end}) {problem}")
        position = entry.end
    if position != data_size:
        raise SafetensorsError(
            f"the tensors cover {position} bytes and the data section holds {data_size}"
            + (" (trailing bytes)" if position < data_size else " (out of bounds)")
        )
    return SafetensorsHeader(tuple(tensors), dict(metadata), 8 + length)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise SafetensorsError(f"the header names {key!r} twice")
        result[key] = value
    return result


def _entry(name: str, spec: object) -> TensorEntry:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError(f"tensor {name!r}: expected dtype, shape and data_offsets, got {spec!r}"[:300])
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if dtype not in DTYPE_BITS:
        raise SafetensorsError(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise SafetensorsError(f"tensor {name!r}: bad shape {shape!r}"[:300])
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise SafetensorsError(f"tensor {name!r}: bad data_offsets {offsets!r}"[:300])
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != offsets[1] - offsets[0]:
        raise SafetensorsError(
            f"tensor {name!r}: {dtype} {shape} needs {bits / 8:g} bytes, "
            f"its data_offsets span {offsets[1] - offsets[0]}"
        )
    return TensorEntry(name, dtype, tuple(shape), offsets[0], offsets[1])


def to_numpy(header: SafetensorsHeader, data: bytes | memoryview) -> dict[str, np.ndarray[Any, Any]]:
    """Every tensor as a numpy array over ``data`` (the whole file), in the header's order.
    bfloat16 and the 8-bit floats come as their raw bits, or as ml_dtypes' types when that
    package is installed; the 4- and 6-bit floats are refused."""
    arrays = {}
    for entry in header.tensors:
        if entry.dtype not in NUMPY_DTYPES:
            raise SafetensorsError(f"tensor {entry.name!r}: {entry.dtype} has no numpy dtype")
        raw = NUMPY_DTYPES[entry.dtype]
        # ml_dtypes is imported only for the dtypes numpy lacks: the import costs seconds
        dtype = np.dtype(_ml_dtypes().get(entry.dtype, raw) if entry.dtype in _RAW_BITS else raw)
        start = header.data_start + entry.begin
        content = bytearray(data[start : header.data_start + entry.end])
        arrays[entry.name] = np.frombuffer(content, dtype=dtype).reshape(entry.shape)
    return arrays


_RAW_BITS = frozenset({"BF16", "F8_E5M2", "F8_E4M3"})


@functools.cache
def _ml_dtypes() -> dict[str, Any]:
    try:
        import ml_dtypes
    except ImportError:
        return {}
    return {
        "BF16": ml_dtypes.bfloat16,
        "F8_E5M2": ml_dtypes.float8_e5m2,
        "F8_E4M3": ml_dtypes.float8_e4m3fn,
    }
