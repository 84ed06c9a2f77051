"""Composition: host files, extends and plugins' entry points make one contract; a name
declared twice is an error naming both files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cadmetrics.contract.compose import ENTRY_POINT_GROUP, load_contract, packaged_contract_path
from cadmetrics.errors import ContractCollisionError, ContractLoadError
from tests.conftest import ContractWriter


def test_a_host_file_adds_to_the_library_contract(write_contract: ContractWriter) -> None:
    path = write_contract("- {name: myhost_requests_total, type: counter, help: h}")
    contract = load_contract(path, entry_points=False)
    assert contract.namespaces == ("cadmetrics", "myhost")
    assert "myhost_requests_total" in contract
    assert "cadmetrics_model_opcode_blocked_total" in contract


def test_a_collision_with_the_library_names_both_files(write_contract: ContractWriter) -> None:
    path = write_contract(
        "- {name: cadmetrics_model_rollback_level, type: gauge, help: mine}", namespace="cadmetrics"
    )
    with pytest.raises(ContractCollisionError) as caught:
        load_contract(path, entry_points=False)
    message = str(caught.value)
    assert str(path) in message
    assert "contracts/metrics.yaml" in message  # the library's declaration, with its line
    assert caught.value.rule == "collision"


def test_a_collision_between_two_host_files_names_both(write_contract: ContractWriter) -> None:
    first = write_contract("- {name: myhost_x, type: gauge, help: h}", name="a.yaml")
    second = write_contract("- {name: myhost_x, type: gauge, help: h}", name="b.yaml")
    with pytest.raises(ContractCollisionError, match=rf"{second}:4: \[collision\].*{first}:4"):
        load_contract(first, second, entry_points=False)


def test_extends_pulls_in_parents_once_even_in_a_diamond(write_contract: ContractWriter) -> None:
    base = write_contract("- {name: base_x, type: gauge, help: h}", name="base.yaml", namespace="base")
    write_contract(
        "- {name: left_x, type: gauge, help: h}",
        name="left.yaml",
        namespace="left",
        extra="extends: [base.yaml]\n",
    )
    write_contract(
        "- {name: right_x, type: gauge, help: h}",
        name="right.yaml",
        namespace="right",
        extra="extends: [base.yaml]\n",
    )
    top = write_contract(
        "- {name: top_x, type: gauge, help: h}",
        name="top.yaml",
        namespace="top",
        extra="extends: [left.yaml, right.yaml]\n",
    )
    contract = load_contract(top, library=False, entry_points=False)
    assert [spec.name for spec in contract] == ["base_x", "left_x", "right_x", "top_x"]
    assert contract.parts[0].path == str(base)


@pytest.fixture
def installed_plugin(tmp_path: Path, write_contract: ContractWriter) -> Iterator[Path]:
    """A real installed distribution (dist-info on sys.path) declaring a contract entry point."""
    contract = write_contract(
        "- {name: plugin_jobs_total, type: counter, help: h}",
        name="plugin.yaml",
        namespace="plugin",
    )
    site = tmp_path / "site"
    (site / "cadplugin").mkdir(parents=True)
    (site / "cadplugin" / "__init__.py").write_text(f"CONTRACT = {str(contract)!r}\n")
    dist = site / "cadplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cadplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ncadplugin = cadplugin:CONTRACT\n")
    sys.path.insert(0, str(site))
    try:
        yield contract
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("cadplugin", None)


def test_plugins_contribute_through_the_entry_point(installed_plugin: Path) -> None:
    contract = load_contract()
    assert "plugin_jobs_total" in contract
    assert "plugin" in contract.namespaces
    assert "plugin_jobs_total" not in load_contract(entry_points=False)


def test_a_broken_entry_point_is_a_load_error(installed_plugin: Path) -> None:
    installed_plugin.write_text("namespace: plugin\nversion: 1.0.0\nmetrics: oops\n")
    with pytest.raises(ContractLoadError, match=r"plugin.yaml:3: \[schema-type\]"):
        load_contract()


def test_a_version_of_the_library_contract_replaces_the_installed_one(tmp_path: Path) -> None:
    """``contract lint contracts/metrics.yaml`` inside the repository, while a wheel's copy is
    what is installed: the file given is linted, not reported as colliding with itself."""
    edited = tmp_path / "metrics.yaml"
    text = packaged_contract_path().read_text(encoding="utf-8")
    edited.write_text(text.replace("version: 1.0.0", "version: 1.1.0", 1), encoding="utf-8")
    contract = load_contract(edited, entry_points=False)
    assert [part.path for part in contract.parts] == [str(edited)]
    assert contract.version == "1.1.0"
