"""The files a check was given: named files, and the dashboards or rule files under directories.

A file named on the command line is always read (whatever its extension), and one that is not
a dashboard (or rule file) is a finding; in a walked directory only ``*.json`` (dashboards) or
``*.yaml``/``*.yml`` (rules) files are read, and those of another kind are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cadmetrics.check.grafana import Dashboard, read_dashboard
from cadmetrics.check.rulefiles import RuleFile, read_rule_file
from cadmetrics.errors import InputError
from cadmetrics.walk import walk_files

PathLike = str | os.PathLike[str]

DASHBOARD_SUFFIXES = (".json",)
RULE_SUFFIXES = (".yaml", ".yml")


def read_dashboards(paths: Iterable[PathLike], errors: list[InputError] | None = None) -> list[Dashboard]:
    """The dashboards under ``paths``. A file that cannot be read raises :class:`InputError`, or,
    when ``errors`` is given, is added to it and skipped."""
    found: list[Dashboard] = []
    for path, named in _files(paths, DASHBOARD_SUFFIXES):
        try:
            dashboard = read_dashboard(path, named=named)
        except InputError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        if dashboard is not None:
            found.append(dashboard)
    return found


def read_rule_files(paths: Iterable[PathLike], errors: list[InputError] | None = None) -> list[RuleFile]:
    """The rule files under ``paths`` (unreadable files as in :func:`read_dashboards`)."""
    found: list[RuleFile] = []
    for path, named in _files(paths, RULE_SUFFIXES):
        try:
            rule_file = read_rule_file(path, named=named)
        except InputError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        if rule_file is not None:
            found.append(rule_file)
    return found


def _files(paths: Iterable[PathLike], suffixes: tuple[str, ...]) -> list[tuple[Path, bool]]:
    names = [os.fspath(path) for path in paths]
    return [(path, named) for path, named in walk_files(names) if named or path.suffix.lower() in suffixes]
