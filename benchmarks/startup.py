"""How long a student waits for a command, against importing the libraries it stands on.

```sh
.venv/bin/python benchmarks/startup.py [--rounds 10]
```

Runs, interleaved, ``python -c "import pandas, networkx, simpy"`` (the baseline: what any
program on this stack pays before it does anything) and ``mailsim run classroom``,
``mailsim validate classroom`` and ``mailsim --help``, each as a new process, and prints
the CPU time of each (user + system, of the child: steadier than wall time on a busy
machine) and its ratio to the baseline's. The target for ``mailsim run classroom`` is
at most 1.3.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "import pandas, networkx, simpy": [sys.executable, "-c", "import pandas, networkx, simpy"],
    "mailsim run classroom": [sys.executable, "-m", "mailsim", "run", "classroom"],
    "mailsim validate classroom": [sys.executable, "-m", "mailsim", "validate", "classroom"],
    "mailsim --help": [sys.executable, "-m", "mailsim", "--help"],
}


def cpu_seconds(command: list[str]) -> float:
    """User + system CPU time of one run of ``command`` as a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True, env=os.environ)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(rounds):  # interleaved: a slow moment of the machine hits every command
        for name, command in COMMANDS.items():
            times[name].append(cpu_seconds(command))
    baseline = statistics.median(times["import pandas, networkx, simpy"])
    print(f"{'command':<32} {'median CPU':>10} {'ratio':>6}   ({rounds} rounds)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<32} {median:>9.3f}s {median / baseline:>6.2f}")


if __name__ == "__main__":
    main()
