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
from mailsim.plot.delays import MANY
from mailsim.plot.load import compared_groups
from mailsim.plot.waits import waiting
from mailsim.result import Result
from mailsim.traffic import seconds_into_day

ROLES = {"smtp": "MTA", "pop": "POP3 server", "dns": "resolver"}
DENSE = 100  # more sessions or stays than this in a row: drawn as a count, not as bars
MIN_PX = 3.5  # the narrowest bar drawn, in pixels: a 13 ms session on a 3-hour axis stays visible
OUTAGE = "#F4C7AE"  # a pale vermillion: the server could not do its work
QUEUE = style.OKABE_ITO["grey"]
MAILBOX = style.COST["poll"]
WAITING = "#3A3A3A"  # a dark grey: a connection in the listen queue, not yet served
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
PEAK_PX = 2.0  # the width of a row's peak moment: a 13 ms peak on a day's axis stays seen
TINY_PX = 6.0  # a typical session narrower than this cannot be compared by eye: say it
Span = tuple[float, float]


@dataclass(frozen=True)
class Axis:
    """How the x axis counts: seconds ÷ ``scale`` in ``unit`` since the start, or, for a
    run of many messages (a working day, as the timeline and load figures draw it), the
    scenario's clock (``origin``: seconds into the day at t = 0)."""

    scale: float
    unit: str
    origin: float | None = None

    def at(self, t: float) -> str:
        """A moment in the axis's words: "149.7 min" or "10:42"."""
        if self.origin is None:
            return f"{style.number(t / self.scale)} {self.unit}"
        return style.clock(self.origin + t)

    def stretch(self, a: float, b: float) -> str:
        """A window in the axis's words: "0–120 min" or "10:00–10:20"."""
        if self.origin is None:
            return style.window(a, b, self.scale, self.unit)
        return f"{self.at(a)}–{self.at(b)}"


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
    firms = list(firms_of(result).items())
    order = {firm: k for k, firm in enumerate(dict.fromkeys(f for _, f in firms))}
    rows.sort(key=lambda r: order.get(dict(firms).get(r.name, ""), len(order)))  # firm by firm
    if ax is None:
        _, ax = plt.subplots(figsize=PAGE, layout="constrained")
    end_time = max(result.end_time, *(b for r in rows for (_, b), _ in r.outages), 1.0)
    scale, unit = style.time_unit(end_time)
    clocked = len(result.copies) > MANY  # as the load figure, drawn for these runs
    axis = Axis(scale, unit, seconds_into_day(result.scenario.start) if clocked else None)
    _frame(ax, result, rows, end_time, axis)
    ax.figure.draw_without_rendering()  # settle the layout: widths in pixels are final now
    least = _least_width(ax)
    compared = _compared(result, rows, least * TINY_PX / MIN_PX * scale)
    notes: list[labels_.Movable] = []
    for y, row in enumerate(rows):
        for (a, b), words in row.outages:
            ax.broken_barh([(a / scale, (b - a) / scale)], (y - 0.48, 0.96), color=OUTAGE,
                           lw=0, gid="outage", zorder=0.5)  # fmt: skip
            text = ax.text(a / scale, y - 0.46, f" {words} {axis.stretch(a, b)}",
                           fontsize=FONT, va="top", color="#000000", zorder=3)  # fmt: skip
            notes.append(labels_.Movable(text, [(a / scale, y - 0.46, "top", "left"),
                                                (b / scale, y - 0.46, "top", "right")]))  # fmt: skip
            if not words.startswith(HINDERED):  # it was out: why the next try came then
                notes += _after(ax, row, b, y, axis)
        pop = _is_pop(result, row)
        where = "in the mailboxes" if pop else "in the queue"
        dense = len(row.held) > DENSE or any(len(v) > DENSE for v in row.ok.values())
        if dense:  # a busy server: how many per few minutes, not a solid smear of bars
            edges = _bins(end_time)
            notes += _busy(ax, row, edges, y, axis, MAILBOX if pop else QUEUE, where)
        else:
            _draw(ax, list(_merged(row.held)), y + 0.22, 0.2, MAILBOX if pop else QUEUE,
                  "mailbox" if pop else "queue", least, scale)  # fmt: skip
            for protocol, bars in _side_by_side(row.ok, least, scale).items():
                ax.broken_barh(bars, (y - 0.28, 0.4), color=style.PROTOCOL.get(protocol, "#333333"),
                               lw=0, gid="session", zorder=2)  # fmt: skip
            # The start of a session that waited for a free session, over its bar.
            _draw(ax, row.waiting, y - 0.08, 0.4, WAITING, "waiting", least, scale)
            if row.waiting:
                notes.append(_words(ax, f"waiting for a free session: up to {_peak(row.waiting)}",
                                    np.array([0.0, end_time / scale]), np.zeros(2), y + 0.46,
                                    "bottom"))  # fmt: skip
            if row.name in compared:
                notes.append(_lengths(ax, row, y, least, scale, compared[row.name]))
        _draw(ax, row.failed, y - 0.08, 0.4, style.OUTCOME["temporary"], "session-failed",
              least, scale)  # fmt: skip
        _draw(ax, row.refused, y - 0.08, 0.4, style.OUTCOME["permanent"], "session-refused",
              least, scale)  # fmt: skip
    labels_.place(ax, notes)
    return ax


def _frame(ax: Axes, result: Result, rows: list[Row], end_time: float, axis: Axis) -> None:
    """Everything but the bars: ticks, limits, legend, title (they fix the layout)."""
    firms = firms_of(result)
    readers = {u.retrieval for u in result.scenario.accounts.values()}
    roles = {**ROLES, "pop": "POP3, IMAP server"} if readers - {"pop3"} else ROLES
    names = [f"{r.name} ({roles[result.scenario.nodes[r.name].role]})" for r in rows]
    names = [name + (f"\n{_firm_words(result, r.name, firms[r.name])}" if r.name in firms else "")
             for name, r in zip(names, rows, strict=True)]  # fmt: skip
    ax.set_yticks(range(len(rows)), names, fontsize=FONT)
    pad = max(MIN_ROWS - len(rows), 0) / 2  # a few servers: rows of a usual height, centred
    ax.set_ylim(len(rows) - 0.5 + pad, -0.5 - pad)
    ax.set_xlim(0, end_time / axis.scale * 1.02)
    if axis.origin is None:
        ax.set_xlabel(f"time since the start of the run ({axis.unit})", fontsize=FONT)
    else:
        style.clock_axis(ax, axis.origin, axis.scale, end_time)
        ax.xaxis.label.set_size(FONT)
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


def firms_of(result: Result) -> dict[str, str]:
    """The server of each firm a scenario compares (its groups: the senders' domains, as
    the delays and load figures split them): the firm's users' outgoing and mailbox
    servers, and the MX of its domain. A server that several firms use (a resolver, a
    partner's MX) is nobody's, nor is a server a spam bot sends through (an open relay)."""
    groups = compared_groups(result.messages)
    found: dict[str, set[str]] = {}
    for address, user in result.scenario.users.items():
        domain = address.rsplit("@", 1)[-1].lower()
        own = domain in groups and not user.spam_bot  # a bot abuses a server, it has none
        for node in (user.smtp, user.mailbox) if own else ():
            if node:
                found.setdefault(node, set()).add(domain)
    for name, node in result.scenario.nodes.items():
        for domain in getattr(node, "domains", None) or []:
            if domain.lower() in groups:
                found.setdefault(name, set()).add(domain.lower())
    return {name: firm for name, (firm, *others) in found.items() if not others}


def _firm_words(result: Result, name: str, firm: str) -> str:
    """A row's firm: "ownco.example" for the firm's own server, "for cloudco.example"
    for a provider's that serves it."""
    host = (result.scenario.nodes[name].host or "").lower()
    return firm if host == firm or host.endswith("." + firm) else f"for {firm}"


def _compared(result: Result, rows: list[Row], tiny: float) -> dict[str, str]:
    """Servers that one server relayed to side by side (four colleges' MXs), when their
    sessions are too short to compare on the axis (under ``tiny`` seconds, a few pixels):
    each one's session length in words, and its TLS version."""
    hops = result.hops
    hops = hops[(~hops["duplicate"]) & (hops["protocol"] == "smtp")]
    hops = hops[hops["code"].astype(str).map(style.outcome_of) == "ok"]
    hops = hops.drop_duplicates(["dst", "session"])
    dense = {
        r.name for r in rows if len(r.held) > DENSE or any(len(v) > DENSE for v in r.ok.values())
    }
    peers = {str(d) for _, to in hops.groupby("src")["dst"] if to.nunique() >= 2 for d in to}
    peers &= {r.name for r in rows} - dense
    mine = hops[hops["dst"].isin(peers)]
    lengths = (mine["end"] - mine["start"]).groupby(mine["dst"]).median()
    if mine.empty or float(lengths.median()) >= tiny:
        return {}
    words = {}
    for name, part in mine.groupby("dst"):
        many = len(part) > 1
        versions = sorted({str(v) for v in part["tls"]})
        tls = ", ".join(f"TLS {v}" if v else "no TLS" for v in versions)
        words[str(name)] = (f"incoming SMTP session{'s' if many else ''}:"
                            f" {_seconds(float(lengths[name]))}{' each (median)' if many else ''},"
                            f" {tls}")  # fmt: skip
    return words


def _seconds(value: float) -> str:
    """A session's length in seconds, to the hundredth: 0.78 s and 0.87 s tell apart."""
    return f"{value:.2f} s" if value < 10 else f"{style.number(value)} s"


def _lengths(ax: Axes, row: Row, y: float, least: float, scale: float,
             words: str) -> labels_.Movable:  # fmt: skip
    """The words of ``_compared`` after the row's last session."""
    at = max(b / scale for spans in row.ok.values() for _, b in spans) + 2 * least
    text = ax.text(at, y - 0.08, f" {words}", fontsize=FONT, va="center", color="#000000",
                   zorder=3)  # fmt: skip
    spots = [(at, y - 0.08, "center", "left"), (at, y - 0.46, "top", "left"),
             (at, y + 0.46, "bottom", "left")]  # fmt: skip
    return labels_.Movable(text, spots)


def _handles(result: Result, rows: list[Row]) -> list[Patch]:
    """Legend entries for what the rows hold, and nothing else."""
    protocols = dict.fromkeys(p for r in rows for p, spans in r.ok.items() if spans)
    names = {"smtp": "SMTP session (submission, relay)", "lmtp": "LMTP (into the mailbox)",
             "pop3": "POP3 session", "imap": "IMAP session", "dns": "DNS look-up",
             "https": "HTTPS (webmail front end)"}  # fmt: skip
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
        handles.append(Patch(color=OUTAGE, label="a fault or a policy in force"))
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


def _busy(ax: Axes, row: Row, edges: np.ndarray, y: float, axis: Axis, colour: str,
          where: str) -> list[labels_.Movable]:  # fmt: skip
    """A busy server's row: sessions begun in each bin, stacked by protocol, and how many
    messages it held (and connections waited) from moment to moment, up to the row's own
    peak; each with its peak in words."""
    scale = axis.scale
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
    level = np.zeros(1)
    if row.held:
        times, level = _level(ax, row.held, (0.0, edges[-1]), y + 0.32,
                              0.1 if row.waiting else 0.2, colour, "held", scale)  # fmt: skip
        most = int(level.max())
        below.append(f"up to {most} message{'s' if most != 1 else ''} {where} at once"
                     f" ({axis.at(times[int(np.argmax(level))])})")  # fmt: skip
    if row.waiting:  # connections in the listen queue: the server's sessions all busy
        base = y + (0.21 if row.held else 0.32)
        times, level = _level(ax, row.waiting, (0.0, edges[-1]), base, 0.1, WAITING,
                              "waiting", scale)  # fmt: skip
        below.append(f"waiting for a free session: up to {int(level.max())}"
                     f" ({axis.at(times[int(np.argmax(level))])})")  # fmt: skip
    if below:
        notes.append(_words(ax, "; ".join(below), times / scale, level, y + 0.46, "bottom"))
    return notes


def _level(ax: Axes, spans: list[Span], run: Span, base: float, height: float, colour: str,
           gid: str, scale: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """How many of ``spans`` were open from moment to moment, filled up from ``base`` to
    ``height`` at their peak; a hairline at ``base`` all along: an empty queue is drawn
    as empty, not as missing; and the peak as a line of its own, seen however brief it
    was. Returns the moments and the counts from each on."""
    times, counts = _profile(spans)
    times, counts = np.concatenate([[run[0]], times]), np.concatenate([[0], counts])
    per_count = height / max(int(counts.max()), 1)
    ax.fill_between(times / scale, 0, counts, step="post", color=colour, lw=0,
                    gid=f"{gid}-level", zorder=2, transform=_band(ax, base, per_count))  # fmt: skip
    ax.plot([run[0] / scale, run[1] / scale], [0, 0], color=colour, lw=0.8, gid=f"{gid}-zero",
            zorder=2, transform=_band(ax, base, per_count))  # fmt: skip
    at = times[int(np.argmax(counts))] / scale
    ax.plot([at, at], [0, counts.max()], color=colour, lw=PEAK_PX * 72 / ax.figure.dpi,
            gid=f"{gid}-peak", zorder=2, transform=_band(ax, base, per_count))  # fmt: skip
    return times, counts


def _profile(spans: list[Span]) -> tuple[np.ndarray, np.ndarray]:
    """The moments the number of open spans changes, and that number from each on (a
    span ending as another begins is not counted twice)."""
    steps = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    times = np.array([t for t, _ in steps], dtype=float)
    counts = np.cumsum([d for _, d in steps])
    last = np.append(times[1:] != times[:-1], True)  # the count once a moment's steps are done
    return times[last], counts[last]


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


def _words(ax: Axes, text: str, x: np.ndarray, values: np.ndarray, y: float,
           va: str) -> labels_.Movable:  # fmt: skip
    """A peak in words, at the peak if there is room, else at either end."""
    at = float(x[int(np.argmax(values))])
    label = ax.text(at, y, text, fontsize=FONT, va=va, color="#000000", zorder=3)
    spots = [(at, y, va, "left"), (at, y, va, "right"), (x[0], y, va, "left"),
             (x[-1], y, va, "right")]  # fmt: skip
    return labels_.Movable(label, spots)


def _after(ax: Axes, row: Row, end: float, y: float, axis: Axis) -> list[labels_.Movable]:
    """The first session that worked after an outage or a full mailbox: why the message
    moved on then."""
    starts = sorted(a for spans in row.ok.values() for a, _ in spans if a >= end)
    if not starts:
        return []
    at = starts[0] / axis.scale
    text = ax.text(at, y + 0.46, f"first try once it was over: {axis.at(starts[0])} ", fontsize=FONT,
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
    readers = set(result.scenario.nodes_of("client"))
    for name, span in _held(hops[ok], result.end_time, readers, ended):
        if name in rows:
            rows[name].held.append(span)
    for name, span in waiting(result):
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
    ok: pd.DataFrame,
    last: float,
    readers: set[str],
    ended: dict[tuple[str, str], float] | None = None,
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
    columns = (ok["message"], ok["recipient"], ok["src"], ok["dst"], ok["end"])
    for message, recipient, src, dst, end in zip(*columns, strict=True):
        if (message, recipient) != journey:
            until = ended.get(journey, last) if journey is not None else last
            yield from ((name, (at, max(at, until))) for name, at in arrived.items())
            arrived, journey = {}, (message, recipient)
        if src in arrived:
            yield src, (arrived.pop(src), float(end))
        # A retrieval (POP3, IMAP, a web page's HTTPS) leaves no copy at a server.
        if str(dst) not in readers:
            arrived[str(dst)] = float(end)
    until = ended.get(journey, last) if journey is not None else last
    yield from ((name, (at, max(at, until))) for name, at in arrived.items())


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
