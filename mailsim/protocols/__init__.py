"""Pure dialogues: SMTP, LMTP, POP3, IMAP, HTTP, DNS and TLS as plain functions and data.

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


def octets(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (SMTPUTF8 addresses), without encoding ASCII."""
    return len(text) if text.isascii() else len(text.encode())


@dataclass(frozen=True)
class Reply:
    """A server reply: SMTP ``250 …`` (possibly multi-line), POP3 ``+OK``/``-ERR``, or
    IMAP's untagged ``* …`` lines ended by the tagged ``a3 OK …`` (``tag`` set; ``code``
    "OK"/"NO"/"BAD", or "*" for untagged lines alone, as pushed during IDLE)."""

    code: str
    lines: tuple[str, ...] = ()
    data: tuple[str, ...] = ()  # POP3 multi-line body (CAPA, LIST), ended by "."; IMAP "* …"
    payload: int = 0  # bytes of content carried after the reply (POP3 RETR, IMAP FETCH)
    local: bool = False  # concluded by the client (refused, timed out), not sent by a server
    tag: str | None = None  # IMAP: the command's tag ("" for untagged lines alone)

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def ok(self) -> bool:
        return self.code.startswith(("2", "3", "+")) or self.code == "OK"

    def wire(self) -> str:
        """The reply as sent: SMTP continuation lines ``250-…``, the last ``250 …``; IMAP's
        ``* …`` lines, then ``tag OK …`` (a FETCH's literal is the payload, not shown)."""
        if self.tag is not None:
            untagged = "".join(f"* {line}\r\n" for line in self.data)
            if not self.tag:
                return untagged
            return untagged + " ".join((self.tag, self.code, *self.lines)) + "\r\n"
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
        """Bytes on the wire: :meth:`wire`'s length, counted without building it (asked
        for every reply a session carries)."""
        code = len(self.code)
        if self.tag is not None:
            untagged = sum(octets(line) + 4 for line in self.data) + self.payload
            if not self.tag:
                return untagged
            text = sum(octets(line) + 1 for line in self.lines)
            return untagged + len(self.tag) + 1 + code + text + 2
        if self.code.startswith(("+", "-")):
            first = code + 2 + (octets(self.lines[0]) + 1 if self.lines else 0)
            body = sum(octets(line) + 2 for line in self.data) + 3 if self.data else 0
            return first + body + self.payload
        if not self.lines:
            return code + 2 + self.payload
        return sum(code + 3 + octets(line) for line in self.lines) + self.payload

    def __str__(self) -> str:
        if self.local:
            return self.text
        return f"{self.code} {self.text}".strip()


@dataclass(frozen=True)
class Connect:
    """Open a TCP connection (SYN, SYN-ACK, ACK) and read the server's greeting. With
    ``tls`` (implicit TLS, RFC 8314: ports 465 and 995) the TLS handshake comes first and
    the replies are the handshake's ``Reply("TLS", (version,))``, then the greeting.
    Without ``greeting`` the client speaks first (HTTP, RFC 9110 §3.3): its first flight
    leaves with the ACK, and the only reply is the handshake's."""

    port: int
    cost: Cost = "network"
    tls: str | None = None
    greeting: bool = True


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
    # QUIT travels with the final "." and its 221 is not waited for (Postfix's smtp
    # client, RFC 2920 §3.1: QUIT may end a pipelined group): the session ends with the
    # reply to the message.
    quit: bool = False


@dataclass(frozen=True)
class Request:
    """An HTTP request (RFC 9110) and its one response: HTTP/1.1 text or HTTP/2 frames
    (:mod:`.http` counts them). ``size`` is every octet the client sends, ``body`` the
    part of it that is the content (the message, for a webmail submission)."""

    method: str
    path: str
    size: int
    body: int = 0
    version: str = "2"
    cost: Cost = "network"

    @property
    def line(self) -> str:
        """What a transcript shows: ``POST /mail/send HTTP/2 (8,192 bytes)``."""
        body = f" ({self.body:,} bytes)" if self.body else ""
        return f"{self.method} {self.path} HTTP/{self.version}{body}"


Step = Connect | Commands | TlsHandshake | Content | Request


@dataclass(frozen=True)
class Idle:
    """Send nothing and wait for what the server pushes (IMAP IDLE, RFC 2177): the
    replies are the untagged lines pushed (``* 3 EXISTS``), or none when ``timeout``
    seconds pass first. Only IMAP's push dialogue yields it, so it is not a :data:`Step`
    of the other dialogues; the engine plays it in ``Session._idle``."""

    timeout: float
    cost: Cost = "network"


@dataclass
class Transcript:
    """What a client learnt from a session: the outcome per recipient and the facts the
    Received header and the security lens need."""

    replies: dict[str, Reply] = field(default_factory=dict)  # per recipient
    tls: str | None = None
    authenticated: bool = False
    queue_id: str | None = None
    final: Reply | None = None  # the reply that ended the session

    def accepted(self) -> list[str]:
        return [rcpt for rcpt, reply in self.replies.items() if reply.code.startswith("2")]


# What a reply code or protocol step means, in a learner's words (RFC 5321 §4.2.2-4.2.3,
# RFC 1939, RFC 1035 §4.1.1, RFC 793). The client acts on the code alone, and on its
# first digit when it does not know the code (RFC 5321 §4.2.1).
MEANINGS: dict[str, str] = {
    "220": "service ready (greeting, or ready to start TLS)",
    "221": "closing the connection",
    "235": "authentication succeeded",
    "250": "requested action okay, completed",
    "354": "start mail input; end with <CRLF>.<CRLF>",
    "421": "service not available, closing the connection (temporary)",
    "450": "mailbox unavailable, try again later (temporary: greylisting, policy)",
    "451": "local error in processing (temporary)",
    "452": "insufficient storage (temporary)",
    "500": "syntax error, command unrecognised",
    "501": "syntax error in parameters",
    "502": "command not implemented",
    "503": "bad sequence of commands",
    "530": "authentication required",
    "535": "authentication credentials invalid",
    "550": "mailbox unavailable (permanent: no such user, policy)",
    "552": "exceeded storage allocation (permanent)",
    "553": "mailbox name not allowed",
    "554": "transaction failed (permanent: e.g. relay access denied)",
    "+OK": "POP3: success",
    "-ERR": "POP3: failure",
    "NOERROR": "DNS: the name exists; here are its records",
    "NXDOMAIN": "DNS: no such domain (final)",
    "SERVFAIL": "DNS: the server could not answer (try again)",
    "SYN": "TCP: the client asks to open a connection",
    "SYN-ACK": "TCP: the server agrees",
    "ACK": "TCP: the client confirms; the connection is open",
    "RST": "TCP: connection refused (nothing listens on that port)",
    "EHLO": "SMTP: hello, and tell me your extensions",
    "LHLO": "LMTP: hello (the LMTP form of EHLO)",
    "STARTTLS": "switch this connection to TLS",
    "AUTH": "log in (RFC 4954); PLAIN sends the password, so only inside TLS",
    "MAIL": "the envelope sender (where bounces go)",
    "RCPT": "one envelope recipient",
    "DATA": "ready to send the message",
    "message": "the message itself, ended by a line with a single dot",
    "QUIT": "goodbye",
    "CAPA": "POP3: which extensions do you have?",
    "STLS": "POP3: switch this connection to TLS",
    "USER": "POP3: the user name",
    "PASS": "POP3: the password",
    "STAT": "POP3: how many messages, how many bytes?",
    "LIST": "POP3: the size of each message",
    "RETR": "POP3: send me message n",
    "DELE": "POP3: delete message n when I QUIT",
    "timeout": "no reply in time: the client gives up on this connection",
    "lost": "dropped on the way: a NAT that forgot this idle connection; it never arrives",
    # IMAP (RFC 9051, RFC 3501; IDLE RFC 2177): each command carries a tag ("a3") that
    # its final reply repeats; lines starting with "*" are data sent before it.
    "OK": "IMAP: success (the reply carries the command's tag)",
    "NO": "IMAP: refused (e.g. a wrong password)",
    "BAD": "IMAP: not understood, or not allowed in this state",
    "*": "IMAP: data the server sends on its own (new mail during IDLE)",
    "+": "IMAP: go on (the server waits for more from the client)",
    "CAPABILITY": "IMAP: which extensions do you have?",
    "LOGIN": "IMAP: the user name and the password",
    "AUTHENTICATE": "IMAP: log in with a SASL mechanism; PLAIN sends the password",
    "LOGOUT": "IMAP: goodbye",
    "SELECT": "IMAP: open a mailbox (INBOX): how many messages, which are new?",
    "SEARCH": "IMAP: which messages match? (UNSEEN: not yet read)",
    "FETCH": "IMAP: send me message n (BODY.PEEK[]: without marking it read)",
    "UID": "IMAP: the next command names messages by their lasting id (UID)",
    "STORE": "IMAP: change a message's flags (\\Seen: it has been read)",
    "IDLE": "IMAP: tell me at once when new mail arrives (push)",
    "DONE": "IMAP: stop idling",
    "NOOP": "does nothing; the server may report news (IMAP: new mail)",
    "EXISTS": "IMAP: how many messages the mailbox now holds",
    "idle": "IMAP: waiting for the server to push news (or 29 minutes)",
    # HTTP (RFC 9110): a browser speaking to its provider's webmail front end.
    "POST": "HTTP: here is something to act on (webmail: the message to send)",
    "GET": "HTTP: send me this page or data (webmail: the list of new mail, or a message)",
    "200": "HTTP: OK (to a POST: the message is on its way; to a GET: here it is)",
    "404": "HTTP: not found (no such message)",
    "413": "HTTP: content too large (the message is over the provider's limit)",
}


def meaning(step: str, code: str = "") -> str:
    """A learner's explanation of a protocol step or reply code ("" if none is known)."""
    if code and code in MEANINGS:
        return MEANINGS[code]
    if step in MEANINGS:
        return MEANINGS[step]
    verb = _imap_verb(step)
    if verb in MEANINGS:
        return MEANINGS[verb]
    if step.startswith("query "):
        return f"DNS: where is the {step.split()[1]} record of this name?"
    if code[:1] in "45" and len(code) == 3:
        return "temporary failure: try again later" if code[0] == "4" else "permanent failure"
    return ""


def _imap_verb(step: str) -> str:
    """The command in an IMAP line ``a3 SELECT INBOX`` (the word after the tag)."""
    words = step.split(" ", 2)
    return words[1].upper() if len(words) > 1 and words[0][:1].isalpha() else ""
