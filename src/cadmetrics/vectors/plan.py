"""What a migration to another feature version will do, worked out without changing anything
(:class:`MigrationPlan`, a dry run), and what it did (:class:`MigrationResult`).

A plan is made from one snapshot of the store and remembers its stamp: carried out after a
write, it is refused (plan again), so that what it promised is what happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from cadmetrics.errors import VectorStoreError
from cadmetrics.features.layout import FeatureLayout
from cadmetrics.vectors._engine import Engine

#: What the time estimate assumes: bytes moved per second by a projection, and seconds per
#: re-extraction (a CAD part of some ten thousand faces). Both are deliberately rough.
_ESTIMATED_BYTES_PER_SECOND = 500e6
_ESTIMATED_EXTRACTION_SECONDS = 0.05


@attrs.frozen
class MigrationPlan:
    """What a migration to ``target`` will do, worked out without changing anything.

    ``sources`` counts the records of each version that will move; ``staying`` those already
    at the target. Per source version: ``dimension_delta`` (target minus source dimension),
    ``dropped`` (features the target lacks) and ``missing`` (features the source lacks, to be
    re-extracted or filled). ``done`` counts records a pending migration already moved.
    """

    target: str
    sources: dict[str, int]
    staying: int
    dimension_delta: dict[str, int]
    dropped: dict[str, tuple[str, ...]]
    missing: dict[str, tuple[str, ...]]
    estimated_seconds: float
    generation: int
    changes: int
    done: int = 0
    without_content: dict[str, int] = attrs.field(factory=dict)

    @property
    def upgrades(self) -> int:
        """Records that gain dimensions."""
        return sum(n for version, n in self.sources.items() if self.dimension_delta[version] > 0)

    @property
    def downgrades(self) -> int:
        """Records that lose dimensions."""
        return sum(n for version, n in self.sources.items() if self.dimension_delta[version] < 0)

    @property
    def records(self) -> int:
        """Records that will move."""
        return sum(self.sources.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "records": self.records,
            "staying": self.staying,
            "upgrades": self.upgrades,
            "downgrades": self.downgrades,
            "sources": {
                version: {
                    "records": count,
                    "dimension_delta": self.dimension_delta[version],
                    "dropped": list(self.dropped[version]),
                    "missing": list(self.missing[version]),
                }
                for version, count in self.sources.items()
            },
            "estimated_seconds": round(self.estimated_seconds, 3),
            "done": self.done,
            "without_content": dict(self.without_content),
        }

    def describe(self) -> str:
        lines = [
            f"migrate to {self.target}: {self.records} records move ({self.upgrades} up, "
            f"{self.downgrades} down), {self.staying} stay; about {self.estimated_seconds:.1f} s"
        ]
        for version, count in self.sources.items():
            lines.append(
                f"  {version} -> {self.target}: {count} records, dimension {self.dimension_delta[version]:+d}"
                + (f", drops {_names(self.dropped[version])}" if self.dropped[version] else "")
                + (f", needs {_names(self.missing[version])}" if self.missing[version] else "")
            )
            if self.without_content.get(version):
                lines.append(
                    f"    {self.without_content[version]} of them have no content hash: their new "
                    "features can only be filled, never re-extracted"
                )
        if self.done:
            lines.append(f"  resumes a migration that already moved {self.done} records")
        return "\n".join(lines)


@attrs.frozen
class MigrationResult:
    """What a migration did: records by how their features were obtained (projected,
    re_extracted, filled), the records whose re-extraction failed (filled instead, with the
    reason), and whether it resumed an interrupted run."""

    target: str
    methods: dict[str, int]
    failures: tuple[tuple[str, str], ...]
    seconds: float
    resumed: bool

    @property
    def records(self) -> int:
        return sum(self.methods.values())


def plan_for(engine: Engine, target: FeatureLayout) -> MigrationPlan:
    to = target.version
    with engine.read() as snapshot:
        counts = snapshot.counts()
        layouts = snapshot.layouts
        pending = snapshot.pending
        if pending is not None:
            if pending.target != to:
                raise VectorStoreError(
                    f"vector store {engine.root}: a migration to {pending.target} is under way; finish it "
                    "or abort it (store.abort_migration()) before planning another"
                )
            sources = dict(pending.sources)
            done = engine.migration_progress().rows_done
        else:
            sources = {version: n for version, n in counts.items() if version != to and n}
            done = 0
        moved_bytes = sum(
            n * 4 * (layouts[version].dimension + target.dimension) for version, n in sources.items()
        )
        return MigrationPlan(
            target=to,
            sources=sources,
            staying=counts.get(to, 0),
            dimension_delta={v: target.dimension - layouts[v].dimension for v in sources},
            dropped={v: tuple(n for n in layouts[v].names if n not in target.names) for v in sources},
            missing={version: _missing(layouts[version], target) for version in sources},
            estimated_seconds=moved_bytes / _ESTIMATED_BYTES_PER_SECOND,
            generation=snapshot.generation,
            changes=snapshot.stamp,
            done=done,
            without_content={
                version: snapshot.without_content(version)
                for version in sources
                if _missing(layouts[version], target) and snapshot.without_content(version)
            },
        )


def _missing(source: FeatureLayout, target: FeatureLayout) -> tuple[str, ...]:
    return tuple(name for name in target.names if name not in source.names)


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3} more"
