"""``cadmetrics extract``: feature vectors of CAD files, as text or JSON.

Exit 0 when every file gave a vector, 1 when any failed (each failure is one line on standard
error), 2 for a usage error such as an unknown version or unit. In a walked directory, files
of no supported format, and STEP or IGES files while the ``step`` extra is missing, are skipped
with a line that says so, not failures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from cadmetrics.errors import FeatureError
from cadmetrics.features.extractor import FeatureExtractor, FeatureVector
from cadmetrics.walk import walk_files

OK, FAILED, USAGE = 0, 1, 2


def run_extract(
    paths: Sequence[str],
    *,
    version: str,
    as_json: bool,
    out: TextIO,
    err: TextIO,
    unit: str | None = None,
    brep: bool = False,
) -> int:
    try:
        extractor = FeatureExtractor(version, unit=unit, brep=brep)
    except ValueError as exc:
        err.write(f"cadmetrics: error: {exc}\n")
        return USAGE
    files = list(walk_files(paths))
    results = extractor.extract_many([path for path, _named in files])
    status = OK
    vectors: list[dict[str, object]] = []
    for (path, named), result in zip(files, results, strict=True):
        if isinstance(result, FeatureVector):
            if as_json:
                vectors.append(result.to_json_dict())
            else:
                out.write(_render(result))
        elif not named and result.reason == "unsupported_format":
            if not as_json:
                out.write(f"{path}: skipped (no supported CAD format)\n")
        elif not named and result.reason == "missing_dependency":
            if not as_json:
                out.write(f"{path}: skipped ({str(result).removeprefix(f'{path}: ')})\n")
        else:
            err.write(f"cadmetrics: error: {_message(result)}\n")
            status = FAILED
    if as_json:
        out.write(json.dumps(vectors, indent=2) + "\n")
    return status


def _message(error: FeatureError) -> str:
    return f"{error} [{error.reason}]"


def _render(vector: FeatureVector) -> str:
    unit = f", sizes in {vector.unit}" if vector.unit else ""
    quality = f", degraded: {' '.join(vector.quality)}" if vector.quality else ""
    described = f"{vector.version} {vector.family}, {vector.format}{unit}{quality}"
    lines = [f"{vector.source}: {described}, sha256 {vector.sha256}"]
    width = max(len(name) for name in vector.names)
    lines += [
        f"  {name:<{width}}  {value:.12g}" for name, value in zip(vector.names, vector.values, strict=True)
    ]
    return "\n".join(lines) + "\n"
