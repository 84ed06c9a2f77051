"""The files a check was given: named files, and the dashboards or rule files under directories.

A file named on the command line is always read (whatever its extension), and one that is not
a dashboard (or rule file) is a finding; in a walked directory only ``*.json`` (dashboards) or
``*.yaml``/``*.yml`` (rules) files are read, and those of another kind are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from cadmetrics.check.grafana import Dashboard, read_dashboard
from cadmetrics.check.rulefiles import RuleFile, read_rule_file
from cadmetrics.errors import InputError
from cadmetrics.walk import walk_files

PathLike = str | os.PathLike[str]
_Read = TypeVar("_Read", Dashboard, RuleFile)

DASHBOARD_SUFFIXES = (".json",)
RULE_SUFFIXES = (".yaml", ".yml")


def read_dashboards(paths: Iterable[PathLike], errors: list[InputError] | None = None) -> list[Dashboard]:
    """The dashboards under ``paths``. A file that cannot be read raises :class:`InputError`, or,
    when ``errors`` is given, is added to it and skipped."""
    return _read_all(paths, DASHBOARD_SUFFIXES, read_dashboard, errors)


def read_rule_files(paths: Iterable[PathLike], errors: list[InputError] | None = None) -> list[RuleFile]:
    """The rule files under ``paths`` (unreadable files as in :func:`read_dashboards`)."""
    return _read_all(paths, RULE_SUFFIXES, read_rule_file, errors)


def _read_all(
    paths: Iterable[PathLike],
    suffixes: tuple[str, ...],
    read: Callable[..., _Read | None],
    errors: list[InputError] | None,
) -> list[_Read]:
    found: list[_Read] = []
    for path, named in _files(paths, suffixes):
        try:
            item = read(path, named=named)
        except InputError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        if item is not None:
            found.append(item)
    return found


def _files(paths: Iterable[PathLike], suffixes: tuple[str, ...]) -> list[tuple[Path, bool]]:
    names = [os.fspath(path) for path in paths]
    return [(path, named) for path, named in walk_files(names) if named or path.suffix.lower() in suffixes]
