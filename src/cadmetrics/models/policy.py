"""Scan modes and policies: which globals a pickle may name.

A policy is data: two sets of dotted prefixes. An entry matches a global ``module.name`` when
it equals it or is a prefix of it at a dot, so ``os`` covers ``os.system`` and
``os.path.join``, and ``builtins.eval`` covers just that function. The blocklist wins in every
mode: the allowlist can widen what is admitted, never readmit something known to be dangerous.
"""

from __future__ import annotations

import _compat_pickle
import enum
import warnings
from collections.abc import Iterable

import attrs

from cadmetrics.errors import UnknownScanMode


class Mode(enum.StrEnum):
    AUDIT = "audit"  # record everything, block nothing: unsafe for untrusted files
    BLOCKLIST = "blocklist"  # block known-dangerous globals and constructs
    ALLOWLIST = "allowlist"  # block every global not on the allowlist

    @property
    def gauge_value(self) -> int:
        """The value of ``cadmetrics_model_opcode_mode`` (0 audit, 1 blocklist, 2 allowlist)."""
        return list(Mode).index(self)


_LEGACY_MODES = {"blacklist": Mode.BLOCKLIST, "whitelist": Mode.ALLOWLIST}


def parse_mode(mode: str | Mode) -> Mode:
    """The mode called ``mode``; legacy names warn, unknown names raise at once."""
    if isinstance(mode, Mode):
        return mode
    name = str(mode).strip().lower()
    if name in _LEGACY_MODES:
        replacement = _LEGACY_MODES[name]
        warnings.warn(
            f"scan mode {name!r} is deprecated; use {replacement.value!r}", DeprecationWarning, stacklevel=3
        )
        return replacement
    try:
        return Mode(name)
    except ValueError:
        raise UnknownScanMode(f"unknown scan mode {mode!r}: use one of audit, blocklist, allowlist") from None


#: Globals no model needs and attackers use: code execution, process and file access, network,
#: imports, nested deserialisation, foreign function calls, indirection through functools and
#: operator, and the interpreter's own machinery.
DEFAULT_BLOCKLIST = frozenset(
    {
        # processes, shells, the OS
        "os",
        "posix",
        "nt",
        "posixpath",
        "ntpath",
        "subprocess",
        "pty",
        "commands",
        "popen2",
        "platform",
        "shutil",
        "signal",
        "resource",
        "sys",
        "_posixsubprocess",
        "multiprocessing",
        "concurrent",
        "threading",
        "_thread",
        "asyncio",
        "sched",
        # code execution and imports
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.__import__",
        "builtins.open",
        "builtins.input",
        "builtins.breakpoint",
        "builtins.help",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.globals",
        "builtins.locals",
        "builtins.vars",
        "builtins.exit",
        "builtins.quit",
        "builtins.memoryview",
        "builtins.type",
        "builtins.classmethod",
        "builtins.staticmethod",
        "builtins.property",
        "builtins.super",
        "importlib",
        "imp",
        "pkgutil",
        "zipimport",
        "runpy",
        "code",
        "codeop",
        "types",
        "inspect",
        "ast",
        "dis",
        "gc",
        "ctypes",
        "_ctypes",
        "cffi",
        "marshal",
        "_io",
        "io",
        "pathlib",
        "tempfile",
        "glob",
        "fileinput",
        "linecache",
        "mmap",
        "faulthandler",
        # profilers, debuggers, documentation and packaging tools that run code
        "cProfile",
        "profile",
        "pstats",
        "timeit",
        "trace",
        "pdb",
        "bdb",
        "pydoc",
        "doctest",
        "unittest",
        "idlelib",
        "lib2to3",
        "pip",
        "setuptools",
        "distutils",
        "ensurepip",
        "venv",
        "site",
        "sysconfig",
        "webbrowser",
        "antigravity",
        "this",
        # indirection
        "_operator",
        "_frozen_importlib",
        "_frozen_importlib_external",
        "_osx_support",
        "_aix_support",
        "_bootsubprocess",
        "_posixshmem",
        "_winapi",
        "msvcrt",
        "winreg",
        "functools.partial",
        "functools.reduce",
        "functools.partialmethod",
        "functools.singledispatch",
        "operator.attrgetter",
        "operator.methodcaller",
        "operator.itemgetter",
        "operator.call",
        "copyreg.add_extension",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        # nested deserialisation
        "pickle",
        "_pickle",
        "cPickle",
        "pickletools",
        "shelve",
        "dill",
        "cloudpickle",
        "joblib",
        "torch.load",
        "torch.hub",
        "torch.jit",
        "torch.package",
        "torch.serialization",
        "numpy.load",
        "numpy.lib.npyio",
        "numpy.testing",
        "numpy.f2py",
        "numpy.distutils",
        "yaml",
        "jsonpickle",
        # corners of allowlisted packages that run code, spawn processes, fetch or import by
        # name (sklearn.utils._testing runs a Python script in a subprocess)
        "sklearn.utils._testing",
        "sklearn.utils.estimator_checks",
        "sklearn.utils.discovery",
        "sklearn.utils._set_output",
        "sklearn.datasets",
        "sklearn.externals",
        "sklearn.callback",
        "sklearn.conftest",
        "scipy.sparse.linalg",
        # network
        "socket",
        "_socket",
        "ssl",
        "http",
        "urllib",
        "urllib2",
        "httplib",
        "ftplib",
        "smtplib",
        "telnetlib",
        "poplib",
        "imaplib",
        "xmlrpc",
        "socketserver",
        "requests",
        "aiohttp",
        # other known gadgets
        "logging.config",
        "uuid._get_command_stdout",
        "ctypes.util",
        "sqlite3",
        "_sqlite3",
        "dbm",
        "zipfile",
        "tarfile",
        "lzma",
        "bz2",
        "gzip",
        "zlib.decompressobj",
    }
)

#: Ordinary models: builtin containers and scalars, collections, datetime, decimal, numpy
#: arrays and dtypes, scipy sparse matrices and scikit-learn estimators.
DEFAULT_ALLOWLIST = frozenset(
    {
        *(
            f"builtins.{name}"
            for name in (
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
            )
        ),
        "copyreg._reconstructor",
        "_codecs.encode",  # how protocols 0-2 write bytes
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
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.random._pickle",
        "numpy.ma.core._mareconstruct",
        "numpy.core.numeric._frombuffer",  # protocol 5 arrays
        "numpy._core.numeric._frombuffer",
        # random generators kept by estimators (RandomState, Generator and their bit generators)
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "scipy.sparse",
        "sklearn",
    }
)

#: Attribute names that, reached through a dotted global name (``pkg.os.system``), mean a
#: traversal into something dangerous whatever module it starts from.
_DANGEROUS_SEGMENTS = frozenset(
    {"os", "sys", "subprocess", "builtins", "posix", "nt", "system", "popen", "eval", "exec", "pickle"}
)


@attrs.frozen
class Judgement:
    allowed: bool
    reason: str  # one of the contract's block reasons, or "allowed"
    detail: str


@attrs.frozen
class Policy:
    """What each mode admits. ``extend`` returns a new policy with more entries."""

    blocklist: frozenset[str] = DEFAULT_BLOCKLIST
    allowlist: frozenset[str] = DEFAULT_ALLOWLIST

    def extend(self, *, block: Iterable[str] = (), allow: Iterable[str] = ()) -> Policy:
        return Policy(self.blocklist | frozenset(block), self.allowlist | frozenset(allow))

    def judge(self, module: str, name: str, mode: Mode) -> Judgement:
        """Judge the global ``module.name`` as the unpickler would resolve it: Python 2 names
        are mapped as ``pickle`` maps them, and both spellings are judged."""
        spellings = _spellings(module, name)
        for qualified in spellings:
            blocked_by = _match(qualified, self.blocklist)
            if blocked_by is not None:
                return Judgement(False, "dangerous_global", f"{qualified} is blocklisted ({blocked_by})")
        for segment in name.split("."):
            if segment in _DANGEROUS_SEGMENTS or (segment.startswith("__") and segment.endswith("__")):
                return Judgement(False, "dangerous_construct", f"{module}.{name} reaches {segment!r}")
        if "." in name and spellings[-1] not in self.allowlist:
            # a dotted name walks attributes (protocol 4): from an innocent module it reaches
            # whatever that module imported (sklearn.base + np.testing...), which no list of
            # names can follow; only an exact allowlist entry admits one
            return Judgement(
                False,
                "dangerous_construct",
                f"{module}.{name} walks attributes and is not exactly allowlisted",
            )
        if mode is Mode.ALLOWLIST:
            allowed_by = _match(spellings[-1], self.allowlist)
            if allowed_by is None:
                return Judgement(False, "not_allowlisted", f"{spellings[-1]} is not on the allowlist")
            return Judgement(True, "allowed", f"allowlisted ({allowed_by})")
        return Judgement(True, "allowed", "not on the blocklist")


DEFAULT_POLICY = Policy()


def _spellings(module: str, name: str) -> tuple[str, ...]:
    """``module.name`` as written and, for Python 2 names, as ``pickle`` maps them (last)."""
    written = f"{module}.{name}"
    if (module, name) in _compat_pickle.NAME_MAPPING:
        mapped_module, mapped_name = _compat_pickle.NAME_MAPPING[(module, name)]
        return (written, f"{mapped_module}.{mapped_name}")
    if module in _compat_pickle.IMPORT_MAPPING:
        return (written, f"{_compat_pickle.IMPORT_MAPPING[module]}.{name}")
    return (written,)


def _match(qualified: str, entries: frozenset[str]) -> str | None:
    """The entry that ``qualified`` falls under (itself or a dotted prefix), if any."""
    parts = qualified.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in entries:
            return candidate
    return None
