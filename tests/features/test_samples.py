"""Every version from every supported format, on the real files; the broken ones refused
clearly or read as documented; the command line on top."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics import Telemetry
from cadmetrics.cli import main
from cadmetrics.errors import FeatureInputError
from cadmetrics.features.extractor import FeatureExtractor, FeatureVector
from cadmetrics.features.layout import DRAWING_LAYOUTS, LAYOUTS
from tests.features.test_formats import BROKEN as READ_MESH_BROKEN
from tests.features.test_formats import SAMPLES

DRAWINGS = ["dxf/1002_tray_bottom.DXF", "dxf/LM2.dxf", "dxf/insert.dxf", "dxf/uc.r12a.dxf", "dxf/wrench.dxf"]

#: broken/ through the extractor: as read_mesh does (test_formats), except that a DXF goes
#: to the drawing reader, which reads broken_loop as drawn.
BROKEN = {**READ_MESH_BROKEN, "broken_loop.dxf": None}


@pytest.mark.parametrize("version", LAYOUTS)
def test_every_version_from_every_real_file(cad_samples: Path, version: str) -> None:
    pytest.importorskip("ezdxf")
    extractor = FeatureExtractor(version)
    results = extractor.extract_many([cad_samples / name for name in SAMPLES + DRAWINGS], progress=False)
    for name, result in zip(SAMPLES + DRAWINGS, results, strict=True):
        assert isinstance(result, FeatureVector), f"{name}: {result}"
        layout = (DRAWING_LAYOUTS if name.startswith("dxf/") else LAYOUTS)[version]
        assert result.names == layout.names and result.values.shape == (layout.dimension,)
        assert np.isfinite(result.values).all(), name
        assert result.format == name.split("/", maxsplit=1)[0]


def test_known_real_parts(cad_samples: Path) -> None:
    extractor = FeatureExtractor("v4")
    cube = extractor.extract(cad_samples / "stl" / "unit_cube.STL").as_dict()
    assert (cube["volume"], cube["surface_area"], cube["surface_count"]) == (1.0, 6.0, 6.0)
    assert cube["watertight"] == 1.0 and cube["euler_characteristic"] == 2.0
    cylinder = extractor.extract(cad_samples / "stl" / "cylinder.stl").as_dict()
    assert cylinder["surface_count"] == 3.0
    torus = extractor.extract(cad_samples / "stl" / "torus.STL").as_dict()
    assert torus["euler_characteristic"] == 0.0 and torus["surface_count"] == 1.0


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_every_broken_file_is_refused_clearly_or_read_as_documented(
    cad_samples: Path, name: str, telemetry: Telemetry, metrics: Any
) -> None:
    if name.endswith(".dxf"):
        pytest.importorskip("ezdxf")
    extractor = FeatureExtractor("v4", telemetry=telemetry)
    reason = BROKEN[name]
    if reason is None:
        assert np.isfinite(extractor.extract(cad_samples / "broken" / name).values).all()
        return
    with pytest.raises(FeatureInputError) as caught:
        extractor.extract(cad_samples / "broken" / name)
    assert caught.value.reason == reason
    assert str(caught.value).startswith(str(cad_samples / "broken" / name))
    assert metrics.value("cadmetrics_feature_extraction_errors_total", reason=reason) == 1


def test_quality_says_what_was_degraded(cad_samples: Path, telemetry: Telemetry, metrics: Any) -> None:
    extractor = FeatureExtractor("v2", telemetry=telemetry)
    expected = {
        "stl/unit_cube.STL": (),
        "ply/octagonal_pocket.ply": (),  # welded: closed
        "stl/teapot.stl": ("open",),
        "stl/multibody.stl": ("inconsistent_winding",),
        "broken/soup.stl": ("open", "polygon_soup"),
    }
    for name, quality in expected.items():
        vector = extractor.extract(cad_samples / name)
        assert vector.quality == quality, name
        assert vector.to_json_dict()["quality"] == list(quality)
        if quality:
            assert vector.as_dict()["volume"] == 0.0
    assert metrics.value("cadmetrics_feature_degraded_total", format="stl", quality="open") == 2
    assert metrics.value("cadmetrics_feature_degraded_total", format="stl", quality="polygon_soup") == 1


def test_a_vector_is_an_array(cad_samples: Path) -> None:
    vector = FeatureExtractor("v1").extract(cad_samples / "stl" / "unit_cube.STL")
    assert np.asarray(vector) is vector.values
    np.testing.assert_array_equal(np.asarray(vector, dtype=np.float32), vector.values.astype(np.float32))
    assert len(vector) == 7 and np.stack([vector, vector]).shape == (2, 7)


def test_the_extract_command(cad_samples: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cube = str(cad_samples / "stl" / "unit_cube.STL")
    assert main(["extract", "--version", "v1", cube]) == 0
    out = capsys.readouterr().out
    assert "unit_cube.STL: v1 mesh, stl, sha256 " in out and "volume" in out
    assert main(["extract", "--json", cube, str(cad_samples / "obj" / "box.obj")]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = {"path", "version", "format", "family", "sha256", "unit", "quality", "names", "vector"}
    assert [set(row) for row in rows] == [keys] * 2
    assert (rows[0]["format"], rows[0]["family"], rows[0]["unit"], rows[0]["quality"]) == (
        "stl",
        "mesh",
        None,
        [],
    )
    assert rows[0]["version"] == "v4" and len(rows[0]["vector"]) == len(rows[0]["names"]) == 49
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert main(["extract", cube, str(cad_samples / "broken" / "empty.stl")]) == 1
    assert "[empty]" in capsys.readouterr().err
    assert main(["extract", str(tmp_path)]) == 0  # a walked directory skips what is not CAD
    assert "notes.txt: skipped" in capsys.readouterr().out
    assert main(["extract", "--version", "v7", cube]) == 2
    assert "unknown feature version 'v7'" in capsys.readouterr().err


def test_tuning_from_requests_for_real_files(cad_samples: Path) -> None:
    """A request stream over the real parts: the recommended L1 size, replayed on the same
    stream with that many entries, reaches the target."""
    from cadmetrics.features.cache import FeatureCache, MemoryCache

    paths = [cad_samples / name for name in SAMPLES]
    rng = np.random.default_rng(5)
    popularity = 1.0 / np.arange(1, len(paths) + 1)
    stream = rng.choice(len(paths), size=400, p=popularity / popularity.sum())
    observer = FeatureExtractor("v1", cache=FeatureCache.disabled())
    for index in stream:
        observer.extract(paths[index])
    recommendation = observer.cache_tuning(0.6)
    assert recommendation.enough_data and recommendation.capacity_entries is not None
    replay = FeatureExtractor(
        "v1", cache=FeatureCache(l1=MemoryCache(max_entries=recommendation.capacity_entries))
    )
    hits = sum(replay.extract(paths[index]).cached for index in stream)
    assert hits / len(stream) >= 0.6
    smaller = FeatureExtractor(
        "v1", cache=FeatureCache(l1=MemoryCache(max_entries=max(1, recommendation.capacity_entries - 1)))
    )
    assert sum(smaller.extract(paths[index]).cached for index in stream) / len(stream) < 0.6


def test_drawings_report_their_declared_unit(cad_samples: Path) -> None:
    """$INSUNITS names the unit; R12 files have no such variable."""
    pytest.importorskip("ezdxf")
    extractor = FeatureExtractor("v1")
    units = {name: extractor.extract(cad_samples / name).unit for name in DRAWINGS}
    assert units == {
        "dxf/1002_tray_bottom.DXF": "in", "dxf/LM2.dxf": "mm", "dxf/insert.dxf": "mm",
        "dxf/uc.r12a.dxf": None, "dxf/wrench.dxf": "in",
    }  # fmt: skip
    tray = cad_samples / "dxf" / "1002_tray_bottom.DXF"
    inches, millimetres = extractor.extract(tray).as_dict(), extractor.extract(tray, unit="mm").as_dict()
    assert millimetres["extents_width"] == pytest.approx(inches["extents_width"] * 25.4, rel=1e-11)
    assert millimetres["line_entities"] == inches["line_entities"]
