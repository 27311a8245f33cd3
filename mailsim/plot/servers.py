"""A timeline per server: one row for each MTA, POP server and resolver, with its sessions
as bars, the messages it holds in its queue, and the windows in which the scenario's
faults had it down — so that a class sees *where* a message waited and *why* it moved
on when it did (the first retry after an outage)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from mailsim.model import CrashFault, DownFault, HangFault, OverloadFault, ResolverDownFault
from mailsim.plot import labels as labels_
from mailsim.plot import style
from mailsim.result import Result

ROLES = {"smtp": "MTA", "pop": "POP3 server", "dns": "resolver"}
MIN_PX = 3.5  # the narrowest bar drawn, in pixels: a 13 ms session on a 3-hour axis stays visible
OUTAGE = "#F4C7AE"  # a pale vermillion: the server could not do its work
QUEUE = style.OKABE_ITO["grey"]
MAILBOX = style.COST["poll"]
FONT = 11  # 15 px on a 1280×720 page: readable from the back row
WORDS = {  # what each fault kind did, in the band's words
    "down": "down",
    "crash": "crashed",
    "hang": "hung",
    "overload": "overloaded",
    "resolver-down": "not answering",
}
Span = tuple[float, float]


@dataclass
class Row:
    """What one server's row shows, in seconds."""

    name: str
    ok: dict[str, list[Span]]  # protocol → sessions that worked
    failed: list[Span]
    held: list[Span]  # in its queue (an MTA) or in a mailbox (a POP server)
    outages: list[tuple[Span, str]]  # (window, words)


def servers(result: Result, *, ax: Axes | None = None) -> Axes:
    """Draw every server's sessions, queue and outages against time."""
    rows = _rows(result)
    if ax is None:
        _, ax = plt.subplots(figsize=(12.8, max(3.6, 0.9 * len(rows) + 2.2)), layout="constrained")
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
            text = ax.text(a / scale, y - 0.46, f" {words} {_span(a, b, scale, unit)}",
                           fontsize=FONT, va="top", color="#000000", zorder=3)  # fmt: skip
            notes.append(labels_.Movable(text, [(a / scale, y - 0.46, "top", "left"),
                                                (b / scale, y - 0.46, "top", "right")]))  # fmt: skip
            notes += _after(ax, row, b, y, scale, unit)
        _draw(ax, row.held, y + 0.22, 0.2, MAILBOX if _is_pop(result, row) else QUEUE,
              "mailbox" if _is_pop(result, row) else "queue", least, scale)  # fmt: skip
        for protocol, spans in row.ok.items():
            _draw(ax, spans, y - 0.08, 0.4, style.PROTOCOL.get(protocol, "#333333"), "session",
                  least, scale)  # fmt: skip
        _draw(ax, row.failed, y - 0.08, 0.4, style.OUTCOME["temporary"], "session-failed",
              least, scale)  # fmt: skip
    labels_.place(ax, notes)
    return ax


def _frame(ax: Axes, result: Result, rows: list[Row], right: float, unit: str) -> None:
    """Everything but the bars: ticks, limits, legend, title (they fix the layout)."""
    names = [f"{r.name} ({ROLES[result.scenario.nodes[r.name].role]})" for r in rows]
    ax.set_yticks(range(len(rows)), names, fontsize=FONT)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, right * 1.02)
    ax.set_xlabel(f"time since the start of the run ({unit})", fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    ax.legend(handles=_handles(result, rows), loc="upper left", bbox_to_anchor=(1.0, 1.0),
              fontsize=FONT, frameon=False)  # fmt: skip
    ax.set_title(f"What each server did — scenario {result.scenario.name!r}", loc="left",
                 fontsize=FONT + 1)  # fmt: skip


def _handles(result: Result, rows: list[Row]) -> list[Patch]:
    """Legend entries for what the rows hold, and nothing else."""
    protocols = dict.fromkeys(p for r in rows for p, spans in r.ok.items() if spans)
    names = {"smtp": "SMTP session (submission, relay)", "lmtp": "LMTP (into the mailbox)",
             "pop3": "POP3 session", "dns": "DNS look-up"}  # fmt: skip
    handles = [Patch(color=style.PROTOCOL.get(p, "#333333"), label=names.get(p, p))
               for p in protocols]  # fmt: skip
    if any(r.failed for r in rows):
        handles.append(Patch(color=style.OUTCOME["temporary"], label="failed session"))
    if any(r.held and not _is_pop(result, r) for r in rows):
        handles.append(Patch(color=QUEUE, label="message in the queue"))
    if any(r.held and _is_pop(result, r) for r in rows):
        handles.append(Patch(color=MAILBOX, label="message in the mailbox"))
    if any(r.outages for r in rows):
        handles.append(Patch(color=OUTAGE, label="server out (a fault)"))
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


def _after(
    ax: Axes, row: Row, end: float, y: float, scale: float, unit: str
) -> list[labels_.Movable]:
    """The first session that worked after an outage: why the message moved on then."""
    starts = sorted(a for spans in row.ok.values() for a, _ in spans if a >= end)
    if not starts:
        return []
    at = starts[0] / scale
    text = ax.text(at, y + 0.46, f"first try after the outage: {_number(at)} {unit} ", fontsize=FONT,
                   ha="right", va="bottom", color="#000000", zorder=3)  # fmt: skip
    return [
        labels_.Movable(text, [(at, y + 0.46, "bottom", "right"), (at, y + 0.46, "bottom", "left")])
    ]


def _span(a: float, b: float, scale: float, unit: str) -> str:
    """A window in the axis's unit, as precise as its edges (a crash at 10.9 s)."""
    return f"{_number(a / scale)}–{_number(b / scale)} {unit}"


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _is_pop(result: Result, row: Row) -> bool:
    return result.scenario.nodes[row.name].role == "pop"


def _rows(result: Result) -> list[Row]:
    """One row per server, in the scenario's order."""
    nodes = result.scenario.nodes
    rows = {n: Row(n, {}, [], [], []) for n, node in nodes.items() if node.role in ROLES}
    hops = result.hops
    hops = hops[~hops["duplicate"]]
    ok = [style.outcome_of(str(c)) == "ok" for c in hops["code"]]
    columns = (hops["src"], hops["dst"], hops["protocol"], hops["start"], hops["end"], ok)
    for src, dst, protocol, start, end, worked in zip(*columns, strict=True):
        protocol = "smtp" if protocol == "submission" else protocol  # one colour
        for name in {src, dst}:
            if name in rows:
                row = rows[name]
                target = row.ok.setdefault(protocol, []) if worked else row.failed
                target.append((float(start), float(end)))
    for name, span, failed in _lookups(result):
        if name in rows:
            (rows[name].failed if failed else rows[name].ok.setdefault("dns", [])).append(span)
    for name, span in _held(hops[ok], result.end_time):
        if name in rows:
            rows[name].held.append(span)
    for name, window, words in _outages(result):
        if name in rows:
            rows[name].outages.append((window, words))
    for row in rows.values():
        row.held = list(_merged(row.held))
    return [r for r in rows.values() if r.ok or r.failed or r.held or r.outages]


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


def _held(ok: pd.DataFrame, last: float) -> Iterator[tuple[str, Span]]:
    """Each copy's stay at each server, from the hops that worked: from the end of the
    hop that brought it (the server holds it) to the end of the hop that passed it on,
    or to its retrieval from a mailbox; a copy never passed on stays to ``last``."""
    ok = ok.sort_values(["message", "recipient", "index"])
    arrived: dict[str, float] = {}
    journey = None
    columns = (ok["message"], ok["recipient"], ok["src"], ok["dst"], ok["protocol"], ok["end"])
    for message, recipient, src, dst, protocol, end in zip(*columns, strict=True):
        if (message, recipient) != journey:
            yield from ((name, (at, last)) for name, at in arrived.items())
            arrived, journey = {}, (message, recipient)
        if src in arrived:
            yield src, (arrived.pop(src), float(end))
        if protocol != "pop3":
            arrived[str(dst)] = float(end)
    yield from ((name, (at, last)) for name, at in arrived.items())


def _outages(result: Result) -> Iterator[tuple[str, Span, str]]:
    """The faults that put a server out of work, as windows within the run."""
    for fault in result.scenario.faults:
        if isinstance(fault, CrashFault):
            yield fault.node, (fault.at, fault.at + fault.restart), WORDS["crash"]
        elif isinstance(fault, DownFault | HangFault | OverloadFault | ResolverDownFault):
            end = fault.end if fault.end is not None else result.end_time
            yield fault.node, (fault.start, end), WORDS[fault.kind]


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
