"""The SMTP, LMTP and ESMTP dialogues, pure: no network, no SimPy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsim.protocols import Reply
from mailsim.protocols.smtp import (
    PROFILES,
    ClientConfig,
    Envelope,
    ServerConfig,
    SmtpServer,
    auth_plain,
    capabilities,
    client,
    queue_id,
)
from tests.dialogue import play

ALICE = ("alice@school.example", "wonderland")


def msa(**overrides) -> SmtpServer:
    config = {
        "host": "mail.school.example",
        "kind": "submission",
        "tls": "1.3",
        "auth": "required",
        "local_domains": frozenset({"school.example"}),
        "credentials": {ALICE[0]: ALICE[1]},
    }
    config.update(overrides)
    return SmtpServer(ServerConfig(**config), queue_id="ABCDE00001")


def submit(server: SmtpServer, rcpts=("bob@home.example",), auth=ALICE, **cfg):
    config = ClientConfig(helo="alice-pc.school.example", port=587, auth=auth, **cfg)
    return play(client(config, Envelope(ALICE[0], tuple(rcpts), 20_000)), server)


def test_submission_dialogue_is_the_real_sequence_of_replies():
    out, transcript = submit(msa())
    assert transcript == [
        ("connect:587", ("220",)),
        ("EHLO alice-pc.school.example", ("250",)),
        ("STARTTLS", ("220",)),
        ("tls", ("TLS",)),
        ("EHLO alice-pc.school.example", ("250",)),
        ("AUTH PLAIN ********", ("235",)),
        (
            "MAIL FROM:<alice@school.example> SIZE=20000 | RCPT TO:<bob@home.example> | DATA",
            ("250", "250", "354"),
        ),
        ("content", ("250",)),
        ("QUIT", ("221",)),
    ]
    assert out.tls == "1.3"
    assert out.authenticated
    assert out.queue_id == "ABCDE00001"
    assert str(out.replies["bob@home.example"]) == "250 2.0.0 Ok: queued as ABCDE00001"


def test_auth_is_offered_only_after_starttls():
    server = msa()
    first = server.handle("EHLO pc")
    assert "STARTTLS" in capabilities(first)
    assert "AUTH" not in capabilities(first)
    assert str(server.handle(f"AUTH PLAIN {auth_plain(*ALICE)}")) == (
        "530 5.7.0 Must issue a STARTTLS command first"
    )
    server.tls_started("1.3")
    again = server.handle("EHLO pc")
    assert "AUTH" in capabilities(again)
    assert "STARTTLS" not in capabilities(again)


def test_without_pipelining_each_command_waits_for_its_reply():
    _, transcript = submit(msa(pipelining=False), rcpts=("bob@home.example", "carol@home.example"))
    sent = [s for s, _ in transcript]
    assert sent[6:10] == [
        "MAIL FROM:<alice@school.example> SIZE=20000",
        "RCPT TO:<bob@home.example>",
        "RCPT TO:<carol@home.example>",
        "DATA",
    ]


def test_client_that_does_not_pipeline_sends_one_command_at_a_time_even_if_offered():
    _, transcript = submit(msa(), pipelining=False)
    assert [codes for _, codes in transcript][6:9] == [("250",), ("250",), ("354",)]


def test_wrong_password_is_535_and_nothing_is_sent():
    out, transcript = submit(msa(), auth=(ALICE[0], "guess"))
    assert str(out.replies["bob@home.example"]) == (
        "535 5.7.8 Error: authentication failed: authentication failure"
    )
    assert [s for s, _ in transcript][-1] == "QUIT"
    assert not out.authenticated


def test_submission_without_auth_is_refused():
    out, _ = submit(msa(), auth=None)
    assert str(out.replies["bob@home.example"]) == "530 5.7.0 Authentication required"


def test_unauthenticated_relay_is_denied_but_local_delivery_is_not():
    mx = SmtpServer(
        ServerConfig(host="mx.school.example", local_domains=frozenset({"school.example"}))
    )
    config = ClientConfig(helo="mail.evil.example")
    out, _ = play(
        client(
            config, Envelope("x@evil.example", ("bob@home.example", "alice@school.example"), 100)
        ),
        mx,
    )
    assert (
        str(out.replies["bob@home.example"]) == "554 5.7.1 <bob@home.example>: Relay access denied"
    )
    assert out.replies["alice@school.example"].code == "250"


def test_relay_from_mynetworks_is_allowed():
    mx = SmtpServer(ServerConfig(host="gw.example", relay_allowed=True))
    out, _ = play(
        client(ClientConfig(helo="inside"), Envelope("a@b.example", ("c@d.example",), 1)), mx
    )
    assert out.replies["c@d.example"].code == "250"


def test_unknown_local_user_is_550_5_1_1():
    mx = SmtpServer(
        ServerConfig(
            host="mx.home.example",
            local_domains=frozenset({"home.example"}),
            local_users=frozenset({"bob@home.example"}),
        )
    )
    out, transcript = play(
        client(
            ClientConfig(helo="mail.school.example"),
            Envelope("a@s.example", ("bobby@home.example",), 1),
        ),
        mx,
    )
    assert str(out.replies["bobby@home.example"]).startswith("550 5.1.1 <bobby@home.example>")
    # All recipients refused: DATA gets 554 and no content is sent.
    assert ("content", ("250",)) not in transcript
    assert transcript[-2][1] == ("250", "550", "554")


def test_message_over_the_size_limit_is_552_5_3_4():
    out, _ = submit(msa(size_limit=10_000))
    assert str(out.replies["bob@home.example"]) == "552 5.3.4 Message size exceeds fixed limit"


def test_lmtp_answers_once_per_recipient_after_the_dot():
    lmtp = SmtpServer(
        ServerConfig(
            host="pop.home.example",
            kind="lmtp",
            tls=None,
            local_users=frozenset({"a@h.example", "b@h.example"}),
        ),
        queue_id="Q1",
    )
    config = ClientConfig(helo="mx.home.example", port=24, tls="none", lmtp=True)
    out, transcript = play(
        client(config, Envelope("s@x.example", ("a@h.example", "b@h.example"), 10)), lmtp
    )
    assert transcript[0] == ("connect:24", ("220",))
    assert transcript[1][0] == "LHLO mx.home.example"
    assert transcript[3] == ("content", ("250", "250"))
    assert str(out.replies["a@h.example"]) == "250 2.0.0 <a@h.example> Q1 Saved"
    assert str(out.replies["b@h.example"]) == "250 2.0.0 <b@h.example> Q1:R2 Saved"  # Dovecot


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("RCPT TO:<a@b.example>", "503 5.5.1 Error: need MAIL command"),
        ("DATA", "503 5.5.1 Error: need RCPT command"),
        ("VRFY bob", "502 5.5.2 Error: command not recognized"),
        ("QUIT", "221 2.0.0 Bye"),
        ("NOOP", "250 2.0.0 Ok"),
    ],
)
def test_out_of_sequence_and_unknown_commands(line, reply):
    server = SmtpServer(ServerConfig(host="mx"))
    server.handle("EHLO x")
    assert str(server.handle(line)) == reply


def test_mail_before_ehlo_is_refused():
    server = SmtpServer(ServerConfig(host="mx"))
    assert str(server.handle("MAIL FROM:<a@b.example>")) == "503 5.5.1 Error: send HELO/EHLO first"


def test_multiline_reply_wire_format():
    reply = Reply("250", ("mx.example", "PIPELINING", "8BITMIME"))
    assert reply.wire() == "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    assert reply.size == len(reply.wire())


def test_queue_ids_are_stable_and_distinct():
    assert queue_id("mx.example", 1) == queue_id("mx.example", 1)
    assert queue_id("mx.example", 1) != queue_id("mx.example", 2)
    assert len(queue_id("mx.example", 1)) == 10


def test_auth_plain_token_is_rfc_4616():
    assert auth_plain("alice", "pw") == "AGFsaWNlAHB3"


_line = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40
)


@given(
    code=st.sampled_from(["250", "354", "421", "+OK", "-ERR", "TLS"]),
    lines=st.lists(_line, max_size=4).map(tuple),
    data=st.lists(_line, max_size=4).map(tuple),
    payload=st.integers(0, 10**7),
)
def test_a_reply_size_is_its_bytes_on_the_wire(code, lines, data, payload):
    reply = Reply(code, lines, data if code.startswith(("+", "-")) else (), payload)
    assert reply.size == len(reply.wire().encode()) + payload


def test_a_phone_pipelines_mail_and_rcpt_then_sends_data_alone():
    """Thunderbird for Android (SmtpTransport.kt): MAIL and the RCPTs in one group, DATA
    once their replies are read."""
    _, transcript = submit(msa(), rcpts=("bob@home.example", "carol@home.example"),
                           **PROFILES["phone"])  # fmt: skip
    assert transcript[6:9] == [
        (
            "MAIL FROM:<alice@school.example> SIZE=20000 | RCPT TO:<bob@home.example>"
            " | RCPT TO:<carol@home.example>",
            ("250", "250", "250"),
        ),
        ("DATA", ("354",)),
        ("content", ("250",)),
    ]


def test_a_phone_sends_nothing_when_one_recipient_is_refused():
    """Its first refusal is the whole message's error: no DATA, every recipient failed
    with it (msmtp and Thunderbird send to the others)."""
    server = msa(local_users=frozenset({"alice@school.example"}))
    out, transcript = submit(server, rcpts=("alice@school.example", "nobody@school.example"),
                             **PROFILES["phone"])  # fmt: skip
    assert [sent for sent, _ in transcript][7:] == ["QUIT"]
    refusal = out.replies["nobody@school.example"]
    assert refusal.code == "550"
    assert out.replies["alice@school.example"] is refusal


def test_the_mailbox_server_answers_lmtp_with_a_dovecot_session_id():
    """classroom's LMTP hop: Dovecot's "250 2.0.0 <rcpt> <id> Saved" with a 22-character
    base64 id (not a Postfix queue id), the same in the Received line it adds."""
    import re

    from mailsim.protocols.smtp import dovecot_id
    from tests.conftest import run

    result = run("classroom")
    hops = result.hops
    (saved,) = hops.loc[hops["protocol"] == "lmtp", "outcome"]
    (session,) = re.fullmatch(r"250 2\.0\.0 <bob@home\.example> ([A-Za-z0-9+/]{22}) Saved",
                              saved).groups()  # fmt: skip
    assert session == dovecot_id("pop.home.example", 1) == "mrXlB7vfIzhvB2IIZyQQ/w"
    (copy,) = result.copies
    assert (copy.stamps[-1].protocol, copy.stamps[-1].queue_id) == ("LMTP", session)
    assert dovecot_id("pop.home.example", 2) != session
