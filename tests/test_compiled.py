"""Compiled sessions (mailsim.compiled): replaying a session of a known key gives the run
played step by step, to the bit; check mode catches a key that forgets a field."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mailsim
from mailsim.agents import client as mail_client
from mailsim.agents.pop import MailboxServer
from mailsim.compiled import ON_CLIENT, SIGHTINGS, TemplateMismatch, line_source
from mailsim.scenario import validate
from mailsim.session import Session
from mailsim.world import World
from tests.conftest import SCENARIOS
from tests.test_properties import worlds


def _kinds(world: World) -> Counter[str]:
    """The world's templates by kind: SMTP's by service; POP3 checks that find mail."""
    names = {"pop3": "mail to fetch"}
    return Counter(
        key[1] if key[0] == "smtp" else names.get(key[0], key[0]) for key in world.templates.known
    )


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
    kept; every later one is a replay; the check that finds the message is played (the
    message's sessions are scripted, at full detail, only when their key comes again)."""
    scenario = validate(_office())
    fast = _run(scenario)
    assert _kinds(fast) == {"empty mailbox": 4}
    events = mailsim.world_result(fast).events
    ended = events[(events.protocol == "pop3") & (events.detail == "+OK Logging out.")]
    empty = ended[ended.message == ""]
    assert len(empty) == 4 * 26 + 3  # 0, 1, … 25 min; at 26 min all but the reader's
    assert fast.templates.replayed == len(empty) - 4
    _same(fast, _run(scenario, fast_forward=False))


@pytest.mark.parametrize("detail", ["full", "hops", "outcomes"])
def test_a_replay_finding_the_server_busy_waits_in_the_listen_queue_and_goes_on(detail):
    """One POP3 session at a time and four checks at once: three replays find every slot
    taken after their handshake, wait in the listen queue as a play does, and go on
    replaying: the wait, a few milliseconds, leaves the greeting's deadline (100 s) as
    far off as it was in the play, less SLACK."""
    scenario = validate(_office(concurrency=1))
    fast = _run(scenario, detail=detail)
    # At 1, 2, … 25 min three replays wait for user0's slot; at 26 min two (user1 finds
    # the message: its check is played, not replayed).
    assert fast.templates.queued == 3 * 25 + 2
    assert fast.templates.handed == 0
    _same(fast, _run(scenario, detail=detail, fast_forward=False))


@pytest.mark.parametrize(
    ("command", "queued", "handed", "ends"),
    [("30s", 3, 15, {"gave up": 13, "let in": 2}), ("40s", 0, 33, {"gave up": 15, "let in": 18})],
)
@pytest.mark.parametrize("detail", ["full", "hops", "outcomes"])
def test_a_replay_whose_wait_brings_the_deadline_too_close_hands_over_to_real_play(
    monkeypatch, detail, command, queued, handed, ends
):
    """Dovecot taking 30 or 40 s a command, one session at a time: a check holds the
    slot for minutes and the others queue behind it. A replay that waited little goes
    on; one whose wait leaves its greeting's deadline (100 s) closer than its play met
    it, less SLACK, is played from the end of the wait, let in or giving up as a play
    does. The same run, to the bit, as with every session played; at 40 s a command,
    replays that went on regardless would greet the client after its deadline."""
    ended: Counter[str] = Counter()
    accept = Session._accept

    def counted(self: Session, step: Any, server: Any, work: Any, deadline: float,
                turn: Any, queued: bool = False) -> Any:  # fmt: skip
        if queued:
            ended["let in" if turn.triggered else "gave up"] += 1
        return accept(self, step, server, work, deadline, turn, queued)

    snapshots: list[bool] = []
    server = MailboxServer.pop3_server

    def made(self: MailboxServer, user: str, password: str, empty: bool = False) -> Any:
        snapshots.append(empty)
        return server(self, user, password, empty)

    monkeypatch.setattr(Session, "_accept", counted)
    monkeypatch.setattr(MailboxServer, "pop3_server", made)
    world = _office(concurrency=1)
    world["nodes"]["pop"]["processing"] = {"command": command}
    scenario = validate(world)
    fast = _run(scenario, detail=detail)
    assert (fast.templates.queued, fast.templates.handed) == (queued, handed)
    assert ended == ends
    # Below full detail the handed-over checks were quiet replays: their servers are
    # made at the handover, over the maildrop as each check found it, empty.
    assert snapshots.count(True) == (0 if detail == "full" else handed)
    monkeypatch.undo()
    _same(fast, _run(scenario, detail=detail, fast_forward=False))


@pytest.mark.parametrize("concurrency", [100, 1])
@pytest.mark.parametrize("detail", ["full", "hops", "outcomes"])
def test_an_empty_check_is_replayed_without_a_server_or_a_dialogue(
    monkeypatch, detail, concurrency
):
    """Below full detail a check that finds the mailbox empty only waits and holds a
    slot: its replay makes no POP3 server and no dialogue, also when it waits in the
    listen queue. At full detail it records its steps: replayed with both."""
    made: list[bool] = []
    dialogues: list[str] = []
    server, client = MailboxServer.pop3_server, mail_client.pop3.client

    def counted_server(self: MailboxServer, user: str, password: str, empty: bool = False) -> Any:
        made.append(empty)
        return server(self, user, password, empty)

    def counted_client(address: str, *args: Any, **kwargs: Any) -> Any:
        dialogues.append(address)
        return client(address, *args, **kwargs)

    monkeypatch.setattr(MailboxServer, "pop3_server", counted_server)
    monkeypatch.setattr(mail_client.pop3, "client", counted_client)
    scenario = validate(_office(concurrency=concurrency))
    fast = _run(scenario, detail=detail)
    quiet = {(key[0], t.quiet(fast.templates.full)) for key, t in fast.templates.known.items()}
    # 4 users × 27 checks (0, 1, … 26 min): 107 find the mailbox empty, 4 of them first
    # plays; user1's check at 26 min finds the message. With one slot, three replays
    # wait for user0's slot each minute, two at 26 min, and go on (test above).
    assert fast.templates.replayed == 107 - 4
    assert fast.templates.queued == (0 if concurrency == 100 else 3 * 25 + 2)
    if detail == "full":
        assert quiet == {("empty mailbox", False)}  # the message's keys come once
        assert made == [False] * 108
    else:  # a message's sessions call back, or record its hops
        assert quiet == {("empty mailbox", True), ("smtp", False), ("pop3", False)}
        assert made == [False] * 5
    assert len(dialogues) == len(made)
    monkeypatch.undo()
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


@pytest.mark.parametrize("detail", ["full", "hops"])
@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_keeps_its_keys_honest(path, detail):
    """Check mode on every shipped scenario (busy-office's first hour): every session of
    a known key does exactly what its template does, records and all at full detail."""
    shorter = ["duration=1h"] if path.stem == "busy-office" else []
    world = _run(mailsim.load(path, shorter), detail=detail, check_templates=True)
    if path.stem == "busy-office":  # at full detail too: one machine per office
        kinds = _kinds(world)
        # one key per person who finds the mailbox empty at least once in the hour: 512
        # of the 540 (24 office and 4 partner people find mail at every check); one per
        # way a message goes, as the lengths of the addresses tell them apart (staff001@
        # office.example has 23 octets, contact01@partner.example 25): submissions inside
        # the office, from the office out and from the partner in; relays each way; LMTP
        # into each mailbox server, and into the office's from a partner's message; checks
        # that find mail, by the number of messages found (all of one size; at full
        # detail a key is scripted at its third play, and one of them comes twice)
        fetch = 7 if detail == "full" else 8
        assert kinds == {
            "empty mailbox": 512, "mail to fetch": fetch, "submission": 3, "relay": 2, "lmtp": 3
        }  # fmt: skip
    assert world.templates.replayed == 0  # check mode replays nothing: it plays


@given(world=worlds(), seed=st.integers(0, 2**32 - 1), concurrency=st.integers(1, 2))
def test_compiled_sessions_are_exact_on_random_worlds(world, seed, concurrency):
    scenario = validate(_quiet(world, concurrency))
    fast = _run(scenario, seed)
    assert fast.templates.on
    assert fast.templates.replayed > 0
    _same(fast, _run(scenario, seed, fast_forward=False))
    _run(scenario, seed, check_templates=True)  # raises on a mismatch


# -- message sessions: SMTP and LMTP ---------------------------------------------------------


def _two_offices(messages: int = 12, unknown: bool = False) -> dict[str, Any]:
    """Two offices of four people each (addresses of one length), writing to each other
    and among themselves every five minutes: submissions, relays and LMTP deliveries of a
    few keys, each played once and replayed after. With ``unknown``, every third message
    also goes to someone the sender's own office does not have."""
    nodes: dict[str, Any] = {"dns": {"role": "dns"}, "core": {"role": "router"}}
    links: list[dict[str, Any]] = [{"between": ["dns", "core"], "latency": "1ms"}]
    zones: dict[str, Any] = {}
    users: dict[str, Any] = {}
    for office, latency in (("a", "5ms"), ("b", "40ms")):
        domain = f"{office}.example"
        nodes |= {
            f"pc-{office}": {"role": "client"},
            f"mta-{office}": {"role": "smtp", "host": f"mail.{domain}", "domains": [domain]},
            f"pop-{office}": {"role": "pop", "host": f"pop.{domain}"},
        }
        links += [
            {"between": [f"pc-{office}", "core"], "latency": "2ms"},
            {"between": [f"mta-{office}", "core"], "latency": latency},
            {"between": [f"pop-{office}", f"mta-{office}"], "latency": "1ms"},
            {"between": [f"pop-{office}", "core"], "latency": "1ms"},
        ]
        zones[domain] = {
            "mx": [{"preference": 10, "host": f"mail.{domain}"}],
            "a": {f"mail.{domain}": f"mta-{office}", f"pop.{domain}": f"pop-{office}"},
        }
        for u in range(4):
            users[f"user{u}@{domain}"] = {"client": f"pc-{office}", "smtp": f"mta-{office}",
                                          "mailbox": f"pop-{office}", "password": f"pw{u}",
                                          "poll": "2min", "poll_start": 30 * u}  # fmt: skip
    people = sorted(users)
    sent = []
    for i in range(messages):
        to = [people[(3 * i + 1) % len(people)]]
        if unknown and i % 3 == 0:
            to.append("nobody@" + people[i % len(people)].split("@")[1])
        sent.append({"at": 300 * i + 7, "from": people[i % len(people)], "to": to,
                     "size": 4000 + 16000 * (i % 2)})  # fmt: skip
    return {"name": "two offices", "duration": "2h", "nodes": nodes, "links": links,
            "dns": {"zones": zones}, "users": users, "messages": sent}  # fmt: skip


@pytest.mark.parametrize("detail", ["full", "hops", "outcomes"])
def test_message_sessions_are_replayed_to_the_bit(detail, monkeypatch):
    """Twelve messages, 36 message sessions, six keys: a.example writes 4,000 bytes to
    b.example, b.example 20,000 to a.example, and each way has one key of submission, one
    of relay and one of LMTP — the two offices' servers share them, their paths being
    as long. After the first of each key, the 30 others are replays, each with its own
    queue id and recipient."""
    scenario = validate(_two_offices())
    fast = _run(scenario, detail=detail)
    kinds = _kinds(fast)
    assert kinds == {
        "submission": 2, "relay": 2, "lmtp": 2, "empty mailbox": 8, "mail to fetch": 2
    }  # fmt: skip
    _same(fast, _run(scenario, detail=detail, fast_forward=False))
    if detail == "hops":
        hops = mailsim.world_result(fast).hops
        queued = hops[hops.protocol == "submission"].outcome
        assert queued.nunique() == 12
        assert queued.str.startswith("250 2.0.0 Ok: queued as").all()
        saved = hops[hops.protocol == "lmtp"].outcome
        assert saved.nunique() == 12  # 250 2.0.0 <recipient> queue-id Saved
    _run(scenario, detail=detail, check_templates=True)  # raises on a mismatch
    monkeypatch.setattr(mail_client, "transfer_key", lambda *args, **kwargs: None)
    from mailsim.agents import mta

    monkeypatch.setattr(mta, "transfer_key", lambda *args, **kwargs: None)
    polls_only = _run(scenario, detail=detail)
    # at full detail a key is scripted at its third play (SIGHTINGS): three plays a key
    assert fast.templates.replayed - polls_only.templates.replayed == (
        18 if detail == "full" else 30
    )


@pytest.mark.parametrize("detail", ["hops", "full"])
def test_a_replay_rebuilds_the_transcript_without_playing_the_dialogue(detail, monkeypatch):
    """Each message key keeps the outline of what its dialogue returned; a replay makes
    the transcript again from it, with its own recipients and the queue id of its own
    reply to the message: its dialogue is never started, at full detail either (its
    command lines are made from their forms).
    An outline that kept the first play's queue id fails check mode."""
    from mailsim.agents import keys
    from mailsim.protocols import smtp

    steps: list[str] = []
    real_client = smtp.client

    def counted(*args: Any) -> Any:
        dialogue = real_client(*args)
        step = next(dialogue)
        while True:
            steps.append(type(step).__name__)
            try:
                step = dialogue.send((yield step))
            except StopIteration as stop:
                return stop.value

    monkeypatch.setattr(smtp, "client", counted)
    scenario = validate(_two_offices())
    fast = _run(scenario, detail=detail)
    outlined = [t for t in fast.templates.known.values() if t.drives and t.key[0] == "smtp"]
    assert len(outlined) == 6
    assert all(t.result is not None for t in outlined)
    # 36 message sessions: the plays reach the message (at full detail a key is scripted
    # at its SIGHTINGS-th play); the replays take no step
    plays = 6 if detail == "hops" else 6 * SIGHTINGS
    assert steps.count("Content") == plays
    assert steps.count("Connect") == plays
    _same(fast, _run(scenario, detail=detail, fast_forward=False))

    real_outline, real_rebuild = keys.SmtpResume.outline, keys.SmtpResume.rebuild

    def first_id(self: Any, result: Any, content: Any) -> Any:  # the play's id, kept
        outline = real_outline(self, result, content)
        return None if outline is None else (*outline[:3], result.queue_id, outline[4])

    def rebuild(self: Any, outline: Any, content: Any) -> Any:
        out = real_rebuild(self, (*outline[:3], outline[3] is not None, outline[4]), content)
        if isinstance(outline[3], str):
            out.queue_id = outline[3]
        return out

    monkeypatch.setattr(keys.SmtpResume, "outline", first_id)
    monkeypatch.setattr(keys.SmtpResume, "rebuild", rebuild)
    with pytest.raises(TemplateMismatch, match="rebuilt"):
        _run(scenario, detail=detail, check_templates=True)


def test_a_pop3_replay_books_each_copy_without_playing_the_dialogue(monkeypatch):
    """A check that finds mail keeps what its dialogue returned (the numbers retrieved,
    TLS, the commit): a replay calls the callbacks that book each copy, and never starts
    its dialogue. An outline that forgot the commit does not give the play's result
    back: the template keeps none, and its replays drive the dialogue."""
    from mailsim.agents import keys
    from mailsim.protocols import pop3

    started: list[str] = []
    real_client = pop3.client

    def counted(*args: Any, **kwargs: Any) -> Any:
        started.append(args[0])
        return (yield from real_client(*args, **kwargs))

    monkeypatch.setattr(pop3, "client", counted)
    scenario = validate(_two_offices())
    fast = _run(scenario, detail="hops")
    fetched = [t for t in fast.templates.known.values() if t.key[0] == "pop3"]
    assert [t.result[:3] for t in fetched] == [((1,), "1.3", True)] * 2
    # The callbacks are called back where they read something: where TLS is learnt and
    # where a copy is booked, with the costs since the step before it
    called = [
        op[1].lines[0].split()[0] if hasattr(op[1], "lines") else type(op[1]).__name__
        for op in fetched[0].plan(False)
        if op[0] == ON_CLIENT
    ]
    assert called == ["Connect", "TlsHandshake", "LIST", "RETR", "DELE"]
    hops = mailsim.world_result(fast).hops
    assert (hops.protocol == "pop3").sum() == 12  # every copy booked, replayed or played
    # 228 checks, each played step by step without the fast paths; with them, the first
    # of each of the 10 keys (8 finding the mailbox empty, 2 finding mail) alone
    assert len(started) == 10
    started.clear()
    _same(fast, _run(scenario, detail="hops", fast_forward=False))
    assert len(started) == 228

    real_outline = keys.Pop3Resume.outline

    def uncommitted(self: Any, result: Any, content: Any) -> Any:
        retrieved, tls, _, error = real_outline(self, result, content)
        return retrieved, tls, False, error

    monkeypatch.setattr(keys.Pop3Resume, "outline", uncommitted)
    started.clear()
    driven = _run(scenario, detail="hops")
    assert [t.result for t in driven.templates.known.values() if t.key[0] == "pop3"] == [None] * 2
    assert len(started) == 10 + 10  # and the 10 replays of the two that find mail
    _same(driven, fast)


def test_a_replay_at_full_detail_records_its_own_commands_and_replies():
    """At full detail a replay records every step: the texts its own dialogue and server
    made where they name the session (MAIL FROM, RCPT TO, AUTH's secret on the wire, the
    replies to the message), the template's elsewhere; the events and what went on the
    wire are those of the run played step by step."""
    scenario = validate(_two_offices())
    fast = _run(scenario, detail="full")
    assert fast.templates.replayed > 0
    events = mailsim.world_result(fast).events
    mail = events[events.step == "MAIL"].detail
    # every sender's own, replayed or played (with SIZE= where the server offers it)
    assert set(mail.str.extract(r"<(.*)>")[0]) == {
        f"user{u}@{o}.example" for u in range(4) for o in "ab"
    }
    saved = events[(events.protocol == "lmtp") & events.detail.str.endswith(" Saved")]
    assert saved.detail.nunique() == 12  # each with its own recipient and queue id
    slow = _run(scenario, detail="full", fast_forward=False)
    _same(fast, slow)
    assert fast.recorder.wire_texts() == slow.recorder.wire_texts()


def _machines_of_their_own(world: dict[str, Any]) -> dict[str, Any]:
    """``world`` (two offices) with each person on a machine of their own, pc<u>.<office>."""
    for office in "ab":
        del world["nodes"][f"pc-{office}"]
        world["links"] = [link for link in world["links"] if f"pc-{office}" not in link["between"]]
        for u in range(4):
            machine = f"pc{u}-{office}"
            world["nodes"][machine] = {"role": "client", "host": f"pc{u}.{office}.example"}
            world["links"].append({"between": [machine, "core"], "latency": "2ms"})
            world["users"][f"user{u}@{office}.example"]["client"] = machine
    return world


def _offices_alike() -> dict[str, Any]:
    """Two offices alike but for their names: their servers as far away, every message
    of one size."""
    world = _two_offices()
    for link in world["links"]:
        if link["between"][0].startswith("mta-"):
            link["latency"] = "5ms"
    for message in world["messages"]:
        message["size"] = 4000
    return world


def _answer_mail(monkeypatch: Any, said: Callable[[Any], str | None]) -> None:
    """Have SMTP servers accept MAIL with the text ``said(server)``; None: as they do."""
    from mailsim.protocols import Reply, smtp

    real = smtp.SmtpServer._cmd_mail

    def mail(self: Any, line: str) -> Reply:
        reply = real(self, line)
        text = said(self) if reply.code == "250" else None
        return reply if text is None else Reply("250", (text,))

    monkeypatch.setattr(smtp.SmtpServer, "_cmd_mail", mail)


def test_at_full_detail_people_on_their_own_machines_share_templates():
    """Each person on a machine of their own: the records of a replay at full detail name
    this session's two machines and its own EHLO name, so the keys leave the machines
    out, and people on different machines replay one template — with the events of the
    run played step by step, and check mode content."""
    world = _machines_of_their_own(_two_offices())
    scenario = validate(world)
    fast = _run(scenario, detail="full")
    hops = _run(scenario, detail="hops")
    assert _kinds(fast) == _kinds(hops)  # as many templates as where nothing is recorded
    events = mailsim.world_result(fast).events
    ehlo = events[
        (events.step == "EHLO")
        & (events.protocol == "smtp")
        & (events.dst.isin(["mta-a", "mta-b"]))
    ]
    submitted = ehlo[ehlo.src.str.startswith("pc")]
    assert set(zip(submitted.src, submitted.detail, strict=True)) == {
        (f"pc{u}-{o}", f"EHLO pc{u}.{o}.example") for u in range(4) for o in "ab"
    }  # fmt: skip
    assert fast.templates.replayed > 0
    _same(fast, _run(scenario, detail="full", fast_forward=False))
    _run(scenario, detail="full", check_templates=True)


def test_at_full_detail_offices_alike_but_for_their_names_share_templates():
    """Two offices alike but for their names: their sessions share keys at full detail
    as at hops, and each replay's greeting and reply to EHLO name its own server —
    the events of the run played step by step, and check mode content."""
    world = _offices_alike()
    scenario = validate(world)
    fast = _run(scenario, detail="full")
    assert _kinds(fast)["submission"] == _kinds(_run(scenario, detail="hops"))["submission"] == 1
    events = mailsim.world_result(fast).events
    greeted = events[(events.step == "220") & events.detail.str.endswith("ESMTP Postfix")]
    assert set(zip(greeted.src, greeted.detail, strict=True)) == {
        ("mta-a", "220 mail.a.example ESMTP Postfix"),
        ("mta-b", "220 mail.b.example ESMTP Postfix"),
    }
    _same(fast, _run(scenario, detail="full", fast_forward=False))
    _run(scenario, detail="full", check_templates=True)


@pytest.mark.parametrize(
    "hosts",
    [
        {"mta-a": "End", "mta-b": "Xyz"},  # names of one length: the offices share keys
        {"mta-a": "Xyz", "mta-b": "End"},
        {"pop-a": "Dovecot"},
        {"pop-b": "Dovecot"},
    ],
)
def test_a_server_named_like_a_word_of_its_replies_keeps_them(hosts):
    """A server whose name is also a word its replies begin with ("354 End data with
    …", "+OK Dovecot ready."): only a greeting or a reply to EHLO, and only SMTP's and
    LMTP's, has its server's name put in by a replay; the rest are as played."""
    world = _offices_alike()
    for node, host in hosts.items():
        old, zone = world["nodes"][node]["host"], world["dns"]["zones"][f"{node[-1]}.example"]
        world["nodes"][node]["host"] = host
        zone["a"] = {(host if name == old else name): n for name, n in zone["a"].items()}
        for mx in zone["mx"]:
            mx["host"] = host if mx["host"] == old else mx["host"]
    scenario = validate(world)
    fast = _run(scenario, detail="full")
    assert fast.templates.replayed > 0
    _same(fast, _run(scenario, detail="full", fast_forward=False))


def test_a_reply_to_ehlo_that_names_the_client_makes_no_template(monkeypatch):
    """A server whose reply to EHLO names the client after its own name ("mail.a.example
    Hello pc0.a.example", as sendmail's does): a replay puts its own server's name first,
    but would copy the rest, so at full detail no submission is kept as a template."""
    from mailsim.protocols import smtp

    real = smtp.SmtpServer.capabilities

    def hello(self: Any) -> list[str]:
        first, *rest = real(self)
        return [f"{first} Hello {self.helo}", *rest]

    monkeypatch.setattr(smtp.SmtpServer, "capabilities", hello)
    scenario = validate(_machines_of_their_own(_two_offices()))
    fast = _run(scenario, detail="full")
    assert "submission" not in _kinds(fast)
    assert "submission" in {k[1] for k in fast.templates.spoiled}
    _same(fast, _run(scenario, detail="full", fast_forward=False))


def test_a_record_naming_the_server_elsewhere_makes_no_template_at_full_detail(monkeypatch):
    """A submission server that names itself in its goodbye as well ("221 2.0.0
    mail.a.example closing connection"): a replay would copy the first server's name
    into another's records, so at full detail no submission is kept as a template."""
    from mailsim.protocols import Reply, smtp

    def goodbye(self: Any, line: str) -> Reply:
        return Reply("221", (f"2.0.0 {self.config.host} closing connection",))

    monkeypatch.setattr(smtp.SmtpServer, "_cmd_quit", goodbye)
    scenario = validate(_two_offices())
    fast = _run(scenario, detail="full")
    assert {k[1] for k in fast.templates.spoiled} == {"submission"}
    assert "submission" not in _kinds(fast)
    _same(fast, _run(scenario, detail="full", fast_forward=False))


def test_a_record_naming_the_sender_makes_no_template_at_full_detail(monkeypatch):
    """A server that names the sender in its reply to MAIL (sendmail says "250 2.1.0
    <alice@example.org>... Sender ok"): a replay would copy the first sender's address
    into the records of every later one, so at full detail no message session is kept
    as a template; at outcomes, where no reply text is kept, they are."""
    _answer_mail(monkeypatch, lambda server: f"2.1.0 <{server.sender}>... Sender ok")
    scenario = validate(_two_offices())
    fast = _run(scenario, detail="full")
    assert {k[1] for k in fast.templates.spoiled} == {"submission", "relay", "lmtp"}
    assert not [k for k in fast.templates.known if k[0] == "smtp"]
    _same(fast, _run(scenario, detail="full", fast_forward=False))
    lean = _run(scenario, detail="outcomes")
    assert {k[1] for k in lean.templates.known if k[0] == "smtp"} == {"submission", "relay", "lmtp"}


def test_check_mode_catches_a_record_naming_one_session_only(monkeypatch):
    """A server that names the sender in its reply to MAIL for one person alone: the
    template, made from someone else's play, copies no name; check mode, playing that
    person's session of the key, finds it differs (a longer reply, a longer wait)."""

    def now_and_then(server: Any) -> str | None:
        if server.sender == "user3@a.example":
            return f"2.1.0 <{server.sender}>... Sender ok"
        return None

    _answer_mail(monkeypatch, now_and_then)
    with pytest.raises(TemplateMismatch, match=r"op \d+ was \(0, "):
        _run(validate(_two_offices()), detail="full", check_templates=True)


def test_check_mode_catches_a_reply_naming_part_of_the_sender(monkeypatch):
    """A server that names part of the sender in its reply to MAIL ("250 2.1.0 Ok,
    user0"): no session's whole address is in it, so the template is kept, and its
    replays would copy the first sender's name; check mode, comparing each play with
    the template text for text, says so at that reply."""
    _answer_mail(monkeypatch, lambda server: f"2.1.0 Ok, {server.sender.split('@')[0]}")
    scenario = validate(_two_offices())
    with pytest.raises(
        TemplateMismatch,
        match=r"was .*'2\.1\.0 Ok, user(\d)'.* now .*'2\.1\.0 Ok, user(?!\1)",
    ):
        _run(scenario, detail="full", check_templates=True)


def test_an_outline_takes_each_recipient_once():
    """A transcript of a message to one address twice holds one entry for two RCPTs: its
    outline could not say which place each came from, so there is none (the replays of
    such a template drive the dialogue). Two addresses outline, and rebuild for two
    others with their own queue id."""
    from mailsim.agents.keys import SmtpResume
    from mailsim.protocols import Reply, Transcript, smtp

    def said(queue_id: str) -> list[Reply]:
        return [Reply("250", (f"2.0.0 Ok: queued as {queue_id}",))]

    def session(*rcpts: str) -> SmtpResume:
        envelope = smtp.Envelope("me@a.example", rcpts, 4000)
        return SmtpResume(None, smtp.ClientConfig(helo="pc.a.example"), envelope)  # type: ignore[arg-type]

    def transcript(content: list[Reply], *rcpts: str) -> Transcript:
        reply = content[0]
        return Transcript(dict.fromkeys(rcpts, reply), "TLSv1.3", True, reply.text[-6:], reply)

    first = said("1A2B3C")
    assert session("you@b.example", "you@b.example").outline(
        transcript(first, "you@b.example"), first
    ) is None  # fmt: skip
    outline = session("you@b.example", "him@b.example").outline(
        transcript(first, "you@b.example", "him@b.example"), first
    )
    assert outline == (((0, 0), (1, 0)), "TLSv1.3", True, True, 0)
    second = said("9Z8Y7X")
    rebuilt = session("ann@b.example", "bob@b.example").rebuild(outline, second)
    assert rebuilt == transcript(second, "ann@b.example", "bob@b.example")
    assert rebuilt.queue_id == "9Z8Y7X"
    assert rebuilt.final is second[0]


def test_a_recipient_the_server_refuses_makes_no_template():
    """The sender's own server refuses nobody@ (550 5.1.1 <nobody@a.example>: …): a
    replay could not say it for another address, so the key is spoiled — both ways, each
    message with two recipients — and its sessions are played."""
    scenario = validate(_two_offices(unknown=True))
    fast = _run(scenario, detail="hops")
    assert [(key[1], len(key[18])) for key in fast.templates.spoiled] == [("submission", 2)] * 2
    hops = mailsim.world_result(fast).hops
    refused = hops[hops.recipient.str.startswith("nobody@")]
    said = sorted(refused.outcome.str[:29])
    assert said == ["550 5.1.1 <nobody@a.example>:"] * 2 + ["550 5.1.1 <nobody@b.example>:"] * 2
    _same(fast, _run(scenario, detail="hops", fast_forward=False))
    _run(scenario, detail="hops", check_templates=True)


def test_check_mode_catches_an_smtp_key_without_the_message_size(monkeypatch):
    """Without the size the two sizes of message share a key: the message's flight and
    the wait for it differ, and check mode says so."""
    from mailsim.agents import keys, mta

    real = keys.transfer_key

    def forgetful(*args: Any, **kwargs: Any) -> Any:
        key = real(*args, **kwargs)
        return None if key is None else key[:17] + key[18:]

    monkeypatch.setattr(mail_client, "transfer_key", forgetful)
    monkeypatch.setattr(mta, "transfer_key", forgetful)
    with pytest.raises(TemplateMismatch, match=r"op \d+ was \(0, "):
        _run(validate(_two_offices()), detail="hops", check_templates=True)


def test_the_benchmark_world_keeps_its_keys_honest():
    """Check mode on the world of benchmarks/throughput.py, 1,000 messages: 50 offices'
    message sessions share their keys wherever paths, lengths and verdicts agree."""
    from benchmarks.throughput import world as benchmark_world

    world = _run(validate(benchmark_world(50, 20, 1000)), detail="hops", check_templates=True)
    kinds = _kinds(world)
    # 1,008 messages: their submissions fall into 19 keys (every program has the same path
    # to its server; the keys differ by the lengths of the addresses), their LMTP
    # deliveries into 12; the relays between 50 offices, over paths of many lengths,
    # into 608; the checks that find mail (by the number found), into 11
    assert kinds == {
        "empty mailbox": 998, "mail to fetch": 11, "relay": 608, "submission": 19, "lmtp": 12
    }  # fmt: skip


def test_check_mode_catches_a_pop3_key_without_the_sizes_found(monkeypatch):
    """b.example's people find 4,000-byte messages, a.example's 20,000: without the sizes
    their checks share keys, and check mode finds the first wait that differs (the STAT
    reply, "+OK 1 20000", is a byte longer)."""
    from mailsim.agents import keys

    real = keys.check_key

    def forgetful(*args: Any, **kwargs: Any) -> Any:
        key = real(*args, **kwargs)
        return None if key is None else (*key[:7], len(key[7]), *key[8:])

    monkeypatch.setattr(mail_client, "check_key", forgetful)
    with pytest.raises(TemplateMismatch, match=r"op \d+ was \(0, 0.0030000960+3, 'network'\)"):
        _run(validate(_two_offices()), detail="hops", check_templates=True)


def test_a_message_to_oneself_has_a_key_of_its_own():
    """user0 writes to user0: the sender's name and the recipient's are one text, which
    check mode cannot tell apart from a message between two people of the same lengths;
    the key says which it is, and both are compiled."""
    world = _two_offices()
    world["messages"] += [
        {"at": 3700, "from": "user0@a.example", "to": ["user0@a.example"], "size": 4000},
        {"at": 3710, "from": "user1@a.example", "to": ["user2@a.example"], "size": 4000},
    ]
    fast = _run(validate(world), detail="hops", check_templates=True)
    to_oneself = [key[18][0][3] for key in fast.templates.known if key[1] in ("submission", "lmtp")]
    assert sorted(to_oneself) == [False] * 5 + [True] * 2


def test_a_dmarc_reject_keys_by_what_it_says():
    """Two forged From: lines whose domains publish p=reject: b.example's MX answers
    "550 5.7.1 rejected by DMARC policy for bank.example", then "… for bigbank.example",
    three bytes longer, so its trip back takes longer: the reject's text is in the key."""
    world = _two_offices(messages=0)
    for domain in ("bank.example", "bigbank.example"):
        world["dns"]["zones"][domain] = {"dmarc": "v=DMARC1; p=reject"}
    world["messages"] = [
        {"at": 10, "from": "user0@a.example", "to": ["user0@b.example"], "size": 4000,
         "header_from": "ceo@bank.example"},
        {"at": 600, "from": "user1@a.example", "to": ["user1@b.example"], "size": 4000,
         "header_from": "ceo@bigbank.example"},
    ]  # fmt: skip
    scenario = validate(world)
    fast = _run(scenario, detail="hops")
    _same(fast, _run(scenario, detail="hops", fast_forward=False))
    relays = [key for key in fast.templates.known if key[1] == "relay"]
    assert sorted(key[19] for key in relays) == [
        ("550", "5.7.1 rejected by DMARC policy for bank.example"),
        ("550", "5.7.1 rejected by DMARC policy for bigbank.example"),
    ]
    _run(scenario, detail="hops", check_templates=True)


def test_a_refused_connection_makes_no_template():
    """Programs set to implicit TLS (port 465) meet servers without TLS: each connection
    is refused, in words that name the server ("connect to mail.a.example:465: Connection
    refused"), which a replay for the other office's server of the same length would
    repeat. Such plays are not kept."""
    world = _two_offices(messages=4)
    for node in world["nodes"].values():
        if node["role"] == "smtp":
            node["tls"] = "none"
    for user in world["users"].values():
        user["security"] = "tls"
    world["duration"] = "30min"
    for message in world["messages"]:
        message["size"] = 4000
    scenario = validate(world)
    fast = _run(scenario, detail="hops")
    _same(fast, _run(scenario, detail="hops", fast_forward=False))
    assert [key[1] for key in fast.templates.spoiled] == ["submission"]
    hops = mailsim.world_result(fast).hops
    said = set(hops.src.astype(str) + ": " + hops.outcome.astype(str))
    assert said == {
        "pc-a: connect to mail.a.example:465: Connection refused (4.4.1)",
        "pc-b: connect to mail.b.example:465: Connection refused (4.4.1)",
    }


@given(user=st.text(max_size=40), password=st.text(max_size=40))
def test_a_key_counts_the_auth_plain_line_without_encoding_it(user, password):
    """The key holds the length of AUTH PLAIN's base64 (a longer one takes longer on the
    wire), counted from the name's and password's bytes: the same as encoding them."""
    from mailsim.agents.keys import auth_plain_length
    from mailsim.protocols import smtp

    assert auth_plain_length(user, password) == len(smtp.auth_plain(user, password))


def test_a_run_collects_garbage_less_often_and_leaves_the_setting_as_it_was(monkeypatch):
    """During a run the youngest generation is collected after GC_THRESHOLD new
    containers, not Python's 700; after it, and after a run cut short by an error,
    the process's own setting is back."""
    import gc

    from mailsim import world as world_module

    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    real_step = world_module.Clock.step

    def step(self: Any) -> None:
        seen.append(gc.get_threshold())
        if len(seen) == 50:
            raise RuntimeError("cut short")
        real_step(self)

    monkeypatch.setattr(world_module.Clock, "step", step)
    with pytest.raises(RuntimeError, match="cut short"):
        World(validate(_two_offices()), 0, "outcomes").run()
    assert set(seen) == {(world_module.GC_THRESHOLD, *before[1:])}
    assert gc.get_threshold() == before


def _lines(dialogue: Any) -> list[tuple[str, bool]]:
    """The command lines a client ``dialogue`` sends to a server that accepts all and
    offers everything, each with whether its transcript masks it."""
    from mailsim.protocols import Commands, Connect, Content, Reply

    ehlo = Reply("250", ("mx.example", "SIZE 100000", "PIPELINING", "AUTH PLAIN", "STARTTLS"))
    said = {"EHLO": ehlo, "LHLO": ehlo, "AUTH": Reply("235", ("ok",)),
            "DATA": Reply("354", ("go on",)), "CAPA": Reply("+OK", ("",), data=("USER",)), "STAT": Reply("+OK", ("2 8000",))}  # fmt: skip
    lines: list[tuple[str, bool]] = []
    step = next(dialogue)
    try:
        while True:
            if isinstance(step, Connect):
                replies = [Reply("220" if step.port != 110 else "+OK", ("mx.example ready",))]
            elif isinstance(step, Content):
                replies = [Reply("250", ("queued",))] * step.replies
            else:
                assert isinstance(step, Commands)
                lines += [(line, step.shown is not None) for line in step.lines]
                ok = "+OK" if step.lines[0].split(" ")[0] in POP3_VERBS else "250"
                replies = [said.get(line.split(" ")[0], Reply(ok, ("ok",))) for line in step.lines]
            step = dialogue.send(replies)
    except StopIteration:
        return lines


POP3_VERBS = {"CAPA", "USER", "PASS", "STAT", "LIST", "RETR", "DELE", "QUIT"}
_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)


@given(
    sessions=st.lists(
        st.tuples(_text, _text, st.lists(_text, min_size=1, max_size=3), _text, _text),
        min_size=2,
        max_size=2,
    ),
    lmtp=st.booleans(),
    pipelining=st.booleans(),
)
def test_a_command_line_made_from_its_form_is_the_one_the_client_sends(sessions, lmtp, pipelining):
    """At full detail a replay makes its command lines from the template's forms
    (:meth:`SmtpResume.form`): the grammar's places, filled with the session's own EHLO
    name, addresses and login, give the very line its own client sends — whatever the
    texts hold (braces, a name equal to another, a recipient named twice)."""
    from types import SimpleNamespace

    from mailsim.agents.keys import SmtpResume
    from mailsim.protocols import smtp

    server = SimpleNamespace(config=SimpleNamespace(host="mx.example"), queue_id="1A2B3C")
    made = []
    for helo, sender, rcpts, user, password in sessions:
        rcpts = rcpts[: len(sessions[0][2])] + sessions[0][2][len(rcpts) :]  # as many
        config = smtp.ClientConfig(
            helo=helo, port=25, auth=(user, password), lmtp=lmtp, pipelining=pipelining,
            tls="none",
        )  # fmt: skip
        envelope = smtp.Envelope(sender, tuple(rcpts), 4000)
        resume = SmtpResume(server, config, envelope)  # type: ignore[arg-type]
        lines = _lines(smtp.client(config, envelope))
        made.append((resume, lines))
    (first, template), (second, lines) = made
    assert len(template) == len(lines)
    own = second.own()
    for (kept, shown), (line, _) in zip(template, lines, strict=True):
        source = line_source(first.form(kept), shown)
        assert (kept if source is None else source[1].format(*own)) == line  # type: ignore[str-bytes-safe]


@given(
    addresses=st.lists(_text, min_size=2, max_size=2),
    passwords=st.lists(_text, min_size=2, max_size=2),
)
def test_a_pop3_command_line_made_from_its_form_is_the_one_the_client_sends(addresses, passwords):
    """The same for a POP3 check: USER's address and PASS's password, a password of
    eight stars included (the transcript masks PASS whatever it is)."""
    from mailsim.agents.keys import Pop3Resume
    from mailsim.protocols import pop3

    (a, b), (p, q) = addresses, passwords
    template = _lines(pop3.client(a, p, tls="none"))
    lines = _lines(pop3.client(b, q, tls="none"))
    own = Pop3Resume(b, q, "pop.example").own()
    for (kept, shown), (line, _) in zip(template, lines, strict=True):
        source = line_source(Pop3Resume(a, p, "pop.example").form(kept), shown)
        assert (kept if source is None else source[1].format(*own)) == line  # type: ignore[str-bytes-safe]
    assert ("PASS " + q, True) in lines
    assert ("RETR 2", False) in lines


def test_a_password_of_eight_stars_is_masked_and_keeps_its_template():
    """PASS's transcript text is fixed by the client (``PASS ********``): a password that
    reads the same keeps its key's template at full detail, and every replay shows the
    masked text while it sends its own password — the run played step by step."""
    world = _two_offices(messages=24)
    for user in world["users"].values():
        user["password"] = "********"
    scenario = validate(world)
    fast = _run(scenario, detail="full")
    assert [key for key in fast.templates.known if key[0] == "pop3"]
    assert not fast.templates.spoiled
    events = mailsim.world_result(fast).events
    assert set(events[events.step == "PASS"].detail) == {"PASS ********"}
    slow = _run(scenario, detail="full", fast_forward=False)
    _same(fast, slow)
    assert fast.recorder.wire_texts() == slow.recorder.wire_texts()
    _run(scenario, detail="full", check_templates=True)


@pytest.mark.parametrize(
    ("name", "why"),
    [("server-crash", "faults"), ("webmail", "eavesdroppers"), ("transatlantic", "jitter"),
     ("slow-server", None)],
)  # fmt: skip
def test_faults_eavesdroppers_or_jitter_keep_sessions_played(name, why):
    """Faults, an eavesdropper or jitter on the way make two sessions of one key differ:
    a world with one compiles nothing and replays no session; one without replays."""
    from mailsim.compiled import compilable

    scenario = mailsim.load(SCENARIOS / f"{name}.yaml")
    world = _run(scenario, detail="hops")
    assert compilable(scenario) is (why is None)
    assert world.templates.on is (why is None)
    assert (world.templates.replayed > 0) is (why is None)
