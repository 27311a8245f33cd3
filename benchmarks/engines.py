"""This engine's CPU time on a scenario against another checkout's, interleaved.

```sh
git worktree add ../mailsim-before adfefb2      # the engine to compare with
.venv/bin/python benchmarks/engines.py ../mailsim-before [--rounds 3] [--detail outcomes,full]
```

Each run is a new process that imports ``mailsim`` from its own checkout, put first on
``sys.path`` ahead of the installed package (a script run from one checkout otherwise
imports the installed one, which may be the other), and times ``World.run`` alone: CPU
time, not loading the scenario or importing. The two engines take turns, round after
round, so that whatever else the machine does falls on both. It prints each run, then for
each level of detail the range of this engine's time over the other's, and whether both
ended the run at the same simulated time (an engine change that keeps results exact
keeps it to the bit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# One run, in a child process: argv is the checkout, the scenario, the detail, the seed.
CHILD = """
import json, sys, time
root = sys.argv[1]
sys.path.insert(0, root)
import mailsim
if not mailsim.__file__.startswith(root):
    sys.exit(f"imported mailsim from {mailsim.__file__}, not from {root}")
from mailsim.scenario import load
from mailsim.world import World
scenario = load(sys.argv[2])
began = time.process_time()
world = World(scenario, int(sys.argv[4]), detail=sys.argv[3])
world.run()
print(json.dumps({"cpu": time.process_time() - began, "end": repr(world.env.now)}))
"""


def run(engine: Path, scenario: Path, detail: str, seed: int) -> dict[str, str | float]:
    """One timed run of ``scenario`` with the engine of the checkout ``engine``."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(engine), str(scenario), detail, str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"engines.py: the run with {engine} failed: {last}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="a checkout of the project (its engine)")
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "busy-office.yaml")
    parser.add_argument("--detail", default="outcomes,full", help="levels, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    other = args.other.resolve()
    problems = []
    if not (other / "mailsim" / "__init__.py").is_file():
        problems.append(f"{args.other}: no mailsim package here; give a checkout of the project")
    if not args.scenario.is_file():
        problems.append(f"--scenario {args.scenario}: no such file")
    details = args.detail.split(",")
    if not set(details) <= {"full", "hops", "outcomes"}:
        problems.append(f"--detail {args.detail}: give full, hops or outcomes, comma-separated")
    if args.rounds < 1:
        problems.append(f"--rounds {args.rounds}: give at least 1")
    if problems:
        print("\n".join(f"engines.py: {p}" for p in problems), file=sys.stderr)
        sys.exit(2)

    engines = {"this": ROOT, "other": other}
    print(
        f"this engine: {ROOT}\nother engine: {other}\nscenario: {args.scenario}, seed {args.seed}"
    )
    for detail in details:
        times: dict[str, list[float]] = {"this": [], "other": []}
        ends: dict[str, set[str]] = {"this": set(), "other": set()}
        for r in range(1, args.rounds + 1):
            for name, engine in engines.items():
                result = run(engine, args.scenario, detail, args.seed)
                times[name].append(float(result["cpu"]))
                ends[name].add(str(result["end"]))
                print(f"  {detail:<8} round {r}  {name:<5}  {result['cpu']:6.2f} s", flush=True)
        ratios = [a / b for a, b in zip(times["this"], times["other"], strict=True)]
        same = "yes" if ends["this"] == ends["other"] and len(ends["this"]) == 1 else "no"
        print(
            f"{detail}: this {min(times['this']):.2f}–{max(times['this']):.2f} s, other "
            f"{min(times['other']):.2f}–{max(times['other']):.2f} s: "
            f"{min(ratios):.2f}–{max(ratios):.2f}× the other's; same end time: {same}"
        )


if __name__ == "__main__":
    main()
