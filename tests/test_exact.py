"""The exactness gate, CI's size: every shipped scenario (busy-office's first hour) and the
benchmark world at 1,000 messages, at every level of detail, with the engine's fast paths
on and off, give the same tables to the bit (``make exact`` runs the larger gate)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_fast_paths_change_no_result():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "exact.py"), "--quick"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    runs = lines[1:]
    scenarios = len(list((ROOT / "scenarios").glob("*.yaml")))
    assert len(runs) == 3 * (scenarios + 1)
    assert all(line.endswith("  yes") for line in runs), "\n".join(runs)
