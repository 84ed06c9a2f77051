"""Record the exact globals that real model pickles name, and write the scanner's allowlist data.

The allowlist mode of the pickle scanner admits a global only when it is named exactly in
``src/cadmetrics/models/data/allowlist.txt``. Whole packages are never admitted: a prefix such as
``sklearn`` also admits every helper the package defines or imports (file writers, subprocess
runners, nested loaders), which is how prefix allowlists are bypassed. So the list is derived
from what real libraries actually write: this script fits small models, pickles them with
protocols 2, 4 and 5 and with ``joblib.dump``, and records every global each stream names by
walking its opcodes. Every stream is also loaded once through an unpickler that records what it
resolves, so an opcode the walk misreads fails the run instead of silently shrinking the list.

PyTorch objects are not pickled: torch is not a dependency of this project, and what a checkpoint
may name is already decided by ``torch.load(weights_only=True)``. Those globals are read from the
installed torch (``_get_allowed_globals`` and friends in ``torch/_weights_only_unpickler.py``) by
running this same file with ``--torch-worker`` under an interpreter that has torch
(``--torch-python``).

Each global is resolved, classified (``class``, ``reconstructor``, ``function`` and, for torch's
dtypes and quantisation schemes, which are neither types nor callables, ``constant``) and
checked. Excluded, and reported on stderr with the reason: names that do not resolve, modules
(package prefixes), builtins other than plain data types, indirections such as
``functools.partial``, and callables, or classes whose construction or ``__setstate__``, whose
Python source (followed a few helpers deep) writes files, runs code, imports by name, spawns
processes, opens connections or unpickles again. A class counts through its constructor because
REDUCE can call any admitted class with arguments of the file's choosing.

Usage::

    .venv/bin/python tools/record_pickled_globals.py --torch-python path/to/torch-venv/bin/python
"""

from __future__ import annotations

import _compat_pickle
import argparse
import ast
import contextlib
import dataclasses
import functools
import importlib
import importlib.metadata
import inspect
import io
import json
import pickle
import pickletools
import platform
import re
import signal
import subprocess
import sys
import textwrap
import time
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "cadmetrics" / "models" / "data" / "allowlist.txt"

PROTOCOLS = (2, 4, 5)
KINDS = ("class", "rebuild", "reconstructor", "function", "constant")
LIBRARIES = ("stdlib", "numpy", "scipy", "sklearn", "joblib", "lightgbm", "xgboost", "torch")

#: The only builtins a model pickle may name: plain data types. Everything else in ``builtins``
#: (getattr, eval, type, open, ...) is a way to reach or run code.
PLAIN_BUILTINS = frozenset(
    {
        "set",
        "frozenset",
        "list",
        "dict",
        "tuple",
        "bytearray",
        "bytes",
        "complex",
        "int",
        "float",
        "bool",
        "str",
        "slice",
        "range",
        "object",
    }
)

#: Functions whose job is to rebuild an object from pickled state, by exact name.
RECONSTRUCTORS = frozenset(
    {
        "copyreg._reconstructor",
        "_codecs.encode",  # protocols 0-2 write bytes as _codecs.encode(latin-1 text)
        "numpy._core.multiarray.scalar",
        "numpy._core._internal._convert_to_stringdtype_kwargs",  # StringDType's __reduce__
        "torch.serialization._get_layout",
    }
)

#: ... and by the shape of their name: numpy's _reconstruct/_frombuffer/_DType_reconstruct,
#: numpy.random._pickle.__*_ctor, Cython's __pyx_unpickle_*, torch._utils._rebuild_*,
#: sklearn's binary trees' newObj.
RECONSTRUCTOR_NAME = re.compile(
    r"(_reconstruct\w*|_\w*reconstruct|_mareconstruct|_frombuffer|__pyx_unpickle_\w+"
    r"|_rebuild\w*|__\w+_ctor|newObj|_unpickle\w*)"
)

#: TorchScript's data.pkl rebuilds typed lists through these (torch/jit/_pickle.py).
TORCHSCRIPT_PICKLE_MODULE = "torch.jit._pickle"

#: Modules whose functions, called at all, touch processes, files, imports, the network or
#: nested deserialisation.
RISKY_MODULES = frozenset(
    {
        "os",
        "subprocess",
        "importlib",
        "pickle",
        "_pickle",
        "cPickle",
        "shutil",
        "socket",
        "urllib",
        "requests",
        "http",
        "runpy",
        "multiprocessing",
        "tempfile",
        "marshal",
    }
)

#: Callees that open files, run code, import by name, spawn processes, connect or unpickle.
RISKY_CALLEES = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "__import__",
        "import_module",
        "system",
        "popen",
        "Popen",
        "spawn",
        "fork",
        "urlopen",
        "connect",
        "load",
        "loads",
        "unlink",
        "remove",
        "rmtree",
        "mkdir",
        "makedirs",
    }
)

#: Callee name fragments that write or reach the network: save_npz, dump_model, write_text,
#: set_network, ...
RISKY_FRAGMENTS = ("save", "dump", "write", "network", "socket")

#: Calls into risky modules that only compute: path strings, never the file system.
PURE_CALLS = frozenset(
    {
        "os.fspath",
        "os.fsencode",
        "os.fsdecode",
        "os.path.join",
        "os.path.expanduser",
        "os.environ.get",  # reads configuration (sklearn's array API switch), nothing else
        "os.getenv",
    }
)

#: Globals that pass every other check but only bind a callable to stored arguments for a
#: later call: running code by indirection. The scanner's blocklist has them too.
INDIRECTIONS = frozenset({"functools.partial", "functools.partialmethod", "operator.methodcaller"})

#: ``load``/``loads`` of these modules parse text and build no objects by name.
PLAIN_PARSERS = frozenset({"json"})

#: How many levels of helpers (``self.method()``, functions of the same package called by name)
#: the source check follows from a function or an unpickling method.
CALL_DEPTH = 2

#: The methods an unpickler reaches on a class: construction through copyreg._reconstructor,
#: NEWOBJ or REDUCE, and BUILD's __setstate__.
UNPICKLING_METHODS = ("__new__", "__init__", "__setstate__")
#: What rebuilding an instance runs (NEWOBJ calls ``__new__``, BUILD ``__setstate__``): a class
#: whose constructor alone is risky is admitted as ``rebuild``, and calling it is a finding.
REBUILDING_METHODS = ("__new__", "__setstate__")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One line of the data file."""

    name: str
    kind: str
    library: str

    def line(self) -> str:
        return f"{self.name}\t{self.kind}\t{self.library}"


@dataclasses.dataclass
class Record:
    """Every global seen, where it was seen, and what was left out of the list and why."""

    seen: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def add(self, names: set[str], source: str) -> None:
        for name in names:
            self.seen.setdefault(name, set()).add(source)


# --- reading pickle streams ---------------------------------------------------------------------


class _Mark:
    """The MARK opcode's place on the simulated stack."""


@dataclasses.dataclass(frozen=True)
class _Global:
    """A global pushed on the simulated stack."""

    module: str
    name: str


class StreamError(Exception):
    """A stream the opcode walk cannot account for: the run stops rather than record too little."""


_MARK = _Mark()
_OTHER = object()
_STRING_OPCODES = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
)


def _index(arg: object) -> int:
    if not isinstance(arg, int):
        raise StreamError(f"memo index {arg!r} is not an integer")
    return arg


def globals_in_stream(data: bytes) -> set[tuple[str, str]]:
    """Every global the pickle ``data`` names, as (module, qualname) written in the stream.

    The stack is simulated just far enough to resolve what the unpickler would: GLOBAL and INST
    name theirs inline; STACK_GLOBAL takes the two strings on top of the stack, which protocol 4
    writers often fetch back from the memo (BINGET/LONG_BINGET/GET of a memoised string) instead
    of writing them again; OBJ takes a class pushed earlier by one of those, so it is already
    counted. Extension codes (EXT1/2/4) name globals through a process-wide registry that no
    library used here registers, so they fail the run rather than go unrecorded.
    """
    found: set[tuple[str, str]] = set()
    stack: list[object] = []
    memo: dict[int, object] = {}
    for opcode, arg, _pos in pickletools.genops(data):
        name = opcode.name
        if name == "MARK":
            stack.append(_MARK)
            continue
        if name in {"PUT", "BINPUT", "LONG_BINPUT"}:
            memo[_index(arg)] = stack[-1]
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
            continue
        if name in {"GET", "BINGET", "LONG_BINGET"}:
            stack.append(memo[_index(arg)])
            continue
        if name in {"EXT1", "EXT2", "EXT4"}:
            raise StreamError(f"extension code {arg} names a global through copyreg's registry")
        pushed: object = _OTHER
        if name == "STACK_GLOBAL":
            qualname, module = stack.pop(), stack.pop()
            if not isinstance(module, str) or not isinstance(qualname, str):
                raise StreamError("STACK_GLOBAL without two strings on the stack")
            found.add((module, qualname))
            stack.append(_Global(module, qualname))
            continue
        if name in {"GLOBAL", "INST"}:
            module, qualname = str(arg).split(" ", 1)
            found.add((module, qualname))
            pushed = _Global(module, qualname)
        elif name in _STRING_OPCODES:
            pushed = str(arg)
        before = opcode.stack_before
        if pickletools.markobject in before:
            top_mark = len(stack) - 1 - stack[::-1].index(_MARK)
            del stack[top_mark:]
            below = len(before) - 2  # what lies under the mark: APPENDS' list, SETITEMS' dict
        elif name == "POP" and stack and stack[-1] is _MARK:
            below = 1
        else:
            below = len(before)
        if below:
            del stack[-below:]
        stack.extend([pushed] * len(opcode.stack_after))
    return found


class _RecordingUnpickler(pickle.Unpickler):
    """Loads a stream and notes each global it resolves: the cross-check of the opcode walk."""

    def __init__(self, file: io.BytesIO, found: set[tuple[str, str]]) -> None:
        super().__init__(file)
        self.found = found

    def find_class(self, module: str, name: str, /) -> Any:
        self.found.add((module, name))
        return super().find_class(module, name)


def _checked(data: bytes, label: str) -> set[tuple[str, str]]:
    walked = globals_in_stream(data)
    resolved: set[tuple[str, str]] = set()
    _RecordingUnpickler(io.BytesIO(data), resolved).load()
    if not resolved <= walked:
        raise StreamError(f"{label}: the opcode walk missed {sorted(resolved - walked)}")
    return walked


@contextlib.contextmanager
def _joblib_arrays_left_out(nested: list[bytes]) -> Iterator[None]:
    """``joblib.dump`` writes each array's raw bytes into the stream right after its
    NumpyArrayWrapper, so the file is not a pickle that ``pickletools`` can walk. While this is
    active the bytes are left out (they name no globals), and object arrays, which joblib writes
    as a nested protocol 5 pickle, are collected in ``nested`` to be walked on their own."""
    from joblib import numpy_pickle

    wrapper = numpy_pickle.NumpyArrayWrapper
    original = wrapper.write_array

    def write_array(self: Any, array: Any, pickler: Any) -> None:
        if array.dtype.hasobject:
            nested.append(pickle.dumps(array, protocol=5))

    wrapper.write_array = write_array
    try:
        yield
    finally:
        wrapper.write_array = original


def _joblib_globals(obj: object, label: str) -> set[tuple[str, str]]:
    import joblib
    from joblib import numpy_pickle

    real = io.BytesIO()
    joblib.dump(obj, real)
    real.seek(0)
    resolved: set[tuple[str, str]] = set()

    class Recording(numpy_pickle.NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str, /) -> Any:
            resolved.add((module, name))
            return super().find_class(module, name)

    Recording("", real, ensure_native_byte_order=False).load()

    nested: list[bytes] = []
    stripped = io.BytesIO()
    with _joblib_arrays_left_out(nested):
        joblib.dump(obj, stripped)
    walked = globals_in_stream(stripped.getvalue())
    for payload in nested:
        walked |= globals_in_stream(payload)
    if not resolved <= walked:
        raise StreamError(f"{label} (joblib): the opcode walk missed {sorted(resolved - walked)}")
    return walked


def unpickler_spelling(module: str, name: str) -> str:
    """``module.name`` as the unpickler resolves it: protocols 0-2 write Python 2 names
    (``__builtin__.set``, ``copy_reg._reconstructor``) that ``pickle`` maps back, and the
    scanner judges the mapped name, so that is the one to list."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[module, name]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def record_object(record: Record, label: str, obj: object) -> bool:
    """Pickle ``obj`` every way a model file is written and record the globals named."""
    try:
        found: set[tuple[str, str]] = set()
        for protocol in PROTOCOLS:
            found |= _checked(pickle.dumps(obj, protocol=protocol), f"{label} (protocol {protocol})")
        found |= _joblib_globals(obj, label)
    except StreamError:
        raise
    except Exception as error:  # an object this library version cannot round-trip
        record.skipped[label] = f"could not pickle: {_brief(error)}"
        return False
    record.add({unpickler_spelling(module, name) for module, name in found}, label)
    return True


# --- objects to pickle --------------------------------------------------------------------------


def _rng() -> Any:
    import numpy as np

    return np.random.default_rng(0)


def numpy_objects() -> Iterator[tuple[str, object]]:
    """Arrays of many dtypes and layouts, masked arrays, matrices, scalars and random generators."""
    import numpy as np

    rng = _rng()
    dtypes = [
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "longdouble",
        "complex64",
        "complex128",
        "clongdouble",
        ">i4",
        "<f8",
        "U8",
        "S8",
        "V8",
        "O",
        "datetime64[ns]",
        "datetime64[D]",
        "timedelta64[s]",
    ]
    for dtype in dtypes:
        array = (rng.normal(size=(3, 4)) * 10).astype(dtype)
        yield f"numpy array {dtype}", array
        yield f"numpy array {dtype}, Fortran order", np.asfortranarray(array)
        yield f"numpy scalar {dtype}", array.flat[0]
    yield "numpy array, non-contiguous", np.arange(20.0)[::3]
    yield "numpy array, 0-d", np.array(3.5)
    yield "numpy array, empty", np.empty((0, 3))
    structured = np.dtype([("id", "<i8"), ("name", "U4"), ("xy", "<f4", (2,)), ("nested", [("a", "u1")])])
    yield "numpy structured array", np.zeros(3, dtype=structured)
    yield "numpy structured scalar", np.zeros(3, dtype=structured)[0]
    yield (
        "numpy aligned structured array",
        np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<f8")], align=True)),
    )
    yield "numpy record array", np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
    yield "numpy object array of mixed values", np.array([1, "a", None, 2.5, (1, 2)], dtype=object)
    yield "numpy StringDType array", np.array(["a", "bc"], dtype=np.dtypes.StringDType())
    yield "numpy matrix", np.asmatrix(np.eye(2))
    yield "numpy masked array", np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    yield "numpy masked array, structured", np.ma.masked_array(np.zeros(2, dtype=structured))
    yield "numpy masked constant", np.ma.masked
    yield "numpy dtype objects", [np.dtype(d) for d in dtypes] + [structured]
    # estimators keep scalar types as parameters (OneHotEncoder(dtype=numpy.float64))
    yield "numpy scalar types", sorted(set(np.sctypeDict.values()), key=lambda t: t.__name__)
    yield "numpy RandomState", np.random.RandomState(0)
    yield "numpy global random state", np.random.mtrand._rand
    yield "numpy SeedSequence", np.random.SeedSequence(0)
    for bit_generator in (
        np.random.PCG64,
        np.random.PCG64DXSM,
        np.random.MT19937,
        np.random.Philox,
        np.random.SFC64,
    ):
        yield f"numpy Generator({bit_generator.__name__})", np.random.Generator(bit_generator(0))
        yield f"numpy {bit_generator.__name__}", bit_generator(0)
        yield f"numpy RandomState({bit_generator.__name__})", np.random.RandomState(bit_generator(0))


def scipy_objects() -> Iterator[tuple[str, object]]:
    """Sparse matrices and arrays of every format."""
    import numpy as np
    from scipy import sparse

    dense = np.array([[0.0, 1.5, 0.0, 0.0], [2.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0], [0.0, 4.0, 5.0, 0.0]])
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil"):
        for flavour in ("matrix", "array"):
            cls = getattr(sparse, f"{fmt}_{flavour}")
            yield f"scipy {fmt}_{flavour}", cls(dense)
            yield f"scipy {fmt}_{flavour} of bool", cls(dense > 0)
    yield "scipy 1-d coo_array", sparse.coo_array(dense[1])


def _brief(error: BaseException) -> str:
    """An error on one line, short enough to read in a list of hundreds."""
    return f"{type(error).__name__}: {' '.join(str(error).split())[:120]}"


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt a fit that runs past ``seconds`` (checked when it next runs Python code)."""

    def expire(signum: int, frame: object) -> None:
        raise _Timeout(f"fit ran past {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass(frozen=True)
class _Data:
    label: str
    fit: Callable[[Any], Any]


def _datasets() -> list[_Data]:
    """Small inputs, tried in order until one fits: most estimators take the first."""
    import numpy as np

    rng = _rng()
    x = np.abs(rng.normal(size=(60, 4))) + 0.1
    x[:, 3] = rng.integers(1, 4, size=60)  # a small-integer column (categories, counts)
    multiclass = np.arange(60) % 3
    binary = np.arange(60) % 2
    continuous = x[:, 0] * 2.0 + x[:, 1] + rng.normal(scale=0.1, size=60)
    counts = rng.integers(0, 4, size=(60, 4))
    words = ["bolt", "nut", "flange", "shaft", "gear", "bracket", "washer", "hinge"]
    texts = [" ".join(rng.choice(words, size=5)) for _ in range(60)]
    dicts = [{"part": str(rng.choice(words)), "mass": float(v)} for v in x[:, 0]]
    labels = [tuple(rng.choice(words, size=2, replace=False)) for _ in range(60)]
    return [
        _Data("features, three classes", lambda e: e.fit(x, multiclass)),
        _Data("features, continuous target", lambda e: e.fit(x, continuous)),
        _Data("features, two classes", lambda e: e.fit(x, binary)),
        _Data("features only", lambda e: e.fit(x)),
        _Data("kernel matrix", lambda e: e.fit(x @ x.T)),
        _Data("features, two class columns", lambda e: e.fit(x, np.c_[binary, multiclass])),
        _Data("features, two continuous columns", lambda e: e.fit(x, np.c_[continuous, x[:, 2]])),
        _Data("counts, three classes", lambda e: e.fit(counts, multiclass)),
        _Data("one feature, continuous target", lambda e: e.fit(x[:, 0], continuous)),
        _Data("texts, three classes", lambda e: e.fit(texts, multiclass)),
        _Data("dicts, three classes", lambda e: e.fit(dicts, multiclass)),
        _Data("labels", lambda e: e.fit(multiclass)),
        _Data("label sets", lambda e: e.fit(labels)),
    ]


#: Estimators that wrap a classifier, a regressor, or either, given as ``estimator``.
_WRAPS_CLASSIFIER = frozenset(
    {
        "ClassifierChain",
        "FixedThresholdClassifier",
        "MultiOutputClassifier",
        "OneVsOneClassifier",
        "OneVsRestClassifier",
        "OutputCodeClassifier",
        "SelfTrainingClassifier",
        "TunedThresholdClassifierCV",
    }
)
_WRAPS_REGRESSOR = frozenset({"MultiOutputRegressor", "RegressorChain"})
_WRAPS_EITHER = frozenset({"RFE", "RFECV", "SelectFromModel", "SequentialFeatureSelector"})


def _constructions(name: str, cls: Any) -> list[Callable[[], Any]]:
    """How to build ``cls``: with the arguments it cannot do without (wrapped estimators,
    steps, grids), otherwise with few trees and a fixed seed."""
    import numpy as np
    from scipy import stats
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    def classifier() -> Any:
        return LogisticRegression(max_iter=500)

    def classifiers() -> list[tuple[str, Any]]:
        return [("lr", classifier()), ("tree", DecisionTreeClassifier(max_depth=3))]

    def regressors() -> list[tuple[str, Any]]:
        return [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=3))]

    if name in _WRAPS_CLASSIFIER:
        return [lambda: cls(estimator=classifier())]
    if name in _WRAPS_REGRESSOR:
        return [lambda: cls(estimator=Ridge())]
    if name in _WRAPS_EITHER:
        return [lambda: cls(estimator=classifier()), lambda: cls(estimator=Ridge())]
    special: dict[str, list[Callable[[], Any]]] = {
        "FrozenEstimator": [lambda: cls(classifier().fit(np.eye(4), [0, 1, 2, 0]))],
        "ColumnTransformer": [
            lambda: cls(
                [
                    ("scale", StandardScaler(), [0, 1]),
                    ("onehot", OneHotEncoder(handle_unknown="ignore"), [3]),
                ],
                remainder="passthrough",
            )
        ],
        "FeatureUnion": [lambda: cls([("pca", PCA(n_components=2)), ("scale", StandardScaler())])],
        "Pipeline": [lambda: cls([("scale", StandardScaler()), ("lr", classifier())])],
        "GridSearchCV": [
            lambda: cls(classifier(), {"C": [0.1, 1.0]}, cv=3),
            lambda: cls(Ridge(), {"alpha": [0.1, 1.0]}, cv=3),
        ],
        "RandomizedSearchCV": [
            lambda: cls(
                classifier(),
                {"C": stats.loguniform(1e-2, 1e2), "fit_intercept": [True, False]},
                n_iter=3,
                cv=3,
                random_state=0,
            )
        ],
        "SparseCoder": [lambda: cls(dictionary=np.eye(4)[:3])],
        "StackingClassifier": [lambda: cls(classifiers(), cv=3)],
        "StackingRegressor": [lambda: cls(regressors(), cv=3)],
        "VotingClassifier": [lambda: cls(classifiers())],
        "VotingRegressor": [lambda: cls(regressors())],
        # the default n_components="auto" wants far more samples than a quick fit has
        "GaussianRandomProjection": [lambda: cls(n_components=2, random_state=0)],
        "SparseRandomProjection": [lambda: cls(n_components=2, random_state=0)],
    }
    return special.get(name, [_quick(cls)])


def _quick(cls: type) -> Callable[[], Any]:
    """``cls()`` with few trees and a fixed seed, where it has those parameters."""
    parameters = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    if "n_estimators" in parameters:
        kwargs["n_estimators"] = 5
    if "random_state" in parameters:
        kwargs["random_state"] = 0
    return lambda: cls(**kwargs)


def _string_options(cls: type) -> list[tuple[str, str]]:
    """Each string choice of each parameter (loss, metric, algorithm, solver, kernel, ...):
    several choices keep different objects (loss classes, distance metrics, trees)."""
    from sklearn.utils._param_validation import StrOptions

    choices: list[tuple[str, str]] = []
    constraints: dict[str, list[object]] = getattr(cls, "_parameter_constraints", {})
    for parameter, allowed in sorted(constraints.items()):
        for constraint in allowed:
            if isinstance(constraint, StrOptions):
                options = set(constraint.options) - set(constraint.deprecated)
                choices.extend((parameter, option) for option in sorted(options))
    return choices


def _fit_first(
    record: Record, label: str, make: Callable[[], Any], datasets: list[_Data], seconds: float
) -> Any | None:
    """Fit a fresh estimator on each dataset in turn and return the first that fits; when none
    does, note why it failed on the first (the input most estimators take)."""
    first = ""
    for data in datasets:
        try:
            estimator = make()
            with _time_limit(seconds):
                data.fit(estimator)
        except _Timeout as error:
            first = first or str(error)
            break
        except Exception as error:
            first = first or f"{_brief(error)}"
            continue
        return estimator
    record.skipped[label] = first
    return None


def _fit_each(
    record: Record, label: str, make: Callable[[], Any], datasets: list[_Data], seconds: float
) -> Iterator[tuple[str, Any]]:
    """Fit a fresh estimator on each dataset it takes; when it takes none, note why it failed
    on the first."""
    first = ""
    fitted_any = False
    for data in datasets:
        try:
            estimator = make()
            with _time_limit(seconds):
                data.fit(estimator)
        except _Timeout as error:
            first = first or str(error)
            break
        except Exception as error:
            first = first or f"{_brief(error)}"
            continue
        fitted_any = True
        yield data.label, estimator
    if not fitted_any:
        record.skipped[label] = first


def sklearn_objects(record: Record, seconds: float, budget: float) -> Iterator[tuple[str, object]]:
    """Every estimator of ``all_estimators()`` that fits on small inputs, with each string
    choice of its parameters, plus the compositions models are usually shipped as."""
    from sklearn.utils import all_estimators

    datasets = _datasets()
    deadline = time.monotonic() + budget
    for name, cls in all_estimators():
        makes = _constructions(name, cls)
        for index, make in enumerate(makes):
            label = f"sklearn {name}" + (f" #{index + 1}" if index else "")
            if time.monotonic() > deadline:
                record.skipped[label] = "time budget spent"
                continue
            # every input it takes: a classifier keeps other objects for two classes than for
            # three (HistGradientBoostingClassifier: HalfBinomialLoss and LogitLink)
            fitted_any = False
            for data_label, estimator in _fit_each(record, label, make, datasets, seconds):
                fitted_any = True
                yield f"{label} on {data_label}", estimator
            if not fitted_any:
                continue
            for parameter, option in _string_options(cls):
                variant = f"{label} {parameter}={option}"
                if time.monotonic() > deadline:
                    record.skipped[variant] = "time budget spent"
                    continue

                def configured(make: Callable[[], Any] = make, p: str = parameter, o: str = option) -> Any:
                    return make().set_params(**{p: o})

                fitted = _fit_first(record, variant, configured, datasets, seconds)
                if fitted is not None:
                    yield variant, fitted
    yield from _sklearn_compositions(record, datasets, seconds)


def _sklearn_compositions(
    record: Record, datasets: list[_Data], seconds: float
) -> Iterator[tuple[str, object]]:
    import numpy as np
    from sklearn import feature_selection, model_selection
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics.pairwise import PAIRWISE_KERNEL_FUNCTIONS
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, LinearSVC

    makes: list[tuple[str, Callable[[], Any]]] = [
        (
            "Pipeline(StandardScaler, LogisticRegression)",
            lambda: make_pipeline(StandardScaler(), LogisticRegression()),
        ),
        (
            "Pipeline(ColumnTransformer(imputer, one-hot), LogisticRegression)",
            lambda: make_pipeline(
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), [0, 1, 2]),
                        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=True), [3]),
                    ]
                ),
                LogisticRegression(),
            ),
        ),
        (
            "TransformedTargetRegressor(log1p)",
            lambda: TransformedTargetRegressor(regressor=Ridge(), func=np.log1p, inverse_func=np.expm1),
        ),
        ("FunctionTransformer(log1p, expm1)", lambda: FunctionTransformer(np.log1p, inverse_func=np.expm1)),
        (
            "HistGradientBoostingClassifier, categorical, early stopping",
            lambda: HistGradientBoostingClassifier(
                max_iter=10, categorical_features=[3], early_stopping=True
            ),
        ),
        (
            "HistGradientBoostingRegressor, monotonic, early stopping",
            lambda: HistGradientBoostingRegressor(
                max_iter=10, monotonic_cst=[1, 0, 0, 0], early_stopping=True
            ),
        ),
    ]
    for method in ("sigmoid", "isotonic", "temperature"):
        makes.append(
            (
                f"CalibratedClassifierCV({method})",
                functools.partial(CalibratedClassifierCV, LinearSVC(), method=method, cv=3),
            )
        )
    for scoring in ("accuracy", "f1_macro", "roc_auc_ovr", "neg_log_loss", "balanced_accuracy"):
        makes.append(
            (
                f"GridSearchCV(scoring={scoring})",
                functools.partial(GridSearchCV, LogisticRegression(), {"C": [1.0]}, scoring=scoring),
            )
        )
    # a search keeps the splitter it was given as cv
    splitters = [
        model_selection.ShuffleSplit(n_splits=2, random_state=0),
        model_selection.StratifiedShuffleSplit(n_splits=2, random_state=0),
        model_selection.TimeSeriesSplit(n_splits=2),
        model_selection.RepeatedKFold(n_splits=2, n_repeats=1, random_state=0),
        model_selection.RepeatedStratifiedKFold(n_splits=2, n_repeats=1, random_state=0),
        model_selection.PredefinedSplit([-1] * 30 + [0] * 30),
    ]
    for splitter in splitters:
        makes.append(
            (
                f"GridSearchCV(cv={type(splitter).__name__})",
                functools.partial(GridSearchCV, LogisticRegression(), {"C": [1.0]}, cv=splitter),
            )
        )
    for scoring in ("r2", "neg_mean_squared_error", "neg_mean_absolute_error"):
        makes.append(
            (
                f"GridSearchCV(scoring={scoring})",
                functools.partial(GridSearchCV, Ridge(), {"alpha": [1.0]}, scoring=scoring),
            )
        )
    score_functions = (
        "chi2",
        "f_classif",
        "f_regression",
        "r_regression",
        "mutual_info_classif",
        "mutual_info_regression",
    )
    for function in score_functions:
        makes.append(
            (
                f"SelectKBest({function})",
                functools.partial(feature_selection.SelectKBest, getattr(feature_selection, function), k=2),
            )
        )
    for kernel, function in sorted(PAIRWISE_KERNEL_FUNCTIONS.items()):
        makes.append((f"SVC(kernel={kernel} function)", functools.partial(SVC, kernel=function)))
    ufuncs = sorted(name for name in dir(np) if isinstance(getattr(np, name), np.ufunc))
    for ufunc in ufuncs:
        makes.append(
            (
                f"FunctionTransformer(numpy.{ufunc})",
                functools.partial(FunctionTransformer, getattr(np, ufunc)),
            )
        )
    for label, make in makes:
        estimator = _fit_first(record, f"sklearn {label}", make, datasets, seconds)
        if estimator is not None:
            yield f"sklearn {label}", estimator

    x = _rng().normal(size=(30, 2))
    for tree in (BallTree, KDTree):
        for metric in tree.valid_metrics:
            label = f"sklearn {tree.__name__}(metric={metric})"
            try:
                yield label, tree(x, metric=metric)
            except Exception as error:
                record.skipped[label] = f"{_brief(error)}"


def lightgbm_objects() -> Iterator[tuple[str, object]]:
    """The scikit-learn wrappers and a Booster trained directly."""
    import lightgbm
    import numpy as np

    rng = _rng()
    x = rng.normal(size=(120, 4))
    multiclass = np.arange(120) % 3
    continuous = x[:, 0] + rng.normal(scale=0.1, size=120)
    quiet: dict[str, Any] = {"n_estimators": 5, "verbose": -1, "random_state": 0}
    yield "lightgbm LGBMClassifier", lightgbm.LGBMClassifier(**quiet).fit(x, multiclass)
    yield "lightgbm LGBMClassifier, binary", lightgbm.LGBMClassifier(**quiet).fit(x, multiclass % 2)
    yield "lightgbm LGBMRegressor", lightgbm.LGBMRegressor(**quiet).fit(x, continuous)
    yield "lightgbm LGBMRanker", lightgbm.LGBMRanker(**quiet).fit(x, multiclass, group=[20] * 6)
    dataset = lightgbm.Dataset(x, continuous, params={"verbose": -1})
    yield "lightgbm Booster", lightgbm.train({"verbose": -1}, dataset, num_boost_round=5)


def xgboost_objects() -> Iterator[tuple[str, object]]:
    """The scikit-learn wrappers and a Booster trained directly."""
    import numpy as np
    import xgboost

    rng = _rng()
    x = rng.normal(size=(120, 4))
    multiclass = np.arange(120) % 3
    continuous = x[:, 0] + rng.normal(scale=0.1, size=120)
    small: dict[str, Any] = {"n_estimators": 5, "random_state": 0}
    yield "xgboost XGBClassifier", xgboost.XGBClassifier(**small).fit(x, multiclass)
    yield "xgboost XGBRegressor", xgboost.XGBRegressor(**small).fit(x, continuous)
    yield "xgboost XGBRanker", xgboost.XGBRanker(**small).fit(x, multiclass, qid=np.repeat(np.arange(6), 20))
    yield "xgboost XGBRFClassifier", xgboost.XGBRFClassifier(**small).fit(x, multiclass)
    yield "xgboost XGBRFRegressor", xgboost.XGBRFRegressor(**small).fit(x, continuous)
    yield "xgboost Booster", xgboost.train({}, xgboost.DMatrix(x, continuous), num_boost_round=5)


# --- judging what was seen ----------------------------------------------------------------------


def resolve(qualified: str) -> object:
    """The object ``qualified`` names, imported as an unpickler would: the longest importable
    module prefix, then attributes. Raises LookupError when it does not resolve."""
    parts = qualified.split(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy.core.* spellings warn on numpy 2
        for end in range(len(parts), 0, -1):
            try:
                obj: object = importlib.import_module(".".join(parts[:end]))
            except ImportError:
                continue
            try:
                for attribute in parts[end:]:
                    obj = getattr(obj, attribute)
            except AttributeError:
                break
            return obj
    raise LookupError(f"{qualified} does not resolve")


def library_of(qualified: str) -> str | None:
    top = qualified.split(".", 1)[0]
    if top in LIBRARIES:
        return top
    if top in sys.stdlib_module_names:
        return "stdlib"
    return None


def kind_of(qualified: str, obj: object) -> str:
    if isinstance(obj, type):
        return "class"
    if not callable(obj):
        return "constant"
    module, _, name = qualified.rpartition(".")
    if (
        qualified in RECONSTRUCTORS
        or RECONSTRUCTOR_NAME.fullmatch(name)
        or module == TORCHSCRIPT_PICKLE_MODULE
    ):
        return "reconstructor"
    return "function"


def _callee(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _is_risky(callee: str) -> bool:
    if callee in PURE_CALLS:
        return False
    segments = callee.split(".")
    last = segments[-1]
    if last in {"load", "loads"} and segments[0] in PLAIN_PARSERS:
        return False
    return (
        segments[0] in RISKY_MODULES
        or last in RISKY_CALLEES
        or any(fragment in last.lower() for fragment in RISKY_FRAGMENTS)
    )


def _helper(function: object, owner: type | None, callee: str) -> object | None:
    """The Python function a call in ``function`` reaches, when it is a method of ``owner``
    called on ``self``/``cls`` or a function of the same package called by its bare name."""
    segments = callee.split(".")
    found: object = None
    if len(segments) == 2 and segments[0] in {"self", "cls"} and owner is not None:
        try:
            found = inspect.getattr_static(owner, segments[1])
        except AttributeError:
            return None
        found = getattr(found, "__func__", found)
    elif len(segments) == 1 and inspect.isfunction(function):
        found = function.__globals__.get(segments[0])
        package = str(function.__module__).split(".", 1)[0]
        if not inspect.isfunction(found) or str(found.__module__).split(".", 1)[0] != package:
            return None
    return found if inspect.isfunction(found) else None


def risky_calls(function: object, owner: type | None = None, depth: int = CALL_DEPTH) -> list[str]:
    """The calls in ``function``'s Python source that touch files, code, imports, processes,
    the network or nested unpickling, following helpers ``depth`` levels (a constructor that
    hands its arguments to ``self.set_network`` counts). Compiled functions (C, Cython) have no
    source to read, so only their names are judged, by the caller."""
    function = getattr(function, "__func__", function)
    try:
        source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return []
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        callee = _callee(node.func)
        if not callee:
            continue
        if _is_risky(callee):
            found.add(callee)
            continue
        helper = _helper(function, owner, callee) if depth else None
        if helper is not None and helper is not function:
            found.update(f"{callee} -> {inner}" for inner in risky_calls(helper, owner, depth - 1))
    return sorted(found)


def _unpickling_methods(cls: type, methods: tuple[str, ...] = UNPICKLING_METHODS) -> Iterator[object]:
    for klass in cls.__mro__:
        if klass is object:
            continue
        for method in methods:
            if method in vars(klass):
                yield vars(klass)[method]


def judge(qualified: str) -> tuple[Entry | None, str]:
    """The entry for ``qualified``, or None and why it is left out."""
    library = library_of(qualified)
    if library is None:
        return None, "from a library outside the recorded set"
    try:
        obj = resolve(qualified)
    except LookupError:
        return None, "does not resolve to an attribute of an importable module"
    module, _, name = qualified.rpartition(".")
    if module == "builtins" and name not in PLAIN_BUILTINS:
        return None, "a builtin other than a plain data type"
    if qualified in INDIRECTIONS:
        return None, "an indirection: it binds a callable to stored arguments and calls it later"
    if isinstance(obj, types.ModuleType):
        return None, "a module: a package prefix admits everything under it"
    kind = kind_of(qualified, obj)
    if isinstance(obj, type):
        # REDUCE can call any admitted class with arguments of the file's choosing
        calls = sorted({call for method in _unpickling_methods(obj) for call in risky_calls(method, obj)})
        if calls:
            rebuilding = _unpickling_methods(obj, REBUILDING_METHODS)
            if not any(risky_calls(method, obj) for method in rebuilding):
                # a pickle rebuilds it with NEWOBJ and BUILD (lightgbm's Booster): admitted for
                # that alone; the scan reports any call of its constructor
                return Entry(qualified, "rebuild", library), ""
            return None, f"its construction or __setstate__ calls {', '.join(calls)}"
    elif callable(obj):
        calls = risky_calls(obj)
        if calls:
            return None, f"its source calls {', '.join(calls)}"
    return Entry(qualified, kind, library), ""


def numpy_1_spellings(entries: dict[str, Entry]) -> dict[str, Entry]:
    """``numpy.core.*`` for every ``numpy._core.*`` entry: numpy 1.x writes the old module name
    and numpy 2.x still reads it, so files written by either must scan the same."""
    twins: dict[str, Entry] = {}
    for name, entry in entries.items():
        if name.startswith("numpy._core."):
            twin = "numpy.core." + name.removeprefix("numpy._core.")
            twins[twin] = Entry(twin, entry.kind, entry.library)
    return twins


#: The builtins and stdlib globals the scanner admitted before this file existed (its hand-written
#: DEFAULT_ALLOWLIST): kept so no file it admitted is blocked now, each still judged like the
#: rest. Written out here because the scanner now reads its allowlist from this script's output.
PREVIOUS_STDLIB_ALLOWLIST = frozenset(
    {
        *(f"builtins.{name}" for name in sorted(PLAIN_BUILTINS)),
        "builtins.NoneType",
        "copyreg._reconstructor",
        "_codecs.encode",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.deque",
        "collections.Counter",
        "collections.ChainMap",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
    }
)


# --- torch, read from the installed torch in its own interpreter ------------------------------


def torch_worker() -> None:
    """Print, as JSON, the globals ``torch.load(weights_only=True)`` admits, spelled as torch's
    pickler writes them, with the verdict of ``judge`` on each. Runs under the torch interpreter."""
    import torch
    from torch import _weights_only_unpickler as weights_only

    names = set(weights_only._get_allowed_globals()) | set(weights_only._get_user_allowed_globals())
    names |= {f"torch._utils.{function.__name__}" for function in weights_only._tensor_rebuild_functions()}
    from torch.jit import _pickle as torchscript

    names |= {
        f"{TORCHSCRIPT_PICKLE_MODULE}.{name}"
        for name, value in vars(torchscript).items()
        if inspect.isfunction(value) and (name.startswith("build_") or name == "restore_type_tag")
    }
    verdicts = []
    for name in sorted(names):
        entry, reason = judge(name)
        verdicts.append(
            {"name": name, "entry": dataclasses.asdict(entry) if entry else None, "reason": reason}
        )
    json.dump({"version": torch.__version__.split("+")[0], "verdicts": verdicts}, sys.stdout)


def torch_verdicts(python: str) -> tuple[str, list[dict[str, Any]]]:
    command = [python, str(Path(__file__).resolve()), "--torch-worker"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # the list must be complete: torch checkpoints would be blocked without these entries
        raise SystemExit(
            f"reading torch's weights-only globals with {python} failed; pass --torch-python, "
            f"an interpreter with torch installed:\n{result.stderr.strip()}"
        )
    answer = json.loads(result.stdout)
    return str(answer["version"]), list(answer["verdicts"])


# --- the run ------------------------------------------------------------------------------------


def _version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


def generate(torch_python: str, fit_seconds: float, budget: float) -> tuple[list[Entry], str, Record]:
    record = Record()
    sources: list[tuple[str, Callable[[], Iterator[tuple[str, object]]]]] = [
        ("numpy", numpy_objects),
        ("scipy", scipy_objects),
        ("sklearn", lambda: sklearn_objects(record, fit_seconds, budget)),
        ("lightgbm", lightgbm_objects),
        ("xgboost", xgboost_objects),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for library, objects in sources:
            started = time.monotonic()
            count = sum(record_object(record, label, obj) for label, obj in objects())
            print(f"{library}: {count} objects pickled in {time.monotonic() - started:.0f}s", file=sys.stderr)

    record.add(set(PREVIOUS_STDLIB_ALLOWLIST), "the scanner's previous DEFAULT_ALLOWLIST")
    entries: dict[str, Entry] = {}
    excluded: dict[str, str] = {}
    for name in sorted(record.seen):
        entry, reason = judge(name)
        if entry is None:
            excluded[name] = reason
        else:
            entries[name] = entry

    torch_version, verdicts = torch_verdicts(torch_python)
    for verdict in verdicts:
        record.add({verdict["name"]}, "torch.load(weights_only=True)")
        if verdict["entry"] is None:
            excluded[verdict["name"]] = verdict["reason"]
        else:
            entry = Entry(**verdict["entry"])
            entries[entry.name] = entry
    for twin, entry in numpy_1_spellings(entries).items():
        record.add({twin}, f"numpy 1.x spelling of {entry.name.replace('numpy.core.', 'numpy._core.', 1)}")
        entries.setdefault(twin, entry)

    for name, reason in sorted(excluded.items()):
        seen_in = sorted(record.seen[name])
        print(f"excluded {name}: {reason} (seen in {seen_in[0]}, {len(seen_in)} in all)", file=sys.stderr)
    for label, reason in sorted(record.skipped.items()):
        print(f"skipped {label}: {reason}", file=sys.stderr)

    versions = ", ".join(
        [f"python {platform.python_version()}"]
        + [
            f"{name} {_version(distribution)}"
            for name, distribution in (
                ("numpy", "numpy"),
                ("scipy", "scipy"),
                ("scikit-learn", "scikit-learn"),
                ("joblib", "joblib"),
                ("lightgbm", "lightgbm"),
                ("xgboost", "xgboost"),
            )
        ]
        + [f"torch {torch_version}"]
    )
    return sorted(entries.values(), key=lambda e: e.name), versions, record


def render(entries: list[Entry], versions: str) -> str:
    header = [
        f"# Generated by tools/record_pickled_globals.py from {versions}; do not edit by hand.",
        "# qualified-name\tkind\tlibrary",
    ]
    return "\n".join(header + [entry.line() for entry in entries]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--torch-python", help="an interpreter with torch installed (default: this one)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--fit-seconds", type=float, default=30.0, help="time limit of one fit")
    parser.add_argument("--budget", type=float, default=1800.0, help="time limit of all scikit-learn fits")
    parser.add_argument("--sources", type=Path, help="also write, as JSON, where each global was seen")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_worker:
        torch_worker()
        return 0
    entries, versions, record = generate(args.torch_python or sys.executable, args.fit_seconds, args.budget)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(entries, versions), encoding="utf-8")
    if args.sources is not None:
        seen = {name: sorted(labels) for name, labels in sorted(record.seen.items())}
        args.sources.write_text(json.dumps(seen, indent=1) + "\n", encoding="utf-8")
    counts: dict[tuple[str, str], int] = {}
    for entry in entries:
        counts[entry.library, entry.kind] = counts.get((entry.library, entry.kind), 0) + 1
    for (library, kind), count in sorted(counts.items()):
        print(f"{library:9} {kind:14} {count}", file=sys.stderr)
    print(f"wrote {len(entries)} entries to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
