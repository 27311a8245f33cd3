"""Compiled sessions (mailsim.compiled): replaying a session of a known key gives the run
played step by step, to the bit; check mode catches a key that forgets a field."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailsim
from mailsim.agents import client as mail_client
from mailsim.compiled import TemplateMismatch
from mailsim.scenario import validate
from mailsim.world import World
from tests.conftest import SCENARIOS
from tests.test_properties import worlds


def _run(scenario: Any, seed: int = 0, detail: str = "full", **options: Any) -> World:
    world = World(scenario, seed, detail, **options)
    world.run()
    return world


def _same(a: World, b: World) -> None:
    fast, slow = mailsim.world_result(a), mailsim.world_result(b)
    pd.testing.assert_frame_equal(fast.events, slow.events)
    pd.testing.assert_frame_equal(fast.hops, slow.hops)
    assert fast.to_json() == slow.to_json()


def _quiet(world: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """The random world without jitter (which keeps templates off), its mailbox servers
    taking ``concurrency`` sessions at once, and a message an hour later, so that every
    mailbox is checked empty a few times before the run ends."""
    for link in world["links"]:
        link.pop("jitter", None)
    for node in world["nodes"].values():
        if node["role"] == "pop":
            node["concurrency"] = concurrency
    first = sorted(world["users"])[0]
    world["messages"].append({"at": 3600, "from": first, "to": [first], "size": 1000})
    return world


def _office(users: int = 4, concurrency: int = 100) -> dict[str, Any]:
    """``users`` people at one computer checking one mailbox server every minute, all at
    the same moments, and one message among them."""
    people = {
        f"user{u}@office.example": {"client": "pc", "smtp": "mta", "mailbox": "pop",
                                    "password": "secret", "poll": "1min", "poll_start": 0}
        for u in range(users)
    }  # fmt: skip
    return {
        "name": "office",
        "duration": "30min",
        "nodes": {
            "pc": {"role": "client"},
            "mta": {"role": "smtp", "host": "mail.office.example", "domains": ["office.example"]},
            "pop": {"role": "pop", "host": "pop.office.example", "concurrency": concurrency},
            "dns": {"role": "dns"},
            "r": {"role": "router"},
        },
        "links": [
            {"between": ["pc", "r"], "latency": "2ms"},
            {"between": ["mta", "r"], "latency": "1ms"},
            {"between": ["pop", "r"], "latency": "1ms"},
            {"between": ["dns", "r"], "latency": "1ms"},
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
            {
                "at": "25min",
                "from": "user0@office.example",
                "to": ["user1@office.example"],
                "size": 5000,
            }
        ],
    }


def test_an_empty_mailbox_checked_again_is_replayed_to_the_bit():
    """Four users checking every minute: the first empty check of each is played and
    kept; every later one is a replay; the check that finds the message is played."""
    scenario = validate(_office())
    fast = _run(scenario)
    assert len(fast.templates.known) == 4
    events = mailsim.world_result(fast).events
    ended = events[(events.protocol == "pop3") & (events.detail == "+OK Logging out.")]
    empty = ended[ended.message == ""]
    assert len(empty) == 4 * 26 + 3  # 0, 1, … 25 min; at 26 min all but the reader's
    assert fast.templates.replayed == len(empty) - 4
    _same(fast, _run(scenario, fast_forward=False))


@pytest.mark.parametrize("detail", ["full", "hops", "outcomes"])
def test_a_replay_finding_the_server_busy_goes_on_as_real_play(detail):
    """One POP3 session at a time and four checks at once: three replays find every slot
    taken after their handshake, wait in the listen queue and are played from there."""
    scenario = validate(_office(concurrency=1))
    fast = _run(scenario, detail=detail)
    # At 1, 2, … 25 min three replays wait for user0's slot; at 26 min two (user1 finds
    # the message: its check is played, not replayed).
    assert fast.templates.handed == 3 * 25 + 2
    _same(fast, _run(scenario, detail=detail, fast_forward=False))


def test_check_mode_catches_a_key_that_forgets_a_field(monkeypatch):
    """A key without the address makes the four users' checks (one computer, one
    password) one key: replaying user0's check for user1 would send user0's name. Check mode plays every check for real and
    says where the template and the play part."""

    def forgetful(client: str, mailbox: str, address: str, user: Any, security: str) -> Any:
        return ("empty mailbox", client, mailbox, user.password, security)

    monkeypatch.setattr(mail_client, "empty_mailbox", forgetful)
    scenario = validate(_office())
    with pytest.raises(TemplateMismatch, match=r"USER user1@office\.example"):
        _run(scenario, check_templates=True)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_keeps_its_keys_honest(path):
    """Check mode on every shipped scenario (busy-office's first hour): every session of
    a known key does exactly what its template does."""
    shorter = ["duration=1h"] if path.stem == "busy-office" else []
    world = _run(mailsim.load(path, shorter), detail="hops", check_templates=True)
    if path.stem == "busy-office":
        # one key per person who finds the mailbox empty at least once in the hour: 512
        # of the 540 (24 office and 4 partner people find mail at every check)
        assert len(world.templates.known) == 512
    assert world.templates.replayed == 0  # check mode replays nothing: it plays


@settings(max_examples=25, deadline=None)
@given(world=worlds(), seed=st.integers(0, 2**32 - 1), concurrency=st.integers(1, 2))
def test_compiled_sessions_are_exact_on_random_worlds(world, seed, concurrency):
    scenario = validate(_quiet(world, concurrency))
    fast = _run(scenario, seed)
    assert fast.templates.on
    assert fast.templates.replayed > 0
    _same(fast, _run(scenario, seed, fast_forward=False))
    _run(scenario, seed, check_templates=True)  # raises on a mismatch
