"""Baselines: made from vectors with clear refusals, bounded in size, and kept in one file that
reads back exactly, with the time it was made, so that its age survives a restart."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from cadmetrics.drift.baseline import FORMAT, FORMAT_VERSION, Baseline
from cadmetrics.drift.statistics import bin_counts
from cadmetrics.errors import CadMetricsError, DriftError
from cadmetrics.features.layout import LAYOUTS

FloatArray = npt.NDArray[np.float64]
V2 = LAYOUTS["v2"]  # 14 features: size and shape groups
MADE_AT = 1_700_000_000.5


def vectors(rows: int, width: int = V2.dimension, seed: int = 0) -> FloatArray:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, width))
    data[:, -1] = data[:, -1] > 0  # a 0/1 column, like watertight
    return data


def baseline(rows: int = 3000, *, sample_size: int = 2048, seed: int = 0) -> Baseline:
    return Baseline.from_vectors(
        vectors(rows),
        layout=V2,
        source="store /data at generation 12",
        created_at=MADE_AT,
        sample_size=sample_size,
        seed=seed,
    )


def test_a_baseline_from_a_layout_takes_its_names_groups_and_version() -> None:
    made = baseline()
    assert made.names == V2.names and made.groups == V2.groups and made.version == "v2"
    assert made.group_names == ("size", "shape")
    assert made.count == 3000 and made.created_at == MADE_AT
    assert made.source == "store /data at generation 12"
    assert made.bins == 10 and made.dimension == 14
    assert made.edges.shape == (9, 14) and made.proportions.shape == (10, 14)
    assert np.allclose(made.proportions.sum(axis=0), 1.0)


def test_names_and_groups_may_be_given_instead_with_one_group_by_default() -> None:
    named = Baseline.from_vectors(vectors(50, 3), names=["a", "b", "c"], source="x", version="v9")
    assert named.names == ("a", "b", "c") and named.groups == ("all",) * 3 and named.version == "v9"
    anonymous = Baseline.from_vectors(vectors(50, 2), groups=["g", "h"], source="x")
    assert anonymous.names == ("f0", "f1") and anonymous.group_names == ("g", "h")
    assert anonymous.version is None


def test_the_reference_is_a_bounded_sorted_sample_fixed_by_the_seed() -> None:
    made = baseline(rows=5000, sample_size=256, seed=3)
    assert made.reference.shape == (256, 14)
    assert (np.diff(made.reference, axis=0) >= 0).all()
    assert np.array_equal(made.reference, baseline(rows=5000, sample_size=256, seed=3).reference)
    assert not np.array_equal(made.reference, baseline(rows=5000, sample_size=256, seed=4).reference)
    small = baseline(rows=100)
    assert np.array_equal(small.reference, np.sort(vectors(100), axis=0))  # every row when few


def test_proportions_count_every_row_even_beyond_the_sample_and_the_chunks() -> None:
    made = baseline(rows=20_000, sample_size=500)
    direct = bin_counts(vectors(20_000), made.edges) / 20_000
    assert np.array_equal(made.proportions, direct)
    assert made.count == 20_000


def test_a_memory_mapped_array_is_read_in_place(tmp_path: Path) -> None:
    data = vectors(10_000)
    np.save(tmp_path / "rows.npy", data)
    mapped = np.load(tmp_path / "rows.npy", mmap_mode="r")
    made = Baseline.from_vectors(mapped, layout=V2, source="mapped", created_at=MADE_AT)
    assert made.same_as(Baseline.from_vectors(data, layout=V2, source="mapped", created_at=MADE_AT))


def test_arrays_are_the_baselines_own_and_read_only() -> None:
    data = vectors(100)
    made = Baseline.from_vectors(data, layout=V2, source="x")
    data[:] = 0.0
    assert made.reference.any()
    with pytest.raises(ValueError, match="read-only"):
        made.proportions[0, 0] = 1.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: Baseline.from_vectors(vectors(10, 5), layout=V2, source="s"),
            r"'s': vectors have 5 features, layout v2 has 14",
            id="width-against-layout",
        ),
        pytest.param(
            lambda: Baseline.from_vectors(vectors(1), layout=V2, source="s"),
            r"at least 2 rows; 's' gave 1",
            id="one-row",
        ),
        pytest.param(
            lambda: Baseline.from_vectors(np.zeros(14), layout=V2, source="s"),
            r"\(rows, features\) array, not of shape \(14,\)",
            id="one-vector",
        ),
        pytest.param(
            lambda: Baseline.from_vectors(vectors(10, 3), names=["a", "b"], source="s"),
            "3 features but 2 names",
            id="names",
        ),
        pytest.param(
            lambda: Baseline.from_vectors(vectors(10, 2), names=["a", "b"], groups=["g"], source="s"),
            "1 groups for 2 names",
            id="groups",
        ),
        pytest.param(
            lambda: Baseline.from_vectors(vectors(10), layout=V2, names=V2.names, source="s"),
            "a layout or names and groups, not both",
            id="layout-and-names",
        ),
        pytest.param(
            lambda: Baseline.from_vectors(vectors(10), layout=V2, version="v4", source="s"),
            "version 'v4' but layout 'v2'",
            id="version",
        ),
        pytest.param(
            lambda: Baseline.from_vectors(vectors(10, 2), names="ab", source="s"),
            "not the string 'ab'",
            id="names-as-one-string",
        ),
        pytest.param(
            lambda: Baseline.from_vectors(vectors(10, 2), names=["a", "a"], source="s"),
            r"names repeat: \['a'\]",
            id="repeated-names",
        ),
        pytest.param(
            lambda: Baseline.from_vectors([[1.0, 2.0], [3.0]], source="s"),
            "'s' are not a table of numbers",
            id="ragged",
        ),
        pytest.param(
            lambda: Baseline.from_vectors([["1", "x"], ["2", "3"]], source="s"),
            "rows 0 to 1 are not numbers",
            id="not-numbers",
        ),
    ],
)
def test_unusable_input_is_refused_saying_what_and_where(make: Callable[[], Baseline], message: str) -> None:
    with pytest.raises(DriftError, match=message) as caught:
        make()
    assert isinstance(caught.value, CadMetricsError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_is_refused_naming_its_row_and_feature(bad: float) -> None:
    data = vectors(20_000)
    data[12_345, V2.index("sphericity")] = bad  # in the second chunk
    with pytest.raises(DriftError, match=rf"row 12345, feature 'sphericity' is {bad}"):
        Baseline.from_vectors(data, layout=V2, source="s")


# -- age --------------------------------------------------------------------------------------


def test_age_is_measured_from_when_it_was_made() -> None:
    made = baseline()
    assert made.age(MADE_AT + 90) == 90.0
    assert made.age(MADE_AT - 5) == 0.0  # a clock behind the maker's never gives a negative age
    assert Baseline.from_vectors(vectors(10), layout=V2, source="now").age() < 60


# -- the file ---------------------------------------------------------------------------------


def test_a_saved_baseline_loads_back_exactly_with_its_original_time(tmp_path: Path) -> None:
    made = baseline()
    path = made.save(tmp_path / "baseline.npz")
    loaded = Baseline.load(path)
    assert loaded.same_as(made)
    assert loaded.created_at == MADE_AT and loaded.source == made.source and loaded.version == "v2"
    assert loaded.age(MADE_AT + 3600) == 3600.0  # after a restart, still its true age
    assert path.read_bytes() == made.to_bytes()  # the same baseline, the same bytes
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.npz"]  # no temporary left


def test_unknown_versions_and_odd_sources_round_trip(tmp_path: Path) -> None:
    made = Baseline.from_vectors(
        vectors(30, 2), names=["é", "x y"], groups=["ü", "ü"], source='"quoted"\nand ünïcode', created_at=0.1
    )
    assert Baseline.load(made.save(tmp_path / "b.npz")).same_as(made)


def test_the_file_is_a_plain_npz_that_holds_no_code(tmp_path: Path) -> None:
    path = baseline().save(tmp_path / "baseline.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["edges", "header", "proportions", "reference"]
        header = json.loads(archive["header"].tobytes())
    assert header["format"] == FORMAT and header["format_version"] == FORMAT_VERSION
    assert header["created_at"] == MADE_AT


def rewrite(path: Path, change: dict[str, object] | None = None, drop: str | None = None) -> None:
    """Rewrite the baseline file at ``path`` with its header changed or a member dropped."""
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files if name != drop}
    if change is not None:
        header = json.loads(members["header"].tobytes())
        header.update(change)
        members["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    path.write_bytes(buffer.getvalue())


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DriftError, match=r"nowhere\.npz: no such drift baseline file"):
        Baseline.load(tmp_path / "nowhere.npz")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda p: p.write_text("just text"), "not a drift baseline", id="text"),
        pytest.param(lambda p: p.write_bytes(b""), "not a drift baseline", id="empty"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
            "not a drift baseline",
            id="truncated",
        ),
        pytest.param(
            lambda p: rewrite(p, drop="header"), r"not a drift baseline \(no header", id="no-header"
        ),
        pytest.param(
            lambda p: rewrite(p, {"format": "something-else"}), "format is not 'cadmetrics-drift", id="format"
        ),
        pytest.param(
            lambda p: rewrite(p, {"format_version": 7}),
            "format version 7 is not supported .*reads version 1.*make the baseline again",
            id="future-version",
        ),
        pytest.param(
            lambda p: rewrite(p, drop="reference"), "damaged .*reference missing", id="no-reference"
        ),
        pytest.param(
            lambda p: rewrite(p, {"names": ["a"]}),
            "damaged drift baseline: .*14 groups for 1 names",
            id="names",
        ),
        pytest.param(lambda p: rewrite(p, {"count": "many"}), "damaged drift baseline header", id="count"),
    ],
)
def test_a_file_that_is_not_a_good_baseline_is_refused_by_name(
    tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    path = baseline().save(tmp_path / "baseline.npz")
    damage(path)
    with pytest.raises(DriftError, match=message) as caught:
        Baseline.load(path)
    assert str(path) in str(caught.value)


def test_a_pickled_member_is_refused_not_run(tmp_path: Path) -> None:
    path = tmp_path / "baseline.npz"
    buffer = io.BytesIO()
    np.savez(buffer, header=np.array([{"format": FORMAT}], dtype=object))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DriftError, match="not a drift baseline"):
        Baseline.load(path)


def test_arrays_that_contradict_each_other_are_refused(tmp_path: Path) -> None:
    path = baseline().save(tmp_path / "baseline.npz")
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    members["proportions"] = members["proportions"] * 2
    members["edges"] = members["edges"][::-1]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in members.items():
            with archive.open(name + ".npy", "w") as member:
                np.lib.format.write_array(member, array)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DriftError, match=r"edges are not ascending.*do not add up to 1"):
        Baseline.load(path)
