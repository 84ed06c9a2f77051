"""The STEP reader fuzzed: a real part's bytes changed, cut, repeated and given stray entity
references. OpenCASCADE crashes on some of these (a segmentation fault in its transfer); the
extractor must answer every one with a vector or a FeatureInputError, and live on."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.cache import FeatureCache
from cadmetrics.features.extractor import FeatureExtractor, FeatureVector

pytest.importorskip("OCP", reason="the step extra (OpenCASCADE) is not installed")

#: A mutant of base_interface_AP203.STEP on which OpenCASCADE 8.0's STEP transfer crashes.
CRASHING_SEED = 16


def mutant(base: bytes, seed: int) -> bytes:
    """``base`` with one to eight random edits: a byte changed, a run deleted, a run copied
    from elsewhere, or an entity reference (``#n``) inserted."""
    rng = random.Random(seed)
    data = bytearray(base)
    for _ in range(rng.randint(1, 8)):
        edit, at = rng.random(), rng.randrange(len(data))
        if edit < 0.4:
            data[at] = rng.randrange(256)
        elif edit < 0.6:
            del data[at : at + rng.randint(1, 50)]
        elif edit < 0.8:
            data[at:at] = data[rng.randrange(len(data)) :][: rng.randint(1, 50)]
        else:
            data[at:at] = b"#" + str(rng.randint(1, 2000)).encode()
    return bytes(data)


@pytest.fixture
def base(cad_samples: Path) -> bytes:
    return (cad_samples / "step" / "base_interface_AP203.STEP").read_bytes()


def test_a_crash_in_opencascade_is_a_clear_error_and_the_next_file_reads(
    cad_samples: Path, base: bytes
) -> None:
    extractor = FeatureExtractor("v1", cache=FeatureCache.disabled())
    with pytest.raises(FeatureInputError, match="OpenCASCADE crashed reading it") as caught:
        extractor.extract(mutant(base, CRASHING_SEED))
    assert (caught.value.reason, caught.value.format) == ("malformed", "step")
    assert extractor.extract(cad_samples / "step" / "featuretype.STEP").as_dict()["face_count"] > 0


@pytest.mark.parametrize("brep", [False, True])
def test_every_mutant_gives_a_vector_or_a_clear_error(base: bytes, brep: bool) -> None:
    extractor = FeatureExtractor("v4", brep=brep, cache=FeatureCache.disabled())
    outcomes = set()
    for seed in range(1, 25):
        try:
            vector = extractor.extract(mutant(base, seed))
        except FeatureInputError as error:
            messages = str(error)
            outcomes.add(error.reason)
            assert messages.startswith("<bytes>: "), messages
        else:
            assert isinstance(vector, FeatureVector)
            outcomes.add("read")
    assert "read" in outcomes and "malformed" in outcomes


def test_a_file_past_its_time_bound_is_stopped_and_refused(cad_samples: Path) -> None:
    from cadmetrics.features.brep_process import BRepProcess

    data = (cad_samples / "step" / "box_sides.STEP").read_bytes()
    reader = BRepProcess()
    try:
        with pytest.raises(FeatureInputError, match="took longer than 0 s") as caught:
            reader.summarize(data, source="box_sides", format="step", measures=frozenset(), timeout=0.001)
        assert caught.value.reason == "too_large"
        summary = reader.summarize(data, source="box_sides", format="step", measures=frozenset({"mass"}))
        assert summary.topology["solid"] == 10 and summary.mass is not None
    finally:
        reader.close()
