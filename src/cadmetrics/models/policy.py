"""Scan modes and policies: which globals a pickle may name.

A policy is data: two sets of dotted names. A blocklist entry matches a global
``module.name`` when it equals it or is a prefix of it at a dot, so ``os`` covers
``os.system`` and ``os.path.join`` (blocking a whole package is sound). An allowlist entry
matches only the global it names exactly: a class admitted for reconstruction (an estimator,
a numpy dtype) is no licence for every function of its module, some of which write files or
run code. The blocklist wins in every mode: the allowlist can widen what is admitted, never
readmit something known to be dangerous.
"""

from __future__ import annotations

import _compat_pickle
import enum
import importlib.resources
import importlib.util
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


def _entries(name: str) -> dict[str, tuple[str, ...]]:
    """A policy data file: one global per line, then its tab-separated notes."""
    text = importlib.resources.files("cadmetrics.models").joinpath("data", name).read_text(encoding="utf-8")
    entries: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            qualified, *notes = line.split("\t")
            entries[qualified] = tuple(notes)
    return entries


#: Every callable, in the standard library and the supported packages, that executes code,
#: compiles, imports, spawns a process, opens or writes a file, opens a connection or unpickles
#: again, found by static analysis of their sources (``tools/find_dangerous_callables.py``),
#: with the published techniques of the advisories: name -> (why,). Blocking is by prefix.
BLOCKLIST_ENTRIES = _entries("blocklist.txt")
DEFAULT_BLOCKLIST = frozenset(BLOCKLIST_ENTRIES)

#: Exactly the classes and vetted reconstructors and functions that real models of the
#: supported libraries pickle, recorded by pickling them (``tools/record_pickled_globals.py``),
#: and what ``torch.load(weights_only=True)`` admits: name -> (kind, library). No package
#: prefixes: each entry admits itself only.
ALLOWLIST_ENTRIES = _entries("allowlist.txt")
DEFAULT_ALLOWLIST = frozenset(ALLOWLIST_ENTRIES)
#: Classes admitted only to be rebuilt (NEWOBJ then BUILD, as their own pickles do), never
#: called: their constructor does what a model file must not (lightgbm's Booster opens files
#: and network connections from its arguments). The scan reports any call of one.
REBUILD_ONLY = frozenset(name for name, notes in ALLOWLIST_ENTRIES.items() if notes[:1] == ("rebuild",))

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
    rebuild_only: frozenset[str] = REBUILD_ONLY

    def extend(self, *, block: Iterable[str] = (), allow: Iterable[str] = ()) -> Policy:
        """A new policy with more entries. ``allow`` names exact classes or functions
        (``mypkg.models.Net``); naming a module or package raises :class:`ValueError`, since
        it would admit nothing (and admitting a whole package is what lets a payload in)."""
        allowed = frozenset(allow)
        for entry in allowed:
            if "." not in entry or _is_module(entry):
                raise ValueError(
                    f"allow entries name classes or functions exactly; {entry!r} is a module or "
                    "package: name each of its classes the models need"
                )
        return Policy(
            self.blocklist | frozenset(block), self.allowlist | allowed, self.rebuild_only - allowed
        )

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
            if spellings[-1] not in self.allowlist:
                return Judgement(False, "not_allowlisted", f"{spellings[-1]} is not on the allowlist")
            return Judgement(True, "allowed", "allowlisted")
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


def _is_module(name: str) -> bool:
    """Whether ``name`` is an importable module (its parent packages are imported to tell)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _match(qualified: str, entries: frozenset[str]) -> str | None:
    """The entry that ``qualified`` falls under (itself or a dotted prefix), if any."""
    parts = qualified.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in entries:
            return candidate
    return None
