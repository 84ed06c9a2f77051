"""The in-memory picture: where each id lives, and what forgetting and moving rows do."""

from __future__ import annotations

import numpy as np

from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors._engine import NOT_FILLED
from cadmetrics.vectors._engine.tables import Tables
from tests.vectors.engine.helpers import checked


def test_rows_are_found_by_id_until_forgotten() -> None:
    tables = Tables(LAYOUTS)
    tables.append([checked("a"), checked("b", "v4"), checked("c")], [NOT_FILLED] * 3)
    found = tables.find(b"b")
    assert found is not None
    assert found[0].version == "v4"
    assert tables.counts() == {"v1": 0, "v2": 2, "v3": 0, "v4": 1}
    assert tables.stored_among([b"a", b"x", b"c"]) == {b"a", b"c"}
    assert tables.forget(b"a")
    assert not tables.forget(b"a")
    assert tables.find(b"a") is None
    assert tables.counts()["v2"] == 1


def test_many_keys_are_looked_up_alike() -> None:
    tables = Tables(LAYOUTS)
    tables.append([checked(f"r{n}") for n in range(40)], [NOT_FILLED] * 40)
    keys = [f"r{n}".encode() for n in range(0, 80, 2)]
    assert tables.stored_among(keys) == {f"r{n}".encode() for n in range(0, 40, 2)}


def test_moving_rows_replaces_the_sources_and_keeps_the_target() -> None:
    tables = Tables(LAYOUTS)
    tables.append([checked("stay", "v3"), checked("gone", "v3"), checked("old", "v4")], [NOT_FILLED] * 3)
    tables.forget(b"gone")
    source = tables.memtables["v4"]
    converted = source.take(np.flatnonzero(source.alive))
    moved = type(converted)(
        np.zeros((1, LAYOUTS["v3"].dimension), dtype=np.float32), converted.ids, converted.content,
        converted.filled, converted.metadata,
    )  # fmt: skip
    tables.move_rows(["v4"], "v3", moved)
    assert "v4" not in tables.memtables
    assert tables.counts()["v3"] == 2
    found = tables.find(b"old")
    assert found is not None
    assert found[0].version == "v3"
    assert tables.find(b"gone") is None
