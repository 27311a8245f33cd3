"""The simulated POP3 dialogue, checked against a real server: Dovecot on 127.0.0.1.

The very same pure client dialogue the simulation plays (CAPA, STLS and a real TLS
handshake, USER/PASS, STAT, LIST, RETR and DELE each message, QUIT) is driven over a real
connection with the standard library's poplib; the (command, reply status) sequence the
real Dovecot gives must be the simulation's, for an empty mailbox, a mailbox with mail, a
wrong password and a program that will not log in without TLS.
"""

from __future__ import annotations

import poplib
from collections.abc import Generator
from typing import Any

import pytest

from mailsim.protocols import Commands, Connect, Reply, Step, TlsHandshake
from mailsim.protocols.pop3 import Pop3Server, client
from tests import dovecot
from tests.dialogue import play

USERS = {"bob@home.example": "builder"}
# Commands whose +OK answer is a block of lines ended by "." (RFC 1939, RFC 2449).
MULTI_LINE = ("CAPA", "LIST", "RETR", "TOP", "UIDL")


@pytest.fixture(scope="module")
def server():
    with dovecot.running(USERS) as running:
        yield running


def real(dialogue: Generator[Step, list[Reply], Any], server: dovecot.Dovecot):
    """Drive ``dialogue`` over a real connection: (result, [(sent, reply statuses)])."""
    transcript: list[tuple[str, tuple[str, ...]]] = []
    conn: poplib.POP3 | None = None
    try:
        step = next(dialogue)
        while True:
            if isinstance(step, Connect):
                conn = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
                replies = [_reply(conn.getwelcome())]
                sent = f"connect:{step.port}"
            elif isinstance(step, TlsHandshake):
                assert conn is not None
                context = server.client_context()
                conn.sock = context.wrap_socket(conn.sock, server_hostname="127.0.0.1")
                conn.file = conn.sock.makefile("rb")
                replies = [Reply("TLS", (conn.sock.version() or "",))]
                sent = "tls"
            else:
                assert isinstance(step, Commands)
                assert conn is not None
                replies = [_command(conn, line) for line in step.lines]
                sent = " | ".join(step.shown or step.lines)
            transcript.append((sent, tuple(r.code for r in replies)))
            step = dialogue.send(replies)
    except StopIteration as stop:
        return stop.value, transcript
    finally:
        if conn is not None:
            conn.close()


def _command(conn: poplib.POP3, line: str) -> Reply:
    verb = line.split(" ", 1)[0].upper()
    try:
        if verb in MULTI_LINE and not (verb == "LIST" and " " in line):
            answer, lines, _ = conn._longcmd(line)
            return _reply(answer, tuple(x.decode() for x in lines))
        return _reply(conn._shortcmd(line))
    except poplib.error_proto as refused:
        return _reply(refused.args[0])
    except (TimeoutError, EOFError) as lost:  # pragma: no cover - said in the failure
        return Reply("-ERR", (f"connection lost: {lost}",), local=True)


def _reply(answer: bytes, data: tuple[str, ...] = ()) -> Reply:
    status, _, text = answer.decode().partition(" ")
    return Reply(status, (text,), data=data)


def simulated(user: str, password: str, maildrop: list[int], tls: str = "may"):
    server = Pop3Server("pop.home.example", maildrop, USERS[user])
    return play(client(user, password, tls), server)


def test_an_empty_mailbox_is_checked_as_dovecot_answers(server):
    got, seen = real(client("bob@home.example", "builder"), server)
    expected, sim = simulated("bob@home.example", "builder", [])
    assert seen == sim
    assert [sent for sent, _ in seen] == [
        "connect:110", "CAPA", "STLS", "tls", "CAPA", "USER bob@home.example",
        "PASS ********", "STAT", "QUIT",
    ]  # fmt: skip
    assert got.retrieved == expected.retrieved == []
    assert got.committed
    assert expected.committed


def test_mail_is_retrieved_and_deleted_as_dovecot_answers(server):
    body = b"From: alice@school.example\r\nSubject: Homework\r\n\r\nSee you on Monday.\r\n"
    server.deliver("bob@home.example", [body, body.replace(b"Monday", b"Tuesday")])
    got, seen = real(client("bob@home.example", "builder"), server)
    expected, sim = simulated("bob@home.example", "builder", [len(body), len(body) + 1])
    assert seen == sim
    assert ("RETR 2", ("+OK",)) in seen
    assert ("DELE 2", ("+OK",)) in seen
    assert got.retrieved == expected.retrieved == [1, 2]
    # QUIT committed the deletions: the next check finds the mailbox empty.
    _, after = real(client("bob@home.example", "builder"), server)
    assert ("STAT", ("+OK",)) in after
    assert not any(sent.startswith("RETR") for sent, _ in after)


def test_a_wrong_password_is_refused_as_dovecot_refuses_it(server):
    got, seen = real(client("bob@home.example", "bilder"), server)
    expected, sim = simulated("bob@home.example", "bilder", [])
    assert seen == sim
    assert ("PASS ********", ("-ERR",)) in seen
    assert got.error is not None
    assert got.error.code == expected.error.code == "-ERR"


def test_the_greeting_and_the_capabilities_are_dovecots(server):
    """The simulated server's words are Dovecot's: its greeting (as configured), STLS
    offered before TLS and not after, USER among the capabilities."""
    conn = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
    try:
        assert conn.getwelcome().decode() == f"+OK {dovecot.GREETING}"
        _, before, _ = conn._longcmd("CAPA")
        conn.stls(server.client_context())
        _, after, _ = conn._longcmd("CAPA")
    finally:
        conn.close()
    ours = Pop3Server("pop.home.example", [], "x")
    sim_before = set(ours.capabilities())
    ours.tls_started("1.3")
    sim_after = set(ours.capabilities())
    real_before = {line.decode() for line in before}
    real_after = {line.decode() for line in after}
    assert sim_before <= real_before
    assert sim_after <= real_after
    assert (
        ("STLS" in real_before, "STLS" in real_after)
        == ("STLS" in sim_before, "STLS" in sim_after)
        == (True, False)
    )


def test_dovecot_whose_port_was_taken_first_starts_on_others(monkeypatch):
    """Parallel tests bind ports too: one found free can be taken before Dovecot binds it.
    Dovecot then starts again on others, and an empty mailbox is checked there."""
    import socket

    import tests.dovecot

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = taken.getsockname()[1]
        found = iter([held])
        free = tests.dovecot.free_port
        monkeypatch.setattr(tests.dovecot, "free_port", lambda: next(found, None) or free())
        with dovecot.running(USERS) as running:
            got, seen = real(client("bob@home.example", "builder"), running)
    assert held not in (running.pop3, running.imap, running.imaps)
    assert seen[-2:] == [("STAT", ("+OK",)), ("QUIT", ("+OK",))]
    assert got.committed
