"""The keys of compiled message sessions (:mod:`mailsim.compiled`) — SMTP and LMTP, and
POP3 checks that find mail: what fixes a session's course, so that a later session of
the same key can replay it.

A message session's waits come from its bytes, its path and its server's work; its course
(which commands, which replies) from the two programs' settings and the server's verdict
on the login, on each recipient and on the sender (DMARC). None of these needs the
addresses themselves, only their lengths and the verdicts, which the server's tables give
in advance (:meth:`mailsim.protocols.smtp.SmtpServer.refusal`). So the user at one office
writing to anyone at another replays the same template, whoever they are. What names the
session's own addresses — the replies to the message, the server's state that the
Received header reads — is made anew by each replay (:class:`SmtpResume`). A POP3 check
is fixed by the lengths of its address and password and the sizes it finds; nothing the
server says in it names anyone (:class:`Pop3Resume`). At full detail the records name
the two machines, the server (its greeting) and the client (EHLO): a replay puts its
own there (:data:`mailsim.compiled.Source`), so the keys need only say whether the two
ends are one machine.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from mailsim.network import NoRoute
from mailsim.protocols import (
    Commands,
    Connect,
    Content,
    Reply,
    TlsHandshake,
    Transcript,
    octets,
    pop3,
    smtp,
)

if TYPE_CHECKING:
    from mailsim.agents.context import WorldView
    from mailsim.agents.pop import MailboxServer
    from mailsim.message import Copy
    from mailsim.session import Work


def transfer_key(
    world: WorldView,
    client: str,
    server_node: str,
    config: smtp.ClientConfig,
    envelope: smtp.Envelope,
    server: smtp.SmtpServer,
    work: Work,
    sure: bool = False,
) -> Hashable | None:
    """The key of one SMTP or LMTP session, or None where it may not be compiled: where
    the world is not quiet, or where the server has site checks at RCPT that the caller
    is not ``sure`` pass (a mailbox server without a quota is). Where steps are recorded,
    the key also says whether the two ends are one machine: a replay puts its own
    machines and names in its records."""
    if not world.templates.on:
        return None
    cfg = server.config
    if cfg.rcpt_check is not None and not sure:
        return None
    refusal: Any = "no sender checks"
    if cfg.end_check is not None:  # the sender checks: their verdict known in advance
        preview = getattr(cfg.end_check, "refusal", None)
        if preview is None:
            return None
        refusal = preview()  # a reject's text, whose length its wait depends on
    try:
        out = world.network.path(client, server_node)
        back = world.network.path(server_node, client)
    except NoRoute:
        return None
    login = None
    if config.auth is not None:
        user, password = config.auth
        login = (auth_plain_length(user, password), cfg.credentials.get(user) == password)
    sender = envelope.sender
    rcpts = tuple(  # … and whether it is the sender: check mode tells names apart by text
        (octets(r), server.refusal(r, True) is None, server.refusal(r, False) is None,
         r == sender)
        for r in envelope.recipients
    )  # fmt: skip
    key = (
        "smtp", cfg.kind, cfg.tls, cfg.auth, cfg.pipelining, cfg.size_limit, octets(cfg.host),
        config.port, config.tls, config.implicit, config.pipelining, config.data_in_group,
        config.lmtp, config.quit_with_dot, octets(config.helo), login,
        octets(envelope.sender), envelope.size, rcpts, refusal, work,
        out.latency, out.bottleneck, back.latency, back.bottleneck,
    )  # fmt: skip
    if world.templates.full:
        return (*key, client == server_node)
    return key


def auth_plain_length(user: str, password: str) -> int:
    """The length of :func:`mailsim.protocols.smtp.auth_plain`'s text, without making it:
    base64 gives 4 characters for each 3 bytes of NUL, user, NUL, password (padded)."""
    return 4 * ((octets(user) + octets(password) + 4) // 3)


class SmtpResume:
    """How a replay of an SMTP or LMTP session gets the server's replies to the message:
    the server is put in the state the commands leave it in — the client's name from
    EHLO, TLS, the login, the sender and the recipients (all accepted: a refused one's
    reply names it, and makes no template) — and answers the end of DATA itself, queue
    id, recipients, sender checks and all."""

    def __init__(self, server: smtp.SmtpServer, config: smtp.ClientConfig, envelope: smtp.Envelope):
        self.server = server
        self.helo = config.helo
        self.auth = config.auth
        self.user = config.auth[0] if config.auth is not None else None
        self.envelope = envelope
        self._rcpt = 0  # the RCPT lines formed so far: the k-th names recipient k

    @property
    def host(self) -> str:
        return self.server.config.host

    def snapshot(self) -> Hashable:
        return (self.server.tls_active, self.server.authenticated is not None)

    def restore(self, snapshot: Hashable) -> list[Reply]:
        tls, logged_in = snapshot  # type: ignore[misc]
        envelope = self.envelope
        return self.server.end_of_transaction(
            self.helo, tls, self.user if logged_in else None, envelope.sender,
            list(envelope.recipients),
        )  # fmt: skip

    # own()'s places: the server's name, EHLO's name, the sender, the recipients from
    # RCPTS on; after them the queue id, the user and the login (the last).
    HELO, SENDER, RCPTS = 1, 2, 3

    def own(self) -> tuple[str, ...]:
        envelope = self.envelope
        login = smtp.auth_plain(*self.auth) if self.auth is not None else ""
        return (self.host, self.helo, envelope.sender, *envelope.recipients,
                self.server.queue_id, self.user or "", login)  # fmt: skip

    def form(self, line: str) -> tuple[str | int, ...]:
        # As smtp.client makes its lines: EHLO's (LHLO's) name, AUTH PLAIN's secret, the
        # addresses of MAIL FROM and of each RCPT TO, in the recipients' order.
        rcpts = self.envelope.recipients
        if line[:5] in ("EHLO ", "LHLO ", "HELO "):
            return (line[:5], self.HELO)
        if line.startswith("AUTH PLAIN "):
            return ("AUTH PLAIN ", self.RCPTS + len(rcpts) + 2)  # the login, last
        if line.startswith("MAIL FROM:<"):
            return ("MAIL FROM:<", self.SENDER, line[11 + len(self.envelope.sender) :])
        if line.startswith("RCPT TO:<") and self._rcpt < len(rcpts):
            k, self._rcpt = self._rcpt, self._rcpt + 1
            return ("RCPT TO:<", self.RCPTS + k, line[9 + len(rcpts[k]) :])
        return (line,)

    def watches(self, step: Any) -> bool:
        return isinstance(step, Content)  # the callbacks take the message over

    def escapes(self, result: Any, content: list[Any]) -> bool:
        assert isinstance(result, Transcript)
        replies = [r for r in (*result.replies.values(), result.final) if r is not None]
        return _names(self.own(), [r for r in replies if not any(r is c for c in content)])

    def outline(self, result: Any, content: list[Any]) -> Hashable | None:
        # Recipients by their place: a dialogue fills its dict in their order, so a
        # session whose list names someone twice (one entry) outlines nothing.
        rcpts = self.envelope.recipients
        place = {rcpt: i for i, rcpt in enumerate(rcpts)}
        if len(place) != len(rcpts) or not place.keys() >= result.replies.keys():
            return None

        def mark(reply: Reply) -> int | Reply:  # a reply to the message by its place
            return next((i for i, c in enumerate(content) if reply is c), reply)

        return (
            tuple((place[rcpt], mark(reply)) for rcpt, reply in result.replies.items()),
            result.tls,
            result.authenticated,
            result.queue_id is not None,
            None if result.final is None else mark(result.final),
        )

    def rebuild(self, outline: Hashable, content: list[Any]) -> Transcript:
        replies, tls, authenticated, queued, final = outline  # type: ignore[misc]
        rcpts = self.envelope.recipients
        out = Transcript(tls=tls, authenticated=authenticated)
        for i, reply in replies:
            out.replies[rcpts[i]] = content[reply] if type(reply) is int else reply
        if final is not None:
            out.final = content[final] if type(final) is int else final
        if queued:
            out.queue_id = smtp.queued_as(content[0])
        return out


def check_key(
    world: WorldView,
    client: str,
    mailbox: MailboxServer,
    address: str,
    password: str,
    security: str,
    held: list[Copy],
) -> Hashable | None:
    """The key of a POP3 check that finds mail: the mailbox server's settings and work,
    the lengths of the address and password, the security, the sizes of what it finds,
    and the path each way; where steps are recorded, whether the two ends are one
    machine. None where the world is not quiet."""
    if not world.templates.on or not held:
        return None
    try:
        out = world.network.path(client, mailbox.name)
        back = world.network.path(mailbox.name, client)
    except NoRoute:
        return None
    key = (
        "pop3", mailbox.tls, mailbox.work, octets(address), octets(password),
        address == password, security,
        tuple(copy.message.size for copy in held),
        out.latency, out.bottleneck, back.latency, back.bottleneck,
    )  # fmt: skip
    if world.templates.full:
        return (*key, client == mailbox.name)
    return key


class Pop3Resume:
    """How a POP3 check is replayed: the server's replies name no one (the sizes are in
    the key), so the result is the play's; the callbacks book each copy as its RETR
    ends, and are called where they read something (:meth:`watches`)."""

    def __init__(self, address: str, password: str, host: str) -> None:
        self.address, self.password, self.host = address, password, host

    def snapshot(self) -> Hashable:
        return None

    def restore(self, snapshot: Hashable) -> list[Reply]:
        raise AssertionError("a POP3 check carries no message up")

    def own(self) -> tuple[str, ...]:
        return (self.address, self.password, self.host)

    def form(self, line: str) -> tuple[str | int, ...]:
        # As pop3.client makes its lines: the address after USER, the password after PASS
        if line.startswith("USER "):
            return ("USER ", 0)
        if line.startswith("PASS "):
            return ("PASS ", 1)
        return (line,)

    def watches(self, step: Any) -> bool:
        # The mail program's callback (MailClient.check) learns TLS from the connection
        # or the handshake, and books each copy as its RETR ends with the costs since
        # the step before it, LIST or the last DELE or RETR: those steps. At CAPA, STLS,
        # USER, PASS, STAT and QUIT it only notes the costs, which the next of those
        # steps notes again before anyone reads them.
        if isinstance(step, Commands):
            return step.lines[0].split(" ", 1)[0] in _BOOKING
        return isinstance(step, Connect | TlsHandshake)

    def escapes(self, result: Any, content: list[Any]) -> bool:
        return result.error is not None and _names(self.own(), [result.error])

    def outline(self, result: Any, content: list[Any]) -> Hashable | None:
        # The numbers retrieved, TLS, whether QUIT committed: nobody is named in them
        return (tuple(result.retrieved), result.tls, result.committed, result.error)

    def rebuild(self, outline: Hashable, content: list[Any]) -> pop3.Retrieval:
        retrieved, tls, committed, error = outline  # type: ignore[misc]
        return pop3.Retrieval(list(retrieved), tls, committed, error)


_BOOKING = ("LIST", "RETR", "DELE")  # the POP3 commands a check's callback reads after


def _names(own: tuple[str, ...], replies: list[Reply]) -> bool:
    """Does any of ``replies`` name one of ``own``?"""
    return any(name and name in str(reply) for reply in replies for name in own)
