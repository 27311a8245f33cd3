from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")  # figures render without a screen
os.environ["COLUMNS"] = "80"  # reports as on a newcomer's terminal, whatever runs the tests

import pytest
from hypothesis import HealthCheck, settings

import mailsim

# Property tests: the same examples on every run in CI; `--hypothesis-profile explore`
# searches further with fresh random examples.
_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, max_examples=40, **_common)
settings.register_profile("explore", max_examples=400, **_common)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="session")
def classroom() -> mailsim.Scenario:
    return mailsim.load(SCENARIOS / "classroom.yaml")


@pytest.fixture(scope="session")
def classroom_result(classroom: mailsim.Scenario) -> mailsim.Result:
    return mailsim.run(classroom, seed=0)


@functools.cache
def shipped(path: Path) -> mailsim.Result:
    """A shipped scenario's run at seed 0, full detail, made once per test session: the
    golden, plot and layout tests all look at the same run (busy-office takes a minute)."""
    return mailsim.run(mailsim.load(path), seed=0)


@pytest.fixture
def page():
    """A projector's page: 1280×720 pixels."""
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(12.8, 7.2), dpi=100, layout="constrained")
    yield ax
    plt.close(figure)


def run(name: str) -> mailsim.Result:
    """A shipped scenario's run, by name (made once per test session)."""
    return shipped(SCENARIOS / f"{name}.yaml")


def row_of(ax: Any, node: str) -> int:
    """The row of a figure whose tick label starts with ``node``."""
    names = [t.get_text() for t in ax.get_yticklabels()]
    (row,) = [k for k, text in enumerate(names) if text.split(" ")[0] == node]
    return row


def chromium() -> str:
    """Debian's Chromium, for the tests that drive a real browser (`make test` installs it
    as root). Missing, it fails the test under CI and skips it elsewhere, saying what to
    install — in a test or at a module's top."""
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        why = "needs Chromium from the distribution: apt-get install chromium (make test does, as root)"
        if os.environ.get("CI"):
            raise RuntimeError(why)  # in CI a missing tool fails the run, never skips
        pytest.skip(why, allow_module_level=True)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now; another process (a parallel
    test's) may take it before it is used."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
