"""Welding: points that are the same point become one vertex, so that faces share edges.

Watertightness, the Euler characteristic, winding consistency and the enclosed volume are all
read from shared edges, and an edge is shared only when its faces name the same two vertex
numbers. Files often give one point several numbers: STL stores every triangle's corners
separately, and OBJ and PLY exporters repeat a vertex for each face, normal or texture seam it
belongs to. Left apart, such copies cut a closed part into open pieces with no volume.

"The same point" allows for the noise of exporters (``6e-17`` next to ``0.0`` in real files):
points on the same cell of a grid of :data:`WELD_TOLERANCE` times the largest coordinate are
one vertex. That is 64 times finer than float32, the precision of binary STL and of most PLY
files, so no feature of a part is ever fused. One rule for every format means the same part
gives the same mesh whichever format it was exported in.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from cadmetrics.features.mesh import FloatArray, IndexArray

__all__ = ["WELD_TOLERANCE", "weld", "weld_indexed"]

#: Welding grid, relative to the largest coordinate (float32's resolution is 2**-24).
WELD_TOLERANCE: Final = 2.0**-30
_HASH_X: Final = np.uint64(0x9E3779B97F4A7C15)

U64Array = npt.NDArray[np.uint64]
Points = npt.NDArray[np.float32] | FloatArray


def weld(corners: Points) -> tuple[FloatArray, IndexArray]:
    """Merge corners ``(3m, 3)`` that are the same point into vertices; ``(vertices, faces)``.

    Corners are the same point when they round to the same cell of a grid of
    :data:`WELD_TOLERANCE` times the largest coordinate (so ``-0.0``, ``0.0`` and ``6e-17``
    are one point). A vertex keeps the coordinates of its first corner (with ``-0.0`` written
    ``0.0``), and vertices come out in order of first appearance, so the result depends only
    on the file. Non-finite corners are welded too (to one another): the caller refuses them.
    """
    points = np.ascontiguousarray(corners)
    with np.errstate(invalid="ignore"):  # a signalling NaN is refused later, not warned about here
        work = np.add(points, 0, dtype=points.dtype)  # -0.0 + 0 == +0.0: one bit pattern for zero
    cells, _finite = _cells(work)
    first, inverse = _groups(*_hashed(cells))
    vertices: FloatArray = work[first].astype(np.float64)
    return vertices, inverse.reshape(-1, 3)


def weld_indexed(vertices: FloatArray, faces: IndexArray) -> tuple[FloatArray, IndexArray]:
    """Merge the vertices of an indexed mesh that are the same point; ``(vertices, faces)``.

    The rule is :func:`weld`'s. A merged vertex keeps the coordinates of the first of its
    copies, exactly as written, vertices stay in order of first appearance in ``vertices`` and
    ``faces`` are renumbered to match. Vertices no face uses are kept (welded like the others),
    so that nothing but the numbering of copies changes. When no two vertices are the same
    point, or some coordinate is not finite (the mesh is then refused by
    :meth:`~cadmetrics.features.mesh.Mesh.from_arrays`, naming the vertex as the file numbers
    it), the arrays are returned as they came.

    Most indexed files have no copies, so that is checked first with a sort of the hashes
    alone, several times cheaper than the argsort that grouping needs.
    """
    cells, finite = _cells(vertices)
    if not finite:
        return vertices, faces
    hashed, words = _hashed(cells)
    ordered = np.sort(hashed)
    if not (ordered[1:] == ordered[:-1]).any():  # distinct hashes are distinct cells
        return vertices, faces
    first, inverse = _groups(hashed, words)
    welded: FloatArray = vertices[first]
    renumbered: IndexArray = inverse[faces]
    return welded, renumbered


def _cells(points: Points) -> tuple[npt.NDArray[np.int64], bool]:
    """The grid cell of every row (``|cells| <= 2**30``), and whether every coordinate is finite.

    Finiteness costs nothing extra in the common case: the extreme coordinates, needed for the
    grid anyway, are NaN or infinite exactly when some coordinate is."""
    with np.errstate(invalid="ignore"):
        high, low = (float(points.max()), float(points.min())) if points.size else (0.0, 0.0)
    finite = math.isfinite(high) and math.isfinite(low)
    if finite:
        largest = max(abs(high), abs(low))
    else:
        usable = np.isfinite(points)
        largest = float(np.abs(points[usable]).max()) if usable.any() else 0.0
    cell = largest * WELD_TOLERANCE if largest > 0 else 1.0
    scaled = np.divide(points, cell, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # NaN and infinities land in some cell: see the callers
        np.rint(scaled, out=scaled)
        cells = scaled.astype(np.int64)  # -0.0 and 0.0 are cell 0 alike
    return cells, finite


def _hashed(cells: npt.NDArray[np.int64]) -> tuple[U64Array, list[npt.NDArray[np.unsignedinteger]]]:
    """A 64-bit hash of every row's cell, and the words it was made of (see :func:`_groups`)."""
    first_word, rest = _cell_words(cells)
    hashed = first_word * _HASH_X
    for word in rest:
        hashed ^= word
        hashed *= _HASH_X
    return hashed, [first_word, *rest]


def _groups(hashed: U64Array, words: list[npt.NDArray[np.unsignedinteger]]) -> tuple[IndexArray, IndexArray]:
    """Rows that are the same cell, as ``(first, inverse)``: ``first`` holds the first row of
    each group in order of appearance, ``inverse`` the group of every row.

    Rows are grouped by one argsort of a 64-bit hash of their cells, packed into two words
    (several times faster than ``np.unique(axis=0)``). The hash is built so that it is a
    bijection of the first word once the other is fixed: two rows with the same hash and the
    same second word are the same cell, so checking neighbours in sorted order needs only that
    word. Should two different cells share a hash, the rows are sorted by their cells
    (``np.lexsort``) instead: a collision costs time, never correctness.
    """
    first_word, *rest = words
    order: IndexArray = np.argsort(hashed)
    sorted_hashes = hashed[order]
    differs = sorted_hashes[1:] != sorted_hashes[:-1]
    clash = np.zeros_like(differs)
    for word in rest:
        sorted_word = word[order]
        clash |= sorted_word[1:] != sorted_word[:-1]
    if (clash & ~differs).any():
        order = np.lexsort([*rest[::-1], first_word])
        differs = np.zeros_like(differs)
        for word in words:
            sorted_word = word[order]
            differs |= sorted_word[1:] != sorted_word[:-1]
    starts = np.flatnonzero(np.concatenate(([True], differs)))
    earliest = np.minimum.reduceat(order, starts)
    by_appearance = np.argsort(earliest)
    renumber = np.empty(len(earliest), dtype=np.int64)
    renumber[by_appearance] = np.arange(len(earliest))
    group = np.cumsum(np.concatenate(([False], differs)), dtype=np.int64)
    inverse = np.empty(len(hashed), dtype=np.int64)
    inverse[order] = renumber[group]
    first: IndexArray = earliest[by_appearance]
    return first, inverse


def _cell_words(cells: npt.NDArray[np.int64]) -> tuple[U64Array, list[npt.NDArray[np.unsignedinteger]]]:
    """Grid cells of each row as a uint64 word (``x`` and ``y``, 32 bits each) and ``z``."""
    low = np.uint64(0xFFFFFFFF)
    words = cells.view(np.uint64)
    first: U64Array = (words[:, 0] & low) << np.uint64(32)
    first |= words[:, 1] & low
    return first, [np.ascontiguousarray(words[:, 2])]
