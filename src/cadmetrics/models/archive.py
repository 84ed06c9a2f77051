"""Zip archives as every reader could read them: the central directory and the local headers.

Readers disagree on zip files: Python's zipfile and PyTorch follow the central directory,
streaming readers follow the local headers one after another. The 2025 advisories against
picklescan and modelscan hid payloads in that gap: local and central headers that disagree on
a member's name, sizes or flags, members stored twice under one name, members that only local
headers list, bad CRCs that one reader checks and another does not. This module lists every
member that any of those readers could read, each as its local header describes it, and
reports every disagreement; each is then scanned, and each disagreement is a finding.
"""

from __future__ import annotations

import copy
import io
import struct
import zipfile
import zlib
from typing import IO, BinaryIO

import attrs

from cadmetrics.models.report import Problem

_LOCAL = b"PK\x03\x04"
_LOCAL_FORMAT = "<4s5H3L2H"  # zipfile's structFileHeader
_LOCAL_SIZE = struct.calcsize(_LOCAL_FORMAT)
_ENCRYPTED = 0x1
_DATA_DESCRIPTOR = 0x8
_UTF8_NAME = 0x800
#: Gaps between members are searched for hidden local headers up to this size each.
_MAX_GAP = 64 << 20


@attrs.frozen
class LocalHeader:
    offset: int
    name: str
    flags: int
    method: int
    crc: int
    compressed: int
    uncompressed: int
    data_start: int


def _local_header(stream: BinaryIO, offset: int) -> LocalHeader | None:
    stream.seek(offset)
    raw = stream.read(_LOCAL_SIZE)
    if len(raw) < _LOCAL_SIZE or raw[:4] != _LOCAL:
        return None
    (
        _sig,
        _version,
        flags,
        method,
        _time,
        _date,
        crc,
        compressed,
        uncompressed,
        name_length,
        extra_length,
    ) = struct.unpack(_LOCAL_FORMAT, raw)
    name_bytes = stream.read(name_length)
    if len(name_bytes) < name_length:
        return None
    name = name_bytes.decode("utf-8" if flags & _UTF8_NAME else "cp437", errors="replace")
    data_start = offset + _LOCAL_SIZE + name_length + extra_length
    return LocalHeader(offset, name, flags, method, crc, compressed, uncompressed, data_start)


@attrs.frozen
class Listing:
    """The members to read (each a ``ZipInfo`` as its local header says) and what disagrees."""

    members: tuple[zipfile.ZipInfo, ...]
    problems: tuple[Problem, ...]


def list_members(archive: zipfile.ZipFile, stream: BinaryIO, size: int) -> Listing:
    members: list[zipfile.ZipInfo] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    covered: list[tuple[int, int]] = []
    for info in archive.infolist():
        if info.filename in seen:
            problems.append(
                Problem(
                    info.header_offset,
                    "the archive stores this name twice: readers disagree on which",
                    info.filename,
                )
            )
        seen[info.filename] = info.header_offset
        if not info.filename:
            problems.append(
                Problem(info.header_offset, "a member without a name: readers disagree on it", "")
            )
        local = _local_header(stream, info.header_offset)
        if local is None:
            problems.append(
                Problem(info.header_offset, "no local header where the directory points", info.filename)
            )
            continue
        # the member's bytes as the directory sizes them (a zip64 local header holds no sizes;
        # local sizes that differ are a finding of their own)
        covered.append((info.header_offset, local.data_start + info.compress_size))
        problems.extend(_disagreements(info, local))
        as_read = copy.copy(info)
        as_read.filename = as_read.orig_filename = local.name
        as_read.flag_bits = local.flags
        as_read.compress_type = local.method
        members.append(as_read)
    hidden, hidden_problems = _hidden_members(stream, size, covered, archive)
    return Listing(tuple(members + hidden), tuple(problems + hidden_problems))


def _disagreements(info: zipfile.ZipInfo, local: LocalHeader) -> list[Problem]:
    found = []
    where = info.header_offset
    if local.name != info.orig_filename:
        found.append(Problem(where, f"the local header names it {local.name!r}", info.filename))
    if (local.flags ^ info.flag_bits) & (_ENCRYPTED | _DATA_DESCRIPTOR):
        found.append(
            Problem(
                where,
                f"local and central headers disagree on flags ({local.flags:#x} vs {info.flag_bits:#x})",
                info.filename,
            )
        )
    if local.method != info.compress_type:
        found.append(
            Problem(
                where,
                f"local and central headers disagree on compression ({local.method} vs {info.compress_type})",
                info.filename,
            )
        )
    if not local.flags & _DATA_DESCRIPTOR and 0xFFFFFFFF not in (local.compressed, local.uncompressed):
        if (local.compressed, local.uncompressed) != (info.compress_size, info.file_size):
            found.append(
                Problem(
                    where,
                    f"local and central headers disagree on sizes ({local.compressed}/{local.uncompressed} "
                    f"vs {info.compress_size}/{info.file_size})",
                    info.filename,
                )
            )
        if local.crc != info.CRC:
            found.append(Problem(where, "local and central headers disagree on the CRC", info.filename))
    return found


def _hidden_members(
    stream: BinaryIO, size: int, covered: list[tuple[int, int]], archive: zipfile.ZipFile
) -> tuple[list[zipfile.ZipInfo], list[Problem]]:
    """Local headers outside every listed member's bytes (before the first, between two,
    after the last): a streaming reader would read them; the directory does not list them."""
    end_of_members = archive.start_dir if hasattr(archive, "start_dir") else size
    gaps: list[tuple[int, int]] = []
    position = 0
    for start, stop in sorted(covered):
        if start > position:
            gaps.append((position, start))
        position = max(position, stop)
    if end_of_members > position:
        gaps.append((position, end_of_members))
    members: list[zipfile.ZipInfo] = []
    problems: list[Problem] = []
    for start, stop in gaps:
        stream.seek(start)
        gap = stream.read(min(stop - start, _MAX_GAP))
        found = gap.find(_LOCAL)
        while found >= 0:
            local = _local_header(stream, start + found)
            if local is not None:
                problems.append(Problem(local.offset, "a member that only a local header lists", local.name))
                if local.flags & _DATA_DESCRIPTOR or 0xFFFFFFFF in (local.compressed, local.uncompressed):
                    problems.append(
                        Problem(local.offset, "its size is not in its header: not scanned", local.name)
                    )
                else:
                    members.append(_info_from(local))
            found = gap.find(_LOCAL, found + 4)
    return members, problems


def _info_from(local: LocalHeader) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(local.name)
    info.header_offset = local.offset
    info.flag_bits = local.flags
    info.compress_type = local.method
    info.compress_size = local.compressed
    info.file_size = local.uncompressed
    info.CRC = local.crc
    return info


class ChecksummedMember(io.RawIOBase):
    """A zip member read once, front to back: the first bytes a scan already took to judge
    it, then the rest, its CRC-32 computed on the way. Buffered on top it is a stream a scan
    reads in bounded memory, however large the member (a 512 MiB pickle of zeros packs into
    half a megabyte), where reading it whole would hold it twice."""

    def __init__(self, first: bytes, rest: IO[bytes]) -> None:
        self._pending = memoryview(first)
        self._rest = rest
        self.crc = 0
        self.produced = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        """Bytes produced so far: positions in the member, for reports."""
        return self.produced

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._pending:
            data = bytes(self._pending[: len(buffer)])
            self._pending = self._pending[len(data) :]
        else:
            data = self._rest.read(min(len(buffer), _CHUNK))
        self.crc = zlib.crc32(data, self.crc)
        self.produced += len(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read what the scan left, so that the CRC covers the whole member."""
        chunk = bytearray(_CHUNK)
        while self.readinto(memoryview(chunk)):
            pass


_CHUNK = 1 << 20


def crc_problem(info: zipfile.ZipInfo, crc: int) -> Problem | None:
    """A whole member's CRC-32, as read, against the one its headers declare."""
    if crc != info.CRC:
        return Problem(
            info.header_offset, "bad CRC-32: some readers refuse this member, others read it", info.filename
        )
    return None


def without_crc_check(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """The same member, read without zipfile's CRC check (it is checked apart, so that a
    bad CRC is reported and the content still scanned, as a lenient reader would use it)."""
    lenient = zipfile.ZipInfo(info.filename)
    for slot in (
        "orig_filename",
        "header_offset",
        "flag_bits",
        "compress_type",
        "compress_size",
        "file_size",
    ):
        setattr(lenient, slot, getattr(info, slot))
    lenient.extract_version = info.extract_version
    return lenient
