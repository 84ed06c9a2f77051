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
    """A finding that is not a global: a stream that is not a clean pickle (truncated,
    malformed, trailing data), a tampered or oversized archive, a container whose header lies,
    an ONNX reference to data outside the model's folder. ``reason`` is the contract's block
    reason."""

    offset: int
    message: str
    member: str | None = None
    reason: str = "malformed"

    def __str__(self) -> str:
        where = f"{self.member}@{self.offset}" if self.member else f"offset {self.offset}"
        return f"{where}: {self.message}"


class Role(enum.StrEnum):
    """What a member of a container (or a section of a file) is to the framework that reads it."""

    PICKLE = "pickle"  # unpickled by the framework's loader: scanned
    STORAGE = "storage"  # raw tensor bytes (a PyTorch storage, a joblib inline array)
    ARRAY = "array"  # a numpy .npy array of plain values
    SOURCE = "source"  # TorchScript source text, compiled by TorchScript, never unpickled
    METADATA = "metadata"  # version markers, byte order, JSON headers
    DATA = "data"  # bytes no reader unpickles


@attrs.frozen
class Part:
    """One member of a container, or one section of a file, and its role."""

    name: str
    role: Role
    size: int


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
    format: str = "pickle"  # what the content is (pickle, joblib, torch, safetensors, onnx...)
    parts: tuple[Part, ...] = ()  # every member or section with its role

    @property
    def has_code(self) -> bool:
        """Whether any part of the file is unpickled by its framework (only those can run code)."""
        return self.pickle_count > 0 or bool(self.members)

    @property
    def blocked(self) -> bool:
        return self.verdict is Verdict.BLOCKED

    @property
    def block_reasons(self) -> tuple[str, ...]:
        """The contract's reasons for the findings that block (or would block, in audit)."""
        reasons = [g.reason for g in self.globals if not g.allowed]
        reasons.extend(problem.reason for problem in self.problems)
        return tuple(dict.fromkeys(reasons))

    @property
    def to_allow(self) -> tuple[str, ...]:
        """The globals the allowlist refused (and the blocklist did not): what a host that
        trusts this file names in ``Policy.extend(allow=...)``."""
        return tuple(dict.fromkeys(g.qualified for g in self.globals if g.reason == "not_allowlisted"))

    def render(self) -> str:
        code = f"{self.pickle_count} pickle(s)" if self.has_code else "no pickle: no code"
        lines = [
            f"{self.source}: {self.verdict.upper()} ({self.format}, {self.mode} mode, {code}, "
            f"{self.size} bytes, sha256 {self.sha256[:16]}...)"
        ]
        for ref in self.globals:
            if not ref.allowed:
                where = f"{ref.member}@{ref.position}" if ref.member else f"offset {ref.position}"
                lines.append(f"  {ref.reason}: {ref.qualified} at {where}: {ref.detail}")
        lines.extend(f"  {problem.reason}: {problem}" for problem in self.problems)
        if self.to_allow:
            lines.append(f"  if you trust this file: Policy().extend(allow={list(self.to_allow)!r})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        data = attrs.asdict(self, recurse=True)
        data["verdict"] = self.verdict.value
        data["mode"] = self.mode.value
        data["opcodes"] = dict(self.opcodes)
        data["parts"] = [{"name": p.name, "role": p.role.value, "size": p.size} for p in self.parts]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
