"""A store killed at random moments loses no acknowledged write and never returns a torn vector.

A child process writes (single adds, batches, deletes) with checkpoints every few kilobytes, so
kills land in log appends, segment writes, manifest renames and clean-ups alike. It prints each
write after the call returned: those are the acknowledged ones (and each delete before it
starts, as a delete cut short may or may not have happened). The parent kills it with
SIGKILL, reopens the store and checks every record against what was written, then lets the next
child carry on with the same store.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cadmetrics.vectors import VectorStore
from tests.conftest import REPOSITORY
from tests.vectors.helpers import digest, vector_for

WRITER = r"""
import sys
from cadmetrics.vectors import VectorStore
from tests.vectors.helpers import record

path, prefix = sys.argv[1], sys.argv[2]
store = VectorStore.open(path, checkpoint_bytes=6000)
print("ready", flush=True)
index = 0
while True:
    if index % 7 == 3 or index % 23 == 5:  # small batches through the log, bulk ones as segments
        size = 5 if index % 7 == 3 else 40
        batch = [record(f"{prefix}-{index}-{n}", "v4" if n % 2 else "v2") for n in range(size)]
        store.add_many(batch)
        print("add", *[item.id for item in batch], flush=True)
    elif index % 5 == 4:
        victim = f"{prefix}-{index - 1}"
        if victim in store:
            print("deleting", victim, flush=True)
            store.delete(victim)
            print("del", victim, flush=True)
    else:
        item = record(f"{prefix}-{index}", "v3")
        store.add(item.id, item.vector, version=item.version, sha256=item.sha256, metadata=item.metadata)
        print("add", item.id, flush=True)
    index += 1
"""


def test_random_kills_lose_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "store"
    chance = random.Random(20261123)
    alive: set[str] = set()
    deleted: set[str] = set()
    for round_number in range(10):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"k{round_number}"],
            cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
        time.sleep(chance.uniform(0.02, 0.5))
        os.kill(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        for line in output.splitlines():
            words = line.split()
            if words and words[0] == "add" and all(len(word) for word in words[1:]):
                alive.update(words[1:])
            elif len(words) == 2 and words[0] == "deleting":  # may be gone, acknowledged or not
                alive.discard(words[1])
            elif len(words) == 2 and words[0] == "del":
                deleted.add(words[1])
        with VectorStore.open(path) as store:
            present = {item.id: item for item in store}
            missing = alive - set(present)
            assert not missing, f"round {round_number}: acknowledged records lost: {sorted(missing)[:5]}"
            assert not (deleted & set(present)), "an acknowledged delete came back"
            for item in present.values():  # acknowledged or not, never torn
                assert np.array_equal(item.vector, vector_for(item.id, item.version)), item.id
                assert item.sha256 == digest(item.id)
            alive = set(present)  # unacknowledged writes that made it count from now on
    assert len(alive) > 50  # the children got real work done
