"""``cadmetrics vectors stats|migrate``: a store's contents, and moving it to another version.

``stats`` opens the store read-only, so it can run beside the service that writes it. Exit 0
when all is well, 1 when ``--verify`` finds damaged files, 2 for usage errors (no store, an
unknown version, a store held by another writer for ``migrate``).
"""

from __future__ import annotations

import json
from typing import TextIO

from cadmetrics.vectors.store import VectorStore

OK, PROBLEMS = 0, 1


def run_stats(path: str, *, verify: bool, as_json: bool, out: TextIO) -> int:
    store = VectorStore.open(path, read_only=True)
    try:
        stats = store.stats()
        problems = store.verify() if verify else []
    finally:
        store.close()
    stats["problems"] = stats["problems"] + problems
    if as_json:
        out.write(json.dumps(stats, indent=2) + "\n")
    else:
        out.write(f"{path}: {stats['records']} records in {stats['segments']} segments")
        out.write(f" (generation {stats['generation']}, log {stats['log_bytes']} bytes)\n")
        for version, entry in stats["versions"].items():
            out.write(f"  {version}: {entry['records']:>10} records of dimension {entry['dimension']}\n")
        if stats["filled"]:
            out.write(f"  {stats['filled']} records hold filled (not measured) features\n")
        if stats["pending_migration"]:
            out.write(
                f"  a migration to {stats['pending_migration']} is pending: "
                "run `cadmetrics vectors migrate` to finish it\n"
            )
        for problem in stats["problems"]:
            out.write(f"  problem: {problem}\n")
        if verify and not problems:
            out.write("  every segment file matches its recorded CRC-32\n")
    return PROBLEMS if problems else OK


def run_migrate(path: str, *, to: str, dry_run: bool, batch_size: int, as_json: bool, out: TextIO) -> int:
    with VectorStore.open(path) as store:
        plan = store.plan_migration(to)
        if dry_run:
            out.write(json.dumps(plan.to_json(), indent=2) + "\n" if as_json else plan.describe() + "\n")
            return OK
        if not as_json:
            out.write(plan.describe() + "\n")
        result = store.migrate(plan, batch_size=batch_size)
        summary = {
            "target": result.target,
            "records": result.records,
            "methods": result.methods,
            "failures": [list(failure) for failure in result.failures],
            "seconds": round(result.seconds, 3),
            "resumed": result.resumed,
            "counts": store.counts(),
        }
    if as_json:
        out.write(json.dumps({"plan": plan.to_json(), "result": summary}, indent=2) + "\n")
    else:
        methods = ", ".join(f"{count} {method}" for method, count in sorted(result.methods.items())) or "none"
        out.write(
            f"moved {result.records} records to {to} in {result.seconds:.2f} s ({methods})"
            + (", resumed from a checkpoint" if result.resumed else "")
            + "\n"
        )
    return OK
