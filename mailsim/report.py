"""The plain-text report ``mailsim run`` prints: each message's hops, where its time went,
and the line that accounts for every message."""

from __future__ import annotations

import io
import shutil
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from mailsim.eavesdrop import summary
from mailsim.message import COSTS
from mailsim.protocols import http, imap
from mailsim.result import HopRow, MessageRow, Result
from mailsim.units import format_duration

COST_LABELS = {
    "network": "network",
    "tls": "TLS",
    "dns": "DNS",
    "server": "server work",
    "queue": "queueing",
    "retry": "failed attempts and retry waits",
    "poll": "waiting for the POP poll",
}
# The wait before a copy reached its reader, by how the reader fetched it: a poll's, or,
# over IMAP IDLE, none (pushed at once; what is left is the mail pushed with it), unless
# the push was lost to a network that forgot the idle connection: that costs at least
# the client's timeout after its renewal, so a wait that long is a lost push.
WAIT_LABELS = {
    "pop3": "waiting for the POP poll",
    "imap": "waiting for the IMAP poll",
    "webmail": "waiting for the page to refresh",
}
PUSHED = "pushed, then waiting behind other new mail"
PUSH_LOST = "push lost: waiting for the IDLE renewal"
# A page that keeps its connection (it refreshes within the keep-alive) shows new mail
# within one refresh interval; a wait longer than that by more than the fetches ahead of
# it could take (STALL_MARGIN) means a refresh went out on a connection the network had
# forgotten, unanswered until the browser gave up on it.
PAGE_STALLED = "waiting for the page (a refresh lost on a forgotten connection)"
STALL_MARGIN = 1.0  # seconds


def reading(m: MessageRow, poll: float | None = None) -> tuple[str, str]:
    """How a retrieved copy reached its reader's program, in the report's words: the
    verb before its wait ("fetched", "pushed and fetched") and the name of the wait;
    ``poll`` is how often the reader checks."""
    kept = poll is not None and poll <= http.KEEPALIVE
    if m.retrieval == "webmail" and kept and m.poll_time > (poll or 0.0) + STALL_MARGIN:
        return "fetched", PAGE_STALLED
    if m.retrieval != "imap-idle":
        return "fetched", WAIT_LABELS.get(m.retrieval, COST_LABELS["poll"])
    if m.poll_time < imap.TIMEOUT:
        return "pushed and fetched", PUSHED
    return "its push lost, fetched", PUSH_LOST


def text(
    result: Result, limit: int = 20, overrides: Sequence[str] = (), width: int | None = None
) -> str:
    """A readable report; at most ``limit`` messages are shown in detail. ``overrides``
    (the ``--set`` changes) are named in the first line, so that a copied report says
    how to run it again. Every line fits in ``width`` columns (default: the terminal's,
    or ``COLUMNS``, or 80): long cells wrap inside their column, long names end in "…"."""
    width = width or terminal_width()
    parts = [
        f"mailsim {result.version}",
        f"scenario {result.scenario.name!r}",
        f"seed {result.seed}",
        *(f"--set {o}" for o in overrides),
        f"simulated {format_duration(result.end_time)}",
    ]
    lines = joined(parts, " · ", width)
    lines.append("")
    journeys = result.journeys()
    rows = result.message_rows
    for m in rows[: max(limit, 0)]:
        sender = m.sender or "MAILER-DAEMON"  # a bounce: the null sender <>
        lines += wrap(
            f"{m.id}  {sender} → {m.recipient}  “{m.subject}”  {m.size:,} bytes", width, 4
        )
        mine = [h for h in journeys.get((m.id, m.recipient), []) if not h.duplicate]
        if mine:
            lines += hop_table(mine, width)
        checked = m.authentication
        if checked and any(f"{check}=none" not in checked for check in ("spf", "dkim", "dmarc")):
            lines += wrap(f"  Authentication-Results: {checked}", width, 4)
        if m.folder not in (None, "inbox"):
            lines.append(f"  put in the {m.folder} folder (DMARC: p=quarantine)")
        if m.status == "retrieved":
            reader = result.scenario.accounts.get(m.recipient)
            how = reading(m, reader.poll if reader else None)
            lines += wrap(
                f"  retrieved after {format_duration(m.retrieved_at - m.submitted_at)}: in the"
                f" mailbox after {format_duration(m.delivered_at - m.submitted_at)},"
                f" {how[0]}"
                f" {format_duration(m.retrieved_at - m.delivered_at)} later; where the time"
                " went:",
                width,
                4,
            )
            labels = {**COST_LABELS, "poll": how[1]}
            parts = [
                f"{labels[name]} {format_duration(getattr(m, f'{name}_time'))}"
                for name in COSTS
                if getattr(m, f"{name}_time") >= 5e-7
            ]
            lines += wrap("    " + " + ".join(parts), width, 6)
        else:
            why = f" ({m.reason})" if m.reason else ""
            lines += wrap(f"  status: {m.status}{why}", width, 4)
        for dup in result.duplicates:
            first = dup.duplicate_of
            if first is not None and first.seq == m.seq and dup.delivered_at is not None:
                lines += wrap(
                    f"  + a second copy (its 250 was lost on the way) reached the mailbox at"
                    f" {dup.delivered_at:.3f}s",
                    width,
                    4,
                )
        lines.append("")
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - max(limit, 0):,} more (use --json or --out)")
    lines += eavesdropping(result, limit, width)
    for line in conservation_line(result).splitlines():  # broken only between its terms
        lines += joined(line.split(" + "), " + ", width)
    return "\n".join(lines)


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` first, as shells set it), 80 when there is none."""
    return max(shutil.get_terminal_size((80, 24)).columns, 40)


def wrap(line: str, width: int, indent: int = 0) -> list[str]:
    """One logical line as terminal lines of at most ``width`` columns, the first keeping
    its own indentation, the others indented by ``indent`` spaces."""
    return textwrap.wrap(line, width, subsequent_indent=" " * indent, break_on_hyphens=False) or [
        ""
    ]


def joined(parts: list[str], separator: str, width: int, indent: int = 2) -> list[str]:
    """``parts`` joined by ``separator`` in lines of at most ``width`` columns, broken only
    between parts (a ``--set KEY=VALUE`` stays whole, to be copied); a part too long for
    a line of its own is wrapped."""
    lines: list[str] = []
    line = ""
    for part in parts:
        candidate = f"{line}{separator}{part}" if line else part
        if line and len(candidate) > width:
            lines.append(line + separator.rstrip())  # the line says that more follows
            candidate = " " * indent + part
        line = candidate
    lines.append(line)
    return [piece for text in lines for piece in wrap(text, width, indent)]


# The hop table's columns: (title, how it is laid out). Names stay on one line and are
# shortened with "…" past their width. The outcome is the last column on a wide terminal
# and wraps in its cell; on a narrow one (80 columns) it goes under its row, indented.
_COLUMNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("#", {"justify": "right", "no_wrap": True}),
    ("from", {"max_width": 14, "no_wrap": True, "overflow": "ellipsis"}),
    ("to", {"max_width": 14, "no_wrap": True, "overflow": "ellipsis"}),
    ("protocol", {"no_wrap": True}),
    ("start", {"justify": "right", "no_wrap": True}),
    # From the start of the session until the next server holds the message (its 250 is
    # on the way back): what the hop took. The client learns it half a round trip later
    # (Result.hops' "acknowledged").
    ("safe after", {"justify": "right", "no_wrap": True}),
    ("TLS", {"no_wrap": True}),
    ("auth", {"no_wrap": True}),
)
WIDE = 110  # columns from which the outcome has a column of its own


def hop_table(hops: list[HopRow], width: int) -> list[str]:
    """The hops of one copy as a table indented by two columns."""
    wide = width >= WIDE
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="")
    for title, layout in _COLUMNS:
        table.add_column(title, **layout)
    if wide:
        table.add_column("outcome", ratio=1, overflow="fold")
        table.expand = True
    outcomes = []
    for h in hops:
        cells = [
            str(h.index),
            str(h.src),
            str(h.dst),
            str(h.protocol),
            f"{h.start:.3f}s",
            format_duration(h.end - h.start),
            h.tls or "-",
            "yes" if h.auth else "no",
        ]
        table.add_row(*cells, *([str(h.outcome)] if wide else []))
        outcomes.append(str(h.outcome))
    lines = ["  " + line for line in render(table, width - 2)]
    if wide:
        return lines
    out = [lines[0]]  # the header, then each one-line row with its outcome under it
    for row, outcome in zip(lines[1:], outcomes, strict=True):
        out.append(row)
        out += wrap(f"      {outcome}", width, 8)
    return out


def render(table: Table, width: int) -> list[str]:
    """A rich table as plain lines (no colour, no markup read from the cells)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, color_system=None, highlight=False, emoji=False, markup=False
    )
    console.print(table, crop=True)
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def eavesdropping(result: Result, limit: int = 20, width: int | None = None) -> list[str]:
    """For each eavesdropper, each session that crossed its link: what it could read."""
    if not result.scenario.eavesdroppers:
        return []
    width = width or terminal_width()
    heard = result.overheard
    lines: list[str] = []
    for spy in result.scenario.eavesdroppers:
        a, b = spy.between
        lines += wrap(f"What {spy.name}, listening on {a}–{b}, could read:", width, 2)
        mine = heard[heard["eavesdropper"] == spy.name]
        table = summary(mine) if len(mine) else None
        if table is None:
            lines += ["  nothing: no session crossed the link", ""]
            continue
        # A session that outlives its rounds (a phone's IDLE, a web page's refreshes)
        # serves the messages of each: name them all.
        messages = mine.groupby("session")["message"].agg(_all_messages)
        for shown, row in enumerate(table.itertuples()):
            if shown >= limit:
                lines.append(f"  … and {len(table) - limit} more sessions")
                break
            who = messages[row.session] or "(a poll, no mail)"
            lines += wrap(
                f"  {who}  {row.src} → {row.dst} ({row.protocol}): {_read(row)}", width, 6
            )
        lines.append("")
    return lines


def _all_messages(column: Iterable[str]) -> str:
    return " ".join(sorted({m for value in column for m in value.split()}))


def _read(row: Any) -> str:
    secrets = [k for k in row.plaintext if k != "commands"]
    if secrets:
        return "in plaintext — " + "; ".join(row.details)
    if "TLS records" in row.read:
        first = (
            "STLS: the greeting and CAPA"
            if row.protocol == "pop3"
            else "STARTTLS: the greeting and EHLO"
        )
        before = f" (before {first})" if row.plaintext else ""
        return f"only TLS records, {row.tls_bytes:,} bytes{before}"
    return "the commands and replies, no message"


def conservation_line(result: Result) -> str:
    """The line that accounts for every message people sent, by final state, and one for
    the bounces sent back if there were any."""
    s = result.summary()
    line = (
        f"sent {s['sent']} = retrieved {s['retrieved']} + delivered {s['delivered']}"
        f" + refused {s['refused']} + bounced {s['bounced']} + expired {s['expired']}"
        f" + in flight {s['in_flight']} (duplicates {s['duplicates']})"
    )
    if s["bounces_sent"]:
        line += (
            f"\nbounces sent back {s['bounces_sent']} = retrieved {s['bounces_retrieved']}"
            f" + delivered {s['bounces_delivered']} + undeliverable"
            f" {s['bounces_undeliverable']} + in flight {s['bounces_in_flight']}"
        )
    return line
