"""Writes staged in one block and committed together: one log append and one fsync, all of
them or none (``with engine.write() as transaction``).

Every check happens while staging, against the store and the writes staged before, so a
refused write leaves nothing staged that the commit could half apply.
"""

from __future__ import annotations

from collections.abc import Sequence

from cadmetrics.errors import VectorInputError
from cadmetrics.vectors._engine.log import Deletion
from cadmetrics.vectors._engine.tables import Tables
from cadmetrics.vectors.records import CheckedRecord

Operation = CheckedRecord | Deletion


class Transaction:
    """Writes staged for one commit; every check is made as they are staged."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self.operations: list[Operation] = []
        self._present: dict[bytes, bool] = {}  # ids the staged writes add (True) or delete (False)

    def add(self, records: Sequence[CheckedRecord]) -> None:
        """Stage new records; an id stored already, or twice in ``records``, is refused."""
        seen: dict[bytes, int] = {}
        for position, record in enumerate(records):
            if record.id_bytes in seen:
                raise VectorInputError(
                    f"record {record.id!r} (item {position}): the batch repeats the id of item "
                    f"{seen[record.id_bytes]}"
                )
            seen[record.id_bytes] = position
        unknown = [key for key in seen if key not in self._present]
        stored = self._tables.stored_among(unknown) | {key for key in seen if self._present.get(key)}
        if stored:
            position = min(seen[key] for key in stored)
            raise VectorInputError(
                f"record {records[position].id!r} (item {position}): the id is already stored; "
                "delete it first to replace it"
            )
        self.operations.extend(records)
        self._present.update(dict.fromkeys(seen, True))

    def delete(self, id: str) -> None:
        """Stage the removal of the record ``id``; KeyError where there is none."""
        key = id.encode("utf-8")
        present = self._present.get(key)
        if present is None:
            present = self._tables.find(key) is not None
        if not present:
            raise KeyError(id)
        self.operations.append(Deletion(id))
        self._present[key] = False
