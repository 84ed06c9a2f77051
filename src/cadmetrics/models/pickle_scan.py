"""Pickle streams scanned by the real unpickler, with nothing it builds real.

A scanner that parses pickles on its own can be walked past by any stream it reads
differently from ``pickle.load`` (a renamed import, a memoised string, an extension code, an
``INT`` written in hexadecimal). This one has no parser: it runs CPython's own C unpickler with
a ``find_class`` that returns inert stand-in classes instead of importing anything. Every
global the real unpickler would import is therefore seen, resolved exactly as it would be, and
judged by the policy; REDUCE, BUILD, NEWOBJ, INST and OBJ then act on stand-ins that ignore
their arguments, so no code of the stream's choosing runs, whatever the mode.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import io
import pickle
import pickletools
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import attrs

from cadmetrics.models.policy import Judgement, Mode, Policy
from cadmetrics.models.report import GlobalRef, Part, Problem

#: The globals that make a pickle a joblib stream: after their BUILD, array bytes follow inline.
JOBLIB_WRAPPERS = frozenset(
    {"joblib.numpy_pickle.NumpyArrayWrapper", "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper"}
)


class Inert:
    """Stands in for every object a pickle asks for: accepts any arguments, any state, any
    items, and does nothing with them (not even keep them, so payloads are freed at once)."""

    __slots__ = ("__weakref__",)

    def __new__(cls, *args: object, **kwargs: object) -> Inert:
        return object.__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> Inert:
        return Inert()

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def extend(self, items: object) -> None:
        pass

    def add(self, item: object) -> None:
        pass


def stand_in(qualified: str) -> type[Inert]:
    """A new inert class named after the global it replaces (so reports and containers can
    tell, say, a storage type from a tensor rebuild function)."""
    return type(qualified, (Inert,), {"__slots__": ()})


@attrs.define
class ScanState:
    """Everything one scan has found so far, across every stream and member it read."""

    mode: Mode
    policy: Policy
    limit: int  # bytes a scan may decompress, in all
    globals: list[GlobalRef] = attrs.Factory(list)
    problems: list[Problem] = attrs.Factory(list)
    protocols: list[int] = attrs.Factory(list)
    members: list[str] = attrs.Factory(list)  # members scanned as pickles
    parts: list[Part] = attrs.Factory(list)  # every member or section, with its role
    opcodes: Counter[str] = attrs.Factory(Counter)
    pickles: int = 0
    persistent_ids: int = 0
    unpacked: int = 0  # bytes decompressed so far
    #: storage key -> storage type, from persistent ids shaped like PyTorch's
    storages: dict[str, str] = attrs.Factory(dict)
    joblib: bool = False  # a global of joblib's array wrapper was named
    arrays: int = 0  # numpy .npy arrays met (as files or archive members)
    torchscript: bool = False  # reading a TorchScript archive's pickles

    @property
    def judging_mode(self) -> Mode:
        """Audit records what the blocklist would say, and blocks nothing."""
        return Mode.BLOCKLIST if self.mode is Mode.AUDIT else self.mode

    def judge(self, module: str, name: str, position: int, index: int, member: str | None) -> None:
        if self.torchscript and (module == "__torch__" or module.startswith("__torch__.")):
            # TorchScript's own unpickler resolves these to classes compiled from the archive's
            # code/ (TorchScript, not Python); it imports nothing, and pickle.load cannot import them
            judgement = Judgement(True, "allowed", "a TorchScript class of this archive, never imported")
        else:
            judgement = self.policy.judge(module, name, self.judging_mode)
        self.globals.append(
            GlobalRef(
                module,
                name,
                position,
                index,
                member,
                judgement.allowed,
                judgement.reason,
                judgement.detail,
            )
        )
        if f"{module}.{name}" in JOBLIB_WRAPPERS:
            self.joblib = True

    def stand_in(
        self, module: str, name: str, stream: BinaryIO, index: int, member: str | None
    ) -> type[Inert]:
        """The stand-in for a global. One the policy admits only to be rebuilt reports a call:
        NEWOBJ makes an instance with ``__new__`` alone, REDUCE, INST and OBJ call the class,
        which runs ``__init__``."""
        qualified = f"{module}.{name}"
        if qualified not in self.policy.rebuild_only or self.torchscript:
            return stand_in(qualified)
        state = self

        def called(instance: object, *args: object, **kwargs: object) -> None:
            state.globals.append(
                GlobalRef(
                    module,
                    name,
                    stream.tell(),
                    index,
                    member,
                    False,
                    "dangerous_construct",
                    f"{qualified} is admitted to be rebuilt (NEWOBJ, BUILD), and the stream calls it",
                )
            )

        return type(qualified, (Inert,), {"__slots__": (), "__init__": called})

    def record_persistent_id(self, pid: object) -> None:
        """Count it, and remember PyTorch storages (``('storage', type, key, location,
        numel, ...)``) so that a legacy file's raw storages can be walked."""
        self.persistent_ids += 1
        if (
            isinstance(pid, tuple)
            and len(pid) >= 5
            and pid[0] == "storage"
            and isinstance(pid[2], str)
            and isinstance(pid[1], type)
        ):
            self.storages[pid[2]] = pid[1].__name__

    def merge(self, other: ScanState) -> None:
        self.globals.extend(other.globals)
        self.problems.extend(other.problems)
        self.protocols.extend(other.protocols)
        self.opcodes.update(other.opcodes)
        self.pickles += other.pickles
        self.persistent_ids += other.persistent_ids
        self.storages.update(other.storages)
        self.joblib = self.joblib or other.joblib

    def scratch(self) -> ScanState:
        """An empty state judging the same way, sharing the decompression budget's limit."""
        return ScanState(
            self.mode, self.policy, self.limit, unpacked=self.unpacked, torchscript=self.torchscript
        )


class InertUnpickler(pickle.Unpickler):
    """CPython's unpickler, with every global and persistent id replaced by an inert stand-in."""

    def __init__(self, stream: BinaryIO, state: ScanState, member: str | None, index: int) -> None:
        super().__init__(stream)
        self._stream = stream
        self._state = state
        self._member = member
        self._index = index
        self._classes: dict[tuple[str, str], type[Inert]] = {}

    def find_class(self, module: str, name: str, /) -> Any:
        self._state.judge(module, name, self._stream.tell(), self._index, self._member)
        key = (module, name)
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = self._state.stand_in(
                module, name, self._stream, self._index, self._member
            )
        return found

    def persistent_load(self, pid: object) -> Any:
        self._state.record_persistent_id(pid)
        return Inert()


def head(stream: BinaryIO, size: int = 1 << 16) -> bytes:
    """The first bytes of ``stream`` from where it is, without moving it (a stream that
    cannot seek, a decompressed one, is buffered and peeked at)."""
    if not stream.seekable():
        return stream.peek(size)[:size]  # type: ignore[attr-defined,no-any-return]
    start = stream.tell()
    data = stream.read(size)
    stream.seek(start)
    return data


_OPCODES = {opcode.code: opcode for opcode in pickletools.opcodes}

#: Opcodes that need nothing on the stack but still fail as a stream's first: the memo is empty.
_CANNOT_START = frozenset({"STOP", "GET", "BINGET", "LONG_BINGET"})


class _FirstOpcodeProbe(pickle.Unpickler):
    """The real unpickler on one opcode and STOP; it imports nothing and loads no id."""

    def find_class(self, module: str, name: str, /) -> Any:
        return Inert

    def persistent_load(self, pid: object) -> Any:
        return None


def looks_like_pickle(data: bytes, *, complete: bool) -> bool:
    """Whether ``pickle.load`` would get past the first opcode of ``data``: it is one the
    unpickler knows, needs nothing on the stack, and its argument parses the way the real
    unpickler parses it (PROTO is optional, whatever the protocol). Anything else fails at once
    under ``pickle.load`` too, so nothing of it could run. ``data`` is the first bytes of a
    stream, all of it when ``complete``; a first opcode whose argument runs on past an
    incomplete ``data`` (a long string, say) could well parse, so it counts.

    Text arguments (``INT``, ``FLOAT``, ``STRING``, ``GLOBAL``...) are tried on the real
    unpickler, not on :mod:`pickletools`, which rejects some that the unpickler takes
    (``I0x10`` is 16 to ``pickle.load``)."""
    if not data:
        return False
    if data[0] == pickle.PROTO[0]:
        return data[1] <= pickle.HIGHEST_PROTOCOL if len(data) >= 2 else not complete
    opcode = _OPCODES.get(data[:1].decode("latin-1"))
    if opcode is None or opcode.stack_before or opcode.name in _CANNOT_START:
        return False
    if opcode.arg is not None and opcode.arg.n == pickletools.UP_TO_NEWLINE:
        end = -1
        for _ in range(2 if opcode.name == "GLOBAL" else 1):
            end = data.find(b"\n", end + 1)
            if end < 0:
                return not complete
        try:
            with _quiet():
                _FirstOpcodeProbe(io.BytesIO(data[: end + 1] + pickle.STOP)).load()
        except Exception:
            return False
        return True
    try:
        with _quiet():
            next(pickletools.genops(data))
    except Exception:
        return not complete
    return True


@contextlib.contextmanager
def extension_cache_cleared() -> Iterator[None]:
    """The unpickler caches what EXT codes resolved to in the process-wide
    ``copyreg._extension_cache`` and then skips ``find_class``: a scan would see the host's
    real objects, and leave stand-ins for the host. Emptied for the load, restored after."""
    cache: dict[int, object] = copyreg._extension_cache  # type: ignore[attr-defined]  # noqa: SLF001 - no public way
    saved = dict(cache)
    cache.clear()
    try:
        yield
    finally:
        cache.clear()
        cache.update(saved)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector, run again and again while the unpickler builds hundreds
    of thousands of containers, triples a dense scan's time; what a scan builds is dropped at
    its end, so the collector waits until then."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pickletools warns about odd escapes in arbitrary bytes; for a scanner that is noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


#: Makes the unpickler that scans one pickle: (stream, state, member, index of the pickle).
UnpicklerFactory = Callable[[BinaryIO, "ScanState", "str | None", int], Any]

#: Scanned streams that no "not found" marker can confuse with a built value.
FAILED = object()


def scan_one(
    stream: BinaryIO,
    member: str | None,
    index: int,
    state: ScanState,
    make: UnpicklerFactory = InertUnpickler,
) -> object:
    """One pickle from where ``stream`` is; what it built (stand-ins inside), or
    :data:`FAILED` when the unpickler failed, which is then a problem in ``state``."""
    first = head(stream, 2)
    state.protocols.append(first[1] if first[:1] == pickle.PROTO and len(first) == 2 else 0)
    if state.mode is Mode.AUDIT and stream.seekable():
        start = stream.tell()
        state.opcodes.update(_opcode_names(stream))
        stream.seek(start)
    try:
        with collector_paused(), extension_cache_cleared():
            built = make(stream, state, member, index).load()
    except Exception as exc:  # whatever the stream makes the unpickler do, it is a finding
        state.problems.append(Problem(stream.tell(), f"{type(exc).__name__}: {exc}", member))
        return FAILED
    state.pickles += 1
    return built


def scan_streams(
    stream: BinaryIO,
    size: int | None,
    member: str | None,
    state: ScanState,
    *,
    index: int = 0,
    make: UnpicklerFactory = InertUnpickler,
) -> None:
    """Every pickle in ``stream`` from where it is, one after another; anything else after
    them is a problem. ``size`` is ``None`` for a stream read to its end (a decompressed one)."""
    while True:
        start = stream.tell()
        first = head(stream)
        if not first or (size is not None and start >= size):
            return
        complete = len(first) < (1 << 16) if size is None else start + len(first) == size
        if index and not looks_like_pickle(first, complete=complete):
            left = f"{size - start} bytes of" if size is not None else "the"
            state.problems.append(Problem(start, f"{left} trailing data after the pickle", member))
            return
        if scan_one(stream, member, index, state, make) is FAILED:
            return
        index += 1


def _opcode_names(stream: BinaryIO) -> list[str]:
    names: list[str] = []
    try:
        with _quiet():
            for opcode, _arg, _pos in pickletools.genops(stream):
                names.append(opcode.name)
                if opcode.name == "STOP":
                    break
    except Exception:  # the unpickler itself reports the malformation, with its offset
        pass
    return names


def scan_unless_data(
    stream: BinaryIO, size: int, member: str | None, state: ScanState, *, header_is_data: bool = False
) -> bool:
    """Scan ``stream`` as pickles, unless it is data; whether it was a pickle.

    Archive members and storages are data more often than pickles, a tensor's bytes can start
    like one, and so can a zip archive itself (``PK`` reads as a persistent id). Code in a
    pickle runs only through a global, so a stream that names no global and fails is data
    (``pickle.load`` could run nothing from it); anything else is reported. A stream that
    starts with PROTO is taken for a pickle, unless ``header_is_data``: a format whose own
    header can start with that byte (a safetensors length of 0x3_80 bytes reads as PROTO 3)."""
    starts_with_proto = head(stream, 1) == pickle.PROTO and not header_is_data
    scratch = state.scratch()
    scan_streams(stream, size, member, scratch)
    if not scratch.globals and scratch.problems and not starts_with_proto:
        return False
    if member is not None:
        state.members.append(member)
    state.merge(scratch)
    return True
