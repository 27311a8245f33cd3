"""The result of one run: DataFrames of events, hops and messages, plus provenance.

Built once from the world's recorder and copies; DataFrames are made on first access.
"""

from __future__ import annotations

import json
from collections import Counter, namedtuple
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cached_property
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from mailsim import endpoints
from mailsim.message import COSTS, STATUSES, Copy
from mailsim.record import HOP_COLUMNS, MESSAGE_COLUMNS, Recorder
from mailsim.scenario import Scenario

if TYPE_CHECKING:  # imported when a table is asked for: `mailsim run` prints without it
    from collections.abc import Callable
    from pathlib import Path

    import pandas as pd

    from mailsim.segments import Packet

# One row of the messages table, with ``seq``: the copy's place among the run's copies.
MessageRow = namedtuple("MessageRow", ["seq", *MESSAGE_COLUMNS])  # type: ignore[misc]
# One row of the hops table; a copy's hops in journey order are sorted by these.
HopRow = namedtuple("HopRow", HOP_COLUMNS)  # type: ignore[misc]
_JOURNEY = ("message", "recipient", "duplicate", "start")


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
        """One row per protocol step (command, reply, TCP/TLS/DNS message), with the
        addresses and ports it went from and to (``src_ip``, ``src_port``, ``dst_ip``,
        ``dst_port``)."""
        return endpoints.addressed(self._steps, self.sessions)

    @cached_property
    def sessions(self) -> pd.DataFrame:
        """One row per TCP connection or DNS exchange: who opened it (``client``), to
        whom, what it spoke (``service``: submission, submissions, smtp, lmtp, pop3,
        pop3s, dns), over ``tcp`` or ``udp``, and both ends' addresses and ports."""
        return endpoints.sessions(self._steps, self.scenario, self.seed)

    @cached_property
    def packets(self) -> list[Packet]:
        """Every TCP segment and UDP datagram the run sent, in order of sending: the
        bytes of each step as the timing model sent them (see :mod:`mailsim.segments`)."""
        from mailsim.segments import packets

        return packets(self)

    def to_pcap(
        self,
        path: str | Path,
        on: str | tuple[str, str] | None = None,
        progress: Callable[[float, float], None] | None = None,
    ) -> int:
        """Write a capture file (pcap, nanosecond timestamps on the scenario's clock) that
        Wireshark and tshark open: every packet as it left its sender, or only those seen
        ``on`` one link (its two nodes, "a,b", or an eavesdropper's name), when they
        reached it. Returns how many packets it holds; ``progress(done, total)`` follows
        the writing in simulated seconds (a day of a large office takes minutes)."""
        from mailsim import capture

        return capture.write(self, path, on, progress)

    def pcap_download(self, name: str, on: str | tuple[str, str] | None = None) -> Any:
        """The capture of :meth:`to_pcap` as a link in a notebook that saves it as
        ``name``: it works where the notebook's folder cannot be reached (Voilà)."""
        from mailsim import capture

        return capture.download(self, name, on)

    def packet_list(self, on: str | tuple[str, str] | None = None) -> pd.DataFrame:
        """The capture as Wireshark's packet list shows it (number, time, source,
        destination, protocol, bytes, info), read from the bytes alone: what someone
        capturing ``on`` a link, or an eavesdropper, sees without any key."""
        from mailsim import capture

        return capture.table(self, on)

    def to_pcaps(self, folder: str | Path) -> list[Path]:
        """One capture file per link that carried packets (``A--B.pcap``) in ``folder``."""
        from mailsim import capture

        return capture.write_links(self, folder)

    @cached_property
    def _steps(self) -> pd.DataFrame:
        """The recorded steps as the recorder keeps them (built once: a big run's table
        takes seconds)."""
        return self.recorder.frame("events")

    @cached_property
    def hops(self) -> pd.DataFrame:
        """One row per mail hop of each recipient's copy."""
        return self.recorder.frame("hops")

    @cached_property
    def hop_rows(self) -> list[HopRow]:
        """The rows of :attr:`hops` as Python values, in the same order: each copy's hops
        in journey order (its duplicate's after), numbered from 1."""
        order = itemgetter(*(HOP_COLUMNS.index(c) for c in _JOURNEY))
        rows = sorted(self.recorder.hops, key=order)
        out: list[HopRow] = []
        number, last = 0, None
        for row in rows:
            key = order(row)[:3]
            number = number + 1 if key == last else 1
            last = key
            out.append(HopRow(*row[:2], number, *row[3:]))
        return out

    def journeys(self) -> dict[tuple[str, str], list[HopRow]]:
        """Each (message, recipient)'s hops, its first copy's and then its duplicate's."""
        found: dict[tuple[str, str], list[HopRow]] = {}
        for hop in self.hop_rows:
            found.setdefault((hop.message, hop.recipient), []).append(hop)
        return found

    @cached_property
    def message_rows(self) -> list[MessageRow]:
        """The rows of :attr:`messages` as Python values (None where a time or text is
        missing), in the order the copies were made; ``seq`` tells copies apart."""
        rows = self.recorder.finished_rows()
        rows += [(copy.seq, copy.outcome()) for copy in self.copies]
        if self.recorder.finished_ids:  # finished rows first, in the order they finished
            rows.sort(key=itemgetter(0))
        extra = Counter(
            d.duplicate_of.seq for d in self.duplicates if d.duplicate_of and d.delivered_at
        )
        return [
            MessageRow(
                seq,
                row[0],
                "bounce" if row[1] == "" else "message",
                *row[1:12],
                extra[seq],
                *row[12:],
            )
            for seq, row in rows
        ]

    @cached_property
    def messages(self) -> pd.DataFrame:
        """One row per message and recipient: its final status, times and delay parts."""
        import pandas as pd

        frame = pd.DataFrame(self.message_rows, columns=list(MessageRow._fields))
        # The two halves of the delay: into the mailbox, then until the reader's
        # program fetched it (where POP3's poll interval shows).
        at = frame.columns.get_loc("delay") + 1
        frame.insert(at, "to_mailbox", frame["delivered_at"] - frame["submitted_at"])
        frame.insert(at + 1, "to_reader", frame["retrieved_at"] - frame["delivered_at"])
        return frame.drop(columns="seq")

    @property
    def n_messages(self) -> int:
        """Rows of :attr:`messages`, without making the table."""
        return len(self.recorder.finished_ids) + len(self.copies)

    def copy(self, message: str, recipient: str | None = None) -> Copy:
        for copy in self.copies:
            if copy.message.id == message and recipient in (None, copy.recipient):
                return copy
        to = f" to {recipient}" if recipient else ""
        if message in self.recorder.finished_ids:
            raise KeyError(
                f"message {message!r}{to} finished, and --detail outcomes kept only its row"
                " in Result.messages: run with detail='hops' or 'full' to keep the copy"
            )
        raise KeyError(f"no message {message!r}{to}")

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
        journeys: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for h in self.hop_rows:
            journeys.setdefault((h.message, h.recipient), []).append(
                {
                    "index": int(h.index),
                    "src": h.src,
                    "dst": h.dst,
                    "protocol": h.protocol,
                    "start": _num(h.start),
                    "end": _num(h.end),
                    "acknowledged": _num(h.acknowledged),
                    "attempts": int(h.attempts),
                    "outcome": h.outcome,
                    "tls": h.tls or None,
                    "auth": bool(h.auth),
                }
            )
        out = [
            {
                "id": m.id,
                "sender": m.sender,
                "recipient": m.recipient,
                "status": m.status,
                "reason": m.reason,
                "submitted_at": _num(m.submitted_at),
                "delivered_at": _num(m.delivered_at),
                "retrieved_at": _num(m.retrieved_at),
                "to_mailbox": _since(m.delivered_at, m.submitted_at),
                "to_reader": _since(m.retrieved_at, m.delivered_at),
                "folder": m.folder,
                "authentication": m.authentication,
                "delay": {name: _num(getattr(m, f"{name}_time")) for name in COSTS},
                "hops": journeys.get((m.id, m.recipient), []),
            }
            for m in self.message_rows
        ]
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
        mail = [m for m in self.message_rows if m.kind == "message"]
        bounces = [m for m in self.message_rows if m.kind == "bounce"]
        counts = {"sent": len(mail)}
        for status in STATUSES:
            counts[status] = sum(1 for m in mail if m.status == status)
        counts["duplicates"] = sum(1 for c in self.duplicates if c.delivered_at is not None)
        counts["bounces_sent"] = len(bounces)
        for status in ("retrieved", "delivered", "in_flight"):
            counts[f"bounces_{status}"] = sum(1 for m in bounces if m.status == status)
        counts["bounces_undeliverable"] = sum(
            1 for m in bounces if m.status in ("bounced", "expired")
        )
        return counts


def _since(later: float | None, earlier: float | None) -> float | None:
    """Seconds from ``earlier`` to ``later``, None where either is not known."""
    if later is None or earlier is None:
        return None
    return _num(later - earlier)


def _num(value: float | None) -> float | None:
    """Seconds rounded to the microsecond: exact enough, and stable in JSON."""
    return None if value is None else round(float(value), 6)
