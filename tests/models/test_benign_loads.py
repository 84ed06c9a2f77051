"""Every benign file the frameworks write loads through ``ModelLoader`` in allowlist mode (the
default) and gives back what the framework's own loader gives: the same arrays, bit for bit
and of the same dtype, or a model that predicts the same."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics.models import ModelLoader
from cadmetrics.models.interface import Interface
from tests.models import benign

#: One loader for every file (building one reads the contract), weights as numpy arrays.
LOADER = ModelLoader(interface=Interface(methods=()), tensors="numpy")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("benign-loads")


def _arrays(loaded: Any, file: benign.BenignFile) -> dict[str, np.ndarray[Any, Any]]:
    if file.kind == "npy":
        return {"": loaded}
    if file.kind == "onnx":
        if isinstance(loaded, bytes):
            pytest.skip("the onnx package is not installed: the model loads as its checked bytes")
        numpy_helper = importlib.import_module("onnx.numpy_helper")
        return {
            t.name: numpy_helper.to_array(t, base_dir=str(file.path.parent)) for t in loaded.graph.initializer
        }
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize("spec", benign.SPECS, ids=lambda s: s.name)
def test_every_benign_file_loads_as_its_framework_reads_it(spec: benign.BenignSpec, folder: Path) -> None:
    for module in spec.requires:
        pytest.importorskip(module)
    file = spec.make(folder)
    for module in file.requires:
        pytest.importorskip(module)
    loaded = LOADER.load(file.path)
    expected = file.expected
    if isinstance(expected, benign.Arrays):
        arrays = _arrays(loaded, file)
        assert arrays.keys() == expected.arrays.keys()
        for name, array in expected.arrays.items():
            assert arrays[name].dtype == array.dtype, name
            assert np.array_equal(arrays[name], array), name
    elif isinstance(expected, benign.Prediction):
        assert np.array_equal(loaded.predict(expected.X), expected.y)
    else:
        torch = pytest.importorskip("torch")
        assert np.allclose(loaded(torch.from_numpy(expected.x)).numpy(), expected.y)
