"""Inputs at the edges of what the loader can hold: names the file system refuses, numbers
beyond float range, closed labels of tens of thousands of values. Each ends in a located
ContractLoadError, in time linear in the input, never in a raw OSError or OverflowError."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cadmetrics.contract import loader
from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.loader import MAX_LABEL_VALUES, parse_contract_file, parse_contract_text
from cadmetrics.errors import ContractLoadError

HEAD = "namespace: a\nversion: 1.0.0\n"


def load_error(text: str) -> ContractLoadError:
    with pytest.raises(ContractLoadError) as caught:
        parse_contract_text(text, "x.yaml")
    return caught.value


def closed_label(count: int) -> str:
    values = ", ".join(f"v{i}" for i in range(count))
    return HEAD + f"metrics:\n- {{name: a_x, type: gauge, help: h, labels: {{k: {{values: [{values}]}}}}}}\n"


def test_an_extends_name_too_long_for_the_file_system_is_located() -> None:
    error = load_error(HEAD + "extends: ['" + "a" * 5000 + ".yaml']\nmetrics: []\n")
    assert (error.path, error.line, error.rule) == ("x.yaml", 3, "extends-missing")
    assert "cannot be used as a file name" in error.message
    assert "(5005 characters)" in error.message  # the name is quoted cut short, not in full


@pytest.mark.parametrize("name", ["a\0b.yaml", "\ud800.yaml"])
def test_a_contract_path_the_system_cannot_look_up_is_a_load_error(name: str) -> None:
    with pytest.raises(ContractLoadError, match=r"\[file\] cannot read contract file"):
        parse_contract_file(name)
    with pytest.raises(ContractLoadError, match=r"\[file\] cannot read contract file"):
        load_contract(name, library=False, entry_points=False)


def test_an_extends_name_with_a_nul_byte_is_located() -> None:
    error = load_error(HEAD + 'extends: ["a\\0b.yaml"]\nmetrics: []\n')
    assert (error.line, error.rule) == (3, "extends-missing")


def test_a_bucket_beyond_float_range_is_located() -> None:
    error = load_error(
        HEAD + "metrics:\n- {name: a_x, type: histogram, help: h, buckets: [1, " + "9" * 400 + "]}\n"
    )
    assert (error.path, error.line, error.rule) == ("x.yaml", 4, "number-range")
    assert "out of the range of a float" in error.message


def test_a_closed_label_at_the_bound_loads_and_one_past_it_is_refused() -> None:
    spec = parse_contract_text(closed_label(MAX_LABEL_VALUES), "x.yaml").metrics[0]
    assert spec.labels[0].values is not None and len(spec.labels[0].values) == MAX_LABEL_VALUES
    error = load_error(closed_label(MAX_LABEL_VALUES + 1))
    assert (error.line, error.rule) == (4, "label-values-limit")
    assert f"more than {MAX_LABEL_VALUES}" in error.message and "max_values" in error.message


def test_the_bound_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_LABEL_VALUES", 3)
    assert load_error(closed_label(4)).rule == "label-values-limit"
    parse_contract_text(closed_label(3), "x.yaml")


def test_the_duplicate_check_of_a_closed_label_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """50,000 values took half a minute when each was looked up in a list of the ones before
    (the suite's run time shows a regression; no time is asserted). The nodes are built
    directly, so that the work is the reader's, not PyYAML's."""
    monkeypatch.setattr(loader, "MAX_LABEL_VALUES", 100_000)
    items = [scalar(f"v{i}", line) for line, i in enumerate(range(50_000), start=1)]
    items.append(scalar("v0", 50_001))
    reader = loader.Reader("x.yaml")
    with pytest.raises(ContractLoadError, match=r"^x.yaml:50001: .*'v0' is listed twice"):
        reader.label_values(yaml.SequenceNode(SEQ, items, mark(1)), "label 'k'")


SEQ = "tag:yaml.org,2002:seq"


def mark(line: int) -> yaml.Mark:
    return yaml.Mark("x.yaml", 0, line - 1, 0, None, 0)


def scalar(value: str, line: int) -> yaml.ScalarNode:
    return yaml.ScalarNode("tag:yaml.org,2002:str", value, mark(line))


def test_docs_state_the_bound() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
    assert f"{MAX_LABEL_VALUES:,}" in docs.read_text(encoding="utf-8")


def test_a_contract_file_of_megabytes_is_refused_before_it_is_parsed() -> None:
    """A line repeated by a generator gone wrong: PyYAML would take tens of seconds on it."""
    from cadmetrics.contract import loader

    text = "namespace: a\nversion: 1.0.0\nmetrics: []\n" + "# a comment that repeats\n" * 50_000
    with pytest.raises(ContractLoadError, match=r"file-size-limit.*more than a contract file may hold"):
        loader.parse_contract_text(text, "huge.yaml")
