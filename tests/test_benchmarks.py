"""The benchmarks still run (a quick smoke run; their figures are read, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_telemetry_benchmark_runs_and_prints_its_ratios() -> None:
    pytest.importorskip("prometheus_client")
    pytest.importorskip("opentelemetry.sdk.metrics")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_telemetry.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for row in ("prometheus counter ", "prometheus histogram ", "otel counter ", "no-op counter (ns)"):
        assert any(
            line.startswith(row) and ("met" in line or "MISSED" in line)
            for line in result.stdout.splitlines()
        )


def test_the_features_benchmark_runs_and_prints_its_ratios() -> None:
    pytest.importorskip("trimesh")
    pytest.importorskip("prometheus_client")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_features.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("generated torus, binary STL") and "x" in line for line in lines)
    assert any(
        line.startswith("L1 hit (prometheus") and ("met" in line or "MISSED" in line) for line in lines
    )
    assert any(line.startswith("torus ") and "ns/face" in line for line in lines)
