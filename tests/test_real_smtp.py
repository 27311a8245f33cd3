"""The simulated dialogues, checked against a real SMTP server (aiosmtpd on 127.0.0.1).

The very same pure client dialogue that the simulation plays is driven over a real TCP
connection, with a real STARTTLS handshake (a certificate made for the test by trustme)
and AUTH PLAIN. The reply code the real server gives to each command must be the code
the simulation recorded for it.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Iterator

import pytest

from mailsim.protocols import Commands, Connect, Content, Reply, TlsHandshake
from mailsim.protocols.smtp import ClientConfig, Envelope, client

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
aiosmtpd_smtp = pytest.importorskip("aiosmtpd.smtp")
trustme = pytest.importorskip("trustme")

USERS = {"alice@school.example": "wonderland"}


class Sink:
    """Accepts every message, as the simulated MSA and MX do."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], int]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), len(envelope.content)))
        return "250 2.0.0 Ok: queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = USERS.get(auth_data.login.decode()) == auth_data.password.decode()
    return aiosmtpd_smtp.AuthResult(success=ok, handled=False)


class AnyPort(aiosmtpd_controller.Controller):
    """aiosmtpd on a port the system gives it as it binds, read back before the controller
    first connects to it: no port is found free beforehand for a parallel test to take."""

    def _create_server(self):  # aiosmtpd's hook for subclasses: how to listen
        async def listening():
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return listening()


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@contextlib.contextmanager
def real_server(ca, *, submission: bool) -> Iterator[tuple[int, Sink]]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    sink = Sink()
    controller = AnyPort(
        sink,
        hostname="127.0.0.1",
        tls_context=server_ctx,
        require_starttls=submission,
        auth_required=submission,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    controller.start()
    port = controller.port
    try:
        yield port, sink
    finally:
        controller.stop()


def drive(dialogue, port: int, client_ctx: ssl.SSLContext):
    """Play a pure client dialogue over a real connection; return (result, [(cmd, code)])."""
    smtp = smtplib.SMTP(timeout=10)
    pairs: list[tuple[str, str]] = []
    try:
        step = next(dialogue)
        while True:
            if isinstance(step, Connect):
                code, text = smtp.connect("127.0.0.1", port)
                replies = [Reply(str(code), tuple(text.decode().splitlines()))]
                pairs.append(("connect", str(code)))
            elif isinstance(step, Commands):
                for line in step.lines:
                    smtp.putcmd(line)
                replies = []
                for line in step.lines:
                    code, text = smtp.getreply()
                    replies.append(Reply(str(code), tuple(text.decode().splitlines())))
                    pairs.append((line.split()[0].upper(), str(code)))
            elif isinstance(step, TlsHandshake):
                smtp.sock = client_ctx.wrap_socket(smtp.sock, server_hostname="127.0.0.1")
                smtp.file = None
                replies = [Reply("TLS", (smtp.sock.version() or "",))]
                pairs.append(("tls", "ok"))
            else:
                assert isinstance(step, Content)
                body = ("Subject: test\r\n\r\n" + "x" * 70 + "\r\n") * (step.size // 72 + 1)
                smtp.send(body.encode() + b".\r\n")
                code, text = smtp.getreply()
                replies = [Reply(str(code), (text.decode(),))]
                pairs.append(("content", str(code)))
            step = dialogue.send(replies)
    except StopIteration as stop:
        return stop.value, pairs
    finally:
        smtp.close()


def simulated_pairs(result, src: str, dst: str) -> list[tuple[str, str]]:
    """(command, reply code) in order, from the simulation's events of one session."""
    events = result.events
    mine = events[(events["src"].isin([src, dst])) & (events["dst"].isin([src, dst]))]
    session = mine[mine["protocol"] == "smtp"]["session"].iloc[0]
    rows = events[events["session"] == session]
    commands: list[str] = []
    codes: list[str] = []
    for row in rows.itertuples():
        if row.protocol == "tcp":
            continue
        if row.protocol == "tls":
            if not commands or commands[-1] != "tls":  # a handshake counts once
                commands.append("tls")
                codes.append("ok")
        elif row.src == src:
            commands.append("content" if row.step == "message" else row.step)
        else:
            codes.append(row.code)
    return list(zip(["connect", *commands], codes, strict=True))


@pytest.fixture(scope="module")
def client_ctx(ca) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_submission_dialogue_matches_a_real_server(ca, client_ctx, classroom_result):
    config = ClientConfig(
        helo="alice-pc.school.example", port=587, auth=("alice@school.example", "wonderland")
    )
    envelope = Envelope("alice@school.example", ("bob@home.example",), 20_000)
    with real_server(ca, submission=True) as (port, sink):
        transcript, real = drive(client(config, envelope), port, client_ctx)
    assert transcript.authenticated
    assert transcript.tls == "TLSv1.3"
    assert str(transcript.replies["bob@home.example"]).startswith("250 2.0.0 Ok: queued")
    assert sink.received[0][:2] == ("alice@school.example", ["bob@home.example"])
    assert real == simulated_pairs(classroom_result, "alice-pc", "msa-school")


def test_relay_dialogue_matches_a_real_server(ca, client_ctx, classroom_result):
    config = ClientConfig(helo="mail.school.example")
    envelope = Envelope("alice@school.example", ("bob@home.example",), 20_000)
    with real_server(ca, submission=False) as (port, sink):
        transcript, real = drive(client(config, envelope), port, client_ctx)
    assert not transcript.authenticated
    assert transcript.tls == "TLSv1.3"
    assert len(sink.received) == 1
    assert real == simulated_pairs(classroom_result, "msa-school", "mx-home")


def test_wrong_password_is_535_on_both(ca, client_ctx):
    from mailsim.protocols.smtp import ServerConfig, SmtpServer
    from tests.dialogue import play

    config = ClientConfig(helo="pc", port=587, auth=("alice@school.example", "guess"))
    envelope = Envelope("alice@school.example", ("bob@home.example",), 100)
    with real_server(ca, submission=True) as (port, sink):
        transcript, real = drive(client(config, envelope), port, client_ctx)
    simulated_server = SmtpServer(
        ServerConfig(host="msa", kind="submission", auth="required", credentials=USERS)
    )
    simulated, _ = play(client(config, envelope), simulated_server)
    assert transcript.replies["bob@home.example"].code == "535"
    assert simulated.replies["bob@home.example"].code == "535"
    assert ("AUTH", "535") in real
    assert sink.received == []


def test_submission_without_auth_is_530_on_both(ca, client_ctx):
    config = ClientConfig(helo="pc", port=587)
    envelope = Envelope("alice@school.example", ("bob@home.example",), 100)
    with real_server(ca, submission=True) as (port, _):
        transcript, real = drive(client(config, envelope), port, client_ctx)
    assert transcript.replies["bob@home.example"].code == "530"
    assert ("MAIL", "530") in real


def test_a_phone_submission_matches_a_real_server(ca, client_ctx):
    """Thunderbird for Android's grouping (MAIL and RCPTs, then DATA alone) gets the same
    replies, in the same order, from aiosmtpd as from the simulated MSA."""
    from mailsim.protocols.smtp import PROFILES, ServerConfig, SmtpServer
    from tests.dialogue import play

    config = ClientConfig(helo="[127.0.0.1]", port=587, auth=("alice@school.example",
                          "wonderland"), **PROFILES["phone"])  # fmt: skip
    envelope = Envelope("alice@school.example", ("bob@home.example", "carol@home.example"), 2_000)
    with real_server(ca, submission=True) as (port, sink):
        _, real = drive(client(config, envelope), port, client_ctx)
    simulated_server = SmtpServer(
        ServerConfig(host="msa", kind="submission", auth="required", credentials=USERS)
    )
    _, steps = play(client(config, envelope), simulated_server)
    simulated: list[tuple[str, str]] = []
    for sent, codes in steps:
        if sent.startswith("connect"):
            simulated.append(("connect", codes[0]))
        elif sent == "tls":
            simulated.append(("tls", "ok"))
        elif sent == "content":
            simulated.append(("content", codes[0]))
        else:
            lines = sent.split(" | ")
            simulated += [
                (line.split()[0].upper(), c) for line, c in zip(lines, codes, strict=True)
            ]
    assert real == simulated
    assert [verb for verb, _ in real].count("RCPT") == 2
    assert sink.received[0][:2] == (
        "alice@school.example",
        ["bob@home.example", "carol@home.example"],
    )
