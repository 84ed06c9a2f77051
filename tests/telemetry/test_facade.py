"""The facade without any backend: contract binding, no-op instruments, strict validation.

These run in every environment, including the one without prometheus_client and OpenTelemetry.
"""

from __future__ import annotations

import pytest

from cadmetrics.contract.model import Contract
from cadmetrics.errors import ContractError, LabelError, TelemetryError
from cadmetrics.telemetry import Telemetry
from cadmetrics.telemetry.instruments import NoopCounter, NoopGauge, NoopHistogram

BLOCKED = "cadmetrics_model_opcode_blocked_total"
DRIFT = "cadmetrics_drift_score"


def test_unknown_names_and_wrong_types_fail_when_asked_for(library_contract: Contract) -> None:
    tel = Telemetry(library_contract)
    with pytest.raises(
        ContractError, match=r"not declared.*did you mean cadmetrics_model_opcode_blocked_total"
    ):
        tel.counter("cadmetrics_model_opcode_block_total")
    with pytest.raises(ContractError, match=r"declared as a counter .*metrics.yaml:\d+.*not a gauge"):
        tel.gauge(BLOCKED)
    assert tel.counter(BLOCKED) is tel.counter(BLOCKED)
    with pytest.raises(ContractError, match="not a histogram"):
        tel.histogram(BLOCKED)


def test_without_backends_instruments_are_free_no_ops(library_contract: Contract) -> None:
    tel = Telemetry(library_contract, strict=False)
    assert not tel.enabled
    assert isinstance(tel.counter(BLOCKED), NoopCounter)
    assert isinstance(tel.gauge("cadmetrics_model_rollback_level"), NoopGauge)
    assert isinstance(tel.histogram(DRIFT), NoopHistogram)
    tel.counter(BLOCKED).inc(reason="anything", mode="at all")
    with tel.histogram(DRIFT).time():
        pass
    with pytest.raises(ContractError):
        tel.counter("cadmetrics_not_declared_total")  # names are still checked


def test_strict_mode_without_backends_still_validates(library_contract: Contract) -> None:
    tel = Telemetry(library_contract, ["noop"], strict=True)
    tel.counter(BLOCKED).inc(reason="malformed", mode="blocklist")
    with pytest.raises(LabelError):
        tel.counter(BLOCKED).inc(reason="bogus", mode="blocklist")


def test_strict_default_comes_from_the_environment(
    library_contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CADMETRICS_TELEMETRY_STRICT", "1")
    assert Telemetry(library_contract).strict
    monkeypatch.setenv("CADMETRICS_TELEMETRY_STRICT", "0")
    assert not Telemetry(library_contract).strict


def test_unknown_backends_are_refused(library_contract: Contract) -> None:
    with pytest.raises(TelemetryError, match="unknown backend 'statsd'"):
        Telemetry(library_contract, ["statsd"])
    with pytest.raises(TelemetryError, match="cannot use 42"):
        Telemetry(library_contract, [42])
