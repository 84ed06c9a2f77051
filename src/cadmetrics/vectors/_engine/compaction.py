"""What the next generation's segments are: the old ones (tombstones refreshed), the memtables
written out, and versions split too finely merged.

The merge policy bounds the segments a search walks without rewriting every vector at every
checkpoint: a version past :data:`MAX_SEGMENTS_PER_VERSION` merges its neighbouring segments
with the fewest rows between them, so a store that grows by many loads rewrites each vector a
few times, and neighbours keep the order records were written in (iteration, search ties).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from cadmetrics.vectors._engine.directory import Directory
from cadmetrics.vectors._engine.segment import Rows, Segment, SegmentInfo
from cadmetrics.vectors._engine.tables import Tables

#: A version split over more segments than this is merged into one at the next checkpoint.
MAX_SEGMENTS_PER_VERSION: Final = 8

Item = Segment | SegmentInfo  # an open segment kept, or one just written


def next_segments(
    tables: Tables,
    directory: Directory,
    generation: int,
    *,
    compact: bool = False,
    extra: Sequence[Item] = (),
) -> list[Item]:
    """The segments of ``generation``, written where new. ``compact`` rewrites each version
    as one segment without deleted rows; ``extra`` are segments written for it already."""
    result: list[Item] = []
    for segment in tables.segments:
        if segment.live_rows == 0:
            continue
        if segment.dirty:
            segment.write_tombstones(f"tombstones-{generation}.npy")
        result.append(segment)
    for version, table in tables.memtables.items():
        if table.live_rows:
            rows = table.take(np.flatnonzero(table.alive))
            result.append(directory.write_rows(f"g{generation}-{version}-buffer", version, rows))
    result += extra
    for version in tables.layouts:
        mine = [item for item in result if item.version == version]
        if compact and (len(mine) > 1 or any(live_rows(item) < item.rows for item in mine)):
            chosen = mine
        elif len(mine) > MAX_SEGMENTS_PER_VERSION:
            width = len(mine) - MAX_SEGMENTS_PER_VERSION // 2 + 1
            start = min(
                range(len(mine) - width + 1),
                key=lambda at: sum(live_rows(item) for item in mine[at : at + width]),
            )
            chosen = mine[start : start + width]
        else:
            continue
        merged = _merge(directory, f"g{generation}-{version}-merged", version, chosen)
        place = next(index for index, item in enumerate(result) if item is chosen[0])
        result = [
            merged if index == place else item
            for index, item in enumerate(result)
            if index == place or not any(item is other for other in chosen)
        ]
    return result


def live_rows(item: Item) -> int:
    return item.live_rows if isinstance(item, Segment) else item.rows


def _merge(directory: Directory, name: str, version: str, items: list[Item]) -> SegmentInfo:
    opened = [item if isinstance(item, Segment) else directory.open_segment(item) for item in items]
    rows = Rows.concatenate([segment.take(np.flatnonzero(segment.alive)) for segment in opened])
    info = directory.write_rows(name, version, rows)
    for segment, item in zip(opened, items, strict=True):
        if segment is not item:
            segment.close()
    return info
