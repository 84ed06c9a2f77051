"""The command line: exit 0 ok, 1 violations, 2 usage or input errors; one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cadmetrics.cli import main
from tests.conftest import CAD_SAMPLES, ContractWriter, serving_demo

ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_lint_passes_the_library_and_fails_a_bad_host(
    capsys: pytest.CaptureFixture[str], write_contract: ContractWriter
) -> None:
    code, out, _ = run(capsys, "contract", "lint")
    assert code == 0 and "0 finding(s)" in out
    bad = write_contract("- {name: myhost_requests, type: counter, help: h}")
    code, out, _ = run(capsys, "contract", "lint", str(bad))
    assert code == 1
    assert f"error: {bad}:4: CM003 counter-total" in out
    code, out, _ = run(capsys, "contract", "lint", "--standalone", "--json", str(bad))
    assert code == 1 and '"rule": "CM003"' in out


def test_lint_of_an_unreadable_contract_is_a_one_line_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("namespace: x\nversion: 1.0.0\nmetrics: [\n")
    code, out, err = run(capsys, "contract", "lint", str(broken))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"{broken}:4: [yaml-syntax]" in err


def test_verify_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    good = tmp_path / "good.prom"
    good.write_text("# TYPE cadmetrics_model_rollback_level gauge\ncadmetrics_model_rollback_level 0\n")
    code, out, _ = run(capsys, "contract", "verify", "--exposition", str(good))
    assert code == 0 and "PASS" in out
    code, out, _ = run(capsys, "contract", "verify", "--exposition", str(good), "--require-all")
    assert code == 1 and "absent" in out
    bad = tmp_path / "bad.prom"
    bad.write_text(
        "# TYPE cadmetrics_model_rollback_level counter\ncadmetrics_model_rollback_level_total 0\n"
    )
    code, out, _ = run(capsys, "contract", "verify", "--exposition", str(bad), "--json")
    assert code == 1 and '"kind": "type"' in out
    code, _, err = run(capsys, "contract", "verify", "--exposition", str(tmp_path / "missing.prom"))
    assert code == 2 and "cannot read" in err
    code, _, err = run(capsys, "contract", "verify", "--exposition", "http://127.0.0.1:9/metrics")
    assert code == 2 and "cannot fetch" in err


def test_diff_exits_1_on_breaking_changes(
    capsys: pytest.CaptureFixture[str], write_contract: ContractWriter
) -> None:
    old = write_contract("- {name: myhost_x, type: gauge, help: h}", name="old.yaml")
    added = write_contract(
        "- {name: myhost_x, type: gauge, help: h}\n- {name: myhost_y, type: gauge, help: h}",
        name="new.yaml",
    )
    assert run(capsys, "contract", "diff", str(old), str(added))[0] == 0
    code, out, _ = run(capsys, "contract", "diff", str(added), str(old))
    assert code == 1 and "breaking   myhost_y: metric removed" in out


def test_docs_check_detects_a_stale_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "contract", "docs", "--check", str(ROOT / "docs" / "metrics.md"))[0] == 0
    stale = tmp_path / "metrics.md"
    stale.write_text("# old\n")
    code, out, _ = run(capsys, "contract", "docs", "--check", str(stale))
    assert code == 1 and "stale" in out
    assert run(capsys, "contract", "docs", "--output", str(stale))[0] == 0
    assert run(capsys, "contract", "docs", "--check", str(stale))[0] == 0


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "bogus")[0] == 2
    assert run(capsys, "contract", "verify")[0] == 2  # --exposition is required


def test_the_demo_walks_the_library_and_verifies_every_metric() -> None:
    pytest.importorskip("prometheus_client")
    samples = ["--samples", str(CAD_SAMPLES)] if CAD_SAMPLES.is_dir() else []
    result = subprocess.run(
        [sys.executable, "-m", "cadmetrics", "demo", *samples], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for step in ("features v1 and v4", "refused (blocked)", "refused (interface_invalid)", "rolled back",
                 "re-extracted up", "anomalies in ['size']", "__overflow__"):  # fmt: skip
        assert step in result.stdout, step
    assert "PASS (0 errors, 0 warnings; 39 declared metrics seen" in result.stdout
    if importlib.util.find_spec("opentelemetry.sdk") is not None:  # every declared span traced, clean
        assert (
            "contract verification of demo spans: PASS (0 errors, 0 warnings; 8 declared spans seen"
            in result.stdout
        )
    assert "verdict: PASS" in result.stdout


def test_the_demo_fails_when_an_extraction_fails(tmp_path: Path) -> None:
    from tests.features.writers import binary_stl

    corners = [(x, y, z) for x in (0, 1) for y in (0, 2) for z in (0, 3)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    box = binary_stl(corners, quads)
    (tmp_path / "box.stl").write_bytes(box)
    (tmp_path / "cut.stl").write_bytes(box[:300])  # cut off after its fourth triangle
    result = subprocess.run(
        [sys.executable, "-m", "cadmetrics", "demo", "--samples", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert f"FAILED: extracting {tmp_path / 'cut.stl'}: " in result.stdout
    assert "[truncated]" in result.stdout


def test_the_demo_serves_its_metrics_for_a_while() -> None:
    pytest.importorskip("prometheus_client")
    import urllib.request

    demo, url = serving_demo(4)
    assert demo.stdout is not None
    with urllib.request.urlopen(url, timeout=10) as response:
        exposition = response.read().decode("utf-8")
    openmetrics = urllib.request.Request(
        url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    with urllib.request.urlopen(openmetrics, timeout=10) as response:
        scraped = response.read().decode("utf-8")
    if importlib.util.find_spec("opentelemetry.sdk") is not None:  # the demo traces: exemplars link spans
        exemplars = [line for line in scraped.splitlines() if "_seconds_bucket" in line and " # {" in line]
        assert exemplars and all('trace_id="' in line for line in exemplars)
    with urllib.request.urlopen(url.replace("/metrics", "/health"), timeout=10) as response:
        assert response.headers["Content-Type"] == "application/health+json"
        report = json.loads(response.read())
    rest = demo.stdout.read()
    assert report["status"] in ("pass", "warn")
    assert {"features:shared_cache", "models:serving", "vectors:store", "drift:baseline_age"} <= set(
        report["checks"]
    )
    assert demo.wait(timeout=30) == 0
    assert (
        'cadmetrics_model_opcode_blocked_total{mode="allowlist",reason="dangerous_global"} 1.0' in exposition
    )
    assert "verdict: PASS" in rest


def test_verify_reads_a_live_metrics_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry, start_http_server

    from cadmetrics import Telemetry, load_contract

    registry = CollectorRegistry()
    Telemetry(load_contract(), [registry]).counter("cadmetrics_model_rollbacks_total").inc(reason="manual")
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        code, out, _ = run(capsys, "contract", "verify", "--exposition", url, "--json")
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert code == 0, out
    assert '"ok": true' in out
    assert "cadmetrics_model_rollbacks_total" in out


def test_docs_to_an_unwritable_place_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "contract", "docs", "--output", str(tmp_path / "missing" / "metrics.md"))
    assert code == 2
    assert err.startswith("cadmetrics: error: cannot write") and err.count("\n") == 1


def test_scan_gives_a_verdict_per_file_and_the_exit_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import pickle

    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    (models / "ok.pkl").write_bytes(pickle.dumps({"w": [1.0]}))
    (models / "notes.txt").write_text("not a model")
    assert run(capsys, "scan", str(models))[0] == 0
    (models / "sub" / "evil.bin").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    code, out, _ = run(capsys, "scan", str(models))
    assert code == 1
    assert "evil.bin: BLOCKED" in out and "dangerous_global: os.system" in out
    assert "notes.txt: skipped" in out
    code, out, _ = run(capsys, "scan", "--json", "--mode", "allowlist", str(models / "ok.pkl"))
    assert code == 0 and '"verdict": "allowed"' in out
    code, out, _ = run(capsys, "scan", "--json", str(models), str(tmp_path / "absent.pkl"))
    verdicts = {Path(entry["source"]).name: entry["verdict"] for entry in json.loads(out)}
    assert code == 2
    assert verdicts == {
        "ok.pkl": "allowed",
        "notes.txt": "skipped",
        "evil.bin": "blocked",
        "absent.pkl": "error",
    }
    custom = models / "custom.pkl"
    custom.write_bytes(b"cmyapp\nModel\n)R.")
    assert run(capsys, "scan", "--mode", "allowlist", str(custom))[0] == 1
    assert run(capsys, "scan", "--allow", "myapp.Model", str(custom))[0] == 0
    code, _, err = run(capsys, "scan", "--allow", "sklearn", str(custom))
    assert code == 2 and "name each of its classes" in err  # never a whole package
    assert run(capsys, "scan", "--block", "collections", str(models / "ok.pkl"))[0] == 0


def test_scan_input_and_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code, _, err = run(capsys, "scan", str(text))
    assert code == 2 and "not a model file this scanner knows" in err
    code, _, err = run(capsys, "scan", str(tmp_path / "absent.pkl"))
    assert code == 2 and "cannot read" in err
    code, _, err = run(capsys, "scan", "--mode", "paranoid", str(text))
    assert code == 2 and "unknown scan mode 'paranoid'" in err


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """``cadmetrics contract docs | head -1``: the reader is gone before the output is written."""
    reading, writing = os.pipe()
    os.close(reading)  # nobody will read: every write fails with EPIPE
    child = subprocess.run(
        [sys.executable, "-m", "cadmetrics", "contract", "docs"],
        stdout=writing, stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    os.close(writing)
    assert child.returncode == 141
    assert child.stderr == ""


def test_verify_reports_coverage_and_fails_below_a_minimum(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, write_contract: ContractWriter
) -> None:
    pytest.importorskip("prometheus_client")
    host = write_contract(
        "- {name: myhost_jobs_total, type: counter, help: h, labels: {queue: {values: [fast, slow]}}}\n"
        "- {name: myhost_workers, type: gauge, help: h}"
    )
    exposition = tmp_path / "host.prom"
    exposition.write_text('# TYPE myhost_jobs_total counter\nmyhost_jobs_total{queue="fast"} 2\n')
    standalone = (
        "contract",
        "verify",
        "--standalone",
        "--contract",
        str(host),
        "--exposition",
        str(exposition),
    )
    code, out, _ = run(capsys, *standalone, "--coverage")
    assert code == 0
    assert "coverage: 1 of 2 declared metrics emitted (50%), 1 of 2 closed label values (50%)" in out
    assert "    myhost_workers" in out and "    myhost_jobs_total queue: slow" in out
    code, out, _ = run(capsys, *standalone, "--metrics-coverage-min", "0.9")
    assert code == 1 and "coverage 50.0% is below the required 90.0%" in out
    code, out, _ = run(capsys, *standalone, "--coverage-min", "0.5", "--json")
    assert code == 0 and json.loads(out)["coverage"]["metrics"]["missing"] == ["myhost_workers"]
    code, _, err = run(capsys, *standalone, "--coverage-min", "2")
    assert code == 2 and "between 0 and 1" in err
    code, out, _ = run(capsys, "contract", "verify", "--contract", str(host), "--exposition", str(exposition))
    assert code == 0  # with the library's contract too: its metrics are merely absent


def test_lint_of_the_repositorys_own_contract_lints_that_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "contract", "lint", str(ROOT / "contracts" / "metrics.yaml"))
    assert code == 0 and "0 finding(s)" in out and "collision" not in out
