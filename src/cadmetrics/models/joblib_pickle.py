"""joblib's pickle streams, read the way ``joblib.load`` reads them.

``joblib.dump`` writes a numpy array as a ``NumpyArrayWrapper`` object (its dtype, shape and
order) followed, right after the wrapper's BUILD opcode, by the array's raw bytes (or, for an
object array, by a nested pickle): the file is not a pickle any more, and ``pickle.load``
fails at the first array. ``joblib.load`` reads it with Python's pure-Python unpickler whose
BUILD reads those bytes from the file. This module does the same, so the scan follows exactly
what joblib would run: the array bytes are data and are skipped (never parsed as opcodes), and
an object array's nested pickle is scanned like the rest. The same unpickler, given real
classes, loads the file: arrays come back as numpy arrays, no joblib import needed.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable
from typing import Any, BinaryIO, cast

import numpy as np

from cadmetrics.models.pickle_scan import JOBLIB_WRAPPERS

#: Arrays are read in pieces of at most this many bytes, so a lying shape costs no memory
#: beyond what the file really holds.
_CHUNK = 16 << 20


class JoblibFormatError(ValueError):
    """An array wrapper whose description or bytes do not add up."""


class ArrayWrapper:
    """What joblib's ``NumpyArrayWrapper`` holds: plain data, whatever the stream says. A
    stream gets this class for the wrapper's global (after the policy has judged it), never
    joblib's own."""

    __slots__ = ("state",)

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.state: dict[str, object] = {}

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots), as BUILD allows
            state = state[0]
        if isinstance(state, dict):
            self.state = {str(key): value for key, value in state.items()}


class DtypeRecipe:
    """What ``numpy.dtype(...)`` plus BUILD would make, kept as data during a scan, and made
    into a real dtype only to learn an array's item size (numpy's own code, no stream code)."""

    __slots__ = ("args", "state")

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args = args
        self.state: object = None

    def __setstate__(self, state: object) -> None:
        self.state = state

    def real(self) -> np.dtype[Any]:
        if not self.args or not isinstance(self.args[0], str):
            raise JoblibFormatError(f"a dtype made from {self.args!r}")
        dtype = np.dtype(self.args[0], *(bool(flag) for flag in self.args[1:3]))
        if self.state is not None:
            cast(Any, dtype).__setstate__(_real_dtypes(self.state))
        return dtype


def _real_dtypes(value: object) -> object:
    """A dtype state with every nested recipe (a structured dtype's fields) made real."""
    if isinstance(value, DtypeRecipe):
        return value.real()
    if isinstance(value, tuple):
        return tuple(_real_dtypes(item) for item in value)
    if isinstance(value, dict):
        return {key: _real_dtypes(item) for key, item in value.items()}
    return value


Resolver = Callable[[str, str, int], Any]

#: Python's pure-Python unpickler: the C one offers no opcode table to extend, so joblib's
#: BUILD can only be added to this one (joblib itself does the same).
PurePythonUnpickler = pickle._Unpickler  # noqa: SLF001


class JoblibUnpickler(PurePythonUnpickler):
    """Python's unpickler with joblib's BUILD: after an array wrapper's state is set, the
    array is read from the file, as ``joblib.numpy_pickle.NumpyUnpickler`` does.

    ``resolve(module, name, position)`` hands back what a global becomes (a stand-in while
    scanning, the real class when loading); ``materialize`` says whether arrays are read into
    numpy (loading) or skipped (scanning). ``remaining`` is how many bytes the file still
    holds after a position, or ``None`` for a stream of unknown length (a decompressed one,
    bounded by its reader instead)."""

    dispatch = PurePythonUnpickler.dispatch.copy()
    stack: list[Any]  # the unpickler's own stack, set by load()

    def __init__(
        self,
        file: BinaryIO,
        resolve: Resolver,
        *,
        materialize: bool,
        persistent: Callable[[object], object],
        size: int | None,
    ) -> None:
        super().__init__(file)
        self.file_handle = file
        self._resolve = resolve
        self._materialize = materialize
        self._persistent = persistent
        self._size = size
        self.arrays = 0

    def find_class(self, module: str, name: str) -> Any:
        return self._resolve(module, name, self.file_handle.tell())

    def persistent_load(self, pid: object) -> Any:
        return self._persistent(pid)

    def load_build(self) -> None:
        PurePythonUnpickler.load_build(self)  # type: ignore[attr-defined]
        top = self.stack[-1]
        if isinstance(top, ArrayWrapper):
            self.stack[-1] = self._read_array(top)

    dispatch[pickle.BUILD[0]] = load_build  # type: ignore[assignment]

    def _read_array(self, wrapper: ArrayWrapper) -> object:
        self.arrays += 1
        state = wrapper.state
        dtype = _dtype(state.get("dtype"))
        shape = state.get("shape")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise JoblibFormatError(f"array wrapper with shape {shape!r}")
        order = state.get("order", "C")
        if order not in ("C", "F"):
            raise JoblibFormatError(f"array wrapper with order {order!r}")
        if dtype.hasobject:  # a nested pickle, read with the same resolution of globals
            nested = type(self)(
                self.file_handle,
                self._resolve,
                materialize=self._materialize,
                persistent=self._persistent,
                size=self._size,
            )
            array = nested.load()
            self.arrays += nested.arrays
            return array
        if "numpy_array_alignment_bytes" in state and state["numpy_array_alignment_bytes"] is not None:
            padding = self._read(1, "the alignment byte")
            self._read(padding[0], "the alignment padding")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if not self._materialize:
            self._skip(nbytes)
            return None
        data = self._read(nbytes, "the array's bytes")
        array = np.frombuffer(bytearray(data), dtype=dtype, count=count)
        array = array.reshape(shape[::-1]).T if order == "F" else array.reshape(shape)
        if dtype.byteorder not in ("=", "|", "<" if np.little_endian else ">"):
            array = array.astype(dtype.newbyteorder("="))
        return array

    def _read(self, count: int, what: str) -> bytes:
        self._check_left(count, what)
        pieces = []
        left = count
        while left:
            piece = self.file_handle.read(min(left, _CHUNK))
            if not piece:
                raise JoblibFormatError(f"the file ends inside {what} ({count} bytes declared)")
            pieces.append(piece)
            left -= len(piece)
        return b"".join(pieces)

    def _skip(self, count: int) -> None:
        self._check_left(count, "the array's bytes")
        if self._size is not None:
            self.file_handle.seek(count, io.SEEK_CUR)
            return
        left = count
        while left:
            piece = self.file_handle.read(min(left, _CHUNK))
            if not piece:
                raise JoblibFormatError(f"the file ends inside the array's bytes ({count} declared)")
            left -= len(piece)

    def _check_left(self, count: int, what: str) -> None:
        if self._size is not None and count > self._size - self.file_handle.tell():
            raise JoblibFormatError(
                f"{what} need {count} bytes, and only {self._size - self.file_handle.tell()} are left"
            )


def _dtype(value: object) -> np.dtype[Any]:
    if isinstance(value, DtypeRecipe):
        return value.real()
    if isinstance(value, np.dtype):
        return value
    raise JoblibFormatError(f"array wrapper without a dtype ({type(value).__name__})")


def is_wrapper(module: str, name: str) -> bool:
    return f"{module}.{name}" in JOBLIB_WRAPPERS
