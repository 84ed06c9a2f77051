"""Benign model files, written by the frameworks themselves into a folder at test time.

``generate(folder)`` fits small scikit-learn models (a forest, a pipeline, a
HistGradientBoosting) and saves each with ``pickle`` and with ``joblib.dump`` (uncompressed, each
compressor joblib has, ``compress=3``); LightGBM and XGBoost models with ``joblib.dump`` when
those are installed; numpy ``.npy`` (float, int, structured) and ``.npz`` (``np.savez`` and
``np.savez_compressed``); safetensors (``safetensors.numpy.save_file``, every dtype it writes);
small ONNX graphs (one with its initializers inline, one with external data inside the folder)
when ``onnx`` is installed; and PyTorch files (zip, legacy, TorchScript) from the torch-format
writer of ``tests.models.containers``.

``SPECS`` names every file before any is written (tests parametrize over it); each
``BenignFile`` carries what its framework's loader must return, and ``matches`` checks that it
does, so a test can check that the file is real as well as that a scanner lets it through.
"""

from __future__ import annotations

import collections
import functools
import importlib
import importlib.util
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np

from tests.models.containers import (
    JOBLIB_COMPRESSORS,
    TorchTensor,
    state_dict,
    torch_legacy_save,
    torch_save,
    torchscript_archive,
)

Kind = Literal["pickle", "joblib", "npy", "npz", "safetensors", "onnx", "torch", "torchscript"]


@attrs.frozen(eq=False)
class Arrays:
    """The arrays the loader returns, by name (``""`` for a lone ``.npy`` array)."""

    arrays: Mapping[str, np.ndarray]


@attrs.frozen(eq=False)
class Prediction:
    """A model: ``predict(X)`` of the loaded model must equal ``y``."""

    X: np.ndarray
    y: np.ndarray


@attrs.frozen(eq=False)
class Outputs:
    """A TorchScript module: its forward on ``x`` must equal ``y``."""

    x: np.ndarray
    y: np.ndarray


Expected = Arrays | Prediction | Outputs


@attrs.frozen(eq=False)
class BenignFile:
    path: Path
    kind: Kind
    expected: Expected
    requires: tuple[str, ...] = ()  # modules needed to load it

    @property
    def name(self) -> str:
        return self.path.name


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


RNG = np.random.default_rng(11)
X = RNG.normal(size=(60, 4))
Y = (X[:, 0] - X[:, 2] > 0).astype(np.int64)


@functools.cache
def fitted(name: str) -> Any:
    """A small fitted model, fitted once per process."""
    if name == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(X, Y)
    if name == "pipeline":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    if name == "histgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=8, random_state=0).fit(X, Y)
    if name == "lightgbm":
        lightgbm = importlib.import_module("lightgbm")
        return lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, Y)
    if name == "xgboost":
        xgboost = importlib.import_module("xgboost")
        return xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, Y)
    raise ValueError(name)


@attrs.frozen
class BenignSpec:
    """How to write one benign file: ``write(path)`` writes it (and any companion file beside
    it) and returns what its loader must give back."""

    name: str
    kind: Kind
    write: Callable[[Path], Expected]
    requires: tuple[str, ...] = ()  # modules needed to write it
    load_requires: tuple[str, ...] = ()  # and, besides those, to load it

    def available(self) -> bool:
        return all(installed(m) for m in self.requires)

    def make(self, folder: Path) -> BenignFile:
        path = folder / self.name
        return BenignFile(path, self.kind, self.write(path), self.requires + self.load_requires)


def _pickled(model: str) -> Callable[[Path], Expected]:
    def write(path: Path) -> Expected:
        with path.open("wb") as f:
            pickle.dump(fitted(model), f)
        return Prediction(X, fitted(model).predict(X))

    return write


def _joblib_dumped(model: str, compress: object) -> Callable[[Path], Expected]:
    def write(path: Path) -> Expected:
        importlib.import_module("joblib").dump(fitted(model), path, compress=compress)
        return Prediction(X, fitted(model).predict(X))

    return write


def _model_specs() -> list[BenignSpec]:
    specs: list[BenignSpec] = []
    sklearn = ("sklearn", "joblib")
    for model in ("forest", "pipeline", "histgb"):
        specs.append(BenignSpec(f"{model}.pkl", "pickle", _pickled(model), sklearn))
    variants: list[tuple[str, object, tuple[str, ...]]] = [(".joblib", 0, ()), (".compress3.joblib", 3, ())]
    variants += [(f".{m}.joblib", (m, 3), ("lz4",) if m == "lz4" else ()) for m in JOBLIB_COMPRESSORS]
    for model, needs in (
        ("forest", sklearn),
        ("pipeline", sklearn),
        ("histgb", sklearn),
        ("lightgbm", (*sklearn, "lightgbm")),
        ("xgboost", (*sklearn, "xgboost")),
    ):
        specs += [
            BenignSpec(f"{model}{suffix}", "joblib", _joblib_dumped(model, compress), needs + extra)
            for suffix, compress, extra in variants
        ]
    return specs


FLOATS = np.linspace(0.0, 1.0, 30).reshape(5, 6)
INTS = np.arange(-8, 8, dtype=np.int32).reshape(4, 4)
RECORDS = np.array(
    [(1, 0.5, b"edge"), (2, 1.5, b"face")], dtype=[("id", "<i8"), ("area", "<f4"), ("kind", "S4")]
)


def _npy(array: np.ndarray) -> Callable[[Path], Expected]:
    def write(path: Path) -> Expected:
        np.save(path, array)
        return Arrays({"": array})

    return write


def _npz(save: Callable[..., None]) -> Callable[[Path], Expected]:
    def write(path: Path) -> Expected:
        members: dict[str, np.ndarray] = {"weights": FLOATS, "indices": INTS, "records": RECORDS}
        save(path, **members)
        return Arrays(members)

    return write


def _write_safetensors(path: Path) -> Expected:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    tensors: dict[str, np.ndarray] = {
        "encoder.weight": rng.normal(size=(6, 4)).astype(np.float32),
        "encoder.bias": np.zeros(6, dtype=np.float64),
        "half": rng.normal(size=5).astype(np.float16),
        "bfloat16_words": np.array([0x3F80, 0x4000, 0xBF80], dtype=np.uint16),  # bf16 as raw words
        "steps": np.array([3, 1, 4], dtype=np.int64),
        "ids": np.arange(4, dtype=np.int32),
        "shorts": np.array([-2, 7], dtype=np.int16),
        "bytes": np.arange(5, dtype=np.int8),
        "ubytes": np.arange(5, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "scalar": np.array(2.5, dtype=np.float32),
    }
    save_file(tensors, str(path), metadata={"format": "np"})
    return Arrays(tensors)


ONNX_WEIGHT = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
ONNX_BIAS = np.array([0.5, -0.5, 0.25], dtype=np.float32)


def _onnx_model() -> Any:
    onnx = importlib.import_module("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["xw"]), helper.make_node("Add", ["xw", "bias"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(ONNX_WEIGHT, "weight"), numpy_helper.from_array(ONNX_BIAS, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _write_onnx(external: bool) -> Callable[[Path], Expected]:
    def write(path: Path) -> Expected:
        onnx = importlib.import_module("onnx")
        if external:
            onnx.save_model(
                _onnx_model(),
                str(path),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=f"{path.name}.data",  # beside the model, inside the folder
                size_threshold=0,
            )
        else:
            onnx.save_model(_onnx_model(), str(path))
        return Arrays({"weight": ONNX_WEIGHT, "bias": ONNX_BIAS})

    return write


MIXED: dict[str, np.ndarray] = {
    "f16": np.linspace(0, 1, 6, dtype=np.float16),
    "f64": np.arange(3.0),
    "i8": np.array([-1, 2], dtype=np.int8),
    "u8": np.arange(4, dtype=np.uint8),
    "flag": np.array([True, False]),
}


def _write_torch(legacy: bool) -> Callable[[Path], Expected]:
    def write(path: Path) -> Expected:
        tensors = state_dict()
        path.write_bytes(torch_legacy_save(tensors) if legacy else torch_save(tensors, path.stem))
        return Arrays({name: t.array for name, t in tensors.items() if isinstance(t, TorchTensor)})

    return write


def _write_mixed(path: Path) -> Expected:
    path.write_bytes(
        torch_save(collections.OrderedDict((k, TorchTensor(a)) for k, a in MIXED.items()), path.stem)
    )
    return Arrays(MIXED)


def _write_torchscript(path: Path) -> Expected:
    path.write_bytes(torchscript_archive())
    x = np.array([1.0, 1.0, 2.0], dtype=np.float32)
    return Outputs(x, x * np.array([1.0, 2.0, 3.0], dtype=np.float32))


SPECS: list[BenignSpec] = [
    *_model_specs(),
    BenignSpec("float.npy", "npy", _npy(FLOATS)),
    BenignSpec("int.npy", "npy", _npy(INTS)),
    BenignSpec("structured.npy", "npy", _npy(RECORDS)),
    BenignSpec("savez.npz", "npz", _npz(np.savez)),
    BenignSpec("savez_compressed.npz", "npz", _npz(np.savez_compressed)),
    BenignSpec("model.safetensors", "safetensors", _write_safetensors, ("safetensors",)),
    BenignSpec("linear.onnx", "onnx", _write_onnx(external=False), ("onnx",)),
    BenignSpec("linear_external.onnx", "onnx", _write_onnx(external=True), ("onnx",)),
    BenignSpec("edgeconv.pt", "torch", _write_torch(legacy=False), load_requires=("torch",)),
    BenignSpec("edgeconv_legacy.pt", "torch", _write_torch(legacy=True), load_requires=("torch",)),
    BenignSpec("mixed_dtypes.pt", "torch", _write_mixed, load_requires=("torch",)),
    BenignSpec("scaler_scripted.pt", "torchscript", _write_torchscript, load_requires=("torch",)),
]


def generate(folder: Path) -> list[BenignFile]:
    """Write every benign file whose writer is installed into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [spec.make(folder) for spec in SPECS if spec.available()]


# -- what the frameworks read back ------------------------------------------------------------


def _load_arrays(file: BenignFile) -> dict[str, np.ndarray]:
    if file.kind == "npy":
        return {"": np.load(file.path, allow_pickle=False)}
    if file.kind == "npz":
        with np.load(file.path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    if file.kind == "safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(file.path)))
    if file.kind == "onnx":
        onnx = importlib.import_module("onnx")
        proto = onnx.load(str(file.path))  # resolves external data beside the model
        return {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    if file.kind == "torch":
        torch = importlib.import_module("torch")
        loaded = torch.load(file.path, weights_only=True)
        return {name: tensor.numpy() for name, tensor in loaded.items()}
    raise ValueError(file.kind)


def _load_model(file: BenignFile) -> Callable[[np.ndarray], np.ndarray]:
    if file.kind == "pickle":
        with file.path.open("rb") as f:
            model = pickle.load(f)
    elif file.kind == "joblib":
        model = importlib.import_module("joblib").load(file.path)
    elif file.kind == "torchscript":
        torch = importlib.import_module("torch")
        module = torch.jit.load(str(file.path))
        return lambda x: np.asarray(module(torch.from_numpy(x)).numpy())
    else:
        raise ValueError(file.kind)
    predict: Callable[[np.ndarray], np.ndarray] = model.predict
    return predict


def matches(file: BenignFile) -> bool:
    """Whether the framework's own loader returns what ``file.expected`` says."""
    expected = file.expected
    if isinstance(expected, Arrays):
        loaded = _load_arrays(file)
        return loaded.keys() == expected.arrays.keys() and all(
            np.array_equal(loaded[name], array) and loaded[name].dtype == array.dtype
            for name, array in expected.arrays.items()
        )
    if isinstance(expected, Prediction):
        return bool(np.array_equal(_load_model(file)(expected.X), expected.y))
    return bool(np.allclose(_load_model(file)(expected.x), expected.y))
