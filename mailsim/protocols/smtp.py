"""SMTP (RFC 5321), ESMTP extensions (STARTTLS RFC 3207, AUTH RFC 4954, PIPELINING RFC 2920,
SIZE RFC 1870, ENHANCEDSTATUSCODES RFC 2034) and LMTP (RFC 2033), as pure logic.

The reply texts follow Postfix (and Dovecot for LMTP), so that a learner who later reads a
real log or transcript recognises every line.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import sys
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Literal

from mailsim.protocols import Commands, Connect, Content, Reply, Step, TlsHandshake, Transcript

SUBMISSION_PORT = 587  # RFC 6409
SUBMISSIONS_PORT = 465  # RFC 8314 §3.3: submission over implicit TLS
RELAY_PORT = 25  # RFC 5321
LMTP_PORT = 24  # RFC 2033 (Dovecot's LMTP listens here or on a UNIX socket)

Kind = Literal["submission", "relay", "lmtp"]
RcptCheck = Callable[[str, str], Reply | None]  # (sender, recipient) → a refusal, or None
EndCheck = Callable[[], Reply | None]  # after the message: a refusal (DMARC), or None

_PATH = re.compile(r"^(MAIL FROM|RCPT TO):\s*<([^>]*)>", re.IGNORECASE)


@dataclass
class ServerConfig:
    """What one listening SMTP/LMTP service offers and enforces."""

    host: str
    kind: Kind = "relay"
    tls: str | None = "1.3"  # STARTTLS offered with this version; None = not offered
    auth: Literal["required", "optional", "none"] = "none"
    pipelining: bool = True
    size_limit: int = 10_240_000  # Postfix message_size_limit
    local_domains: frozenset[str] = frozenset()
    relay_domains: frozenset[str] = frozenset()  # Postfix relay_domains: a backup MX
    relay_allowed: bool = False  # the client is in mynetworks
    local_users: frozenset[str] | None = None  # None: any address at a local domain
    rcpt_check: RcptCheck | None = None  # site policy: greylisting, quota
    end_check: EndCheck | None = None  # content policy after the ".": sender authentication
    credentials: dict[str, str] = field(default_factory=dict)


# The commands that open a session, whose reply begins with the server's name as its
# greeting does (RFC 5321 §4.1.1.1, §4.2; LHLO: RFC 2033 §4.1).
HELLOS = frozenset({"EHLO", "HELO", "LHLO"})


class SmtpServer:
    """One server side of one session: answers each command line with a Reply."""

    def __init__(self, config: ServerConfig, queue_id: str = "0000000001") -> None:
        self.config = config
        self.queue_id = queue_id
        self.tls_active: str | None = None
        self.authenticated: str | None = None
        self.helo: str | None = None
        self.sender: str | None = None
        self.recipients: list[str] = []
        self.last_recipients: list[str] = []

    @property
    def lmtp(self) -> bool:
        return self.config.kind == "lmtp"

    def greeting(self) -> Reply:
        if self.lmtp:
            return Reply("220", (f"{self.config.host} Dovecot ready.",))
        return Reply("220", (f"{self.config.host} ESMTP Postfix",))

    def capabilities(self) -> list[str]:
        cfg = self.config
        caps = [cfg.host]
        if cfg.pipelining:
            caps.append("PIPELINING")
        if self.lmtp:
            return [*caps, "ENHANCEDSTATUSCODES", "8BITMIME"]
        caps.append(f"SIZE {cfg.size_limit}")
        if cfg.tls and not self.tls_active:
            caps.append("STARTTLS")
        # Postfix's smtpd_tls_auth_only: AUTH is offered only once the session is encrypted.
        if (
            cfg.kind == "submission"
            and cfg.auth != "none"
            and (self.tls_active or not cfg.tls)
            and not self.authenticated
        ):
            caps.append("AUTH PLAIN LOGIN")
        return [*caps, "ENHANCEDSTATUSCODES", "8BITMIME"]

    def tls_started(self, version: str) -> None:
        """RFC 3207 §4.2: after the handshake the session starts over, EHLO included."""
        self.tls_active = version
        self.helo = None
        self._reset()

    def _reset(self) -> None:
        self.sender = None
        self.recipients = []

    def handle(self, line: str) -> Reply:
        verb = line.split(" ", 1)[0].upper()
        handler = getattr(self, f"_cmd_{verb.lower()}", None)
        if handler is None or ((verb == "LHLO") != self.lmtp and verb in HELLOS):
            return Reply("502", ("5.5.2 Error: command not recognized",))
        return handler(line)

    def _cmd_ehlo(self, line: str) -> Reply:
        # Interned: every copy's Received stamp keeps it, and clients repeat their names.
        self.helo = sys.intern(line.split(" ", 1)[1]) if " " in line else ""
        self._reset()
        return Reply("250", tuple(self.capabilities()))

    _cmd_lhlo = _cmd_ehlo

    def _cmd_helo(self, line: str) -> Reply:
        """Plain SMTP's greeting (RFC 5321 §4.1.1.1): no extensions offered."""
        self.helo = sys.intern(line.split(" ", 1)[1]) if " " in line else ""
        self._reset()
        return Reply("250", (self.config.host,))

    def _cmd_starttls(self, line: str) -> Reply:
        if not self.config.tls or self.tls_active:
            return Reply("502", ("5.5.1 Error: command not implemented",))
        return Reply("220", ("2.0.0 Ready to start TLS",))

    def _cmd_auth(self, line: str) -> Reply:
        cfg = self.config
        if cfg.kind != "submission" or cfg.auth == "none":
            return Reply("502", ("5.5.1 Error: authentication not enabled",))
        if cfg.tls and not self.tls_active:
            return Reply("530", ("5.7.0 Must issue a STARTTLS command first",))
        if self.authenticated:
            return Reply("503", ("5.5.1 Error: already authenticated",))
        parts = line.split()
        if len(parts) < 3 or parts[1].upper() != "PLAIN":
            return Reply("535", ("5.7.8 Error: authentication failed: bad protocol",))
        try:
            _, user, password = base64.b64decode(parts[2]).decode().split("\0")
        except (ValueError, UnicodeDecodeError):
            return Reply("501", ("5.5.2 Syntax: AUTH mechanism",))
        if cfg.credentials.get(user) != password:
            return Reply("535", ("5.7.8 Error: authentication failed: authentication failure",))
        self.authenticated = user
        return Reply("235", ("2.7.0 Authentication successful",))

    def _cmd_mail(self, line: str) -> Reply:
        match = _PATH.match(line)
        if self.helo is None:
            return Reply("503", ("5.5.1 Error: send HELO/EHLO first",))
        if match is None:
            return Reply("501", ("5.5.4 Syntax: MAIL FROM:<address>",))
        if self.sender is not None:
            return Reply("503", ("5.5.1 Error: nested MAIL command",))
        if self.config.kind == "submission" and self.config.tls and not self.tls_active:
            # Debian's master.cf runs submission with smtpd_tls_security_level=encrypt.
            return Reply("530", ("5.7.0 Must issue a STARTTLS command first",))
        if (
            self.config.kind == "submission"
            and self.config.auth == "required"
            and not self.authenticated
        ):
            return Reply("530", ("5.7.0 Authentication required",))
        size = re.search(r"SIZE=(\d+)", line, re.IGNORECASE)
        if size and int(size.group(1)) > self.config.size_limit:
            return Reply("552", ("5.3.4 Message size exceeds fixed limit",))
        self.sender = match.group(2)
        return Reply("250", ("2.1.0 Ok",))

    def _cmd_rcpt(self, line: str) -> Reply:
        match = _PATH.match(line)
        if self.sender is None:
            return Reply("503", ("5.5.1 Error: need MAIL command",))
        if match is None:
            return Reply("501", ("5.5.4 Syntax: RCPT TO:<address>",))
        rcpt = match.group(2)
        refusal = self.refusal(rcpt, bool(self.authenticated))
        if refusal is not None:
            return refusal
        if self.config.rcpt_check is not None:
            refusal = self.config.rcpt_check(self.sender, rcpt)
            if refusal is not None:
                return refusal
        self.recipients.append(rcpt)
        return Reply("250", ("2.1.5 Ok",))

    def refusal(self, rcpt: str, authenticated: bool) -> Reply | None:
        """What RCPT TO:<rcpt> is refused with by the server's own tables (relaying,
        unknown users), or None; the site's checks (``rcpt_check``) come after. A pure
        function of the configuration: a compiled session's key asks it in advance."""
        cfg = self.config
        domain = rcpt.rsplit("@", 1)[-1].lower()
        local = domain in cfg.local_domains
        may_relay = authenticated or cfg.relay_allowed or domain in cfg.relay_domains
        if not local and not may_relay and not self.lmtp:
            return Reply("554", (f"5.7.1 <{rcpt}>: Relay access denied",))
        users = cfg.local_users
        if (local or self.lmtp) and users is not None and rcpt.lower() not in users:
            if self.lmtp:
                return Reply("550", (f"5.1.1 <{rcpt}> User doesn't exist: {rcpt}",))
            return Reply(
                "550",
                (
                    f"5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
                ),
            )
        return None

    def _cmd_data(self, line: str) -> Reply:
        if self.sender is None:
            return Reply("503", ("5.5.1 Error: need RCPT command",))
        if not self.recipients:
            return Reply("554", ("5.5.1 Error: no valid recipients",))
        return Reply("354", ("End data with <CR><LF>.<CR><LF>",))

    def end_of_transaction(
        self, helo: str, tls: str | None, user: str | None, sender: str, recipients: list[str]
    ) -> list[Reply]:
        """:meth:`end_of_data` in the state the commands before it leave: EHLO's name,
        TLS, the login, MAIL's sender and the recipients RCPT accepted. A compiled
        session's replay gives them instead of playing the commands."""
        self.helo = sys.intern(helo)  # as EHLO keeps it
        self.tls_active, self.authenticated = tls, user
        self.sender, self.recipients = sender, recipients
        return self.end_of_data()

    def end_of_data(self) -> list[Reply]:
        """Replies to the final ``.``: one under SMTP, one per recipient under LMTP."""
        self.last_recipients = list(self.recipients)
        refusal = self.config.end_check() if self.config.end_check else None
        if refusal is not None:
            self.last_recipients = []
            self._reset()
            return [refusal]
        if self.lmtp:
            # Dovecot's LMTP numbers the second recipient on of a session "<id>:R2", … (its
            # lmtp-recipient.c), each reply naming its own delivery.
            replies = [
                Reply("250", (f"2.0.0 <{rcpt}> {self.queue_id}{f':R{n}' if n > 1 else ''} Saved",))
                for n, rcpt in enumerate(self.recipients, 1)
            ]
        else:
            replies = [Reply("250", (f"2.0.0 Ok: queued as {self.queue_id}",))]
        self._reset()
        return replies

    def _cmd_rset(self, line: str) -> Reply:
        self._reset()
        return Reply("250", ("2.0.0 Ok",))

    def _cmd_noop(self, line: str) -> Reply:
        return Reply("250", ("2.0.0 Ok",))

    def _cmd_quit(self, line: str) -> Reply:
        return Reply("221", ("2.0.0 Bye",))


def queue_id(host: str, serial: int) -> str:
    """A Postfix-looking queue id (hex), stable for a given host and serial number."""
    return f"{_host_part(host)}{serial & 0xFFFFF:05X}"


@functools.cache
def _host_part(host: str) -> str:
    """The queue id's first five digits, from the host: the same for every message."""
    return f"{zlib.crc32(host.encode()) & 0xFFFFF:05X}"


def dovecot_id(host: str, serial: int) -> str:
    """A Dovecot-looking LMTP session id, stable for a given host and serial number: 16
    bytes in base64 without its padding, 22 characters. Dovecot's LMTP says it after the
    recipient ("250 2.0.0 <bob@home.example> 8AbxLd+Ta1zwHgAAX4ErOA Saved", lmtp-local.c)
    and in the Received line it adds ("with LMTP id …")."""
    digest = hashlib.blake2b(f"{host}#{serial}".encode(), digest_size=16).digest()
    return base64.b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Envelope:
    """What the client is told to send: RFC 5321 §2.3.1's envelope plus the content size."""

    sender: str  # "" is the null reverse-path of bounces
    recipients: tuple[str, ...]
    size: int


TlsPolicy = Literal["may", "encrypt", "none"]


@dataclass(frozen=True)
class ClientConfig:
    """``tls`` is Postfix's smtp_tls_security_level: ``may`` uses STARTTLS when the server
    offers it and goes on in plaintext when not; ``encrypt`` defers the message instead
    (4.7.4); ``none`` never asks. ``implicit`` starts TLS before the greeting (465)."""

    helo: str
    port: int = RELAY_PORT
    tls: TlsPolicy = "may"
    implicit: bool = False
    auth: tuple[str, str] | None = None  # (user, password) for AUTH PLAIN
    pipelining: bool = True  # use PIPELINING when offered
    data_in_group: bool = True  # DATA joins the pipelined MAIL and RCPTs
    lmtp: bool = False
    quit_with_dot: bool = False  # QUIT in one group with the ".", its 221 not awaited


# How real clients group their commands — RFC 2920 allows MAIL, RCPT… and DATA in one
# group and QUIT at the end of one; each client does what its code does:
# * thunderbird — SmtpClient.jsm (Thunderbird 91 and later, after emailjs-smtp-client):
#   every command waits for its reply (MAIL, then each RCPT, then DATA); QUIT waits for
#   its 221; AUTH only when the server offers it (_authenticateUser).
# * msmtp — smtp.c, smtp_send_envelope: MAIL, RCPT… and DATA in one group when the server
#   offers PIPELINING; the "." alone, and QUIT waits for its 221 (smtp_quit).
# * minimal — a client of RFC 5321 alone, as Python's smtplib is: one command, one reply.
# * phone — Thunderbird for Android, formerly K-9 Mail (SmtpTransport.kt, sendMessage):
#   MAIL and the RCPTs in one group when the server offers PIPELINING, DATA on its own
#   once their replies are read — and none at all if any of them was refused (the first
#   refusal is the whole message's error); QUIT when it closes.
# * postfix — Postfix's smtp and lmtp client (smtp_proto.c, smtp_loop): MAIL, RCPT… and
#   DATA in one group; after the message, "." and QUIT in one group for a connection it
#   will not reuse, and smtp_skip_quit_response = yes (postconf(5)): the 221 is not read.
# None of them pipelines AUTH, though RFC 4954 §4 allows it for PLAIN's initial response.
PROFILES: dict[str, dict[str, bool]] = {
    "thunderbird": {"pipelining": False, "quit_with_dot": False},
    "msmtp": {"pipelining": True, "quit_with_dot": False},
    "minimal": {"pipelining": False, "quit_with_dot": False},
    "phone": {"pipelining": True, "quit_with_dot": False, "data_in_group": False},
    "postfix": {"pipelining": True, "quit_with_dot": True},
}


def tls_required(what: str) -> Reply:
    """What a client that requires TLS concludes when it is not offered (Postfix:
    "TLS is required, but was not offered by host …", status 4.7.4)."""
    return Reply("421", (f"TLS is required, but {what} (4.7.4)",), local=True)


def capabilities(ehlo: Reply) -> frozenset[str]:
    """EHLO keywords (first word of each line after the greeting line). A server says
    the same few EHLO replies over and over: each is read once."""
    caps = _CAPABILITIES.get(ehlo.lines)
    if caps is None:
        caps = frozenset(line.split(" ", 1)[0].upper() for line in ehlo.lines[1:])
        _CAPABILITIES[ehlo.lines] = caps
    return caps


_CAPABILITIES: dict[tuple[str, ...], frozenset[str]] = {}


def queued_as(reply: Reply) -> str | None:
    """The queue id a server names in its reply to the message ("… queued as 1A2B3C"),
    which the client logs and the Received header of the next hop shows."""
    match = _QUEUED.search(reply.text)
    return match.group(1) if match else None


_QUEUED = re.compile(r"queued as (\w+)")


def auth_plain(user: str, password: str) -> str:
    """RFC 4616 PLAIN: base64 of authzid NUL authcid NUL password (authzid empty)."""
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def client(config: ClientConfig, envelope: Envelope) -> Generator[Step, list[Reply], Transcript]:
    """The client side of one SMTP or LMTP transaction; yields steps, receives replies."""
    out = Transcript()
    rcpts = envelope.recipients

    def fail_all(reply: Reply) -> None:
        out.final = reply
        for rcpt in rcpts:
            out.replies.setdefault(rcpt, reply)

    if config.implicit:
        hello, greeting = yield Connect(config.port, tls="1.3")
        out.tls = hello.text if hello.code == "TLS" else None
    else:
        (greeting,) = yield Connect(config.port)
    if greeting.code != "220":
        fail_all(greeting)
        return out
    verb = "LHLO" if config.lmtp else "EHLO"
    (ehlo,) = yield Commands((f"{verb} {config.helo}",))
    if ehlo.code != "250":
        fail_all(ehlo)
        yield Commands(("QUIT",))
        return out
    caps = capabilities(ehlo)
    if config.tls != "none" and not out.tls and "STARTTLS" in caps:
        (ready,) = yield Commands(("STARTTLS",), cost="tls")
        if ready.code == "220":
            (hello,) = yield TlsHandshake("1.3")
            if hello.code != "TLS":  # the handshake failed; the connection is gone
                fail_all(hello)
                return out
            out.tls = hello.text
            (ehlo,) = yield Commands((f"{verb} {config.helo}",), cost="tls")
            caps = capabilities(ehlo)
    if config.tls == "encrypt" and not out.tls:
        fail_all(tls_required("was not offered by the server"))
        yield Commands(("QUIT",))
        return out
    # AUTH only when the program has a password and the server offers AUTH (RFC 4954
    # §4): otherwise MAIL FROM follows EHLO, and the server's policy decides. So does
    # Thunderbird (SmtpClient.jsm, _authenticateUser: no AUTH advertised, no login).
    if config.auth is not None and "AUTH" in caps:
        user, password = config.auth
        (auth,) = yield Commands(
            (f"AUTH PLAIN {auth_plain(user, password)}",), shown=("AUTH PLAIN ********",)
        )
        out.authenticated = auth.code == "235"
        if not out.authenticated:
            fail_all(auth)
            yield Commands(("QUIT",))
            return out
    mail = f"MAIL FROM:<{envelope.sender}>"
    if "SIZE" in caps:
        mail += f" SIZE={envelope.size}"
    rcpt_lines = tuple(f"RCPT TO:<{rcpt}>" for rcpt in rcpts)
    data: Reply | None = None
    if config.pipelining and "PIPELINING" in caps and config.data_in_group:
        replies = yield Commands((mail, *rcpt_lines, "DATA"))
        mail_reply, rcpt_replies, data = replies[0], replies[1:-1], replies[-1]
    elif config.pipelining and "PIPELINING" in caps:
        replies = yield Commands((mail, *rcpt_lines))
        mail_reply, rcpt_replies = replies[0], list(replies[1:])
        refused = next((r for r in replies if not r.code.startswith("2")), None)
        if refused is not None:  # all or nothing: the message fails with the first refusal
            fail_all(refused)
            yield Commands(("QUIT",))
            return out
        (data,) = yield Commands(("DATA",))
    else:
        (mail_reply,) = yield Commands((mail,))
        rcpt_replies = []
        if mail_reply.code == "250":
            for line in rcpt_lines:
                (reply,) = yield Commands((line,))
                rcpt_replies.append(reply)
            if any(r.code.startswith("2") for r in rcpt_replies):
                (data,) = yield Commands(("DATA",))
    if mail_reply.code != "250":
        fail_all(mail_reply)
    else:
        for rcpt, reply in zip(rcpts, rcpt_replies, strict=True):
            if not reply.code.startswith("2"):
                out.replies[rcpt] = reply
    accepted = [r for r in rcpts if r not in out.replies]
    if data is not None and data.code == "354" and accepted:
        finals = yield Content(
            envelope.size,
            replies=len(accepted) if config.lmtp else 1,
            quit=config.quit_with_dot,
        )
        if config.lmtp:
            out.replies.update(zip(accepted, finals, strict=True))
        else:
            for rcpt in accepted:
                out.replies[rcpt] = finals[0]
        out.final = finals[-1]
        out.queue_id = queued_as(finals[0])
        if config.quit_with_dot:
            return out  # QUIT went with the "."; its 221 is not awaited
    elif accepted:
        fail_all(data if data is not None else mail_reply)
    yield Commands(("QUIT",))
    return out


# Client timeouts (seconds): Postfix's defaults (postconf(5)), at or above the minimums
# of RFC 5321 §4.5.3.2. A timeout on one command ends the session; the message is
# deferred and tried again later.
CONNECT_TIMEOUT = 30.0  # smtp_connect_timeout
TIMEOUTS: dict[str, float] = {
    "greeting": 300.0,  # smtp_helo_timeout (RFC: 5 min for the 220)
    "EHLO": 300.0,
    "LHLO": 300.0,
    "STARTTLS": 300.0,  # smtp_starttls_timeout
    "AUTH": 300.0,
    "MAIL": 300.0,  # smtp_mail_timeout (RFC §4.5.3.2.2)
    "RCPT": 300.0,  # smtp_rcpt_timeout (RFC §4.5.3.2.3)
    "DATA": 120.0,  # smtp_data_init_timeout (RFC §4.5.3.2.4)
    "content": 600.0,  # smtp_data_done_timeout (RFC §4.5.3.2.6: 10 min after ".")
    "RSET": 20.0,
    "QUIT": 300.0,
    "tls": 300.0,
}


def timeout(step: Step) -> float:
    """How long the client waits for the reply to ``step`` before it gives up."""
    if isinstance(step, Connect):
        return TIMEOUTS["greeting"]
    if isinstance(step, Content):
        return TIMEOUTS["content"]
    if isinstance(step, TlsHandshake):
        return TIMEOUTS["tls"]
    return TIMEOUTS.get(step.lines[0].split(" ", 1)[0].upper(), 300.0)


def lost(text: str, status: str = "4.4.2") -> Reply:
    """What the client concludes when the connection fails: a temporary error, as Postfix
    logs it ("connect to …: Connection refused" is 4.4.1, a session cut short 4.4.2)."""
    return Reply("421", (f"{text} ({status})",), local=True)
