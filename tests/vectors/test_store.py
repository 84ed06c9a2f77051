"""VectorStore: records in and out, refusals that write nothing, reopening, checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics import Telemetry
from cadmetrics.errors import StoreCorruptError, VectorInputError, VectorStoreError
from cadmetrics.features.layout import LAYOUTS, Feature, FeatureLayout
from cadmetrics.vectors import Record, VectorStore
from tests.vectors.helpers import digest, record, records, vector_for


@pytest.fixture(params=["disk", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path, telemetry: Telemetry) -> Any:
    path = tmp_path / "store" if request.param == "disk" else None
    with VectorStore.open(path, telemetry=telemetry) as opened:
        yield opened


def test_records_come_back_exactly(store: VectorStore) -> None:
    store.add("a", vector_for("a", "v2"), version="v2", sha256=digest("a"), metadata={"part": "bracket"})
    store.add_many(records(5, "v4"))
    got = store.get("a")
    assert got is not None
    assert got == Record("a", vector_for("a", "v2"), "v2", digest("a"), {"part": "bracket"})
    assert store["r3"] == record("r3", "v4", {"index": 3, "even": False})
    assert len(store) == 6
    assert sorted(item.id for item in store) == ["a", "r0", "r1", "r2", "r3", "r4"]
    assert store.counts() == {"v1": 0, "v2": 1, "v3": 0, "v4": 5}
    assert store.get("missing") is None
    assert "a" in store and "missing" not in store


def test_delete_removes_and_frees_the_id(store: VectorStore) -> None:
    store.add_many(records(3))
    store.delete("r1")
    assert store.get("r1") is None
    assert len(store) == 2
    with pytest.raises(KeyError):
        store.delete("r1")
    store.add("r1", vector_for("again", "v2"), version="v2", sha256=digest("again"))
    assert np.array_equal(store["r1"].vector, vector_for("again", "v2"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vector": np.zeros(13)}, "a v2 vector has 14 values, got shape (13,)"),
        ({"vector": [float("nan")] * 14}, "value 0 (vertex_count) is nan"),
        ({"vector": [1e39] * 14}, "not finite in float32"),
        ({"version": "v9"}, "unknown feature version 'v9'"),
        ({"sha256": "xyz"}, "sha256 must be 64 lowercase hex digits"),
        ({"metadata": {"when": object()}}, "metadata is not JSON"),
        ({"metadata": {"x": float("nan")}}, "metadata is not JSON"),
        ({"id": ""}, "the id must be a non-empty string"),
        ({"id": "a\x00b"}, "NUL"),
        ({"id": "x" * 600}, "at most 512"),
    ],
)
def test_bad_records_are_refused_with_the_reason(
    store: VectorStore, change: dict[str, Any], message: str
) -> None:
    fields: dict[str, Any] = {
        "id": "good", "vector": vector_for("good", "v2"), "version": "v2", "sha256": digest("good"),
        "metadata": None,
    }  # fmt: skip
    fields.update(change)
    with pytest.raises(VectorInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        store.add(fields.pop("id"), fields.pop("vector"), **fields)
    assert len(store) == 0


def test_a_batch_with_one_bad_record_writes_nothing(store: VectorStore) -> None:
    batch = records(4)
    batch[2] = Record("r2", np.zeros(3, dtype=np.float32), "v2", digest("r2"))
    with pytest.raises(VectorInputError, match=r"record 'r2' \(item 2\)"):
        store.add_many(batch)
    assert len(store) == 0
    store.add_many(records(2))
    with pytest.raises(VectorInputError, match="already stored"):
        store.add_many([record("r5"), record("r1")])
    with pytest.raises(VectorInputError, match="repeats the id of item 0"):
        store.add_many([record("x"), record("x")])
    assert sorted(store.ids()) == ["r0", "r1"]


def test_large_batches_find_stored_ids_in_every_segment(tmp_path: Path) -> None:
    with VectorStore.open(tmp_path / "s", checkpoint_bytes=4000) as store:
        store.add_many(records(100))
        store.add_many(records(100, prefix="b"))
        store.delete("r5")
        store.checkpoint()
        store.add_many([record("r5"), *records(40, prefix="c")])  # a deleted id may come back
        with pytest.raises(VectorInputError, match=r"record 'b7' \(item 40\): the id is already stored"):
            store.add_many([*records(40, prefix="d"), record("b7")])
        assert len(store) == 240


def test_reopening_finds_every_record(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path, checkpoint_bytes=4096) as store:  # several checkpoints on the way
        store.add_many(records(40, "v2"))
        store.add_many(records(30, "v4", prefix="m"))
        for index in range(0, 40, 3):
            store.delete(f"r{index}")
        expected = {item.id: item for item in store}
    with VectorStore.open(path) as store:
        assert {item.id: item for item in store} == expected
        assert store.problems == []
        assert store.verify() == []


def test_a_store_left_open_is_recovered_from_its_log(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = VectorStore.open(path)
    store.add_many(records(5))
    store.delete("r2")
    store._lock_file.close()  # as if the process had died: no checkpoint, no close
    with VectorStore.open(path) as again:
        assert sorted(again.ids()) == ["r0", "r1", "r3", "r4"]


def test_compaction_drops_deleted_rows_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path, checkpoint_bytes=2048) as store:
        for start in range(0, 60, 20):
            store.add_many(records(60)[start : start + 20])
        for index in range(0, 60, 2):
            store.delete(f"r{index}")
        store.checkpoint()
        assert store.stats()["segments"] > 1
        before = {item.id: item for item in store}
        store.compact()
        assert store.stats()["segments"] == 1
        assert {item.id: item for item in store} == before
    segments = list((path / "segments").iterdir())
    assert len(segments) == 1  # replaced segments are removed


def test_a_bulk_load_goes_straight_into_segments(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path, checkpoint_bytes=10_000) as store:
        store.add_many(records(3, prefix="small"))  # in the log
        store.add_many(records(400, "v4"))  # 78 kB: written as a segment, the log's records too
        assert store.stats()["log_bytes"] == len(b"CMVLOG1\n")
        assert store.stats()["segments"] == 2
        expected = {item.id: item for item in store}
    with VectorStore.open(path) as store:
        assert {item.id: item for item in store} == expected


def test_many_small_checkpoints_are_merged(tmp_path: Path) -> None:
    with VectorStore.open(tmp_path / "store", checkpoint_bytes=512) as store:
        for index in range(40):
            store.add_many(records(3, prefix=f"b{index}-"))
        assert store.stats()["segments"] <= 9
        assert len(store) == 120


def test_one_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path):
        with pytest.raises(VectorStoreError, match="another process has it open"):
            VectorStore.open(path)
        script = f"from cadmetrics.vectors import VectorStore; VectorStore.open({str(path)!r})"
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
        assert child.returncode != 0
        assert "another process has it open" in child.stderr
    VectorStore.open(path).close()


def test_a_directory_of_other_files_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(VectorStoreError, match="not a vector store"):
        VectorStore.open(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_layouts_are_recorded_and_checked(tmp_path: Path) -> None:
    custom = {"v1": FeatureLayout("v1", (Feature("a", "", group="g", default=1.5), Feature("b", "")))}
    with VectorStore.open(tmp_path / "s", layouts=custom) as store:
        store.add("x", [1, 2], version="v1", sha256=digest("x"))
    with VectorStore.open(tmp_path / "s") as store:  # the store remembers its layouts
        assert store.layouts["v1"].names == ("a", "b")
        assert store.layouts["v1"].features[0].default == 1.5
    with pytest.raises(VectorStoreError, match="v1 layout differs"):
        VectorStore.open(tmp_path / "s", layouts=LAYOUTS)


def test_damage_is_reported_not_repaired(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path) as store:
        store.add_many(records(10))
    segment = next((path / "segments").iterdir())
    vectors = segment / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with VectorStore.open(path) as store:
        assert any("CRC-32 does not match" in problem for problem in store.verify())
    vectors.write_bytes(bytes(data[:-4]))
    with pytest.raises(StoreCorruptError, match="bytes where the manifest records"):
        VectorStore.open(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreCorruptError, match=r"manifest\.json: not JSON at line 1"):
        VectorStore.open(path)
    (path / "manifest.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(StoreCorruptError, match="format 99"):
        VectorStore.open(path)


def test_a_torn_log_tail_is_cut_off_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = VectorStore.open(path)
    store.add_many(records(3))
    store._lock_file.close()
    log = next(path.glob("log-*.wal"))
    with open(log, "ab") as file:
        file.write(b"\x40\x00\x00\x00garbage-of-an-interrupted-write")
    with VectorStore.open(path) as again:
        assert sorted(again.ids()) == ["r0", "r1", "r2"]
        assert len(again.problems) == 1
        assert "torn by a crash" in again.problems[0]
        again.add_many(records(2, prefix="after"))
    assert list(path.glob("log-*.wal.torn-*"))
    with VectorStore.open(path) as again:
        assert len(again) == 5


def test_the_stored_gauge_follows_every_change(tmp_path: Path, telemetry: Telemetry, metrics: Any) -> None:
    with VectorStore.open(tmp_path / "s", telemetry=telemetry) as store:
        store.add_many(records(4, "v3"))
        assert metrics.value("cadmetrics_vectors_stored", version="v3") == 4
        store.delete("r0")
        assert metrics.value("cadmetrics_vectors_stored", version="v3") == 3
        assert metrics.value("cadmetrics_vectors_stored", version="v1") == 0


def test_features_from_the_extractor_go_in_by_their_hash(store: VectorStore) -> None:
    from cadmetrics.features.extractor import FeatureExtractor
    from tests.features.shapes import box

    vector = FeatureExtractor("v2").extract(box())
    key = store.add_features(vector, metadata={"shape": "box"})
    assert key == vector.sha256
    assert store[key].sha256 == vector.sha256.removeprefix("mesh-")  # the hash of the mesh's arrays
    assert np.array_equal(store[key].vector, vector.values.astype(np.float32))


def test_a_read_only_view_beside_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with pytest.raises(VectorStoreError, match="no vector store here"):
        VectorStore.open(path, read_only=True)
    with VectorStore.open(path, checkpoint_bytes=3000) as writer:
        writer.add_many(records(30))
        writer.add_many(records(5, prefix="recent"))  # still in the log
        reader = VectorStore.open(path, read_only=True)  # the writer keeps its lock
        assert len(reader) == 35
        assert reader["recent1"] == writer["recent1"]
        with pytest.raises(VectorStoreError, match="opened read-only"):
            reader.add_many(records(1, prefix="x"))
        with pytest.raises(VectorStoreError, match="opened read-only"):
            reader.migrate(reader.plan_migration("v3"))
        reader.close()
        writer.add_many(records(1, prefix="later"))
    with VectorStore.open(path) as store:
        assert len(store) == 36


def test_baselines_are_kept_with_the_store(tmp_path: Path) -> None:
    from cadmetrics.drift import Baseline

    path = tmp_path / "store"
    with VectorStore.open(path) as store:
        store.add_many(records(50, "v4"))
        baseline = Baseline.from_vectors(
            store.vectors("v4"), layout=store.layouts["v4"], source="test store", created_at=1_700_000_000.0
        )
        assert store.save_baseline(baseline, "june") == path / "baselines" / "june.npz"
        with pytest.raises(VectorInputError, match="a baseline name is letters"):
            store.save_baseline(baseline, "../elsewhere")
    with VectorStore.open(path) as store:  # a checkpoint or reopen leaves baselines alone
        loaded = store.load_baseline("june")
        assert loaded.same_as(baseline)
        assert loaded.created_at == 1_700_000_000.0
        assert loaded.version == "v4"
    with pytest.raises(VectorStoreError, match="nowhere to save a baseline"):
        VectorStore.open(None).save_baseline(baseline)


def test_a_closed_store_refuses_to_migrate(tmp_path: Path) -> None:
    store = VectorStore.open(tmp_path / "s")
    store.add_many(records(3))
    plan = store.plan_migration("v3")
    store.close()
    with pytest.raises(VectorStoreError, match="it is closed"):
        store.migrate(plan)
    with pytest.raises(VectorStoreError, match="it is closed"):
        store.add_many(records(1, prefix="late"))


def test_a_read_only_view_keeps_reading_after_the_writer_merges(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path, checkpoint_bytes=2000) as writer:
        for start in range(0, 90, 30):
            writer.add_many(records(90)[start : start + 30])
        writer.checkpoint()
        reader = VectorStore.open(path, read_only=True)
        writer.delete("r1")
        writer.compact()  # the reader's segments are removed from the directory
        assert len(reader) == 90
        assert reader["r5"].metadata == {"index": 5, "even": False}
        hits = reader.search(reader["r5"].vector, 3, filter={"even": False})
        assert hits[0].id == "r5"
        reader.close()


def test_the_approximate_index_outlives_checkpoints(tmp_path: Path) -> None:
    pytest.importorskip("faiss", reason="approximate search needs the ann extra (faiss-cpu)")
    with VectorStore.open(tmp_path / "s") as store:
        store.add_many(records(50, "v3"))
        store.build_index("v3")
        store.add_many(records(5, "v3", prefix="new"))
        store.checkpoint()
        hits = store.search(store["new1"].vector, 1, method="ann")
        assert hits[0].id == "new1"


def test_merging_keeps_the_order_records_were_written_in(tmp_path: Path) -> None:
    with VectorStore.open(tmp_path / "s", checkpoint_bytes=1) as store:  # a segment per write
        twin = record("first").vector
        store.add("first", twin, version="v2", sha256=digest("first"))
        for index in range(12):
            store.add_many(records(2, prefix=f"b{index}-"))
        store.add("second", twin, version="v2", sha256=digest("second"))
        assert store.stats()["segments"] <= 8  # merges happened
        ids = store.ids()
        assert ids[0] == "first"
        assert ids[-1] == "second"
        assert [hit.id for hit in store.search(twin, 2)] == ["first", "second"]  # a tie: the older first


def test_a_failed_checkpoint_leaves_the_store_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cadmetrics.vectors._engine.manifest as module
    from cadmetrics.durable import write_atomically as real

    path = tmp_path / "store"
    failures = iter([True, True])

    def full_disk(target: Path, data: bytes) -> None:
        if next(failures, False):
            raise OSError(28, "No space left on device")
        real(target, data)

    store = VectorStore.open(path, checkpoint_bytes=2000)
    monkeypatch.setattr(module, "write_atomically", full_disk)
    store.add_many(records(30))  # logged; its automatic checkpoint fails: the write stands, noted
    assert "checkpoint failed" in store.problems[0]
    with pytest.raises(OSError, match="No space left"):
        store.checkpoint()
    assert not list((path / "segments").iterdir())  # the failed attempts left nothing behind
    store.add_many(records(3, prefix="more"))
    store.close()
    with VectorStore.open(path) as again:
        assert len(again) == 33


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"generation": None}, "'generation' is missing or not a int"),
        ({"segments": None}, "'segments' is missing or not a list"),
        ({"segments": [{"name": "x"}]}, "a segment entry is damaged"),
        ({"log": "../elsewhere.wal"}, "log or migration entry is damaged"),
    ],
)
def test_a_damaged_manifest_is_reported_by_name(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path) as store:
        store.add_many(records(3))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(entry)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreCorruptError, match=r"manifest\.json: .*" + message.replace("(", r"\(")):
        VectorStore.open(path)


def test_ids_are_strings_and_metadata_survives_json(store: VectorStore) -> None:
    with pytest.raises(VectorInputError, match="ids are strings"):
        store.get(123)  # type: ignore[arg-type]
    with pytest.raises(VectorInputError, match="does not survive JSON unchanged"):
        store.add("a", record("a").vector, version="v2", sha256=digest("a"), metadata={1: "one"})  # type: ignore[dict-item]
