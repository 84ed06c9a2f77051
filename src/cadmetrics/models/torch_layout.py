"""What PyTorch writes, as data: the members of its archives and its legacy format's sections.

``torch.save`` writes a zip archive (one top folder, whatever it is called, holding
``data.pkl``, the storages ``data/<key>`` and a few metadata files); ``torch.jit.save`` adds
TorchScript source under ``code/`` and ``constants.pkl``; files from before PyTorch 1.6 are
several pickles in a row (a magic number, a protocol version, system information, the object,
the storage keys) followed by each storage's raw bytes. Knowing this, a scan reads each part
as PyTorch does: pickles are scanned, storages and source are not taken for pickles.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

import numpy as np

from cadmetrics.models.report import Role

#: The first pickle of a legacy file holds this number.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: The legacy file's object pickle is the fourth, its storage keys the fifth.
LEGACY_PICKLES = 5

#: Storage types as a pickle names them, and the numpy dtype of their elements (bfloat16 and
#: the 8-bit floats as raw bits: numpy has no such types).
STORAGE_DTYPES: dict[str, str] = {
    "torch.DoubleStorage": "<f8",
    "torch.FloatStorage": "<f4",
    "torch.HalfStorage": "<f2",
    "torch.BFloat16Storage": "<u2",
    "torch.LongStorage": "<i8",
    "torch.IntStorage": "<i4",
    "torch.ShortStorage": "<i2",
    "torch.CharStorage": "i1",
    "torch.ByteStorage": "u1",
    "torch.BoolStorage": "bool",
    "torch.ComplexDoubleStorage": "<c16",
    "torch.ComplexFloatStorage": "<c8",
    "torch.UntypedStorage": "u1",
}

#: The dtypes of storage types whose raw bits numpy cannot name, by their torch dtype.
RAW_BITS = {"torch.BFloat16Storage": "bfloat16"}

_METADATA_NAMES = frozenset(
    {
        "version",
        ".format_version",
        ".storage_alignment",
        "byteorder",
        ".data/serialization_id",
        ".data/version",
    }
)
_STORAGE = re.compile(r"(?:\.data/)?data/[0-9]+|constants/[0-9]+|traced_inputs/[0-9]+")


def is_torch_archive(names: list[str]) -> bool:
    """An archive laid out by ``torch.save`` or ``torch.jit.save``: one top folder holding a
    ``data.pkl``, or PyTorch's version and byte-order markers."""
    inner = {_inner(name) for name in names}
    return "data.pkl" in inner or {"version", "byteorder"} <= inner or ".format_version" in inner


def is_torchscript(names: list[str]) -> bool:
    inner = {_inner(name) for name in names}
    return "constants.pkl" in inner or any(name.startswith("code/") for name in inner)


def member_role(name: str, torchscript: bool) -> Role:
    """What PyTorch makes of the member ``name`` (a pickle member is found by content too:
    this only says which members are storages, source or metadata)."""
    inner = _inner(name)
    if inner in _METADATA_NAMES:
        return Role.METADATA
    if _STORAGE.fullmatch(inner):
        return Role.STORAGE
    if torchscript and inner.startswith("code/") and inner.endswith(".py"):
        return Role.SOURCE
    if inner.endswith((".pkl", ".debug_pkl")):
        return Role.PICKLE
    return Role.DATA


def _inner(name: str) -> str:
    """The member's path below the archive's top folder."""
    return name.split("/", 1)[1] if "/" in name else name


def data_pickle(names: list[str]) -> str | None:
    """The member ``torch.load`` unpickles: ``<top>/data.pkl``, or ``None`` when there is none
    (torch.load would then refuse the file)."""
    for name in names:
        if name.count("/") == 1 and name.endswith("/data.pkl"):
            return name
    return None


def element_size(storage_type: str) -> int:
    dtype = STORAGE_DTYPES.get(storage_type)
    if dtype is None:
        raise ValueError(f"unknown storage type {storage_type}")
    return np.dtype(dtype).itemsize


def skip_legacy_storages(stream: BinaryIO, size: int, keys: object, storages: dict[str, str]) -> str | None:
    """Move past a legacy file's raw storages (each an 8-byte element count, then the
    elements), in the order of ``keys``; what is wrong with them, or ``None``."""
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        return "the storage keys pickle is not a list of strings"
    for key in keys:
        storage_type = storages.get(key)
        if storage_type is None:
            return f"storage {key!r} is not named by the object pickle"
        try:
            width = element_size(storage_type)
        except ValueError as exc:
            return str(exc)
        header = stream.read(8)
        if len(header) < 8:
            return f"the file ends before storage {key!r}"
        (count,) = struct.unpack("<q", header)
        if count < 0 or count * width > size - stream.tell():
            return f"storage {key!r} declares {count} elements, past the end of the file"
        stream.seek(count * width, 1)
    return None
