"""The storage engine of :class:`~cadmetrics.vectors.VectorStore` (private: the names inside
are public to the rest of ``cadmetrics.vectors`` only).

The store, its search, its indexes and its migrations use this surface and nothing deeper:
:func:`open_engine`, :class:`Engine` (close, checkpoint, compact), a :class:`Snapshot` to read
(``with engine.read()``), a :class:`Transaction` to write (``with engine.write()``), and for a
migration :meth:`Engine.begin_migration`, a :class:`MigrationOutput` and
:meth:`Engine.finish_migration`. Another engine (a server that holds stores too large for one
machine) would offer the same surface.
"""

from cadmetrics.vectors._engine.engine import DEFAULT_CHECKPOINT_BYTES, Engine
from cadmetrics.vectors._engine.manifest import PendingMigration
from cadmetrics.vectors._engine.opening import open_engine
from cadmetrics.vectors._engine.rewrite import MigrationOutput, MigrationProgress
from cadmetrics.vectors._engine.segment import FILLED_UNKNOWN, NOT_FILLED, Rows, inverse_norms
from cadmetrics.vectors._engine.snapshot import Snapshot
from cadmetrics.vectors._engine.tables import Source
from cadmetrics.vectors._engine.transaction import Transaction

__all__ = [
    "DEFAULT_CHECKPOINT_BYTES",
    "FILLED_UNKNOWN",
    "NOT_FILLED",
    "Engine",
    "MigrationOutput",
    "MigrationProgress",
    "PendingMigration",
    "Rows",
    "Snapshot",
    "Source",
    "Transaction",
    "inverse_norms",
    "open_engine",
]
