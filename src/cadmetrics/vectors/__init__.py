"""Durable feature-vector storage with exact (and approximate) cosine search, and loss-free
migration between feature versions.

``VectorStore`` is the entry point; ``Record`` and ``Hit`` what it gives back; a migration is
planned (``MigrationPlan``, a dry run) before it is carried out (``MigrationResult``).
"""

from cadmetrics.vectors.plan import MigrationPlan, MigrationResult
from cadmetrics.vectors.records import Hit, Record
from cadmetrics.vectors.store import VectorStore

__all__ = ["Hit", "MigrationPlan", "MigrationResult", "Record", "VectorStore"]
