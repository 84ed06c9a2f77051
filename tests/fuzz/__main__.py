"""``python -m tests.fuzz`` (``./dev fuzz``): fuzz every input surface for a while, and say
per surface how many inputs were tried, what they gave, and what they found.

Each finding's input is written to ``fuzz-findings/SURFACE-SEED.bin`` (the seed alone
rebuilds it: ``tests.fuzz.mutations.mutant(seed, corpus)``), to become a regression test.
Exit status 1 when anything was found.
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Iterator
from pathlib import Path

from tests.fuzz.harness import MEMORY_BYTES, SECONDS, available, run_inputs
from tests.fuzz.mutations import mutant
from tests.fuzz.surfaces import SURFACES


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("surfaces", nargs="*", help=f"of {', '.join(SURFACES)} (default: all)")
    parser.add_argument("--seconds", type=float, default=60.0, help="per surface (default 60)")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first input (default 0)")
    parser.add_argument("--memory", type=int, default=MEMORY_BYTES, help="address-space cap in bytes")
    parser.add_argument("--timeout", type=float, default=SECONDS, help="seconds per input")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="where findings go")
    args = parser.parse_args()
    found_any = False
    for name in args.surfaces or list(SURFACES):
        surface = SURFACES[name]
        missing = available(surface.needs)
        corpus = surface.corpus() if not missing else []
        if missing or not corpus:
            print(f"{name}: skipped ({'missing ' + ', '.join(missing) if missing else 'no inputs found'})")
            continue
        inputs = _until(time.monotonic() + args.seconds, args.first_seed, corpus)
        kinds: collections.Counter[str] = collections.Counter()
        for outcome in run_inputs(name, inputs, memory_bytes=args.memory, seconds=args.timeout):
            kinds[outcome.kind] += 1
            if outcome.finding:
                found_any = True
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"{name}-{outcome.seed}.bin").write_bytes(mutant(outcome.seed, corpus))
                print(f"{name}: seed {outcome.seed}: {outcome.kind}: {outcome.detail}")
        counts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        print(f"{name}: {sum(kinds.values())} inputs in {args.seconds:g} s: {counts}")
    return 1 if found_any else 0


def _until(deadline: float, first: int, corpus: list[bytes]) -> Iterator[tuple[int, bytes]]:
    """Inputs numbered from ``first`` until ``deadline`` (a ``time.monotonic`` value)."""
    seed = first
    while time.monotonic() < deadline:
        yield seed, mutant(seed, corpus)
        seed += 1


if __name__ == "__main__":
    raise SystemExit(main())
