"""The security scan: a model file's format found by its content, each part read as its
framework reads it, every pickle run by the real unpickler with nothing it builds real.

The formats are the ones teams ship: raw pickles (protocols 0-5, several in a row), joblib
(its inline arrays, and every compression it writes), PyTorch (zip archives, TorchScript, the
legacy format), numpy ``.npy``/``.npz``, safetensors and ONNX. Nothing is judged by a file's
name. Pickles are scanned by :mod:`cadmetrics.models.pickle_scan`; tensors' bytes, source text
and headers are data, checked for what they could hide, never unpickled.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from cadmetrics.errors import InputError, UnsupportedModelFormat
from cadmetrics.models import npy_file, onnx_file, safetensors_file, torch_layout
from cadmetrics.models.archive import ChecksummedMember, crc_problem, list_members, without_crc_check
from cadmetrics.models.compressed import compression_of, open_decompressed
from cadmetrics.models.joblib_pickle import ArrayWrapper, DtypeRecipe, JoblibUnpickler, is_wrapper
from cadmetrics.models.pickle_scan import (
    FAILED,
    Inert,
    ScanState,
    head,
    looks_like_pickle,
    scan_one,
    scan_streams,
    scan_unless_data,
)
from cadmetrics.models.policy import DEFAULT_POLICY, Mode, Policy, parse_mode
from cadmetrics.models.report import Part, Problem, Role, ScanReport, Verdict

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO

_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")

#: What one scan may decompress, in all (zip members, compressed joblib streams), unless told
#: otherwise.
DEFAULT_MAX_UNPACKED_BYTES = 4 * 1024**3

#: How much of an archive member is read to tell a pickle from data: enough for the first
#: opcode; one whose argument runs on past it is scanned as a pickle, so no more is needed.
_MEMBER_HEAD = 4096
#: Members one archive may list. A zip without zip64 extensions holds at most 65,535; a
#: PyTorch checkpoint has one per storage (a few thousand for the largest models in one file).
#: Each member costs its headers' reading and a look at its first bytes (about 150 us), so a
#: central directory repeated a hundred thousand times in a few megabytes took 15 s. Read at
#: each scan: a host may change it.
MAX_ARCHIVE_MEMBERS = 50_000


def scan(
    source: Source,
    mode: str | Mode = Mode.ALLOWLIST,
    policy: Policy = DEFAULT_POLICY,
    *,
    name: str | None = None,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
) -> ScanReport:
    """Scan a model file without running any of it.

    ``source`` is a path, the bytes, or a binary file. Raises :class:`UnsupportedModelFormat`
    for content that is none of the formats above, :class:`InputError` when it cannot be read;
    everything wrong inside a file is a finding in the report, never an exception. ``name`` is
    how the report names the source (default: its path, or ``<bytes>``). ``max_unpacked_bytes``
    bounds what the scan decompresses, in all: past it, the rest is a finding (a bomb), not
    hours and gigabytes. ``allowlist`` is the default mode: a blocklist can only ever stop the
    techniques it knows.
    """
    chosen = parse_mode(mode)
    started = time.perf_counter()
    state = ScanState(chosen, policy, max_unpacked_bytes)
    with _Input.open(source) as opened:
        shown = name or opened.shown
        found = _scan_content(opened, state, shown)
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
        format=found,
        parts=tuple(state.parts),
    )


def _scan_content(opened: _Input, state: ScanState, shown: str) -> str:
    """Scan what ``opened`` holds; the name of its format."""
    stream, size = opened.stream, opened.size
    first = head(stream)
    looks_zip = first[:4] in _ZIP_SIGNATURES or (size >= 22 and _ends_like_a_zip(stream))
    stream.seek(0)
    looks_pickle = looks_like_pickle(first, complete=len(first) == size)
    if looks_zip:
        if looks_pickle:  # a polyglot is scanned both ways
            scan_unless_data(stream, size, None, state)
            stream.seek(0)
        return _scan_archive(stream, size, state)
    if first.startswith(npy_file.MAGIC):
        npy_file.scan_npy(stream, size, None, state)
        return "numpy"
    if safetensors_file.looks_like_safetensors(first, size):
        if looks_pickle:  # torch.load unpickles any file that is not a zip: see what it would
            scan_unless_data(stream, size, None, state, header_is_data=True)
            stream.seek(0)
        return _scan_safetensors(stream, size, state)
    compression = compression_of(first)
    if compression is not None:
        if looks_pickle:  # what pickle.load would make of it, as well as joblib
            scan_unless_data(stream, size, None, state)
            stream.seek(0)
        return _scan_compressed(stream, compression, state, shown)
    if looks_pickle:
        return _scan_raw(stream, size, None, state)
    if first[:1] == b"\x08" and size <= state.limit:
        data = stream.read()
        if onnx_file.looks_like_onnx(data):
            _scan_onnx(data, opened.path, state)
            return "onnx"
    raise UnsupportedModelFormat(
        f"{shown}: not a model file this scanner knows (pickle, joblib, PyTorch, numpy, "
        f"safetensors, ONNX, or a zip archive of them; starts {first[:8]!r})"
    )


# -- raw pickles, joblib and PyTorch's legacy format -------------------------------------------


def _scan_raw(stream: BinaryIO, size: int, member: str | None, state: ScanState) -> str:
    """Pickles from the start of ``stream``: as ``pickle.load`` reads them, and, when they
    name joblib's array wrapper, as ``joblib.load`` does too; PyTorch's legacy format is
    recognised by its first pickle and its raw storages walked."""
    start = stream.tell()
    first = scan_one(stream, member, 0, state)
    if first == torch_layout.LEGACY_MAGIC and not isinstance(first, bool):
        return _scan_legacy(stream, size, member, state)
    if first is not FAILED:
        scan_streams(stream, size, member, state, index=1)
    state.parts.append(Part(member or "pickle", Role.PICKLE, size - start))
    if not state.joblib:
        return "pickle"
    stream.seek(start)
    _rescan_as_joblib(stream, size, member, state)
    return "joblib"


def _scan_legacy(stream: BinaryIO, size: int, member: str | None, state: ScanState) -> str:
    built: object = None
    for index in range(1, torch_layout.LEGACY_PICKLES):
        built = scan_one(stream, member, index, state)
        if built is FAILED:
            return "torch-legacy"
    pickles_end = stream.tell()
    state.parts.append(Part("pickles", Role.PICKLE, pickles_end))
    problem = torch_layout.skip_legacy_storages(stream, size, built, state.storages)
    if problem is not None:
        state.problems.append(Problem(stream.tell(), f"legacy PyTorch storages: {problem}", member))
        return "torch-legacy"
    state.parts.append(Part("storages", Role.STORAGE, stream.tell() - pickles_end))
    scan_streams(stream, size, member, state, index=torch_layout.LEGACY_PICKLES)
    return "torch-legacy"


def _joblib_unpickler(size: int | None) -> Callable[[BinaryIO, ScanState, str | None, int], Any]:
    """A factory of joblib unpicklers that judge every global and build stand-ins, skipping
    the arrays' bytes."""

    def make(stream: BinaryIO, state: ScanState, member: str | None, index: int) -> JoblibUnpickler:
        classes: dict[str, type[Inert]] = {}

        def resolve(module: str, name: str, position: int) -> Any:
            state.judge(module, name, position, index, member)
            if is_wrapper(module, name):
                return ArrayWrapper
            if (module, name) == ("numpy", "dtype"):
                return DtypeRecipe
            qualified = f"{module}.{name}"
            if qualified not in classes:
                classes[qualified] = state.stand_in(module, name, stream, index, member)
            return classes[qualified]

        def persistent(pid: object) -> object:
            state.record_persistent_id(pid)
            return Inert()

        return JoblibUnpickler(stream, resolve, materialize=False, persistent=persistent, size=size)

    return make


def _rescan_as_joblib(stream: BinaryIO, size: int, member: str | None, state: ScanState) -> None:
    """The stream again, as joblib reads it. What ``pickle.load`` saw up to its failure at
    the first inline array stays (a global it would import there is still judged); its
    failure there does not, since joblib reads those bytes as an array."""
    as_joblib = state.scratch()
    scan_streams(stream, size, member, as_joblib, make=_joblib_unpickler(size))
    seen = {(ref.module, ref.name) for ref in as_joblib.globals}
    as_pickle = [ref for ref in state.globals if not ref.allowed and (ref.module, ref.name) not in seen]
    state.globals[:] = [*as_joblib.globals, *as_pickle]
    state.problems[:] = as_joblib.problems
    state.protocols[:] = as_joblib.protocols
    state.pickles = as_joblib.pickles
    state.persistent_ids = as_joblib.persistent_ids


def _scan_compressed(stream: BinaryIO, compression: str, state: ScanState, shown: str) -> str:
    """A compressed joblib stream, decompressed as joblib does, streaming and bounded."""
    reader, bounded = open_decompressed(stream, compression, state.limit - state.unpacked, state.limit)
    try:
        try:
            first = head(reader)
        except Exception as exc:  # zlib.error, LZMAError, OSError, EOFError, the limit...
            state.problems.append(Problem(0, f"cannot decompress the {compression} stream: {exc}"))
            return f"joblib/{compression}"
        if not looks_like_pickle(first, complete=len(first) < (1 << 16)):
            raise UnsupportedModelFormat(f"{shown}: a {compression} stream that holds no pickle")
        scan_streams(reader, None, None, state, make=_joblib_unpickler(None))
        state.parts.append(Part("pickle", Role.PICKLE, bounded.produced))
    finally:
        state.unpacked += bounded.produced
        reader.close()
    return f"joblib/{compression}"


# -- zip archives: PyTorch, TorchScript, npz, anything else ------------------------------------


def _ends_like_a_zip(stream: BinaryIO) -> bool:
    """Whether the stream ends with a zip directory. ``zipfile.is_zipfile`` raises where a
    ZIP64 locator claims several disks (it catches only OSError); such a file does end like a
    zip, and its archive is then reported unreadable."""
    try:
        return zipfile.is_zipfile(stream)
    except zipfile.BadZipFile:
        return True


def _scan_archive(stream: BinaryIO, size: int, state: ScanState) -> str:
    """Every member any reader could read. Members that could start a pickle are scanned
    whole; any other is data, read no further than its first bytes (a tensor of gigabytes
    costs a few kilobytes). Everything decompressed counts against the limit, so a zip bomb,
    one member or thousands of overlapping ones, ends as a problem. A member never unpacks
    past its declared size: zipfile stops there."""
    try:
        archive = zipfile.ZipFile(stream)
    except Exception as exc:  # BadZipFile, but also NotImplementedError for odd versions...
        state.problems.append(Problem(0, f"unreadable zip archive: {exc}"))
        return "zip"
    with archive:
        if _too_many_members(len(archive.infolist()), "its directory lists", state):
            return "zip"
        try:
            listing = list_members(archive, stream, size)
        except Exception as exc:
            state.problems.append(Problem(0, f"unreadable zip archive: {exc}"))
            return "zip"
        if _too_many_members(len(listing.members), "it holds (local headers included)", state):
            return "zip"
        state.problems.extend(listing.problems)
        names = [info.filename for info in archive.infolist()]
        torch = torch_layout.is_torch_archive(names)
        script = torch and torch_layout.is_torchscript(names)
        state.torchscript = script
        # a folder's name ends with "/" (ZipInfo.is_dir fails on a member without a name)
        files = [info for info in listing.members if not info.filename.endswith("/")]
        arrays_before = state.arrays
        for info in files:
            role = torch_layout.member_role(info.filename, script) if torch else Role.DATA
            if not _scan_member(archive, info, role, state):
                break
    if torch:
        return "torchscript" if script else "torch"
    return "npz" if files and state.arrays - arrays_before == len(files) else "zip"


def _too_many_members(count: int, how: str, state: ScanState) -> bool:
    """Whether an archive has more members than a scan reads; a problem in ``state`` if so."""
    if count <= MAX_ARCHIVE_MEMBERS:
        return False
    state.problems.append(
        Problem(
            0,
            f"{how} {count} members, more than the scan reads ({MAX_ARCHIVE_MEMBERS}; "
            "cadmetrics.models.scan.MAX_ARCHIVE_MEMBERS): not scanned",
        )
    )
    return True


def _scan_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, role: Role, state: ScanState) -> bool:
    """One member, its part recorded with the role it turned out to have; ``False`` when the
    unpacking limit is reached (the rest of the archive is then not read)."""
    limit = state.limit
    if state.unpacked + _MEMBER_HEAD > limit:
        state.problems.append(
            Problem(
                info.header_offset,
                f"the archive unpacks past the scan's limit of {limit} bytes (a zip bomb?); "
                "this member and the ones after it are not scanned",
                info.filename,
            )
        )
        return False
    try:
        with archive.open(without_crc_check(info)) as member:
            first = member.read(_MEMBER_HEAD)
            state.unpacked += len(first)
            found = _role_by_content(first, role)
            if found is Role.ARRAY:
                state.arrays += 1
            if found is not Role.PICKLE:
                state.parts.append(Part(info.filename, found, info.file_size))
                return True
            if state.unpacked - len(first) + info.file_size > limit:
                state.problems.append(
                    Problem(
                        info.header_offset,
                        f"the member unpacks to {info.file_size} bytes, past the scan's "
                        f"limit of {limit} bytes for the archive (a zip bomb?); not scanned",
                        info.filename,
                    )
                )
                return True
            streamed = ChecksummedMember(first, member)
            stream = io.BufferedReader(streamed, buffer_size=1 << 16)
            if first.startswith(npy_file.MAGIC):
                found = npy_file.scan_npy(stream, info.file_size, info.filename, state)
            elif scan_unless_data(stream, info.file_size, info.filename, state):
                found = Role.PICKLE
            else:
                found = Role.DATA if role in (Role.PICKLE, Role.SOURCE) else role
            streamed.drain()
    except Exception as exc:  # encrypted, unsupported compression, truncated...
        state.problems.append(Problem(info.header_offset, f"unreadable member: {exc}", info.filename))
        return True
    state.unpacked += streamed.produced - len(first)
    bad_crc = crc_problem(info, streamed.crc)
    if bad_crc is not None:
        state.problems.append(bad_crc)
    state.parts.append(Part(info.filename, found, info.file_size))
    return True


def _role_by_content(first: bytes, role: Role) -> Role:
    """What the first bytes of a member make it, given what its name makes it: an ``.npy``
    array (plain: data; of objects: a pickle), a pickle, TorchScript source, or data."""
    if role is Role.SOURCE and _is_text(first):
        return Role.SOURCE
    if first.startswith(npy_file.MAGIC):
        return Role.PICKLE if npy_file.holds_objects(first) else Role.ARRAY
    if looks_like_pickle(first, complete=len(first) < _MEMBER_HEAD):
        return Role.PICKLE
    return Role.DATA if role in (Role.PICKLE, Role.SOURCE) else role


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the end of the look-ahead is fine
        return exc.start >= len(data) - 3 and b"\x00" not in data
    return b"\x00" not in data


# -- containers without pickles -----------------------------------------------------------------


def _scan_safetensors(stream: BinaryIO, size: int, state: ScanState) -> str:
    first = stream.read(8)
    header_length = int.from_bytes(first, "little")
    data = first + stream.read(header_length)
    try:
        header = safetensors_file.read_header(data, size)
    except safetensors_file.SafetensorsError as exc:
        state.problems.append(Problem(8, f"safetensors header: {exc}"))
        return "safetensors"
    state.parts.append(Part("header", Role.METADATA, header.data_start))
    state.parts.append(Part("tensors", Role.STORAGE, size - header.data_start))
    return "safetensors"


def _scan_onnx(data: bytes, path: Path | None, state: ScanState) -> None:
    try:
        references = onnx_file.external_data(data)
    except onnx_file.OnnxFormatError as exc:
        state.problems.append(Problem(0, f"ONNX model: {exc}"))
        return
    folder = path.parent if path is not None else None
    for reference in references:
        why = onnx_file.escapes(reference.location, folder)
        if why is not None:
            state.problems.append(
                Problem(
                    0,
                    f"tensor {reference.tensor!r} keeps its data at {reference.location!r}, outside the "
                    f"model's folder ({why})",
                    reason="external_data",
                )
            )
    state.parts.append(Part("model", Role.METADATA, len(data)))
    state.parts.extend(Part(ref.location, Role.STORAGE, 0) for ref in references)


# -- the input --------------------------------------------------------------------------------


class _Input:
    """The input as a seekable stream, and its sha256 computed beside the scan.

    A path is scanned straight from the file, never held whole in memory; its digest is a
    second, streaming pass in a thread (file reads and hashlib both release the GIL), so it
    costs little extra time. Bytes, and file objects, are scanned from memory, their digest
    hashed in a thread as well.
    """

    CHUNK = 1 << 20

    def __init__(
        self, stream: BinaryIO, size: int, shown: str, hasher: Callable[[], str], path: Path | None = None
    ) -> None:
        self.stream = stream
        self.size = size
        self.shown = shown
        self.path = path
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
            return cls(stream, size, str(source), lambda: _hash_file(path), path)
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
