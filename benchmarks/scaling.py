"""How ``extract_many`` scales over a process pool: 1, 2, 4... workers up to the core count,
on distinct generated parts of about 100k faces each (four per core, eight at least), each
pool started and warmed (each worker has made one small extraction) before it is timed.

Targets: at least 1.8x one worker's speed with 2 workers, 12x with 16 (where there are 16
cores). Printed by ``benchmarks/bench_features.py``; run alone with ``python
benchmarks/scaling.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cadmetrics.features.cache import FeatureCache
from cadmetrics.features.extractor import FeatureExtractor

#: Speed-up targets by worker count (where the machine has the cores).
TARGETS = {2: 1.8, 16: 12.0}


def _warm(tiny: bytes) -> int:
    """Run in each worker before the timing: one small extraction, so that what a first
    extraction loads (the convex hull's library, the BLAS thread pools) is loaded."""
    FeatureExtractor("v4", cache=FeatureCache.disabled()).extract(tiny)
    time.sleep(0.05)  # long enough that every worker takes one
    return os.getpid()


def worker_counts(cores: int) -> list[int]:
    counts, workers = [], 1
    while workers < cores:
        counts.append(workers)
        workers *= 2
    return [*counts, cores]


def scaling(torus_stl: object, quick: bool) -> None:
    cores = os.cpu_count() or 1
    faces = 20_000 if quick else 100_000
    count = max(8, 4 * cores)  # a few parts per worker, as a batch gives
    print(f"\n== extract_many over a process pool: {count} distinct parts of ~{faces} faces, v4")
    with tempfile.TemporaryDirectory(prefix="cadmetrics-scaling-") as folder:
        paths = []
        for number in range(count):
            path = Path(folder) / f"part{number}.stl"
            path.write_bytes(torus_stl(faces + 1000 * number))  # type: ignore[operator]
            paths.append(path)
        extractor = FeatureExtractor("v4", cache=FeatureCache.disabled())
        started = time.perf_counter()
        for path in paths:
            extractor.extract(path)
        serial = time.perf_counter() - started
        print(f"  in this process, one by one {serial:7.2f} s")
        single = None
        for workers in worker_counts(cores):
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_warm, [torus_stl(2_000)] * (4 * workers)))  # type: ignore[operator]
                started = time.perf_counter()
                results = extractor.extract_many(paths, pool, progress=False)
                seconds = time.perf_counter() - started
            assert all(not isinstance(result, Exception) for result in results)
            single = single or seconds
            speed_up = single / seconds
            target = TARGETS.get(workers)
            verdict = (
                f"  (target >= {target}x: {'met' if speed_up >= target else 'MISSED'})" if target else ""
            )
            print(f"  {workers:>2} workers {seconds:7.2f} s  {speed_up:5.2f}x one worker{verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small parts: a smoke run")
    from bench_features import torus_stl

    scaling(torus_stl, parser.parse_args().quick)
