"""How a sweep scales with worker processes: the same 40-run study with 1 and 2 workers.

    .venv/bin/python benchmarks/sweep_workers.py [--runs 40] [--messages 60]

The study is a latency sweep (4 grid points × runs/4 replications) over a world of
throughput.py's kind, small enough that one run takes about half a second. It prints the
seconds with each number of workers, the speed-up, and checks that the tables are equal.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

import mailsim

sys.path.insert(0, str(Path(__file__).parent))
from throughput import world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="a multiple of 4")
    parser.add_argument("--messages", type=int, default=60)
    args = parser.parse_args()
    data = world(10, 10, args.messages)
    link = data["links"][0]["between"]
    key = f"links.{link[0]}/{link[1]}.latency"
    vary = {key: ["5ms", "20ms", "50ms", "100ms"]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "world.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        times, tables = {}, {}
        for workers in (1, 2):
            began = time.perf_counter()
            tables[workers] = mailsim.sweep(path, vary, args.runs // 4, seed=0, workers=workers)
            times[workers] = time.perf_counter() - began
            print(f"{args.runs} runs with {workers} worker(s): {times[workers]:.2f} s")
    print(f"speed-up with 2 workers: {times[1] / times[2]:.2f}×")
    print(f"same table: {tables[1].equals(tables[2])}")


if __name__ == "__main__":
    main()
