"""A short, deterministic fuzz run of every input surface: fixed seeds, the same inputs on every
machine, each in a child with the 2 GiB and 10 s caps. A longer run is ``./dev fuzz``."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import available, run_inputs
from tests.fuzz.mutations import mutant
from tests.fuzz.surfaces import SURFACES

#: Inputs per surface: about a minute for the whole run on a 2-core machine.
INPUTS = {
    "mesh": 300, "drawing": 120, "step": 16, "iges": 12, "contract": 30, "exposition": 300,
    "infer": 200, "otlp": 300, "traces": 300, "rules": 30,
    "dashboards": 200, "scan": 300,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_mutated_inputs_give_results_or_library_errors(name: str) -> None:
    surface = SURFACES[name]
    missing = available(surface.needs)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    corpus = surface.corpus()
    if not corpus:
        pytest.skip(f"no real inputs for {name} (the shared samples are absent)")
    inputs = ((seed, mutant(seed, corpus)) for seed in range(INPUTS[name]))
    outcomes = list(run_inputs(name, inputs))
    findings = [f"seed {o.seed}: {o.kind}: {o.detail}" for o in outcomes if o.finding]
    assert not findings, "\n".join(findings)
    assert {outcome.kind for outcome in outcomes} >= {"result", "error"}  # the mutants reach both
