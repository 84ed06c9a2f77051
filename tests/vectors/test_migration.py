"""Migrations: features matched by name, up then down exact, re-extraction from real parts,
checkpoints that survive a crash, and the switch to the new version in one step."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadmetrics import FeatureExtractor, Telemetry
from cadmetrics.errors import VectorInputError, VectorStoreError
from cadmetrics.features.layout import Feature, FeatureLayout
from cadmetrics.vectors import Record, VectorStore
from tests.conftest import REPOSITORY
from tests.vectors.helpers import digest, records

VERSIONS = ["v1", "v2", "v3", "v4"]


@settings(max_examples=40, deadline=None)
@given(
    pair=st.sampled_from([(a, b) for a in VERSIONS for b in VERSIONS if a < b]),
    count=st.integers(1, 60),
    batch_size=st.integers(1, 25),
    seed=st.integers(0, 2**31),
)
def test_up_then_down_returns_the_original_vectors_exactly(
    pair: tuple[str, str], count: int, batch_size: int, seed: int
) -> None:
    low, high = pair
    store = VectorStore.open(None)
    rng = np.random.default_rng(seed)
    dimension = store.layouts[low].dimension
    originals = [
        Record(f"r{n}", rng.standard_normal(dimension).astype(np.float32), low, digest(str(n)), {"n": n})
        for n in range(count)
    ]
    store.add_many(originals)
    store.migrate(store.plan_migration(high), batch_size=batch_size)
    assert store.counts()[high] == count
    assert all(item.filled for item in store)  # the new features were filled, and say so
    store.migrate(store.plan_migration(low), batch_size=batch_size)
    assert sorted(store, key=lambda item: item.id) == sorted(originals, key=lambda item: item.id)


def test_up_then_down_on_disk_is_exact_and_filled_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path) as store:
        store.add_many(records(30, "v2"))
        store.add_many(records(20, "v4", prefix="m"))
        before = {item.id: item for item in store}
        result = store.migrate(store.plan_migration("v3"), batch_size=7)
        assert result.methods == {"filled": 30, "projected": 20}
    with VectorStore.open(path) as store:  # the migration is durable
        assert store.counts() == {"v1": 0, "v2": 0, "v3": 50, "v4": 0}
        assert store["r0"].filled and not store["m0"].filled
        d2 = store.layouts["v3"].index("d2_bin_00")
        assert store["r0"].vector[d2] == 0.0  # the declared default
        store.migrate(store.plan_migration("v2"))
        for id, original in before.items():
            if original.version == "v2":
                assert store[id] == original


def test_features_are_matched_by_name_not_position() -> None:
    first = FeatureLayout("v1", (Feature("a", ""), Feature("b", "", default=-1.0), Feature("c", "")))
    second = FeatureLayout("v2", (Feature("c", ""), Feature("x", "", default=7.0), Feature("a", "")))
    store = VectorStore.open(None, layouts={"v1": first, "v2": second})
    store.add("one", [1.0, 2.0, 3.0], version="v1", sha256=digest("one"))
    plan = store.plan_migration("v2")
    assert plan.dropped == {"v1": ("b",)}
    assert plan.missing == {"v1": ("x",)}
    assert plan.dimension_delta == {"v1": 0}
    store.migrate(plan)
    assert store["one"].vector.tolist() == [3.0, 7.0, 1.0]
    assert store["one"].filled
    store.migrate(store.plan_migration("v1"))
    assert store["one"].vector.tolist() == [1.0, -1.0, 3.0]  # b was dropped: its default comes back
    assert store["one"].filled


def test_the_plan_is_a_dry_run_that_goes_stale(tmp_path: Path) -> None:
    with VectorStore.open(tmp_path / "s") as store:
        store.add_many(records(10, "v1") + records(5, "v4", prefix="m") + records(3, "v3", prefix="k"))
        plan = store.plan_migration("v3")
        assert plan.sources == {"v1": 10, "v4": 5}
        assert (plan.upgrades, plan.downgrades, plan.staying) == (10, 5, 3)
        assert plan.dimension_delta == {"v1": 39, "v4": -3}
        assert plan.dropped["v4"] == ("surface_count", "shape_entropy_d2", "shape_entropy_patch_area")
        assert len(plan.missing["v1"]) == 39
        assert plan.estimated_seconds >= 0
        assert "10 up, 5 down" in plan.describe()
        assert store.counts() == {"v1": 10, "v2": 0, "v3": 3, "v4": 5}  # nothing changed
        store.add_many(records(1, "v1", prefix="late"))
        with pytest.raises(VectorStoreError, match="changed since this plan was made; plan again"):
            store.migrate(plan)
        with pytest.raises(VectorInputError, match="unknown feature version 'v7'"):
            store.plan_migration("v7")


def test_upgrade_re_extracts_from_the_real_parts(
    cad_samples: Path, telemetry: Telemetry, metrics: Any
) -> None:
    files = sorted((cad_samples / "stl").glob("*.*"))[:4]
    assert files, "no STL samples"
    by_hash = {hashlib.sha256(path.read_bytes()).hexdigest(): path for path in files}
    store = VectorStore.open(None, telemetry=telemetry)
    old = FeatureExtractor("v2", telemetry=telemetry)
    for path in files:
        store.add_features(old.extract(path), id=path.name)
    store.add("lost", store[files[0].name].vector, version="v2", sha256=digest("no such content"))
    new = FeatureExtractor("v4", telemetry=telemetry)
    result = store.migrate(
        store.plan_migration("v4"),
        extractor=new,
        content=lambda sha256: by_hash[sha256].read_bytes() if sha256 in by_hash else None,
    )
    assert result.methods == {"re_extracted": 4, "filled": 1}
    assert [id for id, _ in result.failures] == ["lost"]
    assert "no content for sha256" in result.failures[0][1]
    for path in files:
        assert np.array_equal(store[path.name].vector, new.extract(path).values.astype(np.float32))
        assert not store[path.name].filled
    assert store["lost"].filled
    assert metrics.value("cadmetrics_vector_migrated_records_total", method="re_extracted") == 4
    assert metrics.value("cadmetrics_vector_migrated_records_total", method="filled") == 1
    assert (
        metrics.value(
            "cadmetrics_vector_migrations_total", from_version="v2", to_version="v4", result="success"
        )
        == 1
    )
    assert metrics.value("cadmetrics_vector_migration_dimension_delta_sum", direction="upgrade") == 35
    assert (
        metrics.value(
            "cadmetrics_vector_migration_duration_seconds_count", from_version="v2", to_version="v4"
        )
        == 1
    )


def test_an_extractor_of_another_layout_is_refused() -> None:
    store = VectorStore.open(None)
    store.add_many(records(2, "v2"))
    with pytest.raises(VectorInputError, match="do not have the features of this store's v4 layout"):
        store.migrate(store.plan_migration("v4"), extractor=FeatureExtractor("v3"), content=lambda _: None)


def test_downgrades_are_counted(telemetry: Telemetry, metrics: Any) -> None:
    store = VectorStore.open(None, telemetry=telemetry)
    store.add_many(records(6, "v4"))
    store.migrate(store.plan_migration("v2"))
    assert metrics.value("cadmetrics_vector_downgrades_total", from_version="v4", to_version="v2") == 6
    assert metrics.value("cadmetrics_vector_migrated_records_total", method="projected") == 6
    assert metrics.value("cadmetrics_vector_migration_dimension_delta_sum", direction="downgrade") == 35


CRASHING_MIGRATION = r"""
import os, sys
import cadmetrics.vectors.migration as migration
from cadmetrics.vectors import VectorStore

crash_after = int(sys.argv[2])
calls = 0
write = migration._write_checkpoint

def write_then_crash(store, state):
    global calls
    write(store, state)
    calls += 1
    if calls == crash_after:
        os._exit(9)

migration._write_checkpoint = write_then_crash
store = VectorStore.open(sys.argv[1])
store.migrate(store.plan_migration("v3"), batch_size=10)
"""


def test_a_crashed_migration_resumes_from_its_checkpoint(
    tmp_path: Path, telemetry: Telemetry, metrics: Any
) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path) as store:
        store.add_many(records(45, "v4"))
        store.add_many(records(30, "v2", prefix="m"))
        before = {item.id: item for item in store}
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_MIGRATION, str(path), "4"], cwd=REPOSITORY, check=False
    )
    assert child.returncode == 9
    with VectorStore.open(path, telemetry=telemetry) as store:
        assert store.pending_migration == "v3"
        assert {item.id: item for item in store} == before  # the old version is still what is served
        with pytest.raises(VectorStoreError, match="a migration to v3 is under way"):
            store.add_many(records(1, prefix="during"))
        plan = store.plan_migration("v3")
        assert plan.done == 30  # three batches of ten were checkpointed
        result = store.migrate(plan, batch_size=10)
        assert result.resumed
        assert result.methods == {"projected": 45, "filled": 30}
        assert store.pending_migration is None
        assert store.counts()["v3"] == 75
        assert (
            metrics.value(
                "cadmetrics_vector_migrations_total", from_version="v4", to_version="v3", result="resumed"
            )
            == 1
        )
        assert (
            metrics.value(
                "cadmetrics_vector_migrations_total", from_version="v4", to_version="v3", result="success"
            )
            == 1
        )
        for id, original in before.items():  # every batch, before and after the crash, is exact
            common = min(original.vector.size, 46)
            assert np.array_equal(store[id].vector[:common], original.vector[:common])
            assert store[id].filled == (original.version == "v2")


def test_a_pending_migration_can_be_aborted(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path) as store:
        store.add_many(records(40, "v4"))
        before = {item.id: item for item in store}
    subprocess.run([sys.executable, "-c", CRASHING_MIGRATION, str(path), "2"], cwd=REPOSITORY, check=False)
    with VectorStore.open(path) as store:
        assert store.pending_migration == "v3"
        store.abort_migration()
        assert store.pending_migration is None
        assert {item.id: item for item in store} == before
        store.add_many(records(1, prefix="after"))  # writable again
    assert not (path / "migration").exists()
    assert len(list((path / "segments").iterdir())) == 2  # the half-written target is gone


RUNNING_MIGRATION = r"""
import sys
from cadmetrics.vectors import VectorStore
store = VectorStore.open(sys.argv[1])
print("ready", flush=True)
store.migrate(store.plan_migration(sys.argv[2]), batch_size=25)
print("done", flush=True)
"""


def test_random_kills_during_migrations_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with VectorStore.open(path) as store:
        store.add_many(records(3000, "v2"))
        originals = {item.id: item.vector.copy() for item in store}
    chance = random.Random(7)
    for target in ["v4", "v2", "v3", "v2"]:
        child = subprocess.Popen(
            [sys.executable, "-c", RUNNING_MIGRATION, str(path), target],
            cwd=REPOSITORY, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(chance.uniform(0.0, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()
        with VectorStore.open(path) as store:
            versions = {item.version for item in store}
            assert len(versions) == 1  # never a mix: the old version or the new one
            if store.pending_migration is not None:
                store.migrate(store.plan_migration(store.pending_migration), batch_size=25)
            elif versions != {target}:
                store.migrate(store.plan_migration(target), batch_size=25)
            assert store.counts()[target] == 3000
    with VectorStore.open(path) as store:
        assert {item.id: item.vector.tolist() for item in store} == {
            id: vector.tolist() for id, vector in originals.items()
        }
        assert not any(item.filled for item in store)
