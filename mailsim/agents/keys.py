"""The keys of compiled SMTP and LMTP sessions (:mod:`mailsim.compiled`): what fixes a
session's course, so that a later session of the same key can replay it.

A message session's waits come from its bytes, its path and its server's work; its course
(which commands, which replies) from the two programs' settings and the server's verdict
on the login, on each recipient and on the sender (DMARC). None of these needs the
addresses themselves, only their lengths and the verdicts, which the server's tables give
in advance (:meth:`mailsim.protocols.smtp.SmtpServer.refusal`). So the user at one office
writing to anyone at another replays the same template, whoever they are. What names the
session's own addresses — the replies to the message, the server's state that the
Received header reads — is made anew by each replay (:class:`SmtpResume`).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from mailsim.network import NoRoute
from mailsim.protocols import Reply, Transcript, smtp

if TYPE_CHECKING:
    from mailsim.agents.context import WorldView
    from mailsim.session import Work


def _octets(text: str) -> int:
    return len(text.encode())


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
    steps are recorded (their texts name the addresses), where the world is not quiet,
    or where the server has site checks at RCPT that the caller is not ``sure`` pass
    (a mailbox server without a quota is)."""
    if not world.swift:
        return None
    cfg = server.config
    if cfg.rcpt_check is not None and not sure:
        return None
    refuses: bool | None = None
    if cfg.end_check is not None:
        refuses = getattr(cfg.end_check, "refuses", None)
        if refuses is None:
            return None
        refuses = refuses()
    try:
        out = world.network.path(client, server_node)
        back = world.network.path(server_node, client)
    except NoRoute:
        return None
    login = None
    if config.auth is not None:
        user, password = config.auth
        login = (len(smtp.auth_plain(user, password)), cfg.credentials.get(user) == password)
    rcpts = tuple(
        (_octets(r), server.refusal(r, True) is None, server.refusal(r, False) is None)
        for r in envelope.recipients
    )
    return (
        "smtp", cfg.kind, cfg.tls, cfg.auth, cfg.pipelining, cfg.size_limit, _octets(cfg.host),
        config.port, config.tls, config.implicit, config.pipelining, config.data_in_group,
        config.lmtp, config.quit_with_dot, _octets(config.helo), login,
        _octets(envelope.sender), envelope.size, rcpts, refuses, work,
        out.latency, out.bottleneck, back.latency, back.bottleneck,
    )  # fmt: skip


class SmtpResume:
    """How a replay of an SMTP or LMTP session gets the server's replies to the message:
    the server is put in the state the commands leave it in — the client's name from
    EHLO, TLS, the login, the sender and the recipients (all accepted: a refused one's
    reply names it, and makes no template) — and answers the end of DATA itself, queue
    id, recipients, sender checks and all."""

    def __init__(self, server: smtp.SmtpServer, config: smtp.ClientConfig, envelope: smtp.Envelope):
        self.server = server
        self.helo = config.helo
        self.user = config.auth[0] if config.auth is not None else None
        self.envelope = envelope

    def snapshot(self) -> Hashable:
        return (self.server.tls_active, self.server.authenticated is not None)

    def restore(self, snapshot: Hashable) -> list[Reply]:
        server = self.server
        server.tls_active, logged_in = snapshot  # type: ignore[misc]
        server.helo = sys.intern(self.helo)
        server.authenticated = self.user if logged_in else None
        server.sender = self.envelope.sender
        server.recipients = list(self.envelope.recipients)
        return server.end_of_data()

    def escapes(self, result: Any, content: list[Any]) -> bool:
        assert isinstance(result, Transcript)
        own = [self.helo, *self.envelope.recipients, self.server.queue_id]
        if self.envelope.sender:
            own.append(self.envelope.sender)
        for reply in (*result.replies.values(), result.final):
            if reply is None or any(reply is mine for mine in content):
                continue
            text = str(reply)
            if any(name in text for name in own):
                return True
        return False
