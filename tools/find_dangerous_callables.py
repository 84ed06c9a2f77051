#!/usr/bin/env python3
"""Generate ``src/cadmetrics/models/data/blocklist.txt``: the callables a pickle must not name.

A blocklist only stops what it lists, so the list is derived from the source code rather than
from a collection of published exploits. The generator reads, with :mod:`ast` and without
importing them, the standard library of the running interpreter (its ``test`` packages and
IDLE's tests aside) and the installed supported packages (numpy, scipy, scikit-learn, joblib,
torch, lightgbm, xgboost, safetensors, onnx), and decides for every callable a pickle can name
whether calling it can reach a *sink*:

* ``exec``: ``exec``/``eval``/``compile``/``breakpoint``/``input``, a Tcl interpreter, trace
  and profile hooks, ``setattr`` on a module, ``getattr`` with a name chosen by the caller on
  an object that is not ``self`` (the classic way to turn data into a call);
* ``process``: ``os.system``/``exec*``/``spawn*``/``fork``/``kill``..., ``subprocess``,
  ``_posixsubprocess``, ``pty``, ``_winapi.CreateProcess``;
* ``file``: opening, writing, creating, renaming, removing or changing the mode of a file or a
  directory (``open``, ``io.FileIO``, ``os.remove``, ``pathlib.Path.write_text``, ``mmap``...);
* ``import``: ``__import__``/``importlib.import_module`` with a computed name, loaders'
  ``exec_module``, writes to ``sys.modules`` and ``sys.path``;
* ``unpickle``: a nested ``pickle``/``marshal`` load;
* ``network``: sockets, TLS, the network entry points of native libraries;
* ``native``: loading a shared library (``ctypes``) by a name that is not a constant, raw
  memory access, calls through a library loaded with ``ctypes``.

How calls are followed. A call is resolved by name through the module's imports (also those
inside functions), its module-level aliases, ``from x import *`` (honouring ``__all__``), a
module ``__getattr__`` that forwards to another module, classes and their bases
(``self.method``, ``super().method``, class attributes such as ``_builtin_open = open``) and
simple local aliases (``opener = self._builtin_open``). A function handed on as a value
(``Thread(target=os.system)``) counts as called. Calling a class runs its ``__new__``, its
``__init__`` and a metaclass ``__call__``. Danger then propagates backwards to a fixed point
across every analysed module; where a callee has no Python source (a C module), the sink
tables below say what it does, and the foreign functions of lightgbm's and xgboost's
``ctypes`` libraries are judged by their names (``XGBoosterSaveModel`` writes a file).

``getattr`` is followed by its arguments: a computed name counts only when it derives from
the function's own parameters (a light taint analysis: ``for part in spec.split(".")``), and
not when it is read off the parameter it is looked up on (``getattr(obj, field.name)`` over
the fields of the parameter ``obj``). Such a function is dangerous to name, since the pickle
chooses the arguments; its callers inherit the danger only for arguments they derive from
their own parameters (``np.all`` passes the constant ``"all"`` to ``_wrapreduction``;
``Module._apply`` passes tensors it owns), see :meth:`Analysis.link_calls`.

A class is dangerous when what an unpickler can trigger on it reaches a sink: constructing it,
``__setstate__``, property setters and ``__setattr__`` (``BUILD``), ``__call__`` (``REDUCE``
on an instance), ``__setitem__``, ``append``, ``extend``, ``add`` (``SETITEMS``, ``APPENDS``,
``ADDITEMS``), ``__eq__`` and ``__hash__`` (dictionary keys), ``__getattr__``,
``__getattribute__`` and ``__del__``. A class whose other methods write files (an estimator's
``save``) is not blocked itself; those methods, own or inherited, are listed one by one as
``module.Class.method`` (a pickle can name a dotted attribute) where the class is defined and
where a package re-exports it (``sklearn.ensemble.X``), not in every module that imports it.

What is listed whole. A module whose top-level code spawns a process or opens a connection
when it is imported (``antigravity``, ``idlelib.idle``), a ``__main__`` module (importing it
runs the package's command line), a module at least half of whose public callables are
dangerous (``subprocess``; a class counts when it or a method of it is), a test package that
holds any dangerous callable, and a package whose submodules all are listed whole.

What is not followed. Some callees are treated as safe when *called* (``BARRIERS``): they
touch files or run code, but not as the caller's data chooses (``warnings.warn`` reads the
caller's source line for its message, ``logging.Logger.warning`` writes to handlers the
application configured, ``collections.namedtuple`` and ``dataclasses`` generate code from
identifiers they check). Names that ordinary models need when they are unpickled
(``NEEDED_BY_MODELS``, the classes of ``NEEDED_BASES``, and the names recorded in
``allowlist.txt`` when it exists) are never covered by an entry: the blocklist cannot stop
them, the scanner's other checks must judge what they are called with, and the generator
reports each one the analysis flagged. Data flow beyond parameters, calls through arbitrary
objects (``self.backend.run()``) and code generated at run time are not followed; the sink
methods of ``SINK_METHODS`` are caught whatever object they are called on.

Finally the hand-written entries of the former ``DEFAULT_BLOCKLIST`` that the analysis does
not cover are kept (split where one would block a needed name: ``joblib``, ``torch.jit``,
``torch.serialization``), and so are the techniques of published advisories (``ADVISORIES``),
with ``why`` ``advisory``. Standard library entries that do not exist on this platform are
dropped after a check in a child interpreter.

Run it with an interpreter that has the supported packages installed (torch may live in another
environment; name its ``site-packages`` with ``--site-packages``)::

    .venv/bin/python tools/find_dangerous_callables.py --site-packages OTHER_VENV/lib/python3.11/site-packages

``--explain NAME`` prints the call chain that makes ``NAME`` dangerous.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib.metadata
import json
import re
import subprocess
import sys
import sysconfig
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
OUTPUT: Final = REPO_ROOT / "src" / "cadmetrics" / "models" / "data" / "blocklist.txt"
ALLOWLIST: Final = OUTPUT.with_name("allowlist.txt")

#: Import name and distribution name of each supported package.
SUPPORTED: Final = (
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("sklearn", "scikit-learn"),
    ("joblib", "joblib"),
    ("torch", "torch"),
    ("lightgbm", "lightgbm"),
    ("xgboost", "xgboost"),
    ("safetensors", "safetensors"),
    ("onnx", "onnx"),
)

#: The reasons an entry can give, strongest first: an entry reachable to several kinds of sink
#: is labelled with the first (``numpy.load`` opens a file and unpickles: ``unpickle``).
WHYS: Final = ("exec", "process", "unpickle", "import", "native", "network", "file")
ADVISORY: Final = "advisory"

#: Import-time code (a module's top level) matters only when it does something by itself:
#: loading the package's own shared library, reading its own data files, generating code from
#: its own templates or registering fork handlers is not a gadget. ``__main__`` modules, which
#: run their package's command line when imported, are listed whole as ``exec``.
IMPORT_TIME_WHYS: Final = frozenset({"process", "network"})

# --------------------------------------------------------------------------------------------
# Sinks without Python source. Keys are canonical dotted names (where the object is defined) or
# prefixes of them; a callee whose canonical name equals a key or lies under it is a sink.
# --------------------------------------------------------------------------------------------

_OS_PROCESS = [
    "system",
    "popen",
    "execl",
    "execle",
    "execlp",
    "execlpe",
    "execv",
    "execve",
    "execvp",
    "execvpe",
    "_execvpe",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "spawnv",
    "spawnve",
    "spawnvp",
    "spawnvpe",
    "_spawnvef",
    "fork",
    "forkpty",
    "vfork",
    "posix_spawn",
    "posix_spawnp",
    "kill",
    "killpg",
    "abort",
    "_exit",
    "startfile",
    "putenv",
    "unsetenv",
    "setuid",
    "setgid",
    "seteuid",
    "setegid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setsid",
    "setpgid",
    "plock",
    "pidfd_open",
]
_OS_FILE = [
    "open",
    "openpty",
    "write",
    "pwrite",
    "pwritev",
    "writev",
    "sendfile",
    "copy_file_range",
    "splice",
    "fdopen",
    "remove",
    "unlink",
    "rename",
    "renames",
    "replace",
    "rmdir",
    "removedirs",
    "mkdir",
    "makedirs",
    "mkfifo",
    "mknod",
    "chmod",
    "fchmod",
    "lchmod",
    "chown",
    "fchown",
    "lchown",
    "link",
    "symlink",
    "truncate",
    "ftruncate",
    "posix_fallocate",
    "utime",
    "chdir",
    "fchdir",
    "chroot",
    "setxattr",
    "removexattr",
    "memfd_create",
    "lchflags",
    "chflags",
]

#: Sinks of C code, found in the C API documentation of each module.
NATIVE_SINKS: Final[dict[str, str]] = {
    **{f"{mod}.{name}": "process" for mod in ("posix", "nt") for name in _OS_PROCESS},
    **{f"{mod}.{name}": "file" for mod in ("posix", "nt") for name in _OS_FILE},
    "builtins.open": "file",
    "builtins.exec": "exec",
    "builtins.eval": "exec",
    "builtins.compile": "exec",
    "builtins.breakpoint": "exec",
    "builtins.input": "exec",
    "builtins.help": "exec",
    "_io.open": "file",
    "_io.open_code": "file",
    "_io.FileIO": "file",
    "_pickle.load": "unpickle",
    "_pickle.loads": "unpickle",
    "_pickle.Unpickler": "unpickle",
    "marshal.load": "unpickle",
    "marshal.loads": "unpickle",
    "_imp": "import",
    **{
        f"_ctypes.{name}": "native"
        for name in [
            "dlopen",
            "dlclose",
            "dlsym",
            "LoadLibrary",
            "FreeLibrary",
            "call_function",
            "call_cdeclfunction",
            "PyObj_FromPtr",
            "Py_INCREF",
            "Py_DECREF",
            "CFuncPtr",
            "_memmove_addr",
            "_memset_addr",
            "_string_at_addr",
            "_wstring_at_addr",
            "_cast_addr",
        ]
    },
    "_socket": "network",
    "_ssl": "network",
    "_posixsubprocess": "process",
    "_winapi.CreateProcess": "process",
    "_winapi.OpenProcess": "process",
    "_winapi.TerminateProcess": "process",
    "_winapi.CreateFile": "file",
    "_winapi.CreateNamedPipe": "file",
    "_winapi.CreateJunction": "file",
    "posix.register_at_fork": "exec",  # runs the callables it is given in every child
    "nt.register_at_fork": "exec",
    "_tkinter": "exec",
    "_xxsubinterpreters.run_string": "exec",
    "mmap.mmap": "file",
    "_posixshmem.shm_open": "file",
    "_posixshmem.shm_unlink": "file",
    "_sqlite3.connect": "file",
    "_dbm.open": "file",
    "_gdbm.open": "file",
    "readline.read_history_file": "file",
    "readline.write_history_file": "file",
    "readline.append_history_file": "file",
    "readline.read_init_file": "file",
    "sys.settrace": "exec",
    "sys.setprofile": "exec",
    "sys.addaudithook": "exec",
    "sys.breakpointhook": "exec",
    "_thread.start_new_thread": "exec",
    "_thread.start_new": "exec",
    # ctypes' loaders are module-level instances; calls through them load a library
    "ctypes.cdll": "native",
    "ctypes.pydll": "native",
    "ctypes.windll": "native",
    "ctypes.oledll": "native",
    "ctypes.pythonapi": "native",
    "ctypes.cast": "native",
    "ctypes.CFUNCTYPE": "native",
    "ctypes.PYFUNCTYPE": "native",
    "ctypes.WINFUNCTYPE": "native",
    "ctypes.memmove": "native",
    "ctypes.memset": "native",
    "ctypes.string_at": "native",
    "ctypes.wstring_at": "native",
    # numpy's C core
    "numpy._core._multiarray_umath.fromfile": "file",
    "numpy._core._multiarray_umath.ndarray.tofile": "file",
    "numpy._core._multiarray_umath.ndarray.dump": "file",
    "numpy.core._multiarray_umath.fromfile": "file",
    # torch's C core
    "torch._C._VariableFunctions.from_file": "file",
    "torch._C.StorageBase.from_file": "file",
    "torch._C.PyTorchFileWriter": "file",
    "torch._C.PyTorchFileReader": "file",
    "torch._C.import_ir_module": "exec",
    "torch._C.import_ir_module_from_buffer": "exec",
    "torch._C._load_for_lite_interpreter": "exec",
    "torch._C._load_for_lite_interpreter_from_buffer": "exec",
    "torch._C._load_jit_module_from_file": "exec",
    "torch._C._load_jit_module_from_bytes": "exec",
    "torch._C._load_mobile_module_from_file": "exec",
    "torch._C._load_mobile_module_from_bytes": "exec",
    "torch._C._save_jit_module": "file",
    "torch._C._save_mobile_module": "file",
    "torch._C._save_parameters": "file",
    "torch._C._load_parameters": "file",
    "torch._C.CompilationUnit": "exec",
    "torch._C._jit_script_compile": "exec",
    "torch._C._jit_script_class_compile": "exec",
    "torch._C._jit_script_interface_compile": "exec",
    "torch._C._create_function_from_trace": "exec",
    "torch._C._dynamo.eval_frame.set_eval_frame": "exec",
    "torch._C._jit_set_python_operator": "exec",
    # safetensors' Rust core opens the files it is given
    "safetensors._safetensors_rust.safe_open": "file",
    "safetensors._safetensors_rust.serialize_file": "file",
    "safetensors._safetensors_rust._safe_open_handle": "file",
}

#: C classes whose methods the sink tables list (``numpy.ndarray.tofile``).
NATIVE_CLASSES: Final = frozenset({"numpy._core._multiarray_umath.ndarray", "torch._C.StorageBase"})

#: Python functions whose sink the analysis cannot see (it sits behind a dispatch table).
PYTHON_SINKS: Final[dict[str, tuple[str, str]]] = {
    "pickle._Unpickler.load": ("unpickle", "the pure-Python unpickler runs its opcode handlers"),
}

#: C names that packages publish with runtime code (``globals()[name] = ...``), invisible to
#: static analysis; listed under the name a pickle would use.
NATIVE_EXPORTS: Final[dict[str, str]] = {
    "torch.from_file": "file",
    "torch._C._VariableFunctions.from_file": "file",
    "torch.UntypedStorage.from_file": "file",
    "torch.ops": "native",  # every registered operator, and ``torch.ops.load_library``
    "torch.classes": "native",  # ``torch.classes.load_library``
    "torch._ops.ops": "native",
    "torch._classes.classes": "native",
}

#: Method names that mean a sink whatever object they are called on: they belong to path,
#: loader and foreign-library APIs and nothing else in the analysed code.
SINK_METHODS: Final[dict[str, str]] = {
    "write_text": "file",
    "write_bytes": "file",
    "read_text": "file",
    "read_bytes": "file",
    "touch": "file",
    "mkdir": "file",
    "rmdir": "file",
    "unlink": "file",
    "symlink_to": "file",
    "hardlink_to": "file",
    "lchmod": "file",
    "tofile": "file",
    "exec_module": "import",
    "load_module": "import",
    "LoadLibrary": "native",
    "from_address": "native",
    "in_dll": "native",
}

#: Foreign functions of a native library loaded with ``ctypes`` (lightgbm's and xgboost's
#: ``_LIB``), judged by their names: only the ones that touch files or the network are sinks.
FOREIGN_FILE: Final = re.compile(
    r"(FromFile|Modelfile|FromURI|SaveModel$|SaveBinary|LoadModel$|PredictForFile|DumpText|"
    r"SaveJsonConfig$|LoadJsonConfig$)"
)
FOREIGN_NETWORK: Final = re.compile(r"(Network|Communicator(Init|Allreduce|Broadcast)|Tracker)")

#: Loaders of shared libraries: a constant argument names a fixed library of the program.
LIBRARY_LOADERS: Final = frozenset(
    {
        "ctypes.CDLL",
        "ctypes.PyDLL",
        "ctypes.WinDLL",
        "ctypes.OleDLL",
        "ctypes.cdll.LoadLibrary",
        "ctypes.pydll.LoadLibrary",
        "ctypes.windll.LoadLibrary",
        "ctypes.util.find_library",
        "_ctypes.dlopen",
    }
)

#: Modules where a computed attribute reaches a sink whichever the name.
DANGEROUS_GETATTR_MODULES: Final = frozenset(
    {"os", "posix", "nt", "sys", "builtins", "subprocess", "importlib", "pickle", "shutil", "ctypes", "io"}
)


#: Import functions: called with constant arguments they only import a fixed module (lazy
#: imports are everywhere); with a computed name they import whatever the caller is given.
IMPORT_FUNCTIONS: Final = frozenset(
    {
        "builtins.__import__",
        "importlib.import_module",
        "importlib.__import__",
        "importlib._bootstrap._gcd_import",
        "importlib.util.find_spec",
        "importlib.util.resolve_name",
    }
)

#: Callees treated as safe when *called*: what they touch is not chosen by the caller's data.
#: They are still listed if they are themselves dangerous to name (``logging.basicConfig``).
BARRIERS: Final = frozenset(
    {
        "warnings",  # reads the warning site's source line (linecache) to print it
        "linecache",  # reads source files of loaded modules, for tracebacks and warnings
        "traceback",  # the same, for tracebacks
        "tokenize.open",  # opens source files for linecache
        "logging.getLogger",
        "logging.getLoggerClass",
        "logging.Logger",  # records go to handlers configured by the application
        "logging.LoggerAdapter",
        "logging.RootLogger",
        "logging.Manager",
        "logging.log",
        "logging.debug",
        "logging.info",
        "logging.warning",
        "logging.warn",
        "logging.error",
        "logging.exception",
        "logging.critical",
        "logging.fatal",
        "inspect.signature",  # evaluates annotations of the object only when eval_str is set
        "inspect.Signature",
        "inspect.getfullargspec",
        "inspect.stack",  # reads the callers' source lines
        "inspect.getframeinfo",
        "inspect.getouterframes",
        "inspect.getinnerframes",
        "inspect.trace",
        "inspect.getmodule",
        "inspect.getsourcefile",
        "inspect.getfile",
        "inspect.getdoc",
        "pickle.dump",  # pickling writes to a file object the caller already holds
        "pickle.dumps",
        "pickle.Pickler",
        "pickle._Pickler",
        "pickle._dump",
        "pickle._dumps",
        "_pickle.dump",
        "_pickle.dumps",
        "_pickle.Pickler",
        "copy",  # copies objects the caller already holds
        "copyreg",
        "gettext",  # reads the installed translation catalogues
        "locale",
        "encodings.search_function",  # imports the codec module named by the encoding
        "codecs.lookup",
        "sysconfig.get_config_var",  # reads the interpreter's own build configuration
        "sysconfig.get_config_vars",
        "sysconfig.get_path",
        "sysconfig.get_paths",
        "sysconfig.get_platform",
        "platform.system",  # uname(); the lookups that run processes are listed as themselves
        "platform.machine",
        "platform.uname",
        "platform.python_implementation",
        "threadpoolctl",
        "atexit.register",  # schedules, at exit, code the caller names
        "ast.literal_eval",  # parses literals only; compiles nothing it runs
        "collections.namedtuple",  # generates a class from names it checks are identifiers
        "dataclasses",  # generates methods from the class's own field declarations
        "functools",  # higher-order helpers: they call what their caller hands them, nothing else
        "enum.EnumType",  # builds enumeration classes and looks members up by value
        "enum.EnumMeta",
        "typing._type_check",  # compiles a forward reference of a type expression, runs nothing
        "typing._type_convert",
    }
)

#: What ordinary models need when they are unpickled; no entry may cover one of these. A
#: trailing ``.*`` protects everything under the name as well.
NEEDED_BY_MODELS: Final = frozenset(
    {
        *(
            f"builtins.{name}"
            for name in [
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
                "NoneType",
            ]
        ),
        "copyreg._reconstructor",
        "_codecs.encode",
        "codecs.encode",
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
        "datetime.tzinfo",
        "decimal.Decimal",
        "decimal.Context",
        "fractions.Fraction",
        "uuid.UUID",
        "uuid.SafeUUID",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.dtypes.*",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.random._pickle.*",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "numpy.ma.core._mareconstruct",
        "numpy.ma.core.MaskedArray",
        "scipy.sparse",
        "sklearn",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_nested_tensor",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._tensor._rebuild_from_type",
        "torch._tensor._rebuild_from_type_v2",
        "torch.Tensor",
        "torch.Size",
        "torch.device",
        "torch.dtype",
        *(
            f"torch.{dtype}"
            for dtype in ["float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"]
        ),
        *(
            f"torch.{kind}Storage"
            for kind in [
                "Float",
                "Double",
                "Half",
                "BFloat16",
                "Long",
                "Int",
                "Short",
                "Char",
                "Byte",
                "Bool",
                "ComplexFloat",
                "ComplexDouble",
                "QInt8",
                "QUInt8",
                "QInt32",
                "QUInt4x2",
                "QUInt2x4",
                "Untyped",
                "Typed",
            ]
        ),
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        "torch.storage._LegacyStorage",
        "torch.nn.parameter.Parameter",
        "torch.nn.Parameter",
        "torch.jit._pickle.*",
        "torch.serialization._get_layout",
        "torch.serialization.StorageType",
        "torch.strided",
        "torch.sparse_coo",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle_compat.NDArrayWrapper",
        "joblib.numpy_pickle_compat.ZNDArrayWrapper",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn.LGBMRanker",
        "lightgbm.sklearn.LGBMModel",
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.sklearn.XGBRanker",
        "xgboost.sklearn.XGBModel",
        "xgboost.sklearn.XGBRFClassifier",
        "xgboost.sklearn.XGBRFRegressor",
    }
)

#: Classes whose subclasses (in the analysed code) ordinary models are made of.
NEEDED_BASES: Final = (
    "sklearn.base:BaseEstimator",
    "scipy.sparse._base:_spbase",
    "torch.nn.modules.module:Module",  # whole-model pickles name every layer class
)

#: Techniques of published advisories (2025 and before), listed whatever the analysis finds.
ADVISORIES: Final = (
    "_pyio",  # the pure-Python twin of ``io``, which the hand-written list blocked whole
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
    "asyncio.subprocess",
    "asyncio.base_subprocess",
    "asyncio.unix_events._UnixSubprocessTransport",
    "asyncio.windows_events._WindowsSubprocessTransport",
    "asyncio.windows_utils",
    "_posixsubprocess",
    "ctypes",
    "numpy.f2py",
    "pkgutil.resolve_name",
    "torch.utils.cpp_extension",
    "torch.utils.collect_env",
    "torch.utils.bottleneck",
    "torch.utils._config_module",
    "torch.hub",
    "torch.ops",
    "torch.classes",
)

#: ``DEFAULT_BLOCKLIST`` as it was written by hand in ``policy.py`` before this file replaced it.
HAND_WRITTEN_BLOCKLIST: Final = frozenset(
    [
        "_aix_support",
        "_bootsubprocess",
        "_ctypes",
        "_frozen_importlib",
        "_frozen_importlib_external",
        "_io",
        "_operator",
        "_osx_support",
        "_pickle",
        "_posixshmem",
        "_posixsubprocess",
        "_socket",
        "_sqlite3",
        "_thread",
        "_winapi",
        "aiohttp",
        "antigravity",
        "ast",
        "asyncio",
        "bdb",
        "builtins.__import__",
        "builtins.breakpoint",
        "builtins.classmethod",
        "builtins.compile",
        "builtins.delattr",
        "builtins.eval",
        "builtins.exec",
        "builtins.exit",
        "builtins.getattr",
        "builtins.globals",
        "builtins.help",
        "builtins.input",
        "builtins.locals",
        "builtins.memoryview",
        "builtins.open",
        "builtins.property",
        "builtins.quit",
        "builtins.setattr",
        "builtins.staticmethod",
        "builtins.super",
        "builtins.type",
        "builtins.vars",
        "bz2",
        "cPickle",
        "cProfile",
        "cffi",
        "cloudpickle",
        "code",
        "codeop",
        "commands",
        "concurrent",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "copyreg.add_extension",
        "ctypes",
        "ctypes.util",
        "dbm",
        "dill",
        "dis",
        "distutils",
        "doctest",
        "ensurepip",
        "faulthandler",
        "fileinput",
        "ftplib",
        "functools.partial",
        "functools.partialmethod",
        "functools.reduce",
        "functools.singledispatch",
        "gc",
        "glob",
        "gzip",
        "http",
        "httplib",
        "idlelib",
        "imaplib",
        "imp",
        "importlib",
        "inspect",
        "io",
        "joblib",
        "jsonpickle",
        "lib2to3",
        "linecache",
        "logging.config",
        "lzma",
        "marshal",
        "mmap",
        "msvcrt",
        "multiprocessing",
        "nt",
        "ntpath",
        "numpy.distutils",
        "numpy.f2py",
        "numpy.lib.npyio",
        "numpy.load",
        "numpy.testing",
        "operator.attrgetter",
        "operator.call",
        "operator.itemgetter",
        "operator.methodcaller",
        "os",
        "pathlib",
        "pdb",
        "pickle",
        "pickletools",
        "pip",
        "pkgutil",
        "platform",
        "popen2",
        "poplib",
        "posix",
        "posixpath",
        "profile",
        "pstats",
        "pty",
        "pydoc",
        "requests",
        "resource",
        "runpy",
        "sched",
        "scipy.sparse.linalg",
        "setuptools",
        "shelve",
        "shutil",
        "signal",
        "site",
        "sklearn.callback",
        "sklearn.conftest",
        "sklearn.datasets",
        "sklearn.externals",
        "sklearn.utils._set_output",
        "sklearn.utils._testing",
        "sklearn.utils.discovery",
        "sklearn.utils.estimator_checks",
        "smtplib",
        "socket",
        "socketserver",
        "sqlite3",
        "ssl",
        "subprocess",
        "sys",
        "sysconfig",
        "tarfile",
        "telnetlib",
        "tempfile",
        "this",
        "threading",
        "timeit",
        "torch.hub",
        "torch.jit",
        "torch.load",
        "torch.package",
        "torch.serialization",
        "trace",
        "types",
        "unittest",
        "urllib",
        "urllib2",
        "uuid._get_command_stdout",
        "venv",
        "webbrowser",
        "winreg",
        "xmlrpc",
        "yaml",
        "zipfile",
        "zipimport",
        "zlib.decompressobj",
    ]
)

#: Modules the existence check must not import: importing them does something.
NO_IMPORT: Final = frozenset({"antigravity", "this", "__hello__", "__phello__", "idlelib.idle"})

TEST_PACKAGE_NAMES: Final = frozenset({"test", "tests", "testing", "_testing", "conftest"})
STDLIB_SKIPPED_DIRS: Final = frozenset({"test", "tests", "idle_test", "site-packages", "__pycache__"})

#: A module is listed whole when at least this share of its public callables is dangerous.
DOMINATION: Final = 0.5

TRIGGER_METHODS: Final = (
    "__new__",
    "__init__",
    "__setstate__",
    "__call__",
    "__getattr__",
    "__getattribute__",
    "__setattr__",
    "__del__",
    "__eq__",
    "__hash__",
    "__setitem__",
    "append",
    "extend",
    "add",
)

BUILTIN_NAMES: Final = frozenset(dir(builtins))

#: torch's config modules become instances of this class when imported
#: (``install_config_module(sys.modules[__name__])``), so they gain its methods, ``load_config``
#: (which unpickles) among them.
CONFIG_MODULE_CLASS: Final = "torch.utils._config_module:ConfigModule"


# --------------------------------------------------------------------------------------------
# References: what an expression may evaluate to.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Ref:
    """A value an expression may denote.

    ``kind`` is ``module`` (an analysed module), ``func`` (an analysed function, ``key`` is its
    node id), ``class`` (an analysed class, ``module:Qual``), ``ext`` (something without
    Python source here, by canonical dotted name), ``extmod`` (a module without Python source,
    named by an ``import`` statement), ``handle`` (a native library loaded with
    ctypes), ``self`` (the instance or class a method runs on), ``instance`` (an object the
    function made from an analysed class), ``super`` (``super()`` in a class) or ``unknown``
    (with ``key`` the attribute last taken of it, if any).
    """

    kind: str
    key: str


UNKNOWN: Final = Ref("unknown", "")


@dataclass
class ClassInfo:
    """A class as written: its bases, methods, property setters and class attributes."""

    module: str
    name: str
    bases: list[ast.expr]
    metaclass: ast.expr | None
    methods: dict[str, str] = field(default_factory=dict)  # name -> node id
    setters: list[str] = field(default_factory=list)
    attrs: dict[str, list[ast.expr]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The class's node key, ``module:Name``."""
        return f"{self.module}:{self.name}"


@dataclass
class FunctionInfo:
    """A function, a method, or a module's top-level code (node ``I|module``)."""

    node_id: str
    module: str
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Module
    class_key: str | None
    self_name: str | None  # the first parameter of a method, bound to the instance or class
    kind: str = "function"  # function, method, classmethod, staticmethod or module


@dataclass
class ModuleInfo:
    """A module as written: what its names are bound to, and its functions and classes."""

    name: str
    path: Path
    origin: str  # "stdlib" or the supported package's import name
    is_package: bool
    tree: ast.Module
    bindings: dict[str, list[tuple[str, object]]] = field(default_factory=dict)
    star_sources: list[str] = field(default_factory=list)
    all_names: list[str] | None = None
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    config_module: bool = False

    def bind(self, name: str, kind: str, value: object) -> None:
        """Record one more binding of ``name``; a name bound in several branches keeps them all."""
        self.bindings.setdefault(name, []).append((kind, value))


# --------------------------------------------------------------------------------------------
# Finding and parsing the sources
# --------------------------------------------------------------------------------------------


def iter_module_files(root: Path, prefix: str, *, stdlib: bool) -> Iterator[tuple[str, Path, bool]]:
    """``(module name, path, is_package)`` for every ``.py`` file under ``root``."""
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        dirs = rel.parts[:-1]
        if any(not part.isidentifier() for part in dirs):
            continue  # not importable (e.g. "site-packages", versioned data folders)
        if stdlib and (any(part in STDLIB_SKIPPED_DIRS for part in dirs) or rel.parts[0] == "test"):
            continue
        if stdlib and dirs and not (root / dirs[0] / "__init__.py").exists():
            continue
        stem = path.stem
        if not stem.isidentifier():
            continue
        parts = [*dirs] if stem == "__init__" else [*dirs, stem]
        name = ".".join([prefix, *parts] if prefix else parts)
        if not name:
            continue
        yield name, path, stem == "__init__"


def collect_sources(site_packages: list[Path]) -> tuple[list[tuple[str, Path, bool, str]], dict[str, str]]:
    """Every module to analyse, with its origin, and the versions for the header."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    found: list[tuple[str, Path, bool, str]] = [
        (name, path, is_pkg, "stdlib") for name, path, is_pkg in iter_module_files(stdlib, "", stdlib=True)
    ]
    versions = {"Python": ".".join(str(part) for part in sys.version_info[:3])}
    search = [*site_packages, *(Path(entry) for entry in sys.path if entry)]
    for import_name, dist_name in SUPPORTED:
        for directory in search:
            package = directory / import_name
            if (package / "__init__.py").exists():
                break
        else:
            print(f"warning: {import_name} is not installed; skipped", file=sys.stderr)
            continue
        dists = list(importlib.metadata.distributions(name=dist_name, path=[str(directory)]))
        versions[dist_name] = dists[0].version if dists else "unknown"
        found.extend(
            (name, path, is_pkg, import_name)
            for name, path, is_pkg in iter_module_files(package, import_name, stdlib=False)
        )
    return found, versions


def absolute_module(module: ModuleInfo, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def is_main_guard(test: ast.expr) -> bool:
    """``if __name__ == "__main__":``, whose body does not run on import."""
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def literal_names(node: ast.expr) -> list[str] | None:
    """The strings of a literal list or tuple (``__all__``), if it is one."""
    if isinstance(node, ast.List | ast.Tuple):
        names = [
            elt.value for elt in node.elts if isinstance(elt, ast.Constant) and isinstance(elt.value, str)
        ]
        return names if len(names) == len(node.elts) else None
    return None


class ModuleCollector:
    """Fill a :class:`ModuleInfo` from its syntax tree: bindings, functions, classes."""

    def __init__(self, module: ModuleInfo) -> None:
        self.module = module
        self.all_parts: list[list[str] | str] = []  # literal name lists or "module.__all__"
        self.all_unknown = False

    def run(self) -> None:
        """Collect the module, its top-level code as node ``I|module``, and ``__all__``."""
        self.visit_block(self.module.tree.body)
        module = self.module
        module.functions["<import>"] = FunctionInfo(
            f"I|{module.name}", module.name, "<import>", module.tree, None, None, "module"
        )
        if self.all_parts and not self.all_unknown:
            names: list[str] = []
            for part in self.all_parts:
                names.extend(part if isinstance(part, list) else [f"@{part}"])
            module.all_names = names

    def visit_block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.visit_stmt(stmt)

    def visit_stmt(self, stmt: ast.stmt) -> None:
        """Record what one top-level statement binds; ``if``/``try``/``with`` bodies count
        (both branches: the analysis does not evaluate conditions), main guards do not."""
        module = self.module
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            node_id = f"F|{module.name}:{stmt.name}"
            module.functions[stmt.name] = FunctionInfo(node_id, module.name, stmt.name, stmt, None, None)
            module.bind(stmt.name, "def", stmt.name)
            if stmt.name == "__getattr__":
                self.note_forwarding(stmt)
        elif isinstance(stmt, ast.ClassDef):
            self.visit_class(stmt)
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            self.visit_import(stmt)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    if target.id == "__all__":
                        self.note_all(stmt.value, replace=True)
                    elif stmt.value is not None:
                        module.bind(target.id, "expr", stmt.value)
        elif isinstance(stmt, ast.AugAssign):
            if isinstance(stmt.target, ast.Name) and stmt.target.id == "__all__":
                self.note_all(stmt.value, replace=False)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self.visit_call(stmt.value)
        elif isinstance(stmt, ast.If):
            if is_main_guard(stmt.test):
                return
            self.visit_block(stmt.body)
            self.visit_block(stmt.orelse)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            self.visit_block(stmt.body)
            for handler in stmt.handlers:
                self.visit_block(handler.body)
            self.visit_block(stmt.orelse)
            self.visit_block(stmt.finalbody)
        elif isinstance(stmt, ast.With | ast.AsyncWith | ast.For | ast.While):
            self.visit_block(stmt.body)

    def visit_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        """``import a.b`` binds ``a``; ``from a import b`` binds ``b`` to ``a.b``; ``*`` is
        resolved lazily through the source's ``__all__``."""
        module = self.module
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    module.bind(alias.asname, "import", alias.name)
                else:
                    top = alias.name.split(".")[0]
                    module.bind(top, "import", top)
            return
        source = absolute_module(module, stmt.level, stmt.module)
        for alias in stmt.names:
            if alias.name == "*":
                module.star_sources.append(source)
            else:
                module.bind(alias.asname or alias.name, "alias", f"{source}.{alias.name}")

    def visit_call(self, call: ast.Call) -> None:
        """``__all__.extend(...)``/``append(...)``, and ``install_config_module(...)``."""
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "__all__"
            and func.attr in {"extend", "append"}
            and call.args
        ):
            arg = call.args[0]
            if func.attr == "append" and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self.all_parts.append([arg.value])
            else:
                self.note_all(arg, replace=False)
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "install_config_module":
            self.module.config_module = True

    def note_all(self, value: ast.expr | None, *, replace: bool) -> None:
        """Collect ``__all__`` from literals, sums, other modules' ``__all__`` and lists
        bound earlier; anything else leaves it unknown (then every public name is exported)."""
        if value is None:
            return
        if replace:
            self.all_parts = []
        stack = [value]
        expanded: set[str] = set()
        while stack:
            node = stack.pop(0)
            names = literal_names(node)
            if names is not None:
                self.all_parts.append(names)
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
                stack[:0] = [node.left, node.right]
            elif isinstance(node, ast.Attribute) and node.attr == "__all__":
                dotted = dotted_name(node.value)
                if dotted is None:
                    self.all_unknown = True
                else:
                    self.all_parts.append(dotted)
            elif isinstance(node, ast.Name) and node.id == "__all__":
                continue
            elif isinstance(node, ast.Name) and node.id in self.module.bindings and node.id not in expanded:
                # ``__all__ = _classes + _functions``: lists bound earlier in the module
                expanded.add(node.id)
                values = [value for kind, value in self.module.bindings[node.id] if kind == "expr"]
                if len(values) == 1 and isinstance(values[0], ast.expr):
                    stack.insert(0, values[0])
                else:
                    self.all_unknown = True
            else:
                self.all_unknown = True

    def note_forwarding(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """A module ``__getattr__`` returning ``getattr(other_module, name)`` forwards every name
        of that module (``numpy.core.multiarray`` forwards ``numpy._core.multiarray``)."""
        params = {arg.arg for arg in func.args.args}
        local_imports: dict[str, str] = {}
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom):
                source = absolute_module(self.module, node.level, node.module)
                for alias in node.names:
                    local_imports[alias.asname or alias.name] = f"{source}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    local_imports[alias.asname or alias.name.split(".")[0]] = alias.name
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Name)
                and node.args[1].id in params
                and isinstance(node.args[0], ast.Name)
            ):
                forwarded = local_imports.get(node.args[0].id)
                if forwarded is not None:
                    self.module.star_sources.append(f"@forward:{forwarded}")

    def visit_class(self, stmt: ast.ClassDef) -> None:
        """Record a class and what its body binds."""
        module = self.module
        metaclass = next((kw.value for kw in stmt.keywords if kw.arg == "metaclass"), None)
        info = ClassInfo(module.name, stmt.name, list(stmt.bases), metaclass)
        module.classes[stmt.name] = info
        module.bind(stmt.name, "class", stmt.name)
        self.visit_class_body(info, stmt.body)

    def visit_class_body(self, info: ClassInfo, body: list[ast.stmt]) -> None:
        """Methods (setters apart), and class attributes that may alias a callable."""
        module = self.module
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                qual = f"{info.name}.{stmt.name}"
                decorators = [dotted_name(d) or "" for d in stmt.decorator_list]
                is_static = "staticmethod" in decorators
                is_setter = any(d.endswith((".setter", ".deleter")) for d in decorators)
                positional = [*stmt.args.posonlyargs, *stmt.args.args]
                self_name = positional[0].arg if positional and not is_static else None
                node_id = f"F|{module.name}:{qual}" + ("#set" if is_setter else "")
                kind = (
                    "staticmethod"
                    if is_static
                    else "classmethod"
                    if "classmethod" in decorators
                    else "method"
                )
                module.functions[qual + ("#set" if is_setter else "")] = FunctionInfo(
                    node_id, module.name, qual, stmt, info.key, self_name, kind
                )
                if is_setter:
                    info.setters.append(node_id)
                else:
                    info.methods[stmt.name] = node_id
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    if isinstance(target, ast.Name) and stmt.value is not None:
                        info.attrs.setdefault(target.id, []).append(stmt.value)
            elif isinstance(stmt, ast.If | ast.Try):
                self.visit_class_body(info, stmt.body)
                self.visit_class_body(info, stmt.orelse)
                if isinstance(stmt, ast.Try):
                    for handler in stmt.handlers:
                        self.visit_class_body(info, handler.body)


def dotted_name(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else ``None``."""
    if isinstance(node, ast.Call):  # a decorator such as ``@functools.wraps(f)``
        node = node.func
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


# --------------------------------------------------------------------------------------------
# Sink tables
# --------------------------------------------------------------------------------------------


def table_lookup(dotted: str, table: dict[str, str] | frozenset[str]) -> str | None:
    """The entry of ``table`` that ``dotted`` equals or lies under, if any."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in table:
            return candidate
    return None


def foreign_why(name: str) -> str | None:
    """What a foreign function of a ``ctypes`` library does, judged by its name."""
    if FOREIGN_NETWORK.search(name):
        return "network"
    if FOREIGN_FILE.search(name):
        return "file"
    return None


# --------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------


class Analysis:
    """The call graph of every analysed callable and the sinks each one reaches."""

    def __init__(self, modules: dict[str, ModuleInfo]) -> None:
        self.modules = modules
        self.binding_cache: dict[tuple[str, str], frozenset[Ref]] = {}
        self.in_progress: set[tuple[str, str]] = set()
        self.edges: dict[str, set[str]] = defaultdict(set)
        self.sinks: dict[str, dict[str, str]] = defaultdict(dict)  # node -> why -> detail
        self.reach: dict[str, dict[str, str | None]] = {}  # why -> node -> next hop
        self.class_index: dict[str, ClassInfo] = {
            info.key: info for module in modules.values() for info in module.classes.values()
        }
        self.mro_cache: dict[str, list[Ref]] = {}
        self.member_cache: dict[tuple[str, str], frozenset[Ref]] = {}
        self.member_in_progress: set[tuple[str, str]] = set()
        self.exported_cache: dict[str, frozenset[str]] = {}
        self.function_index: dict[str, FunctionInfo] = {
            info.node_id: info for module in modules.values() for info in module.functions.values()
        }
        # computed-name getattr on a parameter: node -> parameter -> detail
        self.param_sinks: dict[str, dict[str, str]] = defaultdict(dict)
        # (caller, callee, callee parameter -> the caller parameters its argument derives
        # from, and the same for parameters filled by ``*args``/``**kwargs``)
        self.calls: list[tuple[str, str, dict[str, frozenset[str]], frozenset[str]]] = []

    # ---- resolution ----------------------------------------------------------------------

    def canonical(self, ref: Ref) -> str:
        """A dotted name for ``ref`` (for the sink tables and the barriers)."""
        if ref.kind == "func":
            module, qual = ref.key[2:].split(":", 1)
            return f"{module}.{qual.split('#')[0]}"
        if ref.kind == "class":
            module, qual = ref.key.split(":", 1)
            return f"{module}.{qual}"
        return ref.key

    def resolve_dotted(self, dotted: str) -> frozenset[Ref]:
        """What an absolute dotted name denotes, walking modules, classes and their members;
        a name without Python source here is ``ext``."""
        parts = dotted.split(".")
        if parts[0] not in self.modules:
            return frozenset({Ref("ext", dotted)})
        refs: frozenset[Ref] = frozenset({Ref("module", parts[0])})
        for part in parts[1:]:
            refs = self.member_of_all(refs, part)
            if not refs:
                return frozenset({Ref("ext", dotted)})
        return refs

    def resolve_module(self, dotted: str) -> frozenset[Ref]:
        """The module an ``import`` statement names (one without Python source: ``extmod``)."""
        if dotted.split(".", maxsplit=1)[0] in self.modules:
            return self.resolve_dotted(dotted)
        return frozenset({Ref("extmod", dotted)})

    def member_of_all(self, refs: Iterable[Ref], attr: str) -> frozenset[Ref]:
        """``ref.attr`` for every ``ref`` the value may be."""
        out: set[Ref] = set()
        for ref in refs:
            out |= self.member(ref, attr)
        return frozenset(out)

    def member(self, ref: Ref, attr: str) -> frozenset[Ref]:
        """What ``ref.attr`` may be."""
        if ref.kind == "module":
            return self.module_member(ref.key, attr)
        if ref.kind == "class":
            found = self.class_member(ref.key, attr, skip_own=False)
            return found or frozenset({Ref("ext", f"{self.canonical(ref)}.{attr}")})
        if ref.kind in {"ext", "extmod"}:
            return frozenset({Ref("ext", f"{ref.key}.{attr}")})
        if ref.kind == "handle":
            return frozenset({Ref("foreign", attr)})
        if ref.kind in {"self", "super", "instance"}:
            found = self.class_member(ref.key, attr, skip_own=ref.kind == "super")
            return found or frozenset({Ref("unknown", attr)})
        return frozenset({Ref("unknown", attr)})

    def module_member(self, module_name: str, attr: str) -> frozenset[Ref]:
        """``module.attr``, memoised; a cycle of imports resolves to nothing."""
        key = (module_name, attr)
        if key in self.member_cache:
            return self.member_cache[key]
        if key in self.member_in_progress:
            return frozenset()
        self.member_in_progress.add(key)
        try:
            result = self._module_member(module_name, attr)
        finally:
            self.member_in_progress.discard(key)
        self.member_cache[key] = result
        return result

    def _module_member(self, module_name: str, attr: str) -> frozenset[Ref]:
        """An explicit binding first, then star imports and forwarding ``__getattr__``,
        then the submodule of that name."""
        module = self.modules[module_name]
        submodule = f"{module_name}.{attr}"
        is_submodule = submodule in self.modules and all(
            kind in {"alias", "import"} and value == submodule
            for kind, value in module.bindings.get(attr, [])
        )
        if attr in module.bindings and not is_submodule:
            # ``from .sub import sub`` binds what the submodule defines, not the submodule
            return self.binding(module_name, attr)
        out: set[Ref] = set()
        for source in module.star_sources:
            forward = source.startswith("@forward:")
            target = source.removeprefix("@forward:")
            if target in self.modules:
                if forward or attr in self.exported_names(target):
                    out |= self.module_member(target, attr)
            else:
                out.add(Ref("ext", f"{target}.{attr}"))
        if module.config_module:
            out |= self.class_member(CONFIG_MODULE_CLASS, attr, skip_own=False)
        if is_submodule and not any(ref.kind != "ext" for ref in out):
            # ``from . import sub``, or no binding but the submodule, or only a C module's
            # star import that may or may not define the name: the attribute is the submodule
            return frozenset({Ref("module", submodule)})
        return frozenset(out)

    def exported_names(self, module_name: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        """The names ``from module import *`` binds (``__all__`` when it is known)."""
        if module_name in self.exported_cache:
            return self.exported_cache[module_name]
        if module_name in seen:
            return frozenset()
        seen = seen | {module_name}
        module = self.modules[module_name]
        out: set[str] = set()
        if module.all_names is not None:
            for name in module.all_names:
                if name.startswith("@"):
                    target = self.resolve_module_alias(module_name, name[1:])
                    if target is not None and target in self.modules:
                        out |= self.exported_names(target, seen)
                else:
                    out.add(name)
        else:
            out = {name for name in module.bindings if not name.startswith("_")}
            for source in module.star_sources:
                if source in self.modules:
                    out |= self.exported_names(source, seen)
        result = frozenset(out)
        self.exported_cache[module_name] = result
        return result

    def resolve_module_alias(self, module_name: str, dotted: str) -> str | None:
        """The module that ``dotted`` names inside ``module_name``, if it is one."""
        for ref in self.resolve_in_module(module_name, dotted):
            if ref.kind == "module":
                return ref.key
        return None

    def resolve_in_module(self, module_name: str, dotted: str) -> frozenset[Ref]:
        """What a dotted expression means inside ``module_name``."""
        first, *rest = dotted.split(".")
        refs = self.global_name(module_name, first)
        for part in rest:
            refs = self.member_of_all(refs, part)
        return refs

    def global_name(self, module_name: str, name: str) -> frozenset[Ref]:
        """What a module-level name means inside ``module_name``."""
        module = self.modules[module_name]
        if name in module.bindings:
            return self.binding(module_name, name)
        found: frozenset[Ref] = frozenset()
        if module.star_sources:
            found = self.module_member(module_name, name)
        if name in BUILTIN_NAMES:
            # a star import from a C module cannot say whether it shadows a builtin: keep both
            found = found | {Ref("ext", f"builtins.{name}")}
        return found

    def binding(self, module_name: str, name: str) -> frozenset[Ref]:
        """What a module-level name is bound to, memoised; a cycle resolves to nothing."""
        key = (module_name, name)
        if key in self.binding_cache:
            return self.binding_cache[key]
        if key in self.in_progress:
            return frozenset()
        self.in_progress.add(key)
        out: set[Ref] = set()
        for kind, value in self.modules[module_name].bindings[name]:
            if kind == "def":
                out.add(Ref("func", f"F|{module_name}:{value}"))
            elif kind == "class":
                out.add(Ref("class", f"{module_name}:{value}"))
            elif kind == "alias":
                assert isinstance(value, str)
                out |= self.resolve_dotted(value)
            elif kind == "import":
                assert isinstance(value, str)
                out |= self.resolve_module(value)
            elif kind == "expr":
                assert isinstance(value, ast.expr)
                out |= self.expr_binding(module_name, name, value)
        self.in_progress.discard(key)
        result = frozenset(out)
        self.binding_cache[key] = result
        return result

    def expr_binding(self, module_name: str, name: str, value: ast.expr) -> set[Ref]:
        """A module-level ``name = value``: an alias, a loaded library, or a plain value."""
        if isinstance(value, ast.Name | ast.Attribute):
            dotted = dotted_name(value)
            if dotted is not None:
                refs = self.resolve_in_module(module_name, dotted)
                if refs:
                    return set(refs)
        if isinstance(value, ast.Call):
            callee = dotted_name(value.func)
            if callee is not None:
                for ref in self.resolve_in_module(module_name, callee):
                    if self.loads_library(ref):
                        return {Ref("handle", f"{module_name}.{name}")}
        if isinstance(value, ast.IfExp):
            return self.expr_binding(module_name, name, value.body) | self.expr_binding(
                module_name, name, value.orelse
            )
        return {Ref("ext", f"{module_name}.{name}")}

    def loads_library(self, ref: Ref) -> bool:
        """Whether calling ``ref`` returns a ctypes library (``ctypes.cdll.LoadLibrary``, or a
        function of the package that calls it and returns the result)."""
        name = self.canonical(ref)
        if name in LIBRARY_LOADERS or name.endswith(".LoadLibrary"):
            return True
        if ref.kind == "func":
            module, qual = ref.key[2:].split(":", 1)
            info = self.modules[module].functions.get(qual)
            if info is None or isinstance(info.node, ast.Module):
                return False
            returns = info.node.returns
            return returns is not None and (dotted_name(returns) or "").endswith("CDLL")
        return False

    def class_mro(self, class_key: str) -> list[Ref]:
        """The class and its bases, depth first (analysed classes and external ones)."""
        if class_key in self.mro_cache:
            return self.mro_cache[class_key]
        self.mro_cache[class_key] = [Ref("class", class_key)]
        out: list[Ref] = [Ref("class", class_key)]
        info = self.class_index[class_key]
        for base in info.bases:
            node = base.value if isinstance(base, ast.Subscript) else base
            dotted = dotted_name(node)
            if dotted is None:
                continue
            for ref in sorted(self.resolve_in_module(info.module, dotted)):
                if ref.kind == "class" and ref.key in self.class_index:
                    for item in self.class_mro(ref.key):
                        if item not in out:
                            out.append(item)
                elif ref.kind == "ext" and ref not in out:
                    out.append(ref)
        self.mro_cache[class_key] = out
        return out

    def class_member(self, class_key: str, attr: str, *, skip_own: bool) -> frozenset[Ref]:
        """``Class.attr`` along the bases (own class skipped for ``super()``); an external
        base answers for every attribute, as its C implementation might define it."""
        if class_key not in self.class_index:
            return frozenset()
        for item in self.class_mro(class_key)[1 if skip_own else 0 :]:
            if item.kind == "ext":
                return frozenset({Ref("ext", f"{item.key}.{attr}")})
            info = self.class_index[item.key]
            if attr in info.methods:
                return frozenset({Ref("func", info.methods[attr])})
            if attr in info.attrs:
                out: set[Ref] = set()
                for value in info.attrs[attr]:
                    dotted = dotted_name(value)
                    if dotted is not None and isinstance(value, ast.Name | ast.Attribute):
                        out |= self.resolve_in_module(info.module, dotted)
                return frozenset(out)
        return frozenset()

    def class_setters(self, class_key: str) -> list[str]:
        """The property setters along the bases, which ``BUILD`` may call."""
        out: list[str] = []
        for item in self.class_mro(class_key):
            if item.kind == "class":
                out.extend(self.class_index[item.key].setters)
        return out

    # ---- the graph -------------------------------------------------------------------------

    def node_for(self, ref: Ref) -> str | None:
        """The graph node a call of ``ref`` reaches."""
        if ref.kind == "func":
            return ref.key
        if ref.kind == "class":
            return f"C|{ref.key}"
        if ref.kind == "ext":
            return f"X|{ref.key}"
        return None

    def build(self) -> None:
        """Scan every function and class, then link the recorded calls."""
        for module in self.modules.values():
            for info in module.functions.values():
                FunctionScanner(self, module, info).scan()
            for cls in module.classes.values():
                self.add_class_nodes(cls)
        self.link_calls()

    def link_calls(self) -> None:
        """Turn the recorded calls into edges, following the arguments of computed-name
        ``getattr`` sinks. Such a sink makes its function dangerous to name (the pickle then
        chooses the name), but reaches a caller only through arguments the caller derives
        from its own parameters: ``_wrapreduction(a, np.logical_and, "all", ...)`` passes a
        constant, ``Module._apply`` passes tensors it owns. Callers therefore reach the
        function without that sink (node ``F#c``) and take over the condition on their own
        parameters (node ``G|caller``), to a fixed point."""
        conditional: dict[str, set[str]] = {node: set(params) for node, params in self.param_sinks.items()}
        changed = True
        while changed:
            changed = False
            for caller, callee, mapping, rest in self.calls:
                for param in list(conditional.get(callee, ())):
                    sources = mapping.get(param, rest)
                    if not sources <= conditional.setdefault(caller, set()):
                        conditional[caller] |= sources
                        changed = True
        for caller, callee, _, _ in self.calls:
            if conditional.get(callee):
                self.edges[caller].add(callee + "#c")
            elif callee != caller:
                self.edges[caller].add(callee)
        for node, params in sorted(conditional.items()):
            if not params:
                continue
            gate = "G|" + node[2:]
            details = self.param_sinks.get(node) or {}
            self.sinks[gate]["exec"] = "getattr(<object>, <name>) with a name from " + ", ".join(
                f"{param} ({details.get(param, 'through a callee')})" for param in sorted(params)
            )
            self.edges[node + "#c"] = set(self.edges[node]) - {node + "#c"}
            if node in self.sinks:
                self.sinks[node + "#c"] = dict(self.sinks[node])
            self.edges[node].add(gate)
        self.calls.clear()

    def constructor_parts(self, class_key: str) -> tuple[str | None, set[str]]:
        """What calling the class runs: its ``__init__`` (when analysed), and the rest
        (``__new__``, a metaclass ``__call__``, C bases)."""
        init: str | None = None
        others: set[str] = set()
        for name in ("__new__", "__init__"):
            for ref in self.class_member(class_key, name, skip_own=False):
                node = self.node_for(ref)
                if node is None:
                    continue
                if (
                    name == "__init__"
                    and ref.kind == "func"
                    and ref.key in self.function_index
                    and init is None
                ):
                    init = node
                else:
                    others.add(node)
        for item in self.class_mro(class_key):
            if item.kind == "ext":
                others.add(f"X|{item.key}")
        cls = self.class_index[class_key]
        if cls.metaclass is not None:
            dotted = dotted_name(cls.metaclass)
            if dotted is not None:
                for ref in self.resolve_in_module(cls.module, dotted):
                    if ref.kind == "class":
                        for call in self.class_member(ref.key, "__call__", skip_own=False):
                            if call.kind == "func":
                                others.add(call.key)
        return init, others

    def add_class_nodes(self, cls: ClassInfo) -> None:
        """``C|class``: what constructing it runs; ``U|class``: everything an unpickler
        can trigger on it."""
        ctor = f"C|{cls.key}"
        init, others = self.constructor_parts(cls.key)
        self.edges[ctor].update(others)
        if init is not None:
            self.edges[ctor].add(init)
        trigger = f"U|{cls.key}"
        self.edges[trigger].add(ctor)
        for name in TRIGGER_METHODS[2:]:
            for ref in self.class_member(cls.key, name, skip_own=False):
                if ref.kind == "func":
                    self.edges[trigger].add(ref.key)
        self.edges[trigger].update(self.class_setters(cls.key))

    def ext_why(self, dotted: str) -> tuple[str, str] | None:
        """What a callee without Python source does, per the sink tables (barriers first)."""
        if table_lookup(dotted, BARRIERS) is not None:
            return None
        entry = table_lookup(dotted, NATIVE_SINKS)
        if entry is not None:
            return NATIVE_SINKS[entry], entry
        return None

    def solve(self) -> None:
        """For each kind of sink, the nodes that reach one (breadth first, backwards)."""
        reverse: dict[str, set[str]] = defaultdict(set)
        all_nodes: set[str] = set(self.edges) | set(self.sinks)
        for source, targets in self.edges.items():
            for target in targets:
                reverse[target].add(source)
                all_nodes.add(target)
        for why in WHYS:
            hop: dict[str, str | None] = {}
            queue: deque[str] = deque()
            for node in sorted(all_nodes):
                if self.is_barrier(node):
                    continue
                if node.startswith("I|") and not self.import_time(node, why):
                    continue
                if why in self.sinks.get(node, {}):
                    hop[node] = None
                    queue.append(node)
                elif node.startswith("X|"):
                    found = self.ext_why(node[2:])
                    if found is not None and found[0] == why:
                        hop[node] = None
                        queue.append(node)
            while queue:
                node = queue.popleft()
                for caller in sorted(reverse.get(node, ())):
                    if caller in hop or self.is_barrier(caller):
                        continue
                    if caller.startswith("I|") and not self.import_time(caller, why):
                        continue
                    hop[caller] = node
                    queue.append(caller)
            self.reach[why] = hop

    @staticmethod
    def import_time(node: str, why: str) -> bool:
        """Whether a sink of kind ``why`` counts for the import-time node of a module."""
        return why in IMPORT_TIME_WHYS or (why == "exec" and node.endswith(".__main__"))

    def is_barrier(self, node: str) -> bool:
        """Whether the node's callable is one whose effects callers do not inherit."""
        name = self.node_name(node)
        return name is not None and table_lookup(name, BARRIERS) is not None

    def node_name(self, node: str) -> str | None:
        """The dotted name of a graph node, for the barrier and sink tables."""
        kind, _, rest = node.partition("|")
        if kind == "F":
            module, qual = rest.split(":", 1)
            return f"{module}.{qual.split('#')[0]}"
        if kind in {"C", "U"}:
            module, qual = rest.split(":", 1)
            return f"{module}.{qual}"
        if kind in {"X", "I"}:
            return rest
        return None

    def why(self, node: str) -> str | None:
        """The strongest kind of sink ``node`` reaches, if any."""
        for why in WHYS:
            if node in self.reach[why]:
                return why
        return None

    def chain(self, node: str) -> list[str]:
        """The path from ``node`` to the sink that gives it its reason, for ``--explain``."""
        why = self.why(node)
        if why is None:
            return []
        out = [node]
        hop = self.reach[why].get(node)
        while hop is not None and len(out) < 40:
            out.append(hop)
            hop = self.reach[why].get(hop)
        detail = self.sinks.get(out[-1], {}).get(why)
        if detail:
            out.append(f"sink: {detail}")
        return out


class FunctionScanner:
    """Record the sinks a function calls directly and the callables it calls or passes on."""

    def __init__(self, analysis: Analysis, module: ModuleInfo, info: FunctionInfo) -> None:
        self.analysis = analysis
        self.module = module
        self.info = info
        self.node = info.node_id
        self.locals: dict[str, list[ast.expr | None]] = defaultdict(list)
        self.local_imports: dict[str, tuple[str, str]] = {}
        self.globals_declared: set[str] = set()
        self.parameters: set[str] = set()
        self.taint: dict[str, frozenset[str]] = {}  # name -> the parameters its value derives from
        self.depth = 0

    def sink(self, why: str, detail: str) -> None:
        """Record that this function reaches a sink of kind ``why`` directly."""
        self.analysis.sinks[self.node].setdefault(why, f"{detail} in {self.info.module}.{self.info.qualname}")

    def edge(self, target: str) -> None:
        """Record that this function calls (or hands on) ``target``."""
        if target != self.node:
            self.analysis.edges[self.node].add(target)

    def statements(self) -> list[ast.AST]:
        """What the function runs: its default values and body, or a module's top level."""
        node = self.info.node
        if isinstance(node, ast.Module):
            return list(self.module_level_statements(node.body))
        return [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None), *node.body]

    def module_level_statements(self, body: list[ast.stmt]) -> Iterator[ast.stmt]:
        """Top-level code run on import, without function and class bodies or main guards."""
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if isinstance(stmt, ast.If):
                if is_main_guard(stmt.test):
                    continue
                yield ast.If(test=stmt.test, body=list(self.module_level_statements(stmt.body)), orelse=[])
                yield from self.module_level_statements(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                yield from self.module_level_statements(stmt.body)
                for handler in stmt.handlers:
                    yield from self.module_level_statements(handler.body)
                yield from self.module_level_statements(stmt.orelse)
                yield from self.module_level_statements(stmt.finalbody)
            else:
                yield stmt

    def scan(self) -> None:
        """Bind the parameters and locals, derive their taint, then visit every node."""
        roots = self.statements()
        node = self.info.node
        if not isinstance(node, ast.Module):
            args = node.args
            self.parameters = {
                arg.arg
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]
                if arg.arg != self.info.self_name
            }
            self.taint = {
                name: frozenset({name})
                for name in [
                    *self.parameters,
                    *(arg.arg for arg in (args.vararg, args.kwarg) if arg is not None),
                ]
            }
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None and arg.arg != self.info.self_name:
                    self.locals[arg.arg].append(None)
        nodes = [sub for root in roots for sub in ast.walk(root)]
        self.collect_locals(nodes)
        self.propagate_taint()
        seeded = PYTHON_SINKS.get(f"{self.info.module}.{self.info.qualname}")
        if seeded is not None and self.in_function():
            self.sink(*seeded)
        if (
            isinstance(node, ast.Module)
            and self.module.name.endswith(".__main__")
            and any(isinstance(sub, ast.Call) for sub in nodes)
        ):
            self.sink("exec", "the package's command line runs on import")
        for sub in nodes:
            self.visit(sub)

    def collect_locals(self, nodes: list[ast.AST]) -> None:
        """Every name the function binds and what to (``None``: unknown), its local
        imports, and its ``global`` declarations, which refer to the module instead."""
        is_module = isinstance(self.info.node, ast.Module)
        for sub in nodes:
            if isinstance(sub, ast.Global | ast.Nonlocal):
                self.globals_declared.update(sub.names)
            elif isinstance(sub, ast.Import | ast.ImportFrom) and not is_module:
                for alias in sub.names:
                    if alias.name == "*":
                        continue
                    if isinstance(sub, ast.Import):
                        local = alias.asname or alias.name.split(".")[0]
                        self.local_imports[local] = ("import", alias.name if alias.asname else local)
                    else:
                        source = absolute_module(self.module, sub.level, sub.module)
                        self.local_imports[alias.asname or alias.name] = ("alias", f"{source}.{alias.name}")
            elif is_module:
                continue
            elif isinstance(sub, ast.Assign):
                for target in sub.targets:
                    self.note_store(target, sub.value)
            elif isinstance(sub, ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
                self.note_store(sub.target, getattr(sub, "value", None))
            elif isinstance(sub, ast.For | ast.AsyncFor | ast.comprehension):
                # ``for name in ("a", "b")`` or over a module-level tuple of strings: a constant;
                # ``for name in names`` over a parameter: an element of that parameter
                if self.is_constant_collection(sub.iter):
                    self.note_store(sub.target, ast.Constant(value=""))
                else:
                    self.note_store(sub.target, ast.Starred(value=sub.iter))
            elif isinstance(sub, ast.withitem) and sub.optional_vars is not None:
                self.note_store(sub.optional_vars, None)
            elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if sub is not self.info.node:
                    self.locals[sub.name].append(None)
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef) and sub is not self.info.node:
                    args = sub.args
                    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                        if arg is not None:
                            self.locals[arg.arg].append(None)
            elif isinstance(sub, ast.Lambda):
                for arg in sub.args.args:
                    self.locals[arg.arg].append(None)
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                self.locals[sub.name].append(None)
        for name in self.globals_declared:
            self.locals.pop(name, None)

    def note_store(self, target: ast.expr, value: ast.expr | None) -> None:
        """Bind the names of an assignment target; parts of a tuple get a part of the value."""
        if isinstance(target, ast.Name):
            if target.id not in self.globals_declared:
                self.locals[target.id].append(value)
        elif isinstance(target, ast.Tuple | ast.List):
            # ``for key, value in state.items()``: each name is a part of the value
            for elt in target.elts:
                self.note_store(elt, None if value is None else ast.Starred(value=value))
        elif isinstance(target, ast.Starred):
            self.note_store(target.value, None if value is None else ast.Starred(value=value))

    def propagate_taint(self) -> None:
        """Locals assigned from the arguments (``name = spec.split(".")``, ``for part in
        parts``) carry the arguments they derive from, to a fixed point."""
        changed = True
        while changed:
            changed = False
            for name, values in self.locals.items():
                if name in self.parameters:
                    continue
                sources = frozenset().union(*(self.sources(value) for value in values if value is not None))
                if not sources <= self.taint.get(name, frozenset()):
                    self.taint[name] = self.taint.get(name, frozenset()) | sources
                    changed = True

    def sources(self, expr: ast.expr) -> frozenset[str]:
        """The parameters ``expr`` derives from."""
        found: set[str] = set()
        for node in ast.walk(expr):
            if isinstance(node, ast.Name) and node.id in self.taint:
                found |= self.taint[node.id]
        return frozenset(found)

    # ---- expressions -----------------------------------------------------------------------

    def resolve(self, expr: ast.expr) -> frozenset[Ref]:
        """What ``expr`` may denote (depth-limited against alias cycles)."""
        self.depth += 1
        try:
            if self.depth > 12:
                return frozenset({UNKNOWN})
            return self._resolve(expr)
        finally:
            self.depth -= 1

    def _resolve(self, expr: ast.expr) -> frozenset[Ref]:
        """Locals shadow module names, which shadow builtins; ``self`` is the class."""
        analysis = self.analysis
        if isinstance(expr, ast.Name):
            name = expr.id
            if name == self.info.self_name and self.info.class_key is not None:
                return frozenset({Ref("self", self.info.class_key)})
            if name in self.local_imports:
                kind, dotted = self.local_imports[name]
                return (
                    analysis.resolve_module(dotted) if kind == "import" else analysis.resolve_dotted(dotted)
                )
            if name in self.locals:
                out: set[Ref] = set()
                for value in self.locals[name]:
                    if (
                        value is None
                        or isinstance(value, ast.Starred)
                        or (isinstance(value, ast.Name) and value.id == name)
                    ):
                        out.add(UNKNOWN)
                    elif isinstance(value, ast.Name | ast.Attribute | ast.Call):
                        out |= (
                            self.resolve(value)
                            if not isinstance(value, ast.Call)
                            else self.call_result(value)
                        )
                    else:
                        out.add(UNKNOWN)
                return frozenset(out)
            found = analysis.global_name(self.module.name, name)
            return found or frozenset({UNKNOWN})
        if isinstance(expr, ast.Attribute):
            return analysis.member_of_all(self.resolve(expr.value), expr.attr)
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Name) and func.id == "super" and self.info.class_key is not None:
                return frozenset({Ref("super", self.info.class_key)})
            return self.call_result(expr)
        return frozenset({UNKNOWN})

    def call_result(self, call: ast.Call) -> frozenset[Ref]:
        """What a call returns, where that is known: ``getattr(x, "const")``, ``super()``, and
        an instance of an analysed class (``NumpyUnpickler(...).load()``)."""
        func = call.func
        if isinstance(func, ast.Name) and func.id == "super" and self.info.class_key is not None:
            return frozenset({Ref("super", self.info.class_key)})
        if (
            isinstance(func, ast.Name)
            and func.id == "getattr"
            and func.id not in self.locals
            and len(call.args) >= 2
            and isinstance(call.args[1], ast.Constant)
            and isinstance(call.args[1].value, str)
        ):
            return self.analysis.member_of_all(self.resolve(call.args[0]), call.args[1].value)
        if isinstance(func, ast.Name | ast.Attribute):
            return frozenset(
                Ref("instance", ref.key) if ref.kind == "class" else UNKNOWN for ref in self.resolve(func)
            )
        return frozenset({UNKNOWN})

    def is_module_expr(self, expr: ast.expr) -> bool:
        """Whether ``expr`` is a module (or ``sys.modules[...]``)."""
        if isinstance(expr, ast.Subscript):
            return dotted_name(expr.value) == "sys.modules" or any(
                ref.kind == "ext" and ref.key == "sys.modules" for ref in self.resolve(expr.value)
            )
        return any(ref.kind in {"module", "extmod"} for ref in self.resolve(expr))

    def visit(self, node: ast.AST) -> None:
        """Calls, the values a function hands on, writes to ``sys.modules`` and ``sys.path``,
        and ``ctypes.cdll[...]`` lookups."""
        if isinstance(node, ast.Call):
            self.visit_call(node)
            callee = node.func.id if isinstance(node.func, ast.Name) else ""
            if callee not in {"isinstance", "issubclass", "cast"}:
                self.visit_passed(node.args)
                self.visit_passed(keyword.value for keyword in node.keywords)
        elif isinstance(node, ast.Return | ast.Yield | ast.NamedExpr | ast.Lambda):
            self.visit_passed([node.value if not isinstance(node, ast.Lambda) else node.body])
        elif isinstance(node, ast.List | ast.Tuple | ast.Set):
            self.visit_passed(node.elts)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name | ast.Attribute):
            # ``ctypes.cdll[path]`` loads a library as surely as ``ctypes.cdll.LoadLibrary(path)``
            for ref in self.resolve(node.value):
                if ref.kind == "ext" and self.analysis.ext_why(ref.key) is not None:
                    self.edge(f"X|{ref.key}")
        elif isinstance(node, ast.Dict):
            self.visit_passed(node.values)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.Delete):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                self.visit_passed([node.value])
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets if self.in_function() else []:
                if isinstance(target, ast.Subscript) and self.is_sys_modules(target.value):
                    self.sink("import", "a write to sys.modules")
                if isinstance(target, ast.Attribute) and not isinstance(node, ast.Delete):
                    self.module_attribute_write(target)

    def visit_passed(self, values: Iterable[ast.expr | None]) -> None:
        """Names handed on as values (arguments, returned or stored values) may be called by
        whoever receives them; at a module's top level they are only stored (dispatch tables,
        registrations), and importing the module calls nothing."""
        if not self.in_function():
            return
        for value in values:
            if isinstance(value, ast.Name | ast.Attribute) and isinstance(value.ctx, ast.Load):
                self.visit_reference(value)
            elif isinstance(value, ast.Starred):
                self.visit_passed([value.value])

    def module_attribute_write(self, target: ast.Attribute) -> None:
        """``sys.path = ...`` and friends change what later imports load."""
        refs = self.resolve(target.value)
        if any(ref.kind == "extmod" and ref.key == "sys" for ref in refs) and target.attr in {
            "path",
            "meta_path",
            "path_hooks",
            "modules",
            "excepthook",
            "displayhook",
            "breakpointhook",
        }:
            self.sink("import", f"a write to sys.{target.attr}")

    def is_sys_modules(self, expr: ast.expr) -> bool:
        """Whether ``expr`` is ``sys.modules``."""
        if dotted_name(expr) in {"sys.modules", "_sys.modules"}:
            return True
        return any(ref.kind == "ext" and ref.key == "sys.modules" for ref in self.resolve(expr))

    def visit_reference(self, node: ast.Name | ast.Attribute) -> None:
        """A function passed on (``Thread(target=os.system)``, ``map(os.remove, paths)``,
        ``opener=open``) counts as a call of it; a class named in ``isinstance`` does not."""
        for ref in self.resolve(node):
            if ref.kind == "func":
                self.edge(ref.key)
            elif (
                ref.kind == "ext"
                and not ref.key.rsplit(".", 1)[-1][:1].isupper()
                and self.analysis.ext_why(ref.key) is not None
            ):
                self.edge(f"X|{ref.key}")

    def visit_call(self, call: ast.Call) -> None:
        """Resolve the callee; special-case ``getattr``, ``setattr``, import functions and
        library loaders; record calls of analysed functions and classes, edges to the rest."""
        refs = self.resolve(call.func)
        for ref in refs:
            name = self.analysis.canonical(ref)
            if name == "builtins.getattr":
                if self.in_function():
                    self.dynamic_getattr(call)
                continue
            if name == "builtins.setattr":
                if self.in_function() and call.args and self.is_module_expr(call.args[0]):
                    self.sink("exec", "setattr on a module")
                continue
            if name in IMPORT_FUNCTIONS:
                if self.in_function() and not all(self.is_constant(arg) for arg in call.args[:1]):
                    self.sink("import", f"{name} with a computed name")
                continue
            if name in LIBRARY_LOADERS and call.args and self.is_constant(call.args[0]):
                continue  # a library named by a constant is a fixed part of the program
            if ref.kind == "func" and ref.key in self.analysis.function_index:
                self.record_call(call, ref.key, None)
                continue
            if ref.kind == "class" and ref.key in self.analysis.class_index:
                # construction: __new__ and the metaclass in full, __init__ argument by argument
                init, others = self.analysis.constructor_parts(ref.key)
                for target in others:
                    self.edge(target)
                if init is not None:
                    self.record_call(call, init, 1)
                continue
            if ref.kind in {"func", "class", "ext"}:
                if (
                    self.in_function()
                    and name.startswith("sys.modules.")
                    and name.split(".")[-1]
                    in {
                        "update",
                        "setdefault",
                        "__setitem__",
                    }
                ):
                    self.sink("import", "a write to sys.modules")
                    continue
                callee = self.analysis.node_for(ref)
                if callee is not None:
                    self.edge(callee)
            elif ref.kind == "foreign":
                why = foreign_why(ref.key)
                if why is not None:
                    self.sink(why, f"the foreign function {ref.key}")
            elif ref.kind == "unknown" and ref.key in SINK_METHODS:
                self.sink(SINK_METHODS[ref.key], f".{ref.key}() on an object")
            elif ref.kind == "handle":
                self.sink("native", f"a call through {ref.key}")

    def dynamic_getattr(self, call: ast.Call) -> None:
        """``getattr(obj, name)`` with a computed name is a sink when ``obj`` is an arbitrary
        object (a parameter, an attribute of one), a module with sinks or a native library;
        not on ``self``, a class, a plain module or a fixed value; and only when the name
        derives from the arguments (a name the code computes from its own tables or from
        ``dir()`` is not the pickle's to choose). When ``name`` is just a
        parameter, the sink holds for the function itself and for callers that pass a
        name derived from their own arguments, not for others (see ``Analysis.link_calls``)."""
        if len(call.args) < 2:
            return
        # a name read off the very parameter it is looked up on (``getattr(obj, field.name)``
        # over the fields of ``obj``) reaches nothing the object does not already expose; a
        # receiver computed from the name (``string.Formatter.get_field``) is not exempt
        names = self.sources(call.args[1]) - self.receiver_parameter(call.args[0])
        if not names:
            return
        detail = ""
        for ref in self.resolve(call.args[0]):
            if ref.kind == "unknown":
                detail = "getattr(<object>, <computed name>)"
            elif ref.kind == "handle" or (
                ref.kind in {"module", "ext", "extmod"}
                and (ref.key in DANGEROUS_GETATTR_MODULES or table_lookup(ref.key, NATIVE_SINKS) is not None)
            ):
                detail = f"getattr({ref.key}, <computed name>)"
        if detail:
            for param in names:
                self.analysis.param_sinks[self.node].setdefault(param, detail)

    def receiver_parameter(self, expr: ast.expr) -> frozenset[str]:
        """The parameter ``expr`` is, or is an attribute of (``obj.sub``), if any."""
        while isinstance(expr, ast.Attribute):
            expr = expr.value
        if isinstance(expr, ast.Name) and expr.id in self.taint and self.taint[expr.id] == {expr.id}:
            return frozenset({expr.id})
        return frozenset()

    def is_constant(self, expr: ast.expr) -> bool:
        """A literal, an f-string or sum of literals, or a local only ever set to literals."""
        if isinstance(expr, ast.Constant):
            return True
        if isinstance(expr, ast.JoinedStr):
            return all(
                isinstance(value, ast.Constant)
                or (isinstance(value, ast.FormattedValue) and self.is_constant(value.value))
                for value in expr.values
            )
        if isinstance(expr, ast.BinOp):
            return self.is_constant(expr.left) and self.is_constant(expr.right)
        if isinstance(expr, ast.Name) and expr.id in self.locals:
            values = self.locals[expr.id]
            return bool(values) and all(isinstance(value, ast.Constant) for value in values)
        return False

    def is_constant_collection(self, expr: ast.expr) -> bool:
        """A literal list, tuple or set of constants, or a module-level name bound only to one."""
        if isinstance(expr, ast.List | ast.Tuple | ast.Set):
            return all(isinstance(elt, ast.Constant) for elt in expr.elts)
        if isinstance(expr, ast.Name) and expr.id not in self.locals:
            bindings = self.module.bindings.get(expr.id, [])
            return bool(bindings) and all(
                kind == "expr"
                and isinstance(value, ast.List | ast.Tuple | ast.Set)
                and all(isinstance(elt, ast.Constant) for elt in value.elts)
                for kind, value in bindings
            )
        return False

    def record_call(self, call: ast.Call, callee: str, shift: int | None) -> None:
        """Keep a call with what its arguments derive from, for ``Analysis.link_calls``."""
        arguments = self.argument_map(call, self.analysis.function_index[callee], shift)
        if arguments is None:
            self.edge(callee)
        else:
            self.analysis.calls.append((self.node, callee, *arguments))

    def argument_map(
        self, call: ast.Call, callee: FunctionInfo, shift: int | None = None
    ) -> tuple[dict[str, frozenset[str]], frozenset[str]] | None:
        """For each parameter of ``callee`` that ``call`` passes, the parameters of the caller
        its argument derives from; and those that ``*args``/``**kwargs`` carry to the rest.
        ``None`` when the binding of arguments is unclear."""
        node = callee.node
        if isinstance(node, ast.Module):
            return None
        positional = [arg.arg for arg in [*node.args.posonlyargs, *node.args.args]]
        if shift is not None:
            pass
        elif callee.kind == "classmethod":
            shift = 1
        elif callee.kind == "method":
            if not isinstance(call.func, ast.Attribute):
                return None
            receivers = {ref.kind for ref in self.resolve(call.func.value)}
            if receivers <= {"class"}:
                shift = 0
            elif "class" not in receivers:
                shift = 1
            else:
                return None
        else:
            shift = 0
        named = {*positional, *(arg.arg for arg in node.args.kwonlyargs)}
        varargs = node.args.vararg.arg if node.args.vararg else None
        varkw = node.args.kwarg.arg if node.args.kwarg else None
        mapping: dict[str, frozenset[str]] = {}
        rest: frozenset[str] = frozenset()

        def add(param: str | None, sources: frozenset[str]) -> None:
            if param is not None:
                mapping[param] = mapping.get(param, frozenset()) | sources

        for index, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                rest |= self.sources(arg.value)
                for name in [*positional[index + shift :], varargs]:
                    add(name, rest)
                break
            if index + shift < len(positional):
                add(positional[index + shift], self.sources(arg))
            else:
                add(varargs, self.sources(arg))
        for keyword in call.keywords:
            if keyword.arg is None:
                rest |= self.sources(keyword.value)
                add(varkw, rest)
            else:
                add(keyword.arg if keyword.arg in named else varkw, self.sources(keyword.value))
        return mapping, rest

    def in_function(self) -> bool:
        """Whether this is a function (not a module's top-level code)."""
        return not isinstance(self.info.node, ast.Module)


# --------------------------------------------------------------------------------------------
# Emission
# --------------------------------------------------------------------------------------------


class Needed:
    """The names no entry may cover: exact names, and subtrees no entry may lie in either."""

    def __init__(self, exact: Iterable[str], subtrees: Iterable[str]) -> None:
        self.names = frozenset(exact)
        self.subtrees = frozenset(subtrees)
        self.covering: dict[str, str] = {}
        for name in sorted({*exact, *self.subtrees}):
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                self.covering.setdefault(".".join(parts[:end]), name)

    def forbids(self, entry: str) -> str | None:
        """The needed name that ``entry`` would block, if any."""
        if entry in self.covering:
            return self.covering[entry]
        return table_lookup(entry, self.subtrees)


class Emitter:
    """Turns the analysis into entries: the dangerous names of every module, its classes'
    dangerous methods, and the modules listed whole."""

    def __init__(self, analysis: Analysis, needed: Needed) -> None:
        self.analysis = analysis
        self.needed = needed
        self.entries: dict[str, str] = {}
        self.withheld: dict[str, str] = {}
        self.below: dict[str, str] = {}

    def add(self, name: str, why: str) -> bool:
        """List ``name``, unless it would block a needed name (then it is withheld)."""
        blocked = self.needed.forbids(name)
        if blocked is not None:
            self.withheld.setdefault(name, f"{why}, would block {blocked}")
            return False
        current = self.entries.get(name)
        order = [*WHYS, ADVISORY]
        if current is None or order.index(why) < order.index(current):
            self.entries[name] = why
        return True

    def ref_why(self, ref: Ref) -> str | None:
        """The reason a name bound to ``ref`` is listed (a class: what unpickling triggers)."""
        analysis = self.analysis
        if ref.kind == "func":
            return analysis.why(ref.key)
        if ref.kind == "class":
            return analysis.why(f"U|{ref.key}")
        if ref.kind == "ext":
            found = analysis.ext_why(ref.key)
            return found[0] if found else None
        if ref.kind == "handle":
            return "native"
        return None

    def class_method_names(self, ref: Ref) -> dict[str, Ref]:
        """Every method reachable as ``Class.method``, own or inherited."""
        out: dict[str, Ref] = {}
        if ref.kind == "class":
            bases = self.analysis.class_mro(ref.key)
        elif ref.kind == "ext" and ref.key in NATIVE_CLASSES:
            bases = [ref]
        else:
            return out
        for item in bases:
            if item.kind == "ext":
                if item.key in NATIVE_CLASSES:
                    for key in NATIVE_SINKS:
                        if key.startswith(item.key + "."):
                            out.setdefault(key[len(item.key) + 1 :], Ref("ext", key))
                continue
            info = self.analysis.class_index[item.key]
            for name, node_id in info.methods.items():
                out.setdefault(name, Ref("func", node_id))
        return out

    def emit_name(self, module_name: str, name: str, refs: Iterable[Ref]) -> list[str]:
        """Entries for one name bound in a module; returns the whys found for the name or,
        for a class, for its methods."""
        qualified = f"{module_name}.{name}"
        found: list[str] = []
        for ref in sorted(refs):
            why = self.ref_why(ref)
            canonical = ref.key.replace(":", ".")
            if why is not None and ref.kind == "class" and canonical in self.needed.names:
                # a class models need, under any name: withheld, its methods listed below
                self.withheld.setdefault(qualified, f"{why}, would block {canonical}")
            elif why is not None and self.add(qualified, why):
                found.append(why)
                continue
            if not self.publishes(module_name, name, ref):
                continue  # a class a module merely imports is listed where it is published
            for method, method_ref in sorted(self.class_method_names(ref).items()):
                if method.startswith("__") and method.endswith("__"):
                    continue  # the scanner blocks every dunder segment already
                method_why = self.ref_why(method_ref)
                if method_why is not None:
                    self.add(f"{qualified}.{method}", method_why)
                    found.append(method_why)
        return found

    def publishes(self, module_name: str, name: str, ref: Ref) -> bool:
        """Whether ``module_name`` is where the class ``ref`` is listed with its methods: the
        module that defines it, or a package that re-exports it publicly from inside itself
        (``sklearn.ensemble.RandomForestClassifier``, ``numpy.ndarray``)."""
        home = ref.key.rsplit(".", 1)[0] if ref.kind == "ext" else ref.key.split(":")[0]
        if home == module_name:
            return True
        module = self.analysis.modules[module_name]
        return module.is_package and not name.startswith("_") and home.startswith(module_name + ".")

    def module_names(self, module: ModuleInfo) -> list[str]:
        """Every name the module binds, by statement or star import; dunders aside, as the
        scanner blocks every dunder segment already."""
        names = set(module.bindings)
        for source in module.star_sources:
            target = source.removeprefix("@forward:")
            if target in self.analysis.modules:
                names |= self.analysis.exported_names(target)
            elif not target.startswith("@"):
                prefix = target + "."
                names |= {key[len(prefix) :].split(".")[0] for key in NATIVE_SINKS if key.startswith(prefix)}
        if module.config_module:
            names |= set(self.analysis.class_index[CONFIG_MODULE_CLASS].methods)
        return sorted(name for name in names if not (name.startswith("__") and name.endswith("__")))

    def run(self) -> None:
        """Emit every module's names, count how dominated each module is, list modules whole."""
        analysis = self.analysis
        verdicts: dict[str, tuple[int, int, str | None]] = {}
        for module_name in sorted(analysis.modules):
            module = analysis.modules[module_name]
            public = module.all_names
            dangerous = 0
            total = 0
            best: str | None = None
            for name in self.module_names(module):
                refs = analysis.module_member(module_name, name)
                whys = self.emit_name(module_name, name, refs)
                if name.startswith("_") or (public is not None and name not in public):
                    continue
                if not any(self.counts_as_callable(module_name, name, ref) for ref in refs):
                    continue
                total += 1
                if whys:
                    dangerous += 1
                    best = min([*whys, *([best] if best else [])], key=WHYS.index)
            verdicts[module_name] = (dangerous, total, best)
        self.collapse(verdicts)
        for name, why in NATIVE_EXPORTS.items():
            if name.split(".")[0] in self.origins():
                self.add(name, why)

    def origins(self) -> set[str]:
        """The supported packages analysed."""
        return {module.origin for module in self.analysis.modules.values()} - {"stdlib"}

    def counts_as_callable(self, module_name: str, name: str, ref: Ref) -> bool:
        """Functions and classes defined in the module (or, for a package, inside it), and C
        functions it re-exports; exception classes aside."""
        is_package = self.analysis.modules[module_name].is_package
        if ref.kind == "func":
            home = ref.key[2:].split(":")[0]
            return home == module_name or (is_package and home.startswith(module_name + "."))
        if ref.kind == "class":
            home = ref.key.split(":")[0]
            if not (home == module_name or (is_package and home.startswith(module_name + "."))):
                return False
            return not any(
                item.kind == "ext" and item.key.endswith(("Exception", "Error", "Warning"))
                for item in self.analysis.class_mro(ref.key)
            )
        if ref.kind == "ext":
            return self.analysis.ext_why(ref.key) is not None
        return False

    def collapse(self, verdicts: dict[str, tuple[int, int, str | None]]) -> None:
        """List whole the modules that are dangerous to import, those dominated by dangerous
        callables, test packages holding any, and packages whose every submodule is listed."""
        analysis = self.analysis
        children: dict[str, list[str]] = defaultdict(list)
        for name in analysis.modules:
            if "." in name:
                children[name.rsplit(".", 1)[0]].append(name)
        whole: dict[str, str] = {}
        self.below = {}
        for name, why in self.entries.items():
            parts = name.split(".")
            for end in range(1, len(parts)):
                prefix = ".".join(parts[:end])
                current = self.below.get(prefix)
                if current is None or WHYS.index(why) < WHYS.index(current):
                    self.below[prefix] = why
        for module_name in sorted(analysis.modules, key=lambda name: (-name.count("."), name)):
            dangerous, total, best = verdicts[module_name]
            import_why = next(
                (
                    why
                    for why in WHYS
                    if analysis.import_time(f"I|{module_name}", why)
                    and f"I|{module_name}" in analysis.reach[why]
                ),
                None,
            )
            last = module_name.split(".")[-1]
            is_test = last in TEST_PACKAGE_NAMES or (
                last.startswith("test_") and analysis.modules[module_name].origin != "stdlib"
            )
            kids = children.get(module_name, [])
            kid_whys = [whole[name] for name in kids if name in whole]
            verdict: str | None = None
            if import_why is not None:
                verdict = import_why
            elif is_test:
                below = self.has_dangerous_below(module_name)
                candidates = [*kid_whys, *([best] if best else []), *([below] if below else [])]
                verdict = min(candidates, key=WHYS.index) if candidates else None
            elif dangerous >= 2 and dangerous >= DOMINATION * total:
                verdict = best
            elif kids and len(kid_whys) == len(kids) and total == dangerous:
                verdict = min([*kid_whys, *([best] if best else [])], key=WHYS.index)
            if verdict is None:
                continue
            if self.needed.forbids(module_name) is None:
                whole[module_name] = verdict
                self.add(module_name, verdict)
            else:
                self.withheld.setdefault(
                    module_name, f"{verdict}, would block {self.needed.forbids(module_name)}"
                )

    def has_dangerous_below(self, prefix: str) -> str | None:
        """The strongest reason among the entries found under ``prefix``."""
        return self.below.get(prefix)


def split_entry(entry: str, analysis: Analysis, needed: Needed) -> list[str]:
    """Replace a hand-written prefix that would block a needed name by its children (the
    submodules of the module and the functions and classes it binds), recursively, leaving
    the needed names out."""
    if needed.forbids(entry) is None:
        return [entry]
    if entry not in analysis.modules:
        return []
    children: set[str] = set()
    for name in analysis.modules[entry].bindings:
        if name.startswith("__") and name.endswith("__"):
            continue
        refs = analysis.module_member(entry, name)
        if any(
            ref.kind in {"func", "handle"}
            or (ref.kind == "class" and ref.key.replace(":", ".") not in needed.names)
            for ref in refs
        ):
            children.add(f"{entry}.{name}")
    for name in analysis.modules:
        if name.startswith(entry + ".") and name.count(".") == entry.count(".") + 1:
            children.add(name)
    out: list[str] = []
    for child in sorted(children):
        out.extend(split_entry(child, analysis, needed))
    return out


def covered(entry: str, entries: Iterable[str]) -> bool:
    """Whether ``entry`` equals or lies under one of ``entries``."""
    return table_lookup(entry, frozenset(entries)) is not None


def minimise(entries: dict[str, str]) -> dict[str, str]:
    """Drop the entries a shorter entry already covers."""
    names = frozenset(entries)
    out: dict[str, str] = {}
    for name in sorted(entries):
        parts = name.split(".")
        if any(".".join(parts[:end]) in names for end in range(1, len(parts))):
            continue
        out[name] = entries[name]
    return out


# --------------------------------------------------------------------------------------------
# Existence check of the standard library entries
# --------------------------------------------------------------------------------------------

_CHECK_SCRIPT = r"""
import importlib, importlib.util, json, sys, types, warnings
warnings.simplefilter("ignore")
no_import = set(json.loads(sys.argv[1]))
result = {}
for entry in json.loads(sys.stdin.read()):
    parts = entry.split(".")
    try:
        if importlib.util.find_spec(parts[0]) is None:
            result[entry] = "unavailable"; continue
        if len(parts) == 1:
            result[entry] = "ok"; continue
        if parts[0] in no_import:
            result[entry] = "unchecked"; continue
        obj = importlib.import_module(parts[0])
        name = parts[0]
        status = "ok"
        for i, part in enumerate(parts[1:], 1):
            name = name + "." + part
            if isinstance(obj, types.ModuleType) and hasattr(obj, "__path__") and \
                    importlib.util.find_spec(name) is not None:
                if i == len(parts) - 1:
                    break
                if name in no_import or name.endswith(".__main__"):
                    status = "unchecked"; break
                obj = importlib.import_module(name)
            elif hasattr(obj, part):
                obj = getattr(obj, part)
            else:
                status = "missing"; break
        result[entry] = status
    except Exception:
        result[entry] = "unavailable"
print(json.dumps(result))
"""


def check_stdlib_entries(entries: list[str]) -> dict[str, str]:
    """Import each standard library entry in a child interpreter and report its status."""
    completed = subprocess.run(
        [sys.executable, "-c", _CHECK_SCRIPT, json.dumps(sorted(NO_IMPORT))],
        input=json.dumps(entries),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_modules(sources: list[tuple[str, Path, bool, str]]) -> dict[str, ModuleInfo]:
    """Parse every module once (the first of a name wins); sources that are not valid
    Python 3.11 (lib2to3's test data) are skipped."""
    modules: dict[str, ModuleInfo] = {}
    for name, path, is_package, origin in sources:
        if name in modules:
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):
            continue  # sources of another Python version (lib2to3's fixtures and the like)
        module = ModuleInfo(name, path, origin, is_package, tree)
        ModuleCollector(module).run()
        modules[name] = module
    return modules


def is_test_module(module_name: str) -> bool:
    """Whether the module belongs to a test package, which no model needs."""
    return any(part in TEST_PACKAGE_NAMES or part.startswith("test_") for part in module_name.split("."))


def recorded_allowlist() -> frozenset[str]:
    """The names real models pickle, as recorded in ``allowlist.txt`` next to the output
    (by ``tools/record_pickled_globals.py``), when that file exists."""
    if not ALLOWLIST.exists():
        return frozenset()
    lines = ALLOWLIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.split("\t")[0] for line in lines if line and not line.startswith("#"))


def needed_names(analysis: Analysis, recorded: Iterable[str] = ()) -> Needed:
    """What no entry may cover: ``NEEDED_BY_MODELS``, the classes models are made of
    (``NEEDED_BASES``) under their own and their package's names, and ``recorded``."""
    exact = {name for name in NEEDED_BY_MODELS if not name.endswith(".*")} | set(recorded)
    subtrees = {name[:-2] for name in NEEDED_BY_MODELS if name.endswith(".*")}
    for base in NEEDED_BASES:
        if base not in analysis.class_index:
            continue
        for key in analysis.class_index:
            if Ref("class", base) in analysis.class_mro(key) and not is_test_module(key.split(":")[0]):
                exact.add(key.replace(":", "."))
    # the public names under which a package publishes those classes (sklearn.ensemble.X)
    for module_name, module in analysis.modules.items():
        if not module.is_package or is_test_module(module_name):
            continue
        for name in module.bindings:
            if name.startswith("_"):
                continue
            for ref in analysis.module_member(module_name, name):
                canonical = ref.key.replace(":", ".")
                if (
                    ref.kind == "class"
                    and canonical in exact
                    and canonical.split(".")[0] == module_name.split(".")[0]
                ):
                    exact.add(f"{module_name}.{name}")
    return Needed(exact, subtrees)


@dataclass
class Outcome:
    """The entries to write, and what the summary reports about them."""

    entries: dict[str, str]
    withheld: dict[str, str]  # dangerous names left out because models need them -> why
    dropped: list[str]  # standard library names that do not exist on this platform
    conflicts: dict[str, str]  # entry -> the recorded allowlist name it blocks


def assemble(analysis: Analysis, *, check: bool) -> Outcome:
    """The analysis' entries, the hand-written ones it does not cover, the advisories;
    minimised and (with ``check``) the standard library ones checked for existence."""
    recorded = recorded_allowlist()
    needed = needed_names(analysis, recorded)
    # the hand-written entries give way only to what ordinary models need by construction;
    # a conflict with the recorded allowlist is reported, not resolved here
    needed_by_design = needed_names(analysis)

    emitter = Emitter(analysis, needed)
    emitter.run()
    entries = dict(emitter.entries)
    analysed = frozenset(entries)
    for entry in sorted(HAND_WRITTEN_BLOCKLIST):
        for part in split_entry(entry, analysis, needed_by_design):
            if not covered(part, analysed) and part not in entries:
                entries[part] = ADVISORY
    for entry in ADVISORIES:
        top = entry.split(".")[0]
        available = top in analysis.modules or top == "pip"
        if available and not covered(entry, analysed) and needed_by_design.forbids(entry) is None:
            entries.setdefault(entry, ADVISORY)
    entries = minimise(entries)

    dropped: list[str] = []
    if check:
        stdlib_top = set(sys.stdlib_module_names)
        status = check_stdlib_entries([name for name in entries if name.split(".")[0] in stdlib_top])
        dropped = sorted(name for name, state in status.items() if state == "missing")
        for name in dropped:
            del entries[name]
    names = frozenset(entries)
    conflicts = {
        blocker: name for name in sorted(recorded) if (blocker := table_lookup(name, names)) is not None
    }
    return Outcome(entries, emitter.withheld, dropped, conflicts)


def render(entries: dict[str, str], versions: dict[str, str]) -> str:
    """The file: the header naming the generator and the versions read, then sorted entries."""
    header_versions = ", ".join(f"{name} {version}" for name, version in versions.items())
    lines = [
        f"# Generated by tools/find_dangerous_callables.py from {header_versions}; do not edit by hand.",
        "# qualified-name\twhy",
        *(f"{name}\t{entries[name]}" for name in sorted(entries)),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Read the sources, analyse them, write the file and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--site-packages",
        action="append",
        type=Path,
        default=[],
        help="another site-packages folder to look for supported packages in (repeatable)",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--explain", action="append", default=[], help="print why NAME is dangerous")
    parser.add_argument("--no-check", action="store_true", help="skip the stdlib existence check")
    args = parser.parse_args(argv)
    started = time.monotonic()
    sys.setrecursionlimit(20000)

    sources, versions = collect_sources(args.site_packages)
    modules = parse_modules(sources)
    analysis = Analysis(modules)
    analysis.build()
    analysis.solve()
    for name in args.explain:
        explain(analysis, name)
    outcome = assemble(analysis, check=not args.no_check)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(outcome.entries, versions), encoding="utf-8")
    report(outcome, elapsed=time.monotonic() - started, module_count=len(modules))
    return 0


def explain(analysis: Analysis, name: str) -> None:
    """Print, for each meaning of ``name``, the call chain from it to a sink."""
    refs = analysis.resolve_dotted(name)
    for ref in sorted(refs):
        nodes = []
        if ref.kind == "func":
            nodes = [ref.key]
        elif ref.kind == "class":
            nodes = [f"U|{ref.key}", f"C|{ref.key}"]
        elif ref.kind == "ext":
            nodes = [f"X|{ref.key}"]
        for node in nodes:
            chain = analysis.chain(node)
            print(f"{name} [{node}]: " + (" -> ".join(chain) if chain else "safe"), file=sys.stderr)


def report(outcome: Outcome, *, elapsed: float, module_count: int) -> None:
    """The summary on stderr: entries per package and per reason, what was left out."""
    stdlib_top = set(sys.stdlib_module_names)
    packages = {name for name, _ in SUPPORTED}
    per_package: Counter[str] = Counter()
    for name in outcome.entries:
        top = name.split(".")[0]
        per_package["stdlib" if top in stdlib_top else top if top in packages else "other"] += 1
    per_why = Counter(outcome.entries.values())
    err = sys.stderr
    print(f"{len(outcome.entries)} entries from {module_count} modules in {elapsed:.0f} s", file=err)
    print("per package: " + ", ".join(f"{k} {v}" for k, v in sorted(per_package.items())), file=err)
    print("per why: " + ", ".join(f"{k} {v}" for k, v in sorted(per_why.items())), file=err)
    if outcome.dropped:
        print(f"dropped {len(outcome.dropped)} standard library names absent here", file=err)
    direct = {name: why for name, why in outcome.withheld.items() if why.endswith(f"would block {name}")}
    if direct:
        print(f"withheld {len(direct)} dangerous names that models need (judged by other checks):", file=err)
        for name, why in sorted(direct.items()):
            print(f"  {name}\t{why.split(',')[0]}", file=err)
    others = len(outcome.withheld) - len(direct)
    if others:
        print(f"not listed whole or under other names, to spare names models need: {others}", file=err)
    if outcome.conflicts:
        print("hand-written entries that block names of allowlist.txt:", file=err)
        for entry, name in sorted(outcome.conflicts.items()):
            print(f"  {entry}\tblocks {name}", file=err)


if __name__ == "__main__":
    raise SystemExit(main())
