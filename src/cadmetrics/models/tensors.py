"""PyTorch tensors rebuilt from their storages, as numpy arrays (or torch tensors over them).

``torch.save`` pickles a tensor as a call to ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, ...)`` over a storage kept apart (a zip member, or a legacy file's raw
section). Rebuilding that as a numpy view over the storage's bytes needs no torch at all, and
keeps what torch keeps: strides, storage offsets, tensors sharing one storage (views, not
copies). numpy checks that every view stays inside its storage, so a lying stride or offset
is an error, never a read outside the buffer. With ``torch`` chosen, each view becomes a
tensor with ``torch.from_numpy``, sharing the same memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from cadmetrics.models.torch_layout import RAW_BITS, STORAGE_DTYPES


class TensorFormatError(ValueError):
    """A tensor or storage the file describes inconsistently."""


@attrs.frozen
class StorageType:
    """What a storage type's global (``torch.FloatStorage``) becomes when loading."""

    qualified: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(STORAGE_DTYPES[self.qualified])


@attrs.define
class Storage:
    """A storage's elements, and the storage type they came from."""

    array: np.ndarray[Any, Any]
    kind: StorageType


def storage_from_bytes(
    kind: StorageType, raw: bytes | memoryview, numel: int, big_endian: bool = False
) -> Storage:
    """A writable storage of ``numel`` elements from ``raw``."""
    dtype = kind.dtype.newbyteorder(">") if big_endian and kind.dtype.itemsize > 1 else kind.dtype
    if numel < 0 or len(raw) < numel * dtype.itemsize:
        raise TensorFormatError(f"a storage of {numel} {kind.qualified} elements has {len(raw)} bytes")
    array = np.frombuffer(bytearray(raw[: numel * dtype.itemsize]), dtype=dtype)
    if dtype.byteorder == ">":
        array = array.astype(kind.dtype)
    return Storage(array, kind)


class TensorBuilder:
    """The functions a pickle's tensor globals resolve to, making numpy arrays or, with
    ``as_torch``, torch tensors."""

    def __init__(self, as_torch: bool) -> None:
        self.as_torch = as_torch

    def functions(self) -> dict[str, Callable[..., Any]]:
        return {
            "torch._utils._rebuild_tensor_v2": self.rebuild_tensor_v2,
            "torch._utils._rebuild_tensor": self.rebuild_tensor,
            "torch._utils._rebuild_parameter": self.rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": self.rebuild_parameter_with_state,
        }

    def rebuild_tensor(self, storage: object, offset: object, size: object, stride: object) -> Any:
        if not isinstance(storage, Storage):
            raise TensorFormatError(f"a tensor over {type(storage).__name__}, not a storage")
        shape, strides = _ints(size, "size"), _ints(stride, "stride")
        if len(shape) != len(strides) or not isinstance(offset, int) or offset < 0:
            raise TensorFormatError(f"a tensor of size {size!r}, stride {stride!r}, offset {offset!r}")
        base = storage.array
        itemsize = base.dtype.itemsize
        try:
            view = np.ndarray(
                shape,
                dtype=base.dtype,
                buffer=base,
                offset=offset * itemsize,
                strides=tuple(s * itemsize for s in strides),
            )
        except (TypeError, ValueError) as exc:
            raise TensorFormatError(f"a tensor that does not fit its storage: {exc}") from None
        raw_kind = RAW_BITS.get(storage.kind.qualified)
        if raw_kind is not None and not self.as_torch:
            extended = _extended_dtypes()  # imported only when such a tensor is met: it costs seconds
            if raw_kind in extended:
                view = view.view(extended[raw_kind])
        return self.finish(view, raw_kind)

    def rebuild_tensor_v2(  # noqa: PLR0917 (torch's own signature, called positionally)
        self,
        storage: object,
        offset: object,
        size: object,
        stride: object,
        requires_grad: object = False,
        backward_hooks: object = None,
        metadata: object = None,
    ) -> Any:
        tensor = self.rebuild_tensor(storage, offset, size, stride)
        if self.as_torch and requires_grad is True:
            tensor.requires_grad_(True)
        return tensor

    def rebuild_parameter(self, data: object, requires_grad: object, backward_hooks: object) -> Any:
        if not self.as_torch:
            return data
        import torch

        return torch.nn.Parameter(data, bool(requires_grad))

    def rebuild_parameter_with_state(
        self, data: object, requires_grad: object, backward_hooks: object, state: object
    ) -> Any:
        return self.rebuild_parameter(data, requires_grad, backward_hooks)

    def finish(self, view: np.ndarray[Any, Any], raw_kind: str | None) -> Any:
        """The array as the loader hands it out: itself, or a torch tensor over its memory
        (``raw_kind`` names the torch dtype of raw bits, bfloat16)."""
        if not self.as_torch:
            return view
        import torch

        tensor = torch.from_numpy(view)
        if raw_kind == "bfloat16":
            tensor = tensor.view(torch.bfloat16)
        return tensor


def _ints(value: object, what: str) -> tuple[int, ...]:
    if isinstance(value, tuple | list) and all(isinstance(n, int) and not isinstance(n, bool) for n in value):
        return tuple(value)
    raise TensorFormatError(f"a tensor's {what} is {value!r}"[:200])


@functools.cache
def _extended_dtypes() -> dict[str, Any]:
    try:
        import ml_dtypes
    except ImportError:
        return {}
    return {"bfloat16": ml_dtypes.bfloat16}


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None
