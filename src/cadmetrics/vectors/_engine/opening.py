"""Opening a store's engine: in memory, as the directory's one writer, or read-only beside it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from cadmetrics.errors import StoreCorruptError, VectorStoreError
from cadmetrics.features.layout import FeatureLayout
from cadmetrics.vectors._engine.directory import Directory
from cadmetrics.vectors._engine.engine import DEFAULT_CHECKPOINT_BYTES, Engine
from cadmetrics.vectors._engine.manifest import MANIFEST, Manifest, check_layouts, read_manifest

Listener = Callable[[dict[str, int]], None]

#: How many generations a read-only open tries before it gives up on a writer that
#: checkpoints faster than the store can be opened.
_READ_ONLY_ATTEMPTS = 20


def open_engine(
    root: Path | None,
    *,
    layouts: Mapping[str, FeatureLayout] | None,
    default_layouts: Mapping[str, FeatureLayout],
    sync: bool = True,
    checkpoint_bytes: int = DEFAULT_CHECKPOINT_BYTES,
    read_only: bool = False,
    on_change: Listener | None = None,
) -> Engine:
    """The engine of the store at ``root`` (created when missing), or of a store in memory
    for ``None``; see :meth:`VectorStore.open`. ``on_change`` hears the counts per version
    after every change."""
    if root is None:
        engine = Engine(
            layouts or default_layouts,
            None,
            sync=sync,
            checkpoint_bytes=checkpoint_bytes,
            on_change=on_change,
        )
        engine.changed()
        return engine
    if read_only:
        return _open_read_only(root, on_change)
    directory = Directory.locked(root)
    try:
        manifest = read_manifest(root)
        if manifest is None:
            manifest = Manifest(0, dict(layouts or default_layouts), (), "log-0.wal")
            directory.create(manifest)
        elif layouts is not None:
            check_layouts(root, manifest.layouts, layouts)
        engine = Engine(
            manifest.layouts, directory, sync=sync, checkpoint_bytes=checkpoint_bytes, on_change=on_change
        )
        engine.load(manifest)
    except BaseException:
        directory.close()
        raise
    return engine


def _open_read_only(root: Path, on_change: Listener | None) -> Engine:
    """Open beside a writer: a checkpoint of the writer may remove the files of the
    generation being opened, in which case the next generation is opened instead."""
    for _attempt in range(_READ_ONLY_ATTEMPTS):
        manifest = read_manifest(root)
        if manifest is None:
            raise VectorStoreError(f"{root}: no vector store here (no {MANIFEST})")
        engine = Engine(manifest.layouts, Directory(root), sync=False, read_only=True, on_change=on_change)
        try:
            engine.load(manifest)
            return engine
        except StoreCorruptError:
            engine.close()
            newer = read_manifest(root)
            if newer is None or newer.generation == manifest.generation:
                raise  # really damaged, not a generation that passed
    raise VectorStoreError(f"vector store {root}: its writer checkpoints faster than it can be opened")
