"""Where a result could mean something other than what a reader takes it to mean, or
differ from what real programs do: each checked with its exact number."""

from __future__ import annotations

import pytest

import mailsim
from mailsim import report
from tests.conftest import SCENARIOS

CLASSROOM = SCENARIOS / "classroom.yaml"
ALICE = 'users["alice@school.example"]'
RTT = 2 * 0.002  # alice-pc ↔ msa-school


def run(*overrides: str, path=CLASSROOM) -> mailsim.Result:
    return mailsim.run(mailsim.load(path, list(overrides)))


def submission(result: mailsim.Result, message: str = "m1"):
    hops = result.hops
    return hops[(hops["message"] == message) & (hops["protocol"] == "submission")].iloc[0]


def steps(result: mailsim.Result, session: int) -> list[str]:
    events = result.events
    return list(events.loc[events["session"] == session, "step"])


# -- AUTH: only with a password, and only when offered (RFC 4954 §4) --------------------------


def test_a_program_without_a_login_sends_mail_from_right_after_ehlo():
    """An internal server that trusts its own network (mynetworks) and a program set to
    "No authentication": the mail goes through; before, the program sent AUTH anyway
    and the message was lost to 502."""
    result = run(
        f"{ALICE}.security=none", f"{ALICE}.authentication=none", "nodes.msa-school.auth=none",
        "nodes.msa-school.tls=none", "nodes.msa-school.mynetworks=[alice-pc]",
    )  # fmt: skip
    hop = submission(result)
    assert hop["outcome"].startswith("250 2.0.0 Ok: queued as")
    assert not hop["auth"]
    assert steps(result, int(hop["session"]))[3:7] == ["220", "EHLO", "250", "MAIL"]
    assert result.messages["status"].tolist() == ["retrieved"]


def test_a_password_is_not_sent_where_auth_is_not_offered():
    """A program set to no encryption, and Postfix offering AUTH only under TLS: the
    program sees no AUTH and sends none (Thunderbird's SmtpClient.jsm does the same), and
    MAIL gets Debian's submission answer. The password never crossed the wire."""
    result = run(f"{ALICE}.security=none")
    hop = submission(result)
    assert hop["outcome"] == "530 5.7.0 Must issue a STARTTLS command first"
    assert "AUTH" not in steps(result, int(hop["session"]))
    assert result.messages["status"].tolist() == ["refused"]


# -- refused is not bounced ----------------------------------------------------------------


def test_a_no_at_submission_is_refused_not_bounced():
    result = mailsim.run(mailsim.load(SCENARIOS / "open-relay.yaml"))
    summary = result.summary()
    statuses = dict(zip(result.messages["id"], result.messages["status"], strict=True))
    refused = [m for m, status in statuses.items() if status == "refused"]
    assert summary["refused"] == len(refused) == 2  # the closed server's 554, ria's 535
    assert summary["bounces_sent"] == 0  # nobody got a bounce for them
    line = report.conservation_line(result)
    assert f"+ refused {len(refused)} + bounced 0" in line


# -- client profiles: how real programs group their commands --------------------------------


@pytest.mark.parametrize(
    ("program", "round_trips_more_than_msmtp"),
    [("msmtp", 0), ("thunderbird", 2), ("minimal", 2)],
)
def test_a_program_groups_its_commands_as_its_code_does(program, round_trips_more_than_msmtp):
    """msmtp sends MAIL, RCPT and DATA in one group; Thunderbird and a minimal client wait
    for each reply: two round trips more to the moment the server holds the message."""
    msmtp = submission(run(f"{ALICE}.program=msmtp"))
    hop = submission(run(f"{ALICE}.program={program}"))
    took = (hop["end"] - hop["start"]) - (msmtp["end"] - msmtp["start"])
    assert took == pytest.approx(round_trips_more_than_msmtp * RTT, abs=1e-9)


def test_the_relay_sends_quit_with_the_dot_and_does_not_wait_for_221():
    """Postfix's smtp client (smtp_proto.c; smtp_skip_quit_response = yes): "." and QUIT
    travel together, the session ends when the 250 arrives."""
    result = run()
    hops = result.hops
    relay = hops[hops["protocol"] == "smtp"].iloc[0]
    events = result.events[result.events["session"] == relay["session"]]
    message = events[events["step"] == "message"].iloc[0]
    quit_ = events[events["step"] == "QUIT"].iloc[0]
    assert (quit_["time"], quit_["arrive"]) == (message["time"], message["arrive"])
    assert events["step"].tolist()[-2:] == ["250", "221"]
    # The client's last act is reading the 250: when it has, the hop is acknowledged.
    last = events[events["step"] == "250"].iloc[-1]
    assert relay["acknowledged"] == pytest.approx(last["arrive"], abs=1e-9)
    # The mail program, Thunderbird, waits for its 221.
    program = result.events[result.events["session"] == submission(result)["session"]]
    assert program["step"].tolist()[-2:] == ["QUIT", "221"]


# -- what a hop's times mean ----------------------------------------------------------------


def test_a_hop_ends_when_the_next_server_holds_it_and_is_acknowledged_when_the_250_arrives():
    result = run()
    relay = result.hops[result.hops["protocol"] == "smtp"].iloc[0]
    # msa-school → mx-home is 1 + 45 + 1 ms one way at 1 Gbps; the 250 line is 36 bytes.
    line = "250 2.0.0 Ok: queued as ED99800001\r\n"
    assert relay["acknowledged"] - relay["end"] == pytest.approx(
        0.047 + len(line) * 8 / 1e9, abs=1e-9
    )
    document = result.to_dict()
    hop = document["messages"][0]["hops"][1]
    assert hop["acknowledged"] == pytest.approx(relay["acknowledged"], abs=1e-6)


def test_a_dns_failure_is_a_failed_attempt_of_the_hop_to_the_next_server():
    result = mailsim.run(mailsim.load(SCENARIOS / "dns-outage.yaml"))
    hops = result.hops
    failed = hops[hops["code"].astype(str) == "4.4.3"]
    # Every try while the resolver is down (until 1200 s) fails; the next one goes through.
    relay = hops[hops["src"] == "msa-school"]
    assert list(relay["start"] < 1200) == [True] * len(failed) + [False]
    assert list(failed["start"].round(3)) == [10.057, 583.452, 1183.452]  # seed 0's scans
    assert set(failed["src"]) == {"msa-school"}
    assert set(failed["dst"]) == {"home.example"}  # the domain whose server it looked for
    assert set(failed["protocol"]) == {"smtp"}
    assert "resolver" not in set(hops["dst"].astype(str))
    events = result.events
    gave_up = events[(events["protocol"] == "dns") & (events["step"] == "timeout")]
    assert len(gave_up) > 0
    # The stub resolver gives up on the asking machine: nothing came from the resolver.
    assert (gave_up["src"] == gave_up["dst"]).all()
    assert set(gave_up["src"]) == {"msa-school"}


# -- where the time went, the copy's own ----------------------------------------------------


def test_two_messages_fetched_in_one_session_each_have_their_own_network_time():
    """Bob's program fetches m1 and m2 in one POP3 session: m2 waited for m1's download,
    which is not m2's network time but more waiting for the program to get to it, as for
    the poll; no server was busy. Every part adds up to the delay."""
    text = CLASSROOM.read_text().replace(
        'subject: "Homework for Monday"}',
        'subject: "Homework for Monday"}\n  - {id: m2, at: 11s, from: alice@school.example,'
        " to: bob@home.example, size: 2MB}",
    )
    result = mailsim.run(mailsim.loads(text))
    messages = result.messages.set_index("id")
    parts = [c for c in messages.columns if c.endswith("_time")]
    for row in messages.itertuples():
        assert sum(getattr(row, p) for p in parts) == pytest.approx(row.delay, abs=1e-9)
        assert row.to_mailbox + row.to_reader == pytest.approx(row.delay, abs=1e-9)
    pop = result.hops[result.hops["protocol"] == "pop3"].set_index("message")
    assert pop.loc["m1", "session"] == pop.loc["m2", "session"]
    # m2 is fetched second: m1's 20 KB download is more of its wait for the program.
    assert list(messages["queue_time"]) == [0.0, 0.0]
    waited = {
        m: messages.loc[m, "poll_time"] - (pop.loc[m, "start"] - messages.loc[m, "delivered_at"])
        for m in ("m1", "m2")
    }  # beyond the time in the mailbox before the session began
    assert waited["m1"] == pytest.approx(0.0, abs=1e-9)
    # m1's RETR: less than m1's whole time in the session, which has the setup too.
    assert 0.0 < waited["m2"] < pop.loc["m1", "end"] - pop.loc["m1", "start"]


def test_a_message_that_went_on_keeps_no_reason():
    result = mailsim.run(mailsim.load(SCENARIOS / "mx-down.yaml"))
    (row,) = result.message_rows
    assert row.status == "retrieved"
    assert row.reason in ("", None)
    refused = result.hops[result.hops["outcome"].str.contains("Connection refused")]
    assert len(refused) == 5  # the history stays in the hops


def test_the_servers_work_on_starttls_is_server_work():
    """40 ms more per command: the TLS part of the delay does not move."""
    before = run().messages.iloc[0]
    after = run("nodes.msa-school.processing.command=40.5ms").messages.iloc[0]
    assert after["tls_time"] == pytest.approx(before["tls_time"], abs=1e-9)
    assert after["server_time"] > before["server_time"] + 0.2
