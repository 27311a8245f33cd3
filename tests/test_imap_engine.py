"""IMAP in the engine: polling, IDLE push and dropped idle connections, each second of
them recomputed from the scenario's round trips and the servers' work."""

from __future__ import annotations

from typing import Any

import pytest

import mailsim
from mailsim.errors import ScenarioError
from mailsim.scenario import validate
from mailsim.world import World
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
        ScenarioError,
        match=r"retrieval: Input should be 'pop3', 'imap', 'imap-idle' or 'webmail'",
    ):
        validate(data)


def test_a_link_may_forget_idle_connections():
    data = classroom_data()
    assert validate(data).links[-1].idle_timeout is None
    data["links"][-1]["idle_timeout"] = "5min"
    assert validate(data).links[-1].idle_timeout == 300.0


# --- the three readers of pop-imap-push.yaml ----------------------------------------------

FAST = 1e18  # bit/s: transmission time vanishes, only round trips and work remain
CMD, TLS = 0.0005, 0.001  # Processing defaults: a command, the TLS handshake
# Round trips of an IMAP check (Thunderbird's way, mailsim.protocols.imap.client), with
# STARTTLS and one message of 20 kB: connect + greeting, STARTTLS, TLS 1.3, CAPABILITY
# (asked again inside TLS, RFC 9051 §6.2.1), LOGIN, SELECT, SEARCH UNSEEN, FETCH (+ one
# of slow start: its 14 segments are more than the initial window of 10), STORE, LOGOUT.
IMAP_RTTS = 2 + 1 + 1 + 1 + 1 + 1 + 1 + (1 + 1) + 1 + 1
IMAP_WORK = 9 * CMD + TLS  # greeting, STARTTLS, CAPABILITY, LOGIN, SELECT, SEARCH, FETCH,
# STORE, LOGOUT; the handshake
EMPTY_IMAP_RTTS = 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1  # ... SEARCH finds nothing, LOGOUT
EMPTY_IMAP_WORK = 7 * CMD + TLS
# Pushed: "* 1 EXISTS" on its way (half a round trip), DONE, FETCH (+ slow start).
PUSH_RTTS = 0.5 + 1 + (1 + 1)
PUSH_WORK = 2 * CMD  # DONE, FETCH
# A reconnection up to the message: connect … SEARCH, FETCH (+ slow start).
CATCH_UP_RTTS = 2 + 1 + 1 + 1 + 1 + 1 + 1 + (1 + 1)
CATCH_UP_WORK = 7 * CMD + TLS


def push_data(fast: bool = True, **phone: object) -> dict:
    scenario = mailsim.load(SCENARIOS / "pop-imap-push.yaml")
    data = scenario.model_dump(by_alias=True, exclude_none=True)
    for link in data["links"]:
        if fast:
            link["bandwidth"] = FAST
        if list(link["between"]) == ["r-home", "dan-phone"]:
            link.update(phone)
    return data


def run_world(data: dict, until: float | None = None) -> tuple[World, mailsim.Result]:
    """The world after its run (every message read), or, ``until`` a time, after the
    polls that follow too."""
    world = World(validate(data))
    world.run()
    if until is not None:
        world.env.run(until=until)
    return world, mailsim.world_result(world)


@pytest.fixture(scope="module")
def fast_push() -> tuple[World, mailsim.Result]:
    return run_world(push_data(), until=3600)


def sessions_of(result: mailsim.Result, client: str) -> list[tuple[float, float]]:
    """(first step, last arrival) of each session ``client`` opened, in order."""
    events = result.events
    mine = events[events["session"].isin(events[events["src"] == client]["session"])]
    return [(rows["time"].min(), rows["arrive"].max()) for _, rows in mine.groupby("session")]


def row(result: mailsim.Result, recipient: str):
    messages = result.messages
    return messages[messages["recipient"] == recipient].iloc[0]


def test_an_imap_check_is_its_round_trips_plus_server_work(fast_push):
    world, result = fast_push
    rtt = world.network.rtt("carol-pc", "pop-home")
    durations = [end - start for start, end in sessions_of(result, "carol-pc")]
    empty = EMPTY_IMAP_RTTS * rtt + EMPTY_IMAP_WORK
    full = IMAP_RTTS * rtt + IMAP_WORK
    # Checks at 0, 10, 20 (the message), 30, 40 and 50 minutes.
    expected = [empty, empty, full, empty, empty, empty]
    assert durations == [pytest.approx(d, abs=1e-9) for d in expected]
    carol = row(result, "carol@home.example")
    assert carol["retrieval"] == "imap"
    assert carol["retrieved_at"] == pytest.approx(
        1200 + (IMAP_RTTS - 2) * rtt + IMAP_WORK - 2 * CMD, abs=1e-9
    )  # the FETCH's reply has arrived; STORE and LOGOUT come after


def test_the_push_is_half_a_round_trip_then_done_and_fetch(fast_push):
    world, result = fast_push
    rtt = world.network.rtt("dan-phone", "pop-home")
    dan = row(result, "dan@home.example")
    assert dan["retrieval"] == "imap-idle"
    assert dan["to_reader"] == pytest.approx(PUSH_RTTS * rtt + PUSH_WORK, abs=1e-9)
    pushed = result.events[result.events["step"] == "*"]
    assert list(pushed["detail"]) == ["* 1 EXISTS · * 1 RECENT"]
    assert pushed["time"].iloc[0] == pytest.approx(dan["delivered_at"], abs=1e-12)


def test_the_phone_reads_within_a_second_while_the_others_wait_their_poll():
    result = mailsim.run(mailsim.load(SCENARIOS / "pop-imap-push.yaml"))
    bob, carol, dan = (row(result, f"{u}@home.example") for u in ("bob", "carol", "dan"))
    assert bob["delivered_at"] == carol["delivered_at"] == dan["delivered_at"]
    assert dan["to_reader"] < 1.0
    assert dan["poll_time"] == 0.0
    # The message came at 12 min: Bob's POP3 poll at 15 min, Carol's IMAP check at 20.
    assert 900 < bob["retrieved_at"] < 901
    assert bob["retrieval"] == "pop3"
    assert 1200 < carol["retrieved_at"] < 1201
    assert carol["retrieval"] == "imap"
    assert bob["poll_time"] > 170
    assert carol["poll_time"] > 470
    hops = result.hops[result.hops["dst"] == "dan-phone"]
    assert list(hops["protocol"]) == ["imap"]
    assert hops["start"].iloc[0] == dan["delivered_at"]  # the hop begins with the push


def test_a_network_that_forgets_idle_connections_delays_the_push_to_the_renewal():
    world, result = run_world(push_data(idle_timeout="5min"))
    rtt = world.network.rtt("dan-phone", "pop-home")
    events = result.events
    # The phone idles from when "+ idling" reached it; the push, 12 min later, is lost.
    idling = events[(events["step"] == "+") & (events["dst"] == "dan-phone")]
    since = idling["arrive"].iloc[0]
    lost = events[events["step"] == "lost"]
    assert list(lost["detail"]) == [
        "* 1 EXISTS · * 1 RECENT: lost, r-home–dan-phone forgot the connection"
    ]
    # At 29 min it renews: DONE goes out and nothing answers; after 100 s it gives up,
    # connects again and catches up.
    done = events[(events["step"] == "DONE") & (events["src"] == "dan-phone")]
    assert done["time"].iloc[0] == pytest.approx(since + 29 * 60, abs=1e-9)
    gave_up = events[(events["step"] == "timeout") & (events["dst"] == "dan-phone")]
    assert list(gave_up["detail"]) == [
        "no reply within 100 s: r-home–dan-phone forgot the idle connection"
    ]
    dan = row(result, "dan@home.example")
    expected = since + 29 * 60 + 100 + CATCH_UP_RTTS * rtt + CATCH_UP_WORK
    assert dan["retrieved_at"] == pytest.approx(expected, abs=1e-9)
    assert dan["to_reader"] > 17 * 60  # later than Bob's poll and Carol's
    assert dan["to_reader"] > row(result, "carol@home.example")["to_reader"]
    assert dan["poll_time"] > 17 * 60


def test_a_forgetful_link_the_push_does_not_cross_changes_nothing():
    _, forgetful = run_world(push_data(idle_timeout="1h"))
    _, plain = run_world(push_data())
    assert row(forgetful, "dan@home.example")["retrieved_at"] == pytest.approx(
        row(plain, "dan@home.example")["retrieved_at"], abs=0
    )


def test_imap_leaves_the_mail_on_the_server_and_a_second_check_fetches_nothing(fast_push):
    world, result = fast_push
    pop = world.pops["pop-home"]
    assert [c.message.id for c in pop.mailboxes["carol@home.example"]] == ["m1"]
    assert [c.message.id for c in pop.mailboxes["dan@home.example"]] == ["m1"]
    assert pop.mailboxes["bob@home.example"] == []  # POP3 deleted it
    assert pop.imap["carol@home.example"].seen == {1}
    events = result.events
    carol = events[events["session"].isin(events[events["src"] == "carol-pc"]["session"])]
    fetches = carol[carol["step"] == "FETCH"]
    assert len(fetches) == 1
    assert fetches["time"].iloc[0] // 600 == 2
    searches = carol[(carol["step"] == "OK") & (carol["detail"] == "OK Search completed.")]
    assert len(searches) == 6
    hops = result.hops[result.hops["dst"] == "carol-pc"]
    assert len(hops) == 1
    assert hops["protocol"].iloc[0] == "imap"


def test_sessions_name_imap_and_its_ports(fast_push):
    _, result = fast_push
    sessions = result.sessions
    services = dict(zip(sessions["client"], sessions["service"], strict=False))
    assert services["carol-pc"] == "imap"
    assert services["dan-phone"] == "imap"
    assert set(sessions[sessions["service"] == "imap"]["server_port"]) == {143}
    assert services["bob-pc"] == "pop3"


def test_implicit_tls_is_imaps_on_993():
    data = push_data()
    data["users"]["carol@home.example"]["security"] = "tls"
    _, result = run_world(data)
    sessions = result.sessions
    carol = sessions[sessions["client"] == "carol-pc"]
    assert set(carol["service"]) == {"imaps"}
    assert set(carol["server_port"]) == {993}
    assert row(result, "carol@home.example")["status"] == "retrieved"


def test_imap_steps_are_named_by_their_command_and_explained(fast_push):
    from mailsim.protocols import meaning

    _, result = fast_push
    events = result.events
    steps = set(events[(events["protocol"] == "imap") & (events["src"] == "carol-pc")]["step"])
    assert steps == {"STARTTLS", "CAPABILITY", "LOGIN", "SELECT", "SEARCH", "FETCH", "STORE",
                     "LOGOUT"}  # fmt: skip
    assert all(meaning(step) for step in steps)
    assert meaning("*", "*") == "IMAP: data the server sends on its own (new mail during IDLE)"
    phone = set(events[(events["protocol"] == "imap") & (events["src"] == "dan-phone")]["step"])
    assert {"IDLE", "DONE"} <= phone


# --- results and pictures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def push_result() -> mailsim.Result:
    return mailsim.run(mailsim.load(SCENARIOS / "pop-imap-push.yaml"))


@pytest.fixture(scope="module")
def lost_push() -> mailsim.Result:
    return mailsim.run(
        mailsim.load(SCENARIOS / "pop-imap-push.yaml", ["links.r-home/dan-phone.idle_timeout=5min"])
    )


def copy_report(result: mailsim.Result, recipient: str) -> str:
    """The report's paragraph on ``recipient``'s copy, on one line."""
    from mailsim import report

    text = " ".join(report.text(result, width=400).split())
    start = text.index(f"→ {recipient}")
    return text[start : text.find("→", start + 1)]


def test_the_report_says_pushed_and_names_each_poll(push_result, lost_push):
    assert "pushed and fetched 189.3 ms later" in copy_report(push_result, "dan@home.example")
    assert "waiting for the IMAP poll 7 min 59 s" in copy_report(push_result, "carol@home.example")
    assert "waiting for the POP poll 2 min 59 s" in copy_report(push_result, "bob@home.example")
    lost = copy_report(lost_push, "dan@home.example")
    assert "its push lost, fetched 18 min 40 s later" in lost
    assert "push lost: waiting for the IDLE renewal 18 min 39 s" in lost


def test_the_timeline_keys_imap_hops_and_every_readers_wait(push_result):
    from mailsim import plot

    ax = plot.timeline(push_result)
    key = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "IMAP hop (retrieval)" in key
    assert "POP3 hop (retrieval)" in key
    assert "waiting for the poll\n(POP3, IMAP) or the push" in key
    assert not any("failed" in words for words in key)  # IMAP's OK is no failure
    ax.figure.clf()


def test_the_ladder_draws_imap_as_itself_and_a_lost_push_dropped(lost_push):
    import matplotlib.pyplot as plt

    from mailsim import plot
    from mailsim.plot.sequence import pages
    from mailsim.protocols import meaning

    keys: set[str] = set()
    dropped = []
    for page in range(1, pages(lost_push, "m1") + 1):
        ax = plot.sequence(lost_push, "m1", page=page)
        keys |= {t.get_text() for t in ax.get_legend().get_texts()}
        dropped += [t for t in ax.texts if "lost, r-home–dan-phone" in t.get_text()]
        plt.close(ax.figure)
    assert {"IMAP", "lost on the way", "no reply: the\nclient's timeout"} <= keys
    assert "temporary failure\n(4xx, refused)" not in keys  # OK, "+ idling": no failures
    assert len(dropped) == 1
    lost = lost_push.events[lost_push.events["step"] == "lost"].iloc[0]
    assert meaning(lost["step"], lost["code"]).startswith("dropped on the way: a NAT")


def test_the_route_names_the_mailbox_server_by_what_it_serves(push_result, classroom_result):
    from mailsim import plot

    def key(result: mailsim.Result) -> list[str]:
        ax = plot.route(result)
        words = [t.get_text() for t in ax.get_legend().get_texts()]
        ax.figure.clf()
        return words

    assert "mailbox server (POP3, IMAP)" in key(push_result)
    assert "mailbox server (POP3)" in key(classroom_result)


def test_the_servers_figure_names_imap_sessions(push_result):
    from mailsim import plot

    ax = plot.servers(push_result)
    key = [t.get_text() for t in ax.get_legend().get_texts()]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    ax.figure.clf()
    assert "IMAP session" in key
    assert "pop-home (POP3, IMAP server)" in rows


def _quota_world(**pop: Any) -> dict[str, Any]:
    """ann writes four 20 KB messages, ten minutes apart, to a reader over IMAP and one
    over POP3, both checking every 5 minutes, at a mailbox server with a 50 KB quota."""
    return {
        "name": "quota",
        "duration": "2h",
        "sites": {"net": {"computers": {"pc": {}}}},
        "domains": {"home.example": {"site": "net", "submission": "mail",
                                     "mailbox": {"host": "pop", "quota": "50KB", **pop}}},
        "users": {
            "ann@home.example": {"client": "pc", "password": "a", "poll": "5min"},
            "imap@home.example": {"client": "pc", "password": "b", "poll": "5min",
                                  "retrieval": "imap"},
            "pop@home.example": {"client": "pc", "password": "c", "poll": "5min"},
        },
        "messages": [
            {"at": f"{1 + 10 * i}min", "from": "ann@home.example", "size": "20KB",
             "to": ["imap@home.example", "pop@home.example"]}
            for i in range(4)
        ],
    }  # fmt: skip


def test_mail_kept_over_imap_fills_the_quota_and_pop3_empties_it():
    """IMAP keeps what it fetched: after three 20 KB messages the mailbox holds 60 KB of
    its 50 KB and Dovecot refuses the fourth at RCPT (552 5.2.2, a bounce to ann); the
    POP3 reader's mailbox is emptied at each check and takes all four."""
    result = mailsim.run(validate(_quota_world()))
    messages = result.messages.set_index(["id", "recipient"])
    assert [messages.loc[(f"m{i}", "imap@home.example"), "status"] for i in (1, 2, 3, 4)] == [
        "retrieved", "retrieved", "retrieved", "bounced"]  # fmt: skip
    assert messages.loc[("m4", "imap@home.example"), "reason"] == (
        "552 5.2.2 <imap@home.example> Quota exceeded (mailbox for user is full)"
    )
    assert set(messages.xs("pop@home.example", level="recipient")["status"]) == {"retrieved"}
    assert messages.loc[("m4.dsn1", "ann@home.example"), "status"] == "retrieved"


def test_an_overloaded_mailbox_server_says_bye_to_an_imap_client():
    world = _quota_world()
    world["faults"] = [{"kind": "overload", "node": "pop-home", "start": "0s", "end": "7min"}]
    result = mailsim.run(validate(world))
    events = result.events
    bye = events[(events["protocol"] == "imap") & (events["code"] == "BYE")]
    assert set(bye["detail"]) == {"BYE [UNAVAILABLE] Too many connections"}  # * BYE … on the wire
    assert set(bye["dst"]) == {"pc"}


def test_a_stripped_imap_greeting_keeps_a_starttls_client_from_logging_in():
    """A man in the middle deletes STARTTLS (and LOGINDISABLED) from the IMAP greeting's
    capability list for the first 20 minutes. The mail program, set to STARTTLS, logs in
    nowhere without it: no LOGIN crosses the wire, the mail waits on the server, and the
    first check after the attack fetches it in TLS."""
    world = _quota_world()
    world["messages"] = world["messages"][:1]  # at 1 min
    world["faults"] = [{"kind": "strip-starttls", "between": ["pc", "msa-home"],
                        "start": "0s", "end": "20min"}]  # fmt: skip
    result = mailsim.run(validate(world))
    events = result.events
    imap_events = events[events["protocol"] == "imap"]
    greetings = imap_events[imap_events["step"] == "OK"]["detail"]
    assert any("STARTTLS" not in g and g.startswith("OK [CAPABILITY") for g in greetings)
    logins = imap_events[imap_events["step"] == "LOGIN"]
    assert (logins["time"] > 20 * 60).all()  # never while the attack lasted: LOGOUT instead
    assert (imap_events[imap_events["time"] < 20 * 60]["step"] == "LOGOUT").sum() == 4
    copy = result.messages.set_index("recipient").loc["imap@home.example"]
    assert copy["status"] == "retrieved"
    assert copy["retrieved_at"] > 20 * 60  # the first check after the attack
    hop = result.hops[(result.hops["protocol"] == "imap")].iloc[-1]
    assert hop["tls"] == "1.3"
