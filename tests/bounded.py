"""The ``mailsim`` command run as a user runs it, with what it cost: exit code, output,
wall time and peak memory (the child's maximum resident set, from ``wait4``).

Bad input must end in one clean line per problem, exit code 2 (1 for a real I/O
failure), no traceback, under :data:`MEMORY_MB` and :data:`SECONDS`. The child's address
space is capped far above that, so that a regression fails the test instead of taking
the machine down.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MEMORY_MB = 500
SECONDS = 10.0
_ADDRESS_SPACE = 4 * 2**30  # a safety net, not the limit tested
ROOT = Path(__file__).resolve().parents[1]
# ``python -m mailsim`` that writes its own peak memory when it exits: the high-water
# mark of its memory since exec (VmHWM). wait4's ru_maxrss also counts the memory of
# this test process, copied at the fork: hundreds of MB late in a full test session.
_MEASURED_MAILSIM = """\
import atexit, os, runpy
def peak():
    with open("/proc/self/status") as status, open(os.environ["BOUNDED_PEAK"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
runpy.run_module("mailsim", run_name="__main__", alter_sys=True)
"""


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    peak_mb: float

    @property
    def problems(self) -> list[str]:
        """The lines on standard error."""
        return self.err.splitlines()


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE, _ADDRESS_SPACE))


def mailsim(
    *args: str | Path,
    stdin: bytes | IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 120,
) -> Run:
    """``python -m mailsim ARGS``; ``stdin`` is bytes or an open file, ``stdout`` an
    open file to write to instead of a pipe (``/dev/full``)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "COLUMNS": "100"}
        env["BOUNDED_PEAK"] = peak.name
        feed = subprocess.PIPE if isinstance(stdin, bytes) else (stdin or subprocess.DEVNULL)
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", _MEASURED_MAILSIM, *map(str, args)],
            stdin=feed,
            stdout=stdout or out,
            stderr=err,
            cwd=cwd or ROOT,
            env=env,
            preexec_fn=_cap,  # no threads are started before it
        )
        if isinstance(stdin, bytes):
            assert child.stdin is not None
            try:
                child.stdin.write(stdin)
                child.stdin.close()
            except BrokenPipeError:
                pass  # it stopped reading: what a bounded reader does
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                raise AssertionError(f"mailsim {' '.join(map(str, args))} ran over {timeout} s")
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        reported = peak.read().strip()  # KiB; nothing if it was killed
        return Run(
            code=child.returncode,
            out=out.read().decode("utf-8", "replace"),
            err=err.read().decode("utf-8", "replace"),
            seconds=seconds,
            peak_mb=int(reported or usage.ru_maxrss) / 1024,
        )


def refused(run: Run, *fragments: str, code: int = 2, lines: int | None = 1) -> None:
    """``run`` ended as bad input should: exit ``code``, ``lines`` lines on standard
    error (None: any number), each ``mailsim: …`` and together holding every fragment,
    no traceback, within the memory and time bounds."""
    assert "Traceback" not in run.err, run.err
    assert run.code == code, (run.code, run.err)
    problems = run.problems
    if lines is not None:
        assert len(problems) == lines, problems
    assert problems, "no message at all"
    assert all(line.startswith("mailsim: ") for line in problems), problems
    for fragment in fragments:
        assert fragment in run.err, (fragment, run.err)
    within(run)


def within(run: Run) -> None:
    assert run.peak_mb < MEMORY_MB, f"peak memory {run.peak_mb:.0f} MB"
    assert run.seconds < SECONDS, f"took {run.seconds:.1f} s"
