from __future__ import annotations

import functools
import os
from pathlib import Path

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
