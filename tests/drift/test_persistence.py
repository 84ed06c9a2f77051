"""Baselines kept with a vector store, read back by drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadmetrics.drift import Baseline, load_baseline
from cadmetrics.errors import DriftError
from cadmetrics.vectors import VectorStore
from tests.vectors.helpers import records


def test_a_saved_baseline_is_read_back_and_a_missing_one_is_named(tmp_path: Path) -> None:
    with VectorStore.open(tmp_path / "store") as store:
        store.add_many(records(40, "v4"))
        baseline = Baseline.from_vectors(store.vectors("v4"), layout=store.layouts["v4"], source="test")
        store.save_baseline(baseline, "weekly")
        assert load_baseline(store, "weekly").same_as(baseline)
        with pytest.raises(DriftError, match=r"baselines/daily\.npz: no such drift baseline file"):
            load_baseline(store, "daily")
