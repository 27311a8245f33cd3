"""A Gantt chart of many messages: for each (message, recipient), its hops as bars, and
the waits between them — queued, waiting to try again, waiting for the POP poll — and
within a hop, a connection waiting for a free session at a busy server; failed attempts
marked with their reply codes, worded as the route words them, a run of them on a
bracket with its retry schedule; relay hops too narrow to compare get a panel on their
own scale."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

from mailsim.plot import labels as labels_
from mailsim.plot import style
from mailsim.plot.route import gist
from mailsim.plot.waits import waiting
from mailsim.result import Result
from mailsim.traffic import seconds_into_day
from mailsim.units import format_duration

# Words in the failure colours, darkened to 4.5:1 or more on white (orange is 2.0:1).
TEXT = {"temporary": "#8A5A00", "permanent": "#A84300"}
MIN_PX = 3.5  # the narrowest hop drawn, in pixels
MILESTONE_ROWS = 3  # journeys this few say in words when they reached the mailbox and reader
WAITS = {
    "queued": ("#d9d9d9", ""),
    "retry": (style.OUTCOME["temporary"], "///"),
    "poll": (style.COST["poll"], ""),
}
FONT = 11  # 15 px on a 1280×720 page: readable from the back row
PAGE = (12.8, 7.2)  # inches at dpi 100: a projector's 1280×720
AXES_PX = 580  # about the axes' height on that page, between the title and the time axis
# A row's height in pixels: a bar and its name; with a reply code above the bar, room
# for that line of text too. Rows never get taller than ROOMY (a few messages).
ROW_PX = {False: 24.0, True: 48.0}
ROOMY = 80.0
HOUR = 3600.0
# A connection waiting in a busy server's listen queue: the SMTP hop's colour, pale (the
# server is not working on it yet), dotted so that it reads apart from the hatched wait
# to try again; the dots are the hop's blue.
SESSION_WAIT = ("#D4E6F3", "...")
# The relay hops get a panel of their own when the median one is drawn narrower than
# ZOOM_PX: a one-round-trip difference (about a tenth of a relay hop) is then a few
# pixels, too little to compare bar ends in different rows (tls-versions: 36 px).
ZOOM_PX = 60.0
ZOOM_MIN_RATIO = 1.05  # the longest relay hop at least 5 % longer than the shortest
ZOOM_SHARE_OF_JOURNEYS = 0.5  # the relay hops are what the rows show: half their length
ZOOM_MAX = 8  # relay hops in the panel, each a row with its label: more do not fit
ZOOM_SHARE = 0.42  # of the axes' height, at its bottom, for the panel


@dataclass
class Geometry:
    """Where a row's bars and words sit, in rows: the row's band is ``row ± 0.5``."""

    centre: float  # of the bars, from the row's middle (down is positive)
    hop: float  # a hop's bar height
    wait: float  # a wait's bar height


PLAIN = Geometry(0.0, 0.6, 0.3)
CODED = Geometry(0.13, 0.42, 0.2)  # the upper part of the band holds the reply codes


def timeline(result: Result, *, ax: Axes | None = None, limit: int | None = None) -> Axes:
    """Draw the copies' journeys against time on a 1280×720 page: all of them when they
    fit at a readable size, else as many as fit (or ``limit``), sent around the run's
    busiest moment."""
    own = ax is None
    if ax is None:
        _, ax = plt.subplots(figsize=PAGE, layout="constrained")
    hops = result.hops
    hops = hops[~hops["duplicate"]]
    failed = _failed(hops)
    copies, busiest = _sample(result, _fit(ax, False) if limit is None else limit)
    coded = any((c.message.id, c.recipient) in failed for c in copies)
    if coded and limit is None:
        copies, busiest = _sample(result, _fit(ax, True))
    shape = CODED if coded else PLAIN
    end_time = max(_shown_end(result, copies, hops), 1.0)
    start_time = min(c.submitted_at for c in copies) if busiest and copies else 0.0
    scale, unit = style.time_unit(end_time - start_time)
    tiny = (end_time - start_time) * 1.02 / 1000  # under a pixel wide: not drawn
    queued = list(waiting(result))
    # A hop down to a mail program is a retrieval (POP3, IMAP, a web page's HTTPS).
    readers = set(result.scenario.nodes_of("client"))
    labels = []
    drawn: set[str] = set()  # legend keys of what is on the axes
    attempts: dict[int, list[Attempt]] = {}
    relays: list = []  # the relay hops that worked, for a panel of their own
    journeys = 0.0  # the drawn journeys' lengths, added up
    for row, copy in enumerate(copies):
        y = row + shape.centre
        mine = hops[(hops["message"] == copy.message.id) & (hops["recipient"] == copy.recipient)]
        labels.append(f"{copy.message.id} → {copy.recipient}")
        previous_end = copy.submitted_at
        previous_failed = False
        for hop in mine.itertuples():
            if hop.start - previous_end > tiny:
                kind = "retry" if previous_failed else ("poll" if hop.dst in readers else "queued")
                colour, hatch = WAITS[kind]
                ax.barh(y, (hop.start - previous_end) / scale, left=previous_end / scale,
                        height=shape.wait, color=colour, hatch=hatch, edgecolor="white", lw=0,
                        gid=f"wait-{kind}")  # fmt: skip
                drawn.add(kind)
                if kind == "poll" and hop.protocol == "https":
                    drawn.add("page")  # a browser's page, refreshed
            outcome = style.outcome_of(str(hop.code))
            colour = (
                style.PROTOCOL.get(hop.protocol, "#333333")
                if outcome == "ok"
                else style.OUTCOME[outcome]
            )
            ax.barh(y, (hop.end - hop.start) / scale, left=hop.start / scale, height=shape.hop,
                    color=colour, gid="hop")  # fmt: skip
            drawn.add(hop.protocol if outcome == "ok" else outcome)
            for a, b in _session_wait(hop, queued):
                if b - a > tiny:
                    _session_bar(ax, y, (a / scale, b / scale), shape.hop)
                    drawn.add("session")
            if outcome != "ok":
                attempts.setdefault(row, []).append(
                    Attempt(hop.start, hop.end, _reply(hop), outcome, y - shape.hop / 2, hop.src)
                )
            elif hop.protocol == "smtp":
                relays.append(hop)
            previous_end = max(previous_end, hop.end)
            previous_failed = outcome != "ok"
        journeys += previous_end - copy.submitted_at
        if copy.status in ("refused", "bounced", "expired"):
            ax.text(previous_end / scale, y, f"  {copy.status}", va="center", fontsize=FONT,
                    color=TEXT["permanent"])  # fmt: skip
    ax.set_yticks([k + shape.centre for k in range(len(copies))], labels, fontsize=FONT)
    if busiest:  # a few minutes in the middle of a day: the clock says when
        few = end_time - start_time < 5 * 60  # seconds on the ticks of a short stretch
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _clock(result, x * scale, few)))
        ax.set_xlabel("time of day (the scenario's local time)", fontsize=FONT)
    else:
        ax.set_xlabel(f"time since the start of the run ({unit})", fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    left = start_time - (end_time - start_time) * 0.01 if busiest else 0.0
    ax.set_xlim(left / scale, end_time / scale + (end_time - start_time) * 0.02 / scale)
    legend = _legend("imap" in drawn, "page" in drawn)
    shown = [patch for key, patch in legend.items() if key in drawn]
    handles = list({patch.get_label(): patch for patch in shown}.values())  # SMTP once
    handles += _outages(ax, result, scale, unit, (left, end_time))
    page = ax.figure.get_size_inches()
    told = len(copies) <= MILESTONE_ROWS and busiest is None  # journeys said in words
    few = own and told
    if few:  # a few bars on a page of empty rows: as tall as they and the key need
        ax.figure.set_size_inches(PAGE[0], _few_height(len(copies), handles))
    _rows(ax, len(copies), 0.0)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=FONT,
              frameon=False)  # fmt: skip
    ax.set_title(f"Journeys of {_how_many(result, copies, busiest)} — scenario"
                 f" {result.scenario.name!r}", loc="left", fontsize=FONT + 1)  # fmt: skip
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    zoom = _zooms(ax, relays, journeys, scale)
    if zoom:
        if few:  # the relay panel needs the whole page
            ax.figure.set_size_inches(*page)
        _rows(ax, len(copies), ZOOM_SHARE)
    _codes(ax, attempts, scale, unit)
    widen(ax, [p for p in ax.patches if p.get_gid() == "hop"], chain=True)
    if told and not zoom:
        _milestones(ax, copies, scale, shape)
    if zoom:
        # The journeys' time axis above them: at the bottom it would read as the panel's.
        ax.xaxis.set_label_position("top")
        ax.xaxis.tick_top()
        _zoom(ax, relays, queued)
    return ax


def _few_height(rows: int, handles: list) -> float:
    """Inches of a page for ``rows`` journeys: a roomy row each, with room for their
    words, and for the key beside them (one line per entry, two for a long one)."""
    lines = sum(2 if "\n" in h.get_label() else 1 for h in handles)
    inside = max(rows * ROOMY * 1.25 + 50, lines * 23 + 10)  # pixels of the axes
    return min(PAGE[1], (inside + PAGE[1] * 100 - AXES_PX) / 100)


def _milestones(ax: Axes, copies: list, scale: float, shape: Geometry) -> None:
    """A few journeys say in words what their bars show: when the copy was in the
    mailbox and when it was read, counted from sending — accepted is not delivered is
    not read, and a second in the mailbox can be minutes before the reader has it."""
    renderer = labels_._renderer(ax.figure)
    for row, copy in enumerate(copies):
        if copy.delivered_at is None:
            continue
        y = row + shape.centre - shape.hop / 2 - 0.04  # just above the bars
        into = format_duration(copy.delivered_at - copy.submitted_at)
        words = [ax.text(copy.delivered_at / scale, y, f"in the mailbox {into} after sending",
                         ha="left", va="bottom", fontsize=FONT, gid="milestone")]  # fmt: skip
        if copy.retrieved_at is not None:
            read = format_duration(copy.retrieved_at - copy.submitted_at)
            end = ax.text(copy.retrieved_at / scale, y, f"read {read} after sending",
                          ha="right", va="bottom", fontsize=FONT, gid="milestone")  # fmt: skip
            first, second = (t.get_window_extent(renderer) for t in (words[0], end))
            if first.x1 + 8 > second.x0:  # too close to say apart: one label
                end.remove()
                words[0].set_text(f"in the mailbox {into}, read {read} after sending")
            else:
                words.append(end)
        frame = ax.get_window_extent(renderer)
        last = max(copy.delivered_at, copy.retrieved_at or 0.0) / scale
        for text in words:
            if text.get_window_extent(renderer).x1 > frame.x1 - 4:  # keep it inside
                text.set_position((last, y))
                text.set_horizontalalignment("right")
            if _crowded(ax, text, renderer):  # the reply codes are above: under the bar
                below = row + shape.centre + shape.hop / 2 + 0.04
                text.set_position((text.get_position()[0], below))
                text.set_verticalalignment("top")
            if _crowded(ax, text, renderer):
                text.remove()  # where the reply codes are: they say more


def _crowded(ax: Axes, text: Text, renderer: object) -> bool:
    """Does ``text`` stick out of the axes or cover another text (a reply code's label,
    another journey's words)?"""
    box, frame = text.get_window_extent(renderer), ax.get_window_extent(renderer)
    others = [t for t in ax.texts if t is not text]
    outside = box.x0 < frame.x0 or box.y0 < frame.y0 or box.y1 > frame.y1
    return outside or any(box.overlaps(t.get_window_extent(renderer)) for t in others)


@dataclass
class Attempt:
    """A failed attempt as its row's reply-code label needs it."""

    start: float  # seconds
    end: float
    words: str  # its reply code and what it says: "450 greylisted"
    outcome: str  # temporary / permanent
    top: float  # its bar's top edge, in rows
    sender: str = ""  # the server that tried: its own retries make a run


def _reply(hop: object) -> str:
    """A failed attempt's reply code and its gist, worded as the route figure words it
    ("450 greylisted", "4.4.1 connection refused": no server replied, so the sender's
    own enhanced status is all there is)."""
    return f"{hop.code} {gist(str(hop.outcome))}".rstrip()  # type: ignore[attr-defined]


def _rows(ax: Axes, count: int, below: float) -> None:
    """The rows' vertical extent: a few messages get rows of a bar's height in the
    middle; with ``below``, that share of the axes' height at its bottom is left free
    (for the relay panel)."""
    total = max(float(count), _fit_rows(ax, ROOMY), count / (1.0 - below))
    top = (total * (1.0 - below) - count) / 2
    ax.set_ylim(count - 0.5 + (total - count - top), -0.5 - top)


def _session_wait(
    hop: object, queued: list[tuple[str, tuple[float, float]]]
) -> list[tuple[float, float]]:
    """The stretch of ``hop`` in which its connection waited for a free session at the
    server it reached (every session busy): the wait lies within the hop."""
    return [
        span
        for node, span in queued
        if node == hop.dst and hop.start <= span[0] and span[1] <= hop.end + 1e-9  # type: ignore[attr-defined]
    ]


def _session_bar(ax: Axes, y: float, span: tuple[float, float], height: float) -> None:
    """A connection waiting for a free session, over its hop's bar: pale and dotted, so
    that the rest of the bar is the server's work (a scan at the end of DATA)."""
    face, hatch = SESSION_WAIT
    ax.barh(y, span[1] - span[0], left=span[0], height=height, facecolor=face, hatch=hatch,
            edgecolor=style.PROTOCOL["smtp"], lw=0, zorder=2.2, gid="wait-session")  # fmt: skip


def _failed(hops: pd.DataFrame) -> set[tuple[str, str]]:
    """The copies with a failed attempt: their rows carry a reply code."""
    bad = [style.outcome_of(str(c)) != "ok" for c in hops["code"]]
    return set(zip(hops["message"][bad], hops["recipient"][bad], strict=True))


def _fit_rows(ax: Axes, row_px: float) -> float:
    """How many rows of ``row_px`` pixels the axes hold (on a page of another height, in
    proportion)."""
    height = ax.figure.get_size_inches()[1] * ax.figure.dpi
    return (AXES_PX + (height - PAGE[1] * 100)) / row_px


def _fit(ax: Axes, coded: bool) -> int:
    return max(1, int(_fit_rows(ax, ROW_PX[coded])))


def _sample(result: Result, limit: int) -> tuple[list, tuple[float, float] | None]:
    """All copies when they fit; else ``limit`` copies sent one after another in the
    busiest stretch: the shortest run of ``limit`` sends within the hour (of the run)
    in which most were sent. Returns them in order of sending, and their send times."""
    copies = result.copies
    if len(copies) <= limit:
        return list(copies), None
    ordered = sorted(copies, key=lambda c: c.submitted_at)
    times = np.array([c.submitted_at for c in ordered])
    hours = np.bincount((times // HOUR).astype(int))
    busiest = int(np.argmax(hours))
    inside = np.flatnonzero((times // HOUR).astype(int) == busiest)
    if len(inside) < limit:  # a short run, or a quiet one: around that hour's middle
        middle = int(inside[len(inside) // 2])
        first = min(max(0, middle - limit // 2), len(ordered) - limit)
    else:
        span = times[inside[limit - 1 :]] - times[inside[: len(inside) - limit + 1]]
        first = int(inside[int(np.argmin(span))])
    chosen = ordered[first : first + limit]
    return chosen, (chosen[0].submitted_at, chosen[-1].submitted_at)


def _shown_end(result: Result, copies: list, hops: pd.DataFrame) -> float:
    """Where the drawn journeys end: a sample of the first messages of a day is drawn on
    its own minutes, not on the whole day's axis; a copy still on its way runs to the end."""
    if any(c.status == "in_flight" for c in copies):
        return result.end_time
    shown = {(c.message.id, c.recipient) for c in copies}
    mine = hops[[key in shown for key in zip(hops["message"], hops["recipient"], strict=True)]]
    ends = [*mine["end"], *(c.submitted_at for c in copies)]
    return float(max(ends)) if ends else result.end_time


def _how_many(result: Result, copies: list, busiest: tuple[float, float] | None) -> str:
    """The title's count: a sample says of how many, and which ("25 of 17,004 messages,
    sent 10:58–11:02, the busiest minutes")."""
    total = len(result.copies)
    shown = len(copies)
    noun = "messages" if total == len({c.message.id for c in result.copies}) else "message copies"
    if shown < total:
        words = f"{shown} of {total:,} {noun}"
        if busiest is not None:
            first, last = busiest
            seconds = last - first < 120 or result.end_time < 600
            words += f", sent {_clock(result, first, seconds)}–{_clock(result, last, seconds)}"
            words += ", the busiest seconds" if last - first < 120 else ", the busiest minutes"
        return words
    if total == 1:
        return "1 message copy" if noun == "message copies" else "1 message"
    return f"{total} {noun}"


def _clock(result: Result, at: float, seconds: bool) -> str:
    """A moment of the run as the scenario's local time of day: 10:58 (10:58:07 with
    ``seconds``)."""
    moment = round(seconds_into_day(result.scenario.start) + at) % 86400
    hours, rest = divmod(moment, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if seconds else "")


def _legend(imap: bool = False, page: bool = False) -> dict[str, Patch]:
    """Every entry the timeline may need, by the key its bars record when drawn; the wait
    before a retrieval is POP's poll, or, with ``imap``, any reader's; with ``page``, a
    browser's page too."""
    waited = (
        "waiting for the poll\n(POP3, IMAP) or the push" if imap else "waiting for the POP poll"
    )
    if page:
        waited = (
            "waiting for the poll, the push\nor the page to refresh"
            if imap
            else "waiting for the POP poll\nor the page to refresh"
        )
    return {
        "submission": Patch(color=style.PROTOCOL["smtp"], label="SMTP hop (submission, relay)"),
        "smtp": Patch(color=style.PROTOCOL["smtp"], label="SMTP hop (submission, relay)"),
        "lmtp": Patch(color=style.PROTOCOL["lmtp"], label="LMTP hop (into the mailbox)"),
        "pop3": Patch(color=style.PROTOCOL["pop3"], label="POP3 hop (retrieval)"),
        "imap": Patch(color=style.PROTOCOL["imap"], label="IMAP hop (retrieval)"),
        "https": Patch(color=style.PROTOCOL["https"], label="HTTPS hop (webmail)"),
        "queued": Patch(color=WAITS["queued"][0], label="queued"),
        "retry": Patch(
            facecolor=WAITS["retry"][0],
            hatch="///",
            edgecolor="white",
            lw=0,
            label="waiting to try again",
        ),  # drawn as the bars are
        "poll": Patch(color=WAITS["poll"][0], label=waited),
        "session": Patch(
            facecolor=SESSION_WAIT[0],
            hatch=SESSION_WAIT[1],
            edgecolor=style.PROTOCOL["smtp"],
            lw=0,
            label="waiting for a free session\n(all the server's sessions busy)",
        ),
        "temporary": Patch(color=style.OUTCOME["temporary"], label="failed attempt (4xx, timeout)"),
        "permanent": Patch(color=style.OUTCOME["permanent"], label="refused (5xx)"),
    }


def widen(ax: Axes, bars: list[Rectangle], chain: bool = False) -> None:
    """Bars narrower than MIN_PX pixels on the drawn axes get that width: a 13 ms hop on
    a 3-hour axis is still a mark the class can see. With ``chain``, a bar that a widened
    bar before it in its row would cover starts where that one now ends: a 57 ms
    submission and a 13 ms LMTP hop a second apart on a half-hour axis are two marks side
    by side, not one over the other."""
    ax.figure.draw_without_rendering()  # the layout engine has placed the axes now
    (x0, _), (x1, _) = ax.transData.transform([(0.0, 0.0), (1.0, 0.0)])
    least = MIN_PX / max(abs(x1 - x0), 1e-12)
    ends: dict[float, float] = {}  # a row's centre → where its last widened bar ends
    for bar in sorted(bars, key=lambda b: (b.get_y(), b.get_x())) if chain else bars:
        row = round(bar.get_y() + bar.get_height() / 2, 6)
        if chain and bar.get_x() < ends.get(row, -math.inf):
            bar.set_x(ends[row])
        if bar.get_width() < least:
            bar.set_width(least)
            bar.set_zorder(bar.get_zorder() + 0.5)  # over the wider neighbour it now touches
            ends[row] = bar.get_x() + least


def _codes(ax: Axes, attempts: dict[int, list[Attempt]], scale: float, unit: str) -> None:
    """Reply codes above their failed attempts. Attempts one after another with the same
    reply share a label, centred over them on a bracket whose ticks mark each attempt at
    its time, and saying when they came ("×5, again after 9.8, 10, 20, 40 min": the
    sender's retry schedule); a label that finds no free place joins the run before it."""
    ax.figure.draw_without_rendering()  # the layout engine has placed the axes now
    renderer = labels_._renderer(ax.figure)
    frame = ax.get_window_extent(renderer)
    taken: list[tuple[float, ...]] = []
    for row_attempts in attempts.values():
        placed: list[tuple[list[Attempt], Text, tuple[float, ...]]] = []
        for run in _runs(row_attempts):
            while True:
                text = _label(ax, run, scale, unit)
                box = _put(text, run, scale, renderer, frame, taken + [b for *_, b in placed])
                if box is not None or not placed:
                    break
                text.remove()  # no room: this run joins the one before it
                before, old, _ = placed.pop()
                old.remove()
                run = before + run
            placed.append((run, text, box or tuple(labels_._box(text, renderer).extents)))
        for run, text, box in placed:
            taken.append(box)
            if len(run) > 1:
                _bracket(ax, run, text, scale)


def _runs(row: list[Attempt]) -> list[list[Attempt]]:
    """A row's failed attempts in runs: one after another with the same reply, by the
    same server (its retry schedule; a backup MX's own tries are a run of their own)."""
    runs: list[list[Attempt]] = []
    for attempt in row:
        last = runs[-1][-1] if runs else None
        if last is not None and (last.words, last.sender) == (attempt.words, attempt.sender):
            runs[-1].append(attempt)
        else:
            runs.append([attempt])
    return runs


def _label(ax: Axes, run: list[Attempt], scale: float, unit: str) -> Text:
    """A run's label: its reply, and for several attempts how many and when."""
    first = run[0]
    words = first.words
    if len(run) > 1:
        words = words if all(a.words == words for a in run) else f"{words} and others"
        words += f" ×{len(run)}"
        counts = [(s, len(list(g))) for s, g in itertools.groupby(a.sender for a in run)]
        if len(counts) > 1:  # joined for want of room: whose tries (the ticks say when)
            words += ": " + ", then ".join(f"{s} {_times(n)}" for s, n in counts)
        else:
            words += f", {_schedule([a.start for a in run], scale, unit)}"
    return ax.text(first.start / scale, first.top - 0.03, words, fontsize=FONT,
                   color=TEXT[first.outcome], ha="left", va="bottom", gid="code")  # fmt: skip


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _schedule(starts: list[float], scale: float, unit: str) -> str:
    """The gaps between attempts in the axis's unit: "every 30 min" when two or more
    are equal, else "again after 9.8, 10, 20, 40 min"; a gap under a tenth of the unit in
    seconds, each number then with its unit ("again after 1 s, 6.8 min, 10 min")."""
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    words = [style.number(g / scale) if g / scale >= 0.1 else f"{g:.0f} s" for g in gaps]
    if len(words) > 1 and len(set(words)) == 1 and not words[0].endswith(" s"):
        return f"every {words[0]} {unit}"
    if any(w.endswith(" s") for w in words):  # two units: each number says its own
        words = [w if w.endswith(" s") else f"{w} {unit}" for w in words]
        return "again after " + ", ".join(words)
    return "again after " + ", ".join(words) + f" {unit}"


def _put(
    text: Text,
    run: list[Attempt],
    scale: float,
    renderer: object,
    frame: object,
    taken: list[tuple[float, ...]],
) -> tuple[float, ...] | None:
    """Put a run's label centred over its attempts (a single one's: from its start),
    else from the first, else ending at the last: the first place inside the axes that
    covers no label in ``taken``."""
    first, last = run[0].start / scale, run[-1].end / scale
    spots = [(first, "left"), (last, "right")]
    if len(run) > 1:
        spots.insert(0, ((first + last) / 2, "center"))
    for x, ha in spots:
        text.set_x(x)
        text.set_horizontalalignment(ha)
        box = labels_._box(text, renderer)
        edges = tuple(box.extents)
        if labels_._inside(box, frame) and not any(labels_._overlap(edges, o) for o in taken):
            return edges
    text.set_x(first)
    text.set_horizontalalignment("left")
    return None


def _bracket(ax: Axes, run: list[Attempt], text: Text, scale: float) -> None:
    """A line under a counted label from its run's first attempt to its last, with a
    tick down to the bar at each attempt's time: the schedule, readable on the axis."""
    top = run[0].top
    y = top - 0.015
    xs = [a.start / scale for a in run]
    colour = text.get_color()
    ax.add_line(Line2D([xs[0], run[-1].end / scale], [y, y], color=colour, lw=1.2,
                       gid="retry-bracket"))  # fmt: skip
    ticks_x = [v for x in xs for v in (x, x, np.nan)]
    ticks_y = [v for _ in xs for v in (y, top + 0.12, np.nan)]
    ax.add_line(Line2D(ticks_x, ticks_y, color=colour, lw=1.5, gid="attempt"))


def _zooms(ax: Axes, relays: list, journeys: float, scale: float) -> bool:
    """Whether the relay hops need a panel of their own: a few of them, of lengths
    that differ, most of the journeys drawn (not a moment in a long wait for the POP
    poll or a retry), and drawn so narrow that the difference is lost (see ZOOM_PX)."""
    if not 2 <= len(relays) <= ZOOM_MAX:
        return False
    lengths = np.array([hop.end - hop.start for hop in relays])
    if (
        lengths.max() < lengths.min() * ZOOM_MIN_RATIO
        or lengths.sum() < journeys * ZOOM_SHARE_OF_JOURNEYS
    ):
        return False
    ax.figure.draw_without_rendering()
    x0, x1 = ax.get_xlim()
    per_second = ax.get_window_extent().width / ((x1 - x0) * scale)
    return float(np.median(lengths)) * per_second < ZOOM_PX


def _zoom(ax: Axes, relays: list, queued: list[tuple[str, tuple[float, float]]]) -> Axes:
    """The relay hops on their own scale, in the free bottom of the axes: each from its
    start, in milliseconds, with its length and whether it was encrypted (tls-versions:
    TLS 1.3's one round trip against TLS 1.2's two, and no TLS at all)."""
    ground = Rectangle((0, 0), 1, ZOOM_SHARE, transform=ax.transAxes, facecolor="white",
                       edgecolor="#999999", lw=0.8, zorder=2.5, gid="zoom-ground")  # fmt: skip
    ax.add_patch(ground)
    panel = ax.inset_axes((0.34, 0.13, 0.63, ZOOM_SHARE - 0.21), zorder=3)
    panel.set_gid("zoom")
    longest = max(hop.end - hop.start for hop in relays) * 1e3
    for row, hop in enumerate(relays):
        length = (hop.end - hop.start) * 1e3
        panel.barh(row, length, left=0.0, height=0.6, color=style.PROTOCOL["smtp"],
                   gid="zoom-hop")  # fmt: skip
        for a, b in _session_wait(hop, queued):
            _session_bar(panel, row, ((a - hop.start) * 1e3, (b - hop.start) * 1e3), 0.6)
        tls = f"TLS {hop.tls}" if hop.tls else "plaintext"
        panel.text(length + longest * 0.02, row, f"{length:.0f} ms · {tls}", va="center",
                   fontsize=FONT, gid="zoom-length")  # fmt: skip
    panel.set_yticks(range(len(relays)), [f"{hop.src} → {hop.dst}" for hop in relays],
                     fontsize=FONT)  # fmt: skip
    panel.set_ylim(len(relays) - 0.4, -0.6)
    _room(panel, longest)
    panel.tick_params(labelsize=FONT)
    panel.set_xlabel("ms from the start of each relay hop", fontsize=FONT)
    panel.set_title("the relay hops on their own scale", loc="left", fontsize=FONT)
    panel.grid(axis="x", color="#eeeeee")
    panel.set_axisbelow(True)
    return panel


def _room(panel: Axes, longest: float) -> None:
    """The panel's axis long enough for the longest bar and its words after it."""
    panel.figure.draw_without_rendering()
    renderer = labels_._renderer(panel.figure)
    words = max(t.get_window_extent(renderer).width for t in panel.texts) + 2 * labels_.PAD
    width = panel.get_window_extent(renderer).width
    panel.set_xlim(0.0, longest * 1.02 * width / max(width - words, width * 0.2))


def _outages(
    ax: Axes, result: Result, scale: float, unit: str, shown: tuple[float, float]
) -> list[Patch]:
    """The windows when a server was down, crashed, hung or not answering (or a man in
    the middle sat on a link), shaded behind every row, each named in the key: why the
    waits to try again end where they do (mx-down: back at 120 min, delivered at 150)."""
    from mailsim.plot.servers import HINDERED, OUTAGE, outages

    handles = []
    for name, (a, b), words in outages(result, links=True):
        if words.startswith(HINDERED) or b <= shown[0] or a >= shown[1]:
            continue
        # Half as strong as on the servers figure: the codes' words stay ≥ 4.5:1 on it.
        ax.axvspan(a / scale, b / scale, color=OUTAGE, alpha=0.5, lw=0, zorder=0, gid="outage")
        span = style.window(a, b, scale, unit)
        what = f"{words} on {name}" if words == "man in the middle" else f"{name} {words}"
        handles.append(Patch(color=OUTAGE, alpha=0.5, label=f"{what}\n{span}"))
    return handles
