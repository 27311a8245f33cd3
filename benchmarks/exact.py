"""The exactness gate: every speed-up must leave every result as it was, to the bit.

    python benchmarks/exact.py            # every shipped scenario, the benchmark world
                                          # at 1,000 and 10,000 messages
    python benchmarks/exact.py --quick    # what CI runs: busy-office's first hour and
                                          # the benchmark world at 1,000

plays each world twice, with the engine's fast paths on (the clock moved at once when
nothing else is due) and off (every wait a SimPy event), at every level of detail, and
compares the fingerprints of the events, hops and messages tables and the end time
(:mod:`mailsim.fingerprint`). Prints one line per run with both CPU times; exits 1 on
any difference. ``make exact`` runs this and the property test that does the same on
random worlds with faults, at its exploring size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import world as benchmark_world  # noqa: E402

import mailsim  # noqa: E402
from mailsim.fingerprint import fingerprint  # noqa: E402
from mailsim.scenario import validate  # noqa: E402
from mailsim.world import World  # noqa: E402


def played(scenario: mailsim.Scenario, detail: str, fast: bool) -> tuple[dict[str, str], float]:
    """The run's fingerprint and the CPU seconds it took."""
    start = time.process_time()
    world = World(scenario, 0, detail, fast_forward=fast)
    world.run()
    result = mailsim.world_result(world)
    seconds = time.process_time() - start
    return fingerprint(result), seconds


def worlds(quick: bool) -> list[tuple[str, mailsim.Scenario]]:
    out = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        shorter = ["duration=1h"] if quick and path.stem == "busy-office" else []
        out.append((path.stem + (" (1 h)" if shorter else ""), mailsim.load(path, shorter)))
    for messages in (1000,) if quick else (1000, 10_000):
        # The shape of benchmarks/throughput.py's default world.
        scenario = validate(benchmark_world(50, 20, messages))
        out.append((f"benchmark world, {messages:,} messages", scenario))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI's smaller set")
    args = parser.parse_args(argv)
    different = []
    print(f"{'world':<40} {'detail':<9} {'fast s':>8} {'slow s':>8}  same")
    for name, scenario in worlds(args.quick):
        for detail in ("full", "hops", "outcomes"):
            fast, fast_s = played(scenario, detail, True)
            slow, slow_s = played(scenario, detail, False)
            same = fast == slow
            if not same:
                tables = [k for k in fast if fast[k] != slow.get(k)]
                different.append(f"{name} at {detail}: {', '.join(tables)} differ")
            print(f"{name:<40} {detail:<9} {fast_s:8.2f} {slow_s:8.2f}  {'yes' if same else 'NO'}",
                  flush=True)  # fmt: skip
    for line in different:
        print(line, file=sys.stderr)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
