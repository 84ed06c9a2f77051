"""Compressed streams as joblib writes them, found by their first bytes and read with a bound.

``joblib.dump(..., compress=...)`` wraps its pickle stream in zlib, gzip, bz2, lzma, xz or lz4,
and ``joblib.load`` picks the decompressor by the stream's first bytes (never by the file's
name). A scan does the same, streaming: nothing is held whole in memory, and everything
decompressed counts against the scan's limit, so a bomb (a few kilobytes unpacking to
gigabytes) ends as a finding instead of filling the machine.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import BinaryIO

#: joblib's prefixes, in the order joblib tries them.
_PREFIXES: tuple[tuple[str, bytes], ...] = (
    ("zlib", b"\x78"),
    ("gzip", b"\x1f\x8b"),
    ("bz2", b"BZ"),
    ("xz", b"\xfd\x37\x7a\x58\x5a"),
    ("lzma", b"\x5d\x00"),
    ("lz4", b"\x04\x22\x4d\x18"),
)

_READ = 1 << 20


class UnpackLimitExceeded(Exception):
    """A stream that decompresses past the bytes the scan may unpack."""


def compression_of(head: bytes) -> str | None:
    """The compression joblib would read ``head`` with, if any."""
    for name, prefix in _PREFIXES:
        if head.startswith(prefix):
            return name
    return None


class _ZlibReader(io.RawIOBase):
    """A raw zlib stream (what joblib's ``compress=('zlib', n)`` writes), read in pieces."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._inflate = zlib.decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = len(buffer)
        while True:
            if self._inflate.unconsumed_tail:
                out = self._inflate.decompress(self._inflate.unconsumed_tail, wanted)
            elif self._inflate.eof:
                return 0
            else:
                chunk = self._source.read(_READ)
                if not chunk:
                    out = self._inflate.flush()
                    if not out:
                        raise zlib.error("the zlib stream is truncated")
                else:
                    out = self._inflate.decompress(chunk, wanted)
            if out:
                buffer[: len(out)] = out
                return len(out)


def _lz4(source: BinaryIO) -> BinaryIO:
    try:
        import lz4.frame
    except ImportError:
        raise UnpackLimitExceeded(
            "the stream is lz4-compressed and the lz4 package is not installed: cannot scan it"
        ) from None
    reader: BinaryIO = lz4.frame.LZ4FrameFile(source, mode="rb")
    return reader


def _opened(compression: str, source: BinaryIO) -> BinaryIO:
    """The decompressing reader joblib would use; closed by whoever reads it."""
    if compression == "zlib":
        return io.BufferedReader(_ZlibReader(source))
    if compression == "gzip":
        return gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[return-value]
    if compression == "bz2":
        return bz2.BZ2File(source, mode="rb")  # type: ignore[return-value]
    if compression in ("xz", "lzma"):
        kind = lzma.FORMAT_XZ if compression == "xz" else lzma.FORMAT_ALONE
        return lzma.LZMAFile(source, mode="rb", format=kind)  # type: ignore[return-value]
    return _lz4(source)


class BoundedReader(io.RawIOBase):
    """Reads a decompressing stream, counting what it yields against ``budget``; past it,
    :class:`UnpackLimitExceeded`. Buffered on top, it has the ``peek`` a scan uses to look
    at what comes next without a seek."""

    def __init__(self, inner: BinaryIO, budget: int, limit: int) -> None:
        self._inner = inner
        self._left = budget
        self._limit = limit
        self.produced = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        """Bytes produced so far: positions in the decompressed stream, for reports."""
        return self.produced

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(min(len(buffer), _READ))
        self.produced += len(data)
        if self.produced > self._left:
            raise UnpackLimitExceeded(
                f"the stream decompresses past the scan's limit of {self._limit} bytes (a bomb?)"
            )
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


def open_decompressed(
    source: BinaryIO, compression: str, budget: int, limit: int
) -> tuple[io.BufferedReader, BoundedReader]:
    """``source`` decompressed, as a buffered stream that yields at most ``budget`` bytes;
    the bounded reader underneath says how much was produced."""
    bounded = BoundedReader(_opened(compression, source), budget, limit)
    return io.BufferedReader(bounded, buffer_size=1 << 16), bounded
