"""A timeline per server: one row for each MTA, POP server and resolver, with its sessions
as bars, the messages it holds in its queue, and the windows in which the scenario's
faults had it down — so that a class sees *where* a message waited and *why* it moved
on when it did (the first retry after an outage)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.transforms import Affine2D

from mailsim.model import CrashFault, MailboxFullFault, SlowFault, StripStarttlsFault, Window
from mailsim.plot import labels as labels_
from mailsim.plot import style
from mailsim.result import Result

ROLES = {"smtp": "MTA", "pop": "POP3 server", "dns": "resolver"}
DENSE = 100  # more sessions or stays than this in a row: drawn as a count, not as bars
MIN_PX = 3.5  # the narrowest bar drawn, in pixels: a 13 ms session on a 3-hour axis stays visible
OUTAGE = "#F4C7AE"  # a pale vermillion: the server could not do its work
QUEUE = style.OKABE_ITO["grey"]
MAILBOX = style.COST["poll"]
WAITING = "#3A3A3A"  # a dark grey: a connection in the listen queue, not yet served
WAIT_MIN = 0.01  # seconds: a greeting later than this after the handshake waited for a slot
PAGE = (12.8, 7.2)  # inches at dpi 100: a projector's 1280×720
MIN_ROWS = 4  # a page of fewer servers keeps rows of this height
FONT = 11  # 15 px on a 1280×720 page: readable from the back row
WORDS = {  # what each fault kind did, in the band's words
    "down": "down",
    "crash": "crashed",
    "hang": "hung",
    "overload": "overloaded",
    "resolver-down": "not answering",
    "slow": "slow",
    "greylist": "greylisting",
    "tls-fail": "TLS failing",
}
HINDERED = ("slow", "greylisting", "TLS failing")  # working, though not as usual
Span = tuple[float, float]


@dataclass
class Row:
    """What one server's row shows, in seconds."""

    name: str
    ok: dict[str, list[Span]]  # protocol → sessions that worked
    failed: list[Span]
    held: list[Span]  # in its queue (an MTA) or in a mailbox (a POP server)
    outages: list[tuple[Span, str]]  # (window, words)
    waiting: list[Span] = field(default_factory=list)  # connections waiting for a session
    refused: list[Span] = field(default_factory=list)  # sessions that ended in a 5xx


def servers(result: Result, *, ax: Axes | None = None) -> Axes:
    """Draw every server's sessions, queue and outages against time."""
    rows = _rows(result)
    if ax is None:
        _, ax = plt.subplots(figsize=PAGE, layout="constrained")
    end_time = max(result.end_time, *(b for r in rows for (_, b), _ in r.outages), 1.0)
    scale, unit = style.time_unit(end_time)
    _frame(ax, result, rows, end_time / scale, unit)
    ax.figure.draw_without_rendering()  # settle the layout: widths in pixels are final now
    least = _least_width(ax)
    notes: list[labels_.Movable] = []
    for y, row in enumerate(rows):
        for (a, b), words in row.outages:
            ax.broken_barh([(a / scale, (b - a) / scale)], (y - 0.48, 0.96), color=OUTAGE,
                           lw=0, gid="outage", zorder=0.5)  # fmt: skip
            text = ax.text(a / scale, y - 0.46, f" {words} {style.window(a, b, scale, unit)}",
                           fontsize=FONT, va="top", color="#000000", zorder=3)  # fmt: skip
            notes.append(labels_.Movable(text, [(a / scale, y - 0.46, "top", "left"),
                                                (b / scale, y - 0.46, "top", "right")]))  # fmt: skip
            if not words.startswith(HINDERED):  # it was out: why the next try came then
                notes += _after(ax, row, b, y, scale, unit)
        pop = _is_pop(result, row)
        where = "in the mailboxes" if pop else "in the queue"
        dense = len(row.held) > DENSE or any(len(v) > DENSE for v in row.ok.values())
        if dense:  # a busy server: how many per few minutes, not a solid smear of bars
            edges = _bins(end_time)
            notes += _busy(ax, row, edges, y, scale, MAILBOX if pop else QUEUE, where)
        else:
            _draw(ax, list(_merged(row.held)), y + 0.22, 0.2, MAILBOX if pop else QUEUE,
                  "mailbox" if pop else "queue", least, scale)  # fmt: skip
            for protocol, bars in _side_by_side(row.ok, least, scale).items():
                ax.broken_barh(bars, (y - 0.28, 0.4), color=style.PROTOCOL.get(protocol, "#333333"),
                               lw=0, gid="session", zorder=2)  # fmt: skip
            # The start of a session that waited for a free slot, over its bar.
            _draw(ax, row.waiting, y - 0.08, 0.4, WAITING, "waiting", least, scale)
            if row.waiting:
                notes.append(_words(ax, f"waiting for a free session: up to {_peak(row.waiting)}",
                                    np.array([0.0, end_time / scale]), np.zeros(2), y + 0.46,
                                    "bottom"))  # fmt: skip
        _draw(ax, row.failed, y - 0.08, 0.4, style.OUTCOME["temporary"], "session-failed",
              least, scale)  # fmt: skip
        _draw(ax, row.refused, y - 0.08, 0.4, style.OUTCOME["permanent"], "session-refused",
              least, scale)  # fmt: skip
    labels_.place(ax, notes)
    return ax


def _frame(ax: Axes, result: Result, rows: list[Row], right: float, unit: str) -> None:
    """Everything but the bars: ticks, limits, legend, title (they fix the layout)."""
    names = [f"{r.name} ({ROLES[result.scenario.nodes[r.name].role]})" for r in rows]
    ax.set_yticks(range(len(rows)), names, fontsize=FONT)
    pad = max(MIN_ROWS - len(rows), 0) / 2  # a few servers: rows of a usual height, centred
    ax.set_ylim(len(rows) - 0.5 + pad, -0.5 - pad)
    ax.set_xlim(0, right * 1.02)
    ax.set_xlabel(f"time since the start of the run ({unit})", fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    ax.legend(handles=_handles(result, rows), loc="upper left", bbox_to_anchor=(1.0, 1.0),
              fontsize=FONT, frameon=False)  # fmt: skip
    drawn = {r.name for r in rows}
    idle = [n for n, node in result.scenario.nodes.items() if node.role in ROLES and n not in drawn]
    title = f"What each server did — scenario {result.scenario.name!r}"
    if idle:  # a row with nothing in it is left out, and said so
        title += f"; nothing to do, not drawn: {', '.join(idle)}"
    ax.set_title(title, loc="left", fontsize=FONT + 1)


def _handles(result: Result, rows: list[Row]) -> list[Patch]:
    """Legend entries for what the rows hold, and nothing else."""
    protocols = dict.fromkeys(p for r in rows for p, spans in r.ok.items() if spans)
    names = {"smtp": "SMTP session (submission, relay)", "lmtp": "LMTP (into the mailbox)",
             "pop3": "POP3 session", "dns": "DNS look-up"}  # fmt: skip
    handles = [Patch(color=style.PROTOCOL.get(p, "#333333"), label=names.get(p, p))
               for p in protocols]  # fmt: skip
    if any(r.failed for r in rows):
        handles.append(Patch(color=style.OUTCOME["temporary"],
                             label="failed session (4xx, timeout)"))  # fmt: skip
    if any(r.refused for r in rows):
        handles.append(Patch(color=style.OUTCOME["permanent"], label="refused (5xx)"))
    if any(r.held and not _is_pop(result, r) for r in rows):
        handles.append(Patch(color=QUEUE, label="message in the queue"))
    if any(r.held and _is_pop(result, r) for r in rows):
        handles.append(Patch(color=MAILBOX, label="message in the mailbox"))
    if any(r.waiting for r in rows):
        handles.append(Patch(color=WAITING, label="waiting for a free session"))
    if any(r.outages for r in rows):
        handles.append(Patch(color=OUTAGE, label="a fault in force"))
    return handles


def _least_width(ax: Axes) -> float:
    """The data width that is MIN_PX pixels wide on the drawn axes."""
    x0 = ax.transData.transform((ax.get_xlim()[0], 0))[0]
    x1 = ax.transData.transform((ax.get_xlim()[1], 0))[0]
    return MIN_PX * (ax.get_xlim()[1] - ax.get_xlim()[0]) / max(x1 - x0, 1.0)


def _draw(ax: Axes, spans: list[Span], y: float, height: float, colour: str, gid: str,
          least: float, scale: float) -> None:  # fmt: skip
    """Bars as one collection (thousands of sessions at a busy server), none narrower
    than ``least``."""
    if spans:
        bars = [(a / scale, max((b - a) / scale, least)) for a, b in spans]
        ax.broken_barh(bars, (y - height / 2, height), color=colour, lw=0, gid=gid, zorder=2)


def _side_by_side(
    ok: dict[str, list[Span]], least: float, scale: float
) -> dict[str, list[tuple[float, float]]]:
    """Each protocol's sessions as bars in axis units, none narrower than ``least``; a
    bar that a widened one before it would cover starts where that one ends: the MX's
    13 ms SMTP session and its LMTP session right after stay two marks, not one."""
    marks = sorted((a, b, protocol) for protocol, spans in ok.items() for a, b in spans)
    bars: dict[str, list[tuple[float, float]]] = {protocol: [] for protocol in ok}
    end = -np.inf  # where the last widened bar ends
    for a, b, protocol in marks:
        x, width = a / scale, (b - a) / scale
        if x < end:
            x = end
        if width < least:
            width, end = least, x + least
        bars[protocol].append((x, width))
    return bars


BIN_WORDS = {1: "a second", 10: "10 s", 60: "a minute", 300: "5 min", 600: "10 min",
             900: "15 min", 1800: "30 min", 3600: "an hour", 7200: "2 h"}  # fmt: skip
NICE_BINS = tuple(BIN_WORDS)  # seconds


def _bins(end_time: float) -> np.ndarray:
    """Bin edges of a round width, about 150 across the axis."""
    width = min(NICE_BINS, key=lambda w: abs(np.log(end_time / 150 / w)))
    return np.arange(0.0, end_time + width, width)


def _busy(ax: Axes, row: Row, edges: np.ndarray, y: float, scale: float, colour: str,
          where: str) -> list[labels_.Movable]:  # fmt: skip
    """A busy server's row: sessions begun in each bin, stacked by protocol, and the most
    messages held at once in each bin; each with its peak in words."""
    width = BIN_WORDS[int(edges[1] - edges[0])]
    x = edges / scale
    bottom = np.zeros(len(edges) - 1)
    for protocol, spans in row.ok.items():
        counts, _ = np.histogram([a for a, _ in spans], bins=edges)
        _fill(ax, x, bottom, bottom + counts, style.PROTOCOL.get(protocol, "#333333"),
              "session-level")  # fmt: skip
        bottom = bottom + counts
    peak = max(float(bottom.max()), 1.0)
    for coll in ax.collections[-len(row.ok) :] if row.ok else []:
        coll.set_transform(_band(ax, y + 0.12, 0.4 / peak))
    notes = [_words(ax, f"up to {int(peak)} sessions begun in {width}", x, bottom, y - 0.46, "top")]
    below = []
    if row.held:
        most = _most_at_once(row.held, edges)
        top = 0.1 if row.waiting else 0.2
        _fill(ax, x, np.zeros_like(most), most, colour, "held-level")
        ax.collections[-1].set_transform(_band(ax, y + 0.32, top / max(most.max(), 1)))
        peak_held = int(most.max())
        below.append(f"up to {peak_held} message{'s' if peak_held != 1 else ''} {where} at once")
    if row.waiting:  # connections in the listen queue: the server's sessions all busy
        waiting = _most_at_once(row.waiting, edges)
        base = y + (0.21 if row.held else 0.32)
        _fill(ax, x, np.zeros_like(waiting), waiting, WAITING, "waiting-level")
        ax.collections[-1].set_transform(_band(ax, base, 0.1 / max(waiting.max(), 1)))
        below.append(f"waiting for a free session: up to {int(waiting.max())}")
        most = waiting
    if below:
        notes.append(_words(ax, "; ".join(below), x, most, y + 0.46, "bottom"))
    return notes


def _peak(spans: list[Span]) -> int:
    """The most spans open at one moment."""
    steps = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    return int(max(np.cumsum([d for _, d in steps]), default=0))


def _fill(ax: Axes, x: np.ndarray, low: np.ndarray, high: np.ndarray, colour: str,
          gid: str) -> None:  # fmt: skip
    """A step-filled band between ``low`` and ``high`` counts (placed by _band)."""
    ax.fill_between(x, np.append(low, low[-1]), np.append(high, high[-1]), step="post",
                    color=colour, lw=0, gid=gid, zorder=2)  # fmt: skip


def _band(ax: Axes, base: float, per_count: float) -> Any:
    """Counts drawn upward from ``base`` in a row of the inverted y axis."""
    return Affine2D().scale(1.0, -per_count).translate(0.0, base) + ax.transData


def _most_at_once(spans: list[Span], edges: np.ndarray) -> np.ndarray:
    """The most stays open at one moment within each bin."""
    steps = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    times = np.array([t for t, _ in steps])
    counts = np.cumsum([d for _, d in steps])
    carried = np.searchsorted(times, edges[:-1], side="right") - 1
    most = np.where(carried >= 0, counts[np.maximum(carried, 0)], 0).astype(float)
    bins = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, len(most) - 1)
    np.maximum.at(most, bins, counts)
    return most


def _words(ax: Axes, text: str, x: np.ndarray, values: np.ndarray, y: float,
           va: str) -> labels_.Movable:  # fmt: skip
    """A peak in words, at the peak if there is room, else at either end."""
    at = float(x[int(np.argmax(values))])
    label = ax.text(at, y, text, fontsize=FONT, va=va, color="#000000", zorder=3)
    spots = [(at, y, va, "left"), (at, y, va, "right"), (x[0], y, va, "left"),
             (x[-1], y, va, "right")]  # fmt: skip
    return labels_.Movable(label, spots)


def _after(
    ax: Axes, row: Row, end: float, y: float, scale: float, unit: str
) -> list[labels_.Movable]:
    """The first session that worked after an outage: why the message moved on then."""
    starts = sorted(a for spans in row.ok.values() for a, _ in spans if a >= end)
    if not starts:
        return []
    at = starts[0] / scale
    text = ax.text(at, y + 0.46, f"first try after the outage: {style.number(at)} {unit} ", fontsize=FONT,
                   ha="right", va="bottom", color="#000000", zorder=3)  # fmt: skip
    return [
        labels_.Movable(text, [(at, y + 0.46, "bottom", "right"), (at, y + 0.46, "bottom", "left")])
    ]


def _is_pop(result: Result, row: Row) -> bool:
    return result.scenario.nodes[row.name].role == "pop"


def _rows(result: Result) -> list[Row]:
    """One row per server, in the scenario's order."""
    nodes = result.scenario.nodes
    rows = {n: Row(n, {}, [], [], []) for n, node in nodes.items() if node.role in ROLES}
    hops = result.hops
    hops = hops[~hops["duplicate"]]
    outcomes = [style.outcome_of(str(c)) for c in hops["code"]]
    ok = [outcome == "ok" for outcome in outcomes]
    columns = (hops["src"], hops["dst"], hops["protocol"], hops["start"], hops["end"], outcomes,
               hops["session"])  # fmt: skip
    seen: set[tuple[str, int, str]] = set()
    for src, dst, protocol, start, end, outcome, session in zip(*columns, strict=True):
        protocol = "smtp" if protocol == "submission" else protocol  # one colour
        for name in {src, dst}:
            # One POP3 session fetches many messages, one relay session may carry several
            # recipients: a session is counted once, however many hops it carried.
            if name in rows and (name, int(session), outcome) not in seen:
                seen.add((name, int(session), outcome))
                row = rows[name]
                target = (row.ok.setdefault(protocol, []) if outcome == "ok"
                          else row.refused if outcome == "permanent" else row.failed)  # fmt: skip
                target.append((float(start), float(end)))
    for name, span, failed in _lookups(result):
        if name in rows:
            (rows[name].failed if failed else rows[name].ok.setdefault("dns", [])).append(span)
    ended = {(c.message.id, c.recipient): c.mark for c in result.copies
             if c.status in ("refused", "bounced", "expired")}  # fmt: skip
    for name, span in _held(hops[ok], result.end_time, ended):
        if name in rows:
            rows[name].held.append(span)
    for name, span in _waiting(result):
        if name in rows:
            rows[name].waiting.append(span)
    for name, window, words in outages(result):
        if name in rows:
            rows[name].outages.append((window, words))
    return [r for r in rows.values()
            if r.ok or r.failed or r.refused or r.held or r.outages or r.waiting]  # fmt: skip


def _lookups(result: Result) -> Iterator[tuple[str, Span, bool]]:
    """Each DNS look-up (a session's queries and answers) at the resolver: from the first
    query to the last answer; failed when it timed out."""
    events = result.events
    if events.empty:
        return
    dns = events[events["protocol"] == "dns"]
    queries = dns[dns["step"].astype(str).str.startswith("query")]
    by_session = dns.groupby("session")
    table = pd.DataFrame(
        {
            "start": by_session["time"].min(),
            "end": by_session["arrive"].max(),
            "failed": (dns["step"] == "timeout").groupby(dns["session"]).any(),
        }
    ).join(queries.groupby("session")["dst"].first().rename("resolver"), how="inner")
    for resolver, start, end, failed in zip(
        table["resolver"], table["start"], table["end"], table["failed"], strict=True
    ):
        yield str(resolver), (float(start), float(end)), bool(failed)


def _held(
    ok: pd.DataFrame, last: float, ended: dict[tuple[str, str], float] | None = None
) -> Iterator[tuple[str, Span]]:
    """Each copy's stay at each server, from the hops that worked: from the end of the
    hop that brought it (the server holds it) to the end of the hop that passed it on,
    or to its retrieval from a mailbox; a copy never passed on stays to ``last`` — or,
    refused, bounced or expired, to the moment it was (its time in ``ended``): a bounced
    message leaves the queue when its bounce is made, not at the end of the run."""
    ended = ended or {}
    ok = ok.sort_values(["message", "recipient", "index"])
    arrived: dict[str, float] = {}
    journey = None
    columns = (ok["message"], ok["recipient"], ok["src"], ok["dst"], ok["protocol"], ok["end"])
    for message, recipient, src, dst, protocol, end in zip(*columns, strict=True):
        if (message, recipient) != journey:
            until = ended.get(journey, last) if journey is not None else last
            yield from ((name, (at, max(at, until))) for name, at in arrived.items())
            arrived, journey = {}, (message, recipient)
        if src in arrived:
            yield src, (arrived.pop(src), float(end))
        if protocol != "pop3":
            arrived[str(dst)] = float(end)
    until = ended.get(journey, last) if journey is not None else last
    yield from ((name, (at, max(at, until))) for name, at in arrived.items())


def _waiting(result: Result) -> Iterator[tuple[str, Span]]:
    """Connections that waited for a free session (every server process busy): from the
    client's ACK reaching the server to the session's next step (the 220 greeting, or an
    implicit-TLS ClientHello), where that took longer than WAIT_MIN."""
    events = result.events
    if events.empty:
        return
    acks = events[(events["protocol"] == "tcp") & (events["step"] == "ACK")]
    acks = acks.drop_duplicates("session")
    later = events[events["protocol"] != "tcp"].groupby("session")["time"].min()
    table = acks.join(later.rename("next"), on="session", how="inner")
    table = table[table["next"] - table["arrive"] > WAIT_MIN]
    for node, start, end in zip(table["dst"], table["arrive"], table["next"], strict=True):
        yield str(node), (float(start), float(end))


def outages(result: Result, links: bool = False) -> Iterator[tuple[str, Span, str]]:
    """The faults that kept a server from its usual work, as windows within the run; with
    ``links``, a man in the middle's too (named by the link it sits on)."""
    for fault in result.scenario.faults:
        if isinstance(fault, MailboxFullFault):  # on the row of the server that holds it
            user = result.scenario.users.get(fault.user)
            node = getattr(user, "mailbox", None)
            if node:
                end = fault.end if fault.end is not None else result.end_time
                name = fault.user.partition("@")[0]
                yield node, (fault.start, min(end, result.end_time)), f"{name}'s mailbox full"
            continue
        if links and isinstance(fault, StripStarttlsFault):
            end = fault.end if fault.end is not None else result.end_time
            where = "–".join(fault.between)
            yield where, (fault.start, min(end, result.end_time)), "man in the middle"
            continue
        if isinstance(fault, CrashFault):
            yield fault.node, (fault.at, fault.at + fault.restart), WORDS["crash"]
        elif isinstance(fault, Window) and fault.kind in WORDS:
            end = fault.end if fault.end is not None else result.end_time
            node = fault.node  # type: ignore[attr-defined]  # every kind in WORDS has one
            yield node, (fault.start, min(end, result.end_time)), _fault_words(fault)


def _fault_words(fault: Window) -> str:
    """A band's words: what the fault did (a slowdown says by how much)."""
    words = WORDS[fault.kind]  # type: ignore[attr-defined]
    if isinstance(fault, SlowFault):
        words += f" ×{fault.factor:g}"
    return words


def _merged(spans: Iterable[Span]) -> Iterator[Span]:
    """Overlapping stays as one bar: the queue was not empty from its start to its end."""
    current: Span | None = None
    for a, b in sorted(spans):
        if current is not None and a <= current[1]:
            current = (current[0], max(current[1], b))
            continue
        if current is not None:
            yield current
        current = (a, b)
    if current is not None:
        yield current


__all__ = ["servers"]
