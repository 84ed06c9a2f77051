"""``cadmetrics drift``: the vectors of a store compared with a saved baseline.

With ``--make`` the baseline is made from the store's vectors and saved to the file; otherwise
the file is read and the store's vectors of its version are scored, window by window, and the
last window's group scores are printed. Exit 0 when no group's PSI exceeds ``--threshold``,
1 when one does (so a cron job or CI step can act on it), 2 for usage errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from cadmetrics.drift.baseline import Baseline
from cadmetrics.drift.monitor import DriftMonitor, DriftReport
from cadmetrics.errors import DriftError
from cadmetrics.vectors.store import VectorStore

OK, DRIFTED = 0, 1


def run_drift(
    path: str,
    *,
    baseline_file: str,
    make: bool,
    version: str | None,
    window: int,
    threshold: float,
    as_json: bool,
    out: TextIO,
) -> int:
    store = VectorStore.open(path, read_only=True)
    try:
        if make:
            chosen = version or max(store.counts().items(), key=lambda item: item[1])[0]
            vectors = store.vectors(chosen)
            baseline = Baseline.from_vectors(
                vectors,
                layout=store.layouts[chosen],
                source=f"vector store {path}, {len(vectors)} {chosen} vectors",
            )
            saved = baseline.save(Path(baseline_file))
            out.write(f"baseline of {len(vectors)} {chosen} vectors saved to {saved}\n")
            return OK
        baseline = Baseline.load(Path(baseline_file))
        named = version or baseline.version
        if named is None:
            raise DriftError(f"{baseline_file}: the baseline names no feature version; pass --version")
        chosen = named
        vectors = store.vectors(chosen)
    finally:
        store.close()
    if vectors.shape[0] == 0:
        raise DriftError(f"{path}: no {chosen} vectors to compare with the baseline")
    size = min(window, vectors.shape[0])
    monitor = DriftMonitor(baseline, window=size)
    reports = monitor.observe(vectors[-(vectors.shape[0] // size) * size :])
    last: DriftReport = reports[-1]
    drifted = list(last.drifted_groups(threshold))
    if as_json:
        out.write(
            json.dumps({**last.to_json_dict(), "drifted": drifted, "threshold": threshold}, indent=2) + "\n"
        )
    else:
        out.write(
            f"{path}: {chosen}, last window of {size} vectors against the baseline made "
            f"{last.baseline_age / 86400:.1f} days ago from {baseline.source}\n"
        )
        for group in last.groups:
            psi, ks = last.score(group, "psi"), last.score(group, "ks")
            flag = "  DRIFT" if group in drifted else ""
            out.write(f"  {group:<12} PSI {psi:7.4f}  KS {ks:6.4f}{flag}\n")
    return DRIFTED if drifted else OK
