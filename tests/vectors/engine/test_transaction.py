"""Transactions: every check while staging, nothing applied from a block that fails."""

from __future__ import annotations

import pytest

from cadmetrics.errors import VectorInputError
from tests.vectors.engine.helpers import checked, engine_at, ids_of


def test_a_transaction_applies_its_writes_in_order() -> None:
    engine = engine_at(None)
    with engine.write() as transaction:
        transaction.add([checked("a"), checked("b")])
        transaction.delete("a")
        transaction.add([checked("a", "v4")])  # deleted in this transaction, so new again
    assert sorted(ids_of(engine)) == ["a", "b"]
    with engine.read() as snapshot:
        found = snapshot.find("a")
        assert found is not None
        assert found[0].version == "v4"


def test_refusals_name_the_item_and_stage_nothing() -> None:
    engine = engine_at(None)
    with engine.write() as transaction:
        transaction.add([checked("a")])
    with engine.write() as transaction:
        with pytest.raises(
            VectorInputError, match=r"record 'b' \(item 1\): the batch repeats the id of item 0"
        ):
            transaction.add([checked("b"), checked("b")])
        with pytest.raises(VectorInputError, match=r"record 'a' \(item 0\): the id is already stored"):
            transaction.add([checked("a")])
        with pytest.raises(KeyError):
            transaction.delete("missing")
        assert transaction.operations == []
    assert ids_of(engine) == ["a"]


def test_an_exception_in_the_block_commits_nothing() -> None:
    engine = engine_at(None)

    def change_of_mind() -> None:
        with engine.write() as transaction:
            transaction.add([checked("a")])
            raise RuntimeError("the caller changed its mind")

    with pytest.raises(RuntimeError):
        change_of_mind()
    assert ids_of(engine) == []
