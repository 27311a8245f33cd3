"""Invariants over random small worlds (hypothesis): nothing lost, nothing twice, time
never goes back, the delay parts add up, and the same seed gives the same result."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mailsim
from mailsim import report
from mailsim.message import COSTS
from mailsim.scenario import validate
from mailsim.world import TERMINAL
from tests.conftest import SCENARIOS

latency = st.floats(min_value=0.0001, max_value=0.08).map(lambda s: f"{s * 1000:.3f}ms")


@st.composite
def worlds(draw: Any) -> dict[str, Any]:
    n_domains = draw(st.integers(1, 3))
    nodes: dict[str, Any] = {
        "core": {"role": "router"},
        "dns": {"role": "dns", "recursion_time": draw(st.sampled_from(["20ms", "80ms"]))},
    }
    links = [{"between": ["core", "dns"], "latency": draw(latency)}]
    zones: dict[str, Any] = {}
    users: dict[str, Any] = {}
    for d in range(n_domains):
        domain = f"d{d}.example"
        nodes[f"mta{d}"] = {
            "role": "smtp",
            "domains": [domain],
            "host": f"mail.{domain}",
            "tls": draw(st.sampled_from(["1.3", "1.2", "none"])),
            "pipelining": draw(st.booleans()),
            "concurrency": draw(st.integers(1, 3)),
        }
        nodes[f"pop{d}"] = {"role": "pop", "tls": draw(st.sampled_from(["1.3", "none"]))}
        nodes[f"r{d}"] = {"role": "router"}
        links += [
            {"between": [f"mta{d}", f"r{d}"], "latency": draw(latency), "jitter": "1ms"},
            {"between": [f"pop{d}", f"mta{d}"], "latency": draw(latency)},
            {"between": [f"r{d}", "core"], "latency": draw(latency),
             "bandwidth": draw(st.sampled_from(["10Mbps", "1Gbps"]))},
            {"between": [f"pop{d}", f"r{d}"], "latency": draw(latency)},
        ]  # fmt: skip
        zones[domain] = {
            "ttl": draw(st.sampled_from([60, 3600])),
            "mx": [{"preference": 10, "host": f"mail.{domain}"}],
            "a": {f"mail.{domain}": f"mta{d}"},
        }
        for u in range(draw(st.integers(1, 3))):
            client = f"c{d}{u}"
            nodes[client] = {"role": "client"}
            links.append({"between": [client, f"r{d}"], "latency": draw(latency)})
            users[f"u{u}@{domain}"] = {
                "client": client,
                "smtp": f"mta{d}",
                "mailbox": f"pop{d}",
                "poll": draw(st.sampled_from(["1min", "5min", "10min"])),
                "poll_start": draw(st.sampled_from([0, 17, 250])),
            }
    addresses = sorted(users)
    messages = [
        {
            "at": draw(st.floats(0, 600)),
            "from": draw(st.sampled_from(addresses)),
            "to": draw(st.lists(st.sampled_from(addresses), min_size=1, max_size=3, unique=True)),
            "size": draw(st.integers(100, 200_000)),
        }
        for _ in range(draw(st.integers(1, 6)))
    ]
    return {"name": "random", "duration": "1d", "nodes": nodes, "links": links,
            "dns": {"zones": zones}, "users": users, "messages": messages}  # fmt: skip


@given(world=worlds(), seed=st.integers(0, 2**32 - 1))
def test_every_message_ends_once_and_time_never_goes_back(world, seed):
    scenario = validate(world)
    result = mailsim.run(scenario, seed=seed)
    messages = result.messages
    sent = sum(len(m["to"]) for m in world["messages"])
    # Nothing lost, nothing twice: one row per (message, recipient), each retrieved.
    assert len(messages) == sent
    assert not messages.duplicated(["id", "recipient"]).any()
    assert set(messages["status"]) == {"retrieved"}
    # Time never goes back: events are recorded as they arrive, in order.
    arrive = result.recorder.column("arrive").tolist()
    assert all(a <= b for a, b in itertools.pairwise(arrive))
    sent = result.recorder.column("time").tolist()
    assert all(t <= a for t, a in zip(sent, arrive, strict=True))
    # Along each copy's journey: submitted ≤ delivered ≤ retrieved, hops in order.
    assert (messages["submitted_at"] <= messages["delivered_at"]).all()
    assert (messages["delivered_at"] <= messages["retrieved_at"]).all()
    hops = result.hops
    assert (hops["start"] <= hops["end"]).all()
    for _, journey in hops.groupby(["message", "recipient"]):
        protocols = list(journey["protocol"])
        assert (protocols[0], protocols[-1]) == ("submission", "pop3")
        assert journey["start"].is_monotonic_increasing
    # The delay parts add up to the end-to-end delay.
    parts = messages[[f"{name}_time" for name in COSTS]].sum(axis=1)
    assert (parts - messages["delay"]).abs().max() < 1e-6
    assert (messages[[f"{name}_time" for name in COSTS]] >= -1e-9).all().all()


@given(world=worlds(), seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_result(world, seed):
    scenario = validate(world)
    assert mailsim.run(scenario, seed=seed).to_json() == mailsim.run(scenario, seed=seed).to_json()


def test_jitter_draws_depend_on_the_seed():
    data = mailsim.load("scenarios/classroom.yaml").model_dump(by_alias=True, exclude_none=True)
    for link in data["links"]:
        link["jitter"] = "5ms"
    scenario = validate(data)
    runs = {mailsim.run(scenario, seed=s).messages["delivered_at"].iloc[0] for s in range(3)}
    assert len(runs) == 3


@pytest.mark.parametrize("seed", [0, 1])
def test_changing_one_link_leaves_other_links_draws_alone(seed):
    """Common random numbers: each link has its own stream, keyed by its two ends."""
    data = mailsim.load("scenarios/classroom.yaml").model_dump(by_alias=True, exclude_none=True)
    for link in data["links"]:
        link["jitter"] = "5ms"
    base = mailsim.run(validate(data), seed=seed)
    data["links"][-1]["latency"] = 0.05  # bob's access link, used only by POP3
    changed = mailsim.run(validate(data), seed=seed)
    assert base.messages["delivered_at"].iloc[0] == changed.messages["delivered_at"].iloc[0]


# -- with faults ---------------------------------------------------------------------------

window = st.tuples(st.floats(0, 3600), st.floats(60, 7200)).map(
    lambda w: {"start": round(w[0], 3), "end": round(w[0] + w[1], 3)}
)


@st.composite
def faulty_worlds(draw: Any) -> dict[str, Any]:
    data = draw(worlds())
    mtas = [n for n, node in data["nodes"].items() if node["role"] == "smtp"]
    pops = [n for n, node in data["nodes"].items() if node["role"] == "pop"]
    mailboxes = [a for a, u in data["users"].items() if u.get("mailbox")]
    faults: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["down", "crash", "slow", "overload", "hang", "greylist",
                                     "servfail", "nxdomain", "resolver-down", "link-down",
                                     "loss", "mailbox-full"]))  # fmt: skip
        fault: dict[str, Any] = {"kind": kind}
        if kind == "crash":
            fault.update(node=draw(st.sampled_from(mtas + pops)), at=draw(st.floats(0, 900)),
                         restart=draw(st.sampled_from(["1min", "10min"])))  # fmt: skip
        else:
            fault.update(draw(window))
            if kind in ("down", "slow", "overload", "hang", "greylist"):
                fault["node"] = draw(st.sampled_from(mtas + pops))
            if kind == "slow":
                fault["factor"] = draw(st.sampled_from([10, 1e5]))
            if kind in ("servfail", "nxdomain"):
                fault["domain"] = draw(st.sampled_from(sorted(data["dns"]["zones"])))
            if kind == "resolver-down":
                fault["node"] = "dns"
            if kind in ("link-down", "loss"):
                fault["between"] = draw(st.sampled_from(data["links"]))["between"]
            if kind == "loss":
                fault["rate"] = draw(st.sampled_from([0.05, 0.3]))
            if kind == "mailbox-full":
                fault.update(
                    user=draw(st.sampled_from(mailboxes)), code=draw(st.sampled_from([452, 552]))
                )
        faults.append(fault)
    data["faults"] = faults
    if draw(st.booleans()):  # a message to someone who does not exist
        sender = sorted(data["users"])[0]
        data["messages"].append({"at": 5, "from": sender, "to": ["ghost@d0.example"]})
    for name in mtas:
        data["nodes"][name]["queue"] = {
            "policy": draw(st.sampled_from(["postfix", "rfc", "exim"])),
            "maximal_queue_lifetime": draw(st.sampled_from(["2h", "5d"])),
        }
    return data


@given(world=faulty_worlds(), seed=st.integers(0, 2**32 - 1))
def test_with_faults_nothing_is_lost_and_every_bounce_is_accounted_for(world, seed):
    result = mailsim.run(validate(world), seed=seed)
    messages = result.messages
    mail = messages[messages["kind"] == "message"]
    sent = sum(len(m["to"]) for m in world["messages"])
    # Conservation: every (message, recipient) once, in exactly one final state.
    assert len(mail) == sent
    assert not messages.duplicated(["id", "recipient"]).any()
    states = ("retrieved", "delivered", "refused", "bounced", "expired", "in_flight")
    assert set(messages["status"]) <= set(states)
    summary = result.summary()
    assert sum(summary[s] for s in states) == summary["sent"] == sent
    # Duplicates only arise where a message was sent and its 250 never read.
    for dup in result.duplicates:
        steps = result.events[result.events["session"] == dup.duplicated_in]
        assert "message" in set(steps["step"]), "a duplicate without a transferred message"
    # Every bounce or expiry after acceptance sent a notification back; bounces never
    # bounce, and each notification ends in a state of its own.
    hops = result.hops
    reports = {c.message.report.original.id: c for c in result.copies if c.message.report}
    for copy in result.copies:
        if copy.message.is_bounce:
            assert copy.message.report.original.sender != ""
            continue
        mine = hops[(hops["message"] == copy.message.id) & (hops["recipient"] == copy.recipient)]
        if copy.status == "refused":  # the sender's own server said no: nothing goes back
            assert set(mine["protocol"]) == {"submission"}
            assert copy.message.id not in reports
        if copy.status in ("bounced", "expired"):
            assert copy.message.id in reports
    assert summary["bounces_sent"] == sum(
        summary[f"bounces_{s}"] for s in ("retrieved", "delivered", "undeliverable", "in_flight")
    )
    # Time never goes back.
    arrive = result.recorder.column("arrive").tolist()
    assert all(a <= b for a, b in itertools.pairwise(arrive))
    assert (hops["start"] <= hops["end"] + 1e-9).all()


@given(world=faulty_worlds(), seed=st.integers(0, 2**32 - 1))
def test_with_faults_same_seed_same_result(world, seed):
    scenario = validate(world)
    assert mailsim.run(scenario, seed=seed).to_json() == mailsim.run(scenario, seed=seed).to_json()


@given(world=faulty_worlds(), seed=st.integers(0, 2**32 - 1))
def test_following_the_progress_of_a_run_changes_nothing(world, seed):
    """A run with a progress callback stops and resumes 100 times: same events, same
    order, same result; the callback sees simulated time go forward to the end."""
    scenario = validate(world)
    seen: list[tuple[float, float]] = []
    followed = mailsim.run(scenario, seed=seed, progress=lambda now, end: seen.append((now, end)))
    plain = mailsim.run(scenario, seed=seed)
    assert followed.to_json() == plain.to_json()
    pd.testing.assert_frame_equal(followed.events, plain.events)
    assert seen
    assert all(end == scenario.duration for _, end in seen)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


# -- detail levels ---------------------------------------------------------------------------


# A whole working day takes a minute per run: its first hours, the morning rush, suffice.
WINDOW = {"busy-office": ["duration=3h"]}


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_detail_level_gives_the_same_message_timings(path):
    scenario = mailsim.load(path, WINDOW.get(path.stem, ()))
    columns = ["id", "recipient", "status", "submitted_at", "delivered_at", "retrieved_at",
               *(f"{name}_time" for name in COSTS)]  # fmt: skip
    full = mailsim.run(scenario, detail="full")
    hops = mailsim.run(scenario, detail="hops")
    outcomes = mailsim.run(scenario, detail="outcomes")
    for other in (hops, outcomes):
        pd.testing.assert_frame_equal(other.messages[columns], full.messages[columns])
        assert other.events.empty
    assert len(hops.hops) == len(full.hops)
    assert outcomes.hops.empty


@given(world=faulty_worlds(), seed=st.integers(0, 2**32 - 1))
def test_detail_levels_agree_on_random_worlds(world, seed):
    """At ``outcomes`` a finished copy leaves only its row: the messages table, the
    summary and the JSON messages are the same as when every copy is kept."""
    scenario = validate(world)
    full = mailsim.run(scenario, seed=seed)
    lean = mailsim.run(scenario, seed=seed, detail="outcomes")
    pd.testing.assert_frame_equal(full.messages, lean.messages)
    assert lean.summary() == full.summary()
    without_hops = [{**m, "hops": []} for m in full.to_dict()["messages"]]
    assert lean.to_dict()["messages"] == without_hops
    # What is kept: the copies still on their way, and a row for each of the others.
    on_their_way = [c for c in full.copies if c.status not in TERMINAL]
    assert [(c.message.id, c.recipient) for c in lean.copies] == [
        (c.message.id, c.recipient) for c in on_their_way
    ]
    assert lean.n_messages == len(full.copies)


def test_a_report_keeping_outcomes_only_tells_every_message_but_its_hops():
    scenario = mailsim.load(SCENARIOS / "greylisting.yaml")
    full = report.text(mailsim.run(scenario), limit=1, width=200)  # no cell wraps
    lean = report.text(mailsim.run(scenario, detail="outcomes"), limit=1, width=200)
    hop_row = re.compile(r"^ +(#|\d+) +\S+ +\S+ +(protocol|submission|smtp|lmtp|pop3) ")
    assert lean == "\n".join(line for line in full.splitlines() if not hop_row.match(line))
    assert "… and 1 more (use --json or --out)" in lean


def test_a_finished_copy_kept_as_a_row_says_how_to_keep_it():
    result = mailsim.run(mailsim.load(SCENARIOS / "classroom.yaml"), detail="outcomes")
    assert result.copies == []
    with pytest.raises(KeyError, match="--detail outcomes kept only its row"):
        result.email("m1")


# -- fast-forwarding -------------------------------------------------------------------------


def _played(scenario: Any, seed: int, fast_forward: bool) -> mailsim.Result:
    from mailsim.world import World

    world = World(scenario, seed, fast_forward=fast_forward)
    world.run()
    return mailsim.world_result(world)


@given(world=faulty_worlds(), seed=st.integers(0, 2**32 - 1))
def test_moving_the_clock_at_once_is_exact_on_random_worlds(world, seed):
    """A wait that nothing else can interrupt moves the clock without a SimPy event; with
    faults, lost 250s, full queues and jitter, the run is the one played event by event:
    the same steps at the same times, the same hops, the same outcomes."""
    scenario = validate(world)
    fast = _played(scenario, seed, fast_forward=True)
    slow = _played(scenario, seed, fast_forward=False)
    pd.testing.assert_frame_equal(fast.events, slow.events)
    pd.testing.assert_frame_equal(fast.hops, slow.hops)
    assert fast.to_json() == slow.to_json()


@pytest.mark.parametrize("name", ["server-crash", "greylisting", "own-server-or-provider"])
def test_moving_the_clock_at_once_is_exact_on_shipped_scenarios(name):
    scenario = mailsim.load(SCENARIOS / f"{name}.yaml")
    fast = _played(scenario, 0, fast_forward=True)
    slow = _played(scenario, 0, fast_forward=False)
    pd.testing.assert_frame_equal(fast.events, slow.events)
    assert fast.to_json() == slow.to_json()
