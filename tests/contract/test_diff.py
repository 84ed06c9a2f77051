"""Each class of change is classified as breaking or compatible."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cadmetrics.contract.diff import Impact, diff_contracts
from tests.conftest import ContractWriter, host_contract

BASE = """
- name: myhost_requests_total
  type: counter
  help: Requests.
  labels:
    route: {values: [a, b]}
    tenant: {max_values: 10}
- name: myhost_latency_seconds
  type: histogram
  unit: seconds
  help: Latency.
  buckets: [0.1, 1]
"""


@pytest.mark.parametrize(
    ("old", "new", "impact", "what"),
    [
        ("myhost_latency_seconds", "myhost_latency_gone", Impact.BREAKING, "metric removed"),
        ("type: counter", "type: gauge", Impact.BREAKING, "type changed from counter to gauge"),
        ("unit: seconds", "unit: none", Impact.BREAKING, "unit changed from seconds to none"),
        ("buckets: [0.1, 1]", "buckets: [0.1, 1, 10]", Impact.BREAKING, "buckets changed"),
        (
            "tenant: {max_values: 10}",
            "tenant: {max_values: 10}\n    zone: {max_values: 3}",
            Impact.BREAKING,
            "label 'zone' added",
        ),
        ("    tenant: {max_values: 10}\n", "", Impact.BREAKING, "label 'tenant' removed"),
        ("values: [a, b]", "values: [a]", Impact.BREAKING, "values narrowed, removed ['b']"),
        ("values: [a, b]", "values: [a, b, c]", Impact.COMPATIBLE, "values added ['c']"),
        ("tenant: {max_values: 10}", "tenant: {values: [x]}", Impact.BREAKING, "open set closed"),
        (
            "route: {values: [a, b]}",
            "route: {max_values: 5}",
            Impact.COMPATIBLE,
            "closed set opened",
        ),
        ("max_values: 10", "max_values: 5", Impact.BREAKING, "max_values lowered"),
        ("max_values: 10", "max_values: 50", Impact.COMPATIBLE, "max_values raised"),
        ("help: Requests.", "help: Requests served.", Impact.COMPATIBLE, "help text changed"),
    ],
)
def test_changes_are_classified(
    write_contract: ContractWriter, old: str, new: str, impact: Impact, what: str
) -> None:
    assert old in BASE
    before = host_contract(write_contract(BASE, name="old.yaml"))
    after = host_contract(write_contract(BASE.replace(old, new, 1), name="new.yaml"))
    result = diff_contracts(before, after)
    matching = [c for c in result.changes if what in c.what]
    assert matching, result.render()
    assert {c.impact for c in matching} == {impact}


def test_an_added_metric_is_compatible_and_identical_contracts_have_no_changes(
    write_contract: ContractWriter,
) -> None:
    before = host_contract(write_contract(BASE, name="old.yaml"))
    assert diff_contracts(before, before).changes == ()
    after = host_contract(
        write_contract(
            BASE + "- {name: myhost_new, type: gauge, help: h}\n", name="new.yaml", version="1.1.0"
        )
    )
    result = diff_contracts(before, after)
    assert [(c.impact, c.metric) for c in result.changes] == [(Impact.COMPATIBLE, "myhost_new")]
    assert not result.needs_major_bump


def test_a_breaking_change_without_a_major_bump_is_noted(write_contract: ContractWriter) -> None:
    before = host_contract(write_contract(BASE, name="old.yaml"))
    same_major = host_contract(
        write_contract(BASE.replace("type: counter", "type: gauge"), name="new.yaml", version="1.1.0")
    )
    assert diff_contracts(before, same_major).needs_major_bump
    assert "need a new major version" in diff_contracts(before, same_major).render()
    next_major = host_contract(
        write_contract(BASE.replace("type: counter", "type: gauge"), name="v2.yaml", version="2.0.0")
    )
    assert not diff_contracts(before, next_major).needs_major_bump


SPAN = (
    "- name: myhost.jobs.run\n  help: h\n  attributes:\n    queue: {values: [fast, slow]}\n"
    "    attempts: {type: int}\n  events:\n    - {name: retried, attributes: {attempt: {type: int}}}\n"
)


@pytest.mark.parametrize(
    ("old", "new", "impact"),
    [
        ("- name: myhost.jobs.run", "- name: myhost.jobs.go", Impact.BREAKING),  # removed (+ added)
        ("  help: h\n", "  help: h\n  kind: server\n", Impact.BREAKING),
        ("    attempts: {type: int}\n", "", Impact.BREAKING),
        ("attempts: {type: int}", "attempts: {type: float}", Impact.BREAKING),
        ("[fast, slow]", "[fast]", Impact.BREAKING),
        ("[fast, slow]", "[fast, slow, bulk]", Impact.COMPATIBLE),
        ("attempts: {type: int}", "attempts: {type: int}\n    cached: {type: bool}", Impact.BREAKING),
        (
            "attempts: {type: int}",
            "attempts: {type: int}\n    cached: {type: bool, required: false}",
            Impact.COMPATIBLE,
        ),
        ("    - {name: retried, attributes: {attempt: {type: int}}}\n", "    []\n", Impact.BREAKING),
        ("  events:\n", "  events:\n    - {name: paused}\n", Impact.COMPATIBLE),
        ("{attempt: {type: int}}", "{attempt: {type: int}, delay: {type: float}}", Impact.BREAKING),
    ],
)
def test_span_changes_are_classified(tmp_path: Path, old: str, new: str, impact: Impact) -> None:
    def write(name: str, spans: str) -> Path:
        path = tmp_path / name
        path.write_text(
            f"namespace: myhost\nversion: 1.0.0\nmetrics: []\nspans:\n{textwrap.indent(spans, '  ')}"
        )
        return path

    assert old in SPAN
    before = host_contract(write("old.yaml", SPAN))
    after = host_contract(write("new.yaml", SPAN.replace(old, new, 1)))
    result = diff_contracts(before, after)
    assert result.changes, "no change found"
    assert {change.impact for change in result.changes} >= {impact}
    if impact is Impact.COMPATIBLE:
        assert not result.breaking, result.render()
