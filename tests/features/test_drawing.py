"""DXF drawings: real samples, generated drawings with known answers, and broken input."""

from __future__ import annotations

import io
import itertools
import math
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics.errors import FeatureInputError, MissingDependency
from cadmetrics.features import drawing as drawing_module
from cadmetrics.features.drawing import FEATURE_NAMES, Drawing, read_drawing

ezdxf = pytest.importorskip("ezdxf", reason="the dxf extra (ezdxf) is not installed")
recover = pytest.importorskip("ezdxf.recover")
bbox = pytest.importorskip("ezdxf.bbox")
disassemble = pytest.importorskip("ezdxf.disassemble")
ezpath = pytest.importorskip("ezdxf.path")

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "cad-samples"
DXF_DIR = SAMPLES / "dxf"
BROKEN_LOOP = SAMPLES / "broken" / "broken_loop.dxf"
SAMPLE_NAMES = sorted(p.name for p in DXF_DIR.glob("*") if p.suffix.lower() == ".dxf") or ["<absent>"]
#: The same drawing saved by AutoCAD in seven DXF versions, oldest first.
UC_VERSIONS = {
    "uc.r12a.dxf": "AC1009",
    "uc.r14a.dxf": "AC1014",
    "uc.r2000a.dxf": "AC1015",
    "uc.r2004a.dxf": "AC1018",
    "uc.r2007a.dxf": "AC1021",
    "uc.r2010a.dxf": "AC1024",
    "uc.r2013a.dxf": "AC1027",
}
CURVES = ("LINE", "LWPOLYLINE", "POLYLINE", "SPLINE", "ARC", "CIRCLE", "ELLIPSE")
READ_TIME = timedelta(seconds=5)  # far above any sample's read time: a slower read is a hang


def sample(name: str) -> bytes:
    path = DXF_DIR / name
    if not path.is_file():
        pytest.skip(f"the real CAD samples are not at {DXF_DIR}")
    return path.read_bytes()


def save(doc: Any, path: Path, fmt: str = "asc") -> bytes:
    doc.saveas(path, fmt=fmt)
    return path.read_bytes()


def raw_entities(data: bytes) -> list[tuple[str, dict[int, str]]]:
    """The modelspace entities of an ASCII DXF as (type, {group code: value}), read from the
    tags themselves, so that expected values do not come from the code under test."""
    lines = data.decode("latin-1").splitlines()
    tags = [(int(lines[i]), lines[i + 1].strip()) for i in range(0, len(lines) - 1, 2)]
    entities: list[tuple[str, dict[int, str]]] = []
    inside = False
    for (code, value), (_, before) in zip(tags[1:], tags, strict=False):
        if code == 2 and value == "ENTITIES" and before == "SECTION":
            inside = True
        elif inside and code == 0 and value == "ENDSEC":
            break
        elif inside and code == 0:
            entities.append((value, {}))
        elif inside and entities:
            entities[-1][1].setdefault(code, value)
    return [(kind, tags) for kind, tags in entities if tags.get(67, "0") == "0"]


def raw_line_length(tags: dict[int, str]) -> float:
    start = [float(tags.get(c, "0")) for c in (10, 20, 30)]
    end = [float(tags.get(c, "0")) for c in (11, 21, 31)]
    return math.dist(start, end)


# -- the real samples ---------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_reads(name: str) -> None:
    data = sample(name)
    drawing = read_drawing(data, source=name)
    assert drawing.source == name
    assert drawing.dxf_version.startswith("AC")
    assert sum(drawing.entity_counts.values()) > 0
    features = drawing.feature_values()
    assert tuple(features) == FEATURE_NAMES
    assert all(math.isfinite(value) and value >= 0 for value in features.values())
    assert sum(features[f"{t.lower()}_entities"] for t in drawing_module.COUNTED_TYPES) + features[
        "other_entities"
    ] == sum(drawing.entity_counts.values())

    doc, _ = recover.read(io.BytesIO(data))
    modelspace = doc.modelspace()
    # ezdxf's own bounding box of the whole modelspace (it follows block references) is the
    # same where nothing is annotation, and contains ours where there is text or dimensions
    whole = bbox.extents(modelspace)
    annotated = {"TEXT", "MTEXT", "DIMENSION"} & set(drawing.entity_counts)
    if drawing.extents_min is None or drawing.extents_max is None:
        assert annotated
    elif annotated:
        assert all(a >= b for a, b in zip(drawing.extents_min, whole.extmin, strict=True))
        assert all(a <= b for a, b in zip(drawing.extents_max, whole.extmax, strict=True))
    else:
        assert drawing.extents_min == pytest.approx(tuple(whole.extmin), rel=1e-12, abs=1e-12)
        assert drawing.extents_max == pytest.approx(tuple(whole.extmax), rel=1e-12, abs=1e-12)

    # lengths against a flattening of ezdxf's paths (cubic curves, a little longer than arcs)
    drawn = disassemble.recursive_decompose(e for e in modelspace if e.dxftype() != "DIMENSION")
    reference = 0.0
    for entity in drawn:
        if entity.dxftype() in CURVES:
            points = list(ezpath.make_path(entity).flattening(1e-7))
            reference += sum(math.dist(a, b) for a, b in itertools.pairwise(points))
    assert drawing.line_length + drawing.arc_length == pytest.approx(reference, rel=2e-4, abs=1e-12)


def test_the_uc_drawing_is_the_same_in_all_seven_versions() -> None:
    drawings = {name: read_drawing(sample(name), source=name) for name in UC_VERSIONS}
    assert {name: d.dxf_version for name, d in drawings.items()} == UC_VERSIONS
    # R12 has no LWPOLYLINE (it came with R14): the same outline is stored as a POLYLINE
    assert dict(drawings["uc.r12a.dxf"].entity_counts) == {"POLYLINE": 1}
    for name, d in drawings.items():
        if name != "uc.r12a.dxf":
            assert dict(d.entity_counts) == {"LWPOLYLINE": 1}, name
    reference = drawings["uc.r2013a.dxf"]
    for name, d in drawings.items():
        assert d.line_length == pytest.approx(reference.line_length, rel=1e-6), name
        assert d.line_length == pytest.approx(4.0, rel=1e-12)  # a unit square
        assert d.arc_length == reference.arc_length == 0.0
        assert d.extents_min == pytest.approx(reference.extents_min, rel=1e-6, abs=1e-12), name
        assert d.extents_max == pytest.approx(reference.extents_max, rel=1e-6, abs=1e-12), name
        assert (d.layer_count, d.layers_used, d.block_count, d.text_count) == (1, 1, 0, 0), name
        same = {k: v for k, v in d.feature_values().items() if "polyline" not in k}
        assert same == {k: v for k, v in reference.feature_values().items() if "polyline" not in k}, name


def test_single_arc_length_is_radius_times_angle() -> None:
    data = sample("single_arc.dxf")
    raw = raw_entities(data)
    (arc,) = [tags for kind, tags in raw if kind == "ARC"]
    span = (float(arc[51]) - float(arc[50])) % 360.0
    expected = float(arc[40]) * math.radians(span)
    drawing = read_drawing(data)
    assert drawing.arc_length == pytest.approx(expected, rel=1e-12)
    assert drawing.arc_length == pytest.approx(math.pi, rel=1e-12)  # a half circle of radius 1
    lines = sum(raw_line_length(tags) for kind, tags in raw if kind == "LINE")
    assert drawing.line_length == pytest.approx(lines, rel=1e-12)
    assert dict(drawing.entity_counts) == {"ARC": 1, "LINE": 3}


def test_text_is_counted_and_is_not_geometry() -> None:
    data = sample("text.dxf")
    raw_texts = sum(1 for kind, _ in raw_entities(data) if kind in {"TEXT", "MTEXT"})
    drawing = read_drawing(data)
    assert drawing.text_count == raw_texts > 0
    # the only entity is text, whose box depends on fonts: no extents, no lengths
    assert (drawing.extents_min, drawing.extents_max) == (None, None)
    assert drawing.line_length == drawing.arc_length == 0.0
    assert drawing.repairs == 2  # recover fixed an owner handle and an undefined text style


def test_insert_geometry_counts_toward_lengths_and_extents() -> None:
    data = sample("insert.dxf")
    doc = ezdxf.read(io.StringIO(data.decode("utf-8")))
    expected_length = 0.0
    corners: list[tuple[float, float]] = []
    for insert in doc.modelspace():
        assert (insert.dxf.xscale, insert.dxf.yscale, insert.dxf.rotation) == (1, 1, 0)
        block = doc.blocks[insert.dxf.name]
        offset = insert.dxf.insert - block.block.dxf.base_point
        dx, dy = offset.x, offset.y
        for polyline in block:
            points = [(x + dx, y + dy) for x, y, bulge in polyline.get_points("xyb") if bulge == 0]
            assert polyline.closed and len(points) == len(polyline)
            expected_length += sum(
                math.dist(a, b) for a, b in zip(points, points[1:] + points[:1], strict=True)
            )
            corners += points
    drawing = read_drawing(data)
    assert dict(drawing.entity_counts) == {"INSERT": 2}  # the references, not what they place
    assert drawing.line_length == pytest.approx(expected_length, rel=1e-12)
    assert drawing.line_length == pytest.approx(1320.0, rel=1e-12)
    assert drawing.extents_min == (min(x for x, _ in corners), min(y for _, y in corners), 0.0)
    assert drawing.extents_max == (max(x for x, _ in corners), max(y for _, y in corners), 0.0)
    assert drawing.block_count == 2


def test_broken_loop_reads_with_its_repair_counted() -> None:
    if not BROKEN_LOOP.is_file():
        pytest.skip(f"the real CAD samples are not at {SAMPLES}")
    data = BROKEN_LOOP.read_bytes()
    drawing = read_drawing(data, source="broken_loop.dxf")
    # five lines that overlap where the loop should close: measured as drawn, not judged
    raw = [tags for kind, tags in raw_entities(data) if kind == "LINE"]
    assert dict(drawing.entity_counts) == {"LINE": len(raw)} == {"LINE": 5}
    assert drawing.line_length == pytest.approx(sum(map(raw_line_length, raw)), rel=1e-12)
    assert drawing.line_length == pytest.approx(12.1, rel=1e-12)
    assert (drawing.extents_min, drawing.extents_max) == ((0.0, 0.0, 0.0), (2.0, 4.0, 0.0))
    assert (drawing.repairs, drawing.unrepaired) == (1, 0)


# -- generated drawings with known answers ------------------------------------------------


def test_right_triangle_has_line_length_12(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    msp = doc.modelspace()
    for start, end in [((0, 0), (3, 0)), ((3, 0), (3, 4)), ((3, 4), (0, 0))]:
        msp.add_line(start, end)
    drawing = read_drawing(save(doc, tmp_path / "triangle.dxf"), source="triangle.dxf")
    assert drawing.line_length == 12.0
    assert drawing.arc_length == 0.0
    assert dict(drawing.entity_counts) == {"LINE": 3}
    assert (drawing.extents_min, drawing.extents_max) == ((0.0, 0.0, 0.0), (3.0, 4.0, 0.0))
    assert drawing.dxf_version == "AC1024"
    assert (drawing.repairs, drawing.unrepaired) == (0, 0)


def test_full_circle_has_arc_length_4_pi(tmp_path: Path) -> None:
    doc = ezdxf.new("R2000")
    doc.modelspace().add_circle((5, 1), radius=2)
    drawing = read_drawing(save(doc, tmp_path / "circle.dxf"))
    assert drawing.arc_length == 4 * math.pi
    assert drawing.line_length == 0.0
    assert drawing.extents_min == pytest.approx((3.0, -1.0, 0.0), abs=1e-12)
    assert drawing.extents_max == pytest.approx((7.0, 3.0, 0.0), abs=1e-12)


def test_bulge_is_measured_as_an_arc(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    # unit square, the bottom edge bulged into a half circle of radius 0.5 below it
    doc.modelspace().add_lwpolyline([(0, 0, 1), (1, 0, 0), (1, 1, 0), (0, 1, 0)], format="xyb", close=True)
    drawing = read_drawing(save(doc, tmp_path / "bulge.dxf"))
    assert drawing.line_length == pytest.approx(3 + math.pi / 2, rel=1e-15)
    assert drawing.arc_length == 0.0  # a polyline's arcs belong to the polyline
    assert drawing.extents_min == pytest.approx((0.0, -0.5, 0.0), abs=1e-12)
    assert drawing.extents_max == pytest.approx((1.0, 1.0, 0.0), abs=1e-12)


def test_layers_defined_and_used(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    for name in ("walls", "doors", "unused"):
        doc.layers.add(name)
    msp = doc.modelspace()
    msp.add_line((0, 0), (1, 0), dxfattribs={"layer": "walls"})
    msp.add_line((0, 1), (1, 1), dxfattribs={"layer": "WALLS"})  # layer names ignore case
    msp.add_circle((0, 0), 1, dxfattribs={"layer": "doors"})
    drawing = read_drawing(save(doc, tmp_path / "layers.dxf"))
    assert drawing.layer_count == 4  # 0, walls, doors, unused (Defpoints is not counted)
    assert drawing.layers_used == 2


def test_empty_drawing_is_a_zero_result(tmp_path: Path) -> None:
    drawing = read_drawing(save(ezdxf.new("R2018"), tmp_path / "empty.dxf"))
    assert dict(drawing.entity_counts) == {}
    assert (drawing.extents_min, drawing.extents_max) == (None, None)
    # every feature is zero but the layer count: layer 0 always exists
    assert drawing.feature_values() == {name: float(name == "layer_count") for name in FEATURE_NAMES}


def ellipse_circumference(a: float, b: float, steps: int = 4096) -> float:
    """By the trapezoid rule, exact to rounding for this smooth periodic integrand."""
    angles = (2 * math.pi * k / steps for k in range(steps))
    return 2 * math.pi / steps * math.fsum(math.hypot(a * math.sin(t), b * math.cos(t)) for t in angles)


def mixed_drawing(version: str) -> Any:
    """Every measured kind of entity; R12 lacks LWPOLYLINE, SPLINE, ELLIPSE and MTEXT."""
    doc = ezdxf.new(version)
    msp = doc.modelspace()
    block = doc.blocks.new("bolt")
    block.add_line((0, 0), (1, 0))
    block.add_circle((0, 0), 0.25)
    block.add_text("M6")
    msp.add_line((0, 0), (10, 0))
    msp.add_arc((0, 0), 2, 0, 90)
    msp.add_circle((5, 5), 1)
    msp.add_polyline2d([(0, 0), (4, 0), (4, 3)])
    msp.add_text("title")
    msp.add_blockref("bolt", (20, 0))
    msp.add_blockref("bolt", (20, 10), dxfattribs={"xscale": 2, "yscale": 2, "zscale": 2})
    if version != "R12":
        msp.add_lwpolyline([(0, 0, 0), (1, 0, 1)], format="xyb")
        msp.add_spline([(0, 0), (1, 2), (3, 1), (4, 4)])
        msp.add_ellipse((0, 0), major_axis=(3, 0), ratio=0.5)
        msp.add_mtext("note")
    return doc


@pytest.mark.parametrize(
    ("version", "acadver"),
    [
        ("R2000", "AC1015"),
        ("R2004", "AC1018"),
        ("R2007", "AC1021"),
        ("R2010", "AC1024"),
        ("R2013", "AC1027"),
        ("R2018", "AC1032"),
    ],
)
def test_every_version_reads_the_same(tmp_path: Path, version: str, acadver: str) -> None:
    reference = read_drawing(save(mixed_drawing("R2000"), tmp_path / "reference.dxf"))
    drawing = read_drawing(save(mixed_drawing(version), tmp_path / f"{version}.dxf"))
    assert drawing.dxf_version == acadver
    assert drawing.feature_values() == pytest.approx(reference.feature_values(), rel=1e-12)
    circles = math.pi + 2 * math.pi + 3 * 2 * math.pi * 0.25  # the arc, the circle, both bolts
    assert drawing.arc_length == pytest.approx(circles + ellipse_circumference(3.0, 1.5), rel=1e-6)
    assert drawing.text_count == 4  # TEXT, MTEXT and the TEXT in each of the two inserts
    assert dict(drawing.entity_counts) == {
        "ARC": 1,
        "CIRCLE": 1,
        "ELLIPSE": 1,
        "INSERT": 2,
        "LINE": 1,
        "LWPOLYLINE": 1,
        "MTEXT": 1,
        "POLYLINE": 1,
        "SPLINE": 1,
        "TEXT": 1,
    }


def test_r12_reads(tmp_path: Path) -> None:
    drawing = read_drawing(save(mixed_drawing("R12"), tmp_path / "r12.dxf"))
    assert drawing.dxf_version == "AC1009"
    # LINE 10, POLYLINE 4 + 3, the line in the bolt at scale 1 and 2
    assert drawing.line_length == pytest.approx(10 + 7 + 1 + 2, rel=1e-15)
    assert drawing.arc_length == pytest.approx(math.pi + 2 * math.pi + 3 * 2 * math.pi * 0.25, rel=1e-15)
    assert drawing.block_count == 1
    assert drawing.extents_max == pytest.approx((22.0, 10.5, 0.0), abs=1e-12)


@pytest.mark.parametrize("version", ["R12", "R2000", "R2018"])
def test_binary_dxf_reads_the_same_as_ascii(tmp_path: Path, version: str) -> None:
    doc = mixed_drawing(version)
    ascii_dxf = save(doc, tmp_path / "ascii.dxf")
    binary_dxf = save(doc, tmp_path / "binary.dxf", fmt="bin")
    assert binary_dxf.startswith(b"AutoCAD Binary DXF")
    from_ascii = read_drawing(ascii_dxf, source="twin")
    from_binary = read_drawing(binary_dxf, source="twin")
    assert from_binary == from_ascii
    assert from_binary.line_length > 0


def test_block_reference_rules(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    msp = doc.modelspace()
    inner = doc.blocks.new("inner")
    inner.add_line((0, 0), (1, 0))
    outer = doc.blocks.new("outer")
    outer.add_blockref("inner", (0, 0))
    outer.add_blockref("inner", (0, 5), dxfattribs={"xscale": 3, "yscale": 3})
    outer.add_attdef("NO", (0, 0))
    reference = msp.add_blockref("outer", (100, 0))
    reference.add_attrib("NO", "42", (100, 0))
    grid = msp.add_blockref("inner", (0, 0))
    grid.grid(size=(2, 3), spacing=(10, 10))  # a MINSERT: six copies
    drawing = read_drawing(save(doc, tmp_path / "nested.dxf"))
    assert dict(drawing.entity_counts) == {"INSERT": 2}
    assert drawing.line_length == pytest.approx(1 + 3 + 6, rel=1e-15)
    assert drawing.text_count == 1  # the ATTRIB; an ATTDEF is a template, not text on the sheet
    assert drawing.block_count == 2
    assert drawing.extents_max == pytest.approx((103.0, 10.0, 0.0), abs=1e-12)


def test_self_referencing_block_ends(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    loop = doc.blocks.new("loop")
    loop.add_line((0, 0), (2, 0))
    loop.add_blockref("loop", (1, 1))
    doc.modelspace().add_blockref("loop", (0, 0))
    drawing = read_drawing(save(doc, tmp_path / "loop.dxf"))
    assert drawing.line_length == 2.0  # the block once; its reference to itself is skipped
    assert drawing.unrepaired >= 1  # the audit reports the cycle and cannot fix it


def test_dimensions_are_annotation(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010", setup=True)
    msp = doc.modelspace()
    msp.add_line((0, 0), (5, 0))
    msp.add_linear_dim(base=(0, 3), p1=(0, 0), p2=(5, 0)).render()
    drawing = read_drawing(save(doc, tmp_path / "dimension.dxf"))
    assert drawing.entity_counts["DIMENSION"] == 1
    assert drawing.line_length == 5.0
    assert (drawing.extents_min, drawing.extents_max) == ((0.0, 0.0, 0.0), (5.0, 0.0, 0.0))
    assert drawing.text_count == 0


def test_feature_names_are_stable() -> None:
    assert FEATURE_NAMES == (
        "line_entities",
        "lwpolyline_entities",
        "polyline_entities",
        "arc_entities",
        "circle_entities",
        "ellipse_entities",
        "spline_entities",
        "text_entities",
        "mtext_entities",
        "insert_entities",
        "dimension_entities",
        "hatch_entities",
        "point_entities",
        "other_entities",
        "layer_count",
        "layers_used",
        "block_count",
        "extents_width",
        "extents_height",
        "extents_depth",
        "line_length",
        "arc_length",
        "text_count",
    )


def test_feature_values(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    msp = doc.modelspace()
    msp.add_line((0, 0, 0), (3, 4, 12))
    msp.add_point((-1, 0))
    msp.add_solid([(0, 0), (1, 0), (0, 1)])
    msp.add_xline((0, 0), (1, 1))
    values = drawing_module.values(read_drawing(save(doc, tmp_path / "values.dxf")))
    assert values["line_entities"] == values["point_entities"] == 1.0
    assert values["other_entities"] == 2.0  # SOLID and XLINE
    assert (values["extents_width"], values["extents_height"], values["extents_depth"]) == (4.0, 4.0, 12.0)
    assert values["line_length"] == 13.0


def test_drawing_is_immutable(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    doc.modelspace().add_line((0, 0), (1, 0))
    drawing = read_drawing(save(doc, tmp_path / "one.dxf"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        drawing.line_length = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        drawing.entity_counts["LINE"] = 2  # type: ignore[index]
    assert hash(drawing) == hash(attrs.evolve(drawing))
    assert isinstance(drawing, Drawing)


# -- broken input -------------------------------------------------------------------------


def refused(data: bytes, source: str = "input.dxf") -> FeatureInputError:
    with pytest.raises(FeatureInputError) as caught:
        read_drawing(data, source=source)
    error = caught.value
    assert str(error).startswith(f"{source}: ")
    assert error.format == "dxf"
    return error


def test_empty_bytes() -> None:
    assert refused(b"").reason == "empty"
    assert refused(b" \r\n\n").reason == "empty"


def test_not_a_dxf() -> None:
    assert refused(b"solid cube\nfacet normal 0 0 1\n").reason == "malformed"
    assert refused(random.Random(7).randbytes(4096)).reason == "malformed"


def test_unreadable_structure_keeps_ezdxf_error_as_cause() -> None:
    error = refused(b"  0\nSECTION\nxyz\nENTITIES\n  0\nENDSEC\n  0\nEOF\n")
    assert error.reason == "malformed"
    assert isinstance(error.__cause__, ezdxf.DXFStructureError)


def test_unsupported_version_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes, binary: bool) -> Any:
        raise ezdxf.DXFVersionError("Unsupported DXF version 'AC1001'")

    monkeypatch.setattr(drawing_module, "_load", refuse)
    error = refused(b"  0\nSECTION\n  0\nEOF\n")
    assert error.reason == "unsupported_format"
    assert isinstance(error.__cause__, ezdxf.DXFVersionError)


@pytest.mark.parametrize("bad", ["nan", "inf", "-1e999"])
def test_non_finite_coordinates(tmp_path: Path, bad: str) -> None:
    doc = ezdxf.new("R2010")
    doc.modelspace().add_line((0, 0), (7.25, 1))
    doc.modelspace().add_lwpolyline([(0, 0), (2.375, 0)])
    data = save(doc, tmp_path / "finite.dxf")
    assert read_drawing(data).line_length == pytest.approx(math.hypot(7.25, 1) + 2.375, rel=1e-15)
    for value, kind in [(b"7.25", "LINE"), (b"2.375", "LWPOLYLINE")]:
        assert len(data.split(b"\n" + value + b"\n")) == 2  # the one coordinate to spoil
        error = refused(data.replace(b"\n" + value + b"\n", b"\n" + bad.encode() + b"\n"))
        assert error.reason == "non_finite"
        assert kind in str(error)


def test_expansion_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = ezdxf.new("R2010")
    block = doc.blocks.new("many")
    for i in range(50):
        block.add_line((i, 0), (i, 1))
    doc.modelspace().add_blockref("many", (0, 0))
    data = save(doc, tmp_path / "many.dxf")
    assert read_drawing(data).line_length == 50.0
    monkeypatch.setattr(drawing_module, "MAX_EXPANDED_ENTITIES", 40)
    assert refused(data).reason == "too_large"


@pytest.mark.parametrize("kind", ["spline", "lwpolyline", "line"])
def test_points_too_large_to_measure_are_refused(tmp_path: Path, kind: str) -> None:
    """A spline with a control point at 1e308 is finite, but flattening it never finds a chord
    flat enough (its distances overflow) and subdivides for ever; lengths of other curves
    would come out infinite."""
    doc = ezdxf.new("R2010")
    far = (77.5, 1e308)
    if kind == "spline":
        doc.modelspace().add_open_spline([(0, 0), far, (10, 0), (20, 5)])
    elif kind == "lwpolyline":
        doc.modelspace().add_lwpolyline([(0, 0), far])
    else:
        doc.modelspace().add_line((0, 0), far)
    error = refused(save(doc, tmp_path / f"far-{kind}.dxf"))
    assert error.reason == "too_large" and "beyond 1e+60" in str(error)


def test_a_minsert_grid_counts_its_references_before_placing_them(tmp_path: Path) -> None:
    """32767 x 32767 references to an empty block draw nothing, and walking them one by one
    would take hours: the grid is refused for its size before the first is placed."""
    doc = ezdxf.new("R2010")
    doc.blocks.new("empty")
    doc.modelspace().add_blockref("empty", (0, 0)).grid(size=(32767, 32767), spacing=(1, 1))
    error = refused(save(doc, tmp_path / "grid.dxf"))
    assert error.reason == "too_large" and "references" in str(error)
    small = ezdxf.new("R2010")
    small.blocks.new("dot").add_line((0, 0), (0.5, 0))
    small.modelspace().add_blockref("dot", (0, 0)).grid(size=(3, 4), spacing=(1, 1))
    assert read_drawing(save(small, tmp_path / "small.dxf")).line_length == pytest.approx(12 * 0.5)


@pytest.fixture(scope="module")
def wrench() -> bytes:
    return sample("wrench.dxf")


def check_cut(data: bytes, cut: int) -> None:
    piece = data[:cut]
    if piece.rstrip().endswith(b"EOF"):  # a cut in the whitespace after the EOF tag loses nothing
        assert read_drawing(piece, source="cut.dxf") == read_drawing(data, source="cut.dxf")
        return
    error = refused(piece, source="cut.dxf")
    if not piece.strip():
        assert error.reason == "empty"
    elif cut >= 32:  # past the first '0 / SECTION' tag
        assert error.reason == "truncated", error
    else:
        assert error.reason in {"malformed", "truncated"}


@settings(max_examples=25, deadline=READ_TIME)
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_ascii(wrench: bytes, fraction: float) -> None:
    check_cut(wrench, int(fraction * len(wrench)))


@pytest.mark.parametrize("cut", [0, 1, 5, 40, -1, -2, -3, -4, -6])
def test_truncated_at_the_edges(wrench: bytes, cut: int) -> None:
    check_cut(wrench, cut % len(wrench))


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return save(mixed_drawing("R2018"), tmp_path_factory.mktemp("binary") / "mixed.dxf", fmt="bin")


@settings(max_examples=25, deadline=READ_TIME)
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_binary(binary: bytes, fraction: float) -> None:
    cut = int(fraction * len(binary))
    error = refused(binary[:cut], source="cut.dxf")
    if cut >= 22:  # past the binary sentinel
        assert error.reason == "truncated"
    else:
        assert error.reason in {"empty", "malformed"}


@settings(max_examples=50, deadline=READ_TIME)
@given(data=st.binary(max_size=2048))
def test_random_bytes_only_give_input_errors(data: bytes) -> None:
    error = refused(data, source="random")
    assert error.reason in {"empty", "malformed", "truncated"}


@settings(max_examples=40, deadline=READ_TIME)
@given(seed=st.integers(0, 2**32 - 1))
def test_damaged_samples_only_give_input_errors(wrench: bytes, seed: int) -> None:
    rnd = random.Random(seed)
    lines = wrench.split(b"\n")
    for _ in range(rnd.randint(1, 4)):
        where = rnd.randrange(len(lines) - 2)  # keep the EOF tag
        lines[where] = rnd.choice(
            [b"", b"x", b"  0", b"SECTION", b"1e999", b"nan", b"-7", lines[where][::-1]]
        )
    outcome: Drawing | FeatureInputError
    try:
        outcome = read_drawing(b"\n".join(lines), source="damaged")
    except FeatureInputError as error:
        outcome = error
    if isinstance(outcome, FeatureInputError):
        assert str(outcome).startswith("damaged: ")
    else:
        assert all(math.isfinite(v) for v in outcome.feature_values().values())


# -- without the extra --------------------------------------------------------------------


def test_missing_ezdxf_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    doc.modelspace().add_line((0, 0), (1, 0))
    data = save(doc, tmp_path / "line.dxf")
    monkeypatch.setitem(sys.modules, "ezdxf", None)
    with pytest.raises(MissingDependency) as caught:
        read_drawing(data, source="line.dxf")
    assert "pip install cadmetrics[dxf]" in str(caught.value)
    assert str(caught.value).startswith("line.dxf: ")
    assert (caught.value.reason, caught.value.format) == ("missing_dependency", "dxf")
    assert isinstance(caught.value.__cause__, ImportError)


def test_module_imports_without_ezdxf() -> None:
    code = "import sys; sys.modules['ezdxf'] = None; import cadmetrics.features.drawing"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
