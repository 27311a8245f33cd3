"""Packets that move: every flight of one message (a command, a reply, a TLS record, a DNS
query) travels along the links it took as its own envelope, on the route's drawing.

Mail lasts milliseconds inside a session and minutes between sessions, so screen time is
not simulated time: :func:`timeline` maps one to the other. While flights are in the air
each gets at least :data:`MIN_FRAMES` frames and a longer one more (the logarithm of its
duration, as in the ladder), a flight that shares the air with faster ones slows down
with them (one clock for all: what is simultaneous stays so), and a wait with nothing in
the air longer than :data:`CUT` becomes a short clock card: "4 min 49 s later: bob-pc
polls pop-home". An envelope is open for plaintext, closed with a padlock once its
session finished a TLS handshake; a failure is marked by a cross at the machine that
answered it; one caption says in words what is happening.

Files: GIF and MP4 at 1280×720 (:func:`save`); in a notebook: :class:`mailsim.player.Player`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, Rectangle
from matplotlib.path import Path as MPath
from matplotlib.text import Text
from matplotlib.transforms import Bbox, offset_copy

from mailsim.plot import style
from mailsim.plot.route import Wire, route
from mailsim.plot.sequence import exchanges, ink
from mailsim.plot.topology import positions
from mailsim.result import Result
from mailsim.units import format_duration

FPS = 8  # frames a second in the files and the player at 1×: a 3-frame flight is 0.4 s
MIN_FRAMES = 3  # a flight is seen leaving, on its way and arriving
BUDGET = 480  # frames aimed at: a minute at 8 fps (~30 s to render), room enough for a
# 141 ms crossing to last 2.5 times a 0.5 ms one in classroom (at 240 both took 3 frames)
CUT = 1.0  # seconds: a wait with nothing in the air longer than this becomes a clock card
CARD = 12  # frames of a clock card: 1.5 s to read its sentence
PAUSE = 0.1  # seconds: a shorter wait inside a session is not shown at all …
PAUSE_FRAMES = 2  # … a longer one (a server's content scan) holds the picture this long
END = 8  # frames holding the last picture, its caption saying how long it all took
TAU = 0.001  # seconds: a flight's own frames grow with log2(1 + duration / TAU)
MOST = 4.0  # frames per doubling at most: a 141 ms flight is not ten times a 2 ms one
CARD_WORDS = 22.0  # points: the length of a long wait, the card's one big line
HOURS = [k * math.pi / 6 for k in range(12)]  # the clock face's marks
WORDS = 40  # characters of a flight's words a caption keeps before shortening the rest
CAPTION = 11.0  # points: 15.3 px at 100 dpi, read from the back of a classroom
TAG = 10.5  # points: 14.6 px, the words beside an envelope
ENVELOPE = 30  # points wide: seen from the back row, smaller than a node's marker
SIDE = 0  # pixels an envelope travels to the right of its link: none, so that the
# words beside a link stay clear (9 px put the message over "45 ms one way" as it crossed)
NODE = 12  # pixels around a machine's centre a tag keeps clear of (its marker)
# Where a tag goes beside its envelope, in points, tried in turn: above, below, right, left.
SIDES = [((0, ENVELOPE * 0.55), "center", "bottom"), ((0, -ENVELOPE * 0.45), "center", "top"),
         ((ENVELOPE * 0.6, 0), "left", "center"), ((-ENVELOPE * 0.6, 0), "right", "center")]  # fmt: skip
FAILED = {"RST", "timeout"}  # steps that are failures whatever their code
SECURITY = {
    "open": "plaintext: anyone on the path can read it",
    "sealed": "sealed (TLS {v}): an eavesdropper sees only its size",
    "handshake": "TLS {v} handshake: agreeing on keys, the server's name readable",
    "dns": "plaintext DNS over UDP",
}


# -- the flights ---------------------------------------------------------------------------


def flights(result: Result, message: str | None = None) -> pd.DataFrame:
    """The message's flights in time order (the ladder's arrows, notes left out), with
    what the animation needs: ``bytes`` on the wire, ``kind`` (open, sealed, handshake,
    dns), the session's TLS ``version``, the ``outcome`` (ok, temporary, permanent), the
    ``service`` of the session and the node ``path`` through the routers."""
    message = message or result.copies[0].message.id
    rows = exchanges(result, message)
    rows = rows[rows["step"] != "note"].reset_index(drop=True)
    events = result.message_events(message)
    weight = events.groupby(["time", "src", "dst", "session"], observed=True)["bytes"].sum()
    services = result.sessions.set_index("session")["service"].to_dict()
    wire = Wire(result)
    sealed_from, versions = _handshakes(rows)
    extra: dict[str, list[Any]] = {
        k: [] for k in ("bytes", "kind", "version", "outcome", "service", "path")
    }
    for row in rows.itertuples():
        key = (row.time, row.src, row.dst, row.session)
        extra["bytes"].append(int(weight.get(key, 0)))
        session = int(row.session)
        if row.protocol == "tls":
            kind = "handshake"
        elif row.protocol == "dns":
            kind = "dns"
        elif row.time >= sealed_from.get(session, math.inf):
            kind = "sealed"
        else:
            kind = "open"
        extra["kind"].append(kind)
        extra["version"].append(versions.get(session, ""))
        extra["outcome"].append(outcome(row.steps, row.codes))
        extra["service"].append(str(services.get(session, row.protocol)))
        extra["path"].append(wire.path(str(row.src), str(row.dst), float(row.time)))
    for name, values in extra.items():
        rows[name] = values
    return rows


def _handshakes(rows: pd.DataFrame) -> tuple[dict[int, float], dict[int, str]]:
    """For each session with a TLS handshake: when its ServerHello arrived (what is sent
    from then on is sealed) and its version (1.2 sends a ServerHelloDone, 1.3 does not)."""
    sealed_from: dict[int, float] = {}
    versions: dict[int, str] = {}
    for session, steps in rows[rows["protocol"] == "tls"].groupby("session", sort=False):
        names = [s for group in steps["steps"] for s in group]
        hello = steps[steps["step"].str.startswith("ServerHello")]
        if len(hello):
            sealed_from[int(session)] = float(hello["arrive"].min())
        versions[int(session)] = "1.2" if any("ServerHelloDone" in s for s in names) else "1.3"
    return sealed_from, versions


def outcome(steps: Sequence[str], codes: Sequence[str]) -> str:
    """ok, temporary or permanent: the first failing reply of a flight decides (4xx, 5xx,
    -ERR, a DNS rcode other than NOERROR; a reset or a timeout is temporary). Replies to
    pipelined commands fail in a chain: greylisting's 450 to RCPT makes DATA's 554 "no
    valid recipients", and the message is tried again: temporary, as the 450 says."""
    for step, code in zip(steps, codes, strict=True):
        if step in FAILED:
            return "temporary"
        if code and style.outcome_of(code) != "ok":
            return style.outcome_of(code)
    return "ok"


# -- the time map --------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """A long wait shown as a clock: from frame ``first`` for ``frames`` frames, ``wait``
    seconds long, ended by flight ``next``."""

    first: int
    frames: int
    wait: float
    next: int


@dataclass(frozen=True)
class Timeline:
    """Which frames each flight is in the air (``start[i]`` to ``end[i] - 1``), the clock
    cards, the total, and the simulated time at the frames' edges (``edges``: frame →
    seconds at each moment of the run, for the caption's and the clock's time)."""

    start: tuple[int, ...]
    end: tuple[int, ...]
    cards: tuple[Card, ...]
    frames: int
    edges: tuple[tuple[float, float], ...]

    def in_air(self, frame: int) -> list[int]:
        """The flights on their way at ``frame``, in the order they left."""
        return [i for i, (a, b) in enumerate(zip(self.start, self.end, strict=True))
                if a <= frame < b]  # fmt: skip

    def progress(self, flight: int, frame: int) -> float:
        """How far along its path ``flight`` is at ``frame``: 0 to 1, never at an end."""
        a, b = self.start[flight], self.end[flight]
        return (frame - a + 0.5) / (b - a)

    def card_at(self, frame: int) -> Card | None:
        return next((c for c in self.cards if c.first <= frame < c.first + c.frames), None)

    def time_at(self, frame: float) -> float:
        """The simulated time in the middle of ``frame``."""
        xs, ts = zip(*self.edges, strict=True)
        return float(np.interp(frame + 0.5, xs, ts))


def own_frames(duration: float, per_doubling: float) -> float:
    """The frames a flight would get alone in the air: MIN_FRAMES, more with each
    doubling of its duration."""
    return MIN_FRAMES + per_doubling * math.log2(1 + max(duration, 0.0) / TAU)


def timeline(flights: pd.DataFrame, budget: int = BUDGET) -> Timeline:
    """The time map of ``flights`` (columns ``time`` and ``arrive``): as many frames a
    doubling of a flight's duration as ``budget`` allows (none when the flights alone
    need more, which then wins: every flight keeps MIN_FRAMES)."""
    low, high = 0.0, MOST
    if _layout(flights, high).frames > budget:
        for _ in range(20):
            middle = (low + high) / 2
            low, high = (
                (middle, high) if _layout(flights, middle).frames <= budget else (low, middle)
            )
    else:
        low = high
    return _layout(flights, low)


ZERO = 1e-6  # seconds: a flight that takes no time (a client's own timeout) takes this


def _layout(flights: pd.DataFrame, per_doubling: float) -> Timeline:
    """The frames with ``per_doubling`` frames for each doubling of a flight's duration."""
    begins = [float(t) for t in flights["time"]]
    ends = [max(float(a), float(t) + ZERO) for t, a in zip(flights["arrive"], flights["time"],
                                                            strict=True)]  # fmt: skip
    rates = [own_frames(e - b, per_doubling) / (e - b) for b, e in zip(begins, ends, strict=True)]
    moments = sorted(set(begins) | set(ends))
    at = {moments[0]: 0.0} if moments else {}
    cards = []
    for m0, m1 in pairwise(moments):
        rate = max((r for b, e, r in zip(begins, ends, rates, strict=True)
                    if b <= m0 and e >= m1), default=None)  # fmt: skip
        span = m1 - m0
        if rate is not None:
            frames = span * rate
        elif span > CUT:
            frames = CARD
            nxt = min(i for i, b in enumerate(begins) if b >= m1)
            cards.append((m0, span, nxt))
        else:
            frames = PAUSE_FRAMES if span >= PAUSE else 0.0
        at[m1] = at[m0] + frames
    whole = _whole(at, moments, begins, ends)
    last = whole[moments[-1]] if moments else 0
    return Timeline(
        start=tuple(whole[b] for b in begins),
        end=tuple(whole[e] for e in ends),
        cards=tuple(Card(whole[m], CARD, span, nxt) for m, span, nxt in cards),
        frames=last + END,
        edges=(*((float(whole[m]), m) for m in moments), (float(last + END), moments[-1]))
        if moments
        else (),
    )


def _whole(
    at: dict[float, float], moments: list[float], begins: list[float], ends: list[float]
) -> dict[float, int]:
    """Each moment's frame, rounded, and pushed later where rounding would leave a flight
    fewer than MIN_FRAMES (everything after moves with it: the order never changes)."""
    whole: dict[float, int] = {}
    shift, previous = 0, 0
    for m in moments:
        need = max((whole[b] + MIN_FRAMES for b, e in zip(begins, ends, strict=True)
                    if e == m and b in whole), default=0)  # fmt: skip
        frame = max(round(at[m]) + shift, need, previous)
        shift, previous = frame - round(at[m]), frame
        whole[m] = frame
    return whole


# -- the picture ---------------------------------------------------------------------------


def _envelope_path(open_flap: bool) -> MPath:
    """An envelope 2 wide and 1.3 high: the body, and its flap folded down (closed) or
    standing up above it (open: the letter can be taken out and read)."""
    w, h = 1.0, 0.65
    body = [(-w, -h), (w, -h), (w, h), (-w, h), (-w, -h)]
    flap = [(-w, h), (0, -0.1), (w, h)] if not open_flap else [(-w, h), (0, 1.0), (w, h)]
    verts = body + flap
    codes = [MPath.MOVETO] + [MPath.LINETO] * 3 + [MPath.CLOSEPOLY]
    codes += [MPath.MOVETO, MPath.LINETO, MPath.LINETO]
    return MPath(verts, codes)


def _padlock_path() -> MPath:
    """A padlock: a shackle (an arch) over a body, drawn rather than typed (the project's
    font has no 🔒); 2 wide."""
    arch = [(0.55 * math.cos(a), 0.2 + 0.75 * math.sin(a)) for a in np.linspace(0, math.pi, 9)]
    body = [(-1.0, -1.0), (1.0, -1.0), (1.0, 0.2), (-1.0, 0.2), (-1.0, -1.0)]
    verts = body + arch
    codes = [MPath.MOVETO] + [MPath.LINETO] * 3 + [MPath.CLOSEPOLY]
    codes += [MPath.MOVETO] + [MPath.LINETO] * (len(arch) - 1)
    return MPath(verts, codes)


ENVELOPE_OPEN, ENVELOPE_CLOSED, PADLOCK = (
    _envelope_path(True),
    _envelope_path(False),
    _padlock_path(),
)


def words(flight: Any) -> str:
    """The flight's first line, short: "MAIL FROM:<alice@school.example> SIZE=20000"."""
    first = str(flight.label).split("\n")[0]
    if flight.outcome != "ok":  # the failing reply of a pipelined group, not its 250 before
        for detail, step, code in zip(first.split(" · "), flight.steps, flight.codes,
                                      strict=False):  # fmt: skip
            if step in FAILED or (code and style.outcome_of(code) != "ok"):
                return detail
    # Commands sent together (pipelined) joined by "+": the caption's "·" parts its fields.
    text = first.replace(" · ", " + ")
    if flight.step == "message":
        return f"the message ({flight.bytes:,} bytes)"
    return text


def security(flight: Any) -> str:
    return SECURITY[str(flight.kind)].format(v=flight.version or "1.3")


def resumes(flight: Any, failed_before: bool) -> str:
    """What ends a long wait, in words: "bob-pc polls pop-home", "msa-school tries
    mx-home again" (``failed_before``: its last try was refused or went unanswered)."""
    src, dst = flight.src, flight.dst
    if src == dst:  # no packet: the sender's own timeout
        return f"no answer: {src} gives up waiting"
    if str(flight.service).startswith("pop"):
        return f"{src} polls {dst}"
    if failed_before:
        return f"{src} tries again, first asking {dst}" if flight.protocol == "dns" else (
            f"{src} tries {dst} again")  # fmt: skip
    if flight.protocol == "dns":
        return f"{src} asks {dst}"
    return f"{src} connects to {dst}"


class Scene:
    """The figure of the animation and the drawing of any one frame (``update``): the
    route, an envelope per flight in the air, crosses at failures, the clock of a long
    wait and the caption."""

    def __init__(
        self,
        result: Result,
        message: str | None = None,
        *,
        recipient: str | None = None,
        budget: int = BUDGET,
        fig: Figure | None = None,
    ) -> None:
        self.result = result
        self.message = message or result.copies[0].message.id
        self.flights = flights(result, self.message)
        self.rows = list(self.flights.itertuples())
        self.timeline = timeline(self.flights, budget)
        self.fig = fig or plt.figure(figsize=(12.8, 7.2))
        self.fig.clear()
        self.fig.set_layout_engine("constrained")
        grid = self.fig.add_gridspec(2, 1, height_ratios=[12, 1])
        self.ax: Axes = self.fig.add_subplot(grid[0])
        words_ax = self.fig.add_subplot(grid[1])
        words_ax.set_axis_off()
        route(result, self.message, recipient=recipient, ax=self.ax, words=False)
        self.pos = positions(result)
        self.latency = {frozenset(link.between): float(link.latency)
                        for link in result.scenario.links}  # fmt: skip
        self.fig.canvas.draw()  # the layout, once: positions in pixels hold from here on
        self.fig.set_layout_engine("none")
        # Centred on the figure, not on the map: a key to the map's right narrows it.
        middle = words_ax.get_position().y0 + words_ax.get_position().height / 2
        self.caption = self.fig.text(0.5, middle, "", ha="center", va="center",
                                     fontsize=CAPTION, gid="caption")  # fmt: skip
        # What a tag beside an envelope must not cover: the route's words and machines.
        self._words = [t.get_window_extent() for t in self.ax.texts
                       if t.get_visible() and t.get_text().strip()]  # fmt: skip
        self._words += [Bbox.from_bounds(px - NODE, py - NODE, 2 * NODE, 2 * NODE)
                        for px, py in self.ax.transData.transform(list(self.pos.values()))]  # fmt: skip
        self._artists()

    # -- the artists, made once and moved or hidden frame by frame

    def _artists(self) -> None:
        ax = self.ax
        self.envelopes: list[Line2D] = []
        self.locks: list[Line2D | None] = []
        self.tags: list[Text] = []
        for k, flight in enumerate(self.rows):
            colour = style.PROTOCOL.get(str(flight.protocol), style.OKABE_ITO["grey"])
            open_flap = flight.kind in ("open", "dns")
            (envelope,) = ax.plot(
                [], [], ls="none", marker=ENVELOPE_OPEN if open_flap else ENVELOPE_CLOSED,
                ms=ENVELOPE, mfc="white" if open_flap else colour, mec=colour if open_flap
                else "white", mew=2.0, zorder=20, gid=f"envelope-{k}", visible=False,
            )  # fmt: skip
            self.envelopes.append(envelope)
            lock = None
            if flight.kind == "sealed":
                (lock,) = ax.plot([], [], ls="none", marker=PADLOCK, ms=ENVELOPE * 0.38,
                                  mfc=style.OKABE_ITO["yellow"], mec="black", mew=1.0,
                                  zorder=21, gid=f"lock-{k}", visible=False)  # fmt: skip
            self.locks.append(lock)
            tag = ax.annotate(
                self._tag(flight), (0, 0), xytext=(0, ENVELOPE * 0.55), textcoords="offset points",
                ha="center", va="bottom", fontsize=TAG, color=ink(colour), zorder=22,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                gid=f"tag-{k}", visible=False,
            )  # fmt: skip
            self.tags.append(tag)
        self.crosses: dict[int, Line2D] = {}
        for k, flight in enumerate(self.rows):
            if flight.outcome != "ok":
                x, y = self.pos[str(flight.src)]
                # Beside the machine, up and to the right: its marker and name stay seen.
                beside = offset_copy(ax.transData, fig=self.fig, x=14, y=14, units="dots")
                (cross,) = ax.plot([x], [y], ls="none", marker="X", ms=26,
                                   color=style.OUTCOME[flight.outcome], mec="white", mew=1.5,
                                   zorder=19, gid=f"failure-{k}", visible=False, transform=beside)  # fmt: skip
                self.crosses[k] = cross
        self._card_artists(ax)

    def _card_artists(self, ax: Axes) -> None:
        """A clock card: the map paled behind a clock whose hand turns once during the
        wait, its length in big words, and what ends it (nothing moves meanwhile, so the
        card may cover the map)."""
        bbox = ax.get_window_extent()
        self._aspect = bbox.width / bbox.height  # a round face in pixels
        self._centre, self._radius = (0.5, 0.62), 0.07
        cx, cy = self._centre
        veil = Rectangle((0, 0), 1, 1, transform=ax.transAxes, fc="white", ec="none",
                         alpha=0.82, zorder=29, gid="card")  # fmt: skip
        face = Ellipse(self._centre, 2 * self._radius, 2 * self._radius * self._aspect,
                       transform=ax.transAxes, fc="white", ec="#333333", lw=3, zorder=30,
                       gid="clock")  # fmt: skip
        ticks = [[cx + r * self._radius * math.cos(a) for r in (0.8, 1.0)] for a in HOURS]
        heights = [[cy + r * self._radius * self._aspect * math.sin(a) for r in (0.8, 1.0)]
                   for a in HOURS]  # fmt: skip
        (marks,) = ax.plot(
            [v for t in ticks for v in (*t, np.nan)], [v for h in heights for v in (*h, np.nan)],
            color="#333333", lw=2, transform=ax.transAxes, zorder=31,
        )  # fmt: skip
        (self.clock_hand,) = ax.plot([], [], color="#333333", lw=4, transform=ax.transAxes,
                                     solid_capstyle="round", zorder=31, gid="clock-hand")  # fmt: skip
        below = cy - self._radius * self._aspect - 0.03
        self.clock_words = ax.text(cx, below, "", transform=ax.transAxes, ha="center",
                                   va="top", fontsize=CARD_WORDS, zorder=31,
                                   gid="clock-words")  # fmt: skip
        for artist in (veil, face):
            ax.add_patch(artist)
        self.card = [veil, face, marks, self.clock_hand, self.clock_words]
        for artist in self.card:
            artist.set_visible(False)

    @staticmethod
    def _tag(flight: Any) -> str:
        """Beside the envelope, what an eavesdropper on the link reads: the words of a
        plaintext flight, only the size of a sealed one."""
        if flight.kind in ("sealed", "handshake"):
            return f"{flight.bytes:,} B"
        text = words(flight)
        return text if len(text) <= 26 else text[:25] + "…"

    # -- one frame

    def where(self, flight: int, share: float) -> tuple[float, float]:
        """The point ``share`` of the way along the flight's path, each link taking its
        share of the latency (a link without latency a small one), moved SIDE pixels to
        the right of the way it goes."""
        path = self.rows[flight].path
        points = [self.pos[n] for n in path]
        if len(points) < 2:
            return points[0]
        weights = [max(self.latency.get(frozenset(pair), 0.0), 1e-4) for pair in pairwise(path)]
        total = sum(weights)
        left = share * total
        for (a, b), wgt in zip(pairwise(points), weights, strict=True):
            if left <= wgt or (a, b) == tuple(pairwise(points))[-1]:
                f = min(left / wgt, 1.0)
                return self._aside((a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f), a, b)
            left -= wgt
        return points[-1]

    def _aside(self, point: tuple[float, float], a: tuple[float, float],
               b: tuple[float, float]) -> tuple[float, float]:  # fmt: skip
        to_px = self.ax.transData
        (px, py), (ax_, ay), (bx, by) = to_px.transform([point, a, b])
        dx, dy = bx - ax_, by - ay
        length = math.hypot(dx, dy) or 1.0
        moved = (px + dy / length * SIDE, py - dx / length * SIDE)
        x, y = to_px.inverted().transform(moved)
        return float(x), float(y)

    @staticmethod
    def frames_of(result: Result, message: str | None = None, budget: int = BUDGET) -> int:
        """How many frames the animation of ``message`` has (without drawing it)."""
        return timeline(flights(result, message or result.copies[0].message.id), budget).frames

    def update(self, frame: int) -> list[Any]:
        """Draw ``frame``: every artist set for it (returned, for FuncAnimation)."""
        line = self.timeline
        air = set(line.in_air(frame))
        for k in range(len(self.rows)):
            # A sender's own timeout moves no packet: its cross and caption say it.
            shown = k in air and self.rows[k].src != self.rows[k].dst
            self.envelopes[k].set_visible(shown)
            self.tags[k].set_visible(shown)
            lock = self.locks[k]
            if lock is not None:
                lock.set_visible(shown)
            if shown:
                x, y = self.where(k, line.progress(k, frame))
                self.envelopes[k].set_data([x], [y])
                self.tags[k].xy = (x, y)
                if lock is not None:
                    lock.set_data([x], [y])
        placed: list[Bbox] = []
        for k in sorted(air):
            placed.append(self._place(self.tags[k], placed))
            if k in self.crosses:
                self.crosses[k].set_visible(frame >= line.start[k])
        card = line.card_at(frame)
        self._clock(card, frame)
        self.caption.set_text(self.words_at(frame))
        self._fit_caption()
        return [*self.envelopes, *self.tags, *[lk for lk in self.locks if lk],
                *self.crosses.values(), *self.card,
                self.caption]  # fmt: skip

    def moving(self) -> list[Any]:
        """The artists a frame changes; the rest is the route, drawn once."""
        locks = [lock for lock in self.locks if lock is not None]
        return [*self.envelopes, *locks, *self.tags, *self.crosses.values(), *self.card,
                self.caption]  # fmt: skip

    def pictures(self, frames: Sequence[int]) -> Iterator[np.ndarray]:
        """The frames as RGB arrays (720×1280×3): the route drawn once and kept, and on
        a copy of it, for each frame, only what moves. The figure is theirs until they
        end: drawing it otherwise meanwhile spoils the kept route."""
        canvas = FigureCanvasAgg(self.fig)
        moving = sorted(self.moving(), key=lambda a: a.get_zorder())
        for artist in moving:
            artist.set_animated(True)
        try:
            canvas.draw()
            route = canvas.copy_from_bbox(self.fig.bbox)
            for frame in frames:
                self.update(frame)
                canvas.restore_region(route)
                for artist in moving:
                    if artist.get_visible():
                        self.fig.draw_artist(artist)
                yield np.asarray(canvas.buffer_rgba())[..., :3].copy()
        finally:
            for artist in moving:
                artist.set_animated(False)

    def _place(self, tag: Text, placed: list[Bbox]) -> Bbox:
        """Put ``tag`` above, below, right or left of its envelope: the first side where it
        covers none of the route's words, no machine and no other tag (else the side
        where it covers least)."""
        best: tuple[float, Bbox] | None = None
        chosen = SIDES[0]
        for offset, ha, va in SIDES:
            tag.xyann = offset
            tag.set_ha(ha)
            tag.set_va(va)
            box = tag.get_window_extent()
            covered = sum(_overlap(box, other) for other in (*self._words, *placed))
            if covered == 0:
                return box
            if best is None or covered < best[0]:
                best = (covered, box)
                chosen = (offset, ha, va)
        tag.xyann = chosen[0]
        tag.set_ha(chosen[1])
        tag.set_va(chosen[2])
        return best[1] if best else tag.get_window_extent()

    def _clock(self, card: Card | None, frame: int) -> None:
        for artist in self.card:
            artist.set_visible(card is not None)
        if card is None:
            return
        turn = (frame - card.first + 1) / card.frames  # one turn of the hand for the wait
        angle = math.pi / 2 - 2 * math.pi * turn
        (cx, cy), radius = self._centre, 0.75 * self._radius
        self.clock_hand.set_data([cx, cx + radius * math.cos(angle)],
                                 [cy, cy + radius * math.sin(angle) * self._aspect])  # fmt: skip
        self.clock_words.set_text(f"{format_duration(card.wait)} later")

    def flight_at(self, frame: int) -> int | None:
        """The flight the caption speaks of at ``frame``: the last to leave of those in
        the air, else the one a clock card leads to, else the last one that left."""
        line = self.timeline
        air = line.in_air(frame)
        if air:
            return max(air, key=lambda k: (line.start[k], k))
        card = line.card_at(frame)
        if card is not None:
            return card.next
        before = [k for k, s in enumerate(line.start) if s <= frame]
        return before[-1] if before else (0 if self.rows else None)

    def words_at(self, frame: int) -> str:
        """The caption: "t = 10.0452 s · alice-pc → msa-school · SMTP: the message
        (20,005 bytes) · plaintext: anyone on the path can read it"."""
        line = self.timeline
        k = self.flight_at(frame)
        if k is None:
            return "no flight of this message"
        flight = self.rows[k]
        card = line.card_at(frame)
        if card is not None:
            # A failure answered to this flight's sender (or its own timeout) before.
            failed = any(f.outcome != "ok" and f.dst == flight.src for f in self.rows[:k])
            return f"{format_duration(card.wait)} later: {resumes(flight, failed)}"
        if frame >= line.end[-1] and not line.in_air(frame):
            span = float(self.flights["arrive"].max() - self.flights["time"].min())
            return (f"t = {float(self.flights['arrive'].max()):.4f} s · the end: "
                    f"{len(self.rows)} flights in {format_duration(span)}")  # fmt: skip
        said = words(flight)
        failure = "" if flight.outcome == "ok" else f" · ✖ {flight.outcome} failure"
        if flight.src == flight.dst:  # its own timeout: one machine, and nothing on a wire
            return (f"t = {float(flight.time):.4f} s · {flight.src} · "
                    f"{str(flight.protocol).upper()}: {said}{failure}")  # fmt: skip
        return (f"t = {float(flight.time):.4f} s · {flight.src} → {flight.dst} · "
                f"{str(flight.protocol).upper()}: {said}{failure} · {security(flight)}")  # fmt: skip

    def _fit_caption(self) -> None:
        """Shorten the caption until it fits the width: the flight's words first, to
        WORDS characters, then the security's explanation (after its colon), then the
        words again. The time, the two ends and whether it is sealed always stay."""
        width = self.fig.bbox.width - 48  # a margin either side

        def fits() -> bool:
            return bool(self.caption.get_window_extent().width <= width)

        parts = self.caption.get_text().split(" · ")
        if fits() or len(parts) < 4:
            return
        said = parts[2]

        def shorten(least: int) -> None:
            while not fits() and len(parts[2]) > least + 1:
                parts[2] = parts[2][: max(least, len(parts[2]) - 6)].rstrip("…") + "…"
                self.caption.set_text(" · ".join(parts))

        shorten(WORDS)
        if not fits() and ":" in parts[-1]:
            parts[-1], parts[2] = parts[-1].split(":")[0], said  # the words grow back
            self.caption.set_text(" · ".join(parts))
            shorten(12)


def _overlap(a: Bbox, b: Bbox) -> float:
    """Square pixels two boxes share."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


# -- the animation and its files -------------------------------------------------------------


def shown_frames(total: int, cap: int | None) -> list[int]:
    """The frames drawn: all, or ``cap`` of them spread evenly (CI's MAILSIM_FRAMES)."""
    if cap is None or cap >= total:
        return list(range(total))
    return sorted({round(float(x)) for x in np.linspace(0, total - 1, max(cap, 1))})


def animate(
    result: Result,
    message: str | None = None,
    *,
    recipient: str | None = None,
    frames: int | None = None,
    interval: int = round(1000 / FPS),
) -> FuncAnimation:
    """The animation of ``message``'s flights (default: the first message): about
    BUDGET frames, or ``frames`` of them spread over it (``MAILSIM_FRAMES`` too, which CI
    sets low)."""
    cap = frame_cap(frames)
    scene = Scene(result, message, recipient=recipient)
    animation = FuncAnimation(scene.fig, scene.update, frames=shown_frames(
        scene.timeline.frames, cap), interval=interval, blit=False)  # fmt: skip
    animation.scene = scene  # type: ignore[attr-defined]
    plt.close(scene.fig)  # shown by to_jshtml() or saved; never left open in pyplot
    return animation


def frame_cap(frames: int | None = None) -> int | None:
    """The frames asked for: ``frames``, else ``MAILSIM_FRAMES`` (CI sets it low)."""
    if frames:
        return frames
    return int(os.environ["MAILSIM_FRAMES"]) if os.environ.get("MAILSIM_FRAMES") else None


def write(
    result: Result,
    path: Path,
    message: str | None = None,
    *,
    recipient: str | None = None,
    frames: int | None = None,
) -> int:
    """Write the animation as a GIF (Pillow) or an MP4 (H.264 by the ffmpeg of
    imageio-ffmpeg: no system ffmpeg needed) at 1280×720; the number of frames written.
    The route is drawn once and each frame only draws what moves on it (Scene.pictures):
    five times quicker than drawing every frame whole."""
    scene = Scene(result, message, recipient=recipient)
    plt.close(scene.fig)
    shown = shown_frames(scene.timeline.frames, frame_cap(frames))
    pictures = scene.pictures(shown)
    if path.suffix.lower() == ".mp4":
        _mp4(pictures, path)
    else:
        _gif(pictures, path)
    return len(shown)


def html(result: Result, message: str | None = None, *, frames: int | None = None) -> str:
    """A web page playing the animation: the MP4 inside a <video> with its controls
    (play, pause, seek, full screen). A page of PNG frames (FuncAnimation.to_jshtml)
    would weigh 20 MB for classroom, past what matplotlib embeds; the video 0.6 MB."""
    import base64
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "animation.mp4"
        write(result, video, message, frames=frames)
        data = base64.b64encode(video.read_bytes()).decode("ascii")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>mailsim: packets</title>'
        "</head>\n<body>\n"
        '<video controls loop playsinline width="1280" height="720" '
        f'src="data:video/mp4;base64,{data}"></video>\n</body></html>\n'
    )


def _mp4(pictures: Iterator[np.ndarray], path: Path) -> None:
    import imageio_ffmpeg

    # yuv420p: what browsers and presentation software play; CRF 23 is x264's default.
    writer = imageio_ffmpeg.write_frames(
        str(path), (1280, 720), fps=FPS, codec="libx264", pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p", quality=None, output_params=["-crf", "23"],
        macro_block_size=16,
    )  # fmt: skip
    writer.send(None)  # starts ffmpeg
    try:
        for picture in pictures:
            writer.send(picture.tobytes())
    finally:
        writer.close()


def _gif(pictures: Iterator[np.ndarray], path: Path) -> None:
    from PIL import Image

    frames: list[Image.Image] = []
    palette: Image.Image | None = None
    for picture in pictures:
        palette = palette or _palette(picture)
        quantized = Image.fromarray(picture).quantize(palette=palette, dither=Image.Dither.NONE)
        # Pillow maps a colour to a near entry, not always the nearest: the white page
        # came out light grey or blue. The page is set to the palette's white.
        indices = np.array(quantized)
        indices[(picture == 255).all(axis=-1)] = WHITE
        frame = Image.fromarray(indices.astype(np.uint8))  # "L"; a palette makes it "P"
        frame.putpalette(palette.getpalette())
        frames.append(frame)
    if not frames:
        raise ValueError("an animation without frames")
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=round(1000 / FPS), loop=0)  # fmt: skip


WHITE = 255  # the GIF palette's entry for the page: the one the quantizer leaves free


def _palette(first: np.ndarray) -> Any:
    """One GIF palette for every frame (no flicker, and quantizing with a palette given
    is quick): the first frame's colours and the project's (the padlock's yellow, the
    failures' orange and vermillion appear only later), white and black exact."""
    from matplotlib.colors import to_rgb
    from PIL import Image

    colours = ["#ffffff", "#000000", *style.OKABE_ITO.values(), *style.OUTCOME.values(),
               *style.PROTOCOL.values(), *(ink(c) for c in style.PROTOCOL.values())]  # fmt: skip
    swatch = np.zeros((40, first.shape[1], 3), np.uint8)
    width = first.shape[1] // len(colours)
    for k, colour in enumerate(colours):
        swatch[:, k * width : (k + 1) * width] = np.array(to_rgb(colour)) * 255
    palette = Image.fromarray(np.vstack([first, swatch])).quantize(
        colors=255, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
    )
    entries = np.zeros((256, 3), int)
    entries[:255] = np.array(palette.getpalette()[: 255 * 3]).reshape(-1, 3)
    # The page exact, not an average, at entry WHITE.
    entries[WHITE] = (255, 255, 255)
    palette.putpalette([int(v) for v in entries.ravel()])
    return palette
