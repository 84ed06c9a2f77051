"""What any storage engine of the store must do, run against each engine there is.

Every engine: writes are all-or-none transactions, a snapshot's stamp moves with every change,
and a migration written through its output is served only once finished (aborted, nothing
changes). A durable engine, besides: a process killed at any instant loses no acknowledged
transaction and applies none in part, a torn log tail is set aside at the next open, and a
migration killed between batches resumes from its last checkpoint.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from cadmetrics.errors import VectorStoreError
from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors._engine import Engine, MigrationOutput, MigrationProgress, Rows
from tests.conftest import REPOSITORY
from tests.vectors.engine.helpers import checked, engine_at, ids_of, live
from tests.vectors.helpers import vector_for

ENGINES: dict[str, Callable[[Path], Engine]] = {
    "directory": lambda folder: engine_at(folder / "store", checkpoint_bytes=4000),
    "memory": lambda _folder: engine_at(None),
}
DURABLE = ["directory"]


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    made = ENGINES[request.param](tmp_path)
    yield made
    made.close()


def _write(engine: Engine, *ids: str, version: str = "v4") -> None:
    with engine.write() as transaction:
        transaction.add([checked(id, version) for id in ids])


def _convert(output: MigrationOutput, batch: int) -> None:
    """Write every source row into the output, as zeros of the target's dimension, checkpointing
    after each ``batch`` rows (a stand-in for a real conversion)."""
    done = output.progress.rows_done
    dimension = LAYOUTS[output.pending.target].dimension
    position = 0
    for source in output.sources:
        rows = np.flatnonzero(source.alive)
        for start in range(0, rows.size, batch):
            chunk = rows[start : start + batch]
            if position + chunk.size <= done:
                position += chunk.size
                continue
            block = source.take(chunk)
            vectors = np.ones((chunk.size, dimension), dtype=np.float32)
            output.write(done, Rows(vectors, block.ids, block.content, block.filled, block.metadata))
            done += chunk.size
            position = done
            output.checkpoint(MigrationProgress(done, {"projected": done}))


def test_the_stamp_moves_with_every_change_and_only_then(engine: Engine) -> None:
    with engine.read() as snapshot:
        first = snapshot.stamp
    with engine.read() as snapshot:
        assert snapshot.stamp == first
    _write(engine, "a")
    with engine.read() as snapshot:
        assert snapshot.stamp != first


def test_a_migration_is_served_only_once_finished(engine: Engine) -> None:
    _write(engine, *[f"r{n}" for n in range(10)])
    _write(engine, "kept", version="v3")
    with engine.read() as snapshot:
        stamp = snapshot.stamp
    engine.begin_migration("v3", {"v4": 10}, started=time.time(), stamp=stamp)
    with pytest.raises(VectorStoreError, match="a migration to v3 is under way"):
        _write(engine, "during")
    output = engine.migration_output()
    _convert(output, batch=4)
    with engine.read() as snapshot:
        assert snapshot.counts()["v4"] == 10  # the old rows are served until the end
    engine.finish_migration(output)
    with engine.read() as snapshot:
        assert snapshot.counts() == {"v1": 0, "v2": 0, "v3": 11, "v4": 0}
        assert snapshot.pending is None
        found = snapshot.find("r3")
        assert found is not None
        assert snapshot.record(*found).vector.tolist() == [1.0] * LAYOUTS["v3"].dimension
    _write(engine, "after")


def test_an_aborted_migration_changes_nothing(engine: Engine) -> None:
    _write(engine, "a", "b", "c")
    with engine.read() as snapshot:
        before = [snapshot.record(source, row) for source in snapshot.sources() for row in live(source)]
        stamp = snapshot.stamp
    engine.begin_migration("v2", {"v4": 3}, started=time.time(), stamp=stamp)
    _convert(engine.migration_output(), batch=2)
    engine.abort_migration()
    with engine.read() as snapshot:
        assert [
            snapshot.record(source, row) for source in snapshot.sources() for row in live(source)
        ] == before
    _write(engine, "d")


def test_a_plan_of_an_older_state_cannot_begin(engine: Engine) -> None:
    with engine.read() as snapshot:
        stamp = snapshot.stamp
    _write(engine, "a")
    with pytest.raises(VectorStoreError, match="changed since this plan was made"):
        engine.begin_migration("v3", {"v4": 1}, started=time.time(), stamp=stamp)


WRITER = r"""
import sys
from tests.vectors.engine.helpers import checked, engine_at

engine = engine_at(sys.argv[1], checkpoint_bytes=4000)
prefix = sys.argv[2]
print("ready", flush=True)
number = 0
while True:
    with engine.write() as transaction:
        transaction.add([checked(f"{prefix}-{number}-{k}", "v4" if k % 2 else "v2") for k in range(3)])
        if number:
            transaction.delete(f"{prefix}-{number - 1}-0")
    print("ok", number, flush=True)
    number += 1
"""


@pytest.mark.parametrize("kind", DURABLE)
def test_a_killed_writer_loses_no_acknowledged_transaction_and_applies_none_in_part(
    kind: str, tmp_path: Path
) -> None:
    chance = random.Random(20261205)
    expected: dict[str, str] = {}  # id -> version, of acknowledged transactions
    for round_number in range(6):
        prefix = f"k{round_number}"
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path / "store"), prefix],
            cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(chance.uniform(0.05, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        acknowledged = [int(line.split()[1]) for line in output.splitlines() if line.startswith("ok ")]
        last = max(acknowledged, default=-1)
        for number in range(last + 1):
            expected.update({f"{prefix}-{number}-{k}": "v4" if k % 2 else "v2" for k in range(1, 3)})
        if last >= 0:
            expected[f"{prefix}-{last}-0"] = "v2"
        engine = ENGINES[kind](tmp_path)
        try:
            present = set(ids_of(engine))
            in_flight = {f"{prefix}-{last + 1}-{k}" for k in range(3)}
            if in_flight & present:  # the transaction the kill cut short: all of it or none
                assert in_flight <= present
                assert f"{prefix}-{last}-0" not in present
                expected.update({id: "v4" if id.endswith("-1") else "v2" for id in in_flight})
                expected.pop(f"{prefix}-{last}-0", None)
            assert present == set(expected)
            with engine.read() as snapshot:
                for id, version in expected.items():
                    found = snapshot.find(id)
                    assert found is not None
                    assert np.array_equal(snapshot.record(*found).vector, vector_for(id, version))
        finally:
            engine.close()


@pytest.mark.parametrize("kind", DURABLE)
def test_a_torn_log_tail_is_set_aside_at_the_next_open(kind: str, tmp_path: Path) -> None:
    engine = ENGINES[kind](tmp_path)
    _write(engine, "a", "b")
    assert engine.lock_file is not None
    engine.lock_file.close()  # type: ignore[attr-defined]  # as if the process had died
    log = next((tmp_path / "store").glob("log-*.wal"))
    with open(log, "ab") as file:
        file.write(b"\x40\x00\x00\x00half a frame")
    again = ENGINES[kind](tmp_path)
    try:
        assert sorted(ids_of(again)) == ["a", "b"]
        assert "torn by a crash" in again.problems[0]
    finally:
        again.close()


MIGRATOR = r"""
import sys, time
from tests.vectors.engine.helpers import engine_at
from tests.vectors.engine.test_engine_contract import _convert

engine = engine_at(sys.argv[1])
with engine.read() as snapshot:
    stamp = snapshot.stamp
engine.begin_migration("v3", {"v4": 300}, started=time.time(), stamp=stamp)
output = engine.migration_output()
print("ready", flush=True)
_convert(output, batch=10)
print("converted", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("kind", DURABLE)
def test_a_killed_migration_resumes_from_its_last_checkpoint(kind: str, tmp_path: Path) -> None:
    engine = ENGINES[kind](tmp_path)
    for start in range(0, 300, 100):
        _write(engine, *[f"r{n}" for n in range(start, start + 100)])
    engine.close()
    child = subprocess.Popen(
        [sys.executable, "-c", MIGRATOR, str(tmp_path / "store")],
        cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
    time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    engine = ENGINES[kind](tmp_path)
    try:
        with engine.read() as snapshot:
            assert snapshot.pending is not None
            assert snapshot.counts()["v4"] == 300
        progress = engine.migration_progress()
        assert progress.rows_done % 10 == 0
        output = engine.migration_output()
        assert output.progress.rows_done == progress.rows_done
        _convert(output, batch=10)
        engine.finish_migration(output)
        with engine.read() as snapshot:
            assert snapshot.counts()["v3"] == 300
        assert sorted(ids_of(engine)) == sorted(f"r{n}" for n in range(300))
    finally:
        engine.close()
