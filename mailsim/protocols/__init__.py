"""Pure dialogues: SMTP, LMTP, POP3, DNS and TLS as plain functions and data.

Nothing here imports simpy. A client dialogue is a generator that *yields* what it sends
(a :class:`Step`) and *receives* the replies; a server is a state machine that answers one
command at a time. :mod:`mailsim.session` plays them over the simulated network, and the
tests play the very same client dialogues against a real SMTP server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# What a step costs in the delay breakdown: "network" for the protocol's own round trips,
# "tls" for what encryption adds (STARTTLS, the handshake, the EHLO it forces again).
Cost = Literal["network", "tls"]


@dataclass(frozen=True)
class Reply:
    """A server reply: SMTP ``250 …`` (possibly multi-line) or POP3 ``+OK``/``-ERR``."""

    code: str
    lines: tuple[str, ...] = ()
    data: tuple[str, ...] = ()  # POP3 multi-line body (CAPA, LIST), ended by "."
    payload: int = 0  # bytes of content carried after the reply (POP3 RETR)
    local: bool = False  # concluded by the client (refused, timed out), not sent by a server

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def ok(self) -> bool:
        return self.code.startswith(("2", "3", "+"))

    def wire(self) -> str:
        """The reply as sent: SMTP continuation lines ``250-…``, the last ``250 …``."""
        if self.code.startswith(("+", "-")):
            first = f"{self.code} {self.lines[0]}" if self.lines else self.code
            body = "".join(f"{line}\r\n" for line in self.data)
            return first + "\r\n" + (body + ".\r\n" if self.data else "")
        if not self.lines:
            return f"{self.code}\r\n"
        body = [f"{self.code}-{line}" for line in self.lines[:-1]]
        body.append(f"{self.code} {self.lines[-1]}")
        return "\r\n".join(body) + "\r\n"

    @property
    def size(self) -> int:
        return len(self.wire().encode()) + self.payload

    def __str__(self) -> str:
        if self.local:
            return self.text
        return f"{self.code} {self.text}".strip()


@dataclass(frozen=True)
class Connect:
    """Open a TCP connection (SYN, SYN-ACK, ACK) and read the server's greeting."""

    port: int
    cost: Cost = "network"


@dataclass(frozen=True)
class Commands:
    """One group of command lines sent together; one reply each. Without pipelining a
    group holds one command; RFC 2920 lets MAIL, RCPT… DATA travel as one group."""

    lines: tuple[str, ...]
    cost: Cost = "network"
    shown: tuple[str, ...] | None = None  # what a transcript shows (AUTH hides the secret)

    @property
    def size(self) -> int:
        return sum(len(line.encode()) + 2 for line in self.lines)


@dataclass(frozen=True)
class TlsHandshake:
    """A TLS handshake after STARTTLS/STLS; its round trips come from :mod:`.tls`."""

    version: str
    cost: Cost = "tls"


@dataclass(frozen=True)
class Content:
    """The message itself after ``354``, ending with ``<CRLF>.<CRLF>``; one reply per
    accepted recipient under LMTP (RFC 2033 §4.2), one in all under SMTP."""

    size: int
    replies: int = 1
    cost: Cost = "network"


Step = Connect | Commands | TlsHandshake | Content


@dataclass
class Transcript:
    """What a client learnt from a session: the outcome per recipient and the facts the
    Received header and the security lens need."""

    replies: dict[str, Reply] = field(default_factory=dict)  # per recipient
    tls: str | None = None
    authenticated: bool = False
    queue_id: str | None = None
    final: Reply | None = None  # the reply that ended the session
    esmtp: bool = True

    def accepted(self) -> list[str]:
        return [rcpt for rcpt, reply in self.replies.items() if reply.code.startswith("2")]
