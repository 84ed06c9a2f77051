"""The two cache levels of feature vectors: in-process (L1) and shared (L2, e.g. Redis).

Keys name the content (its sha256), the feature version and the extractor's settings, so a
vector can only be found again by a request that would compute the very same vector. L1 is
an LRU bounded by entries and by bytes. L2 is anything with ``get``/``set`` of bytes; a
shared level is allowed to fail (a lost connection, a timeout): the extractor counts the
failure and goes on without it.
"""

from __future__ import annotations

import struct
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar, Protocol

import attrs
import numpy as np

from cadmetrics.features.mesh import FloatArray

#: Per-entry bookkeeping beyond the vector's own bytes (key string, dict node, the entry and
#: its array header), as measured with tracemalloc on CPython 3.11.
ENTRY_OVERHEAD_BYTES = 400


@attrs.frozen(eq=False)
class CachedVector:
    """What a cache level keeps: the values, the format the content was read as, the length
    unit the size features are in (the file's own; None when it declares none) and the
    vector's quality flags."""

    values: FloatArray
    format: str
    unit: str | None = None
    quality: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes) + ENTRY_OVERHEAD_BYTES

    _MAGIC = b"CMF2"

    def to_bytes(self) -> bytes:
        """A small self-checking record for a shared level: magic, the length of the text
        part and the count of values, the text part (format, unit, quality flags, separated by
        spaces), then the values."""
        text = " ".join([self.format, self.unit or "-", *self.quality]).encode("ascii")
        header = self._MAGIC + struct.pack("<HI", len(text), len(self.values)) + text
        return header + self.values.astype("<f8").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, dimension_of: Callable[[str], int]) -> CachedVector | None:
        """The record, or None when it does not hold as many values as its format's layout
        has (``dimension_of(format)``): a foreign, older or damaged entry is a miss, never a
        wrong vector."""
        if len(data) < 10 or data[:4] != cls._MAGIC:
            return None
        text_length, count = struct.unpack_from("<HI", data, 4)
        start = 10 + text_length
        words = data[10:start].decode("ascii", errors="replace").split(" ")
        if len(words) < 2 or len(data) != start + 8 * count or count != dimension_of(words[0]):
            return None
        values = np.frombuffer(data, dtype="<f8", offset=start).astype(np.float64)
        values.flags.writeable = False
        return cls(values, words[0], None if words[1] == "-" else words[1], tuple(words[2:]))


class MemoryCache:
    """L1: least recently used entries leave first, once either bound is reached."""

    _instances: ClassVar[weakref.WeakSet[MemoryCache]] = weakref.WeakSet()

    @classmethod
    def entries_in_process(cls) -> int:
        """Entries held by every in-process cache: what the entries gauge reports, as one
        process may run several extractors."""
        return sum(len(cache) for cache in list(cls._instances))

    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 * 1024**2) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"cache bounds must be positive, not {max_entries} entries, {max_bytes} bytes")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedVector] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        MemoryCache._instances.add(self)

    def get(self, key: str) -> CachedVector | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: CachedVector) -> None:
        size = entry.nbytes
        if size > self.max_bytes:
            return  # would evict everything and still not fit
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous.nbytes
            self._entries[key] = entry
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _key, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held, by the same measure as ``max_bytes``."""
        return self._bytes


class SharedCache(Protocol):
    """A shared cache level. Either method may raise on failure (lost connection, timeout):
    the extractor counts it and carries on without the level."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes) -> None: ...


@attrs.define
class FeatureCache:
    """The levels an extractor looks in, in order; either may be None (not used)."""

    l1: MemoryCache | None = attrs.Factory(MemoryCache)
    l2: SharedCache | None = None

    @classmethod
    def disabled(cls) -> FeatureCache:
        """No caching at all: every request computes."""
        return cls(l1=None, l2=None)
