"""Fixtures for the feature tests: the shared real CAD samples, when they are present."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The repository's root (child processes of the tests run there, to import ``tests``).
REPOSITORY = Path(__file__).resolve().parents[2]
# The samples live beside the repository (``../shared/cad-samples`` from its root), not in it.
CAD_SAMPLES = REPOSITORY.parent / "shared" / "cad-samples"


@pytest.fixture(scope="session")
def cad_samples() -> Path:
    """The folder of real CAD files (stl/, obj/, ply/, dxf/, step/, broken/).

    Tests that need it are skipped when it is absent: the project's own generated fixtures
    still cover every format.
    """
    if not CAD_SAMPLES.is_dir():
        pytest.skip(f"shared CAD samples not found at {CAD_SAMPLES} (expected beside the repository)")
    return CAD_SAMPLES
