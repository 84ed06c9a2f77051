"""Whatever the text, loading ends in a contract or a located ContractLoadError, never in a
bare exception from deep inside."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics.contract.compose import compose, packaged_contract_path
from cadmetrics.contract.lint import lint
from cadmetrics.contract.loader import parse_contract_text
from cadmetrics.errors import ContractLoadError

LIBRARY_LINES = packaged_contract_path().read_text(encoding="utf-8").splitlines()


def load_or_located_error(text: str) -> None:
    error: ContractLoadError | None = None
    try:
        contract = compose([parse_contract_text(text, "fuzz.yaml")])
    except ContractLoadError as caught:
        error = caught
    else:
        lint(contract)  # lint runs on whatever loads
    if error is not None:
        assert (error.path, bool(error.rule), error.line >= 0) == ("fuzz.yaml", True, True)


HEAD = "namespace: a\nversion: 1.0.0\nmetrics:\n"


@pytest.mark.parametrize(
    "metric",
    [
        "- {name: a_x, type: gauge, help: 2001-13-45}",  # a date YAML resolves but cannot build
        "- {name: !!python/object:os.system x, type: gauge, help: h}",  # an unsafe tag
        "- {name: a_x, type: gauge, help: !!binary 'zz'}",  # broken base64
        "- {name: a_x, type: gauge, help: !!int 'x'}",
        "- {? [a]: 1}",
    ],
)
def test_values_yaml_cannot_construct_are_located_errors(metric: str) -> None:
    with pytest.raises(ContractLoadError, match=r"^fuzz.yaml:4: \[schema-type\]"):
        parse_contract_text(HEAD + metric + "\n", "fuzz.yaml")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    load_or_located_error(text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutations_of_the_library_contract(data: st.DataObject) -> None:
    lines = list(LIBRARY_LINES)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "replace", "indent"]))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "replace":
            lines[index] = data.draw(st.text(max_size=40))
        else:
            lines[index] = "  " + lines[index]
    load_or_located_error("\n".join(lines))
