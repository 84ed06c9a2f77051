"""Run a surface's target on inputs in a child process with a memory and a time cap, and say
what each input did.

Outcomes: ``result`` (the target returned) and ``error`` (the library's own error) are what
bad input may give; ``bug`` (any other exception), ``blowup`` (memory past the cap),
``crash`` (the child died) and ``hang`` (past the time cap) are findings. One child serves a
surface until it crashes or hangs, then a fresh one takes over, so a run costs one start per
finding rather than one per input.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from typing import IO, Any, Final

import attrs

#: The caps every input runs under: address space (2 GiB) and seconds.
MEMORY_BYTES: Final = 2 << 30
SECONDS: Final = 10.0

FINDINGS: Final = ("bug", "blowup", "crash", "hang")
_LENGTH = struct.Struct("<Q")


@attrs.frozen
class Outcome:
    """What one input did: its kind (see the module), and what to know about it."""

    seed: int
    kind: str
    detail: str = ""

    @property
    def finding(self) -> bool:
        return self.kind in FINDINGS


def available(needs: Iterable[str]) -> list[str]:
    """The modules of ``needs`` that are missing (a dotted name whose package is missing too)."""
    return [name for name in needs if not _importable(name)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class Child:
    """A worker process for one surface, with the caps set on it."""

    def __init__(self, surface: str, memory_bytes: int = MEMORY_BYTES, seconds: float = SECONDS) -> None:
        self.surface = surface
        self.memory_bytes = memory_bytes
        self.seconds = seconds
        self._process: subprocess.Popen[bytes] | None = None

    def run(self, seed: int, data: bytes) -> Outcome:
        """What ``data`` did in the child."""
        process = self._started()
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(_LENGTH.pack(len(data)) + data)
            stdin.flush()
        except OSError:
            return self._died(seed)
        replies: list[bytes | None] = []
        reader = threading.Thread(target=lambda: replies.append(_message(stdout)), daemon=True)
        reader.start()
        reader.join(self.seconds)
        if reader.is_alive():
            self.close()
            return Outcome(seed, "hang", f"no answer within {self.seconds:g} s")
        if not replies or replies[0] is None:
            return self._died(seed)
        reply = json.loads(replies[0])
        return Outcome(seed, reply["kind"], reply["detail"])

    def _died(self, seed: int) -> Outcome:
        process = self._process
        self._process = None
        code = process.wait() if process is not None else None
        how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        return Outcome(seed, "crash", how)

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.fuzz.harness", self.surface, str(self.memory_bytes)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
        return self._process

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()


def run_inputs(surface: str, inputs: Iterable[tuple[int, bytes]], **caps: Any) -> Iterator[Outcome]:
    """Each input's outcome, in order, from one child (restarted after a crash or hang)."""
    child = Child(surface, **caps)
    try:
        for seed, data in inputs:
            yield child.run(seed, data)
    finally:
        child.close()


def _message(stream: IO[bytes]) -> bytes | None:
    head = _exactly(stream, _LENGTH.size)
    if head is None:
        return None
    return _exactly(stream, _LENGTH.unpack(head)[0])


def _exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# -- the child's side ------------------------------------------------------------------------------


def _outcome(target: Any, data: bytes) -> dict[str, str]:
    from cadmetrics.errors import CadMetricsError

    try:
        target(data)
    except CadMetricsError as exc:
        return {"kind": "error", "detail": f"{type(exc).__name__}: {getattr(exc, 'reason', '')}"}
    except MemoryError:
        return {"kind": "blowup", "detail": "MemoryError"}
    except RecursionError as exc:
        return {"kind": "bug", "detail": f"RecursionError: {exc}"}
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return {
            "kind": "bug",
            "detail": f"{type(exc).__name__}: {exc} at {where.filename}:{where.lineno}"[:500],
        }
    return {"kind": "result", "detail": ""}


def main() -> None:
    """The child: ``python -m tests.fuzz.harness SURFACE MEMORY_BYTES``; inputs on standard
    input, outcomes on a copy of standard output (standard output itself goes nowhere)."""
    from tests.fuzz.surfaces import SURFACES

    surface, memory = SURFACES[sys.argv[1]], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    while True:
        data = _message(sys.stdin.buffer)
        if data is None:
            return
        encoded = json.dumps(_outcome(surface.target, data)).encode()
        replies.write(_LENGTH.pack(len(encoded)) + encoded)
        replies.flush()


if __name__ == "__main__":
    main()
