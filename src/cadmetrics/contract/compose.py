"""Composition: the library's contract, a host's own files and plugins' files become one.

A host or plugin contributes metrics in three ways: ``extends`` inside a file, paths given to
:func:`load_contract`, or a ``cadmetrics.contracts`` entry point (whose object is a path, a list
of paths, or a callable returning either). Files are read once each, whatever the route, so a
diamond of ``extends`` is not a collision; the same metric name declared by two different files
is, and the error names both places.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from cadmetrics.contract.lint import Severity, lint
from cadmetrics.contract.loader import ContractFile, parse_contract_file
from cadmetrics.contract.model import Contract, ContractPart, MetricSpec, SpanSpec, definition_difference
from cadmetrics.errors import ContractCollisionError, ContractError, ContractLoadError

ENTRY_POINT_GROUP = "cadmetrics.contracts"

PathLike = str | os.PathLike[str]


def packaged_contracts() -> Path:
    """The library's ``contracts/`` (metrics.yaml, dashboards/, alerts/): package data in a
    wheel, the repository's folder in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_contracts", here.parents[1] / "contracts"):
        if (candidate / "metrics.yaml").is_file():
            return candidate
    raise ContractError(
        "the packaged contract metrics.yaml is missing from this installation of cadmetrics; "
        "reinstall the package"
    )


def packaged_contract_path() -> Path:
    """The library's own ``metrics.yaml``."""
    return packaged_contracts() / "metrics.yaml"


def read_files(paths: Iterable[PathLike]) -> list[ContractFile]:
    """Parse ``paths`` and everything they extend, extended files first, each file once."""
    seen: dict[Path, ContractFile] = {}
    order: list[ContractFile] = []

    def visit(path: Path, chain: tuple[Path, ...], named_at: tuple[str, int]) -> None:
        key = _identity(path)
        if key in chain:
            cycle = " -> ".join(str(p) for p in (*chain, key))
            raise ContractLoadError(*named_at, "extends-cycle", f"contracts extend in a cycle: {cycle}")
        if key in seen:
            return
        parsed = parse_contract_file(path)
        for parent in parsed.extends:
            visit(Path(parent.target), (*chain, key), (parsed.path, parent.line))
        seen[key] = parsed
        order.append(parsed)

    for path in paths:
        visit(Path(path), (), (str(path), 0))
    return order


def _identity(path: Path) -> Path:
    """The key a file is read once under: its resolved path. A name the system cannot even
    look up (a NUL byte, a lone surrogate) keys as given; reading it then says why, in the one
    place that reads contract files (:func:`parse_contract_file`)."""
    try:
        return path.resolve()
    except (OSError, ValueError):
        return path


def compose(files: Sequence[ContractFile]) -> Contract:
    """Merge parsed files into one contract; a name declared by two files is an error.

    The one exception is a name another library provides (``provided_by``) declared alike by
    two files: a host and a plugin may both claim prometheus_client's ``process_*`` metrics, and
    the second identical claim is dropped. Duplicates inside one file are left for lint to
    report (rule CM011), so that ``contract lint`` shows every problem of a file at once.
    """
    owner: dict[str, MetricSpec] = {}
    owner_file: dict[str, str] = {}
    metrics: list[MetricSpec] = []
    for file in files:
        for spec in file.metrics:
            earlier = owner.get(spec.name)
            if earlier is not None and owner_file[spec.name] != file.path:
                if spec.provided_by is not None and not definition_difference(earlier, spec):
                    continue
                raise ContractCollisionError(
                    file.path,
                    spec.location.line,
                    "collision",
                    f"metric {spec.name!r} is already declared in {earlier.location}"
                    f"{definition_difference(earlier, spec)}; each metric belongs to exactly one "
                    "contract file (a name another library registers may be claimed by several "
                    "files with provided_by and the same definition)",
                )
            owner.setdefault(spec.name, spec)
            owner_file.setdefault(spec.name, file.path)
            metrics.append(spec)
    parts = tuple(ContractPart(f.namespace, f.version, f.path, f.namespaces) for f in files)
    return Contract(parts=parts, metrics=tuple(metrics), spans=_spans(files))


def _spans(files: Sequence[ContractFile]) -> tuple[SpanSpec, ...]:
    """Every file's spans; a span name declared by two files is a collision, as for metrics
    (twice in one file is left to lint, rule CM020)."""
    owner: dict[str, tuple[str, SpanSpec]] = {}
    spans: list[SpanSpec] = []
    for file in files:
        for span in file.spans:
            earlier = owner.setdefault(span.name, (file.path, span))
            if earlier[0] != file.path:
                raise ContractCollisionError(
                    file.path,
                    span.location.line,
                    "collision",
                    f"span {span.name!r} is already declared in {earlier[1].location}; each span "
                    "belongs to exactly one contract file",
                )
            spans.append(span)
    return tuple(spans)


def _without_replaced_library(files: list[ContractFile]) -> list[ContractFile]:
    """``files`` less the installed library contract when another file is a version of it: the
    same main namespace and at least half of its metric names (``contract lint
    contracts/metrics.yaml`` inside the repository, while a wheel's copy is installed). That
    file replaces the installed one instead of colliding with it name by name; a host file that
    merely redeclares a library metric still collides."""
    installed = _identity(packaged_contract_path())
    library = next((f for f in files if _identity(Path(f.path)) == installed), None)
    if library is None:
        return files
    names = {spec.name for spec in library.metrics}

    def is_version(file: ContractFile) -> bool:
        shared = names.intersection(spec.name for spec in file.metrics)
        return file.namespace == library.namespace and 2 * len(shared) >= len(names)

    if any(is_version(f) for f in files if f is not library):
        return [f for f in files if f is not library]
    return files


def entry_point_paths() -> list[Path]:
    """Contract files contributed by installed plugins through the entry point group."""
    paths: list[Path] = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {entry.name} = {entry.value}"
        try:
            target: object = entry.load()
        except Exception as exc:
            raise ContractLoadError(where, 0, "entry-point", f"cannot be loaded: {exc}") from exc
        if callable(target):
            factory: Callable[[], object] = target
            target = factory()
        items = target if isinstance(target, list | tuple) else [target]
        for item in items:
            if not isinstance(item, str | os.PathLike):
                raise ContractLoadError(where, 0, "entry-point", f"must give a contract path, not {item!r}")
            paths.append(Path(item))
    return paths


def load_contract(
    *paths: PathLike,
    library: bool = True,
    entry_points: bool = True,
    check: bool = True,
) -> Contract:
    """Load the contract a process runs under.

    With no arguments this is the library's own contract (plus installed plugins' entry
    points). ``paths`` add a host's files (and whatever they extend). With ``check`` the
    result must pass every lint rule, so a broken contract fails at start-up, not at the
    first scrape.
    """
    sources: list[PathLike] = []
    if library:
        sources.append(packaged_contract_path())
    if entry_points:
        sources.extend(entry_point_paths())
    sources.extend(paths)
    if not sources:
        raise ContractError("no contract files to load (library=False and no paths given)")
    files = read_files(sources)
    if library and paths:
        files = _without_replaced_library(files)
    contract = compose(files)
    if check:
        errors = [f for f in lint(contract) if f.severity is Severity.ERROR]
        if errors:
            shown = "\n".join(f"  {finding}" for finding in errors[:20])
            more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
            raise ContractError(f"the contract breaks {len(errors)} lint rule(s):\n{shown}{more}")
    return contract
