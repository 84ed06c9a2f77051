"""The pytest plugin: a host's CI checks what its code really emits against the contract.

Installed with cadmetrics (entry point ``pytest11``). It adds ``--metrics-contract PATH``
(repeatable; also the ``metrics_contract`` ini option) for the host's own contract and
``--metrics-require-all`` (every metric the host declares must be emitted by some test; with
no host contract, every metric of the library's), ``--metrics-coverage-min RATIO`` (also the
``metrics_coverage_min`` ini option: fail the run when the tests emitted fewer than that share
of those metrics), and the fixtures:

- ``metrics_contract``: the composed contract (library + host files), once per session;
- ``telemetry``: a fresh, strict Telemetry per test, on every installed backend;
- ``metrics_registry``: the prometheus_client registry behind ``telemetry``, where host code
  may register its own collectors (they are verified too);
- ``metrics``: reads values (``metrics.value(name, **labels)``) and deltas
  (``with metrics.delta(name, **labels) as d: ...; d.value``).

Whatever the tests emitted through these fixtures is verified at the end of the session, and
any violation fails the run, even when every test passed. The summary reports coverage: which
of those metrics, and which declared values of their closed labels, some test emitted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest

from cadmetrics.contract.compose import load_contract, packaged_contract_path
from cadmetrics.contract.coverage import Coverage, LabelValue, emitted_values
from cadmetrics.contract.model import Contract, MetricSpec, SpanSpec
from cadmetrics.contract.observed import require_declared
from cadmetrics.contract.traces import verify_spans
from cadmetrics.contract.verify import Kind, VerificationReport, Violation, verify_all
from cadmetrics.telemetry.capture import CapturedTelemetry
from cadmetrics.telemetry.facade import Telemetry


@attrs.define
class _SessionRecord:
    """What the session's tests emitted: per-test violations and every metric seen."""

    paths: list[str]
    require_all: bool
    coverage_min: float | None = None
    contract: Contract | None = None
    used: bool = False
    checked: dict[str, None] = attrs.Factory(dict)
    values: set[LabelValue] = attrs.Factory(set)
    spans: dict[str, None] = attrs.Factory(dict)
    span_values: set[LabelValue] = attrs.Factory(set)
    span_coverage: Coverage | None = None
    violations: list[tuple[str, Violation]] = attrs.Factory(list)
    report: VerificationReport | None = None

    def load(self) -> Contract:
        if self.contract is None:
            self.contract = load_contract(*self.paths)
        return self.contract


_RECORD = pytest.StashKey[_SessionRecord]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cadmetrics", "metrics contract verification")
    group.addoption(
        "--metrics-contract",
        action="append",
        default=[],
        metavar="PATH",
        help="a host contract file added to the cadmetrics contract (repeatable)",
    )
    group.addoption(
        "--metrics-require-all",
        action="store_true",
        default=False,
        help="fail the run if a declared metric was never emitted through the telemetry fixture",
    )
    group.addoption(
        "--metrics-coverage-min",
        default=None,
        metavar="RATIO",
        help="fail the run if tests emitted fewer than RATIO (0 to 1) of the declared metrics",
    )
    parser.addini(
        "metrics_contract",
        "host contract files added to the cadmetrics contract",
        type="paths",
        default=[],
    )
    parser.addini(
        "metrics_coverage_min",
        "the least share (0 to 1) of declared metrics the tests must emit",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    paths = [str(p) for p in config.getini("metrics_contract")]
    paths += list(config.getoption("metrics_contract") or [])
    minimum = config.getoption("metrics_coverage_min") or config.getini("metrics_coverage_min") or None
    config.stash[_RECORD] = _SessionRecord(
        paths, bool(config.getoption("metrics_require_all")), _ratio(minimum)
    )


def _ratio(text: object) -> float | None:
    if text is None:
        return None
    try:
        ratio = float(str(text))
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        raise pytest.UsageError(f"metrics coverage minimum must be a ratio between 0 and 1, not {text!r}")
    return ratio


@pytest.fixture(scope="session")
def metrics_contract(pytestconfig: pytest.Config) -> Contract:
    """The contract under test: cadmetrics' own plus the host's ``--metrics-contract`` files."""
    return pytestconfig.stash[_RECORD].load()


@pytest.fixture
def _captured(request: pytest.FixtureRequest, metrics_contract: Contract) -> Iterator[CapturedTelemetry]:
    record = request.config.stash[_RECORD]
    record.used = True
    captured = CapturedTelemetry(metrics_contract, strict=True)
    try:
        yield captured
        observations = captured.observations()
        report = verify_all(observations, metrics_contract)
        record.checked.update(dict.fromkeys(captured.telemetry.emitted()))
        record.values.update(emitted_values(observations, metrics_contract))
        traces = captured.traces()
        if traces:
            spans = verify_spans(traces, metrics_contract)
            record.spans.update(dict.fromkeys(spans.checked))
            if spans.coverage is not None:
                record.span_values.update(spans.coverage.emitted_values)
            record.violations.extend((request.node.nodeid, v) for v in spans.errors)
        record.violations.extend((request.node.nodeid, v) for v in report.errors if v.kind is not Kind.ABSENT)
    finally:
        captured.close()


@pytest.fixture
def telemetry(_captured: CapturedTelemetry) -> Telemetry:
    """A fresh, strict Telemetry for one test, on every installed backend."""
    return _captured.telemetry


@pytest.fixture
def metrics_registry(_captured: CapturedTelemetry) -> Any:
    """The prometheus_client registry behind ``telemetry`` (skips without prometheus_client)."""
    if _captured.registry is None:
        pytest.skip("prometheus_client is not installed")
    return _captured.registry


class MetricsReader:
    """Reads what the test's ``telemetry`` emitted. Names must be declared, so a typo fails
    instead of reading 0."""

    def __init__(self, captured: CapturedTelemetry) -> None:
        self._captured = captured

    def value(self, name: str, **labels: str) -> float:
        """Sum of the series of ``name`` matching ``labels`` (a histogram reads its count)."""
        require_declared(self._captured.contract, name)
        observation = self._captured.read()
        if observation is None:
            raise pytest.UsageError(
                "reading metric values needs prometheus_client or the OpenTelemetry SDK: "
                "pip install 'cadmetrics[all]'"
            )
        return observation.value(name, **labels)

    @contextmanager
    def delta(self, name: str, **labels: str) -> Iterator[Delta]:
        """``with metrics.delta(name, **labels) as d: ...`` then ``d.value`` is the change."""
        result = Delta(name)
        before = self.value(name, **labels)
        yield result
        result.value = self.value(name, **labels) - before


@attrs.define
class Delta:
    name: str
    value: float = 0.0


@pytest.fixture
def metrics(_captured: CapturedTelemetry) -> MetricsReader:
    """Value and delta reader over the test's ``telemetry``; skips the test where no backend
    is installed to read from."""
    if _captured.read() is None:
        pytest.skip("reading metric values needs prometheus_client or the OpenTelemetry SDK")
    return MetricsReader(_captured)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    record = session.config.stash.get(_RECORD, None)
    if record is None or not record.used:
        return
    contract = record.load()
    violations = [v for _, v in record.violations]
    required = _required(contract)
    if record.require_all:
        for spec in required:
            if spec.name not in record.checked:
                violations.append(Violation(Kind.ABSENT, spec.name, "declared but no test emitted it"))
    coverage = Coverage.of(required, record.checked, record.values)
    if contract.spans:
        record.span_coverage = Coverage.of_spans(_required_spans(contract), record.spans, record.span_values)
    record.report = VerificationReport("tests", tuple(violations), tuple(record.checked), 0, coverage)
    failed = not record.report.ok or _below_minimum(record)
    if failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _required_spans(contract: Contract) -> list[SpanSpec]:
    """The spans coverage counts: the host's own, or the library's when the host declares none."""
    library = str(packaged_contract_path())
    own = [span for span in contract.spans if span.location.path != library]
    return own or list(contract.spans)


def _below_minimum(record: _SessionRecord) -> bool:
    coverage = record.report.coverage if record.report is not None else None
    return record.coverage_min is not None and coverage is not None and coverage.ratio < record.coverage_min


def _required(contract: Contract) -> list[MetricSpec]:
    """What ``--metrics-require-all`` requires and coverage counts: the host's own declarations
    (its files and plugins'), or, when only the library's contract is loaded, all of it. A host
    is not asked to emit the metrics of library components it does not use, nor those another
    library provides (``provided_by``), which no test emits through Telemetry."""
    library = str(packaged_contract_path())
    emitted = list(contract.emitted_here())
    own = [spec for spec in emitted if spec.location.path != library]
    return own or emitted


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    record = config.stash.get(_RECORD, None)
    if record is None or record.report is None:
        return
    report = record.report
    declared = len(record.load())
    _write_coverage(terminalreporter, record)
    if report.ok:
        terminalreporter.write_line(
            f"cadmetrics: metrics emitted by tests agree with the contract "
            f"({len(report.checked)} of {declared} declared metrics seen)"
        )
        return
    terminalreporter.section("cadmetrics contract violations", sep="=", red=True)
    for nodeid, violation in record.violations:
        terminalreporter.write_line(f"{nodeid}: {violation.kind} {violation.metric}: {violation.message}")
    for violation in report.errors:
        if violation.kind is Kind.ABSENT:
            terminalreporter.write_line(f"{violation.kind} {violation.metric}: {violation.message}")


def _write_coverage(terminalreporter: Any, record: _SessionRecord) -> None:
    coverage = record.report.coverage if record.report is not None else None
    if coverage is None:
        return
    below = _below_minimum(record)
    lines = coverage.render()
    terminalreporter.write_line(f"cadmetrics {lines[0]}", red=below)
    for line in lines[1:]:
        terminalreporter.write_line(line)
    if record.span_coverage is not None:
        span_lines = record.span_coverage.render()
        terminalreporter.write_line(f"cadmetrics {span_lines[0]}")
        for line in span_lines[1:]:
            terminalreporter.write_line(line)
    if below:
        terminalreporter.write_line(
            f"cadmetrics: coverage {coverage.ratio:.1%} is below the required {record.coverage_min:.1%}",
            red=True,
        )
