"""A batch given as columns: stored whole as one segment, checked as a whole, refused by item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cadmetrics.errors import VectorInputError
from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors import VectorStore
from tests.vectors.helpers import digest, record, vector_for


def _columns(count: int, version: str = "v4", prefix: str = "c") -> tuple[list[str], np.ndarray]:
    ids = [f"{prefix}{n}" for n in range(count)]
    return ids, np.stack([vector_for(id, version) for id in ids])


def test_columns_are_stored_as_records_and_survive_a_crash(tmp_path: Path) -> None:
    ids, vectors = _columns(300)
    store = VectorStore.open(tmp_path / "store")
    store.add("before", record("before", "v4").vector, version="v4", sha256=digest("before"))
    digests = [digest(id) if n % 2 else None for n, id in enumerate(ids)]
    metadata = [{"n": n} for n in range(300)]
    assert store.add_columns(ids, vectors, version="v4", sha256=digests, metadata=metadata) == 300
    store._lock_file.close()  # the process dies: no checkpoint, no close
    with VectorStore.open(tmp_path / "store") as again:
        assert len(again) == 301
        assert again.stats()["segments"] == 2  # the bulk segment, and the earlier write checkpointed with it
        got = again["c7"]
        assert np.array_equal(got.vector, vectors[7])
        assert got.sha256 == digest("c7")
        assert got.metadata == {"n": 7}
        assert again["c8"].sha256 is None  # stored without a content hash
        assert [hit.id for hit in again.search(vectors[42], 1)] == ["c42"]


def test_columns_in_memory_are_found_and_searched() -> None:
    ids, vectors = _columns(50, "v2")
    store = VectorStore.open(None)
    store.add_columns(ids, vectors, version="v2")
    assert store.counts()["v2"] == 50
    assert "c49" in store
    store.delete("c3")
    assert [hit.id for hit in store.search(vectors[3], 1)] != ["c3"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda ids, v: ([*ids[:2], "c0", *ids[3:]], v),
            r"record 'c0' \(item 2\): the batch repeats the id of item 0",
        ),
        (
            lambda ids, v: ([*ids[:1], "", *ids[2:]], v),
            r"record \(item 1\): the id must be a non-empty string",
        ),
        (lambda ids, v: ([*ids[:1], "a\x00b", *ids[2:]], v), r"item 1\): the id holds a NUL"),
        (lambda ids, v: ([*ids[:1], "x" * 600, *ids[2:]], v), r"item 1\): the id is 600 bytes long"),
        (lambda ids, v: (ids[:-1], v), "9 ids for 10 vectors"),
        (lambda ids, v: (ids, v[:, :5]), r"v4 vectors are rows of \d+ values, got shape \(10, 5\)"),
        (
            lambda ids, v: (ids, np.where(np.arange(10)[:, None] == 6, np.float64(1e39), v)),
            r"record 'c6' \(item 6\): value 0 \(.*\) is not finite",
        ),
    ],
)
def test_a_bad_batch_is_refused_whole_naming_the_item(change: object, message: str) -> None:
    store = VectorStore.open(None)
    ids, vectors = change(*_columns(10))  # type: ignore[operator]
    with pytest.raises(VectorInputError, match=message):
        store.add_columns(ids, vectors, version="v4")
    assert len(store) == 0


def test_ids_already_stored_and_bad_digests_are_refused(tmp_path: Path) -> None:
    ids, vectors = _columns(5)
    with VectorStore.open(tmp_path / "store") as store:
        store.add_columns(ids, vectors, version="v4")
        with pytest.raises(VectorInputError, match=r"record 'c2' \(item 1\): the id is already stored"):
            store.add_columns(["new", "c2"], vectors[:2], version="v4")
        with pytest.raises(
            VectorInputError, match=r"record 'n1' \(item 1\): sha256 must be 64 lowercase hex"
        ):
            store.add_columns(["n0", "n1"], vectors[:2], version="v4", sha256=[None, "xyz"])
        with pytest.raises(VectorInputError, match="unknown feature version 'v9'"):
            store.add_columns(["n0"], vectors[:1], version="v9")
        assert len(store) == 5


def test_an_upgrade_fills_records_without_content_and_the_plan_says_so(tmp_path: Path) -> None:
    store = VectorStore.open(None)
    ids, vectors = _columns(6, "v2")
    store.add_columns(
        ids, vectors, version="v2", sha256=[digest(id) if n < 2 else None for n, id in enumerate(ids)]
    )
    plan = store.plan_migration("v4")
    assert plan.without_content == {"v2": 4}
    assert "4 of them have no content hash" in plan.describe()
    asked: list[str] = []

    def content(sha256: str) -> bytes | None:
        asked.append(sha256)
        return None

    from cadmetrics import FeatureExtractor

    result = store.migrate(plan, extractor=FeatureExtractor("v4"), content=content)
    assert sorted(asked) == sorted(digest(id) for id in ids[:2])  # never asked for the others
    assert result.methods == {"filled": 6}
    assert all(item.filled for item in store)
    assert LAYOUTS["v4"].dimension == store["c5"].vector.size


def test_digests_of_the_wrong_length_are_refused_even_when_their_lengths_add_up() -> None:
    store = VectorStore.open(None)
    ids, vectors = _columns(2)
    with pytest.raises(VectorInputError, match=r"record 'c0' \(item 0\): sha256 must be 64 lowercase hex"):
        store.add_columns(ids, vectors, version="v4", sha256=["a" * 63, "a" * 65])
    with pytest.raises(VectorInputError, match=r"record 'c1' \(item 1\): sha256 must be 64 lowercase hex"):
        store.add_columns(ids, vectors, version="v4", sha256=["a" * 64, "A" * 64])
    store.add_columns(ids, vectors, version="v4", sha256=["a" * 64, "0" * 63 + "1"])
    assert store["c1"].sha256 == "0" * 63 + "1"
