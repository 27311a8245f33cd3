"""benchmarks/engines.py: each engine's runs import that engine, whatever is installed;
bad arguments are refused before anything runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "engines.py"


def _engines(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_a_copy_of_the_engine_is_the_one_its_runs_import(tmp_path: Path):
    """Against a copy of this checkout's package (the child refuses to time a ``mailsim``
    imported from anywhere else): two rounds at two levels, each run printed, and the
    same end time to the bit."""
    shutil.copytree(ROOT / "mailsim", tmp_path / "mailsim")
    done = _engines(
        str(tmp_path), "--scenario", str(ROOT / "scenarios" / "classroom.yaml"),
        "--detail", "full,outcomes", "--rounds", "2", "--seed", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == f"other engine: {tmp_path}"
    runs = [
        line for line in lines if re.fullmatch(r"  \w+ +round \d  (this|other) +[\d.]+ s", line)
    ]
    assert len(runs) == 2 * 2 * 2
    summaries = [line for line in lines if not line.startswith(" ")][3:]
    assert [s.split(":")[0] for s in summaries] == ["full", "outcomes"]
    assert all(s.endswith("× the other's; same end time: yes") for s in summaries), summaries


def test_bad_arguments_are_each_named_and_refused(tmp_path: Path):
    done = _engines(str(tmp_path), "--scenario", "nowhere.yaml", "--detail", "all", "--rounds", "0")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"engines.py: {tmp_path}: no mailsim package here; give a checkout of the project",
        "engines.py: --scenario nowhere.yaml: no such file",
        "engines.py: --detail all: give full, hops or outcomes, comma-separated",
        "engines.py: --rounds 0: give at least 1",
    ]
