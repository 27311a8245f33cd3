"""The simulated IMAP dialogues, checked against a real server: Dovecot on 127.0.0.1.

The very same pure client dialogues the simulation plays (the greeting's capabilities,
STARTTLS and a real TLS handshake, CAPABILITY, LOGIN, SELECT, SEARCH UNSEEN, FETCH and
STORE each new message, IDLE, LOGOUT) are driven over a plain socket, line by line:
imaplib would send a CAPABILITY of its own on connecting (which changes how Dovecot words
its reply to LOGIN), files untagged lines by name, and has no IDLE before Python 3.14.
The greeting's capabilities are compared through imaplib. The (command, reply status) sequence
the real Dovecot gives must be the simulation's; so must the words of every reply, but
for Dovecot's timings and its mailbox's UIDVALIDITY.

The client connects from 127.0.0.2: Dovecot treats a client on its own address as secure
and would allow a password before TLS, unlike a mail program across the network.
"""

from __future__ import annotations

import base64
import imaplib
import re
import socket
from collections.abc import Generator, Iterable
from typing import Any

import pytest

from mailsim.protocols import Commands, Connect, Idle, Reply, TlsHandshake
from mailsim.protocols.imap import ImapServer, client, idle
from tests import dovecot
from tests.dialogue import play

USERS = {"bob@home.example": "builder", "carol@home.example": "cake"}
FROM = ("127.0.0.2", 0)  # not Dovecot's own address: see the module's docstring
BODY = b"From: alice@school.example\r\nSubject: Homework\r\n\r\nSee you on Monday.\r\n"
# Dovecot's timing of a command after login, before the final period: " (0.001 + 0.000 secs)"
TIMING = re.compile(r" \([0-9.]+( \+ [0-9.]+)+ secs\)(?=\.$)")
LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
PUSH_WAIT = 10.0  # Dovecot notices a new maildir file within a second (inotify)


class _Imap(imaplib.IMAP4):
    """imaplib's connection, opened from :data:`FROM`."""

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=FROM)


@pytest.fixture(scope="module")
def server():
    with dovecot.running(USERS) as running:
        yield running


class Wire:
    """One real IMAP connection, read as the simulation's :class:`Reply` values."""

    def __init__(
        self, server: dovecot.Dovecot, user: str, arrivals: list[bytes], implicit: bool = False
    ) -> None:
        self.server, self.user, self.arrivals = server, user, arrivals
        port = server.imaps if implicit else server.imap
        self.sock = socket.create_connection(("127.0.0.1", port), PUSH_WAIT, source_address=FROM)
        if implicit:
            self.tls()
        self.buffer = b""
        self.waiting = ""  # the tag of a command that got a "+" and waits for more

    def greeting(self) -> Reply:
        return _status("*", self.line()[0].partition(" ")[2])

    def tls(self) -> Reply:
        context = self.server.client_context()
        self.sock = context.wrap_socket(self.sock, server_hostname="127.0.0.1")
        return Reply("TLS", (self.sock.version() or "",))

    def command(self, line: str) -> Reply:
        """Send a line; read its reply. A line answering a ``+`` (DONE after IDLE, a SASL
        response) is answered under the tag of the command that got the ``+``."""
        self.sock.sendall(line.encode() + b"\r\n")
        tag = self.waiting or line.split(" ", 1)[0]
        reply = self.read(tag)
        self.waiting = tag if reply.code == "+" else ""
        return reply

    def read(self, tag: str) -> Reply:
        """Untagged lines up to the tagged one (or a ``+`` continuation)."""
        data: list[str] = []
        payload = 0
        while True:
            line, literal = self.line()
            if line.startswith("* "):
                data.append(line[2:])
                payload += literal
                continue
            if line.startswith("+"):
                return Reply("+", (line[2:],))
            got, _, rest = line.partition(" ")
            assert got == tag, f"expected {tag}, got {line!r}"
            return _status(tag, rest, tuple(data), payload)

    def line(self) -> tuple[str, int]:
        """One response line, a literal's bytes left out: (the line, bytes left out)."""
        raw = self.take_line()
        found = LITERAL.search(raw)
        if not found:
            return raw.decode().removesuffix("\r\n"), 0
        size = int(found.group(1))
        while len(self.buffer) < size:
            self.receive()
        self.buffer = self.buffer[size:]
        rest = self.take_line()  # ")\r\n" ends the FETCH line
        return raw.decode().removesuffix("\r\n"), size + len(rest)

    def take_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self.receive()
        raw, self.buffer = self.buffer.split(b"\r\n", 1)
        return raw + b"\r\n"

    def receive(self) -> None:
        """Read what has come (the socket's own reads: a timed-out one may be retried)."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("Dovecot closed the connection")
        self.buffer += chunk

    def idle(self) -> list[Reply]:
        """Deliver the next arrival and wait for Dovecot's push (none left: the client's
        29 minutes are taken to have passed at once)."""
        if not self.arrivals:
            return []
        self.server.deliver(self.user, [self.arrivals.pop(0)])
        lines = [self.line()[0]]
        self.sock.settimeout(0.5)  # more lines of the same push come at once
        try:
            while True:
                if b"\r\n" not in self.buffer:
                    self.receive()
                else:
                    lines.append(self.line()[0])
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(PUSH_WAIT)
        assert all(line.startswith("* ") for line in lines), lines
        return [Reply("*", data=tuple(line[2:] for line in lines), tag="")]


def _status(tag: str, rest: str, data: tuple[str, ...] = (), payload: int = 0) -> Reply:
    code, _, text = rest.partition(" ")
    return Reply(code, (TIMING.sub("", text),), data=data, payload=payload, tag=tag)


def real(
    dialogue: Generator[Any, list[Reply], Any],
    server: dovecot.Dovecot,
    user: str,
    arrivals: tuple[bytes, ...] = (),
):
    """Drive ``dialogue`` over a real connection: (result, [(sent, reply statuses)],
    the replies)."""
    transcript: list[tuple[str, tuple[str, ...]]] = []
    replies_seen: list[Reply] = []
    wire: Wire | None = None
    try:
        step = next(dialogue)
        while True:
            if isinstance(step, Connect):
                wire = Wire(server, user, list(arrivals), implicit=step.tls is not None)
                replies = [wire.greeting()]
                if step.tls is not None:  # the handshake came first
                    replies.insert(0, Reply("TLS", (wire.sock.version() or "",)))
                sent = f"connect:{step.port}"
            elif isinstance(step, TlsHandshake):
                assert wire is not None
                replies = [wire.tls()]
                sent = "tls"
            elif isinstance(step, Idle):
                assert wire is not None
                replies = wire.idle()
                sent = "idle"
            else:
                assert isinstance(step, Commands)
                assert wire is not None
                replies = [wire.command(line) for line in step.lines]
                sent = " | ".join(step.shown or step.lines)
            transcript.append((sent, tuple(r.code for r in replies)))
            replies_seen.extend(r for r in replies if r.code != "TLS")  # the server's
            step = dialogue.send(replies)
    except StopIteration as stop:
        return stop.value, transcript, replies_seen
    finally:
        if wire is not None:
            wire.sock.close()


class Recording(ImapServer):
    """The simulated server, keeping every reply it gives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replies: list[Reply] = []

    def greeting(self) -> Reply:
        self.replies.append(super().greeting())
        return self.replies[-1]

    def handle(self, line: str) -> Reply:
        self.replies.append(super().handle(line))
        return self.replies[-1]

    def deliver(self, size: int) -> Reply | None:
        pushed = super().deliver(size)
        if pushed is not None:
            self.replies.append(pushed)
        return pushed


def _words(reply: Reply) -> str:
    """What a reply says, but for the number Dovecot's clock picks (UIDVALIDITY)."""
    return re.sub(r"UIDVALIDITY \d+", "UIDVALIDITY n", reply.wire())


def assert_same_words(real_replies: list[Reply], ours: Recording) -> None:
    assert [_words(r) for r in real_replies] == [_words(r) for r in ours.replies]
    assert [r.size for r in real_replies] == [r.size for r in ours.replies]


def test_an_empty_mailbox_is_checked_as_dovecot_answers(server):
    got, seen, replies = real(client("carol@home.example", "cake"), server, "carol@home.example")
    ours = Recording("imap.home.example", [], USERS["carol@home.example"])
    expected, sim = play(client("carol@home.example", "cake"), ours)
    assert seen == sim
    assert [sent for sent, _ in seen] == [
        "connect:143", "a1 STARTTLS", "tls", "a2 CAPABILITY",
        "a3 LOGIN carol@home.example ********", "a4 SELECT INBOX", "a5 SEARCH UNSEEN",
        "a6 LOGOUT",
    ]  # fmt: skip
    assert got.fetched == expected.fetched == []
    assert got.tls == "TLSv1.3"
    assert got.logged_out
    assert expected.logged_out
    assert_same_words(replies, ours)


def test_mail_is_fetched_and_flagged_seen_and_stays_as_dovecot_keeps_it(server):
    bodies = [BODY, BODY.replace(b"Monday", b"Tuesday")]
    server.deliver("bob@home.example", bodies)
    got, seen, replies = real(client("bob@home.example", "builder"), server, "bob@home.example")
    mailbox = [len(b) for b in bodies]
    ours = Recording("imap.home.example", mailbox, USERS["bob@home.example"])
    expected, sim = play(client("bob@home.example", "builder"), ours)
    assert seen == sim
    assert ("a6 FETCH 1 (BODY.PEEK[] FLAGS)", ("OK",)) in seen
    assert ("a9 STORE 2 +FLAGS (\\Seen)", ("OK",)) in seen
    assert got.fetched == expected.fetched == [1, 2]
    assert_same_words(replies, ours)
    fetch = next(r for r in replies if r.payload)
    assert fetch.payload == len(BODY) + len(b")\r\n")
    # A second check finds nothing new, and both messages still there, flagged \Seen.
    again, after, replies = real(client("bob@home.example", "builder"), server, "bob@home.example")
    later = Recording("imap.home.example", mailbox, "builder", seen=ours.seen,
                      announced=ours.announced)  # fmt: skip
    _, sim_after = play(client("bob@home.example", "builder"), later)
    assert after == sim_after
    assert again.fetched == []
    assert not any("FETCH" in sent for sent, _ in after)
    assert "2 EXISTS" in next(r for r in replies if "Select" in r.text).data
    assert_same_words(replies, later)


def test_implicit_tls_on_the_imaps_port_is_checked_as_dovecot_answers(server):
    user = "carol@home.example"
    got, seen, replies = real(client(user, "cake", implicit=True), server, user)
    ours = Recording("imap.home.example", [], "cake")
    expected, sim = play(client(user, "cake", implicit=True), ours)
    assert seen == sim
    assert expected.tls == "1.3"
    assert [sent for sent, _ in seen][:2] == ["connect:993", "a1 LOGIN carol@home.example ********"]
    assert seen[0] == ("connect:993", ("TLS", "OK"))
    assert got.tls == "TLSv1.3"
    assert "AUTH=PLAIN" in replies[0].text
    assert_same_words(replies, ours)


def test_refusals_and_their_words_are_dovecots(server):
    """Commands out of place, one by one, answered by Dovecot and by the simulation."""
    user = "carol@home.example"  # an empty mailbox, in every test here
    secret = base64.b64encode(f"\0{user}\0cake".encode()).decode()
    before_tls = (
        f"a1 LOGIN {user} cake", f"a2 AUTHENTICATE PLAIN {secret}", "a3 SELECT INBOX",
        "a4 NOOP", "a5 STARTTLS",
    )  # fmt: skip
    after_tls = (
        "a6 STARTTLS", f"a7 LOGIN {user} caek", "a8 AUTHENTICATE PLAIN", secret,
        "a9 FETCH 1 (BODY.PEEK[] FLAGS)", "a10 SEARCH UNSEEN", "a11 SELECT Junk",
        "a12 STARTTLS", "a13 SELECT INBOX", "a14 FETCH 1 (FLAGS)", "a15 SEARCH FOO",
        "a16 STORE 1 +FLAGS (\\Seen)", "a17 UID FETCH 7 (FLAGS)", "a18 CAPABILITY",
        "a19 IDLE", "DONE", "a20 IDLE", "a21 NOOP", "a22 NOOP", "a23 LOGOUT",
    )  # fmt: skip
    wire = Wire(server, user, [])
    ours = Recording("imap.home.example", [], "cake")
    try:
        replies = [wire.greeting(), *(wire.command(line) for line in before_tls)]
        wire.tls()
        replies += [wire.command(line) for line in after_tls]
    finally:
        wire.sock.close()
    ours.greeting()
    for line in before_tls:
        ours.handle(line)
    ours.tls_started("1.3")
    for line in after_tls:
        ours.handle(line)
    assert [r.code for r in replies] == [
        "OK", "NO", "NO", "BAD", "OK", "OK", "BAD", "NO", "+", "OK", "BAD", "BAD", "NO", "BAD",
        "OK", "BAD", "BAD", "BAD", "OK", "OK", "+", "OK", "+", "BAD", "OK", "OK",
    ]  # fmt: skip
    assert_same_words(replies, ours)


def test_a_wrong_password_is_refused_as_dovecot_refuses_it(server):
    got, seen, replies = real(client("bob@home.example", "bilder"), server, "bob@home.example")
    ours = Recording("imap.home.example", [], USERS["bob@home.example"])
    expected, sim = play(client("bob@home.example", "bilder"), ours)
    assert seen == sim
    assert ("a3 LOGIN bob@home.example ********", ("NO",)) in seen
    assert (
        str(got.error)
        == str(expected.error)
        == ("NO [AUTHENTICATIONFAILED] Authentication failed.")
    )
    assert_same_words(replies, ours)


def test_new_mail_is_pushed_during_idle_as_dovecot_pushes_it():
    dovecot.require()
    user = "dave@home.example"
    with dovecot.running({user: "dough"}) as fresh:
        dialogue = idle(user, "dough", idles=2)
        got, seen, replies = real(dialogue, fresh, user, arrivals=(BODY,))
    ours = Recording("imap.home.example", [], "dough")
    expected, sim = play(idle(user, "dough", idles=2), ours, arrivals=(len(BODY),))
    assert seen == sim
    assert [sent for sent, _ in seen][7:] == [
        "a6 IDLE", "idle", "DONE", "a7 FETCH 1 (BODY.PEEK[] FLAGS)",
        "a8 STORE 1 +FLAGS (\\Seen)", "a9 IDLE", "idle", "DONE", "a10 LOGOUT",
    ]  # fmt: skip
    assert ("idle", ("*",)) in seen
    assert got.fetched == expected.fetched == [1]
    assert got.pushes == expected.pushes == 1
    pushed = next(r for r in replies if r.code == "*")
    assert pushed.data == ("1 EXISTS", "1 RECENT")
    assert_same_words(replies, ours)


def test_the_greeting_and_the_capabilities_are_dovecots(server):
    """The simulated server's words are Dovecot's: its greeting, STARTTLS and
    LOGINDISABLED listed before TLS and not after, AUTH=PLAIN after, and the longer list
    after login."""
    conn = _Imap("127.0.0.1", server.imap, timeout=10)
    try:
        greeting = conn.welcome.decode()
        before = _upper(conn.capabilities)
        conn.starttls(server.client_context())  # imaplib asks CAPABILITY again
        after = _upper(conn.capabilities)
        conn.login("bob@home.example", "builder")
        _, listed = conn.capability()
        logged_in = _upper(listed[-1].decode().split())
    finally:
        conn.shutdown()
    ours = ImapServer("imap.home.example", [], "builder")
    assert greeting + "\r\n" == ours.greeting().wire()
    assert greeting.endswith(f"] {dovecot.GREETING}")
    sim_before = _upper(ours.capabilities())
    ours.tls_started("1.3")
    sim_after = _upper(ours.capabilities())
    ours.handle("a1 LOGIN bob@home.example builder")
    sim_logged_in = _upper(ours.capabilities())
    assert sim_before <= before
    assert sim_after <= after
    assert sim_logged_in <= logged_in
    for word in ("STARTTLS", "LOGINDISABLED"):
        assert (word in before, word in after) == (word in sim_before, word in sim_after)
        assert (word in before, word in after) == (True, False)
    assert "AUTH=PLAIN" in after & sim_after
    assert "IDLE" in before & sim_before


def _upper(words: Iterable[str | bytes]) -> set[str]:
    """Capabilities compared as imaplib keeps them: in capitals."""
    return {(w.decode() if isinstance(w, bytes) else w).upper() for w in words}
