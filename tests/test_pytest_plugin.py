"""The pytest plugin, run on host projects by pytester: fixtures, reading values, and the
end-of-session verification that fails a run whose tests all passed."""

from __future__ import annotations

import importlib.util

import pytest

needs_prometheus = pytest.mark.skipif(
    importlib.util.find_spec("prometheus_client") is None, reason="reading values needs prometheus_client"
)

HOST_CONTRACT = """\
namespace: myhost
version: 1.0.0
metrics:
  - name: myhost_jobs_total
    type: counter
    help: Jobs run.
    labels:
      queue: {values: [fast, slow]}
  - name: myhost_workers
    type: gauge
    help: Workers alive (unlabelled, so exported as 0 before any emission).
"""

PASSING = """
import pytest
from cadmetrics import ContractError, LabelError

def test_counts_jobs(telemetry, metrics):
    jobs = telemetry.counter("myhost_jobs_total")
    with metrics.delta("myhost_jobs_total", queue="fast") as delta:
        jobs.inc(queue="fast")
        jobs.inc(2, queue="fast")
    assert delta.value == 3
    assert metrics.value("myhost_jobs_total") == 3

def test_reads_histograms(telemetry, metrics):
    telemetry.histogram("cadmetrics_model_load_duration_seconds").observe(0.1, mode="audit")
    assert metrics.value("cadmetrics_model_load_duration_seconds", mode="audit") == 1
    assert metrics.value("cadmetrics_model_load_duration_seconds_sum") == pytest.approx(0.1)

def test_fixtures_are_strict_and_names_checked(telemetry, metrics, metrics_contract):
    assert "myhost_jobs_total" in metrics_contract
    with pytest.raises(LabelError):
        telemetry.counter("myhost_jobs_total").inc(queue="bogus")
    with pytest.raises(ContractError):
        metrics.value("myhost_job_total")
"""

ROGUE = """
from prometheus_client import Counter

def test_legacy_code_registers_its_own_metric(telemetry, metrics_registry):
    telemetry.counter("myhost_jobs_total").inc(queue="slow")
    Counter("myhost_legacy_total", "Not in the contract.", registry=metrics_registry).inc()
"""


@pytest.fixture
def host(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", host=HOST_CONTRACT)
    return pytester


@needs_prometheus
def test_a_conforming_host_passes(host: pytest.Pytester) -> None:
    host.makepyfile(test_host=PASSING)
    result = host.runpytest_subprocess("--metrics-contract", "host.yaml")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["cadmetrics: metrics emitted by tests agree with the contract (*"])


@needs_prometheus
def test_a_host_whose_tests_pass_but_whose_metrics_do_not_fails(host: pytest.Pytester) -> None:
    host.makepyfile(test_rogue=ROGUE)
    result = host.runpytest_subprocess("--metrics-contract", "host.yaml")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*cadmetrics contract violations*",
            "test_rogue.py::test_legacy_code_registers_its_own_metric: undeclared myhost_legacy_total: *",
        ]
    )


@needs_prometheus
def test_require_all_fails_when_a_declared_metric_was_never_emitted(host: pytest.Pytester) -> None:
    host.makepyfile(test_host=PASSING)
    result = host.runpytest_subprocess("--metrics-contract", "host.yaml", "--metrics-require-all")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["absent myhost_workers: declared but no test emitted it"])
    assert "absent cadmetrics_" not in result.stdout.str()  # library metrics the host does not use


@needs_prometheus
def test_the_contract_can_come_from_the_ini_file(host: pytest.Pytester) -> None:
    host.makeini("[pytest]\nmetrics_contract = host.yaml\n")
    host.makepyfile(test_host=PASSING)
    result = host.runpytest_subprocess()
    result.assert_outcomes(passed=3)


def test_a_session_that_never_uses_the_fixtures_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_nothing():\n    assert True\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert "contract violations" not in result.stdout.str()
    assert "agree with the contract" not in result.stdout.str()


STRICT_ONLY = """
import pytest
from cadmetrics import LabelError

def test_strict_fixture(telemetry, metrics_contract):
    telemetry.counter("myhost_jobs_total").inc(queue="fast")
    with pytest.raises(LabelError):
        telemetry.counter("myhost_jobs_total").inc(queue="bogus")
"""


def test_the_fixtures_validate_with_or_without_backends(host: pytest.Pytester) -> None:
    host.makepyfile(test_strict=STRICT_ONLY)
    result = host.runpytest_subprocess("--metrics-contract", "host.yaml")
    result.assert_outcomes(passed=1)
    assert result.ret == 0


@needs_prometheus
def test_coverage_lists_what_no_test_emitted(host: pytest.Pytester) -> None:
    host.makepyfile(test_strict=STRICT_ONLY)
    result = host.runpytest_subprocess("--metrics-contract", "host.yaml")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "cadmetrics coverage: 1 of 2 declared metrics emitted (50%), 1 of 2 closed label values (50%)",
            "  metrics never emitted:",
            "    myhost_workers",
            "  closed label values never emitted:",
            "    myhost_jobs_total queue: slow",
        ]
    )


@needs_prometheus
@pytest.mark.parametrize("where", ["option", "ini"])
def test_a_coverage_minimum_fails_the_run_below_it(host: pytest.Pytester, where: str) -> None:
    host.makepyfile(test_strict=STRICT_ONLY)
    if where == "ini":
        host.makeini("[pytest]\nmetrics_contract = host.yaml\nmetrics_coverage_min = 0.9\n")
        result = host.runpytest_subprocess()
    else:
        result = host.runpytest_subprocess("--metrics-contract", "host.yaml", "--metrics-coverage-min", "0.9")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["cadmetrics: coverage 50.0% is below the required 90.0%"])
    relaxed = host.runpytest_subprocess("--metrics-contract", "host.yaml", "--metrics-coverage-min", "0.5")
    if where == "option":
        assert relaxed.ret == 0


def test_a_coverage_minimum_that_is_not_a_ratio_is_a_usage_error(host: pytest.Pytester) -> None:
    host.makepyfile(test_strict=STRICT_ONLY)
    result = host.runpytest_subprocess("--metrics-contract", "host.yaml", "--metrics-coverage-min", "90")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*must be a ratio between 0 and 1, not '90'*"])


SPANNING = """
def test_searches_are_traced(telemetry):
    with telemetry.span("cadmetrics.vectors.search", version="v4", method="exact", k=3, queries=1):
        pass
"""


def test_spans_emitted_by_tests_are_verified_and_their_coverage_reported(pytester: pytest.Pytester) -> None:
    pytest.importorskip("opentelemetry.sdk.trace")
    pytester.makepyfile(test_spans=SPANNING)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["cadmetrics coverage: 1 of 8 declared spans emitted (12%), *closed attribute values*"]
    )
