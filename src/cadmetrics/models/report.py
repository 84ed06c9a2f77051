"""What a pickle scan found: every global, every problem, and the verdict."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping

import attrs

from cadmetrics.models.policy import Mode


class Verdict(enum.StrEnum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"


@attrs.frozen
class GlobalRef:
    """One global the stream names, as the unpickler asked for it. ``position`` is the stream
    offset just after the opcode that named it (frame-granular from protocol 4 on)."""

    module: str
    name: str
    position: int
    pickle_index: int
    member: str | None
    allowed: bool
    reason: str
    detail: str

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@attrs.frozen
class Problem:
    """A stream that is not a clean pickle: truncated, malformed, trailing data, a bad zip."""

    offset: int
    message: str
    member: str | None = None

    def __str__(self) -> str:
        where = f"{self.member}@{self.offset}" if self.member else f"offset {self.offset}"
        return f"{where}: {self.message}"


@attrs.frozen
class ScanReport:
    verdict: Verdict
    mode: Mode
    globals: tuple[GlobalRef, ...]
    problems: tuple[Problem, ...]
    protocols: tuple[int, ...]
    pickle_count: int
    members: tuple[str, ...]  # archive members scanned as pickles (empty for a raw pickle)
    persistent_ids: int
    opcodes: Mapping[str, int]  # opcode counts (audit mode only)
    sha256: str
    size: int
    seconds: float
    source: str = "<bytes>"

    @property
    def blocked(self) -> bool:
        return self.verdict is Verdict.BLOCKED

    @property
    def block_reasons(self) -> tuple[str, ...]:
        """The contract's reasons for the findings that block (or would block, in audit)."""
        reasons = [g.reason for g in self.globals if not g.allowed]
        if self.problems:
            reasons.append("malformed")
        return tuple(dict.fromkeys(reasons))

    def render(self) -> str:
        lines = [
            f"{self.source}: {self.verdict.upper()} ({self.mode} mode, {self.pickle_count} pickle(s), "
            f"{self.size} bytes, sha256 {self.sha256[:16]}...)"
        ]
        for ref in self.globals:
            if not ref.allowed:
                where = f"{ref.member}@{ref.position}" if ref.member else f"offset {ref.position}"
                lines.append(f"  {ref.reason}: {ref.qualified} at {where}: {ref.detail}")
        lines.extend(f"  malformed: {problem}" for problem in self.problems)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        data = attrs.asdict(self, recurse=True)
        data["verdict"] = self.verdict.value
        data["mode"] = self.mode.value
        data["opcodes"] = dict(self.opcodes)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
