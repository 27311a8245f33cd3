"""The ladder (sequence) diagram of one message: a lane per node, time running down, an
arrow per exchange from its sending to its arrival, labelled with the command or reply.

Mail spans milliseconds inside a session and minutes to days between sessions, so the
time axis is nonlinear, in the spirit of OMNeT++'s sequence chart: between consecutive
moments the drawn distance grows with the logarithm of the real interval (so a longer
transit is always a steeper arrow), and a wait longer than ``cut`` seconds is cut out and
labelled, e.g. "⋯ 4 min 49 s waiting for the POP poll ⋯". A shorter pause of at least
:data:`PAUSE` (a server's 2 s content scan) is drawn to scale and labelled as well.

For a projector the ladder is cut into 1280×720 pages (:func:`pages`) on one time scale:
every page spans the same drawn height and keeps each lifeline at the same x, a page ends
early at a cut wait once it is filled to :data:`FILL` (or a few rows early so that the
next one is filled), and each wait, or pause a page break falls in, is drawn once, at the
top of the page it leads into.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from mailsim.plot import labels, style
from mailsim.result import Result
from mailsim.units import format_duration

TAU = 0.001  # seconds: intervals are drawn as log(1 + Δt / TAU)
MIN_STEP = 0.8  # drawn units between two moments at least (room for a label)
GAP = 2.5  # drawn units of a cut wait
UNIT_INCHES = 0.3
PAGE_UNITS = 21.0  # drawn units a 1280×720 page shows below the lane names
PAGE_FRAME = (0.125, 0.01, 0.71, 0.89)  # left, bottom, width, height of a page's axes
FILL = 0.6  # a page may end early (at a cut wait) once this share of it is used
PAUSE = 0.5  # seconds: a page that starts after a pause this long says so at its top
PAUSE_ROOM = 1.6  # drawn units of that band (taken from the pause's own drawn length)
FONT = 11.0  # points: 15.3 px at 100 dpi, read from the back of a classroom
SMALL = 10.5  # points: 14.6 px, the least any word on a page gets (ticks, legend)
EMBEDDED = 10.5  # points: 14.6 px, in a panel of another 1280×720 figure (the step viewer)
LINE = 0.6  # drawn units of a second line of a label
HEADER = 1.3  # drawn units above the first moment for the lane names
MIN_CONTRAST = 4.5  # WCAG AA for normal text, against the white page
ENCRYPTED = "#dcefe6"  # a pale green band: the part of a session after the TLS handshake
WAIT = "#eeeeee"  # the grey band of a cut wait
# DNS asks over UDP, one datagram each way and no connection: dashed, which also tells
# its sky blue, darkened to be read on white, from SMTP's blue.
DASHED = {"dns": (0, (4, 2))}
KEY = {"pop3": "POP3", "imap": "IMAP", "dns": "DNS (UDP)", "https": "HTTP (inside TLS)"}
FLIGHTS = 3  # a message in more flights (its window doubling on) is drawn as one arrow
MUTED = "#555555"  # the words of a cut wait and of a note (7.5:1 on white)


def luminance(colour: str | tuple[float, ...]) -> float:
    """WCAG 2 relative luminance of a matplotlib colour."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in to_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(colour: str | tuple[float, ...], background: str = "white") -> float:
    """WCAG 2 contrast ratio of ``colour`` on ``background``, from 1 to 21."""
    a, b = sorted((luminance(colour), luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def ink(colour: str) -> str:
    """The palette colour darkened (same hue and saturation: RGB scaled towards black)
    until words in it have a contrast of at least 4.5:1 on white; the Okabe–Ito sky,
    orange and purple are too light for text as they are."""
    r, g, b = to_rgb(colour)
    factor = 1.0
    while contrast((r * factor, g * factor, b * factor)) < MIN_CONTRAST + 0.05:
        factor -= 0.02
    return "#{:02x}{:02x}{:02x}".format(*(round(c * factor * 255) for c in (r, g, b)))


def exchanges(result: Result, message: str) -> pd.DataFrame:
    """The message's protocol steps, one row per arrow: commands sent together (a
    pipelined group) share an arrow and a label. Of a POP3 session that fetched many
    messages only this one's RETR and DELE stay (see :func:`own_fetches`)."""
    events = result.message_events(message)
    rows = []
    for (time, arrive, src, dst, protocol), group in events.groupby(
        ["time", "arrive", "src", "dst", "protocol"], sort=False, observed=True
    ):
        details = [str(d) for d in group["detail"]]
        rows.append(
            {
                "time": time, "arrive": arrive, "src": src, "dst": dst, "protocol": protocol,
                "step": str(group["step"].iloc[0]), "code": str(group["code"].iloc[0]),
                "label": " · ".join(details),
                "steps": tuple(str(x) for x in group["step"]),
                "codes": tuple(str(x) for x in group["code"]),
                "session": int(group["session"].iloc[0]),
            }
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame = frame.sort_values(["time", "arrive"], kind="stable", ignore_index=True)
    return own_fetches(result, message, in_the_clear(stripped(result, frame)))


SECRET_STEPS = ("AUTH", "PASS", "USER", "APOP", "LOGIN", "AUTHENTICATE")  # carry a login


def in_the_clear(rows: pd.DataFrame) -> pd.DataFrame:
    """A login sent outside TLS says so on a line of its own: masked here like every
    password, it still crossed every link readable (free-vs-paid: eve reads alice's)."""
    done: dict[int, float] = {}  # session → when its TLS handshake ended
    tls = rows[rows["protocol"] == "tls"]
    for session, steps in tls.groupby("session", sort=False):
        if steps["step"].str.startswith("ServerHello").any():
            done[int(session)] = float(steps["arrive"].max())
    rows = rows.copy()
    for k, row in rows.iterrows():
        first = str(row["steps"][0]) if len(row["steps"]) else str(row["step"])
        if first.split(" ")[0] not in SECRET_STEPS:
            continue
        if float(row["time"]) < done.get(int(row["session"]), float("inf")):
            rows.at[k, "label"] = f"{row['label']}\n⚠ sent in the clear: readable on every link"
    return rows


def stripped(result: Result, rows: pd.DataFrame) -> pd.DataFrame:
    """An EHLO reply a man in the middle took STARTTLS out of says so on a line of its
    own, "✖ a man in the middle on r-school–r-home removed STARTTLS": what a class must see is a
    word that is missing."""
    from mailsim.faults import Faults
    from mailsim.network import NoRoute, Topology
    from mailsim.scenario import StripStarttlsFault

    faults = [f for f in result.scenario.faults if isinstance(f, StripStarttlsFault)]
    if not faults or rows.empty:
        return rows
    network = Topology(result.scenario, result.seed, Faults(result.scenario))
    rows = rows.copy()
    for _, group in rows.groupby("session", sort=False):
        encrypted = False  # after a handshake the server offers STARTTLS no more
        for before, k in pairwise(group.index):
            encrypted = encrypted or rows.at[before, "protocol"] == "tls"
            server, client, t = rows.at[k, "src"], rows.at[k, "dst"], float(rows.at[k, "time"])
            if (
                encrypted
                or rows.at[before, "step"] != "EHLO"
                or rows.at[before, "src"] != client
                or str(rows.at[k, "code"]) != "250"
                or "STARTTLS" in str(rows.at[k, "label"]).upper().split()
                or getattr(result.scenario.nodes[server], "tls", "none") == "none"
            ):
                continue
            try:
                links = {
                    frozenset(pair) for pair in pairwise(network.path(server, client, t).nodes)
                }
            except NoRoute:
                continue
            for fault in faults:
                if fault.active(t) and frozenset(fault.between) in links:
                    a, b = fault.between
                    rows.at[k, "label"] += f"\n✖ a man in the middle on {a}–{b} removed STARTTLS"
                    break
    return rows


COLUMNS = ["time", "arrive", "src", "dst", "protocol", "step", "code", "label", "steps",
           "codes", "session"]  # fmt: skip


@dataclass(frozen=True)
class Flight:
    """One flight of a message that TCP's slow start sends in several: its first
    packet's sending, its last packet's arrival, which packets it carries, and the ACK
    that releases the next one (it leaves as the first packet arrives)."""

    start: float
    end: float
    first: int  # packets, counted from 1
    last: int
    of: int
    ack: tuple[float, float] | None  # leaves the receiver, reaches the sender


def flights(result: Result, rows: pd.DataFrame) -> dict[int, list[Flight]]:
    """The messages among ``rows`` that go in two or three flights (:data:`FLIGHTS`),
    by row: a 20 KB message waits one round trip for the first ACK, which the ladder
    shows. As :func:`mailsim.network.sending_time` times them; a path whose timing has
    jitter or loss in it, or a row whose arrival is not the model's, keeps its one arrow."""
    from mailsim.faults import Faults
    from mailsim.network import MSS, NoRoute, Topology
    from mailsim.network import flights as slow_start

    messages = rows[rows["step"] == "message"]
    if messages.empty:
        return {}
    faults = Faults(result.scenario)
    if faults.links_can_fail:
        return {}
    network = Topology(result.scenario, result.seed, faults)
    events = result.events
    found: dict[int, list[Flight]] = {}
    for row in messages.itertuples():
        sent = events[(events["session"] == row.session) & (events["time"] == row.time)
                      & (events["src"] == row.src)]  # fmt: skip
        try:
            path = network.path(str(row.src), str(row.dst), float(row.time))
        except NoRoute:
            continue
        nbytes = int(sent["bytes"].sum())
        parts = slow_start(nbytes, path.bottleneck, path.rtt)
        bits = 8 / path.bottleneck
        last, rest = parts[-1]  # as sending_time ends: the last flight's start and bytes
        took = path.latency + (last + rest * 8 / path.bottleneck)
        if (
            not 2 <= len(parts) <= FLIGHTS
            or path.jittery
            or abs(row.arrive - row.time - took) > 1e-9
        ):
            continue  # one flight, too many to read, noise on the way: one arrow
        total, done, drawn = -(-nbytes // MSS), 0, []
        for k, (start, size) in enumerate(parts):
            count = -(-size // MSS)
            end = row.time + start + size * bits + path.latency
            ack = None
            if k + 1 < len(parts):
                ack = (row.time + start + MSS * bits + path.latency, row.time + parts[k + 1][0])
            drawn.append(Flight(row.time + start, end, done + 1, done + count, total, ack))
            done += count
        found[row.Index] = [*drawn[:-1], dataclasses.replace(drawn[-1], end=row.arrive)]
    return found


def flight_moments(found: dict[int, list[Flight]]) -> list[float]:
    """The moments the ladder's time scale must give room to: each flight's ends and its
    ACK's."""
    return [t for parts in found.values() for f in parts for t in (f.start, f.end, *(f.ack or ()))]


def _imap_wait(result: Result, message: str, starting: pd.DataFrame) -> str:
    """Before an IMAP retrieval: the next check, or, for a phone on IDLE, the renewal
    that found its connection forgotten (its push was lost on the way)."""
    messages = result.messages
    readers = set(starting[starting["protocol"] == "imap"]["recipient"])
    ways = messages[(messages["id"] == message) & messages["recipient"].isin(readers)]
    if (ways["retrieval"] == "imap-idle").any():
        return "push lost: waiting for the IDLE renewal"
    return "waiting for the IMAP poll"


def own_fetches(result: Result, message: str, rows: pd.DataFrame) -> pd.DataFrame:
    """A POP3 session that downloads 58 messages would fill 20 pages of one message's
    ladder with the other 57: keep this message's own RETR and DELE (the RETR whose reply
    arrived when the message reached its reader) and put one note row, step ``note``,
    where the others were: "(+ 57 other messages fetched in this session)"."""
    hops = result.hops
    arrivals = hops[(hops["message"] == message) & (hops["protocol"] == "pop3")]["end"]
    ends = [float(t) for t in arrivals]
    drop: set[int] = set()
    notes = []
    for _, session in rows[rows["protocol"] == "pop3"].groupby("session", sort=False):
        index = list(session.index)
        own = {
            rows.at[k, "label"].split()[1]
            for k, reply in pairwise(index)
            if rows.at[k, "step"] == "RETR"
            and any(abs(rows.at[reply, "arrive"] - end) < 1e-9 for end in ends)
        }
        others = 0
        for k, reply in pairwise(index):
            words = str(rows.at[k, "label"]).split()
            if rows.at[k, "step"] in ("RETR", "DELE") and len(words) > 1 and words[1] not in own:
                drop.update((k, reply))
                others += rows.at[k, "step"] == "RETR"
        if others:
            first = min(k for k in index if k in drop)
            after = [k for k in index if k > first and k not in drop]
            until = rows.at[after[0], "time"] if after else rows.at[first, "arrive"]
            moment = (rows.at[first, "time"] + until) / 2
            noun = "message" if others == 1 else "messages"
            notes.append({**rows.loc[first].to_dict(), "time": moment, "arrive": moment,
                          "step": "note", "code": "", "steps": ("note",), "codes": ("",),
                          "label": f"(+ {others} other {noun} fetched in this session)"})  # fmt: skip
    if not drop:
        return rows
    kept = pd.concat([rows.drop(index=sorted(drop)), pd.DataFrame(notes, columns=COLUMNS)])
    return kept.sort_values(["time", "arrive"], kind="stable", ignore_index=True)


class TimeScale:
    """Real seconds → drawn units, with long waits cut out."""

    def __init__(
        self, moments: list[float], cut: float, room: dict[float, float] | None = None
    ) -> None:
        self.points: list[tuple[float, float]] = []
        self.gaps: list[tuple[float, float, float, float]] = []  # t0, t1, y0, y1
        y = 0.0
        previous: float | None = None
        for t in sorted(set(moments)):
            if previous is not None:
                # The room of a label of two lines first: a cut wait starts below it, and
                # its end is where the next moment is drawn (a page starts there).
                y += (room or {}).get(previous, 0.0)
                delta = t - previous
                if delta > cut:
                    self.gaps.append((previous, t, y, y + GAP))
                    y += GAP
                else:
                    y += max(MIN_STEP, math.log1p(delta / TAU) * 0.45)
            self.points.append((t, y))
            previous = t
        self._times = [p[0] for p in self.points]

    def __call__(self, t: float) -> float:
        i = bisect.bisect_left(self._times, t)
        if i < len(self._times) and self._times[i] == t:
            return self.points[i][1]
        # Between two known moments: interpolate (only labels land here).
        (t0, y0), (t1, y1) = self.points[max(i - 1, 0)], self.points[min(i, len(self.points) - 1)]
        return y0 if t1 == t0 else y0 + (y1 - y0) * (t - t0) / (t1 - t0)

    @property
    def height(self) -> float:
        return self.points[-1][1] if self.points else 0.0


def time_scale(
    rows: pd.DataFrame, cut: float, found: dict[int, list[Flight]] | None = None
) -> TimeScale:
    """The scale of a ladder: a label of two lines gets a line's more room after its
    arrow, so that the next exchange's words do not land on it; a message's flights
    (``found``, see :func:`flights`) each get the room of an exchange."""
    found = found or {}
    room: dict[float, float] = {}
    for row in rows.itertuples():
        lines = shown_label(str(row.label)).count("\n")
        if row.Index in found:  # its words go with its first flight, a line longer
            at, lines = found[row.Index][0].end, lines + 1
        else:
            at = row.arrive
        if lines:
            room[at] = max(room.get(at, 0.0), LINE * lines)
    return TimeScale([*rows["time"], *rows["arrive"], *flight_moments(found)], cut, room)


@dataclass(frozen=True)
class Page:
    """Rows ``first`` to ``stop`` (exclusive) drawn from ``top`` to ``bottom`` (drawn
    units); a wait that ends at ``first`` is on this page, not the one before, and so is
    a shorter pause (``pause``: its start and end, in seconds) that the page break falls
    in: a server at work for 2 s at the end of DATA, say."""

    first: int
    stop: int
    top: float
    bottom: float
    pause: tuple[float, float] | None = None


def paginate(rows: pd.DataFrame, scale: TimeScale, capacity: float = PAGE_UNITS) -> list[Page]:
    """Pack rows onto pages of ``capacity`` drawn units: a page ends when the next row
    would not fit, or earlier at a cut wait when it is at least :data:`FILL` full and the
    stretch after the wait would not fit whole in what is left, or a few rows earlier
    when that leaves the next page filled where it would not be."""
    if rows.empty:
        return [Page(0, 0, 0.0, 0.0)]
    starts = [scale(t) for t in rows["time"]]
    ends = [scale(t) for t in rows["arrive"].cummax()]
    after_gap = {y1: y0 for _, _, y0, y1 in scale.gaps}
    stretch_end = list(ends)
    for k in range(len(rows) - 2, -1, -1):  # where the stretch that holds row k ends
        if starts[k + 1] not in after_gap:
            stretch_end[k] = stretch_end[k + 1]
    times, arrived = list(rows["time"]), list(rows["arrive"].cummax())
    notes = list(rows["step"] == "note")  # a note says what the time around it was
    n = len(rows)

    def fit(first: int) -> Page:
        top = after_gap.get(starts[first], starts[first])
        pause = None
        if (
            first
            and starts[first] not in after_gap
            and times[first] - arrived[first - 1] >= PAUSE
            and not (notes[first] or notes[first - 1])
        ):
            # Room at the top for the words of the pause, out of its own drawn length.
            pause = (float(arrived[first - 1]), float(times[first]))
            top = max(starts[first] - PAUSE_ROOM, ends[first - 1])
        stop = first + 1
        while stop < n and ends[stop] - top <= capacity:
            used = ends[stop - 1] - top
            if (
                starts[stop] in after_gap
                and used >= FILL * capacity
                and stretch_end[stop] - top > capacity
            ):
                break
            stop += 1
        return Page(first, stop, top, ends[stop - 1], pause)

    def filled(page: Page) -> bool:
        return page.stop == n or page.bottom - page.top >= FILL * capacity

    found: list[Page] = []
    first = 0
    while first < n:
        page = fit(first)
        if page.stop < n and not filled(fit(page.stop)):
            # The next page would be left nearly empty (a long arrow that does not fit
            # after it): end this one a few rows earlier if both are then filled.
            for stop in range(page.stop - 1, first, -1):
                if ends[stop - 1] - page.top < FILL * capacity:
                    break
                if filled(fit(stop)):
                    page = Page(first, stop, page.top, ends[stop - 1], page.pause)
                    break
        found.append(page)
        first = page.stop
    return found


def _layout(
    result: Result, message: str, cut: float
) -> tuple[pd.DataFrame, list[tuple[float, str]], TimeScale, list[Page]]:
    """The rows of the ladder, its collapsed repeats, its one time scale and its pages."""
    rows, repeats = collapse_repeats(exchanges(result, message), cut)
    scale = time_scale(rows, cut, flights(result, rows))
    return rows, repeats, scale, paginate(rows, scale)


def pages(result: Result, message: str | None = None, cut: float = 5.0) -> int:
    """How many 1280×720 pages :func:`sequence` needs for ``message``."""
    message = message or result.copies[0].message.id
    return len(_layout(result, message, cut)[3])


def sequence(
    result: Result,
    message: str | None = None,
    *,
    ax: Axes | None = None,
    cut: float = 5.0,
    protocols: tuple[str, ...] | None = None,
    rows: pd.DataFrame | None = None,
    highlight: int | None = None,
    page: int | None = None,
    lanes: Sequence[str] | None = None,
    panel: bool = False,
) -> Axes:
    """Draw the ladder diagram of ``message`` (default: the first one).

    ``page`` draws only that page on a 1280×720 figure, for a projector (see
    :func:`pages`); ``rows`` draws only those exchanges (a window of :func:`exchanges`),
    and ``highlight`` emphasises the exchange with that index (the step-through viewer);
    ``lanes`` fixes the lifelines and their order (a window or a filter keeps them put);
    ``panel`` draws it for a narrow panel (the step viewer's): labels cut short, the
    lifelines' names on two lines when there are many, no words beside the time axis."""
    message = message or result.copies[0].message.id
    # A ladder in a panel of another figure (the step viewer) has a smaller text size.
    font, small = (FONT, SMALL) if ax is None else (EMBEDDED, EMBEDDED)
    embedded = panel and ax is not None and page is None
    repeats: list[tuple[float, str]] = []
    if rows is None:
        rows, repeats = collapse_repeats(exchanges(result, message), cut)
    if protocols is not None:
        rows = rows[rows["protocol"].isin(protocols)].reset_index(drop=True)
    if lanes is None:
        lanes = list(dict.fromkeys([*rows["src"], *rows["dst"]]))  # the same on every page
    lanes = list(lanes)
    flown = flights(result, rows)
    scale = time_scale(rows, cut, flown)
    every = rows
    book = paginate(rows, scale)
    if page is not None and not 1 <= page <= len(book):
        raise ValueError(f"page must be from 1 to {len(book)}, not {page}")
    if page is not None:
        shown = book[page - 1]
        rows = every.iloc[shown.first : shown.stop]
        top, bottom = shown.top - 0.6, shown.top + PAGE_UNITS + 0.4
        # A fixed frame, not a layout engine: the lifelines keep their x on every page
        # whatever the width of the time labels or of the legend.
        ax = plt.figure(figsize=(12.8, 7.2)).add_axes(PAGE_FRAME)
    else:
        top, bottom = -0.6, scale.height + 1.0
        if ax is None:
            height = max(4.0, scale.height * UNIT_INCHES + 2.0)
            size = (max(8.0, 2.4 * len(lanes) + 3), height)
            _, ax = plt.subplots(figsize=size, layout="constrained")
    x = {name: 2.0 * i for i, name in enumerate(lanes)}
    roles = {n: result.scenario.nodes[n].role for n in lanes}
    fixed = []
    for name in lanes:
        _, colour, _ = style.ROLE[roles[name]]
        ax.plot([x[name], x[name]], [top, bottom], color="#bbbbbb", lw=1, zorder=1, gid="lifeline")
        # In a narrow panel, every other name a line higher: neighbours do not run into
        # each other.
        above = LINE * 2 if embedded and len(lanes) > 4 and lanes.index(name) % 2 else 0.0
        fixed.append(ax.text(x[name], top - 0.25 - above, name, ha="center", va="bottom",
                             fontsize=font + 1, fontweight="bold", color=ink(colour),
                             gid="lane"))  # fmt: skip
    end = shown.bottom if page is not None else bottom
    gaps = [g for g in scale.gaps if top <= g[2] and g[3] <= end]
    encrypted = _encrypted(ax, result, every, rows, x, scale, (top, bottom))
    movable: list[tuple[int, labels.Movable]] = []  # with the order they are placed in
    arrows: list[Artist] = []
    marks: list[Line2D] = []  # timeouts and crashes
    used: set[str] = set()  # failure colours drawn, for the legend
    repeated = dict(repeats)
    middle = sum(x.values()) / max(len(x), 1)
    for t0, t1, y0, y1 in gaps:
        ax.axhspan(y0 + 0.3, y1 - 0.3, color=WAIT, zorder=0, gid="wait")
        label = f"⋯ {format_duration(t1 - t0)} {_why(result, message, t0, t1, lanes)} ⋯"
        if t1 in repeated:
            label = f"⋯ {format_duration(t1 - t0)}: {repeated[t1]} ⋯"
        text = ax.text(middle, (y0 + y1) / 2, label, ha="center", va="center", fontsize=font,
                       style="italic", color=MUTED, zorder=5)  # fmt: skip
        text.set_gid("wait")
        fixed.append(text)
    if page is not None and shown.pause is not None:
        # The page break falls in a pause: the page says what happened during it.
        y1 = scale(shown.pause[1])
        ax.axhspan(shown.top + 0.15, y1 - 0.3, color=WAIT, zorder=0, gid="pause")
        words = _pause(result, message, every, shown.first, *shown.pause)
        text = ax.text(middle, (shown.top + y1 - 0.15) / 2, words, ha="center", va="center",
                       fontsize=font, style="italic", color=MUTED, zorder=5, gid="pause")  # fmt: skip
        fixed.append(text)
    # A pause inside the page (not cut: at most ``cut`` seconds) says what it was too.
    offset = shown.first if page is not None else 0
    arrived = every["arrive"].cummax()
    for k in range(offset + 1, offset + len(rows)):
        t0, t1 = float(arrived.iloc[k - 1]), float(every["time"].iloc[k])
        if PAUSE <= t1 - t0 <= cut and "note" not in set(every["step"].iloc[k - 1 : k + 1]):
            words = _pause(result, message, every, k, t0, t1)
            fixed.append(ax.text(middle, (scale(t0) + scale(t1)) / 2, words, ha="center",
                                 va="center", fontsize=font, style="italic", color=MUTED,
                                 zorder=5, gid="pause",
                                 bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"}))  # fmt: skip
    for row in rows.itertuples():
        y0, y1 = scale(row.time), scale(row.arrive)
        if row.step == "note":
            fixed.append(ax.text((x[row.src] + x[row.dst]) / 2, y0, row.label, ha="center",
                                 va="center", fontsize=font, style="italic", color=MUTED,
                                 zorder=5, gid="note",
                                 bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"}))  # fmt: skip
            continue
        colour = ink(style.PROTOCOL.get(row.protocol, "#333333"))
        current = row.Index == highlight
        if current:
            ax.axhspan(min(y0, y1) - 0.35, max(y0, y1) + 0.35, color=style.OKABE_ITO["yellow"],
                       alpha=0.35, zorder=0)  # fmt: skip
        if row.step == "timeout":
            late = ink(style.OUTCOME["temporary"])
            marks.extend(ax.plot([x[row.dst]], [y1], marker="X", ms=10, color=late, zorder=4))
            fixed.append(ax.text(x[row.dst] + 0.12, y1, f"timeout: {short_label(row.label)}",
                                 fontsize=font, va="center", color=late, zorder=5,
                                 bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"}))  # fmt: skip
            continue
        if row.step == "lost":  # sent, dropped half way (a NAT forgot the connection)
            late = ink(style.OUTCOME["temporary"])
            mid = (x[row.src] + x[row.dst]) / 2
            ax.annotate("", xy=(mid, y0), xytext=(x[row.src], y0),
                        arrowprops={"arrowstyle": "-", "color": late, "lw": 1.4}, zorder=3)  # fmt: skip
            marks.extend(ax.plot([mid], [y0], marker="X", ms=10, color=late, zorder=4))
            fixed.append(ax.text(mid, y0 + 0.45, short_label(row.label), ha="center", va="top",
                                 fontsize=font, color=late, zorder=5,
                                 bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"}))  # fmt: skip
            used.add("lost")
            continue
        # A group of replies takes the colour of its first failure: after a refused RCPT,
        # DATA's "554 no valid recipients" is a consequence, not the cause.
        failures = [style.outcome_of(c) for c in row.codes if c and style.outcome_of(c) != "ok"]
        if row.step == "RST" or row.label == "SYN (no answer)":
            failures = ["temporary"]  # a refused or unanswered connection: tried again later
        if failures:
            colour = ink(style.OUTCOME[failures[0]])
            used.add(failures[0])
        # An opaque white box above every arrow: no arrow runs through the words.
        words = short_label(row.label, PANEL_WIDTH) if embedded else shown_label(row.label)
        parts = flown.get(row.Index)
        if parts is None:
            if not embedded and _crosses(every, row):
                words += f"\n({format_duration(row.arrive - row.time)} on the way)"
            pieces = [(row.src, row.dst, y0, y1, words, "exchange", colour)]
        else:  # slow start: a flight, the ACK that lets the next one go, the next…
            pieces = []
            for k, part in enumerate(parts):
                said = f"packets {part.first}–{part.last} of {part.of}"
                pieces.append((row.src, row.dst, scale(part.start), scale(part.end),
                               f"{words}\n{said}" if k == 0 else said,
                               "exchange" if k == 0 else "flight", colour))  # fmt: skip
                if part.ack is not None:
                    pieces.append((row.dst, row.src, scale(part.ack[0]), scale(part.ack[1]),
                                   "ACK", "ack", MUTED))  # fmt: skip
        for src, dst, a, b, said, gid, tint in pieces:
            arrow, label = _arrow(ax, (x[src], a), (x[dst], b), said, tint, font,
                                  lw=(2.6 if current else 1.4) if gid != "ack" else 1.0,
                                  ls=DASHED.get(row.protocol, "-") if gid != "ack" else ":",
                                  front=current)  # fmt: skip
            arrow.set_gid(gid)
            # The current exchange first (what the step viewer explains); then in time
            # order, long arrows last.
            order = -1 if current else int(abs(b - a) > 3 * MIN_STEP)
            movable.append((order, label))
            arrows.append(arrow.arrow_patch)
    crashes = _crashes(ax, result, x, scale, rows, marks, font)
    _time_ticks(ax, scale, rows, gaps, small)
    if embedded:  # the panel's title says what the ticks are; the words would cover them
        ax.set_ylabel("")
    staggered = embedded and len(lanes) > 4
    ax.set_ylim(bottom, top - HEADER - (LINE * 2 if staggered else 0.0))
    ax.set_xlim(-1.2, 2.0 * max(len(lanes) - 1, 1) + 1.2)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    copy = result.copy(message)
    sender = copy.message.sender or "the mail system (a bounce)"
    recipients = copy.message.recipients
    to = ", ".join(recipients) if len(recipients) <= 2 else f"{len(recipients)} recipients"
    ax.set_title(
        f"Every exchange of message {message!r}: {sender} → {to}"
        + (f" — page {page} of {len(book)}" if page is not None else "")
        + f"\nscenario {result.scenario.name!r}; time runs down, long waits are cut",
        loc="left", fontsize=font + 1,
    )  # fmt: skip
    _legend(ax, rows, used, encrypted, bool(crashes))
    # In time order, but long arrows last: a reply that arrives after a whole LMTP
    # session has room for its words anywhere along its length (a stable sort).
    ordered = [m for _, m in sorted(movable, key=lambda pair: pair[0])]
    labels.place(ax, [*crashes, *ordered], fixed, arrows, marks)
    return ax


def _arrow(
    ax: Axes,
    tail: tuple[float, float],
    head: tuple[float, float],
    words: str,
    colour: str,
    font: float,
    lw: float,
    ls: Any,
    front: bool,
) -> tuple[Any, labels.Movable]:
    """One arrow of the ladder and its words, with the spots the words may take."""
    (x0, y0), (x1, y1) = tail, head
    arrow = ax.annotate(
        "", xy=head, xytext=tail,
        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": lw, "shrinkA": 0,
                    "shrinkB": 0, "ls": ls},
        zorder=3,
    )  # fmt: skip
    text = ax.text((x0 + x1) / 2, (y0 + y1) / 2, words,
                   ha="center", va="bottom", fontsize=font, color=colour, zorder=6 if front else 5,
                   linespacing=1.1, gid="label",
                   bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"})  # fmt: skip
    # On the arrow, at its middle if that is free, else further along it; above the
    # arrow first, then below; last, starting at its left end or ending at its right
    # one (a long label on an arrow near the edge of the diagram).
    spots = [
        (x0 + t * (x1 - x0), y0 + t * (y1 - y0), va, "center")  # ha too: the last
        for va in ("bottom", "top")  # spot tried must not leave its ha on the chosen one
        for t in (0.5, 0.35, 0.65, 0.2, 0.8)
    ]
    (xl, yl), (xr, yr) = sorted([(x0, y0), (x1, y1)])
    spots += [(xl + 0.15, yl + (yr - yl) * 0.1, va, "left") for va in ("bottom", "top")]
    spots += [(xr - 0.15, yr - (yr - yl) * 0.1, va, "right") for va in ("bottom", "top")]
    # Crowded (a reply and the next command at once): hung from a point along the
    # arrow, to its left or its right.
    spots += [
        (x0 + t * (x1 - x0), y0 + t * (y1 - y0), va, ha)
        for t in (0.5, 0.25, 0.75, 0.1, 0.9)
        for va in ("bottom", "top")
        for ha in ("left", "right")
    ]
    # Last, a line clear of the arrow, above or below it.
    spots += [
        (x0 + t * (x1 - x0), y0 + t * (y1 - y0) + dy, va, ha)
        for dy, va in ((-0.45, "bottom"), (0.45, "top"))
        for t in (0.5, 0.2, 0.8)
        for ha in ("center", "left", "right")
    ]
    return arrow, labels.Movable(text, spots, own=(arrow.arrow_patch,))


def _crosses(rows: pd.DataFrame, row: Any) -> bool:
    """Whether other exchanges start while ``row``'s packet is on its way: a reply that
    crosses the ocean while the MX already hands the message on. Its long arrow crosses
    theirs; its words say that both are true at once."""
    during = (rows["time"] > row.time) & (rows["time"] < row.arrive) & (rows["step"] != "note")
    return bool(during.any())


def _legend(ax: Axes, rows: pd.DataFrame, used: set[str], encrypted: bool, crashed: bool) -> None:
    """What the colours, bands and marks of this page mean (only those it shows)."""
    protocols = set(rows["protocol"])
    handles: list[Artist] = [
        Line2D([], [], color=ink(c), lw=2, ls=DASHED.get(p, "-"), label=KEY.get(p, p.upper()))
        for p, c in style.PROTOCOL.items()
        if p in protocols
    ]
    late, refused = ink(style.OUTCOME["temporary"]), ink(style.OUTCOME["permanent"])
    if "temporary" in used:
        handles.append(Line2D([], [], color=late, lw=2, label="temporary failure\n(4xx, refused)"))
    if "permanent" in used:
        handles.append(Line2D([], [], color=refused, lw=2, label="permanent failure\n(5xx)"))
    if "lost" in used:
        handles.append(Line2D([], [], color=late, marker="X", ms=10, lw=1.4,
                              label="lost on the way"))  # fmt: skip
    if (rows["step"] == "timeout").any():
        handles.append(Line2D([], [], color=late, marker="X", ms=10, lw=0,
                              label="no reply: the\nclient's timeout"))  # fmt: skip
    if crashed:
        handles.append(Line2D([], [], color=refused, marker="X", ms=12, lw=0, label="server crash"))
    if encrypted:
        handles.append(Patch(fc=ENCRYPTED, ec="none", label="encrypted: after\nthe TLS handshake"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=SMALL,
              frameon=False)  # fmt: skip


def _encrypted(
    ax: Axes,
    result: Result,
    every: pd.DataFrame,
    rows: pd.DataFrame,
    x: dict[str, float],
    scale: TimeScale,
    window: tuple[float, float],
) -> bool:
    """A pale band between the two lifelines of each TLS session, from the end of its
    handshake (after STARTTLS or on an implicit-TLS port) to the session's last exchange:
    what an eavesdropper on the wire can no longer read. The handshake itself is left out
    of it: TLS 1.2 sends its ServerHello and certificate in the clear. A session that
    shook hands before it served this message (a phone's IDLE, a web page that keeps
    its connection) is encrypted from its first exchange here. Says whether this page
    shows one."""
    drawn = False
    events = result.events
    for session, mine in every.groupby("session", sort=False):
        steps = mine[mine["protocol"] == "tls"]
        if steps.empty:  # its handshake, if any, came before this message's steps
            own = events[events["session"] == session]
            steps = own[own["protocol"] == "tls"]
        hello = steps[steps["step"].str.startswith("ClientHello")]
        if hello.empty or not steps["step"].str.startswith("ServerHello").any():
            continue  # no handshake, or one that failed: nothing was encrypted
        shaken = max(float(steps["arrive"].max()), float(mine["time"].min()))
        start, end = scale(shaken), scale(float(mine["arrive"].max()))
        if rows.empty or not (rows["session"] == session).any():
            continue
        y0, y1 = max(start, window[0]), min(end, window[1])
        if y1 <= y0:
            continue
        a, b = sorted((x[hello["src"].iloc[0]], x[hello["dst"].iloc[0]]))
        band = Rectangle((a - 0.2, y0), b - a + 0.4, y1 - y0, fc=ENCRYPTED, ec="none", zorder=0.5)
        band.set_gid(f"encrypted-{session}")
        ax.add_patch(band)
        drawn = True
    return drawn


def collapse_repeats(
    rows: pd.DataFrame, cut: float = 5.0
) -> tuple[pd.DataFrame, list[tuple[float, str]]]:
    """Three or more identical stretches of activity in a row (the same exchanges, the
    same outcome: a retried attempt failing again) keep only the first and the last; the
    ones between become part of a labelled cut. Returns the rows kept and, for each cut,
    (the time the cut ends, its label)."""
    if rows.empty:
        return rows, []
    # Stretches: runs of exchanges with no pause longer than ``cut`` between them.
    starts = rows["time"].to_numpy()
    ends = rows["arrive"].cummax().to_numpy()
    stretch = [0]
    for k in range(1, len(rows)):
        stretch.append(stretch[-1] + (1 if starts[k] - ends[k - 1] > cut else 0))
    rows = rows.assign(stretch=stretch)
    groups = [g for _, g in rows.groupby("stretch", sort=True)]
    signature = [tuple(zip(g["src"], g["dst"], g["step"], g["code"], strict=True)) for g in groups]
    drop: set[int] = set()
    cuts: list[tuple[float, str]] = []
    i = 0
    while i < len(groups):
        j = i
        while j + 1 < len(groups) and signature[j + 1] == signature[i]:
            j += 1
        if j - i >= 2:
            middle = range(i + 1, j)
            drop.update(middle)
            when = ", ".join(format_duration(groups[m]["time"].iloc[0]) for m in middle)
            noun = "attempt" if len(middle) == 1 else "attempts"
            cuts.append((float(groups[j]["time"].iloc[0]),
                         f"{len(middle)} more {noun} just like the one above, at {when}"))  # fmt: skip
        i = j + 1
    kept = rows[~rows["stretch"].isin(drop)].drop(columns="stretch")
    return kept.reset_index(drop=True), cuts


def _crashes(
    ax: Axes,
    result: Result,
    x: dict[str, float],
    scale: TimeScale,
    rows: pd.DataFrame,
    marks: list[Line2D],
    font: float = FONT,
) -> list[labels.Movable]:
    """Mark the moment a server crashed on its lane, if the page shows that moment (a
    crash during a cut wait goes at the wait's top edge); the words go right of the
    mark, or left, wherever no arrow crosses them."""
    from mailsim.scenario import CrashFault

    texts: list[labels.Movable] = []
    if rows.empty:
        return texts
    first, last = rows["time"].min(), rows["arrive"].max()
    for fault in result.scenario.faults:
        if not (isinstance(fault, CrashFault) and fault.node in x):
            continue
        waits = [y0 + 0.3 for t0, t1, y0, _ in scale.gaps if t0 < fault.at < t1]
        if (
            waits
            and not first <= scale.gaps[0][0]
            and not any(first <= t0 <= last for t0, t1, _, _ in scale.gaps if t0 < fault.at < t1)
        ):
            continue  # the wait it falls in ends another page
        if not waits and not first <= fault.at <= last:
            continue
        y = waits[0] if waits else scale(fault.at)
        refused = ink(style.OUTCOME["permanent"])
        marks.extend(ax.plot([x[fault.node]], [y], marker="X", ms=14, color=refused, zorder=6))
        text = ax.text(x[fault.node] + 0.15, y, f"{fault.node} crashes (back after"
                       f" {format_duration(fault.restart)})", fontsize=font, va="center",
                       color=refused, zorder=6,
                       bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"})  # fmt: skip
        spots = [(x[fault.node] + side * 0.2, y + dy, "center", ha)
                 for dy in (0.0, 0.5, -0.5, 0.9, -0.9) for side, ha in ((1, "left"), (-1, "right"))]  # fmt: skip
        texts.append(labels.Movable(text, spots))
    return texts


def short_label(text: str, width: int = 72) -> str:
    """A label that fits between lanes: a long reply loses its ``<address>:`` (the reason
    after it is what a class reads) and MAIL FROM its parameters, then the tail goes."""
    if len(text) > width:
        text = re.sub(r"^(\d{3}[ -](?:\d\.\d{1,3}\.\d{1,3} )?)<[^>]*>:? ", r"\1", text)
        text = re.sub(r" (SIZE|BODY)=\S+", "", text)
    return text if len(text) <= width else text[: width - 1] + "…"


WRAP = 50  # characters a line of a wrapped failure reply holds
PANEL_WIDTH = 36  # characters of a label in the step viewer's panel (its words say it all)


def shown_label(text: str) -> str:
    """The words on an arrow. A failure reply keeps its reason whole, wrapped onto a
    second line ("550 5.1.1 Recipient address rejected: / User unknown in virtual
    mailbox table"), and so does a long reply's list (an EHLO reply's capabilities:
    whether STARTTLS is among them is the point); what is cut is a help URL or a third
    line's tail. Two long replies sent together go on two lines; a note added to a
    label on a line of its own (see :func:`stripped`) stays on its own line."""
    text, *notes = text.split("\n")
    return "\n".join([_shown(text), *notes])


def _shown(text: str) -> str:
    failed = re.search(r"(^|· )[45]\d\d[ -]", text) is not None
    if not failed and len(text) > 40 and text.count(" · ") == 1:
        return "\n".join(short_label(part) for part in text.split(" · "))  # a reply and a bye
    reply = re.match(r"\d{3}[ -]", text) is not None and " · " not in text
    if not failed and reply and len(text) > 72:  # 72: what short_label keeps on one line
        lines = textwrap.wrap(text, WRAP, break_long_words=False)
        if len(lines) > 3:
            lines = [*lines[:2], short_label(" ".join(lines[2:]), WRAP)]
        return "\n".join(lines)
    if not failed or len(text) <= WRAP:
        return short_label(text)
    text = re.sub(r"((?:^|· )[45]\d\d[ -](?:\d\.\d{1,3}\.\d{1,3} )?)<[^>]*>:? ", r"\1", text)
    lines = textwrap.wrap(text, WRAP, break_long_words=False)
    if len(lines) > 2:
        lines = [lines[0], short_label(" ".join(lines[1:]), WRAP)]
    return "\n".join(line if len(line) <= WRAP + 6 else line[: WRAP - 1] + "…" for line in lines)


def _why(result: Result, message: str, t0: float, t1: float, lanes: list[str]) -> str:
    """What the message was waiting for during a cut wait, with the fault's own numbers."""
    events = result.events
    timeouts = events[(events["step"] == "timeout") & ((events["time"] - t1).abs() < 1e-6)]
    if not timeouts.empty:
        return "no reply: waiting for the client's timeout"
    own = result.message_events(message)
    greeted = own[(own["step"] == "220") & ((own["time"] - t1).abs() < 1e-6)]
    if not greeted.empty:  # connected, and no greeting until a session came free
        return f"waiting for a free session at {greeted['src'].iloc[0]} (all busy)"
    hops = result.hops
    mine = hops[hops["message"] == message]
    starting = mine[(mine["start"] >= t1 - 1e-9) & (mine["start"] <= t1 + 1.0)]
    if not starting.empty and (starting["protocol"] == "pop3").any():
        return "waiting for the POP poll"
    if not starting.empty and (starting["protocol"] == "imap").any():
        return _imap_wait(result, message, starting)
    if not starting.empty and starting["dst"].isin(result.scenario.nodes_of("client")).any():
        return "waiting for the page to refresh"  # read in a browser: an HTTPS hop down
    from mailsim.scenario import CrashFault

    for fault in result.scenario.faults:
        # A server that crashed just before or during the wait and is back when it ends.
        back = fault.at + fault.restart if isinstance(fault, CrashFault) else math.inf
        if (
            isinstance(fault, CrashFault)
            and fault.node in lanes
            and t0 - 1.0 <= fault.at <= t1
            and back - 1e-6 <= t1 <= back + 1.0
        ):
            return (f"waiting: {fault.node} crashed at {fault.at:.3f} s and is down for"
                    f" {format_duration(fault.restart)}, until {back:.3f} s")  # fmt: skip
    failed = mine[(mine["end"] <= t0 + 1e-6) & ~mine["code"].astype(str).str.startswith(("2", "+"))]
    if not failed.empty:
        return "waiting to try again"
    return "waiting"


def _pause(
    result: Result, message: str, rows: pd.DataFrame, first: int, t0: float, t1: float
) -> str:
    """The words of a pause from ``t0`` to row ``first`` at ``t1`` (too short to be cut,
    long beside the milliseconds around it): who was at work, or what the message was
    waiting for, as a cut wait says it."""
    before = rows.iloc[:first]
    last = rows.loc[before["arrive"].idxmax()]  # what arrived last before the pause
    node = rows["src"].iloc[first]
    took = format_duration(t1 - t0)
    if last["dst"] == node and last["step"] == "message":
        return f"⋯ {took}: {node} works on the message it received (end of DATA) ⋯"
    if last["dst"] == node and last["step"] == "ACK" and str(rows["step"].iloc[first]) == "220":
        # Connected, but no greeting yet: the server's sessions were all busy (its
        # concurrency), and the connection waited in the listen queue for one to end.
        return f"⋯ {took}: connected, waiting for a free session at {node} (all busy) ⋯"
    if last["dst"] == node:
        return f"⋯ {took}: nothing on the wire until {node} goes on ⋯"
    lanes = list(dict.fromkeys([*rows["src"], *rows["dst"]]))
    return f"⋯ {took} {_why(result, message, t0, t1, lanes)} ⋯"


def _time_ticks(
    ax: Axes,
    scale: TimeScale,
    rows: pd.DataFrame,
    gaps: list[tuple[float, float, float, float]],
    small: float = SMALL,
) -> None:
    """A tick at every row's start. One rule throughout: the first row of the page and
    the first after each cut wait show the run time (bold); every other row shows the
    milliseconds since that bold time above it."""
    if rows.empty:
        return
    after = {t1 for _, t1, _, _ in gaps}
    ticks: dict[float, str] = {}
    bold: set[float] = set()
    since = None
    for t in sorted(set(rows.loc[rows["step"] != "note", "time"])):
        y = scale(t)
        if since is None or t in after or any(since < g0 < t for g0, _, _, _ in scale.gaps):
            since = t
            ticks[y] = f"{t:.3f} s"
            bold.add(y)
        elif y not in ticks:
            elapsed = t - since
            label = f"+{elapsed * 1000:.1f} ms" if elapsed < 1 else f"+{elapsed:.3f} s"
            if label in ticks.values():  # two moments apart by less than shown: more digits
                label = f"+{elapsed * 1000:.2f} ms" if elapsed < 1 else f"+{elapsed:.4f} s"
            ticks[y] = label
    ys = sorted(ticks)
    ax.set_yticks(ys, [ticks[y] for y in ys], fontsize=small)
    for y, label in zip(ys, ax.get_yticklabels(), strict=True):
        if y in bold:
            label.set_fontweight("bold")
    ax.set_ylabel("time, running down (long waits cut)\nbold: run time; +ms: since the bold"
                  " time above", fontsize=small)  # fmt: skip
