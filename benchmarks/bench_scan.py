"""Pickle scanning: cadmetrics against picklescan, modelscan and fickling, in one run.

Three files are built: an opcode-dense benign pickle (hundreds of thousands of small objects),
a payload-heavy one (a state dict of float32 arrays) and a scikit-learn random forest. Every
scanner scans each file in a fresh child process, which reports its wall time and its peak
memory above what it held after its imports. Reading the file is measured the same way, as
the floor. Targets: at least 10x faster than picklescan on the opcode-dense file, no slower
than reading the file on the payload-heavy one, peak memory at most 1.5x the file size.

``--detection`` instead runs the four scanners over the malicious test corpus and prints the
detection table (docs/scan-detection.md is its output).

Needs the ``bench`` extra: ``pip install -e '.[all,dev,bench]'``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SCANNERS = ("read the file", "cadmetrics", "picklescan", "modelscan", "fickling")
TIMEOUT_SECONDS = 600


# -- the scanners, each as the peer's own users call it -----------------------------------------


def _verdicts() -> dict[str, Callable[[Path], str]]:
    def read(path: Path) -> str:
        path.read_bytes()
        return "-"

    def cadmetrics(path: Path) -> str:
        from cadmetrics.models import scan

        return "blocked" if scan(path, "blocklist").blocked else "allowed"

    def picklescan(path: Path) -> str:
        from picklescan.scanner import scan_file_path

        result = scan_file_path(str(path))
        if result.infected_files:
            return "blocked"
        return "error" if result.scan_err else "allowed"

    def modelscan(path: Path) -> str:
        from modelscan.modelscan import ModelScan

        result = ModelScan().scan(str(path))
        if result["summary"]["total_issues"]:
            return "blocked"
        return "error" if result.get("errors") else "allowed"

    def fickling(path: Path) -> str:
        import fickling as fk

        try:
            return "allowed" if fk.is_likely_safe(str(path)) else "blocked"
        except Exception:
            return "error"

    return {
        "read the file": read,
        "cadmetrics": cadmetrics,
        "picklescan": picklescan,
        "modelscan": modelscan,
        "fickling": fickling,
    }


def worker(scanner: str, path: Path) -> None:
    """Run in a child: import, note the memory high-water mark, scan, report."""
    verdicts = _verdicts()
    verdicts[scanner]  # import what the scanner needs before the baseline
    if scanner != "read the file":
        import importlib

        importlib.import_module(
            {"cadmetrics": "cadmetrics.models", "modelscan": "modelscan.modelscan"}.get(scanner, scanner)
        )
    baseline = _reset_peak_memory()
    start = time.perf_counter()
    verdict = verdicts[scanner](path)
    seconds = time.perf_counter() - start
    peak = _status_bytes("VmHWM")
    print(json.dumps({"seconds": seconds, "extra_bytes": max(0, peak - baseline), "verdict": verdict}))


def _reset_peak_memory() -> int:
    """Reset the process's peak resident size (Linux: clear_refs 5) and return the current
    size, so that the peak afterwards is the scan's alone, not the imports'."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} is not in /proc/self/status")


def measure(scanner: str, path: Path) -> dict[str, object]:
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--worker", scanner, str(path)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": None, "extra_bytes": None, "verdict": f"timeout ({TIMEOUT_SECONDS}s)"}
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"seconds": None, "extra_bytes": None, "verdict": "crashed: " + child.stderr.strip()[-120:]}
    result: dict[str, object] = json.loads(lines[-1])
    return result


# -- the files --------------------------------------------------------------------------------


def build_files(directory: Path, quick: bool) -> dict[str, Path]:
    scale = 10 if quick else 1
    files = {}
    dense = [
        {"id": i, "name": f"part-{i}", "dims": (i % 7, i % 11, 1.5), "tags": ["a", "b"]}
        for i in range(400_000 // scale)
    ]
    files["opcode-dense"] = directory / "dense.pkl"
    files["opcode-dense"].write_bytes(pickle.dumps(dense, protocol=4))
    layers = 40 if not quick else 4
    state = {
        f"layer{i}.weight": np.random.default_rng(i).random((1024, 2048), dtype=np.float32)
        for i in range(layers)
    }
    files["payload-heavy"] = directory / "state.pkl"
    files["payload-heavy"].write_bytes(pickle.dumps(state, protocol=4))
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 20))
    forest = RandomForestClassifier(n_estimators=100 // scale, random_state=0).fit(x, x[:, 0] > 0)
    files["sklearn forest"] = directory / "forest.pkl"
    files["sklearn forest"].write_bytes(pickle.dumps(forest, protocol=5))
    return files


def benchmark(quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = build_files(Path(tmp), quick)
        for label, path in files.items():
            size = path.stat().st_size
            print(f"\n== {label}: {size / 1e6:.1f} MB")
            header = f"{'scanner':14} {'seconds':>9} {'vs cadmetrics':>14} {'peak extra MB':>14}"
            print(f"{header} {'x file size':>12}  verdict")
            results = {scanner: measure(scanner, path) for scanner in SCANNERS}
            ours = results["cadmetrics"]["seconds"]
            for scanner, result in results.items():
                seconds = result["seconds"]
                extra = result["extra_bytes"]
                ratio = (
                    f"{seconds / ours:13.1f}x"
                    if isinstance(seconds, float) and isinstance(ours, float) and ours
                    else " " * 14
                )
                shown = f"{seconds:9.3f}" if isinstance(seconds, float) else f"{'-':>9}"
                mem = (
                    f"{extra / 1e6:14.1f} {extra / size:11.2f}x"
                    if isinstance(extra, int)
                    else f"{'-':>14} {'-':>12}"
                )
                print(f"{scanner:14} {shown} {ratio} {mem}  {result['verdict']}")
            _targets(label, results, size)


def _targets(label: str, results: dict[str, dict[str, object]], size: int) -> None:
    ours = results["cadmetrics"]
    seconds = ours["seconds"]
    extra = ours["extra_bytes"]
    if not isinstance(seconds, float) or not isinstance(extra, int):
        print("targets: cadmetrics did not finish")
        return
    memory_met = "met" if extra <= 1.5 * size else "MISSED"
    checks = [f"peak memory {extra / size:.2f}x file size (target <= 1.5x): {memory_met}"]
    peer = results["picklescan"]["seconds"]
    if label == "opcode-dense" and isinstance(peer, float):
        speedup = peer / seconds
        checks.append(
            f"{speedup:.1f}x faster than picklescan (target >= 10x): {'met' if speedup >= 10 else 'MISSED'}"
        )
    floor = results["read the file"]["seconds"]
    if label == "payload-heavy" and isinstance(floor, float):
        read_met = "met" if seconds <= floor else "MISSED"
        checks.append(f"{seconds / floor:.2f}x the time to read the file (target <= 1x): {read_met}")
    for check in checks:
        print(f"target: {check}")


# -- detection --------------------------------------------------------------------------------


def detection() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.models.corpus import build_corpus

    print("| payload | cadmetrics | picklescan | modelscan | fickling |")
    print("|---|---|---|---|---|")
    totals = dict.fromkeys(SCANNERS[1:], 0)
    corpus = build_corpus()
    with tempfile.TemporaryDirectory() as tmp:
        for payload in corpus:
            path = Path(tmp) / "payload.pkl"
            path.write_bytes(payload.build(str(Path(tmp) / "canary")))
            row = []
            for scanner in SCANNERS[1:]:
                verdict = str(measure(scanner, path)["verdict"])
                totals[scanner] += verdict == "blocked"
                row.append("blocked" if verdict == "blocked" else f"**{verdict}**")
            print(f"| {payload.name} | " + " | ".join(row) + " |")
    print(f"| **blocked of {len(corpus)}** | " + " | ".join(str(totals[s]) for s in SCANNERS[1:]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="files a tenth of the size, for a smoke run")
    parser.add_argument("--detection", action="store_true", help="print the corpus detection table")
    parser.add_argument("--worker", nargs=2, metavar=("SCANNER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
    elif args.detection:
        detection()
    else:
        benchmark(args.quick)


if __name__ == "__main__":
    main()
