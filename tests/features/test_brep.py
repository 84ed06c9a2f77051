"""STEP and IGES parts: the real samples in every layout, generated parts with known measures,
the same part as STEP, STL and PLY, units, determinism, and broken files."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics import Telemetry
from cadmetrics.cli import main
from cadmetrics.errors import FeatureInputError, MissingDependency
from cadmetrics.features.cache import FeatureCache
from cadmetrics.features.extractor import FeatureExtractor, FeatureVector
from cadmetrics.features.layout import BREP_LAYOUTS, LAYOUTS, V4, Scaling
from cadmetrics.features.vector import surface_type_entropy

pytest.importorskip("OCP", reason="the step extra (OpenCASCADE) is not installed")
from tests.features import brep_parts as parts

STEP_SAMPLES = ["base_interface_AP203.STEP", "box_sides.STEP", "featuretype.STEP"]

#: Shape features of one part exported as STEP and as STL agree within these (absolute) bounds:
#: the tessellations differ, and the D2 histogram is a sample of 16,384 point pairs.
SHAPE_TOLERANCE = {"inertia_ratio": 2e-3, "sphericity": 2e-3, "hull_volume_ratio": 2e-3, "d2_bin": 6e-3}
SIZE_TOLERANCE = 1e-3  # relative, for areas and volumes of different tessellations


def no_cache(version: str = "v4", **kwargs: Any) -> FeatureExtractor:
    return FeatureExtractor(version, cache=FeatureCache.disabled(), **kwargs)


@pytest.mark.parametrize("version", LAYOUTS)
@pytest.mark.parametrize("brep", [False, True])
def test_every_step_sample_in_every_layout(cad_samples: Path, version: str, brep: bool) -> None:
    extractor = FeatureExtractor(version, brep=brep)
    results = extractor.extract_many([cad_samples / "step" / name for name in STEP_SAMPLES], progress=False)
    layout = (BREP_LAYOUTS if brep else LAYOUTS)[version]
    for name, result in zip(STEP_SAMPLES, results, strict=True):
        assert isinstance(result, FeatureVector), f"{name}: {result}"
        assert result.names == layout.names and np.isfinite(result.values).all()
        assert (result.format, result.unit, result.quality) == ("step", "in", ())
        assert result.family == ("brep" if brep else "mesh")


def test_the_samples_b_rep_measures(cad_samples: Path) -> None:
    """Counted by OpenCASCADE, checked against its own offset analysis (BRepOffset_Analyse
    classifies the same edges the same way) and against the files' entity counts."""
    vector = no_cache(brep=True).extract(cad_samples / "step" / "featuretype.STEP", unit="mm").as_dict()
    assert [vector[f"{kind}_count"] for kind in ("solid", "shell", "face", "edge", "vertex")] == [
        1,
        1,
        96,
        243,
        162,
    ]
    assert (vector["plane_faces"], vector["cylinder_faces"], vector["bspline_faces"]) == (49, 46, 1)
    assert (vector["convex_edges"], vector["concave_edges"], vector["smooth_edges"]) == (126, 59, 58)
    assert vector["surface_count"] == 96
    assert vector["shape_entropy"] == pytest.approx(surface_type_entropy([49, 46, 1]), abs=1e-12)
    assert vector["volume"] == pytest.approx(190531.995424, rel=1e-9)
    assert sum(vector[f"{kind}_area_share"] for kind in ("plane", "cylinder", "bspline")) == pytest.approx(
        1.0
    )
    boxes = no_cache(brep=True).extract(cad_samples / "step" / "box_sides.STEP").as_dict()
    assert (boxes["solid_count"], boxes["face_count"]) == (10, 417)  # an assembly is one part


def test_shape_entropy_is_the_pipelines_definition() -> None:
    # two types, 3 and 1 faces: smoothed shares 4/6 and 2/6, entropy over ln 2
    expected = -(4 / 6 * math.log(4 / 6) + 2 / 6 * math.log(2 / 6)) / math.log(2)
    assert surface_type_entropy([3, 1, 0]) == pytest.approx(expected, abs=1e-15)
    assert surface_type_entropy([7, 0, 0]) == 0.0  # one type: K = 1, no spread
    assert surface_type_entropy([5, 5]) == pytest.approx(1.0)


def test_a_generated_box_has_its_exact_measures() -> None:
    vector = no_cache(brep=True).extract(parts.step_bytes(parts.box(10, 20, 30)))
    values = vector.as_dict()
    assert vector.unit == "mm" and vector.quality == ()
    assert (values["volume"], values["surface_area"]) == (6000.0, parts.BOX_AREA)
    assert (values["extent_major"], values["extent_middle"], values["extent_minor"]) == (30.0, 20.0, 10.0)
    assert (values["face_count"], values["plane_faces"], values["edge_count"], values["convex_edges"]) == (
        6,
        6,
        12,
        12,
    )
    assert (values["convex_edge_share"], values["shape_entropy"]) == (1.0, 0.0)
    # principal moments of a box: m(b² + c²)/12 and so on
    moments = sorted([20**2 + 30**2, 10**2 + 30**2, 10**2 + 20**2])
    assert values["inertia_ratio_minor"] == pytest.approx(moments[0] / sum(moments), rel=1e-9)
    radii = [values[f"gyration_radius_{label}"] for label in ("minor", "middle", "major")]
    assert radii == pytest.approx([math.sqrt(moment / 12) for moment in moments], rel=1e-9)
    assert [values[f"centre_{axis}"] for axis in "xyz"] == pytest.approx([5, 10, 15], rel=1e-9)


def test_concave_and_seam_edges() -> None:
    pocket = no_cache("v3", brep=True).extract(parts.step_bytes(parts.pocketed_box())).as_dict()
    assert (pocket["face_count"], pocket["volume"]) == (11, 40 * 30 * 10 - 20 * 10 * 5)
    assert (pocket["convex_edges"], pocket["concave_edges"]) == (16, 8)
    cylinder = no_cache("v3", brep=True).extract(parts.step_bytes(parts.cylinder(5, 10))).as_dict()
    assert cylinder["volume"] == pytest.approx(parts.CYLINDER_VOLUME, rel=1e-9)
    assert (cylinder["cylinder_faces"], cylinder["plane_faces"]) == (1, 2)
    assert (cylinder["convex_edges"], cylinder["other_edges"]) == (2, 1)  # the seam meets its own face


@pytest.mark.parametrize(("writer", "fmt"), [(parts.step_bytes, "step"), (parts.iges_bytes, "iges")])
def test_units_are_read_and_converted(writer: Any, fmt: str) -> None:
    shape = parts.box(10, 20, 30)
    in_inches = no_cache(brep=True).extract(writer(shape, "INCH"))
    assert (in_inches.format, in_inches.unit) == (fmt, "in")
    assert in_inches.as_dict()["volume"] == pytest.approx(6000 / 25.4**3, rel=1e-6)
    in_mm = no_cache(brep=True).extract(writer(shape, "INCH"), unit="mm")
    assert in_mm.unit == "mm" and in_mm.as_dict()["volume"] == pytest.approx(6000, rel=1e-6)
    assert no_cache(brep=True, unit="cm").extract(writer(shape, "MM")).as_dict()["volume"] == pytest.approx(6)
    counts = {name: value for name, value in in_mm.as_dict().items() if name.endswith("_count")}
    assert counts == {name: value for name, value in in_inches.as_dict().items() if name.endswith("_count")}


def test_units_leave_undeclared_files_alone(cad_samples: Path) -> None:
    stl = cad_samples / "stl" / "featuretype.STL"
    plain, asked = no_cache().extract(stl), no_cache().extract(stl, unit="mm")
    assert plain.unit is None and asked.unit is None
    np.testing.assert_array_equal(plain.values, asked.values)
    with pytest.raises(ValueError, match="unknown length unit 'parsec'"):
        no_cache().extract(stl, unit="parsec")


def test_one_part_as_step_stl_and_ply_gives_the_same_features(cad_samples: Path) -> None:
    """featuretype is one part in three files: STEP (declaring inches), STL and PLY (in inches,
    declaring nothing). Sizes agree in inches and, converted, in millimetres; shape features
    agree within SHAPE_TOLERANCE; counts of the shape's structure are equal."""
    step = no_cache().extract(cad_samples / "step" / "featuretype.STEP").as_dict()
    for other in ("stl/featuretype.STL", "ply/featuretype.ply"):
        mesh = no_cache().extract(cad_samples / other).as_dict()
        for feature in V4:
            ours, theirs = step[feature.name], mesh[feature.name]
            if feature.name in ("vertex_count", "face_count"):
                continue  # the tessellations differ
            if feature.scaling is Scaling.LENGTH:
                assert ours == pytest.approx(theirs, rel=1e-6), feature.name
            elif feature.scaling is not Scaling.INVARIANT:
                assert ours == pytest.approx(theirs, rel=SIZE_TOLERANCE), feature.name
            elif feature.name.startswith("shape_entropy"):
                assert ours == pytest.approx(theirs, abs=0.02), feature.name
            elif feature.name in ("euler_characteristic", "watertight", "surface_count"):
                assert ours == theirs, feature.name
            else:
                bound = next(b for prefix, b in SHAPE_TOLERANCE.items() if feature.name.startswith(prefix))
                assert ours == pytest.approx(theirs, abs=bound), feature.name
    in_mm = no_cache().extract(cad_samples / "step" / "featuretype.STEP", unit="mm").as_dict()
    stl = no_cache().extract(cad_samples / "stl" / "featuretype.STL").as_dict()
    assert in_mm["extent_major"] == pytest.approx(stl["extent_major"] * 25.4, rel=1e-6)
    assert in_mm["volume"] == pytest.approx(stl["volume"] * 25.4**3, rel=SIZE_TOLERANCE)


def test_the_same_file_gives_the_same_bits_in_a_fresh_process(cad_samples: Path) -> None:
    path = cad_samples / "step" / "featuretype.STEP"
    script = (
        "import hashlib, sys; from cadmetrics import FeatureExtractor\n"
        "for brep in (False, True):\n"
        "    v = FeatureExtractor('v4', brep=brep).extract(sys.argv[1])\n"
        "    print(hashlib.sha256(v.values.tobytes()).hexdigest())\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    here = [
        hashlib.sha256(FeatureExtractor("v4", brep=b).extract(path).values.tobytes()).hexdigest()
        for b in (False, True)
    ]
    assert runs[0] == runs[1] == "".join(f"{digest}\n" for digest in here)


def test_a_part_without_a_solid_is_flagged_and_counted(telemetry: Telemetry, metrics: Any) -> None:
    data = parts.step_bytes(parts.square_face(2))
    vector = FeatureExtractor("v4", brep=True, telemetry=telemetry).extract(data)
    assert vector.quality == ("no_solid",) and vector.as_dict()["volume"] == 0.0
    assert vector.as_dict()["surface_area"] == pytest.approx(4.0)
    assert metrics.value("cadmetrics_feature_degraded_total", format="step", quality="no_solid") == 1
    mesh = FeatureExtractor("v4", telemetry=telemetry).extract(data)  # the tessellation says it
    assert mesh.quality == ("open",) and mesh.as_dict()["volume"] == 0.0


def test_a_surface_model_is_sewn_into_its_solid() -> None:
    """IGES as most tools write it: trimmed surfaces, no solid. Sewn, they close one."""
    data = parts.iges_bytes(parts.pocketed_box(), surfaces=True)
    brep = no_cache(brep=True).extract(data)
    assert (brep.quality, brep.as_dict()["solid_count"]) == ((), 1)
    assert brep.as_dict()["volume"] == pytest.approx(11000, rel=1e-9)
    assert (brep.as_dict()["convex_edges"], brep.as_dict()["concave_edges"]) == (16, 8)
    mesh = no_cache().extract(data)
    assert mesh.quality == () and mesh.as_dict()["volume"] == pytest.approx(11000, rel=1e-9)


def broken_step(cad_samples: Path) -> dict[str, tuple[bytes, str, str]]:
    """Broken STEP files: bytes, the contract reason, and words the message must hold."""
    good = (cad_samples / "step" / "featuretype.STEP").read_bytes()
    empty_data = b"ISO-10303-21;\nHEADER;\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n"
    return {
        "empty": (b"", "empty", "empty"),
        "truncated": (good[: len(good) // 2], "truncated", "END-ISO-10303-21"),
        "header only": (good[: good.index(b"DATA;")], "malformed", "no DATA section"),
        "wrong header": (
            good.replace(b"ISO-10303-21;", b"ISO-10303-99;", 1),
            "unsupported_format",
            "ISO-10303-99",
        ),
        "binary junk": (bytes(range(80)), "unsupported_format", "binary data"),
        "junk after a header": (b"ISO-10303-21;\n" + bytes(range(1, 256)) * 8, "malformed", "DATA"),
        "bad syntax": (empty_data.replace(b"DATA;\n", b"DATA;\n#1=FOO(1,2,;\n"), "malformed", "parse"),
        "no entities": (empty_data, "empty", "no shape"),
        "only a point": (
            empty_data.replace(b"DATA;\n", b"DATA;\n#1=CARTESIAN_POINT('',(0.,0.,0.));\n"),
            "empty",
            "no shape",
        ),
        "only an edge": (parts.step_bytes(parts.lone_edge()), "degenerate", "no face"),
    }


def test_broken_step_files_are_refused_clearly(cad_samples: Path, capfd: pytest.CaptureFixture[str]) -> None:
    for name, (data, reason, words) in broken_step(cad_samples).items():
        with pytest.raises(FeatureInputError) as caught:
            no_cache().extract(data)
        assert caught.value.reason == reason, name
        assert str(caught.value).startswith("<bytes>: ") and words in str(caught.value), name
    assert capfd.readouterr().out == ""  # OpenCASCADE's messages do not reach the host's output


def test_a_truncated_iges_file_is_refused() -> None:
    data = parts.iges_bytes(parts.box(1, 2, 3))
    with pytest.raises(FeatureInputError, match="terminate") as caught:
        no_cache().extract(data[: len(data) - 200])
    assert (caught.value.reason, caught.value.format) == ("truncated", "iges")


def test_without_the_extra_the_error_names_it(cad_samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cadmetrics.features import brep_process

    monkeypatch.setattr(brep_process, "opencascade_installed", lambda: False)
    with pytest.raises(MissingDependency, match=r"pip install cadmetrics\[step\]") as caught:
        no_cache().extract(cad_samples / "step" / "featuretype.STEP")
    assert (caught.value.reason, caught.value.format) == ("missing_dependency", "step")


def test_walking_a_folder_reads_step_files(
    cad_samples: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["extract", "--version", "v1", "--brep", str(cad_samples / "step")]) == 0
    out = capsys.readouterr().out
    assert out.count("v1 brep, step, sizes in in, sha256") == len(STEP_SAMPLES)
    from cadmetrics.features import brep_process

    monkeypatch.setattr(brep_process, "opencascade_installed", lambda: False)
    assert main(["extract", "--version", "v1", str(cad_samples / "step")]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped (reading STEP parts needs OpenCASCADE: pip install cadmetrics[step])") == 3
    assert main(["extract", "--unit", "furlong", str(cad_samples / "step")]) == 2


def test_process_pools_read_step_with_the_extractors_settings(cad_samples: Path) -> None:
    """Each pool worker builds the extractor again (B-Rep layout, unit) and starts its own
    OpenCASCADE process; the vectors are those of a serial run."""
    from concurrent.futures import ProcessPoolExecutor

    paths = [cad_samples / "step" / name for name in STEP_SAMPLES[:2]]
    extractor = no_cache("v2", brep=True, unit="mm")
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = extractor.extract_many(paths, executor=pool, progress=False)
    for path, result in zip(paths, pooled, strict=True):
        assert isinstance(result, FeatureVector) and (result.unit, result.family) == ("mm", "brep")
        np.testing.assert_array_equal(result.values, extractor.extract(path).values)


def test_a_store_of_b_rep_vectors_migrates_up_by_re_extracting(cad_samples: Path) -> None:
    from cadmetrics import VectorStore

    paths = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in (cad_samples / "step").iterdir()}
    store = VectorStore.open(None, layouts=BREP_LAYOUTS)
    for path in paths.values():
        store.add_features(FeatureExtractor("v1", brep=True).extract(path), id=path.name)
    newer = FeatureExtractor("v4", brep=True)
    result = store.migrate(
        store.plan_migration("v4"), extractor=newer, content=lambda sha256: paths[sha256].read_bytes()
    )
    assert result.methods == {"re_extracted": len(paths)}
    for path in paths.values():
        assert np.array_equal(store[path.name].vector, newer.extract(path).values.astype(np.float32))
