"""Model file scanning: cadmetrics against picklescan, modelscan, fickling and modelaudit, in one run.

The files are made in the run by the frameworks themselves: an opcode-dense benign pickle
(hundreds of thousands of small objects), a payload-heavy one (a state dict of float32 arrays),
a scikit-learn random forest pickled and joblib-dumped with compression, a PyTorch training
checkpoint (model, Adam state, epoch) of about 300 MB, and the same weights as safetensors.
Every scanner scans each file in a fresh child process, which reports its wall time and its
peak memory above what it held after its imports (a scan under 5 s runs three times: the best
time and the largest peak count); reading the file is measured the same way, as the floor.
Loading the checkpoint's state dict as numpy arrays is measured against reading it, with
``torch.load(weights_only=True)`` beside it for reference.

Targets (printed as met or MISSED, never asserted: a benchmark is not a test): at least 10x
faster than picklescan on the opcode-dense file; no slower than reading the file on the
payload-heavy one and at most 1.1x on the checkpoint; peak memory at most 1.5x the largest
pickle inside the file (the file itself for a plain pickle, ``data.pkl`` for a PyTorch zip,
the decompressed stream for joblib); the state dict loaded as numpy in at most 1.5x the read,
both as a process's first load (which imports what loading needs) and as a reload.

``--detection`` instead runs every scanner over the malicious test corpus (and over the
container payloads of ``tests/models/containers.py``) and prints the detection tables
(docs/scan-detection.md is their output).

A peer, torch or scikit-learn that is not installed is reported as such and its figures are
skipped, so a smoke run (``--quick``) works in any environment. ``./dev bench`` installs them
all: the ``bench`` extra and PyTorch's CPU build (``torch==2.13.0+cpu``; PyPI's Linux wheel
would pull the CUDA libraries).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: The scan table's rows: the floor, then cadmetrics, then the peers.
SCANNERS = ("read the file", "cadmetrics", "picklescan", "modelscan", "fickling", "modelaudit")
#: The load table's rows.
LOADERS = ("read the file", "cadmetrics load", "cadmetrics reload", "torch.load")
#: The detection table's columns: cadmetrics in its default mode and in the blocklist mode
#: the peers share, then the peers.
DETECTORS = ("cadmetrics", "cadmetrics blocklist", "picklescan", "modelscan", "fickling", "modelaudit")
#: The module each task needs, so that a missing one is reported rather than crashing a child.
NEEDS = {
    "cadmetrics": "cadmetrics",
    "cadmetrics blocklist": "cadmetrics",
    "cadmetrics load": "cadmetrics",
    "cadmetrics reload": "cadmetrics",
    "picklescan": "picklescan",
    "modelscan": "modelscan",
    "fickling": "fickling",
    "modelaudit": "modelaudit",
    "torch.load": "torch",
}
#: How long one scanner may take over one file. modelaudit and fickling spend minutes on the
#: larger pickles: past this they are cut off and shown as slower than it, which keeps the run
#: near ten minutes (``--timeout`` to wait for them).
TIMEOUT_SECONDS = 60
#: A task quicker than this many seconds runs this many times (see ``measure``).
REPEATS = 3
REPEAT_BELOW_SECONDS = 5.0
#: A detection batch covers every payload for one scanner; past this, the payloads left are
#: scanned one child each.
BATCH_TIMEOUT_SECONDS = 1800
#: The line a child reports on; the scanners print their own lines to the same stdout.
RESULT = "bench-result "
#: No telemetry from the children: a network call inside a timed scan measures the network.
CHILD_ENV = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_ANALYTICS": "1"}

Run = Callable[[], str]


# -- the tasks, each as its own users call it ----------------------------------------------------


def _read(path: Path) -> Run:
    def run() -> str:
        path.read_bytes()
        return "-"

    return run


def _cadmetrics(mode: str) -> Callable[[Path], Run]:
    def prepare(path: Path) -> Run:
        from cadmetrics.models import scan

        def run() -> str:
            report = scan(path, mode)
            if not report.blocked:
                return f"allowed ({report.format})"
            refused = [f"{g.qualified} ({g.reason})" for g in report.globals if not g.allowed]
            return _because("blocked", [*map(str, report.problems), *refused])

        return run

    return prepare


def _cadmetrics_load(path: Path) -> Run:
    from cadmetrics.models import ModelLoader
    from cadmetrics.models.interface import Interface

    loader = ModelLoader(tensors="numpy", interface=Interface(methods=()))

    def run() -> str:
        model = loader.load(path)
        if isinstance(model, Mapping):
            arrays = sum(isinstance(value, np.ndarray) for value in model.values())
            return f"loaded {arrays} numpy arrays of {len(model)} entries"
        return f"loaded a {type(model).__name__}"

    return run


def _cadmetrics_reload(path: Path) -> Run:
    """A load in a process that has loaded a model before, as a service's reloads are: the
    first load of a process also imports what loading needs (ml_dtypes, say), once."""
    import gc

    from cadmetrics.models import ModelLoader
    from cadmetrics.models.interface import Interface

    ModelLoader(tensors="numpy", interface=Interface(methods=())).load(path)
    gc.collect()
    return _cadmetrics_load(path)


def _torch_load(path: Path) -> Run:
    import torch

    def run() -> str:
        loaded = torch.load(path, weights_only=True, map_location="cpu")
        return f"loaded {len(loaded)} tensors"

    return run


def _picklescan(path: Path) -> Run:
    from picklescan.scanner import scan_file_path

    def run() -> str:
        result = scan_file_path(str(path))
        if result.infected_files:
            dangerous = [f"{g.module}.{g.name}" for g in result.globals if g.safety.value == "dangerous"]
            return _because("blocked", dangerous)
        if result.scan_err:
            return "error"
        return "allowed" if result.globals else "allowed (found no globals)"

    return run


def _modelscan(path: Path) -> Run:
    from modelscan.modelscan import ModelScan

    def run() -> str:
        result = ModelScan().scan(str(path))
        if result["summary"]["total_issues"]:
            return _because("blocked", [issue.get("operator", "") for issue in result.get("issues", [])])
        errors = result.get("errors") or []
        if errors:
            return _because("error", [error.get("description", "") for error in errors])
        return "allowed" if result["summary"]["scanned"]["total_scanned"] else "allowed (scanned nothing)"

    return run


def _fickling(path: Path) -> Run:
    import fickling

    def run() -> str:
        return "allowed" if fickling.is_likely_safe(str(path)) else "blocked"

    return run


def _modelaudit(path: Path) -> Run:
    """modelaudit's Python API with its CLI's defaults and its CLI's exit code as the verdict,
    except its result cache: the benchmark's files are byte for byte the same from run to run,
    and a cache hit would time a lookup, not a scan (the CLI's ``--no-cache``). Its reason is
    its most severe finding, or for an error (an inconclusive scan) what it could not cover."""
    from modelaudit.core import scan_model_directory_or_file
    from modelaudit.core_results import determine_exit_code, records_have_incomplete_coverage

    def run() -> str:
        result = scan_model_directory_or_file(str(path), cache_enabled=False)
        code = determine_exit_code(result)
        ranks = {"CRITICAL": 0, "WARNING": 1, "INFO": 2}
        issues = sorted(
            (issue for issue in result.issues if issue.severity.name in ranks),
            key=lambda issue: ranks[issue.severity.name],
        )
        if code == 2:
            records = [*result.issues, *result.checks]
            uncovered = [
                f"inconclusive, {record.message}"
                for record in records
                if records_have_incomplete_coverage([record], allow_skipped_check_exemption=True)
            ]
            return _because("error", uncovered or [issue.message for issue in issues])
        verdict = "blocked" if code == 1 else "allowed"
        return _because(verdict, [f"{issue.severity.name} {issue.message}" for issue in issues])

    return run


def _because(verdict: str, reasons: Sequence[str]) -> str:
    """The verdict with the first of its reasons, so that a surprising one can be judged."""
    reasons = [reason for reason in reasons if reason]
    if not reasons:
        return verdict
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"{verdict}: {reasons[0]}{more}"


def _short(verdict: str) -> str:
    """The verdict alone, without its reason: the detection table's cell."""
    return verdict.partition(":")[0].partition(" (")[0]


TASKS: dict[str, Callable[[Path], Run]] = {
    "read the file": _read,
    "cadmetrics": _cadmetrics("allowlist"),
    "cadmetrics blocklist": _cadmetrics("blocklist"),
    "cadmetrics load": _cadmetrics_load,
    "cadmetrics reload": _cadmetrics_reload,
    "picklescan": _picklescan,
    "modelscan": _modelscan,
    "fickling": _fickling,
    "modelaudit": _modelaudit,
    "torch.load": _torch_load,
}


def _attempt(run: Run) -> str:
    """A task's verdict; an exception is the task giving up, reported as an error with its type
    (a loader that trusts the scanner may take that for no finding)."""
    try:
        return run()
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def worker(task: str, path: Path) -> None:
    """Run in a child: import and set up, note the memory high-water mark, run, report."""
    run = TASKS[task](path)
    baseline = _reset_peak_memory()
    start = time.perf_counter()
    verdict = _attempt(run)
    seconds = time.perf_counter() - start
    peak = _status_bytes("VmHWM")
    _report({"seconds": seconds, "extra_bytes": max(0, peak - baseline), "verdict": verdict})


def detect_worker(task: str) -> None:
    """Run in a child: one scanner over many payloads (the jobs on stdin), a verdict for each.
    A payload whose canary exists after the scan ran during it, which is reported above all."""
    for job in json.loads(sys.stdin.read()):
        path, folder = Path(job["path"]), Path(job["folder"])
        verdict = _attempt(TASKS[task](path))
        canaries = list(folder.glob("canary*"))
        if canaries:
            verdict = "RAN THE PAYLOAD"
            for canary in canaries:
                canary.unlink()
        _report({"path": str(path), "verdict": verdict})


def _report(result: Mapping[str, object]) -> None:
    print(RESULT + json.dumps(result), flush=True)


def _reset_peak_memory() -> int:
    """Reset the process's peak resident size (Linux: clear_refs 5) and return the current
    size, so that the peak afterwards is the task's alone, not the imports'."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} is not in /proc/self/status")


# -- measuring in children --------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    seconds: float | None
    extra_bytes: int | None
    verdict: str
    limit: float | None = None  # the time it ran past, when it timed out


def installed(task: str) -> bool:
    module = NEEDS.get(task)
    return module is None or importlib.util.find_spec(module) is not None


def measure(task: str, path: Path, timeout: float) -> Measured:
    """The best time of up to ``REPEATS`` runs, each in a fresh child, and the largest peak:
    one run of a sub-second task is at the mercy of the page cache and the neighbours, enough
    to flip a 1.1x target. A task slower than ``REPEAT_BELOW_SECONDS`` runs once."""
    if not installed(task):
        return Measured(None, None, f"not installed ({NEEDS[task]})")
    runs = [_measure_once(task, path, timeout)]
    while len(runs) < REPEATS and (runs[-1].seconds or REPEAT_BELOW_SECONDS) < REPEAT_BELOW_SECONDS:
        runs.append(_measure_once(task, path, timeout))
    finished = [run for run in runs if run.seconds is not None and run.extra_bytes is not None]
    if len(finished) < len(runs):
        return next(run for run in runs if run.seconds is None)
    best = min(finished, key=lambda run: run.seconds or 0.0)
    return Measured(best.seconds, max(run.extra_bytes or 0 for run in finished), best.verdict)


def _measure_once(task: str, path: Path, timeout: float) -> Measured:
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--worker", task, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=CHILD_ENV,
        )
    except subprocess.TimeoutExpired:
        return Measured(None, None, f"timeout (killed after {timeout:g}s)", limit=timeout)
    results = list(_results(child.stdout))
    if child.returncode != 0 or not results:
        return Measured(None, None, "crashed: " + _last_words(child.stderr))
    found = results[-1]
    return Measured(float(found["seconds"]), int(found["extra_bytes"]), str(found["verdict"]))


def _results(stdout: str) -> Iterable[dict[str, Any]]:
    for line in stdout.splitlines():
        if line.startswith(RESULT):
            yield json.loads(line.removeprefix(RESULT))


def _last_words(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[-160:]


def versions() -> str:
    """The versions measured, for the record beside the figures."""
    shown = []
    for dist in ("cadmetrics", "picklescan", "modelscan", "fickling", "modelaudit", "torch", "scikit-learn"):
        try:
            shown.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            shown.append(f"{dist} not installed")
    return "versions: " + ", ".join(shown)


# -- the files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchFile:
    """A file to scan, with what its targets are measured against."""

    label: str
    path: Path
    #: The largest pickle the file holds, in bytes, and what it is (None: no pickle at all).
    pickle_bytes: int | None
    pickle_part: str
    #: The cadmetrics scan may take at most this many times the read of the file.
    read_target: float | None = None
    #: The cadmetrics scan must be at least this many times faster than picklescan.
    picklescan_target: float | None = None


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def pickle_files(directory: Path, quick: bool) -> list[BenchFile]:
    """Plain pickles: the pickle is the whole file."""
    scale = 10 if quick else 1
    dense = [
        {"id": i, "name": f"part-{i}", "dims": (i % 7, i % 11, 1.5), "tags": ["a", "b"]}
        for i in range(400_000 // scale)
    ]
    files = [_pickled(directory / "dense.pkl", dense, 4, "opcode-dense", picklescan_target=10)]
    layers = 4 if quick else 40
    state = {
        f"layer{i}.weight": np.random.default_rng(i).random((1024, 2048), dtype=np.float32)
        for i in range(layers)
    }
    files.append(_pickled(directory / "state.pkl", state, 4, "payload-heavy", read_target=1.0))
    if has("sklearn"):
        forest = _forest(samples=2000, trees=100 // scale)
        files.append(_pickled(directory / "forest.pkl", forest, 5, "sklearn forest"))
    return files


def _pickled(path: Path, value: object, protocol: int, label: str, **targets: float) -> BenchFile:
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    return BenchFile(label, path, path.stat().st_size, "the file", **targets)


def _forest(samples: int, trees: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 20))
    labels = x[:, 0] + 0.5 * rng.normal(size=samples) > 0  # noisy: trees as deep as real ones
    return RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=-1).fit(x, labels)


def joblib_file(directory: Path, quick: bool) -> BenchFile:
    """A forest as scikit-learn's users ship it: ``joblib.dump`` with zlib compression. The
    pickle is the decompressed stream, numpy arrays inline."""
    import joblib

    path = directory / "forest.joblib"
    joblib.dump(_forest(samples=2000 if quick else 10_000, trees=10 if quick else 100), path, compress=3)
    return BenchFile("joblib forest (zlib)", path, _zlib_size(path), "the decompressed stream")


def _zlib_size(path: Path) -> int:
    inflate, size = zlib.decompressobj(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            size += len(inflate.decompress(chunk))
    return size + len(inflate.flush())


@dataclass(frozen=True)
class TorchFiles:
    checkpoint: BenchFile
    state_dict: Path
    safetensors: BenchFile | None


def torch_files(directory: Path, quick: bool) -> TorchFiles:
    """A training checkpoint as ``torch.save`` writes one, the model's state dict saved alone,
    and the same tensors as safetensors. Adam keeps two tensors per parameter, so the weights
    are a third of the checkpoint: about 100 MB of 300 (10 of 30 with ``--quick``)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    width = 560 if quick else 3300
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256 * 4 * 4, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 10),
    )
    optimizer = torch.optim.Adam(model.parameters())
    loss = nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.arange(8))
    loss.backward()
    optimizer.step()
    checkpoint = directory / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, checkpoint)
    state_dict = directory / "state_dict.pt"
    torch.save(model.state_dict(), state_dict)
    with zipfile.ZipFile(checkpoint) as archive:
        member = max(
            (info for info in archive.infolist() if info.filename.endswith(".pkl")), key=lambda i: i.file_size
        )
    scanned = BenchFile(
        "torch checkpoint", checkpoint, member.file_size, f"the {member.filename} member", read_target=1.1
    )
    weights = None
    if has("safetensors"):
        from safetensors.torch import save_file

        path = directory / "model.safetensors"
        save_file(model.state_dict(), path)
        weights = BenchFile("safetensors", path, None, "none: no pickle in a safetensors file")
    return TorchFiles(scanned, state_dict, weights)


# -- the figures ------------------------------------------------------------------------------


def benchmark(quick: bool, timeout: float) -> None:
    print(versions())
    print(
        f"each task in fresh processes: the best time of up to {REPEATS} runs (one when it takes"
        f" {REPEAT_BELOW_SECONDS:g} s or more), the largest peak memory above its imports"
    )
    skipped = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        files = pickle_files(directory, quick)
        if has("sklearn"):
            files.append(joblib_file(directory, quick))
        else:
            skipped.append("sklearn forest, joblib forest: not installed (scikit-learn)")
        made: TorchFiles | None = None
        if has("torch"):
            made = torch_files(directory, quick)
            files.append(made.checkpoint)
            if made.safetensors is not None:
                files.append(made.safetensors)
            else:
                skipped.append("safetensors: not installed (safetensors)")
        else:
            skipped.append("torch checkpoint, safetensors, state dict load: not installed (torch)")
        for bench_file in files:
            scan_figures(bench_file, timeout)
        if made is not None:
            load_figures(made.state_dict, timeout)
    for line in skipped:
        print(f"\n== {line}")


def scan_figures(bench_file: BenchFile, timeout: float) -> None:
    size = bench_file.path.stat().st_size
    print(f"\n== {bench_file.label}: {size / 1e6:.1f} MB")
    results = {scanner: measure(scanner, bench_file.path, timeout) for scanner in SCANNERS}
    _table(results, size, "scanner", "vs cadmetrics", "cadmetrics")
    _scan_targets(bench_file, results)


def load_figures(path: Path, timeout: float) -> None:
    size = path.stat().st_size
    print(f"\n== load as numpy: the checkpoint's state dict, saved alone: {size / 1e6:.1f} MB")
    results = {loader: measure(loader, path, timeout) for loader in LOADERS}
    _table(results, size, "loader", "vs read", "read the file")
    floor, reference = results["read the file"].seconds, results["torch.load"].seconds
    for name, when in (("cadmetrics load", "a process's first load"), ("cadmetrics reload", "a reload")):
        ours = results[name].seconds
        if ours is None or not floor:
            print(f"target: {name} or the read did not finish")
            continue
        met = "met" if ours <= 1.5 * floor else "MISSED"
        print(f"target: {when} {ours / floor:.2f}x the time to read the file (target <= 1.5x): {met}")
        if reference:
            print(f"reference: {when} {ours / reference:.2f}x the time of torch.load(weights_only=True)")


def _table(results: Mapping[str, Measured], size: int, first: str, ratio: str, against: str) -> None:
    """One line per task: its seconds, their ratio to ``against``'s, its peak memory."""
    width = max(map(len, results)) + 1
    print(f"{first:{width}} {'seconds':>9} {ratio:>14} {'peak extra MB':>14} {'x file size':>12}  verdict")
    base = results[against].seconds
    for name, result in results.items():
        seconds, extra = result.seconds, result.extra_bytes
        shown, shown_ratio = f"{'-':>9}", " " * 14
        if seconds is not None:
            shown = f"{seconds:9.3f}"
            shown_ratio = f"{seconds / base:13.2f}x" if base else shown_ratio
        elif result.limit is not None:
            shown = f"{'> ' + format(result.limit, 'g'):>9}"
            shown_ratio = f"{'> ' + format(result.limit / base, '.0f'):>13}x" if base else shown_ratio
        mem = f"{extra / 1e6:14.1f} {extra / size:11.2f}x" if extra is not None else f"{'-':>14} {'-':>12}"
        print(f"{name:{width}} {shown} {shown_ratio} {mem}  {result.verdict[:100]}")


def _scan_targets(bench_file: BenchFile, results: Mapping[str, Measured]) -> None:
    ours = results["cadmetrics"]
    if ours.seconds is None or ours.extra_bytes is None:
        print(f"target: cadmetrics did not finish ({ours.verdict})")
        return
    seconds, extra = ours.seconds, ours.extra_bytes
    checks = []
    if bench_file.pickle_bytes:
        times = extra / bench_file.pickle_bytes
        checks.append(
            f"peak memory {times:.2f}x the largest pickle, {bench_file.pickle_part} "
            f"({_bytes(bench_file.pickle_bytes)}) (target <= 1.5x): {'met' if times <= 1.5 else 'MISSED'}"
        )
    else:
        checks.append(
            f"peak memory {_bytes(extra)}; no target: the largest pickle is {bench_file.pickle_part}"
        )
    peer = results["picklescan"].seconds
    if bench_file.picklescan_target is not None and peer is not None:
        speedup = peer / seconds
        met = "met" if speedup >= bench_file.picklescan_target else "MISSED"
        checks.append(
            f"{speedup:.1f}x faster than picklescan (target >= {bench_file.picklescan_target:g}x): {met}"
        )
    floor = results["read the file"].seconds
    if bench_file.read_target is not None and floor:
        met = "met" if seconds <= bench_file.read_target * floor else "MISSED"
        checks.append(
            f"{seconds / floor:.2f}x the time to read the file (target <= {bench_file.read_target:g}x): {met}"
        )
    for check in checks:
        print(f"target: {check}")


def _bytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


# -- detection --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One malicious file on disk, in a folder of its own that its canary would appear in."""

    name: str
    path: Path | None  # None: it could not be built here
    note: str = ""


def detection(timeout: float) -> None:
    """The detection tables: the pickle corpus, then the payloads in every container."""
    sys.path.insert(0, str(ROOT))
    from tests.models.corpus import build_corpus

    print(versions())
    scanners = [scanner for scanner in DETECTORS if installed(scanner)]
    missing = [f"{scanner} ({NEEDS[scanner]})" for scanner in DETECTORS if not installed(scanner)]
    if missing:
        print("not installed: " + ", ".join(missing))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = build_corpus()
        jobs = _write(corpus, Path(tmp) / "corpus")
        print(f"\n### The pickle corpus (tests/models/corpus.py): {len(jobs)} payloads\n")
        _detection_table(jobs, scanners, timeout)
        containers, problem = container_payloads()
        if problem:
            print(f"\n(no container table: {problem})")
        elif containers:
            jobs = _write(containers, Path(tmp) / "containers")
            print(f"\n### Payloads in every container (tests/models/containers.py): {len(jobs)} files\n")
            _detection_table(jobs, scanners, timeout)


def container_payloads() -> tuple[list[Any], str]:
    """Every payload list ``tests.models.containers`` exposes: any module-level list or tuple
    of objects with a ``name``, a ``build(canary) -> bytes`` and a ``filename``, so that lists
    added there later join the table by themselves. An import that fails is the reason there
    is no table, shown rather than raised."""
    try:
        module = importlib.import_module("tests.models.containers")
    except ModuleNotFoundError as exc:
        if exc.name in ("tests.models.containers", "tests.models", "tests"):
            return [], ""
        return [], f"tests.models.containers needs {exc.name}"
    except Exception as exc:
        return [], f"tests.models.containers failed to import: {type(exc).__name__}: {exc}"
    found: dict[int, Any] = {}
    for value in vars(module).values():
        if isinstance(value, list | tuple) and value and all(_is_payload(item) for item in value):
            found.update((id(item), item) for item in value)
    return list(found.values()), ""


def _is_payload(item: object) -> bool:
    return (
        isinstance(getattr(item, "name", None), str)
        and callable(getattr(item, "build", None))
        and isinstance(getattr(item, "filename", None), str)
    )


def _write(payloads: Sequence[Any], directory: Path) -> list[Job]:
    """Each payload built for a canary in its own folder and written under its own file name
    (``payload.pkl`` for the bare pickles of the corpus)."""
    jobs = []
    for number, payload in enumerate(payloads):
        folder = directory / f"{number:03}"
        folder.mkdir(parents=True)
        try:
            content = payload.build(str(folder / "canary"))
        except Exception as exc:
            jobs.append(Job(payload.name, None, f"not built: {type(exc).__name__}: {exc}"[:100]))
            continue
        path = folder / getattr(payload, "filename", "payload.pkl")
        path.write_bytes(content)
        jobs.append(Job(payload.name, path))
    return jobs


def _detection_table(jobs: Sequence[Job], scanners: Sequence[str], timeout: float) -> None:
    built = [job.path for job in jobs if job.path is not None]
    verdicts = {scanner: detect(scanner, built, timeout) for scanner in scanners}
    print("| payload | " + " | ".join(scanners) + " |")
    print("|---" * (len(scanners) + 1) + "|")
    totals = dict.fromkeys(scanners, 0)
    for job in jobs:
        if job.path is None:
            print(f"| {job.name} | " + " | ".join([job.note] * len(scanners)) + " |")
            continue
        row = []
        for scanner in scanners:
            verdict = _short(verdicts[scanner][job.path])
            totals[scanner] += verdict == "blocked"
            row.append("blocked" if verdict == "blocked" else f"**{verdict}**")
        print(f"| {job.name} | " + " | ".join(row) + " |")
    print(f"| **blocked of {len(built)}** | " + " | ".join(str(totals[s]) for s in scanners) + " |")


def detect(scanner: str, paths: Sequence[Path], timeout: float) -> dict[Path, str]:
    """One scanner's verdict on each file: all in one child, since detection is not timed; a
    file that child left without a verdict (it crashed or hung) is retried in a child of its
    own, so one bad file costs only its own cell."""
    jobs = [{"path": str(path), "folder": str(path.parent)} for path in paths]
    found: dict[Path, str] = {}
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--detect", scanner],
            input=json.dumps(jobs),
            capture_output=True,
            text=True,
            timeout=BATCH_TIMEOUT_SECONDS,
            check=False,
            env=CHILD_ENV,
        )
        found = {Path(result["path"]): str(result["verdict"]) for result in _results(child.stdout)}
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        found = {Path(result["path"]): str(result["verdict"]) for result in _results(output)}
    for path in paths:
        if path not in found:
            found[path] = _measure_once(scanner, path, timeout).verdict
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="files a tenth of the size, for a smoke run")
    parser.add_argument("--detection", action="store_true", help="print the corpus detection tables")
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_SECONDS,
        help=f"seconds one scanner may take over one file (default {TIMEOUT_SECONDS})",
    )
    parser.add_argument("--worker", nargs=2, metavar=("TASK", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--detect", metavar="SCANNER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
    elif args.detect:
        detect_worker(args.detect)
    elif args.detection:
        detection(args.timeout)
    else:
        benchmark(args.quick, args.timeout)


if __name__ == "__main__":
    main()
