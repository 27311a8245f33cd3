"""The result of one run: DataFrames of events, hops and messages, plus provenance.

Built once from the world's recorder and copies; DataFrames are made on first access.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cached_property
from typing import Any

import pandas as pd

from mailsim.message import COSTS, Copy
from mailsim.record import Recorder
from mailsim.scenario import Scenario


@dataclass
class Result:
    scenario: Scenario
    seed: int
    version: str
    end_time: float
    recorder: Recorder = field(repr=False)
    copies: list[Copy] = field(repr=False)
    duplicates: list[Copy] = field(repr=False, default_factory=list)
    epoch: Any = field(repr=False, default=None)

    @cached_property
    def overheard(self) -> pd.DataFrame:
        """What the scenario's eavesdroppers read, one row per step that crossed their
        link: the kind ("password", "envelope", "headers and body", "commands", "TLS
        records", "connection") and what exactly (see :mod:`mailsim.eavesdrop`)."""
        return self.recorder.frame("overheard")

    @cached_property
    def events(self) -> pd.DataFrame:
        """One row per protocol step (command, reply, TCP/TLS/DNS message)."""
        return self.recorder.frame("events")

    @cached_property
    def hops(self) -> pd.DataFrame:
        """One row per mail hop of each recipient's copy."""
        return self.recorder.frame("hops")

    @cached_property
    def messages(self) -> pd.DataFrame:
        """One row per message and recipient: its final status, times and delay parts."""
        rows = []
        for copy in self.copies:
            m = copy.message
            end = copy.retrieved_at if copy.retrieved_at is not None else copy.mark
            row = {
                "id": m.id,
                "kind": "bounce" if m.is_bounce else "message",
                "sender": m.sender,
                "recipient": copy.recipient,
                "subject": m.subject,
                "size": m.size,
                "status": copy.status,
                "submitted_at": copy.submitted_at,
                "delivered_at": copy.delivered_at,
                "retrieved_at": copy.retrieved_at,
                "delay": end - copy.submitted_at,
                "hops": copy.hops,
                "reason": copy.reason,
                "duplicates": sum(
                    1 for d in self.duplicates if d.duplicate_of is copy and d.delivered_at
                ),
                "folder": copy.folder if copy.delivered_at is not None else None,
                "authentication": copy.authentication,
            }
            row.update({f"{name}_time": copy.costs[name] for name in COSTS})
            rows.append(row)
        columns = [
            "id", "kind", "sender", "recipient", "subject", "size", "status", "submitted_at",
            "delivered_at", "retrieved_at", "delay", "hops", "reason", "duplicates", "folder",
            "authentication", *(f"{name}_time" for name in COSTS),
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    def copy(self, message: str, recipient: str | None = None) -> Copy:
        for copy in self.copies:
            if copy.message.id == message and recipient in (None, copy.recipient):
                return copy
        raise KeyError(f"no message {message!r}" + (f" to {recipient}" if recipient else ""))

    def email(self, message: str, recipient: str | None = None) -> EmailMessage:
        """The RFC 5322 form of a copy, with its Received chain, as its recipient sees it."""
        return self.copy(message, recipient).to_email(self.epoch)

    def message_events(self, message: str) -> pd.DataFrame:
        """The protocol steps that served ``message`` (POP3 sessions may serve several)."""
        events = self.events
        mask = events["message"].str.split().apply(lambda ids: message in ids)
        return events[mask]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of DESIGN.md: messages with their hops, plus provenance."""
        hops = self.hops
        out = []
        for copy in self.copies:
            mine = hops[
                (hops["message"] == copy.message.id) & (hops["recipient"] == copy.recipient)
            ]
            out.append(
                {
                    "id": copy.message.id,
                    "sender": copy.message.sender,
                    "recipient": copy.recipient,
                    "status": copy.status,
                    "reason": copy.reason,
                    "submitted_at": _num(copy.submitted_at),
                    "delivered_at": _num(copy.delivered_at),
                    "retrieved_at": _num(copy.retrieved_at),
                    "folder": copy.folder if copy.delivered_at is not None else None,
                    "authentication": copy.authentication,
                    "delay": {name: _num(copy.costs[name]) for name in COSTS},
                    "hops": [
                        {
                            "index": int(h.index),
                            "src": h.src,
                            "dst": h.dst,
                            "protocol": h.protocol,
                            "start": _num(h.start),
                            "end": _num(h.end),
                            "attempts": int(h.attempts),
                            "outcome": h.outcome,
                            "tls": h.tls or None,
                            "auth": bool(h.auth),
                        }
                        for h in mine.itertuples()
                    ],
                }
            )
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "mailsim": self.version,
            "end_time": _num(self.end_time),
            "summary": self.summary(),
            "messages": out,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def summary(self) -> dict[str, int]:
        """Counts of (message, recipient) by final state, for the messages people sent;
        ``duplicates``: extra copies made by a lost 250; ``bounces_*``: the notifications
        sent back, by their own final state."""
        mail = [c for c in self.copies if not c.message.is_bounce]
        bounces = [c for c in self.copies if c.message.is_bounce]
        counts = {"sent": len(mail)}
        for status in ("retrieved", "delivered", "bounced", "expired", "in_flight"):
            counts[status] = sum(1 for c in mail if c.status == status)
        counts["duplicates"] = sum(1 for c in self.duplicates if c.delivered_at is not None)
        counts["bounces_sent"] = len(bounces)
        for status in ("retrieved", "delivered", "in_flight"):
            counts[f"bounces_{status}"] = sum(1 for c in bounces if c.status == status)
        counts["bounces_undeliverable"] = sum(
            1 for c in bounces if c.status in ("bounced", "expired")
        )
        return counts


def _num(value: float | None) -> float | None:
    """Seconds rounded to the microsecond: exact enough, and stable in JSON."""
    return None if value is None else round(float(value), 6)
