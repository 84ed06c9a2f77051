"""Shared fixtures: the library contract and a writer for small contract files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.model import Contract

pytest_plugins = ["pytester"]

#: The repository's root (child processes of the tests run there, to import ``tests``).
REPOSITORY = Path(__file__).resolve().parents[1]
# The samples live beside the repository (``../shared/cad-samples`` from its root), not in it.
CAD_SAMPLES = REPOSITORY.parent / "shared" / "cad-samples"
MODEL_SAMPLES = REPOSITORY.parent / "shared" / "model-samples"

ContractWriter = Callable[..., Path]


@pytest.fixture(scope="session")
def library_contract() -> Contract:
    return load_contract()


@pytest.fixture
def write_contract(tmp_path: Path) -> ContractWriter:
    """Write a contract file from YAML text; ``metrics`` text is indented under ``metrics:``."""

    def write(
        metrics: str,
        name: str = "host.yaml",
        namespace: str = "myhost",
        version: str = "1.0.0",
        extra: str = "",
    ) -> Path:
        body = textwrap.indent(textwrap.dedent(metrics).strip("\n"), "  ")
        text = f"namespace: {namespace}\nversion: {version}\n{extra}metrics:\n{body}\n"
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def host_contract(path: Path) -> Contract:
    """Load ``path`` alone: no library contract, no plugins, no lint gate."""
    return load_contract(path, library=False, entry_points=False, check=False)


@pytest.fixture(scope="session")
def cad_samples() -> Path:
    """The folder of real CAD files (stl/, obj/, ply/, dxf/, step/, broken/).

    Tests that need it are skipped when it is absent: the project's own generated fixtures
    still cover every format.
    """
    if not CAD_SAMPLES.is_dir():
        pytest.skip(f"shared CAD samples not found at {CAD_SAMPLES} (expected beside the repository)")
    return CAD_SAMPLES


@pytest.fixture(scope="session")
def model_samples() -> Path:
    """The folder of real model files made by PyTorch itself, with their MANIFEST.json."""
    if not MODEL_SAMPLES.is_dir():
        pytest.skip(f"shared model samples not found at {MODEL_SAMPLES} (expected beside the repository)")
    return MODEL_SAMPLES


def server_binary(name: str) -> str:
    """The path of a server binary the tests run for real (redis-server, prometheus, promtool).

    Missing, the test is skipped with a loud reason, or fails where the environment says the
    servers must be there (``./dev test`` installs them from Debian's packages and sets
    ``CADMETRICS_REQUIRE_SERVERS``).
    """
    binary = shutil.which(name)
    if binary is None:
        message = f"{name} is not installed (./dev test installs it with apt-get)"
        if os.environ.get("CADMETRICS_REQUIRE_SERVERS"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def serving_demo(duration: float) -> tuple[subprocess.Popen[str], str]:
    """``cadmetrics demo`` serving its metrics for ``duration`` seconds (on the shared samples
    when present): the process, and the URL of its metrics once they are served."""
    samples = ["--samples", str(CAD_SAMPLES)] if CAD_SAMPLES.is_dir() else []
    demo = subprocess.Popen(
        [sys.executable, "-m", "cadmetrics", "demo", "--port", "0", "--duration", str(duration), *samples],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    for line in demo.stdout:
        if line.startswith("serving the metrics on "):
            return demo, line.split()[4]
    demo.wait(timeout=30)
    raise AssertionError(f"the demo ended (status {demo.returncode}) without serving its metrics")
