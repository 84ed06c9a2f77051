"""Feature vectors: layouts as data, determinism, and invariance under rigid motion and scale."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics.errors import FeatureError
from cadmetrics.features.layout import LAYOUTS, V1, V2, V3, V4, Scaling, layout_for
from cadmetrics.features.mesh import Mesh
from cadmetrics.features.vector import FeatureConfig, mesh_features
from tests.conftest import REPOSITORY
from tests.features.shapes import box, cylinder, moved, open_faces, rotation_matrix, sphere, torus

SHAPES = {
    "box": box(1.0, 2.0, 3.0),
    "needle": box(50.0, 1.0, 0.5),  # elongated: small principal moments must keep their digits
    "cylinder": cylinder(),
    "sphere": sphere(2),
    "torus": torus(rings=24, sides=12),
}
CONFIG = FeatureConfig(d2_pairs=4096)


def test_each_version_extends_the_one_before() -> None:
    assert [layout.version for layout in LAYOUTS.values()] == ["v1", "v2", "v3", "v4"]
    for older, newer in ((V1, V2), (V2, V3), (V3, V4)):
        assert newer.names[: older.dimension] == older.names
        assert newer.extends == older.version
    assert (V1.dimension, V2.dimension, V3.dimension, V4.dimension) == (7, 14, 46, 49)
    assert V4.index("surface_count") == 46
    with pytest.raises(FeatureError, match="unknown feature version 'v9'"):
        layout_for("v9")
    with pytest.raises(FeatureError, match="names \\['x'\\] more than once"):
        V1.extended("v5", [V1.features[0].__class__("x", "a"), V1.features[0].__class__("x", "b")])


@pytest.mark.parametrize("version", LAYOUTS)
def test_every_version_fills_its_layout(version: str) -> None:
    layout = LAYOUTS[version]
    values = mesh_features(SHAPES["cylinder"], layout, CONFIG).values
    assert values.shape == (layout.dimension,)
    assert np.isfinite(values).all()
    assert not values.flags.writeable


def test_known_values_of_a_box() -> None:
    features = dict(zip(V4.names, mesh_features(SHAPES["box"], V4, CONFIG).values, strict=True))
    assert features["volume"] == 6.0
    assert features["surface_area"] == 22.0
    assert features["hull_volume_ratio"] == 1.0
    assert features["euler_characteristic"] == 2.0
    assert features["watertight"] == 1.0
    assert features["surface_count"] == 6.0
    d2 = [features[f"d2_bin_{index:02d}"] for index in range(32)]
    assert sum(d2) == pytest.approx(1.0)


def test_an_open_mesh_reports_no_volume_and_no_closed_shape_features() -> None:
    features = dict(zip(V2.names, mesh_features(open_faces(SHAPES["box"]), V2, CONFIG).values, strict=True))
    assert features["watertight"] == 0.0
    assert features["volume"] == features["sphericity"] == features["hull_volume_ratio"] == 0.0
    assert features["inertia_ratio_minor"] > 0  # from the shell


def test_the_same_content_gives_the_same_vector_in_another_process() -> None:
    here = mesh_features(SHAPES["torus"], V4, CONFIG).values
    child = textwrap.dedent(
        """
        import sys
        from cadmetrics.features.layout import V4
        from cadmetrics.features.vector import FeatureConfig, mesh_features
        from tests.features.shapes import torus
        values = mesh_features(torus(rings=24, sides=12), V4, FeatureConfig(d2_pairs=4096)).values
        sys.stdout.write(values.tobytes().hex())
        """
    )
    there = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, check=True, cwd=REPOSITORY
    ).stdout
    assert bytes.fromhex(there) == here.tobytes()


def _scaling_of(name: str) -> Scaling:
    return next(feature.scaling for feature in V4 if feature.name == name)


angles = st.floats(-np.pi, np.pi, allow_nan=False)
offsets = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(SHAPES)),
    rotation=st.tuples(angles, angles, angles),
    translation=st.tuples(offsets, offsets, offsets),
    scale=st.floats(0.01, 100.0),
)
def test_rigid_motions_change_no_shape_feature_and_scaling_only_size_features(
    name: str, rotation: tuple[float, float, float], translation: tuple[float, float, float], scale: float
) -> None:
    shape = SHAPES[name]
    original = mesh_features(shape, V4, CONFIG).values
    other = mesh_features(
        moved(shape, rotation_matrix(*rotation), np.array(translation), scale), V4, CONFIG
    ).values
    for index, feature in enumerate(V4):
        expected = original[index]
        if feature.scaling is Scaling.INVARIANT:
            if feature.name.startswith("d2_bin_"):  # a sampled distance on a bin edge may move
                assert other[index] == pytest.approx(expected, abs=2 / CONFIG.d2_pairs), feature.name
            else:
                assert other[index] == pytest.approx(expected, rel=1e-7, abs=1e-12), feature.name
        elif feature.name.startswith("extent_"):
            continue  # axis-aligned: a rotation changes them, by design (see the layout)
        else:
            power = {Scaling.LENGTH: 1, Scaling.AREA: 2, Scaling.VOLUME: 3}[feature.scaling]
            assert other[index] == pytest.approx(expected * scale**power, rel=1e-6), feature.name


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.01, 100.0), translation=st.tuples(offsets, offsets, offsets))
def test_extents_scale_with_the_part_and_ignore_translation(
    scale: float, translation: tuple[float, float, float]
) -> None:
    shape = SHAPES["box"]
    original = mesh_features(shape, V1, CONFIG).values
    other = mesh_features(moved(shape, np.eye(3), np.array(translation), scale), V1, CONFIG).values
    for name in ("extent_major", "extent_middle", "extent_minor"):
        index = V1.index(name)
        assert other[index] == pytest.approx(original[index] * scale, rel=1e-9)


def test_feature_config_is_checked_and_keyed() -> None:
    with pytest.raises(ValueError, match="d2_pairs must be positive"):
        FeatureConfig(d2_pairs=0)
    assert FeatureConfig().key != FeatureConfig(patch_angle_degrees=10.0).key


def test_a_mesh_of_one_triangle_still_gives_every_feature() -> None:
    triangle = Mesh.from_arrays([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])
    values = dict(zip(V4.names, mesh_features(triangle, V4, CONFIG).values, strict=True))
    assert values["surface_area"] == 0.5
    assert values["surface_count"] == 1.0
    assert values["euler_characteristic"] == 1.0
    assert values["hull_volume_ratio"] == 0.0


def test_the_layout_reference_is_up_to_date() -> None:

    from cadmetrics.features.layout_docs import render

    path = REPOSITORY / "docs" / "features-layouts.md"
    command = "python -m cadmetrics.features.layout_docs docs/features-layouts.md"
    assert path.read_text(encoding="utf-8") == render(), f"docs/features-layouts.md is stale: run `{command}`"


def test_drawing_layouts_name_what_the_reader_measures() -> None:
    from cadmetrics.features.drawing import FEATURE_NAMES
    from cadmetrics.features.layout import DRAWING_LAYOUTS

    assert DRAWING_LAYOUTS["v1"].names == FEATURE_NAMES
    assert [layout.dimension for layout in DRAWING_LAYOUTS.values()] == [23, 26, 58, 60]
    assert layout_for("v3", drawing=True) is DRAWING_LAYOUTS["v3"]


def _drawing(offset: tuple[float, float], angle: float, scale: float) -> bytes:
    """A 3-4-5 triangle of lines and a circle, moved, turned and scaled, as DXF bytes."""
    import io
    import math

    ezdxf = pytest.importorskip("ezdxf")
    cos, sin = math.cos(angle), math.sin(angle)

    def place(x: float, y: float) -> tuple[float, float]:
        return (scale * (cos * x - sin * y) + offset[0], scale * (sin * x + cos * y) + offset[1])

    document = ezdxf.new("R2010")
    space = document.modelspace()
    corners = [(0.0, 0.0), (3.0, 0.0), (0.0, 4.0)]
    for start, end in zip(corners, corners[1:] + corners[:1], strict=True):
        space.add_line(place(*start), place(*end))
    space.add_circle(place(1.0, 1.0), radius=0.5 * scale)
    stream = io.StringIO()
    document.write(stream)
    return stream.getvalue().encode()


def test_a_drawing_has_its_exact_measures_in_every_version() -> None:
    from cadmetrics.features.drawing import read_drawing
    from cadmetrics.features.layout import DRAWING_LAYOUTS
    from cadmetrics.features.vector import drawing_features

    drawing = read_drawing(_drawing((0.0, 0.0), 0.0, 1.0), source="triangle.dxf")
    for layout in DRAWING_LAYOUTS.values():
        values = drawing_features(drawing, layout, CONFIG).values
        assert values.shape == (layout.dimension,) and np.isfinite(values).all()
    named = dict(zip(DRAWING_LAYOUTS["v4"].names, values, strict=True))
    assert named["line_entities"] == 3 and named["circle_entities"] == 1
    assert named["line_length"] == 12.0
    assert named["arc_length"] == pytest.approx(np.pi, rel=1e-12)
    assert 0 < named["aspect_ratio"] < 1
    assert named["curve_share"] == pytest.approx(np.pi / (12 + np.pi))
    assert named["length_per_radius"] > 0
    assert sum(named[f"d2_bin_{index:02d}"] for index in range(32)) == pytest.approx(1.0)
    assert named["entity_type_entropy"] == pytest.approx(-(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)))


def test_known_shape_features_of_drawings() -> None:
    import io
    import math

    from cadmetrics.features.drawing import read_drawing
    from cadmetrics.features.layout import DRAWING_V2
    from cadmetrics.features.vector import drawing_features

    ezdxf = pytest.importorskip("ezdxf")

    def features(draw: Any) -> dict[str, float]:
        document = ezdxf.new("R2010")
        draw(document.modelspace())
        stream = io.StringIO()
        document.write(stream)
        drawing = read_drawing(stream.getvalue().encode())
        return dict(zip(DRAWING_V2.names, drawing_features(drawing, DRAWING_V2, CONFIG).values, strict=True))

    circle = features(lambda space: space.add_circle((5.0, 5.0), radius=3.0))
    assert circle["aspect_ratio"] == pytest.approx(1.0, rel=1e-3)
    assert circle["length_per_radius"] == pytest.approx(
        2 * math.pi, rel=1e-3
    )  # a ring's gyration radius is r
    square = features(lambda space: space.add_lwpolyline([(0, 0), (2, 0), (2, 2), (0, 2)], close=True))
    assert square["aspect_ratio"] == pytest.approx(1.0, rel=1e-12)
    line = features(lambda space: space.add_line((0, 0), (10, 0)))
    assert line["aspect_ratio"] == 0.0
    assert line["length_per_radius"] == pytest.approx(10 / (10 / math.sqrt(12)))  # a rod: L / sqrt(12)


@pytest.mark.parametrize("angle", [0.0, 0.7])
def test_a_moved_turned_or_scaled_drawing_keeps_its_shape_features(angle: float) -> None:
    from cadmetrics.features.drawing import read_drawing
    from cadmetrics.features.layout import DRAWING_V4
    from cadmetrics.features.vector import drawing_features

    original = drawing_features(read_drawing(_drawing((0, 0), 0.0, 1.0)), DRAWING_V4, CONFIG).values
    moved_values = drawing_features(read_drawing(_drawing((50, -7), angle, 2.5)), DRAWING_V4, CONFIG).values
    for index, feature in enumerate(DRAWING_V4):
        if feature.name.startswith("extents_"):
            continue  # axis-aligned: a turn changes them, by design
        expected = original[index] if feature.scaling is Scaling.INVARIANT else original[index] * 2.5
        if angle == 0.0:  # moved and scaled: the same flattening, the same sample
            tolerance = (
                2 / CONFIG.d2_pairs if feature.name.startswith("d2_bin_") else 1e-9 * max(1.0, expected)
            )
        elif feature.name.startswith(("d2_bin_", "shape_entropy")):
            # turned: a circle is flattened from another point, so the D2 sample is another
            # sample of the same distribution (a share's spread is about 0.003 at 4096 pairs)
            tolerance = 0.02 if feature.name.startswith("d2_bin_") else 0.05
        else:  # lengths and moments of a flattening within 1e-3 of the curve
            tolerance = 2e-3 * max(1.0, expected)
        assert moved_values[index] == pytest.approx(expected, abs=tolerance), feature.name
