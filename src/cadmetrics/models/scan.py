"""The pickle security scan: the real unpickler reads the stream, and nothing it builds is real.

A scanner that parses pickles on its own can be walked past by any stream it reads
differently from ``pickle.load`` (a renamed import, a memoised string, an extension code).
This one has no parser: it runs CPython's own C unpickler with a ``find_class`` that returns
inert stand-in classes instead of importing anything. Every global the real unpickler would
import is therefore seen, resolved exactly as it would be, and judged by the policy; REDUCE,
BUILD, NEWOBJ, INST and OBJ then act on stand-ins that ignore their arguments, so no code of
the stream's choosing runs, whatever the mode.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import hashlib
import io
import os
import pickle
import pickletools
import threading
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from cadmetrics.errors import InputError, UnsupportedModelFormat
from cadmetrics.models.policy import DEFAULT_POLICY, Mode, Policy, parse_mode
from cadmetrics.models.report import GlobalRef, Problem, ScanReport, Verdict

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO

_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")

#: What one scan may decompress from an archive, in all, unless told otherwise.
DEFAULT_MAX_UNPACKED_BYTES = 4 * 1024**3

#: How much of an archive member is read to tell a pickle from data: enough for the first
#: opcode; one whose argument runs on past it is scanned as a pickle, so no more is needed.
_MEMBER_HEAD = 4096


class _Inert:
    """Stands in for every object a pickle asks for: accepts any arguments, any state, any
    items, and does nothing with them (not even keep them, so payloads are freed at once)."""

    __slots__ = ("__weakref__",)

    def __new__(cls, *args: object, **kwargs: object) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> _Inert:
        return _Inert()

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


class _InertUnpickler(pickle.Unpickler):
    """CPython's unpickler, with every global and persistent id replaced by an inert stand-in."""

    def __init__(self, stream: BinaryIO, scan: _ScanState, member: str | None, index: int) -> None:
        super().__init__(stream)
        self._stream = stream
        self._scan = scan
        self._member = member
        self._index = index
        self._classes: dict[tuple[str, str], type[_Inert]] = {}

    def find_class(self, module: str, name: str, /) -> Any:
        scan = self._scan
        judgement = scan.policy.judge(module, name, scan.judging_mode)
        scan.globals.append(
            GlobalRef(
                module,
                name,
                self._stream.tell(),
                self._index,
                self._member,
                judgement.allowed,
                judgement.reason,
                judgement.detail,
            )
        )
        key = (module, name)
        stand_in = self._classes.get(key)
        if stand_in is None:
            stand_in = type(f"{module}.{name}", (_Inert,), {"__slots__": ()})
            self._classes[key] = stand_in
        return stand_in

    def persistent_load(self, pid: object) -> Any:
        self._scan.persistent_ids += 1
        return _Inert()


@attrs.define
class _ScanState:
    mode: Mode
    policy: Policy
    globals: list[GlobalRef] = attrs.Factory(list)
    problems: list[Problem] = attrs.Factory(list)
    protocols: list[int] = attrs.Factory(list)
    members: list[str] = attrs.Factory(list)
    opcodes: Counter[str] = attrs.Factory(Counter)
    pickles: int = 0
    persistent_ids: int = 0

    @property
    def judging_mode(self) -> Mode:
        """Audit records what the blocklist would say, and blocks nothing."""
        return Mode.BLOCKLIST if self.mode is Mode.AUDIT else self.mode


def scan(
    source: Source,
    mode: str | Mode = Mode.BLOCKLIST,
    policy: Policy = DEFAULT_POLICY,
    *,
    name: str | None = None,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
) -> ScanReport:
    """Scan a pickle (raw, several concatenated, or inside a zip archive) without running it.

    ``source`` is a path, the bytes, or a binary file. Raises :class:`UnsupportedModelFormat`
    for input that is neither a pickle nor a zip archive, :class:`InputError` when it cannot
    be read; everything wrong inside a stream is a problem in the report, never an exception.
    ``name`` is how the report names the source (default: its path, or ``<bytes>``).
    ``max_unpacked_bytes`` bounds what the scan decompresses from a zip archive, in all: past
    it, the rest of the archive is a problem (a zip bomb), not hours and gigabytes.
    """
    chosen = parse_mode(mode)
    started = time.perf_counter()
    state = _ScanState(chosen, policy)
    with _Input.open(source) as opened:
        shown = name or opened.shown
        head = _head(opened.stream)
        looks_zip = head[:4] in _ZIP_SIGNATURES or (opened.size >= 22 and zipfile.is_zipfile(opened.stream))
        looks_pickle = _looks_like_pickle(head, complete=len(head) == opened.size)
        if not looks_zip and not looks_pickle:
            raise UnsupportedModelFormat(
                f"{shown}: neither a pickle stream nor a zip archive (starts {head[:8]!r})"
            )
        if looks_pickle and looks_zip:  # a polyglot is scanned both ways
            opened.stream.seek(0)
            _scan_unless_data(opened.stream, opened.size, None, state)
        elif looks_pickle:
            opened.stream.seek(0)
            _scan_streams(opened.stream, opened.size, None, state)
        if looks_zip:
            opened.stream.seek(0)
            _scan_archive(opened.stream, state, max_unpacked_bytes)
        digest = opened.sha256()
    blocked = chosen is not Mode.AUDIT and (
        bool(state.problems) or any(not ref.allowed for ref in state.globals)
    )
    return ScanReport(
        verdict=Verdict.BLOCKED if blocked else Verdict.ALLOWED,
        mode=chosen,
        globals=tuple(state.globals),
        problems=tuple(state.problems),
        protocols=tuple(state.protocols),
        pickle_count=state.pickles,
        members=tuple(state.members),
        persistent_ids=state.persistent_ids,
        opcodes=dict(state.opcodes),
        sha256=digest,
        size=opened.size,
        seconds=time.perf_counter() - started,
        source=shown,
    )


class _Input:
    """The input as a seekable stream, and its sha256 computed beside the scan.

    A path is scanned straight from the file, never held whole in memory; its digest is a
    second, streaming pass in a thread (file reads and hashlib both release the GIL), so it
    costs little extra time. Bytes, and file objects, are scanned from memory, their digest
    hashed in a thread as well.
    """

    CHUNK = 1 << 20

    def __init__(self, stream: BinaryIO, size: int, shown: str, hasher: Callable[[], str]) -> None:
        self.stream = stream
        self.size = size
        self.shown = shown
        self._result: list[str] = []
        self._thread = threading.Thread(target=lambda: self._result.append(hasher()), daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, source: Source) -> _Input:
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            try:
                stream: BinaryIO = _Unpeekable(io.FileIO(path, "rb"), buffer_size=cls.CHUNK)
                size = os.fstat(stream.fileno()).st_size
            except OSError as exc:
                raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
            return cls(stream, size, str(source), lambda: _hash_file(path))
        if isinstance(source, bytes | bytearray | memoryview):
            data, shown = bytes(source), "<bytes>"
        else:
            try:
                read = source.read()
            except OSError as exc:
                raise InputError(f"cannot read the model file: {exc}") from None
            if not isinstance(read, bytes):
                raise InputError("the model file must be opened in binary mode")
            data, shown = read, getattr(source, "name", "<file>")
        return cls(io.BytesIO(data), len(data), shown, lambda: hashlib.sha256(data).hexdigest())

    def sha256(self) -> str:
        self._thread.join()
        if not self._result:
            raise InputError(f"cannot read {self.shown} to hash it")
        return self._result[0]

    def __enter__(self) -> _Input:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join()
        self.stream.close()


class _Unpeekable(io.BufferedReader):
    """A buffered file without ``peek``. Given ``peek``, the C unpickler reads ahead and the
    file position lags behind the opcodes; without it, it reads what each opcode needs, so
    ``tell()`` is where each global really is. ``read`` stays the fast C method."""

    @property
    def peek(self) -> Any:
        raise AttributeError("peek")


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_Input.CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _head(stream: BinaryIO, size: int = 1 << 16) -> bytes:
    """The first bytes of ``stream`` from where it is, without moving it."""
    start = stream.tell()
    head = stream.read(size)
    stream.seek(start)
    return head


_OPCODES = {opcode.code: opcode for opcode in pickletools.opcodes}

#: Opcodes that need nothing on the stack but still fail as a stream's first: the memo is empty.
_CANNOT_START = frozenset({"STOP", "GET", "BINGET", "LONG_BINGET"})


def _looks_like_pickle(data: bytes, *, complete: bool) -> bool:
    """Whether ``pickle.load`` would get past the first opcode of ``data``: it parses and
    needs nothing on the stack (PROTO is optional, whatever the protocol). Anything else
    fails at once under ``pickle.load`` too, so nothing of it could run. ``data`` is the
    first bytes of a stream, all of it when ``complete``; a first opcode whose argument runs
    on past an incomplete ``data`` (a long string, say) could well parse, so it counts."""
    if len(data) >= 2 and data[0] == pickle.PROTO[0]:
        return 0 <= data[1] <= pickle.HIGHEST_PROTOCOL
    opcode = _OPCODES.get(data[:1].decode("latin-1"))
    if opcode is None or opcode.stack_before or opcode.name in _CANNOT_START:
        return False
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
    cache: dict[int, object] = copyreg._extension_cache  # type: ignore[attr-defined]
    saved = dict(cache)
    cache.clear()
    try:
        yield
    finally:
        cache.clear()
        cache.update(saved)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
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


def _scan_streams(stream: BinaryIO, size: int, member: str | None, state: _ScanState) -> None:
    """Every pickle in ``stream``, one after another; anything else after them is a problem."""
    index = 0
    while stream.tell() < size:
        start = stream.tell()
        head = _head(stream)
        if index and not _looks_like_pickle(head, complete=start + len(head) == size):
            state.problems.append(
                Problem(start, f"{size - start} bytes of trailing data after the pickle", member)
            )
            return
        state.protocols.append(head[1] if head[:1] == pickle.PROTO else 0)
        if state.mode is Mode.AUDIT:
            state.opcodes.update(_opcode_names(stream))
            stream.seek(start)
        try:
            with _collector_paused(), extension_cache_cleared():
                _InertUnpickler(stream, state, member, index).load()
        except Exception as exc:  # whatever the stream makes the unpickler do, it is a finding
            state.problems.append(Problem(stream.tell(), f"{type(exc).__name__}: {exc}", member))
            return
        state.pickles += 1
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


def _scan_archive(stream: BinaryIO, state: _ScanState, limit: int) -> None:
    """Every member that could start a pickle is scanned whole; any other is data, read no
    further than its first bytes (a tensor of gigabytes costs a few kilobytes). Everything
    decompressed counts against ``limit``, so a zip bomb, one member or thousands of
    overlapping ones, ends as a problem. A member never unpacks past its declared size:
    zipfile stops there, and a stream that holds more fails its CRC check."""
    try:
        archive = zipfile.ZipFile(stream)
    except Exception as exc:  # BadZipFile, but also NotImplementedError for odd versions...
        state.problems.append(Problem(0, f"unreadable zip archive: {exc}"))
        return
    unpacked = 0
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if unpacked + _MEMBER_HEAD > limit:
                state.problems.append(
                    Problem(
                        info.header_offset,
                        f"the archive unpacks past the scan's limit of {limit} bytes (a zip bomb?); "
                        "this member and the ones after it are not scanned",
                        info.filename,
                    )
                )
                return
            try:
                with archive.open(info) as member:
                    head = member.read(_MEMBER_HEAD)
                    unpacked += len(head)
                    if not _looks_like_pickle(head, complete=len(head) < _MEMBER_HEAD):
                        continue
                    if unpacked - len(head) + info.file_size > limit:
                        state.problems.append(
                            Problem(
                                info.header_offset,
                                f"the member unpacks to {info.file_size} bytes, past the scan's "
                                f"limit of {limit} bytes for the archive (a zip bomb?); not scanned",
                                info.filename,
                            )
                        )
                        continue
                    content = head + member.read()
            except Exception as exc:  # encrypted, unsupported compression, bad CRC...
                state.problems.append(Problem(info.header_offset, f"unreadable member: {exc}", info.filename))
                continue
            unpacked += len(content) - len(head)
            _scan_unless_data(io.BytesIO(content), len(content), info.filename, state)


def _scan_unless_data(stream: BinaryIO, size: int, member: str | None, state: _ScanState) -> None:
    """Archive members are data more often than pickles, a tensor's bytes can start like one,
    and so can a zip archive itself (``PK`` reads as a persistent id). Code in a pickle runs
    only through a global, so a stream that names no global and fails is data (``pickle.load``
    could run nothing from it); anything else is reported."""
    starts_with_proto = _head(stream, 1) == pickle.PROTO
    scratch = _ScanState(state.mode, state.policy)
    _scan_streams(stream, size, member, scratch)
    is_data = not scratch.globals and scratch.problems and not starts_with_proto
    if is_data:
        return
    if member is not None:
        state.members.append(member)
    state.globals.extend(scratch.globals)
    state.problems.extend(scratch.problems)
    state.protocols.extend(scratch.protocols)
    state.opcodes.update(scratch.opcodes)
    state.pickles += scratch.pickles
    state.persistent_ids += scratch.persistent_ids
