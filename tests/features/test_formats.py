"""Reading CAD mesh files: real samples against trimesh, generated round trips, and bad input."""

from __future__ import annotations

import math
import struct
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadmetrics.errors import FeatureInputError
from cadmetrics.features import stl as stl_module
from cadmetrics.features import weld as weld_module
from cadmetrics.features.formats import read_mesh, sniff
from cadmetrics.features.geometry import Geometry
from cadmetrics.features.mesh import Mesh
from cadmetrics.features.weld import WELD_TOLERANCE, weld, weld_indexed
from tests.features import writers

# --- generated shapes with known answers ---------------------------------------------------

CUBE = [[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)]  # index x*4 + y*2 + z
CUBE_QUADS: list[tuple[int, ...]] = [
    (0, 1, 3, 2),
    (4, 6, 7, 5),
    (0, 4, 5, 1),
    (2, 3, 7, 6),
    (0, 2, 6, 4),
    (1, 5, 7, 3),
]
CUBE_TRIANGLES: list[tuple[int, ...]] = [(q[0], *q[k : k + 2]) for k in (1, 2) for q in CUBE_QUADS]
TET = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
TET_FACES: list[tuple[int, ...]] = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
TET_AREA = 1.5 + math.sqrt(3) / 2
# A pentagon prism side made of a pentagon, a quad and triangles: polygons of several sizes.
MIXED = [
    [0.0, 0.0, 0.0],
    [2.0, 0.0, 0.0],
    [3.0, 1.0, 0.0],
    [1.0, 2.0, 0.0],
    [-1.0, 1.0, 0.0],
    [1.0, 1.0, 2.0],
]
MIXED_FACES: list[tuple[int, ...]] = [(0, 1, 2, 3, 4), (0, 1, 5), (1, 2, 5), (2, 3, 5), (3, 4, 5), (4, 0, 5)]


def area(mesh: Mesh) -> float:
    corners = mesh.vertices[mesh.faces]
    return float(
        np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1).sum()
        / 2
    )


def polygon_area(vertices: list[list[float]], faces: list[tuple[int, ...]]) -> float:
    """Area of fanned polygons, computed independently of the readers."""
    points = np.array(vertices)
    total = 0.0
    for face in faces:
        for k in range(1, len(face) - 1):
            a, b, c = points[face[0]], points[face[k]], points[face[k + 1]]
            total += float(np.linalg.norm(np.cross(b - a, c - a))) / 2
    return total


def refused(data: bytes, reason: str, source: str = "part", **options: int) -> FeatureInputError:
    """Read ``data``, expect a FeatureInputError with ``reason``, and check its message names the source."""
    with pytest.raises(FeatureInputError) as caught:
        read_mesh(data, source=source, **options)
    assert caught.value.reason == reason, str(caught.value)
    assert str(caught.value).startswith(f"{source}: ")
    return caught.value


def euler(mesh: Mesh) -> int:
    edges = np.sort(mesh.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    return len(mesh.vertices) - len(np.unique(edges, axis=0)) + len(mesh.faces)


# --- real samples against trimesh ----------------------------------------------------------

STL_SAMPLES = [
    "1002_tray_bottom.STL", "20mm-xyz-cube.stl", "7_8ths_cube.stl", "angle_block.STL", "box.STL",
    "cylinder.stl", "featuretype.STL", "idler_riser.STL", "multibody.stl", "octagonal_pocket.stl",
    "origin_inside.STL", "plate_holes.STL", "round.stl", "teapot.stl", "torus.STL", "unit_cube.STL",
    "unit_sphere.STL",
]  # fmt: skip
OBJ_SAMPLES = [
    "box.obj", "chair_model.obj", "cube.OBJ", "fandisk.obj", "negative_indices.obj", "not_convex.obj",
    "polygonfaces.obj", "quadknot.obj", "rabbit.obj", "tube.obj",
]  # fmt: skip
PLY_SAMPLES = [
    "bunny.ply", "cycloidal.ply", "featuretype.ply", "fuze.ply", "fuze_ascii.ply", "octagonal_pocket.ply",
    "sphere.ply", "suzanne.ply", "tet.ply",
]  # fmt: skip
SAMPLES = (
    [f"stl/{n}" for n in STL_SAMPLES] + [f"obj/{n}" for n in OBJ_SAMPLES] + [f"ply/{n}" for n in PLY_SAMPLES]
)

# Every file of broken/: the contract reason it is refused with, or None when it reads (a
# documented degraded result, checked below). Kept in step with docs/feature-inputs.md.
BROKEN = {
    "broken_loop.dxf": "unsupported_format",
    "busted.STL": None,
    "empty.obj": "empty",
    "empty.ply": "empty",
    "empty.stl": "empty",
    "notenoughindices.obj": "malformed",
    "ply_empty_header.ply": "empty",
    "points_ascii.ply": "empty",
    "soup.stl": None,
    "stl_empty_ascii.stl": "empty",
    "stl_empty_bin.stl": "empty",
}


def trimesh_parts(path: Path) -> list[Any]:
    """The meshes trimesh reads from ``path``, unprocessed (a scene gives several)."""
    trimesh = pytest.importorskip("trimesh")
    loaded = trimesh.load(path, process=False, skip_materials=True)
    return list(loaded.geometry.values()) if isinstance(loaded, trimesh.Scene) else [loaded]


def trimesh_processed(path: Path) -> Any:
    """The mesh trimesh reads from ``path`` with its default processing (vertices merged), a
    scene's parts concatenated into one."""
    trimesh = pytest.importorskip("trimesh")
    loaded = trimesh.load(path, skip_materials=True)
    if isinstance(loaded, trimesh.Scene):
        return trimesh.util.concatenate(list(loaded.geometry.values()))
    return loaded


def test_every_sample_is_listed(cad_samples: Path) -> None:
    for kind, names in (("stl", STL_SAMPLES), ("obj", OBJ_SAMPLES), ("ply", PLY_SAMPLES)):
        assert sorted(p.name for p in (cad_samples / kind).iterdir()) == sorted(names)
    assert sorted(p.name for p in (cad_samples / "broken").iterdir()) == sorted(BROKEN)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_agrees_with_trimesh(cad_samples: Path, name: str) -> None:
    path = cad_samples / name
    mesh = read_mesh(path.read_bytes(), source=name)
    parts = trimesh_parts(path)
    assert mesh.format == name.split("/", maxsplit=1)[0]
    assert mesh.source == name
    assert len(mesh.faces) == sum(len(p.faces) for p in parts)
    assert area(mesh) == pytest.approx(sum(p.area for p in parts), rel=1e-6)
    # Every point the faces use is one trimesh reads (the same float values): welded, each
    # vertex is the first of the copies it merges.
    theirs = np.unique(np.concatenate([p.vertices[np.unique(p.faces)] for p in parts]), axis=0)
    ours = np.unique(mesh.vertices[np.unique(mesh.faces)], axis=0)
    assert len(np.unique(np.concatenate([ours, theirs]), axis=0)) == len(theirs)
    if name.startswith("stl/"):
        # STL keeps its triangles in order (trimesh reorders OBJ faces by material); welding
        # moves a corner by at most one grid cell.
        corners = np.concatenate([p.triangles for p in parts])
        cell = np.abs(corners).max() * WELD_TOLERANCE
        assert np.abs(mesh.triangles - corners).max() <= cell


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_welds_like_trimesh(cad_samples: Path, name: str) -> None:
    """Held to trimesh's processed mesh. Its merge keeps apart copies of a point whose normals
    or texture coordinates differ (``box.obj`` is 24 vertices there, 8 here), so vertices are
    compared with its merge by position only, and shape only where trimesh's answer is sound."""
    path = cad_samples / name
    geometry = Geometry(read_mesh(path.read_bytes(), source=name))
    processed = trimesh_processed(path)
    by_position = processed.copy(include_visual=False)
    by_position.merge_vertices(merge_tex=True, merge_norm=True)
    assert len(geometry.mesh.faces) == len(processed.faces)
    assert geometry.area == pytest.approx(processed.area, rel=1e-6)
    assert geometry.vertex_count == len(by_position.vertices) <= len(processed.vertices)
    if processed.is_watertight:
        assert geometry.watertight
    if geometry.encloses_volume:
        assert geometry.volume == pytest.approx(abs(processed.volume), rel=1e-6)


@pytest.mark.parametrize(
    ("name", "vertices", "volume"),
    [
        ("ply/octagonal_pocket.ply", 1631, 0.000250353),
        ("ply/featuretype.ply", 1722, 11.6277),
        ("obj/tube.obj", 60, 8.61854),
    ],
)
def test_repeated_vertices_are_welded_into_closed_parts(
    cad_samples: Path, name: str, vertices: int, volume: float
) -> None:
    """These files repeat vertices (1658, 5096 and 128 as written): read apart, the parts are
    open and enclose nothing."""
    geometry = Geometry(read_mesh((cad_samples / name).read_bytes(), source=name))
    assert len(geometry.mesh.vertices) == geometry.vertex_count == vertices
    assert geometry.watertight
    assert geometry.encloses_volume
    assert geometry.volume == pytest.approx(volume, rel=1e-5)


def test_same_part_as_ply_and_stl_reads_the_same(cad_samples: Path) -> None:
    ply = Geometry(read_mesh((cad_samples / "ply" / "featuretype.ply").read_bytes(), source="ply"))
    stl = Geometry(read_mesh((cad_samples / "stl" / "featuretype.STL").read_bytes(), source="stl"))
    assert (ply.vertex_count, len(ply.mesh.faces)) == (stl.vertex_count, len(stl.mesh.faces)) == (1722, 3476)
    assert ply.volume == pytest.approx(stl.volume, rel=1e-6)
    assert ply.area == pytest.approx(stl.area, rel=1e-6)
    assert ply.euler_characteristic == stl.euler_characteristic


def test_not_convex_obj_welds_to_44_vertices(cad_samples: Path) -> None:
    mesh = read_mesh((cad_samples / "obj" / "not_convex.obj").read_bytes(), source="not_convex.obj")
    assert (len(mesh.vertices), len(mesh.faces)) == (44, 96)


@pytest.mark.parametrize("name", ["stl/unit_cube.STL", "stl/torus.STL", "stl/unit_sphere.STL"])
def test_welded_samples_are_closed(cad_samples: Path, name: str) -> None:
    """Welding gives shared edges: closed genus-0 (or torus) parts have the right Euler number."""
    mesh = read_mesh((cad_samples / name).read_bytes(), source=name)
    assert euler(mesh) == (0 if "torus" in name else 2)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_samples(cad_samples: Path, name: str) -> None:
    data = (cad_samples / "broken" / name).read_bytes()
    reason = BROKEN[name]
    if reason is not None:
        refused(data, reason, source=f"broken/{name}")
        return
    mesh = read_mesh(data, source=name)
    if name == "soup.stl":  # 100 separate triangles: reads, but nothing is shared
        assert (len(mesh.vertices), len(mesh.faces)) == (300, 100)
        assert euler(mesh) == 100
    else:  # busted.STL: a closed scan that reads completely
        assert (len(mesh.vertices), len(mesh.faces)) == (1941, 3878)
        assert euler(mesh) == 2


def test_broken_messages_say_what_is_wrong(cad_samples: Path) -> None:
    broken = cad_samples / "broken"
    assert "line 9" in str(refused((broken / "notenoughindices.obj").read_bytes(), "malformed"))
    assert "point cloud" in str(refused((broken / "points_ascii.ply").read_bytes(), "empty"))
    assert "2D drawing" in str(refused((broken / "broken_loop.dxf").read_bytes(), "unsupported_format"))


@pytest.mark.parametrize("kind", ["dxf", "step"])
def test_drawings_and_breps_are_recognised_and_refused(cad_samples: Path, kind: str) -> None:
    for path in sorted((cad_samples / kind).iterdir()):
        assert sniff(path.read_bytes(), source=path.name) == kind
        error = refused(path.read_bytes(), "unsupported_format", source=path.name)
        assert error.format == kind
        assert ("FeatureExtractor reads it" if kind == "step" else "drawing reader") in str(error)


# --- sniffing ------------------------------------------------------------------------------


def test_sniffing_ignores_the_extension(cad_samples: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "bracket.obj"
    renamed.write_bytes((cad_samples / "stl" / "box.STL").read_bytes())
    assert sniff(renamed.read_bytes(), source=str(renamed)) == "stl"
    mesh = read_mesh(renamed.read_bytes(), source=str(renamed))
    assert (mesh.format, len(mesh.faces)) == ("stl", 8954)


def test_binary_stl_whose_header_says_solid_reads_as_binary() -> None:
    data = writers.binary_stl(CUBE, CUBE_TRIANGLES, header=b"solid cube exported as binary")
    assert data.startswith(b"solid")
    mesh = read_mesh(data, source="cube.stl")
    assert (len(mesh.vertices), len(mesh.faces), area(mesh)) == (8, 12, 6.0)


def test_real_binary_stl_starting_with_solid(cad_samples: Path) -> None:
    data = (cad_samples / "stl" / "angle_block.STL").read_bytes()
    assert data.startswith(b"solid")
    assert len(read_mesh(data, source="angle_block").faces) == 704


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"ply\nformat ascii 1.0\nend_header\n", "ply"),
        (b"ply\r\nformat binary_little_endian 1.0\r\nend_header\r\n", "ply"),
        (b"solid x\nfacet normal 0 0 1\n", "stl"),
        (b"  SOLID upper\n", "stl"),
        (b"# comment\nmtllib a.mtl\no part\nv 0 0 0\n", "obj"),
        (b"\n\nvn 0 0 1\nf 1 2 3\n", "obj"),
        (b"999\ndxfrw 0.6.3\n  0\nSECTION\n  2\nHEADER\n", "dxf"),
        (b"  0\r\nSECTION\r\n", "dxf"),
        (b"AutoCAD Binary DXF\r\n\x1a\x00\x00\x01", "dxf"),
        (b"ISO-10303-21;\nHEADER;\n", "step"),
        (b"\xef\xbb\xbf\n ISO-10303-21;\n", "step"),
    ],
)
def test_sniff_by_content(data: bytes, expected: str) -> None:
    assert sniff(data, source="x") == expected


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"hello world\nthis is text\n", "not a supported format"),
        (b"PK\x03\x04" + bytes(200), "ZIP"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "PNG"),
        (b"glTF\x02\x00\x00\x00" + bytes(200), "glTF"),
        (b"AC1027" + bytes(200), "DWG"),
        (b"\x00\x01\x02binary", "binary data"),
        (b"#!/bin/sh\necho hi\n", "not a supported format"),
    ],
)
def test_unsupported_content(data: bytes, says: str) -> None:
    with pytest.raises(FeatureInputError) as caught:
        sniff(data, source="upload.bin")
    assert (caught.value.reason, caught.value.format) == ("unsupported_format", "unknown")
    assert str(caught.value).startswith("upload.bin: ")
    assert says in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n"])
def test_empty_input(data: bytes) -> None:
    assert "empty" in str(refused(data, "empty"))


# --- generated round trips -----------------------------------------------------------------

RoundTrip = Callable[[list[list[float]], list[tuple[int, ...]]], bytes]
TRIANGLE_WRITERS: dict[str, RoundTrip] = {
    "binary_stl": writers.binary_stl,
    "ascii_stl": writers.ascii_stl,
    "ascii_stl_crlf": lambda v, f: writers.ascii_stl(v, f, newline="\r\n"),
    "obj": writers.obj,
    "obj_slashes": lambda v, f: writers.obj(v, f, style="slashes"),
    "obj_normals": lambda v, f: writers.obj(v, f, style="normals"),
    "obj_negative": lambda v, f: writers.obj(v, f, negative=True),
    "obj_crlf": lambda v, f: writers.obj(v, f).replace(b"\n", b"\r\n"),
    "ascii_ply": writers.ascii_ply,
    "ascii_ply_extras": lambda v, f: writers.ascii_ply(v, f, extra_properties=True, extra_elements=True),
    "binary_ply": writers.binary_ply,
    "binary_ply_big_endian": lambda v, f: writers.binary_ply(v, f, byte_order=">"),
    "binary_ply_extras": lambda v, f: writers.binary_ply(v, f, extra_properties=True, extra_elements=True),
    "binary_ply_big_extras": lambda v, f: writers.binary_ply(
        v, f, byte_order=">", extra_properties=True, extra_elements=True
    ),
    "binary_ply_types": lambda v, f: writers.binary_ply(
        v, f, vertex_type="f8", count_type="u4", index_type="u2"
    ),
    "binary_ply_int_counts": lambda v, f: writers.binary_ply(v, f, count_type="i4", index_type="u4"),
}
POLYGON_WRITERS = {name: w for name, w in TRIANGLE_WRITERS.items() if "stl" not in name}


@pytest.mark.parametrize("writer", sorted(TRIANGLE_WRITERS))
@pytest.mark.parametrize(
    ("vertices", "faces", "expected_area"),
    [(CUBE, CUBE_TRIANGLES, 6.0), (TET, TET_FACES, TET_AREA)],
    ids=["cube", "tetrahedron"],
)
def test_round_trip(
    writer: str, vertices: list[list[float]], faces: list[tuple[int, ...]], expected_area: float
) -> None:
    mesh = read_mesh(TRIANGLE_WRITERS[writer](vertices, faces), source=f"{writer}.bin")
    assert mesh.format == next(kind for kind in ("stl", "obj", "ply") if kind in writer)
    assert (len(mesh.vertices), len(mesh.faces)) == (len(vertices), len(faces))
    assert area(mesh) == pytest.approx(expected_area, rel=1e-12)
    assert euler(mesh) == 2  # closed: STL corners were welded into shared vertices
    if "stl" not in writer:  # vertices and faces come back exactly as written
        np.testing.assert_array_equal(mesh.vertices, vertices)
        np.testing.assert_array_equal(mesh.faces, faces)


@pytest.mark.parametrize("writer", sorted(POLYGON_WRITERS))
@pytest.mark.parametrize(
    ("vertices", "faces"), [(CUBE, CUBE_QUADS), (MIXED, MIXED_FACES)], ids=["cube_quads", "mixed_polygons"]
)
def test_polygons_become_fans(writer: str, vertices: list[list[float]], faces: list[tuple[int, ...]]) -> None:
    mesh = read_mesh(POLYGON_WRITERS[writer](vertices, faces), source="polygons")
    assert len(mesh.faces) == sum(len(face) - 2 for face in faces)
    assert area(mesh) == pytest.approx(polygon_area(vertices, faces), rel=1e-12)
    expected = [(f[0], f[k], f[k + 1]) for f in faces for k in range(1, len(f) - 1)]
    np.testing.assert_array_equal(mesh.faces, expected)
    assert euler(mesh) == 2


def test_obj_negative_indices_and_records_ignored() -> None:
    text = b"""# a square in two triangles, written with relative indices
mtllib parts.mtl
o square
g side
usemtl steel
s off
v 0 0 0
v 1 0 0
vt 0 0
vn 0 0 1
v 1 1 0
f -3/1/1 -2/1/1 -1/1/1
v 0 1 0
f -4//1 -2//1 -1//1   # trailing comment
l 1 2
p 1
"""
    mesh = read_mesh(text, source="square.obj")
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3]])
    assert area(mesh) == 1.0


def test_obj_vertex_colours_and_weights_are_ignored() -> None:
    text = b"v 0 0 0 1 0 0\nv 1 0 0 0.5\nv 0 1 0\n  f 1 2 3\n"
    mesh = read_mesh(text, source="colours.obj")
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])


def test_ply_with_extra_properties_and_elements_reads_the_mesh() -> None:
    for data in (
        writers.ascii_ply(MIXED, MIXED_FACES, extra_properties=True, extra_elements=True),
        writers.binary_ply(MIXED, MIXED_FACES, extra_properties=True, extra_elements=True, byte_order=">"),
    ):
        mesh = read_mesh(data, source="extras.ply")
        np.testing.assert_array_equal(mesh.vertices, MIXED)
        assert len(mesh.faces) == 8


def test_ascii_ply_values_take_their_declared_type() -> None:
    """A ``float`` property holds float32 values, as the same header in binary would."""
    tenth = [[0.1 * c for c in vertex] for vertex in TET]
    doubles = writers.ascii_ply(tenth, TET_FACES)
    floats = doubles.replace(b"property double", b"property float")
    np.testing.assert_array_equal(read_mesh(doubles).vertices, tenth)
    np.testing.assert_array_equal(read_mesh(floats).vertices, np.array(tenth, dtype=np.float32))
    assert not np.array_equal(read_mesh(floats).vertices, tenth)


def test_binary_ply_walk_handles_long_mixed_runs() -> None:
    """Faces whose sizes change (quads then triangles then quads) take the walk, same result."""
    quads = [(4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3) for i in range(50)]
    grid = [[float(i // 4), float(i % 2), float((i // 2) % 2 + i // 4)] for i in range(200)]
    faces: list[tuple[int, ...]] = [*quads[:20], *[(q[0], q[1], q[2]) for q in quads[20:30]], *quads[30:]]
    mesh = read_mesh(writers.binary_ply(grid, faces, extra_properties=True), source="walk.ply")
    ascii_mesh = read_mesh(writers.ascii_ply(grid, faces, extra_properties=True), source="walk_ascii.ply")
    np.testing.assert_array_equal(mesh.faces, ascii_mesh.faces)
    assert len(mesh.faces) == 40 * 2 + 10


def test_weld_merges_exporter_noise_keeps_features_and_orders_by_first_appearance() -> None:
    corners = np.array(
        [[1, 0, 0], [0, 0, 0], [-0.0, 0, 0], [1, 0, 1e-30], [1, 0, 1e-3], [6e-17, 0, 0]], dtype=np.float32
    )
    vertices, faces = weld(corners)
    np.testing.assert_array_equal(vertices, np.array([[1, 0, 0], [0, 0, 0], [1, 0, 1e-3]], dtype=np.float32))
    np.testing.assert_array_equal(faces, [[0, 1, 1], [0, 2, 1]])
    assert not np.signbit(vertices).any()


def test_weld_survives_hash_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    corners = rng.integers(0, 5, size=(3000, 3)).astype(np.float32)
    expected = weld(corners)
    vertices = corners.astype(np.float64)
    faces = np.arange(len(vertices)).reshape(-1, 3)
    expected_indexed = weld_indexed(vertices, faces)
    monkeypatch.setattr(weld_module, "_HASH_X", np.uint64(0))  # every row hashes to 0
    collided = weld(corners)
    np.testing.assert_array_equal(collided[0], expected[0])
    np.testing.assert_array_equal(collided[1], expected[1])
    collided_indexed = weld_indexed(vertices, faces)
    np.testing.assert_array_equal(collided_indexed[0], expected_indexed[0])
    np.testing.assert_array_equal(collided_indexed[1], expected_indexed[1])
    np.testing.assert_array_equal(expected_indexed[0], expected[0])
    np.testing.assert_array_equal(expected_indexed[1], expected[1])
    distinct = np.unique(corners, axis=0).astype(np.float64)
    welded, renumbered = weld_indexed(distinct, faces[:1] % len(distinct))
    np.testing.assert_array_equal(welded, distinct)  # all in one hash, none merged
    np.testing.assert_array_equal(renumbered, faces[:1] % len(distinct))
    assert len(expected[0]) == len(np.unique(corners, axis=0))
    np.testing.assert_array_equal(expected[0][expected[1]].reshape(-1, 3), corners)


def test_weld_of_float64_rows() -> None:
    corners = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3 + 1e-6], [0.1, 0.2, 0.30000000000000004]])
    vertices, faces = weld(corners)
    assert len(vertices) == 2
    np.testing.assert_array_equal(faces, [[0, 1, 0]])


def test_weld_of_a_soup_with_nothing_shared() -> None:
    corners = np.arange(18, dtype=np.float32).reshape(6, 3)
    vertices, faces = weld(corners)
    np.testing.assert_array_equal(vertices, corners)
    np.testing.assert_array_equal(faces, [[0, 1, 2], [3, 4, 5]])
    assert (vertices.dtype, faces.dtype) == (np.dtype(np.float64), np.dtype(np.int64))


def test_weld_indexed_keeps_first_copies_in_order_and_renumbers_faces() -> None:
    vertices = np.array(
        [[1.0, 0, 0], [-0.0, 0, 0], [0, 1, 0], [1, 0, 6e-17], [0, 0, 0], [5, 5, 5], [0, 1, 1e-3]]
    )
    faces = np.array([[3, 4, 6], [0, 1, 2]])
    welded, renumbered = weld_indexed(vertices, faces)
    # the first copy is kept as written (-0.0 too); vertex 5, used by no face, stays
    np.testing.assert_array_equal(welded, [[1, 0, 0], [0, 0, 0], [0, 1, 0], [5, 5, 5], [0, 1, 1e-3]])
    assert np.signbit(welded[1, 0])
    np.testing.assert_array_equal(renumbered, [[0, 1, 4], [0, 1, 2]])
    cell = 5 * WELD_TOLERANCE
    np.testing.assert_allclose(welded[renumbered], vertices[faces], rtol=0, atol=cell)


def test_weld_indexed_without_copies_or_with_non_finite_values_changes_nothing() -> None:
    faces = np.array([[0, 1, 2]])
    for vertices in (np.array(TET), np.array([[0.0, 0, 0], [math.nan, 0, 0], [0, 1, 0], [0, 0, 0]])):
        welded, renumbered = weld_indexed(vertices, faces)
        assert welded is vertices
        assert renumbered is faces


# Each face of a cube written with corners of its own (24 vertices, as exporters do for flat
# shading), every third corner's zeros written as exporter noise and the next one's as -0.0.
CUBE_COPIES = [
    [c or (0.0, 6e-17, -0.0)[k % 3] for c in CUBE[index]]
    for k, index in enumerate(index for quad in CUBE_QUADS for index in quad)
]
CUBE_COPY_QUADS = [tuple(range(4 * face, 4 * face + 4)) for face in range(6)]


@pytest.mark.parametrize("writer", sorted(POLYGON_WRITERS))
def test_repeated_vertices_of_obj_and_ply_are_welded(writer: str) -> None:
    data = POLYGON_WRITERS[writer](CUBE_COPIES, CUBE_COPY_QUADS)
    mesh = read_mesh(data, source=f"{writer}.bin")
    geometry = Geometry(mesh)
    assert (len(mesh.vertices), len(mesh.faces)) == (8, 12)
    assert (geometry.euler_characteristic, geometry.watertight, geometry.encloses_volume) == (2, True, True)
    assert geometry.volume == pytest.approx(1.0, rel=1e-12)
    assert area(mesh) == pytest.approx(6.0, rel=1e-12)
    # the first copy of each corner is the vertex kept, in order of first appearance
    firsts: dict[tuple[float, ...], int] = {}
    for index, vertex in enumerate(CUBE_COPIES):
        firsts.setdefault(tuple(np.round(vertex, 6) + 0.0), index)
    expected = np.array(CUBE_COPIES)[sorted(firsts.values())]
    np.testing.assert_allclose(mesh.vertices, expected, rtol=1e-7, atol=0)  # float32 in binary PLY
    np.testing.assert_array_equal(np.signbit(mesh.vertices), np.signbit(expected))
    checked = Mesh.from_arrays(mesh.vertices, mesh.faces, source="again", format=mesh.format)
    np.testing.assert_array_equal(checked.faces, mesh.faces)


def test_binary_stl_trailing_padding_is_tolerated_but_junk_is_not() -> None:
    data = writers.binary_stl(CUBE, CUBE_TRIANGLES)
    assert len(read_mesh(data + b"\n" * 49, source="padded").faces) == 12
    assert "count is wrong" in str(refused(data + bytes(50), "malformed"))


# --- lying headers, limits and bad values --------------------------------------------------


def assert_cheap(action: Callable[[], object], reason: str) -> FeatureInputError:
    """``action`` fails with ``reason`` before allocating what the input claims (no time is
    asserted: what it would have allocated is)."""
    tracemalloc.start()
    try:
        with pytest.raises(FeatureInputError) as caught:
            action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason == reason, str(caught.value)
    assert peak < 5_000_000
    return caught.value


def test_binary_stl_declaring_a_billion_triangles_in_200_bytes() -> None:
    data = writers.binary_stl(CUBE, CUBE_TRIANGLES[:2], count=10**9)[:200]
    error = assert_cheap(lambda: read_mesh(data, source="liar.stl"), "truncated")
    assert "1000000000 triangles" in str(error)


def test_binary_stl_over_the_face_limit() -> None:
    data = writers.binary_stl(CUBE, CUBE_TRIANGLES)
    assert "limit of 5" in str(refused(data, "too_large", max_faces=5))


def test_ply_declaring_a_trillion_vertices() -> None:
    for data in (
        writers.binary_ply(TET, TET_FACES).replace(b"element vertex 4", b"element vertex 1000000000000"),
        writers.ascii_ply(TET, TET_FACES).replace(b"element vertex 4", b"element vertex 1000000000000"),
    ):
        error = assert_cheap(partial(read_mesh, data, source="liar.ply"), "truncated")
        assert "'vertex'" in str(error)


def test_ply_face_count_of_255_with_the_bytes_missing() -> None:
    data = writers.binary_ply(TET, TET_FACES)
    body = data.index(b"end_header\n") + len(b"end_header\n") + 4 * 12
    lying = data[:body] + b"\xff" + data[body + 1 : body + 30]  # first face claims 255 indices
    error = assert_cheap(lambda: read_mesh(lying, source="liar.ply"), "truncated")
    assert "face 0" in str(error)


def test_ply_face_count_over_the_limit() -> None:
    data = writers.binary_ply(TET, TET_FACES).replace(b"element face 4", b"element face 999999999999")
    assert_cheap(lambda: read_mesh(data, source="big.ply"), "too_large")


def test_ascii_formats_over_the_face_limit() -> None:
    refused(writers.obj(CUBE, CUBE_QUADS), "too_large", max_faces=11)  # 6 quads, 12 triangles
    refused(writers.obj(CUBE, CUBE_QUADS), "too_large", max_faces=5)  # 6 face lines
    refused(writers.ascii_stl(CUBE, CUBE_TRIANGLES), "too_large", max_faces=11)
    refused(writers.ascii_ply(CUBE, CUBE_QUADS), "too_large", max_faces=11)
    assert len(read_mesh(writers.obj(CUBE, CUBE_QUADS), max_faces=12).faces) == 12


def with_nan(vertices: list[list[float]], value: float) -> list[list[float]]:
    return [[value, v[1], v[2]] if i == 2 else v for i, v in enumerate(vertices)]


@pytest.mark.parametrize("writer", sorted(TRIANGLE_WRITERS))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_coordinates(writer: str, value: float) -> None:
    data = TRIANGLE_WRITERS[writer](with_nan(TET, value), TET_FACES)
    error = refused(data, "non_finite", source="bad")
    assert "NaN or infinite" in str(error)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "line 4: vertex index 9"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "vertex index 0"),
        (b"v 0 0 0\nv 1 0 0\nf -3 -2 -1\nv 0 1 0\n", "of the 2 vertices"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3.5\n", "not an integer"),
        (b"v 0 0 0\nv 1 0 x\nv 0 1 0\nf 1 2 3\n", "line 2"),
        (b"v 0 0 0\nv 1 0\nv 0 1 0\nf 1 2 3\n", "needs 3 coordinates"),
        (writers.ascii_ply(TET, [(0, 1, 7)]), "face 0 refers to vertex 7"),
        (writers.binary_ply(TET, [(0, 1, 2), (0, 1, 70000)]), "face 1 refers to vertex 70000"),
        (writers.binary_ply(TET, [(0, 1, -1)]), "refers to vertex -1"),
        (writers.ascii_ply(TET, [(0, 1)]), "face 0 has 2 vertices"),
        (writers.binary_ply(TET, [(0, 1, 2), (0, 1)]), "face 1 has 2 vertices"),
        (
            writers.ascii_ply(TET, TET_FACES).replace(b"\n3 0 2 1\n", b"\n4 0 2 1\n"),
            "more than its line holds",
        ),
        (writers.ascii_ply(TET, TET_FACES).replace(b"\n0.0 0.0 0.0\n", b"\n0.0 0.0\n"), "has 2 values"),
        (writers.ascii_ply(TET, TET_FACES).replace(b"\n3 0 2 1\n", b"\n-3 0 2 1\n"), "bad list count"),
        (writers.ascii_ply(TET, TET_FACES).replace(b"element face", b"elephant face"), "header line"),
        (
            writers.ascii_ply(TET, TET_FACES).replace(b"property list uchar int", b"property list float int"),
            "list",
        ),
        (writers.ascii_stl(TET, TET_FACES).replace(b"vertex 0.0 0.0 0.0", b"vertex 0.0 0.0", 1), "not 3"),
        (writers.ascii_stl(TET, TET_FACES).replace(b"endloop", b"vertex 1 2 3\nendloop", 1), "4 vertices"),
        (
            writers.ascii_stl(TET, TET_FACES).replace(b"vertex 0.0 0.0 0.0", b"vertex 0.0 zero 0.0", 1),
            "not a number",
        ),
    ],
)
def test_malformed(data: bytes, says: str) -> None:
    assert says in str(refused(data, "malformed"))


def test_degenerate_faces() -> None:
    flat = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]]
    for data in (
        writers.binary_stl(flat, [(0, 1, 2)]),
        writers.obj(flat, [(0, 1, 2)]),
        writers.ascii_ply(flat, [(0, 1, 2)]),
    ):
        refused(data, "degenerate")


def test_point_clouds_are_empty() -> None:
    assert "point cloud" in str(refused(b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "empty"))
    ply = writers.ascii_ply(TET, []).replace(b"element face 0\n", b"")
    assert "point cloud" in str(refused(ply, "empty"))


def test_ascii_stl_cut_after_a_facet_is_truncated() -> None:
    data = writers.ascii_stl(TET, TET_FACES)
    cut = data.index(b"endfacet") + len(b"endfacet\n")
    assert "endsolid" in str(refused(data[:cut], "truncated"))
    assert "endloop" in str(refused(data[: data.index(b"endloop")], "truncated"))


def test_reader_errors_are_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(data: bytes, *, source: str, max_faces: int) -> Mesh:
        raise ValueError("boom")

    def exhaust(data: bytes, *, source: str, max_faces: int) -> Mesh:
        raise MemoryError

    data = writers.binary_stl(TET, TET_FACES)
    monkeypatch.setattr(stl_module, "read_stl", explode)
    assert "boom" in str(refused(data, "malformed"))
    monkeypatch.setattr(stl_module, "read_stl", exhaust)
    refused(data, "too_large")


# --- truncation and corruption never escape as anything but FeatureInputError --------------

BINARY_STL = writers.binary_stl(CUBE, CUBE_TRIANGLES)
BINARY_PLY = writers.binary_ply(MIXED, MIXED_FACES, extra_properties=True, extra_elements=True)
BINARY_PLY_HEADER = BINARY_PLY.index(b"end_header\n") + len(b"end_header\n")
TEXT_FILES = [
    writers.ascii_stl(CUBE, CUBE_TRIANGLES),
    writers.obj(MIXED, MIXED_FACES, style="slashes"),
    writers.ascii_ply(MIXED, MIXED_FACES, extra_properties=True, extra_elements=True),
]


def read_or_refuse(data: bytes) -> FeatureInputError | None:
    """Read ``data``: a Mesh or a FeatureInputError, and nothing else gets out."""
    try:
        read_mesh(data, source="cut")
    except FeatureInputError as error:
        return error
    return None


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(BINARY_STL) - 1))
def test_cut_binary_stl(cut: int) -> None:
    error = read_or_refuse(BINARY_STL[:cut])
    assert error is not None
    if cut >= 84:
        assert error.reason == "truncated", str(error)


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(BINARY_PLY) - 1))
def test_cut_binary_ply(cut: int) -> None:
    error = read_or_refuse(BINARY_PLY[:cut])
    assert error is not None
    if cut >= BINARY_PLY_HEADER:
        assert error.reason == "truncated", str(error)


@settings(max_examples=150, deadline=None)
@given(which=st.integers(0, len(TEXT_FILES) - 1), cut=st.floats(0, 1))
def test_cut_text_files(which: int, cut: float) -> None:
    data = TEXT_FILES[which]
    read_or_refuse(data[: int(cut * len(data))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, 1 + len(TEXT_FILES)),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_corrupted_files(which: int, flips: list[tuple[float, int]]) -> None:
    data = bytearray(([BINARY_STL, BINARY_PLY, *TEXT_FILES])[which])
    for where, value in flips:
        data[int(where * len(data))] = value
    read_or_refuse(bytes(data))


def test_struct_layout_of_writer_matches_reader() -> None:
    """The writer's binary STL record is the 50 bytes the reader's dtype expects."""
    assert struct.calcsize("<12fH") == stl_module._RECORD.itemsize == 50
