"""What the store keeps for each vector, and how a record is checked before it is written.

Every check happens before anything reaches the disk, so a refused record never leaves a trace
and a batch is either written whole or not at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

import attrs
import numpy as np
import numpy.typing as npt

from cadmetrics.errors import VectorInputError
from cadmetrics.features.layout import FeatureLayout

Float32Array = npt.NDArray[np.float32]

#: Longest id accepted, in UTF-8 bytes: ids are kept in fixed-width arrays, so one very long id
#: would widen every row of its segment.
MAX_ID_BYTES = 512

_SHA256 = re.compile(r"[0-9a-f]{64}")

#: What a record stored without a content hash keeps in its place (no sha256 is all zeros).
NO_CONTENT = bytes(32)


@attrs.frozen(eq=False)
class Record:
    """One stored vector.

    ``filled`` is true when some of the vector's features were not computed but filled with
    their layout's defaults by a migration (an upgrade without the source content), so that a
    host can tell them from measured ones and re-extract them later. ``sha256`` names the
    content the vector was extracted from; a record stored without it can be migrated, but an
    upgrade can only fill its new features, never re-extract them.
    """

    id: str
    vector: Float32Array
    version: str
    sha256: str | None = None
    metadata: dict[str, Any] | None = None
    filled: bool = False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            (self.id, self.version, self.sha256, self.metadata, self.filled)
            == (other.id, other.version, other.sha256, other.metadata, other.filled)
            and self.vector.shape == other.vector.shape
            and bool(np.array_equal(self.vector, other.vector))
        )

    __hash__ = None  # type: ignore[assignment]  # holds an array


@attrs.frozen
class Hit:
    """One search result: the record's id, its cosine similarity to the query, its version."""

    id: str
    score: float
    version: str


class Features(Protocol):
    """What :meth:`VectorStore.add_features` needs of an extraction's result (a
    :class:`~cadmetrics.FeatureVector` is one)."""

    @property
    def values(self) -> Any: ...
    @property
    def version(self) -> str: ...
    @property
    def sha256(self) -> str: ...


class Persistable(Protocol):
    """What :meth:`VectorStore.save_baseline` keeps: anything that gives its own bytes."""

    def to_bytes(self) -> bytes: ...


@attrs.frozen
class CheckedRecord:
    """A record that passed every check, in the form the log and the segments write."""

    id: str
    id_bytes: bytes
    vector: Float32Array
    version: str
    content: bytes  # the sha256, 32 raw bytes
    metadata_json: bytes  # b"null" when there is none
    filled_from: str | None = None  # the version whose features are measured, when filled


def check_record(
    id: str,
    vector: Any,
    version: str,
    sha256: str | None,
    metadata: Mapping[str, Any] | None,
    *,
    layouts: Mapping[str, FeatureLayout],
    where: str = "",
) -> CheckedRecord:
    """The record, checked: every refusal names the id (and ``where``, its place in a batch)."""
    label = f"record {id!r}{where}" if isinstance(id, str) else f"record{where}"
    if not isinstance(id, str) or not id:
        raise VectorInputError(f"{label}: the id must be a non-empty string, got {id!r}")
    if "\x00" in id:
        raise VectorInputError(f"{label}: the id holds a NUL character")
    id_bytes = id.encode("utf-8", errors="strict") if id.isascii() else _utf8(id, label)
    if len(id_bytes) > MAX_ID_BYTES:
        raise VectorInputError(f"{label}: the id is {len(id_bytes)} bytes long; at most {MAX_ID_BYTES}")
    layout = layouts.get(version) if isinstance(version, str) else None
    if layout is None:
        raise VectorInputError(
            f"{label}: unknown feature version {version!r}; this store holds {', '.join(layouts)}"
        )
    values = _vector(vector, layout, label)
    return CheckedRecord(
        id=id,
        id_bytes=id_bytes,
        vector=values,
        version=version,
        content=content_bytes(sha256, label),
        metadata_json=metadata_to_json(metadata, label),
    )


def content_bytes(sha256: str | None, label: str) -> bytes:
    """The 32 raw bytes a record keeps of its content's sha256 (:data:`NO_CONTENT` for None)."""
    if sha256 is None:
        return NO_CONTENT
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise VectorInputError(f"{label}: sha256 must be 64 lowercase hex digits or None, got {sha256!r}")
    return bytes.fromhex(sha256)


def content_hex(content: bytes) -> str | None:
    """The sha256 a record was stored with, None when it was stored without one."""
    return None if content == NO_CONTENT else content.hex()


def _utf8(id: str, label: str) -> bytes:
    try:
        return id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise VectorInputError(f"{label}: the id is not valid text ({exc.reason})") from None


def _vector(vector: Any, layout: FeatureLayout, label: str) -> Float32Array:
    try:
        values = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise VectorInputError(f"{label}: the vector is not numeric ({exc})") from None
    if values.ndim != 1 or values.shape[0] != layout.dimension:
        raise VectorInputError(
            f"{label}: a {layout.version} vector has {layout.dimension} values, got shape {values.shape}"
        )
    with np.errstate(over="ignore"):  # a value past float32's range becomes inf, refused below
        narrowed = values.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(narrowed))
    if bad.size:
        position = int(bad[0])
        raise VectorInputError(
            f"{label}: value {position} ({layout.names[position]}) is {float(values[position])!r}, "
            "which is not finite in float32"
        )
    return narrowed


def metadata_to_json(metadata: Mapping[str, Any] | None, label: str) -> bytes:
    if metadata is None:
        return b"null"
    if not isinstance(metadata, Mapping):
        raise VectorInputError(f"{label}: metadata must be a dict, got {type(metadata).__name__}")
    try:
        text = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise VectorInputError(f"{label}: metadata is not JSON ({exc})") from None
    if json.loads(text) != metadata:  # JSON would turn 1 into "1" and tuples into lists, silently
        raise VectorInputError(
            f"{label}: metadata does not survive JSON unchanged (keys must be strings, sequences lists)"
        )
    return text.encode("utf-8")


def metadata_from_json(data: bytes) -> dict[str, Any] | None:
    value = json.loads(data)
    return value if isinstance(value, dict) else None
