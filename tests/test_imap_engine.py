"""IMAP in the engine: polling, IDLE push and dropped idle connections, each second of
them recomputed from the scenario's round trips and the servers' work."""

from __future__ import annotations

import pytest

import mailsim
from mailsim.errors import ScenarioError
from mailsim.scenario import validate
from tests.conftest import SCENARIOS


def classroom_data() -> dict:
    scenario = mailsim.load(SCENARIOS / "classroom.yaml")
    return scenario.model_dump(by_alias=True, exclude_none=True)


def test_retrieval_is_pop3_unless_said():
    data = classroom_data()
    assert validate(data).accounts["bob@home.example"].retrieval == "pop3"
    for way in ("imap", "imap-idle"):
        data["users"]["bob@home.example"]["retrieval"] = way
        assert validate(data).accounts["bob@home.example"].retrieval == way
    data["users"]["bob@home.example"]["retrieval"] = "carrier-pigeon"
    with pytest.raises(
        ScenarioError, match=r"retrieval: Input should be 'pop3', 'imap' or 'imap-idle'"
    ):
        validate(data)


def test_a_link_may_forget_idle_connections():
    data = classroom_data()
    assert validate(data).links[-1].idle_timeout is None
    data["links"][-1]["idle_timeout"] = "5min"
    assert validate(data).links[-1].idle_timeout == 300.0
