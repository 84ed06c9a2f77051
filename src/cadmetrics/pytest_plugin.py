"""The pytest plugin: a host's CI checks what its code really emits against the contract.

Installed with cadmetrics (entry point ``pytest11``). It adds ``--metrics-contract PATH``
(repeatable; also the ``metrics_contract`` ini option) for the host's own contract and
``--metrics-require-all`` (every metric the host declares must be emitted by some test; with
no host contract, every metric of the library's), and the fixtures:

- ``metrics_contract``: the composed contract (library + host files), once per session;
- ``telemetry``: a fresh, strict Telemetry per test, on every installed backend;
- ``metrics_registry``: the prometheus_client registry behind ``telemetry``, where host code
  may register its own collectors (they are verified too);
- ``metrics``: reads values (``metrics.value(name, **labels)``) and deltas
  (``with metrics.delta(name, **labels) as d: ...; d.value``).

Whatever the tests emitted through these fixtures is verified at the end of the session, and
any violation fails the run, even when every test passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest

from cadmetrics.contract.compose import load_contract, packaged_contract_path
from cadmetrics.contract.model import Contract, MetricSpec
from cadmetrics.contract.observed import require_declared
from cadmetrics.contract.verify import Kind, VerificationReport, Violation, verify_all
from cadmetrics.telemetry.capture import CapturedTelemetry
from cadmetrics.telemetry.facade import Telemetry


@attrs.define
class _SessionRecord:
    """What the session's tests emitted: per-test violations and every metric seen."""

    paths: list[str]
    require_all: bool
    contract: Contract | None = None
    used: bool = False
    checked: dict[str, None] = attrs.Factory(dict)
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
    parser.addini(
        "metrics_contract",
        "host contract files added to the cadmetrics contract",
        type="paths",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    paths = [str(p) for p in config.getini("metrics_contract")]
    paths += list(config.getoption("metrics_contract") or [])
    config.stash[_RECORD] = _SessionRecord(paths, bool(config.getoption("metrics_require_all")))


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
        report = verify_all(captured.observations(), metrics_contract)
        record.checked.update(dict.fromkeys(captured.telemetry.emitted()))
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
    if record.require_all:
        for spec in _required(contract):
            if spec.name not in record.checked:
                violations.append(Violation(Kind.ABSENT, spec.name, "declared but no test emitted it"))
    record.report = VerificationReport("tests", tuple(violations), tuple(record.checked), 0)
    if not record.report.ok and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _required(contract: Contract) -> list[MetricSpec]:
    """What ``--metrics-require-all`` requires: the host's own declarations (its files and
    plugins'), or, when only the library's contract is loaded, all of it. A host is not asked
    to emit the metrics of library components it does not use."""
    library = str(packaged_contract_path())
    own = [spec for spec in contract if spec.location.path != library]
    return own or list(contract)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    record = config.stash.get(_RECORD, None)
    if record is None or record.report is None:
        return
    report = record.report
    declared = len(record.load())
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
