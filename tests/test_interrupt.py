"""Ctrl-C stops a run: one line says so, exit code 130 as a shell expects, no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.conftest import SCENARIOS


def test_mailsim_run_interrupted_exits_130_without_a_traceback():
    process = subprocess.Popen(
        [sys.executable, "-m", "mailsim", "run", str(SCENARIOS / "busy-office.yaml"), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(3.0)  # busy-office runs for many seconds: the signal comes in mid-run
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert out == ""
    assert err == "mailsim: interrupted\n"
