"""A plain wheel carries the contract: load_contract() works from a non-editable install."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("cadmetrics-*.whl")
    return built


def test_the_wheel_holds_the_contract_plugin_and_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        packaged = archive.read("cadmetrics/_contracts/metrics.yaml")
        names = set(archive.namelist())
        assert "cadmetrics/_contracts/alerts/cadmetrics.rules.yaml" in names
        assert "cadmetrics/_contracts/dashboards/cadmetrics-features.json" in names
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        declared = archive.read(entry_points).decode()
    assert packaged == (ROOT / "contracts" / "metrics.yaml").read_bytes()
    assert "cadmetrics/py.typed" in names
    assert "[pytest11]\ncadmetrics = cadmetrics.pytest_plugin" in declared
    assert "cadmetrics = cadmetrics.cli:main" in declared


def test_load_contract_works_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import cadmetrics;"
        "from cadmetrics.contract.compose import packaged_contract_path as p;"
        "print(cadmetrics.__file__); print(p()); print(len(cadmetrics.load_contract()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(site)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    module, contract_path, count = result.stdout.split()
    assert module.startswith(str(site))
    assert contract_path == str(site / "cadmetrics" / "_contracts" / "metrics.yaml")
    assert int(count) > 30
