"""The swift steps (Session._swift_step): in a quiet world, where nothing is recorded step
by step, a session plays its plain course in one frame and hands whatever leaves it — a
deadline missed, a busy server — to the general code. The runs must be those played
step by step, to the bit, on the way off the plain course as well as on it; and there
the message sessions are compiled too (tests/test_compiled.py), which check mode
verifies on the random worlds."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mailsim
from mailsim.scenario import validate
from mailsim.world import World
from tests.test_compiled import _office, _quiet
from tests.test_properties import worlds


def _run(scenario: Any, detail: str, fast: bool) -> World:
    world = World(scenario, 0, detail, fast_forward=fast)
    world.run()
    return world


def _same(scenario: Any, detail: str) -> mailsim.Result:
    """Play ``scenario`` swiftly and step by step; the results must be one."""
    swift = _run(scenario, detail, True)
    assert swift.swift
    fast, slow = mailsim.world_result(swift), mailsim.world_result(_run(scenario, detail, False))
    pd.testing.assert_frame_equal(fast.hops, slow.hops)
    assert fast.to_json() == slow.to_json()
    return fast


def _patient_server(processing: dict[str, str], concurrency: int) -> dict[str, Any]:
    """Two people at the office computer sending to each other at the same moment, to a
    mail server that works as ``processing`` says and takes ``concurrency`` sessions at
    once."""
    world = _office(users=2)
    world["duration"] = "2h"
    world["nodes"]["mta"] |= {"processing": processing, "concurrency": concurrency}
    first, second = sorted(world["users"])
    world["messages"] = [
        {"at": 0, "from": first, "to": [second], "size": 2000},
        {"at": 0, "from": second, "to": [first], "size": 2000},
    ]
    return world


@pytest.mark.parametrize("detail", ["hops", "outcomes"])
def test_a_server_slower_than_the_clients_patience(detail):
    """The end of DATA takes 700 s; the mail program waits 600 s (RFC 5321 §4.5.3.2.6):
    it gives up, and the server commits the message after it has hung up."""
    result = _same(validate(_patient_server({"data": "700s"}, 100)), detail)
    if detail == "hops":
        hops = result.hops
        submissions = hops[hops.protocol == "submission"]
        assert set(submissions.outcome) == {"no reply within 600 s (4.4.2)"}
        first, late = submissions.iloc[0], hops[hops.protocol == "lmtp"].iloc[0]
        # the server commits 100 s after the client hung up, and passes the message on
        assert late.start - first.end == pytest.approx(100.0, abs=0.01)
        assert hops[hops.protocol == "lmtp"].duplicate.all()


@pytest.mark.parametrize("detail", ["hops", "outcomes"])
def test_a_busy_server_keeps_a_connection_waiting_past_the_greeting_timeout(detail):
    """One session at a time and a 400 s end of DATA: the second program's connection
    waits in the listen queue longer than the 300 s it waits for a greeting."""
    result = _same(validate(_patient_server({"data": "400s"}, 1)), detail)
    if detail == "hops":
        submissions = result.hops[result.hops.protocol == "submission"]
        outcomes = dict(zip(submissions.recipient.astype(str) + " #" + submissions.attempts.astype(str),
                            submissions.outcome, strict=True))  # fmt: skip
        assert outcomes == {
            "user1@office.example #1": "250 2.0.0 Ok: queued as 106BE00001",
            "user0@office.example #1": "no greeting: all server processes busy (4.4.2)",
            "user0@office.example #2": "250 2.0.0 Ok: queued as 106BE00003",
        }


@given(
    world=worlds(),
    seed=st.integers(0, 2**32 - 1),
    concurrency=st.integers(1, 2),
    detail=st.sampled_from(["hops", "outcomes"]),
)
def test_the_swift_steps_are_exact_on_random_worlds(world, seed, concurrency, detail):
    scenario = validate(_quiet(world, concurrency))
    swift = World(scenario, seed, detail)
    swift.run()
    assert swift.swift
    slow = World(scenario, seed, detail, fast_forward=False)
    slow.run()
    fast, step_by_step = mailsim.world_result(swift), mailsim.world_result(slow)
    pd.testing.assert_frame_equal(fast.hops, step_by_step.hops)
    assert fast.to_json() == step_by_step.to_json()
    World(scenario, seed, detail, check_templates=True).run()  # raises on a mismatch
