"""Geometry against exact answers on primitives, and against trimesh as an independent oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cadmetrics.errors import FeatureInputError
from cadmetrics.features.geometry import Geometry, entropy_bits, symmetric_eigenvalues
from cadmetrics.features.mesh import Mesh
from tests.features.shapes import box, box_inertia, cylinder, cylinder_answers, open_faces, sphere, torus

trimesh = pytest.importorskip("trimesh")


def test_a_box_has_its_exact_measures() -> None:
    g = Geometry(box(1.0, 2.0, 3.0))
    assert g.area == pytest.approx(22.0, rel=1e-15)
    assert g.volume == pytest.approx(6.0, rel=1e-15)
    assert g.extents == (3.0, 2.0, 1.0)
    assert g.principal_moments == pytest.approx(box_inertia(1.0, 2.0, 3.0), rel=1e-12)
    assert g.hull_volume == pytest.approx(6.0, rel=1e-12)
    assert (g.vertex_count, g.euler_characteristic, g.watertight) == (8, 2, True)
    assert sorted(g.patch_areas(20.0).tolist()) == pytest.approx([2.0, 2.0, 3.0, 3.0, 6.0, 6.0])


def test_a_cylinder_has_three_surfaces_and_its_prism_measures() -> None:
    g = Geometry(cylinder(1.0, 2.0, 64))
    area, volume = cylinder_answers(1.0, 2.0, 64)
    assert g.area == pytest.approx(area, rel=1e-12)
    assert g.volume == pytest.approx(volume, rel=1e-12)
    assert len(g.patch_areas(20.0)) == 3
    assert len(g.patch_areas(1.0)) == 2 + 64  # a tolerance below the facet angle splits the side


def test_sphere_and_torus_topology() -> None:
    assert Geometry(sphere()).euler_characteristic == 2
    assert Geometry(torus()).euler_characteristic == 0  # genus 1
    assert len(Geometry(torus()).patch_areas(20.0)) == 1


def test_an_open_mesh_encloses_nothing() -> None:
    g = Geometry(open_faces(box()))
    assert not g.watertight
    assert g.volume == 0.0
    assert g.area == pytest.approx(22.0 - 3.0)  # half of the 2 x 3 side at x = 0 is gone
    assert g.euler_characteristic == 1


@pytest.mark.parametrize("shape", [box(1, 2, 3), cylinder(), sphere(), torus()], ids=lambda m: m.source)
def test_measures_agree_with_trimesh_on_primitives(shape: Mesh) -> None:
    _agree_with_trimesh(shape)


def _agree_with_trimesh(mesh: Mesh) -> None:
    g = Geometry(mesh)
    other = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert g.area == pytest.approx(other.area, rel=1e-9)
    assert g.watertight == other.is_watertight
    assert g.euler_characteristic == other.euler_number
    assert g.winding_consistent == other.is_winding_consistent
    if other.is_watertight and other.is_winding_consistent:
        assert g.volume > 0
        assert abs(g.signed_volume) == pytest.approx(abs(other.volume), rel=1e-9)
        scale = np.abs(other.moment_inertia).max()
        assert np.allclose(g.solid_inertia, np.sign(other.volume) * other.moment_inertia, atol=1e-9 * scale)
    used = mesh.vertices[np.unique(mesh.faces)]  # the hull of what the faces use
    assert g.hull_volume == pytest.approx(trimesh.convex.convex_hull(used).volume, rel=1e-9)


def test_measures_agree_with_trimesh_on_real_parts(cad_samples: object) -> None:
    from pathlib import Path

    from cadmetrics.features.formats import read_mesh

    root = Path(str(cad_samples))
    checked = 0
    for path in (
        sorted((root / "stl").iterdir()) + sorted((root / "ply").iterdir()) + sorted((root / "obj").iterdir())
    ):
        mesh = read_mesh(path.read_bytes(), source=str(path))
        _agree_with_trimesh(mesh)
        checked += 1
    assert checked >= 20


def test_closed_form_eigenvalues_match_numpy() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        a = rng.normal(size=(3, 3))
        symmetric = a + a.T
        assert symmetric_eigenvalues(symmetric) == pytest.approx(np.linalg.eigvalsh(symmetric), abs=1e-9)
    assert symmetric_eigenvalues(np.diag([3.0, 1.0, 2.0])) == (1.0, 2.0, 3.0)


def test_entropy_in_bits() -> None:
    assert entropy_bits(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(2.0)
    assert entropy_bits(np.array([5.0, 0.0])) == 0.0
    assert entropy_bits(np.zeros(3)) == 0.0


def test_d2_is_a_distribution_and_is_reproducible() -> None:
    g = Geometry(sphere())
    first = g.d2_histogram(4096, 32, 3.0)
    assert first.sum() == pytest.approx(1.0)
    assert (first >= 0).all()
    assert np.array_equal(first, Geometry(sphere()).d2_histogram(4096, 32, 3.0))
    # on a sphere, chords over their mean lie in (0, 2 / (4/3)]: nothing past 1.5 of the mean
    assert first[int(1.5 / 3.0 * 32) + 1 :].sum() == 0.0
    assert math.isclose(first[: int(1.5 / 3.0 * 32) + 1].sum(), 1.0)


def test_mesh_checks_name_the_problem() -> None:
    with pytest.raises(FeatureInputError, match="vertex 1 has a NaN") as caught:
        Mesh.from_arrays([[0, 0, 0], [np.nan, 0, 0], [0, 1, 0]], [[0, 1, 2]], source="part.stl")
    assert caught.value.reason == "non_finite"
    with pytest.raises(FeatureInputError, match="face 0 refers to vertex") as caught:
        Mesh.from_arrays([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 3]])
    assert caught.value.reason == "malformed"
    with pytest.raises(FeatureInputError, match="zero area") as caught:
        Mesh.from_arrays([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]])
    assert caught.value.reason == "degenerate"
    with pytest.raises(FeatureInputError, match="no geometry") as caught:
        Mesh.from_arrays(np.zeros((0, 3)), np.zeros((0, 3)))
    assert caught.value.reason == "empty"
    with pytest.raises(FeatureInputError, match=r"shape \(n, 3\)"):
        Mesh.from_arrays([[0, 0], [1, 0], [0, 1]], [[0, 1, 2]])
