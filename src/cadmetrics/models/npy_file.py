"""numpy ``.npy`` arrays: plain arrays are data, object arrays are pickles.

An ``.npy`` file is a magic string, a header (a Python literal, read by numpy's own bounded
reader, never evaluated), and the array's bytes. For an array of Python objects the bytes are
a pickle, which ``np.load(..., allow_pickle=True)`` unpickles: a payload hides there, in
``.npy`` files and in ``.npz`` archive members alike. Plain arrays are checked to hold the
bytes their header declares; object arrays are scanned like any pickle.
"""

from __future__ import annotations

import io
import math
from typing import Any, BinaryIO

import numpy as np
import numpy.lib.format as npy_format

from cadmetrics.models.pickle_scan import ScanState, scan_streams
from cadmetrics.models.report import Part, Problem, Role

MAGIC = b"\x93NUMPY"
#: numpy's own bound on a header's size.
MAX_HEADER = 10_000


class NpyFormatError(ValueError):
    """An ``.npy`` header numpy would refuse, or an array shorter than its header says."""


def read_header(stream: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, fortran order, dtype) from the header at ``stream``'s position, which is left
    at the array's first byte."""
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(stream, max_header_size=MAX_HEADER)
        if version in ((2, 0), (3, 0)):
            return npy_format.read_array_header_2_0(stream, max_header_size=MAX_HEADER)
    except Exception as exc:  # numpy's reader lets tokenize's and ast's own errors through
        raise NpyFormatError(f"not a valid .npy header: {type(exc).__name__}: {exc}") from None
    raise NpyFormatError(f"unknown .npy format version {version}")


def holds_objects(first: bytes) -> bool:
    """Whether the header in ``first`` (the member's first bytes) declares an object array;
    a header that cannot be read counts as one, so the member is read whole and judged."""
    try:
        _shape, _fortran, dtype = read_header(io.BytesIO(first))
    except NpyFormatError:
        return True
    return bool(dtype.hasobject)


def scan_npy(stream: BinaryIO, size: int, member: str | None, state: ScanState) -> Role:
    """Scan the ``.npy`` array at the start of ``stream``; its role (array or pickle)."""
    state.arrays += 1
    name = member or "array"
    try:
        shape, _fortran, dtype = read_header(stream)
    except NpyFormatError as exc:
        state.problems.append(Problem(stream.tell(), str(exc), member))
        return Role.DATA
    header_end = stream.tell()
    state.parts.append(Part(f"{name} header", Role.METADATA, header_end))
    if dtype.hasobject:
        if member is not None:
            state.members.append(member)
        scan_streams(stream, size, member, state)
        return Role.PICKLE
    needed = math.prod(shape) * dtype.itemsize
    if needed > size - header_end:
        state.problems.append(
            Problem(
                header_end,
                f"the header declares {needed} bytes of data, the file holds {size - header_end}",
                member,
            )
        )
    return Role.ARRAY


def load_plain(data: bytes | memoryview) -> np.ndarray[Any, Any] | None:
    """A plain array from an ``.npy`` file's bytes (a writable copy), or ``None`` for an
    object array, whose pickle the caller unpickles under its own rules."""
    stream = io.BytesIO(data)
    shape, fortran, dtype = read_header(stream)
    if dtype.hasobject:
        return None
    count = math.prod(shape)
    start = stream.tell()
    if count * dtype.itemsize > len(data) - start:
        raise NpyFormatError("the array is shorter than its header declares")
    array = np.frombuffer(bytearray(data[start : start + count * dtype.itemsize]), dtype=dtype, count=count)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def header_end(data: bytes | memoryview) -> int:
    stream = io.BytesIO(data)
    read_header(stream)
    return stream.tell()
