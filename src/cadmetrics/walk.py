"""The files a command was given: named ones, and every file under a named directory.

The commands that take ``PATH...`` (``scan``, ``extract``) treat the two kinds differently:
a named file that is not of their format is an error, a file found in a directory is only
skipped. So each file comes with whether it was named.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path


def walk_files(paths: Sequence[str]) -> Iterator[tuple[Path, bool]]:
    """Each file, in order (a directory's files sorted), and whether it was named."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from ((child, False) for child in sorted(path.rglob("*")) if child.is_file())
        else:
            yield path, True
