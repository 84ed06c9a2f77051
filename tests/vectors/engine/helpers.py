"""Checked records and engines for the engine's own tests."""

from __future__ import annotations

from pathlib import Path

from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors._engine import Engine, open_engine
from cadmetrics.vectors.records import CheckedRecord, check_record
from tests.vectors.helpers import record


def checked(id: str, version: str = "v2") -> CheckedRecord:
    item = record(id, version, {"id": id})
    return check_record(item.id, item.vector, item.version, item.sha256, item.metadata, layouts=LAYOUTS)


def engine_at(root: Path | str | None, **options: object) -> Engine:
    folder = None if root is None else Path(root)
    return open_engine(folder, layouts=None, default_layouts=LAYOUTS, **options)  # type: ignore[arg-type]


def ids_of(engine: Engine) -> list[str]:
    with engine.read() as snapshot:
        return [snapshot.record(source, row).id for source in snapshot.sources() for row in live(source)]


def live(source: object) -> list[int]:
    import numpy as np

    return np.flatnonzero(source.alive).tolist()  # type: ignore[attr-defined]
