"""Messages, their per-recipient copies, and their RFC 5322 form with a Received chain.

A message is split into one *copy* per recipient when it is submitted: copies travel
together while they share a next hop (one SMTP transaction carries them all) and apart
when their routes part. Each copy gathers a Received stamp at every mail hop and keeps
the account of where its time went.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

# Where a copy's time goes; the parts add up to its end-to-end delay.
COSTS = ("network", "tls", "dns", "server", "queue", "poll")

# Every (message, recipient) ends in exactly one of these (DESIGN.md principle 5).
STATUSES = ("retrieved", "delivered", "bounced", "expired", "in_flight")

# TLS details as Postfix writes them in the Received comment.
CIPHERS = {
    "1.3": "TLS_AES_256_GCM_SHA384 (256/256 bits)",
    "1.2": "ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
}


@dataclass(frozen=True)
class Message:
    id: str
    sender: str
    recipients: tuple[str, ...]
    size: int
    subject: str
    created_at: float

    @property
    def message_id(self) -> str:
        return f"<{self.id}@{self.sender.rsplit('@', 1)[-1]}>"


@dataclass(frozen=True)
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

    def render(self, epoch: datetime) -> str:
        """The header's value; the ``email`` package folds it into lines when rendering."""
        tls = f" (using TLSv{self.tls} with cipher {CIPHERS[self.tls]})" if self.tls else ""
        when = format_datetime(epoch + timedelta(seconds=self.time))
        return (
            f"from {self.helo} ({self.client_host} [{self.client_ip}]){tls}"
            f" by {self.by} ({self.software}) with {self.protocol} id {self.queue_id}"
            f" for <{self.recipient}>; {when}"
        )


@dataclass
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

    def account(self, now: float, session_costs: dict[str, float], gap: str) -> None:
        """Add a session's costs; the rest of the time since the last mark was ``gap``
        (waiting in a queue, or for the next POP poll)."""
        spent = 0.0
        for name, value in session_costs.items():
            self.costs[name] += value
            spent += value
        self.costs[gap] += max(0.0, now - self.mark - spent)
        self.mark = now

    def to_email(self, epoch: datetime) -> EmailMessage:
        """The copy as its recipient's mail program sees it (RFC 5322)."""
        msg = EmailMessage()
        if self.delivered_at is not None:
            msg["Return-Path"] = f"<{self.message.sender}>"
        for stamp in reversed(self.stamps):  # each server prepends its own (RFC 5321 §4.4)
            msg["Received"] = stamp.render(epoch)
        m = self.message
        msg["Message-ID"] = m.message_id
        msg["Date"] = format_datetime(epoch + timedelta(seconds=m.created_at))
        msg["From"] = m.sender
        msg["To"] = ", ".join(m.recipients)
        msg["Subject"] = m.subject
        msg.set_content(_body(m))
        return msg


def _body(message: Message) -> str:
    """Filler text so that the rendered message has about the simulated size."""
    line = "This line stands for the text of the message in the simulation.\n"
    return line * max(1, message.size // len(line))
