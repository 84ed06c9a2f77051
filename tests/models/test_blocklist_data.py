"""The generated blocklist, ``src/cadmetrics/models/data/blocklist.txt``.

The file is data written by ``tools/find_dangerous_callables.py``; these tests hold it to its
format and to what it must and must not block. An entry blocks a global when it equals it or
is a dotted prefix of it, so the checks below match the same way.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import sys
import types
import warnings
from functools import cache

import pytest

WHYS = frozenset({"exec", "import", "process", "file", "unpickle", "network", "native", "advisory"})

#: Techniques of the published advisories; each must be blocked by itself or a prefix.
ADVISORY_TECHNIQUES = (
    "pip",
    "ensurepip",
    "timeit",
    "cProfile",
    "profile",
    "pydoc",
    "trace",
    "doctest",
    "code",
    "idlelib",
    "lib2to3",
    "venv",
    "distutils",
    "asyncio.subprocess.create_subprocess_exec",
    "asyncio.subprocess.create_subprocess_shell",
    "asyncio.base_subprocess.BaseSubprocessTransport",
    "asyncio.unix_events._UnixSubprocessTransport",
    "_posixsubprocess",
    "_posixsubprocess.fork_exec",
    "ctypes",
    "ctypes.CDLL",
    "numpy.f2py",
    "pkgutil.resolve_name",
    "torch.utils.cpp_extension",
    "torch.utils.collect_env",
    "torch.hub",
)

#: Callables that write files (or load native code) with arguments a pickle chooses.
FILE_WRITERS = (
    "sklearn.tree.export_graphviz",
    "sklearn.tree._export.export_graphviz",
    "scipy.sparse.save_npz",
    "numpy.save",
    "numpy.savez",
    "numpy.savetxt",
    "numpy.memmap",
    "numpy.lib.format.open_memmap",
    "numpy.ctypeslib.load_library",
    "scipy.io.savemat",
    "codecs.open",
    "_pyio",
    "_pyio.open",
    "logging.FileHandler",
    "py_compile",
    "compileall",
    "torch.save",
    "os.system",
    "subprocess.Popen",
    "shutil.rmtree",
    "tempfile.mkstemp",
    "pathlib.Path.write_text",
    "io.open",
    "builtins.open",
    "builtins.eval",
    "pickle.loads",
)

#: What ordinary models need when they are unpickled: no entry may block any of these.
NEEDED = (
    "collections.OrderedDict",
    "collections.defaultdict",
    "copyreg._reconstructor",
    "_codecs.encode",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.ma.core._mareconstruct",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch.FloatStorage",
    "torch.LongStorage",
    "torch.ByteStorage",
    "torch.HalfStorage",
    "torch.jit._pickle.build_intlist",
    "torch.jit._pickle.build_tensorlist",
    "torch.jit._pickle.build_doublelist",
    "torch.jit._pickle.build_boollist",
    "torch.jit._pickle.build_tensor_from_id",
    "torch.jit._pickle.restore_type_tag",
    "torch.serialization._get_layout",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "scipy.sparse._csr.csr_matrix",
    "scipy.sparse._csc.csc_matrix",
    "scipy.sparse._coo.coo_matrix",
    "scipy.sparse._csr.csr_array",
    "scipy.sparse.csr_matrix",
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "builtins.set",
    "builtins.frozenset",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.bytes",
    "builtins.bytearray",
    "builtins.int",
    "builtins.float",
    "builtins.complex",
    "builtins.str",
    "builtins.slice",
    "builtins.range",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
)

#: Modules under which no entry may lie: pickles of numpy generators and torch's own
#: reconstructors name their members.
NEEDED_SUBTREES = ("numpy.random._pickle", "torch.jit._pickle")

#: Importing these does something (opens a browser, prints, starts IDLE).
NO_IMPORT = frozenset({"antigravity", "this", "__hello__", "__phello__", "idlelib.idle"})


@cache
def read_lines() -> tuple[list[str], list[str]]:
    """The header (comment) lines and the data lines of the file."""
    text = importlib.resources.files("cadmetrics.models").joinpath("data", "blocklist.txt").read_text("utf-8")
    lines = text.splitlines()
    return [line for line in lines if line.startswith("#")], [
        line for line in lines if not line.startswith("#")
    ]


@cache
def entries() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in read_lines()[1]:
        name, _, why = line.partition("\t")
        out[name] = why
    return out


def covering(name: str, names: frozenset[str] | dict[str, str]) -> str | None:
    """The entry that blocks ``name`` (itself or a dotted prefix of it), if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in names:
            return candidate
    return None


def test_covering_matches_at_dots_only() -> None:
    names = frozenset({"os", "numpy.save"})
    assert covering("os.system", names) == "os"
    assert covering("os", names) == "os"
    assert covering("osx.thing", names) is None
    assert covering("numpy.savez", names) is None
    assert covering("numpy.save", names) == "numpy.save"


def test_header_says_how_it_was_made() -> None:
    header, _ = read_lines()
    assert header[0].startswith("# Generated by tools/find_dangerous_callables.py from Python 3.")
    assert "do not edit by hand" in header[0]
    assert header[1] == "# qualified-name\twhy"


def test_lines_are_two_tab_separated_fields() -> None:
    _, data = read_lines()
    assert len(data) > 1000
    for line in data:
        fields = line.split("\t")
        assert len(fields) == 2, line
        name, why = fields
        assert why in WHYS, line
        assert all(part.isidentifier() for part in name.split(".")), line


def test_sorted_without_duplicates() -> None:
    names = [line.split("\t")[0] for line in read_lines()[1]]
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_no_entry_is_shadowed_by_a_prefix_entry() -> None:
    names = entries()
    shadowed = {
        name: prefix
        for name in names
        if (prefix := covering(name.rsplit(".", 1)[0], names)) is not None and "." in name
    }
    assert shadowed == {}


def test_every_why_is_used() -> None:
    assert set(entries().values()) == WHYS


@pytest.mark.parametrize("name", ADVISORY_TECHNIQUES)
def test_advisory_techniques_are_blocked(name: str) -> None:
    assert covering(name, entries()) is not None


@pytest.mark.parametrize("name", FILE_WRITERS)
def test_dangerous_callables_are_blocked(name: str) -> None:
    assert covering(name, entries()) is not None


@pytest.mark.parametrize("name", NEEDED)
def test_what_models_need_is_not_blocked(name: str) -> None:
    assert covering(name, entries()) is None


@pytest.mark.parametrize("prefix", NEEDED_SUBTREES)
def test_nothing_under_reconstructor_modules(prefix: str) -> None:
    assert covering(prefix, entries()) is None
    assert [name for name in entries() if name.startswith(prefix + ".")] == []


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        ("numpy.ndarray", "tofile"),
        ("numpy.ndarray", "dump"),
        ("lightgbm.basic.Booster", "save_model"),
        ("xgboost.core.Booster", "save_model"),
    ],
)
def test_classes_stay_admitted_while_their_dangerous_methods_are_listed(cls: str, method: str) -> None:
    """A method that writes a file is listed as ``Class.method``; the class, which models
    are made of, is not blocked for it."""
    assert covering(cls, entries()) is None
    assert covering(f"{cls}.{method}", entries()) is not None


def resolve(entry: str) -> str:
    """``ok`` when ``entry`` names an existing module or attribute, ``missing`` when it does
    not, ``unavailable`` when its module does not import on this platform, ``unchecked``
    when importing it would do something."""
    parts = entry.split(".")
    if importlib.util.find_spec(parts[0]) is None:
        return "unavailable"
    if len(parts) == 1:
        return "ok"
    if parts[0] in NO_IMPORT:
        return "unchecked"
    try:
        obj: object = importlib.import_module(parts[0])
        name = parts[0]
        for index, part in enumerate(parts[1:], 1):
            name = f"{name}.{part}"
            if (
                isinstance(obj, types.ModuleType)
                and hasattr(obj, "__path__")
                and importlib.util.find_spec(name) is not None
            ):
                if index == len(parts) - 1:
                    return "ok"
                if name in NO_IMPORT or name.endswith(".__main__"):
                    return "unchecked"
                obj = importlib.import_module(name)
            elif hasattr(obj, part):
                obj = getattr(obj, part)
            else:
                return "missing"
    except Exception:  # a module of another platform (msvcrt, asyncio.windows_events...)
        return "unavailable"
    return "ok"


def test_standard_library_entries_exist() -> None:
    stdlib = [name for name in entries() if name.split(".")[0] in sys.stdlib_module_names]
    assert len(stdlib) > 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = {name: resolve(name) for name in stdlib}
    assert [name for name, state in status.items() if state == "missing"] == []
    assert sum(state == "ok" for state in status.values()) > 0.9 * len(stdlib)
