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
from hypothesis import given, settings
from hypothesis import strategies as st

import mailsim
from mailsim.scenario import validate
from mailsim.world import World
from tests.test_compiled import _quiet
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
    """Two people of one office sending at the same moment to a mail server that works
    as ``processing`` says and takes ``concurrency`` sessions at once."""
    people = {
        f"{name}@office.example": {"client": f"pc-{name}", "smtp": "mta", "mailbox": "pop",
                                   "poll": "10min"}
        for name in ("ann", "ben")
    }  # fmt: skip
    return {
        "name": "patience",
        "duration": "2h",
        "nodes": {
            "pc-ann": {"role": "client"},
            "pc-ben": {"role": "client"},
            "mta": {
                "role": "smtp",
                "host": "mail.office.example",
                "domains": ["office.example"],
                "processing": processing,
                "concurrency": concurrency,
            },
            "pop": {"role": "pop", "host": "pop.office.example"},
            "dns": {"role": "dns"},
            "r": {"role": "router"},
        },
        "links": [
            {"between": [node, "r"], "latency": "2ms"}
            for node in ("pc-ann", "pc-ben", "mta", "pop", "dns")
        ],
        "dns": {
            "zones": {
                "office.example": {
                    "mx": [{"preference": 10, "host": "mail.office.example"}],
                    "a": {"mail.office.example": "mta", "pop.office.example": "pop"},
                }
            }
        },
        "users": people,
        "messages": [
            {"at": 0, "from": "ann@office.example", "to": ["ben@office.example"], "size": 2000},
            {"at": 0, "from": "ben@office.example", "to": ["ann@office.example"], "size": 2000},
        ],
    }


@pytest.mark.parametrize("detail", ["hops", "outcomes"])
def test_a_server_slower_than_the_clients_patience(detail):
    """The end of DATA takes 700 s; the mail program waits 600 s (RFC 5321 §4.5.3.2.6):
    it gives up, and the server commits the message after it has hung up."""
    result = _same(validate(_patient_server({"data": "700s"}, 100)), detail)
    if detail == "hops":
        hops = result.hops
        submissions = hops[hops.protocol == "submission"]
        assert set(submissions.outcome) == {"no reply within 600 s (4.4.2)"}
        late = hops[hops.protocol == "lmtp"]
        assert late.start.iloc[0] == pytest.approx(700.089059)  # 700 s after the "."
        assert late.duplicate.all()


@pytest.mark.parametrize("detail", ["hops", "outcomes"])
def test_a_busy_server_keeps_a_connection_waiting_past_the_greeting_timeout(detail):
    """One session at a time and a 400 s end of DATA: the second program's connection
    waits in the listen queue longer than the 300 s it waits for a greeting."""
    result = _same(validate(_patient_server({"data": "400s"}, 1)), detail)
    if detail == "hops":
        submissions = result.hops[result.hops.protocol == "submission"]
        outcomes = dict(zip(submissions.src.astype(str) + "#" + submissions.attempts.astype(str),
                            submissions.outcome, strict=True))  # fmt: skip
        assert outcomes == {
            "pc-ann#1": "250 2.0.0 Ok: queued as 106BE00001",
            "pc-ben#1": "no greeting: all server processes busy (4.4.2)",
            "pc-ben#2": "250 2.0.0 Ok: queued as 106BE00003",
        }


@settings(max_examples=25, deadline=None)
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
