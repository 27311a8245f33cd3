"""The ``mailsim`` command run as a user runs it, with what it cost: exit code, output,
wall time and peak memory (the peak resident set of the command itself).

Bad input must end in one clean line per problem, exit code 2 (1 for a real I/O
failure), no traceback, under :data:`MEMORY_MB` and :data:`SECONDS`. The child's address
space is capped far above that, so that a regression fails the test instead of taking
the machine down.
"""

from __future__ import annotations

import os
import signal
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


# Linux keeps a process's peak memory across exec, and a forked child starts with its
# parent's: a command started from a pytest of 600 MB would measure 600 MB. A small
# launcher starts the command instead, caps it, and writes its own peak to a file.
_LAUNCHER = """
import os, resource, signal, sys
limit, report, *command = sys.argv[1:]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    os.execv(sys.executable, [sys.executable, *command])
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(str(usage.ru_maxrss))
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
"""


def mailsim(
    *args: str | Path,
    stdin: bytes | IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 120,
) -> Run:
    """``python -m mailsim ARGS``; ``stdin`` is bytes or an open file, ``stdout`` an
    open file to write to instead of a pipe (``/dev/full``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "COLUMNS": "100"}
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        feed = subprocess.PIPE if isinstance(stdin, bytes) else (stdin or subprocess.DEVNULL)
        started = time.perf_counter()
        command = ["-m", "mailsim", *map(str, args)]
        child = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(_ADDRESS_SPACE), peak.name, *command],
            stdin=feed,
            stdout=stdout or out,
            stderr=err,
            cwd=cwd or ROOT,
            env=env,
            start_new_session=True,  # a timeout stops the command with its launcher
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
            pid, status, _ = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(child.pid, signal.SIGKILL)
                os.wait4(child.pid, 0)
                raise AssertionError(f"mailsim {' '.join(map(str, args))} ran over {timeout} s")
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            code=child.returncode,
            out=out.read().decode("utf-8", "replace"),
            err=err.read().decode("utf-8", "replace"),
            seconds=seconds,
            peak_mb=int(peak.read() or 0) / 1024,  # KiB on Linux
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
