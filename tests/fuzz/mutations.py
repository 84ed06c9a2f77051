"""Mutations of real inputs: the edits that broke parsers before, made from a seeded generator.

Byte edits (a byte changed, a run deleted, copied elsewhere or spliced from another input, a
cut) find what any parser must survive; the amplifying edits (a line repeated thousands of
times, brackets nested thousands deep, a number of hundreds of digits or at the edge of float
range) find the missing bounds: inputs that are small on disk and huge in memory or time.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Final

Mutation = Callable[[random.Random, bytes, Sequence[bytes]], bytes]

_NUMBER: Final = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_EXTREMES: Final = (
    b"9" * 400, b"-" + b"9" * 400, b"1e308", b"-1e308", b"3e38", b"1e-320", b"nan", b"inf", b"-0",
    b"18446744073709551616", b"4294967296", b"2147483648", b"0",
)  # fmt: skip


def _span(rng: random.Random, data: bytes, longest: int = 64) -> tuple[int, int]:
    start = rng.randrange(len(data) + 1)
    return start, min(len(data), start + rng.randint(1, longest))


def flip_bytes(rng: random.Random, data: bytes, _others: Sequence[bytes]) -> bytes:
    edited = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if edited:
            edited[rng.randrange(len(edited))] = rng.randrange(256)
    return bytes(edited)


def delete_run(rng: random.Random, data: bytes, _others: Sequence[bytes]) -> bytes:
    start, end = _span(rng, data)
    return data[:start] + data[end:]


def copy_run(rng: random.Random, data: bytes, _others: Sequence[bytes]) -> bytes:
    start, end = _span(rng, data, 256)
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[start:end] + data[at:]


def splice(rng: random.Random, data: bytes, others: Sequence[bytes]) -> bytes:
    other = rng.choice(others) if others else data
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


def cut(rng: random.Random, data: bytes, _others: Sequence[bytes]) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def repeat_line(rng: random.Random, data: bytes, _others: Sequence[bytes]) -> bytes:
    """One line repeated up to 20,000 times: a count a header never declared, a chain of
    operators, a label with a huge set of values."""
    lines = data.split(b"\n")
    index = rng.randrange(len(lines))
    return b"\n".join([*lines[:index], *[lines[index]] * rng.choice((100, 2_000, 20_000)), *lines[index:]])


def nest(rng: random.Random, data: bytes, _others: Sequence[bytes]) -> bytes:
    """Brackets nested hundreds to thousands deep around a point of the input."""
    depth = rng.choice((200, 1_000, 5_000))
    opening, closing = rng.choice(((b"(", b")"), (b"[", b"]"), (b"{", b"}")))
    start, end = _span(rng, data, 16)
    return data[:start] + opening * depth + data[start:end] + closing * depth + data[end:]


def chain(rng: random.Random, data: bytes, _others: Sequence[bytes]) -> bytes:
    """A flat chain of thousands of terms (``1 + 1 + ...``) inserted at a point."""
    at = rng.randrange(len(data) + 1)
    return data[:at] + b" + ".join([b"1"] * rng.choice((500, 3_000))) + data[at:]


def extreme_number(rng: random.Random, data: bytes, _others: Sequence[bytes]) -> bytes:
    """A number of the input replaced by one of hundreds of digits, or at a float's edge."""
    numbers = list(_NUMBER.finditer(data))
    if not numbers:
        return data + rng.choice(_EXTREMES)
    found = rng.choice(numbers)
    return data[: found.start()] + rng.choice(_EXTREMES) + data[found.end() :]


MUTATIONS: Final[tuple[Mutation, ...]] = (
    flip_bytes, delete_run, copy_run, splice, cut, repeat_line, nest, chain, extreme_number,
)  # fmt: skip


#: The largest input a mutation may make: far above any real sample here, and far below the
#: child's memory cap, which must be there for what the input makes, not for the input itself.
MAX_INPUT_BYTES: Final = 32 << 20


def mutant(seed: int, corpus: Sequence[bytes]) -> bytes:
    """The input numbered ``seed``: one to four mutations of one of ``corpus``, the same for
    the same seed and corpus on every machine. A mutation that would make the input larger
    than :data:`MAX_INPUT_BYTES` (a long line repeated 20,000 times) is not applied."""
    rng = random.Random(seed)
    data = rng.choice(corpus)
    for _ in range(rng.randint(1, 4)):
        mutated = rng.choice(MUTATIONS)(rng, data, corpus)
        if len(mutated) <= MAX_INPUT_BYTES:
            data = mutated
    return data
