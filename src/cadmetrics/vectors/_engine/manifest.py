"""The manifest: which segments, which log and which pending migration make up a store.

It is one JSON file, replaced atomically; its rename is the instant a new generation of the
store takes effect. Reading it checks every field it relies on, so that a damaged manifest is
reported by name instead of failing somewhere deep in an open.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from cadmetrics.durable import fsync_path, write_atomically
from cadmetrics.errors import StoreCorruptError, VectorStoreError
from cadmetrics.features.layout import Feature, FeatureLayout
from cadmetrics.vectors._engine.segment import SegmentInfo

MANIFEST: Final = "manifest.json"
SEGMENTS: Final = "segments"
FORMAT: Final = 1


@attrs.frozen
class PendingMigration:
    """A migration begun and not finished: the rows of ``segments`` (``rows`` live rows, ids
    up to ``id_width`` bytes) are being written, converted to ``target``, into the segment
    ``segment``, which no generation names until the migration's final commit."""

    target: str
    segment: str
    sources: Mapping[str, int]  # records that move, per source version
    segments: tuple[str, ...]
    rows: int
    id_width: int
    started: float  # wall clock: the duration metric spans a resumed run too

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "segment": self.segment,
            "sources": dict(self.sources),
            "segments": list(self.segments),
            "rows": self.rows,
            "id_width": self.id_width,
            "started": self.started,
        }

    @classmethod
    def from_json(cls, value: Any, where: Path) -> PendingMigration:
        try:
            return cls(
                target=str(value["target"]),
                segment=str(value["segment"]),
                sources={str(version): int(count) for version, count in value["sources"].items()},
                segments=tuple(str(name) for name in value["segments"]),
                rows=int(value["rows"]),
                id_width=int(value["id_width"]),
                started=float(value.get("started", 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreCorruptError(
                f"{where}: the manifest's log or migration entry is damaged ({exc!r})"
            ) from None


@attrs.frozen
class Manifest:
    generation: int
    layouts: Mapping[str, FeatureLayout]
    segments: tuple[SegmentInfo, ...]
    log: str  # the log's file name, beside the manifest
    migration: PendingMigration | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "generation": self.generation,
            "layouts": {
                version: [
                    {"name": f.name, "group": f.group, "default": f.default, "description": f.description}
                    for f in layout.features
                ]
                for version, layout in self.layouts.items()
            },
            "segments": [info.to_json() for info in self.segments],
            "log": self.log,
            "migration": None if self.migration is None else self.migration.to_json(),
        }


def read_manifest(root: Path) -> Manifest | None:
    """The manifest of the store at ``root``; None where there is none yet."""
    path = root / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreCorruptError(f"{path}: cannot be read ({exc})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreCorruptError(f"{path}: not JSON at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        found = value.get("format") if isinstance(value, dict) else None
        raise StoreCorruptError(f"{path}: not a vector store manifest of format {FORMAT} (format {found!r})")
    kinds = {"generation": int, "layouts": dict, "segments": list, "log": str}
    for key, kind in kinds.items():
        if not isinstance(value.get(key), kind):
            raise StoreCorruptError(f"{path}: the manifest's {key!r} is missing or not a {kind.__name__}")
    migration = value.get("migration")
    if not isinstance(migration, dict | None) or "/" in value["log"]:
        raise StoreCorruptError(f"{path}: the manifest's log or migration entry is damaged")
    return Manifest(
        generation=value["generation"],
        layouts=_layouts(path, value["layouts"]),
        segments=tuple(SegmentInfo.from_json(item, path) for item in value["segments"]),
        log=value["log"],
        migration=None if migration is None else PendingMigration.from_json(migration, path),
    )


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Replace the manifest at ``root`` atomically, and make the rename itself durable."""
    (root / SEGMENTS).mkdir(exist_ok=True)
    write_atomically(root / MANIFEST, json.dumps(manifest.to_json(), indent=1).encode("utf-8"))
    fsync_path(root)


def _layouts(path: Path, value: dict[str, Any]) -> dict[str, FeatureLayout]:
    try:
        return {
            str(version): FeatureLayout(
                str(version),
                tuple(
                    Feature(
                        str(f["name"]), str(f.get("description", "")), group=str(f["group"]),
                        default=float(f["default"]),
                    )
                    for f in features
                ),
            )
            for version, features in value.items()
        }  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreCorruptError(f"{path}: the layouts cannot be read ({exc!r})") from None


def check_layouts(
    root: Path, stored: Mapping[str, FeatureLayout], given: Mapping[str, FeatureLayout]
) -> None:
    """Refuse to open a store with layouts other than those it was made with."""
    for version in sorted(set(stored) | set(given)):
        old, new = stored.get(version), given.get(version)
        if old is None or new is None or old.names != new.names:
            raise VectorStoreError(
                f"vector store {root}: its {version} layout differs from the one given "
                f"({'missing' if old is None else old.dimension} vs "
                f"{'missing' if new is None else new.dimension} features, or other names); "
                "open it without layouts= to use the ones it was made with"
            )
