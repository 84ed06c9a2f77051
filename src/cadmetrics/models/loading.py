"""Loading a scanned model file: what it holds, under the same policy the scan applied.

Each format is loaded the way its framework would, with one difference: every global goes
through a ``find_class`` that enforces the policy again (defence in depth: a scanner bug
alone does not make a load unsafe), and PyTorch's tensor globals resolve to
:mod:`cadmetrics.models.tensors`, so a state_dict or checkpoint loads without torch.

- pickle: the object; joblib (any compression): the object, its arrays as numpy arrays;
- PyTorch (zip or legacy): the object with tensors as numpy arrays (torch tensors sharing
  their memory when ``as_torch``); TorchScript: ``torch.jit.load``'s module (needs torch);
- ``.npy``: the array; ``.npz``: a dict of arrays by name; safetensors: a dict of arrays;
- ONNX: an ``onnx.ModelProto`` when the onnx package is installed, else the checked bytes.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

from cadmetrics.errors import ModelBlocked, ModelLoadFailed
from cadmetrics.models import npy_file, safetensors_file, torch_layout
from cadmetrics.models.compressed import open_decompressed
from cadmetrics.models.joblib_pickle import ArrayWrapper, JoblibUnpickler, is_wrapper
from cadmetrics.models.pickle_scan import extension_cache_cleared
from cadmetrics.models.policy import Mode, Policy
from cadmetrics.models.tensors import Storage, StorageType, TensorBuilder, storage_from_bytes

PersistentLoad = Callable[[object], object]


class RestrictedUnpickler(pickle.Unpickler):
    """The real unpickler, importing only what the policy admits in the loader's mode, with
    PyTorch's tensor and storage globals resolved to numpy-building stand-ins."""

    def __init__(
        self,
        stream: BinaryIO,
        mode: Mode,
        policy: Policy,
        tensors: TensorBuilder | None = None,
        persistent: PersistentLoad | None = None,
    ) -> None:
        super().__init__(stream)
        self._resolve = restricted_resolver(mode, policy, tensors, super().find_class)
        self._persistent = persistent

    def find_class(self, module: str, name: str, /) -> Any:
        return self._resolve(module, name)

    def persistent_load(self, pid: object) -> Any:
        if self._persistent is None:
            raise pickle.UnpicklingError("persistent ids need the framework's own loader")
        return self._persistent(pid)


def restricted_resolver(
    mode: Mode,
    policy: Policy,
    tensors: TensorBuilder | None,
    importer: Callable[[str, str], Any],
) -> Callable[[str, str], Any]:
    functions = tensors.functions() if tensors is not None else {}

    def resolve(module: str, name: str) -> Any:
        if mode is not Mode.AUDIT:
            judgement = policy.judge(module, name, mode)
            if not judgement.allowed:
                raise ModelBlocked(
                    f"the restricted unpickler refused {module}.{name}: {judgement.detail}",
                    block_reason=judgement.reason,
                )
        qualified = f"{module}.{name}"
        if tensors is not None:
            if qualified in functions:
                return functions[qualified]
            if qualified in torch_layout.STORAGE_DTYPES:
                return StorageType(qualified)
        if is_wrapper(module, name):
            return ArrayWrapper
        try:
            return importer(module, name)
        except ImportError as exc:
            hint = (
                " (PyTorch objects other than tensors need torch installed)"
                if module.startswith("torch")
                else ""
            )
            raise ModelLoadFailed(f"cannot import {qualified}: {exc}{hint}") from None

    return resolve


def load_content(data: bytes, fmt: str, mode: Mode, policy: Policy, *, as_torch: bool, max_bytes: int) -> Any:
    """What ``data``, a file of format ``fmt`` (as the scan found it), holds."""
    tensors = TensorBuilder(as_torch)
    if fmt == "pickle":
        return _unpickle(io.BytesIO(data), mode, policy, tensors)
    if fmt == "joblib":
        return _load_joblib(io.BytesIO(data), len(data), mode, policy)
    if fmt.startswith("joblib/"):
        reader, _bounded = open_decompressed(io.BytesIO(data), fmt.split("/", 1)[1], max_bytes, max_bytes)
        with reader:
            return _load_joblib(reader, None, mode, policy)
    if fmt == "torch":
        return _load_torch_zip(data, mode, policy, tensors)
    if fmt == "torch-legacy":
        return _load_torch_legacy(data, mode, policy, tensors)
    if fmt == "torchscript":
        return _load_torchscript(data)
    if fmt == "numpy":
        return _load_npy(data, mode, policy)
    if fmt == "npz":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {
                _array_name(info.filename): _load_npy(archive.read(info), mode, policy)
                for info in archive.infolist()
                if not info.filename.endswith("/")
            }
    if fmt == "safetensors":
        header = safetensors_file.read_header(data, len(data))
        arrays = safetensors_file.to_numpy(header, data)
        if not as_torch:
            return arrays
        bfloat16 = {entry.name for entry in header.tensors if entry.dtype == "BF16"}
        return {
            name: tensors.finish(array.view("<u2"), "bfloat16")
            if name in bfloat16
            else tensors.finish(array, None)
            for name, array in arrays.items()
        }
    if fmt == "onnx":
        return _load_onnx(data)
    raise ModelLoadFailed(f"a {fmt} file passed the scan, but no loader reads it")


def _unpickle(
    stream: BinaryIO,
    mode: Mode,
    policy: Policy,
    tensors: TensorBuilder | None,
    persistent: PersistentLoad | None = None,
) -> Any:
    with extension_cache_cleared():  # so that every EXT code meets find_class
        return RestrictedUnpickler(stream, mode, policy, tensors, persistent).load()


def _load_joblib(stream: BinaryIO, size: int | None, mode: Mode, policy: Policy) -> Any:
    resolve = restricted_resolver(
        mode, policy, None, lambda m, n: pickle.Unpickler.find_class(_IMPORTER, m, n)
    )

    def persistent(pid: object) -> object:
        raise pickle.UnpicklingError("joblib streams have no persistent ids")

    unpickler = JoblibUnpickler(
        stream,
        lambda module, name, _position: resolve(module, name),
        materialize=True,
        persistent=persistent,
        size=size,
    )
    with extension_cache_cleared():
        return unpickler.load()


#: An unpickler whose ``find_class`` imports as ``pickle.load`` would (the policy is checked first).
_IMPORTER = pickle.Unpickler(io.BytesIO(b""))


def _load_torch_zip(data: bytes, mode: Mode, policy: Policy, tensors: TensorBuilder) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        member = torch_layout.data_pickle(names)
        if member is None:
            raise ModelLoadFailed("the archive has no <folder>/data.pkl: torch.load could not read it either")
        top = member.rsplit("/", 1)[0]
        big_endian = _read_text(archive, f"{top}/byteorder") == "big"
        storages: dict[str, Storage] = {}

        def persistent(pid: object) -> object:
            kind, key, numel = _storage_pid(pid)
            if key not in storages:
                storages[key] = storage_from_bytes(kind, archive.read(f"{top}/data/{key}"), numel, big_endian)
            return storages[key]

        return _unpickle(io.BytesIO(archive.read(member)), mode, policy, tensors, persistent)


def _load_torch_legacy(data: bytes, mode: Mode, policy: Policy, tensors: TensorBuilder) -> Any:
    """The legacy format: the object pickle comes before the storages it names, so its end
    is found first (a pass that builds nothing), then the storages are read, then the object
    is unpickled with them."""
    stream = io.BytesIO(data)
    header = [_unpickle(stream, mode, policy, None) for _ in range(3)]
    system = header[2] if isinstance(header[2], dict) else {}
    big_endian = system.get("little_endian") is False
    object_start = stream.tell()
    kinds: dict[str, tuple[StorageType, int]] = {}

    def note(pid: object) -> object:
        kind, key, numel = _storage_pid(pid)
        kinds[key] = (kind, numel)
        return Storage(storage_from_bytes(kind, b"", 0).array, kind)

    _unpickle(stream, mode, policy, _Inert(as_torch=False), note)
    keys = _unpickle(stream, mode, policy, None)
    storages: dict[str, Storage] = {}
    for key in keys if isinstance(keys, list) else ():
        if key not in kinds:
            raise ModelLoadFailed(f"legacy storage {key!r} is not named by the object pickle")
        kind, _numel = kinds[key]
        count = int.from_bytes(stream.read(8), "little", signed=True)
        raw = stream.read(max(count, 0) * kind.dtype.itemsize)
        storages[key] = storage_from_bytes(kind, raw, count, big_endian)
    stream.seek(object_start)

    def persistent(pid: object) -> object:
        _kind, key, _numel = _storage_pid(pid)
        if key not in storages:
            raise ModelLoadFailed(f"legacy storage {key!r} is missing from the file")
        return storages[key]

    return _unpickle(stream, mode, policy, tensors, persistent)


class _Inert(TensorBuilder):
    """Tensor functions that build nothing: for the pass that only finds a pickle's end."""

    def rebuild_tensor(self, storage: object, offset: object, size: object, stride: object) -> Any:
        return None

    def rebuild_parameter(self, data: object, requires_grad: object, backward_hooks: object) -> Any:
        return None


def _storage_pid(pid: object) -> tuple[StorageType, str, int]:
    if (
        isinstance(pid, tuple)
        and len(pid) >= 5
        and pid[0] == "storage"
        and isinstance(pid[1], StorageType)
        and isinstance(pid[2], str)
        and isinstance(pid[4], int)
    ):
        return pid[1], pid[2], pid[4]
    raise ModelLoadFailed(f"a persistent id PyTorch would not write: {pid!r}"[:200])


def _read_text(archive: zipfile.ZipFile, name: str) -> str:
    try:
        return archive.read(name).decode("ascii", errors="replace").strip()
    except KeyError:
        return "little"


def _load_torchscript(data: bytes) -> Any:
    try:
        import torch
    except ImportError:
        raise ModelLoadFailed(
            "a TorchScript archive passed the scan; loading it needs torch (pip install torch)"
        ) from None
    return torch.jit.load(io.BytesIO(data), map_location="cpu")


def _load_npy(data: bytes, mode: Mode, policy: Policy) -> Any:
    array = npy_file.load_plain(data)
    if array is not None:
        return array
    return _unpickle(io.BytesIO(memoryview(data)[npy_file.header_end(data) :]), mode, policy, None)


def _array_name(member: str) -> str:
    """The key ``np.load`` gives an ``.npz`` member."""
    return member[:-4] if member.endswith(".npy") else member


def _load_onnx(data: bytes) -> Any:
    try:
        import onnx
    except ImportError:
        return data
    return onnx.load_model_from_string(data)
