"""Records for the vector tests: deterministic, so a child process and its parent agree on what
each id's vector must be."""

from __future__ import annotations

import hashlib

import numpy as np

from cadmetrics.features.layout import LAYOUTS
from cadmetrics.vectors import Record


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def vector_for(id: str, version: str) -> np.ndarray:
    """The vector a test writes under ``id``: seeded by the id, so it can be checked later."""
    seed = int.from_bytes(hashlib.sha256(id.encode("utf-8")).digest()[:8], "little")
    values = np.random.default_rng(seed).standard_normal(LAYOUTS[version].dimension)
    return values.astype(np.float32)


def record(id: str, version: str = "v2", metadata: dict[str, object] | None = None) -> Record:
    return Record(id, vector_for(id, version), version, digest(id), metadata)


def records(count: int, version: str = "v2", prefix: str = "r") -> list[Record]:
    return [
        record(f"{prefix}{index}", version, {"index": index, "even": index % 2 == 0})
        for index in range(count)
    ]
