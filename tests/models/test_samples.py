"""The real files PyTorch wrote (../shared/model-samples): each found by its content, scanned as
PyTorch reads it, loaded with every tensor equal to the MANIFEST's truth, payloads blocked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics.errors import ModelBlocked, ModelLoadFailed
from cadmetrics.models import Mode, ModelLoader, Policy, scan
from cadmetrics.models.report import Role

FORMATS = {
    "edgeconv_state_dict.pt": "torch",
    "edgeconv_state_dict_legacy.pt": "torch-legacy",
    "edgeconv_checkpoint.pt": "torch",
    "edgeconv_module.pt": "torch",
    "edgeconv_torchscript.pt": "torchscript",
    "mixed_dtypes.pt": "torch",
    "shared_storage.pt": "torch",
    "edgeconv.safetensors": "safetensors",
    "edgeconv.onnx": "onnx",
    "payload_in_state_dict.pt": "torch",
    "payload_legacy.pt": "torch-legacy",
    "payload_member_renamed.pt": "torch",
}


def manifest(model_samples: Path) -> dict[str, Any]:
    files: dict[str, Any] = json.loads((model_samples / "MANIFEST.json").read_text(encoding="utf-8"))["files"]
    return files


def flatten(value: object, prefix: str = "") -> Iterator[tuple[str, np.ndarray[Any, Any]]]:
    """Every array in a nested structure, named as the MANIFEST names tensors."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}.{index}")
    elif isinstance(value, np.ndarray):
        yield prefix, value


def numpy_dtype(torch_dtype: str) -> Any:
    """What a torch dtype loads as: bfloat16 as raw 16-bit words, or ml_dtypes' type."""
    if torch_dtype != "bfloat16":
        return torch_dtype
    try:
        import ml_dtypes
    except ImportError:
        return "uint16"
    return ml_dtypes.bfloat16


def test_the_samples_are_all_known(model_samples: Path) -> None:
    assert set(manifest(model_samples)) == set(FORMATS)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_sample_is_found_by_its_content(model_samples: Path, name: str) -> None:
    data = (model_samples / name).read_bytes()
    assert scan(data, "audit").format == FORMATS[name]  # the bytes alone, no file name


@pytest.mark.parametrize("mode", [Mode.BLOCKLIST, Mode.ALLOWLIST])
@pytest.mark.parametrize(
    "name", sorted(n for n in FORMATS if not n.startswith(("payload", "edgeconv_module")))
)
def test_benign_samples_pass_both_blocking_modes(model_samples: Path, name: str, mode: Mode) -> None:
    report = scan(model_samples / name, mode)
    assert not report.blocked, report.render()
    assert report.sha256 == manifest(model_samples)[name]["sha256"]


def test_a_whole_pickled_module_passes_the_blocklist_and_the_allowlist_names_what_to_admit(
    model_samples: Path,
) -> None:
    path = model_samples / "edgeconv_module.pt"
    assert not scan(path, "blocklist").blocked
    refused = scan(path, "allowlist")
    assert refused.block_reasons == ("not_allowlisted",)
    assert "torch.nn.modules.conv.Conv2d" in refused.to_allow
    assert "__main__.EdgeConvNet" in refused.to_allow
    assert "torch._utils._rebuild_tensor_v2" not in refused.to_allow  # tensors are admitted
    with pytest.raises(ModelBlocked, match=r"Policy\(\)\.extend\(allow=\[.*torch\.nn\.modules\.conv\.Conv2d"):
        ModelLoader(tensors="numpy").load(path)
    widened = Policy().extend(allow=refused.to_allow)
    assert not scan(path, "allowlist", widened).blocked


@pytest.mark.parametrize("mode", [Mode.BLOCKLIST, Mode.ALLOWLIST])
@pytest.mark.parametrize("name", sorted(n for n in FORMATS if n.startswith("payload")))
def test_payload_samples_are_blocked_in_both_modes(model_samples: Path, name: str, mode: Mode) -> None:
    report = scan(model_samples / name, mode)
    assert report.blocked
    assert any(ref.qualified == "posix.system" and ref.reason == "dangerous_global" for ref in report.globals)
    with pytest.raises(ModelBlocked):
        ModelLoader(mode=mode, tensors="numpy").load(model_samples / name)


def test_a_pickle_member_renamed_is_still_scanned(model_samples: Path) -> None:
    report = scan(model_samples / "payload_member_renamed.pt")
    assert report.members == ("archive/weights.bin",)
    roles = {part.name: part.role for part in report.parts}
    assert roles["archive/weights.bin"] is Role.PICKLE
    assert roles["archive/data/0"] is Role.STORAGE
    assert roles["archive/version"] is Role.METADATA


def test_torchscript_source_is_source_and_its_pickles_are_scanned(model_samples: Path) -> None:
    report = scan(model_samples / "edgeconv_torchscript.pt", "blocklist")
    roles = {part.name: part.role for part in report.parts}
    assert roles["edgeconv_torchscript/code/__torch__.py"] is Role.SOURCE
    assert roles["edgeconv_torchscript/code/__torch__.py.debug_pkl"] is Role.PICKLE
    assert "edgeconv_torchscript/constants.pkl" in report.members
    assert not report.problems


@pytest.mark.parametrize("name", sorted(n for n, e in FORMATS.items() if e in ("torch", "torch-legacy")))
def test_tensors_load_as_numpy_equal_to_the_manifest(model_samples: Path, name: str) -> None:
    truth = manifest(model_samples)[name]
    if "tensors" not in truth:
        pytest.skip(f"{name} holds no tensors torch.load(weights_only=True) reads")
    model = ModelLoader(tensors="numpy").load(model_samples / name)
    loaded = dict(flatten(model))
    assert set(loaded) == set(truth["tensors"])
    for key, (dtype, shape, digest) in truth["tensors"].items():
        array = loaded[key]
        assert list(array.shape) == shape, key
        assert hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() == digest, key
        assert array.dtype == np.dtype(numpy_dtype(dtype)), key


def test_strided_views_and_shared_storages_stay_views(model_samples: Path) -> None:
    shared = ModelLoader(tensors="numpy").load(model_samples / "shared_storage.pt")
    arrays = list(shared.values())
    assert len(arrays) == 3
    assert all(np.shares_memory(arrays[0], other) for other in arrays[1:])
    mixed = ModelLoader(tensors="numpy").load(model_samples / "mixed_dtypes.pt")
    assert any(not array.flags.c_contiguous for array in mixed.values())  # the transpose, as stored


def test_safetensors_load_as_the_reference_reader_reads_them(model_samples: Path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    truth = safetensors_numpy.load_file(str(model_samples / "edgeconv.safetensors"))
    tensors = ModelLoader(tensors="numpy").load(model_samples / "edgeconv.safetensors")
    assert set(tensors) == set(truth)
    for key, array in tensors.items():
        assert array.dtype == truth[key].dtype and np.array_equal(array, truth[key]), key


def test_onnx_loads_as_a_checked_model(model_samples: Path) -> None:
    loaded = ModelLoader().load(model_samples / "edgeconv.onnx")
    raw = (model_samples / "edgeconv.onnx").read_bytes()
    assert loaded == raw or type(loaded).__name__ == "ModelProto"


def test_torchscript_needs_torch_to_load(model_samples: Path) -> None:
    pytest.importorskip("numpy")
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ModelLoadFailed, match="needs torch"):
            ModelLoader(mode="blocklist").load(model_samples / "edgeconv_torchscript.pt")
    else:
        module = ModelLoader(mode="blocklist").load(model_samples / "edgeconv_torchscript.pt")
        assert hasattr(module, "forward")


def test_with_torch_the_tensors_are_what_torch_load_gives(model_samples: Path) -> None:
    torch = pytest.importorskip("torch")
    for name, found in FORMATS.items():
        if found not in ("torch", "torch-legacy") or name.startswith(("payload", "edgeconv_module")):
            continue
        ours = ModelLoader(tensors="torch").load(model_samples / name)
        theirs = torch.load(model_samples / name, weights_only=True)
        flat_ours, flat_theirs = dict(flatten_tensors(ours, torch)), dict(flatten_tensors(theirs, torch))
        assert set(flat_ours) == set(flat_theirs), name
        for key, tensor in flat_theirs.items():
            mine = flat_ours[key]
            assert mine.dtype == tensor.dtype and mine.stride() == tensor.stride(), (name, key)
            assert torch.equal(mine, tensor), (name, key)


def flatten_tensors(value: object, torch: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten_tensors(item, torch, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from flatten_tensors(item, torch, f"{prefix}.{index}")
    elif isinstance(value, torch.Tensor):
        yield prefix, value


def test_with_torch_safetensors_bfloat16_loads_as_bfloat16(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    header = json.dumps({"b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "b.safetensors"
    raw = np.array([0x3F80, 0x4000], dtype="<u2").tobytes()  # 1.0 and 2.0 in bfloat16
    path.write_bytes(len(header).to_bytes(8, "little") + header + raw)
    loaded = ModelLoader(tensors="torch").load(path)
    assert loaded["b"].dtype == torch.bfloat16
    assert loaded["b"].tolist() == [1.0, 2.0]
