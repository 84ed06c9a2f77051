"""Without prometheus_client and OpenTelemetry the library imports and works, as no-ops.

The ``nometrics`` tox environment runs the whole suite without them; this test also proves it
inside the full environment, by hiding both packages from a child interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cadmetrics import load_contract

HIDE = textwrap.dedent(
    """
    import sys
    for name in ("prometheus_client", "opentelemetry"):
        sys.modules[name] = None  # any import of them now fails
    """
)


def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_library_works_as_no_ops_without_metrics_packages() -> None:
    result = run(
        """
        import cadmetrics
        from cadmetrics.telemetry import available_backends
        assert available_backends() == []
        tel = cadmetrics.Telemetry()
        assert not tel.enabled
        tel.counter("cadmetrics_model_opcode_blocked_total").inc(reason="malformed", mode="allowlist")
        with tel.histogram("cadmetrics_model_load_duration_seconds").time(mode="audit"):
            pass
        strict = cadmetrics.Telemetry(strict=True)
        try:
            strict.counter("cadmetrics_model_opcode_blocked_total").inc(reason="bogus", mode="allowlist")
        except cadmetrics.LabelError:
            print("strict still validates")
        try:
            cadmetrics.Telemetry(backends=["prometheus"])
        except cadmetrics.TelemetryError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "strict still validates" in result.stdout
    assert "pip install 'cadmetrics[prometheus]'" in result.stdout


def test_the_command_line_works_without_metrics_packages() -> None:
    result = run("from cadmetrics.cli import main; sys.exit(main(sys.argv[1:]))", "contract", "lint")
    assert result.returncode == 0, result.stderr
    demo = run("from cadmetrics.cli import main; sys.exit(main(sys.argv[1:]))", "demo")
    assert demo.returncode == 0, demo.stderr
    assert "metrics are no-ops" in demo.stdout


def test_the_demo_runs_with_prometheus_client_alone() -> None:
    pytest.importorskip("prometheus_client")
    code = HIDE.replace('("prometheus_client", "opentelemetry")', '("opentelemetry",)')
    result = subprocess.run(
        [sys.executable, "-c", code + "from cadmetrics.cli import main; sys.exit(main(['demo']))"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # every declared metric but the span-attribute overflow counter: no tracing, no span
    assert f"{len(load_contract()) - 1} declared metrics seen" in result.stdout
    assert "verdict: PASS" in result.stdout
