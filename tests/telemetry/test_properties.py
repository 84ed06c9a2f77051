"""Property tests of label admission: whatever a caller passes, in production mode no emission
is lost, nothing unadmitted is exported, and every replacement is counted exactly once."""

from __future__ import annotations

from collections import Counter as Tally

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics.contract.model import OVERFLOW_VALUE, Contract
from cadmetrics.contract.observed import from_registry
from cadmetrics.contract.verify import verify
from cadmetrics.errors import LabelError
from cadmetrics.telemetry import OVERFLOW_METRIC, Telemetry

pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry

BLOCKED = "cadmetrics_model_opcode_blocked_total"
DRIFT = "cadmetrics_drift_score"
REASONS = ["dangerous_global", "not_allowlisted", "dangerous_construct", "malformed", "unknown_format"]

reason = st.one_of(st.sampled_from(REASONS), st.text(max_size=12))
mode = st.one_of(st.sampled_from(["blocklist", "allowlist"]), st.text(max_size=12))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(reason, mode), max_size=40))
def test_production_mode_loses_nothing_and_counts_every_replacement(
    library_contract: Contract, emissions: list[tuple[str, str]]
) -> None:
    registry = CollectorRegistry()
    counter = Telemetry(library_contract, [registry]).counter(BLOCKED)
    for r, m in emissions:
        counter.inc(reason=r, mode=m)
    exported = [
        s for f in registry.collect() if f.name + "_total" == BLOCKED for s in f.samples if s.name == BLOCKED
    ]
    assert sum(s.value for s in exported) == len(emissions)
    for s in exported:
        assert s.labels["reason"] in {*REASONS, OVERFLOW_VALUE}
        assert s.labels["mode"] in {"blocklist", "allowlist", OVERFLOW_VALUE}
    expected: Tally[str] = Tally()
    for r, m in emissions:
        expected["reason"] += r not in REASONS
        expected["mode"] += m not in ("blocklist", "allowlist")
    for label in ("reason", "mode"):
        counted = registry.get_sample_value(OVERFLOW_METRIC, {"metric": BLOCKED, "label": label}) or 0
        assert counted == expected[label]
    assert verify(from_registry(registry), library_contract).ok


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=120))
def test_open_labels_never_export_more_than_max_values(library_contract: Contract, groups: list[str]) -> None:
    registry = CollectorRegistry()
    drift = Telemetry(library_contract, [registry]).histogram(DRIFT)
    for group in groups:
        drift.observe(0.1, feature_group=group, statistic="psi")
    values = {
        s.labels["feature_group"]
        for f in registry.collect()
        if f.name == DRIFT
        for s in f.samples
        if s.name == DRIFT + "_count"
    }
    cap = library_contract.require(DRIFT).labels[0].max_values or 0
    assert len(values - {OVERFLOW_VALUE}) == min(cap, len(set(groups)))
    assert registry.get_sample_value(
        DRIFT + "_count", {"feature_group": OVERFLOW_VALUE, "statistic": "psi"}
    ) == (
        None if len(set(groups)) <= cap else sum(1 for g in groups if g not in _first_distinct(groups, cap))
    )


def _first_distinct(items: list[str], n: int) -> set[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen and len(seen) < n:
            seen.append(item)
    return set(seen)


@settings(max_examples=60, deadline=None)
@given(reason, mode)
def test_strict_mode_admits_exactly_the_declared_values(library_contract: Contract, r: str, m: str) -> None:
    counter = Telemetry(library_contract, ["noop"], strict=True).counter(BLOCKED)
    admitted = r in REASONS and m in ("blocklist", "allowlist")
    if admitted:
        counter.inc(reason=r, mode=m)
    else:
        with pytest.raises(LabelError):
            counter.inc(reason=r, mode=m)
