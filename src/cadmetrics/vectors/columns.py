"""A batch of records given as columns (ids, one matrix of vectors, digests, metadata),
checked as a whole with numpy rather than record by record.

This is the form a bulk load takes: a million vectors are one array already, and checking
them as one (finite, of the layout's dimension) costs a pass over memory, where building a
million :class:`~cadmetrics.vectors.Record` values costs far more than writing them.
Every refusal still names the item and its id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy as np

from cadmetrics.errors import VectorInputError
from cadmetrics.features.layout import FeatureLayout
from cadmetrics.vectors._engine import NOT_FILLED, Rows, inverse_norms
from cadmetrics.vectors.records import MAX_ID_BYTES, content_bytes, metadata_to_json

_NULL: Final = b"null"
_LOWER_HEX: Final = b"0123456789abcdef"


def check_columns(
    ids: Sequence[str],
    vectors: Any,
    version: str,
    sha256: Sequence[str | None] | None,
    metadata: Sequence[Mapping[str, Any] | None] | None,
    *,
    layouts: Mapping[str, FeatureLayout],
) -> Rows:
    """The batch as the rows a segment holds, every value checked."""
    layout = layouts.get(version) if isinstance(version, str) else None
    if layout is None:
        raise VectorInputError(f"unknown feature version {version!r}; this store holds {', '.join(layouts)}")
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
        raise VectorInputError(f"ids must be a sequence of strings, got {type(ids).__name__}")
    with ThreadPoolExecutor(max_workers=1) as pool:  # the vectors' pass runs beside the ids'
        vectors_checked = pool.submit(_matrix, vectors, layout, ids)
        encoded = _encoded_ids(ids)
        matrix, inverse = vectors_checked.result()
    count = len(encoded)
    if matrix.shape[0] != count:
        raise VectorInputError(f"{count} ids for {matrix.shape[0]} vectors: give one vector per id")
    content = np.zeros((count, 32), dtype=np.uint8)
    if sha256 is not None:
        _same_length(sha256, count, "sha256")
        content = _digests(sha256, ids)
    if metadata is None:
        kept = [_NULL] * count
    else:
        _same_length(metadata, count, "metadata")
        kept = [
            metadata_to_json(item, f"record {ids[position]!r} (item {position})")
            for position, item in enumerate(metadata)
        ]
    filled = np.full(count, NOT_FILLED, dtype=np.int8)
    return Rows(matrix, encoded, content, filled, kept, known_inverse_norms=inverse)


def _digests(sha256: Sequence[str | None], ids: Sequence[str]) -> Any:
    """The digests as a (rows, 32) byte matrix: checked in one pass when every record has one
    (the usual case), item by item otherwise, or to name a bad one."""
    given = [digest for digest in sha256 if isinstance(digest, str)]
    if len(given) == len(sha256) and set(map(len, given)) <= {64}:
        joined = "".join(given).encode("ascii", errors="replace")
        if not joined.translate(None, _LOWER_HEX):
            return np.frombuffer(bytes.fromhex(joined.decode("ascii")), dtype=np.uint8).reshape(-1, 32).copy()
    digests = b"".join(
        content_bytes(digest, f"record {ids[position]!r} (item {position})")
        for position, digest in enumerate(sha256)
    )
    return np.frombuffer(digests, dtype=np.uint8).reshape(-1, 32).copy()


def _encoded_ids(ids: Sequence[str]) -> list[bytes]:
    """The ids as UTF-8, checked in bulk (C loops over the whole batch); when a check fails,
    the slow pass below finds the first offending item to name it."""
    try:
        joined = "\x00".join(ids)  # TypeError for an id that is not a string
        if len(ids) == 0:
            return []
        if joined.count("\x00") == len(ids) - 1:  # no id holds a NUL of its own
            encoded = joined.encode("utf-8").split(b"\x00")
            fitting = min(map(len, encoded)) > 0 and max(map(len, encoded)) <= MAX_ID_BYTES
            if fitting and len(set(encoded)) == len(encoded):
                return encoded
    except (TypeError, UnicodeEncodeError):
        pass
    _name_the_bad_id(ids)
    raise AssertionError("unreachable: a bulk check failed where no item fails")  # pragma: no cover


def _name_the_bad_id(ids: Sequence[str]) -> None:
    first: dict[bytes, int] = {}
    for position, id in enumerate(ids):
        if not isinstance(id, str) or not id or "\x00" in id:
            problem = (
                "holds a NUL character"
                if isinstance(id, str) and id
                else f"must be a non-empty string, got {id!r}"
            )
            raise VectorInputError(f"record (item {position}): the id {problem}")
        try:
            key = id.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise VectorInputError(
                f"record {id!r} (item {position}): the id is not valid text ({exc.reason})"
            ) from None
        if len(key) > MAX_ID_BYTES:
            raise VectorInputError(
                f"record (item {position}): the id is {len(key)} bytes long; at most {MAX_ID_BYTES}"
            )
        if key in first:
            raise VectorInputError(
                f"record {id!r} (item {position}): the batch repeats the id of item {first[key]}"
            )
        first[key] = position


def _matrix(vectors: Any, layout: FeatureLayout, ids: Sequence[str]) -> tuple[Any, Any]:
    try:
        array = np.asarray(vectors)
        if array.dtype != np.float32:
            with np.errstate(over="ignore"):  # past float32's range becomes inf, refused below
                array = array.astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise VectorInputError(f"the vectors are not numeric ({exc})") from None
    if array.ndim != 2 or array.shape[1] != layout.dimension:
        raise VectorInputError(
            f"{layout.version} vectors are rows of {layout.dimension} values, got shape {array.shape}"
        )
    array = np.ascontiguousarray(array)
    inverse = inverse_norms(array)  # not finite exactly where a row holds a value that is not
    bad_rows = np.flatnonzero(~np.isfinite(inverse))
    if bad_rows.size:
        row = int(bad_rows[0])
        column = int(np.flatnonzero(~np.isfinite(array[row]))[0])
        raise VectorInputError(
            f"record {ids[row]!r} (item {row}): value {column} ({layout.names[column]}) "
            "is not finite in float32"
        )
    return array, inverse


def _same_length(column: Sequence[Any], count: int, name: str) -> None:
    if isinstance(column, str | bytes) or len(column) != count:
        raise VectorInputError(f"{name} must be a sequence of one item per id ({count})")
