"""Drift baselines kept with a vector store: a store keeps the bytes, drift reads them.

A store offers :meth:`~cadmetrics.vectors.VectorStore.save_baseline` (it takes anything that
gives its own bytes) and the saved bytes back; turning them into a :class:`Baseline` is
drift's, so neither package reaches into the other.
"""

from __future__ import annotations

from typing import Protocol

from cadmetrics.drift.baseline import Baseline
from cadmetrics.errors import DriftError


class BaselineShelf(Protocol):
    """Where baselines are kept (a :class:`~cadmetrics.vectors.VectorStore`)."""

    def baseline_bytes(self, name: str = "default") -> tuple[bytes | None, str]: ...


def load_baseline(shelf: BaselineShelf, name: str = "default") -> Baseline:
    """The baseline saved under ``name`` with ``shelf``, with its original ``created_at``."""
    data, where = shelf.baseline_bytes(name)
    if data is None:
        raise DriftError(f"{where}: no such drift baseline file")
    return Baseline.from_bytes(data, where)
