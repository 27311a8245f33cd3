from __future__ import annotations

from pathlib import Path

import pytest

import mailsim

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="session")
def classroom() -> mailsim.Scenario:
    return mailsim.load(SCENARIOS / "classroom.yaml")


@pytest.fixture(scope="session")
def classroom_result(classroom: mailsim.Scenario) -> mailsim.Result:
    return mailsim.run(classroom, seed=0)
