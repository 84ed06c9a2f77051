"""Progress bars for long runs: tqdm's bar on a terminal when the ``features`` extra is installed,
nothing otherwise, so a library call never writes to a log that nobody watches."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class ProgressBar(Protocol):
    def update(self, count: int) -> Any: ...

    def close(self) -> None: ...


class _NoBar:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, *, unit: str, description: str, show: bool | None = None) -> ProgressBar:
    """A bar counting ``total`` ``unit``s; ``show=None`` shows it only when stderr is a terminal."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    bar: ProgressBar = tqdm(total=total, unit=unit, desc=description)
    return bar
