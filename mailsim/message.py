"""Messages, their per-recipient copies, and their RFC 5322 form with a Received chain.

A message is split into one *copy* per recipient when it is submitted: copies travel
together while they share a next hop (one SMTP transaction carries them all) and apart
when their routes part. Each copy gathers a Received stamp at every mail hop and keeps
the account of where its time went.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.message import Message as MimeMessage
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any

# Where a copy's time goes; the parts add up to its end-to-end delay. "retry" is the time
# lost to failed attempts and to waiting for the next one.
COSTS = ("network", "tls", "dns", "server", "queue", "retry", "poll")

# Postfix's bounce_size_limit: a bounce carries the original whole up to this size, and
# beyond it (or in a delay warning) its headers alone, about this many bytes.
BOUNCE_SIZE_LIMIT = 50_000
RETURNED_HEADERS = 500

# Every (message, recipient) ends in exactly one of these (DESIGN.md principle 5).
# "refused": the sender's own server said no at submission — the mail program shows the
# error at once, and no bounce message exists; "bounced": a server on the way said no
# later, and a delivery status notification (RFC 3464) went back to the sender.
STATUSES = ("retrieved", "delivered", "refused", "bounced", "expired", "in_flight")

# TLS details as Postfix writes them in the Received comment.
CIPHERS = {
    "1.3": "TLS_AES_256_GCM_SHA384 (256/256 bits)",
    "1.2": "ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
}


@dataclass(frozen=True)
class Failure:
    """One recipient in a delivery status notification (RFC 3464 §2.3)."""

    recipient: str
    action: str  # "failed" or "delayed"
    status: str  # enhanced status code, RFC 3463
    diagnostic: str  # the reply that decided it
    remote_mta: str | None = None


@dataclass(frozen=True)
class Report:
    """What a bounce reports: who reports, about which message, which recipients."""

    reporting_mta: str
    original: Message
    failures: tuple[Failure, ...]
    arrival: float


@dataclass(frozen=True, slots=True)  # slots: a long run keeps every message
class Message:
    id: str
    sender: str  # "" is the null reverse-path of bounces (RFC 5321 §4.5.5)
    recipients: tuple[str, ...]
    size: int
    subject: str
    created_at: float
    report: Report | None = None  # set on bounces
    header_from: str | None = None  # a From: line other than the envelope sender (forged)

    @property
    def author(self) -> str:
        """The address in the From: line (RFC 5322): what the recipient sees."""
        return self.header_from or self.sender

    @property
    def message_id(self) -> str:
        domain = (self.report.reporting_mta if self.report else self.sender).rsplit("@", 1)[-1]
        return f"<{self.id}@{domain}>"

    @property
    def is_bounce(self) -> bool:
        return self.sender == ""


def enhanced_status(reply: str, default: str) -> str:
    """The RFC 3463 code in a reply text ("550 5.1.1 …" → "5.1.1")."""
    match = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", reply)
    return match.group(1) if match else default


def bounce_message(id: str, report: Report, now: float, delayed: bool = False) -> Message:
    """A delivery status notification for ``report.original``, from MAILER-DAEMON with a
    null sender, back to the original sender."""
    original = report.original
    subject = (
        "Delayed Mail (still being retried)" if delayed else "Undelivered Mail Returned to Sender"
    )
    returned = original.size if returns_whole(original) and not delayed else RETURNED_HEADERS
    size = 2500 + returned
    return Message(id, "", (original.sender,), size, subject, now, report)


@dataclass(frozen=True, slots=True)  # slots: three or more per copy, all kept
class Stamp:
    """One Received header's facts (RFC 5321 §4.4)."""

    helo: str
    client_host: str
    client_ip: str
    by: str
    protocol: str  # ESMTP, ESMTPS, ESMTPSA (RFC 3848), LMTP
    queue_id: str
    recipient: str
    time: float
    tls: str | None
    software: str = "Postfix"
    skew: float = 0.0  # the stamping server's clock error (seconds)

    def render(self, epoch: datetime) -> str:
        """The header's value; the ``email`` package folds it into lines when rendering."""
        tls = f" (using TLSv{self.tls} with cipher {CIPHERS[self.tls]})" if self.tls else ""
        when = format_datetime(epoch + timedelta(seconds=self.time + self.skew))
        return (
            f"from {self.helo} ({self.client_host} [{self.client_ip}]){tls}"
            f" by {self.by} ({self.software}) with {self.protocol} id {self.queue_id}"
            f" for <{self.recipient}>; {when}"
        )


# Compared by identity: two copies are never "the same". Slots: a long run keeps every copy.
@dataclass(eq=False, slots=True)
class Copy:
    """One recipient's copy of a message on its way."""

    message: Message
    recipient: str
    status: str = "in_flight"
    submitted_at: float = 0.0
    delivered_at: float | None = None
    retrieved_at: float | None = None
    reason: str = ""
    stamps: list[Stamp] = field(default_factory=list)
    hops: int = 0
    costs: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COSTS, 0.0))
    mark: float = 0.0  # the time up to which ``costs`` accounts
    duplicate_of: Copy | None = None  # set on a second copy made by a lost 250
    duplicated_in: int | None = None  # the session whose 250 was lost
    hops_failed: int = 0  # failed attempts at the current hop
    warned: bool = False  # a "delayed" DSN went out for it
    dkim_domain: str | None = None  # the d= of its DKIM signature, once a server signed it
    dkim_broken: bool = False  # a server changed the body after it was signed
    authentication: str | None = None  # the MX's Authentication-Results (RFC 8601)
    folder: str = "inbox"  # "spam" when DMARC's policy is quarantine
    tls_fallback: bool = False  # a TLS handshake failed: the next attempt is plaintext
    retrieval: str | None = None  # how its reader's program fetched it: pop3, imap, imap-idle
    seq: int = -1  # its place among the run's copies (in order of making); -1: a duplicate
    row: int = -1  # its row among the recorder's finished copies, once it left only that

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None

    def account(self, now: float, session_costs: dict[str, float], gap: str) -> None:
        """Add a session's costs; the rest of the time since the last mark was ``gap``
        (waiting in a queue, or for the next POP poll)."""
        spent = 0.0
        for name, value in session_costs.items():
            self.costs[name] += value
            spent += value
        rest = now - self.mark - spent
        self.costs[gap] += rest if rest > 1e-9 else 0.0
        self.mark = now

    def outcome(self) -> tuple[Any, ...]:
        """Its row of the messages table: the columns of ``record.MESSAGE_COLUMNS`` but
        ``kind`` and ``duplicates`` (which the row's sender and the run's duplicates tell)."""
        m = self.message
        end = self.retrieved_at if self.retrieved_at is not None else self.mark
        return (
            m.id, m.sender, self.recipient, m.subject, m.size, self.status, self.submitted_at,
            self.delivered_at, self.retrieved_at, end - self.submitted_at, self.hops,
            self.reason, self.folder if self.delivered_at is not None else None,
            self.authentication, self.retrieval, *(self.costs[name] for name in COSTS),
        )  # fmt: skip

    def to_email(self, epoch: datetime) -> MimeMessage:
        """The copy as its recipient's mail program sees it (RFC 5322)."""
        if self.message.report is not None:
            msg: MimeMessage = _dsn(self.message, self.message.report, epoch)
        else:
            msg = EmailMessage()
        trace = MimeMessage()
        if self.delivered_at is not None:
            trace["Return-Path"] = f"<{self.message.sender}>"
        checked_by = (self.authentication or "").split(";", 1)[0]
        for stamp in reversed(self.stamps):  # each server prepends its own (RFC 5321 §4.4)
            if self.authentication is not None and stamp.by == checked_by:
                # The MX adds its verdict above its own Received line (RFC 8601 §5).
                trace["Authentication-Results"] = self.authentication
            trace["Received"] = stamp.render(epoch)
        m = self.message
        top = [*trace.items()]
        top += [
            ("Message-ID", m.message_id),
            ("Date", format_datetime(epoch + timedelta(seconds=m.created_at))),
        ]
        if m.report is None:
            top += [("From", m.author), ("To", ", ".join(m.recipients)), ("Subject", m.subject)]
            msg.set_content(_body(m))  # type: ignore[attr-defined]
        existing = list(msg.items())
        for name in {name for name, _ in existing}:
            del msg[name]
        for name, value in [*top, *existing]:
            msg[name] = value
        return msg


def _dsn(message: Message, report: Report, epoch: datetime) -> MimeMessage:
    """RFC 3464 multipart/report: a text for people, message/delivery-status for
    programs, and the original: the message itself up to bounce_size_limit, else (and in
    a delay warning) its headers."""
    original = report.original
    mta = report.reporting_mta
    dsn = MIMEMultipart("report", report_type="delivery-status")
    dsn["From"] = f"MAILER-DAEMON@{mta} (Mail Delivery System)"
    dsn["To"] = original.sender
    dsn["Subject"] = message.subject
    delayed = all(f.action == "delayed" for f in report.failures)
    lines = [
        f"This is the mail system at host {mta}.",
        "",
        "Your message could not be delivered yet; the mail system will keep trying."
        if delayed
        else "I'm sorry to have to inform you that your message could not be delivered "
        "to one or more recipients.",
        "",
    ]
    lines += [f"<{f.recipient}>: {f.diagnostic}" for f in report.failures]
    dsn.attach(MIMEText("\n".join(lines) + "\n"))
    # message/delivery-status holds blocks of header fields: one for the message, then
    # one per recipient (RFC 3464 §2.2, §2.3).
    per_message = MimeMessage()
    per_message["Reporting-MTA"] = f"dns; {mta}"
    per_message["Arrival-Date"] = format_datetime(epoch + timedelta(seconds=report.arrival))
    blocks = [per_message]
    for f in report.failures:
        block = MimeMessage()
        block["Final-Recipient"] = f"rfc822; {f.recipient}"
        block["Action"] = f.action
        block["Status"] = f.status
        if f.remote_mta:
            block["Remote-MTA"] = f"dns; {f.remote_mta}"
        block["Diagnostic-Code"] = f"smtp; {f.diagnostic}"
        blocks.append(block)
    status = MIMENonMultipart("message", "delivery-status")
    status.set_payload(blocks)  # type: ignore[arg-type]
    dsn.attach(status)
    head = [("From", original.sender), ("To", ", ".join(original.recipients)),
            ("Subject", original.subject), ("Message-ID", original.message_id)]  # fmt: skip
    if delayed or not returns_whole(original):
        # Headers alone: a delay warning, or a message over bounce_size_limit, which
        # Postfix does not cut: cutting would break its MIME structure (bounce(8),
        # bounce_notify_util.c, bounce_original).
        headers = MIMENonMultipart("text", "rfc822-headers")
        headers.set_payload("".join(f"{name}: {value}\n" for name, value in head))
        dsn.attach(headers)
        return dsn
    returned = EmailMessage()  # a bounce returns the message itself
    for name, value in head:
        returned[name] = value
    returned.set_content(_body(original))
    dsn.attach(MIMEMessage(returned))
    return dsn


def returns_whole(original: Message) -> bool:
    """Does a bounce carry the message itself (else its headers alone)?"""
    return original.size <= BOUNCE_SIZE_LIMIT


# An .eml file stands for a message; it need not weigh what the message weighs. Up to
# Postfix's default message_size_limit (10,240,000 bytes) the filler has the simulated
# size; beyond it, one line says how much was left out, so that writing a 1 GB message
# takes 10 MB of memory, not 1 GB.
FILLER_LIMIT = 10_240_000


def _body(message: Message) -> str:
    """Filler text so that the rendered message has about the simulated size."""
    line = "This line stands for the text of the message in the simulation.\n"
    if message.size <= FILLER_LIMIT:
        return line * max(1, message.size // len(line))
    kept = line * (FILLER_LIMIT // len(line))
    return kept + (
        f"[{message.size - len(kept):,} more bytes of the simulated message are left out"
        " of this file]\n"
    )
