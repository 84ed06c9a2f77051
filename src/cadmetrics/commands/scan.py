"""``cadmetrics scan``: scan files and directories, a verdict per file with its reasons.

Exit 0 when every model is allowed, 1 when any is blocked, 2 when an input cannot be read or
a file named on the command line is not a model (in a walked directory such files are only
listed as skipped). Each report names the format found by content; ``--json`` prints a list
with an entry for every file: the scan report (with ``format`` and ``parts``, each member's
role: pickle, storage, array, source, metadata, data), or ``{"source", "verdict": "skipped" |
"error", "reason"}`` for a file that was not scanned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cadmetrics.errors import InputError, UnsupportedModelFormat
from cadmetrics.models.policy import DEFAULT_POLICY, parse_mode
from cadmetrics.models.scan import scan
from cadmetrics.walk import walk_files

OK, BLOCKED, UNREADABLE = 0, 1, 2


def run_scan(
    paths: Sequence[str],
    *,
    mode_name: str,
    allow: Sequence[str],
    block: Sequence[str],
    as_json: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    mode = parse_mode(mode_name)
    try:
        policy = DEFAULT_POLICY.extend(allow=allow, block=block)
    except ValueError as exc:
        err.write(f"cadmetrics: error: {exc}\n")
        return UNREADABLE
    status = OK
    reports: list[dict[str, object]] = []
    for path, named in walk_files(paths):
        try:
            report = scan(path, mode, policy)
        except UnsupportedModelFormat as exc:
            if named:
                err.write(f"cadmetrics: error: {exc}\n")
                status = max(status, UNREADABLE)
                reports.append(_not_scanned(path, "error", str(exc)))
            else:
                reports.append(_not_scanned(path, "skipped", "not a model file"))
                if not as_json:
                    out.write(f"{path}: skipped (not a model file)\n")
            continue
        except InputError as exc:
            err.write(f"cadmetrics: error: {exc}\n")
            status = max(status, UNREADABLE)
            reports.append(_not_scanned(path, "error", str(exc)))
            continue
        if report.blocked:
            status = max(status, BLOCKED)
        if as_json:
            reports.append(report.to_dict())
        else:
            out.write(report.render() + "\n")
    if as_json:
        out.write(json.dumps(reports, indent=2) + "\n")
    return status


def _not_scanned(path: Path, verdict: str, reason: str) -> dict[str, object]:
    return {"source": str(path), "verdict": verdict, "reason": reason}
