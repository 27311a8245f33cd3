"""The work of a run, estimated before it starts: runs that cannot finish or fit are
refused in one line with the estimate, the rest run as before."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import mailsim
from mailsim import budget
from mailsim.traffic import WORKING_DAY, expected_count
from tests.bounded import mailsim as command
from tests.bounded import refused, within
from tests.conftest import SCENARIOS

# One domain, one mail server, N users writing to each other: the shape of a large world.
WORLD = textwrap.dedent(
    """\
    name: many
    duration: {duration}
    nodes:
      pcs: {{role: client}}
      mx: {{role: smtp, domains: [x.example]}}
      pop: {{role: pop}}
      dns: {{role: dns}}
    links:
      - {{between: [pcs, mx], latency: 1ms}}
      - {{between: [mx, pop], latency: 1ms}}
      - {{between: [mx, dns], latency: 1ms}}
    dns:
      zones:
        x.example: {{mx: [{{preference: 10, host: mx.x.example}}], a: {{mx.x.example: mx}}}}
    users:
      "u{{1..{users}}}@x.example": {{client: pcs, smtp: mx, mailbox: pop, poll: {poll},
                                  poll_start: spread}}
    traffic:
      - {{from: "{senders}", to: "*@x.example", rate: {rate}}}
    """
)


def world(tmp_path: Path, name: str = "world.yaml", **values: object) -> Path:
    settings = {"duration": "1h", "users": 3, "poll": "10min", "senders": "*@x.example"}
    settings["rate"] = "1/h"
    path = tmp_path / name
    path.write_text(WORLD.format(**{**settings, **values}))
    return path


# -- the expected number of messages ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "start", "stop", "profile", "clock", "expected"),
    [
        (2 / 3600, 0, 3 * 3600, "flat", 0, 6.0),
        (1 / 3600, 0, 86400, "working-day", 0, sum(WORKING_DAY)),  # 9.6 peak hours a day
        (1 / 3600, 0, 7 * 86400, "working-day", 5 * 3600, 7 * sum(WORKING_DAY)),
        # 09:00–10:30 local: the hour from 9 (0.95) and half the hour from 10 (1.0)
        (1 / 3600, 0, 5400, "working-day", 9 * 3600, 0.95 + 0.5),
        (1 / 3600, 1800, 1800, "flat", 0, 0.0),  # an empty window
    ],
)
def test_expected_count_integrates_the_hourly_weights(rate, start, stop, profile, clock, expected):
    assert expected_count(rate, start, stop, profile, clock) == pytest.approx(expected)


def test_the_busy_office_is_estimated_within_one_per_cent():
    """17,004 messages in the golden run (tests/golden/busy-office.json); the expected
    count of its Poisson traffic is 17,094."""
    golden = json.loads((Path(__file__).parent / "golden" / "busy-office.json").read_text())
    work = budget.estimate(mailsim.load(SCENARIOS / "busy-office.yaml"))
    assert work.messages == pytest.approx(golden["summary"]["sent"], rel=0.01)


def test_a_single_message_is_estimated_as_it_is(classroom):
    work = budget.estimate(classroom, "full")
    assert (work.messages, work.copies) == (1, 1)
    # submission, DNS, relay, LMTP + the polls of bob until the message is read (5 min)
    assert work.sessions == budget.SESSIONS_PER_COPY + work.polls
    assert work.polls == pytest.approx((10 + 300) / 300)


def test_a_phone_on_idle_waits_for_no_poll_and_opens_a_session_per_renewal():
    scenario = mailsim.load(SCENARIOS / "pop-imap-push.yaml")
    work = budget.estimate(scenario)
    readers = {a: u for a, u in scenario.accounts.items() if u.mailbox}
    ways = sorted((u.retrieval, u.poll) for u in readers.values())
    assert ways == [("imap", 600.0), ("imap-idle", 600.0), ("pop3", 300.0)]
    last = max(m.at for m in scenario.messages)
    horizon = min(scenario.duration, last + 600)  # the longest poll: carol's IMAP; not dan's
    expected = horizon / 600 + horizon / 300 + horizon / (29 * 60)
    assert work.polls == pytest.approx(expected)


def test_a_web_page_that_keeps_its_connection_counts_two_events_a_refresh():
    scenario = mailsim.load(SCENARIOS / "webmail.yaml")
    slow = mailsim.load(SCENARIOS / "webmail.yaml", ['users["dana@webmail.example"].poll=2min'])
    kept, anew = budget.estimate(scenario), budget.estimate(slow)
    last = max(m.at for m in scenario.messages)
    horizon = min(scenario.duration, last + 300)  # the longest poll: bob's 5 min POP3
    bob = horizon / 300
    assert kept.polls == pytest.approx(bob + horizon / 60 * 2 / budget.EVENTS_PER_SESSION)
    assert anew.polls == pytest.approx(bob + horizon / 120)  # connects each time


def test_sessions_after_the_first_kinds_cost_what_a_replay_costs(tmp_path):
    """Three people writing once an hour and polling every minute for a day: 4,320
    polls and 4 sessions a message, of which the first kinds (three a person) are
    played and the rest replayed; with a crash in the world nothing is compiled, and
    every session is played; IMAP checks are played where POP3's are replayed."""
    path = world(tmp_path, duration="1d", poll="1min")
    work = budget.estimate(mailsim.load(path), "outcomes")
    assert (work.polls, work.sessions) == pytest.approx((3 * 1440, 3 * 1440 + 4 * 3 * 24))
    played = budget.KINDS_PER_PERSON * 3
    assert work.seconds == pytest.approx(
        budget.SECONDS_PER_PLAY * played + budget.SECONDS_PER_REPLAY * (work.sessions - played)
    )
    full = budget.estimate(mailsim.load(path), "full")
    assert full.seconds == pytest.approx(
        budget.SECONDS_PER_PLAY * budget.FULL_SLOWDOWN * played
        + budget.SECONDS_PER_REPLAY * budget.FULL_REPLAY_SLOWDOWN * (work.sessions - played)
    )
    crash = path.with_name("crash.yaml")
    crash.write_text(path.read_text() + "faults:\n  - {kind: crash, node: mx, at: 1h}\n")
    faulty = budget.estimate(mailsim.load(crash), "outcomes")
    assert faulty.sessions == work.sessions
    assert faulty.seconds == pytest.approx(budget.SECONDS_PER_PLAY * work.sessions)
    # IMAP checks are not compiled: played, every one
    imap = path.with_name("imap.yaml")
    imap.write_text(
        path.read_text().replace("poll_start: spread", "poll_start: spread, retrieval: imap")
    )
    reading = budget.estimate(mailsim.load(imap), "outcomes")
    assert reading.polls == work.polls
    played = reading.polls + budget.KINDS_PER_PERSON * 3
    assert reading.seconds == pytest.approx(
        budget.SECONDS_PER_PLAY * played + budget.SECONDS_PER_REPLAY * (work.sessions - played)
    )


def test_rounded_counts_do_not_look_exact():
    assert [budget.rounded(v) for v in (7, 1234, 17094, 7.2e13)] == [
        "7",
        "1,200",
        "17,000",
        "72,000,000,000,000",
    ]


# -- refusals --------------------------------------------------------------------------------


def test_a_million_messages_a_second_is_refused_at_once(tmp_path):
    path = world(tmp_path, rate=1000000)
    refused(
        command("run", path),
        f"{path}: traffic: this run would send 11,000,000,000 messages",
        "more than the 1,000,000 allowed",
        "--max-messages",
    )
    with pytest.raises(mailsim.InputError, match="allowed"):
        mailsim.run(mailsim.load(path))


def test_max_messages_moves_the_limit(tmp_path):
    path = world(tmp_path, users=2, rate="60/h", duration="10min")  # about 20 messages
    refused(command("run", path, "--max-messages", "5"), "more than the 5 allowed")
    assert mailsim.run(mailsim.load(path), max_messages=100).n_messages > 5
    refused(command("run", path, "--max-messages", "0"), "--max-messages must be 1 or more")


def test_a_year_of_polls_by_many_users_is_refused(tmp_path):
    """One sender, a year: few messages, but 20,000 mailboxes polled every minute are
    10.5 billion POP3 sessions."""
    path = world(tmp_path, users=20000, senders="u1@x.example", rate="1/d", duration="366d")
    path.write_text(path.read_text().replace("poll: 10min", "poll: 1min"))
    refused(command("run", path), "users: this run would play", "POP3 polls", "poll less often")


def test_a_run_that_does_not_fit_in_memory_is_refused_with_the_way_on(monkeypatch):
    scenario = mailsim.load(SCENARIOS / "busy-office.yaml")
    full = budget.estimate(scenario, "full").memory
    lighter = budget.estimate(scenario, "outcomes").memory
    monkeypatch.setattr(budget, "memory_budget", lambda: (full + lighter) / 2)
    with pytest.raises(mailsim.InputError) as caught:
        mailsim.run(scenario)
    (problem,) = caught.value.problems
    assert "at --detail full (17,000 messages), more than half of this machine" in str(problem)
    assert "--detail outcomes needs about" in str(problem)
    assert budget.check(scenario, "x", "outcomes").memory == lighter


def test_a_sweep_of_a_hundred_million_runs_is_refused_before_anything_is_made(tmp_path):
    refused(
        command(
            "sweep", SCENARIOS / "classroom.yaml", "--vary",
            "links.r-school/r-home.latency=10ms,20ms", "--replications", "100000000",
            "--out", tmp_path / "out",
        ),
        "--replications: 100000000: 2 grid points × 100,000,000 replications is"
        " 200,000,000 runs; at most 100,000",
    )  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_grid_that_multiplies_out_is_refused(tmp_path):
    values = ",".join(f"{n}ms" for n in range(1, 41))
    keys = ["links.r-school/r-home.latency", "links.alice-pc/msa-school.latency"]
    refused(
        command(
            "sweep", SCENARIOS / "classroom.yaml", "--vary", f"{keys[0]}={values}",
            "--vary", f"{keys[1]}={values}", "--out", tmp_path / "out",
        ),
        "1,600 grid points (the values multiply out); at most 1,000",
    )  # fmt: skip


# -- memory that grows with the world, not with its square -------------------------------------


def test_senders_share_one_list_of_recipients(tmp_path):
    """5,000 users who all write to each other: each sender waits for its first message
    holding what it needs to pick a recipient. A list of the 4,999 others per sender
    was 200 MB; one shared list is 40 KB."""
    import tracemalloc

    from mailsim.world import World

    scenario = mailsim.load(world(tmp_path, users=5000, duration="1d", poll="1d"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = World(scenario, 0, "outcomes")
        built.env.run(until=1.0)  # every generator has started and waits for its first
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert built._generators == 5000
    assert held < 30 * 2**20, f"{held / 2**20:.0f} MB"


def test_ten_thousand_users_writing_to_each_other_fit(tmp_path):
    """Every sender picks among the same list of recipients: before, each of 10,000
    senders held its own copy of the other 9,999 (800 MB)."""
    path = world(tmp_path, users=10000, duration="2min", poll="1h")
    run = command("run", path, "--detail", "outcomes", "--json")
    assert run.code == 0, run.err
    sent = json.loads(run.out)["messages"]
    assert 250 < len(sent) < 420  # 20,000 × 1/h × 1 min = 333 expected
    assert all(m["sender"] != m["recipient"] for m in sent)
    within(run)


def test_more_sweep_processes_than_four_a_core_are_refused(tmp_path):
    import os

    cores = os.cpu_count() or 1
    refused(
        command(
            "sweep", SCENARIOS / "classroom.yaml", "--vary",
            "links.r-school/r-home.latency=10ms,20ms", "--workers", str(4 * cores + 1),
            "--out", tmp_path / "out",
        ),
        f"--workers: {4 * cores + 1}: this machine has {cores} cores: at most {4 * cores}"
        " processes",
    )  # fmt: skip
    with pytest.raises(ValueError, match="workers is a whole number, 1 or more; not 0"):
        mailsim.sweep(SCENARIOS / "classroom.yaml", {"duration": ["1h"]}, 1, workers=0)
