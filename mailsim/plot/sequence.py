"""The ladder (sequence) diagram of one message: a lane per node, time running down, an
arrow per exchange from its sending to its arrival, labelled with the command or reply.

Mail spans milliseconds inside a session and minutes to days between sessions, so the
time axis is nonlinear, in the spirit of OMNeT++'s sequence chart: between consecutive
moments the drawn distance grows with the logarithm of the real interval (so a longer
transit is always a steeper arrow), and a wait longer than ``cut`` seconds is cut out and
labelled, e.g. "⋯ 4 min 49 s waiting for the POP poll ⋯".
"""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from mailsim.plot import labels, style
from mailsim.result import Result
from mailsim.units import format_duration

TAU = 0.001  # seconds: intervals are drawn as log(1 + Δt / TAU)
MIN_STEP = 0.9  # drawn units between two moments at least (room for a label)
GAP = 2.5  # drawn units of a cut wait
UNIT_INCHES = 0.2
PER_PAGE = 16  # exchanges per page that fit a 1280×720 screen with readable labels


def exchanges(result: Result, message: str) -> pd.DataFrame:
    """The message's protocol steps, one row per arrow: commands sent together (a
    pipelined group) share an arrow and a label."""
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
            }
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=["time", "arrive", "src", "dst", "protocol", "step",
                                        "code", "label", "steps", "codes"])  # fmt: skip
    return frame.sort_values(["time", "arrive"], kind="stable", ignore_index=True)


def pages(result: Result, message: str | None = None, per_page: int = PER_PAGE) -> int:
    """How many pages :func:`sequence` needs for ``message`` at ``per_page``."""
    message = message or result.copies[0].message.id
    rows, _ = collapse_repeats(exchanges(result, message))
    return max(1, -(-len(rows) // per_page))


class TimeScale:
    """Real seconds → drawn units, with long waits cut out."""

    def __init__(self, moments: list[float], cut: float) -> None:
        self.points: list[tuple[float, float]] = []
        self.gaps: list[tuple[float, float, float, float]] = []  # t0, t1, y0, y1
        y = 0.0
        previous: float | None = None
        for t in sorted(set(moments)):
            if previous is not None:
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
        import bisect

        i = bisect.bisect_left(self._times, t)
        if i < len(self._times) and self._times[i] == t:
            return self.points[i][1]
        # Between two known moments: interpolate (only labels land here).
        (t0, y0), (t1, y1) = self.points[max(i - 1, 0)], self.points[min(i, len(self.points) - 1)]
        return y0 if t1 == t0 else y0 + (y1 - y0) * (t - t0) / (t1 - t0)

    @property
    def height(self) -> float:
        return self.points[-1][1] if self.points else 0.0


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
    per_page: int = PER_PAGE,
) -> Axes:
    """Draw the ladder diagram of ``message`` (default: the first one).

    ``page`` draws only that page of ``per_page`` exchanges on a 1280×720 figure, for a
    projector (see :func:`pages`); ``rows`` draws only those exchanges (a window of
    :func:`exchanges`), and ``highlight`` emphasises the exchange with that index (the
    step-through viewer)."""
    message = message or result.copies[0].message.id
    repeats: list[tuple[float, str]] = []
    if rows is None:
        rows, repeats = collapse_repeats(exchanges(result, message), cut)
    if protocols is not None:
        rows = rows[rows["protocol"].isin(protocols)]
    lanes = list(dict.fromkeys([*rows["src"], *rows["dst"]]))  # the same on every page
    count = max(1, -(-len(rows) // per_page))
    if page is not None and not 1 <= page <= count:
        raise ValueError(f"page must be from 1 to {count}, not {page}")
    # A long wait at a page break is drawn on both pages: the moment the previous page
    # ended opens this one, and the moment the next page begins closes it.
    edges: list[float] = []
    if page is not None:
        every = rows
        rows = every.iloc[(page - 1) * per_page : page * per_page]
        first, last = (page - 1) * per_page, min(page * per_page, len(every)) - 1
        if first > 0:
            before = float(every["arrive"].iloc[:first].max())
            if rows["time"].min() - before > cut:
                edges.append(before)
        if last + 1 < len(every):
            after = float(every["time"].iloc[last + 1])
            if after - rows["arrive"].max() > cut:
                edges.append(after)
    x = {name: 2.0 * i for i, name in enumerate(lanes)}
    scale = TimeScale([*rows["time"], *rows["arrive"], *edges], cut)
    if ax is None and page is not None:
        _, ax = plt.subplots(figsize=(12.8, 7.2), layout="constrained")
    if ax is None:
        height = max(4.0, scale.height * UNIT_INCHES + 1.5)
        _, ax = plt.subplots(figsize=(max(8.0, 2.2 * len(lanes) + 2), height), layout="constrained")
    top, bottom = -1.0, scale.height + 1.0
    roles = {n: result.scenario.nodes[n].role for n in lanes}
    for name in lanes:
        _, colour, _ = style.ROLE[roles[name]]
        ax.plot([x[name], x[name]], [top, bottom], color="#bbbbbb", lw=1, zorder=1)
        ax.text(x[name], top - 0.3, name, ha="center", va="bottom", fontsize=10,
                fontweight="bold", color=colour)  # fmt: skip
    fixed = list(ax.texts)  # the lane names
    movable: list[labels.Movable] = []
    arrows: list[Artist] = []
    marks: list[Line2D] = []  # timeouts and crashes
    used: set[str] = set()  # failure colours drawn, for the legend
    repeated = dict(repeats)
    for t0, t1, y0, y1 in scale.gaps:
        ax.axhspan(y0 + 0.3, y1 - 0.3, color="#f0f0f0", zorder=0)
        label = f"⋯ {format_duration(t1 - t0)} {_why(result, message, t0, t1)} ⋯"
        if t1 in repeated:
            label = f"⋯ {format_duration(t1 - t0)}: {repeated[t1]} ⋯"
        fixed.append(ax.text(sum(x.values()) / max(len(x), 1), (y0 + y1) / 2, label,
                             ha="center", va="center", fontsize=9, style="italic",
                             color="#555555"))  # fmt: skip
    for row in rows.itertuples():
        y0, y1 = scale(row.time), scale(row.arrive)
        colour = style.PROTOCOL.get(row.protocol, "#333333")
        current = row.Index == highlight
        if current:
            ax.axhspan(min(y0, y1) - 0.35, max(y0, y1) + 0.35, color=style.OKABE_ITO["yellow"],
                       alpha=0.35, zorder=0)  # fmt: skip
        if row.step == "timeout":
            marks.extend(ax.plot([x[row.dst]], [y1], marker="X", ms=9,
                                 color=style.OUTCOME["temporary"], zorder=4))  # fmt: skip
            fixed.append(ax.text(x[row.dst] + 0.1, y1, f"timeout: {short_label(row.label)}",
                                 fontsize=8, va="center", color=style.OUTCOME["temporary"]))  # fmt: skip
            continue
        # A group of replies takes the colour of its first failure: after a refused RCPT,
        # DATA's "554 no valid recipients" is a consequence, not the cause.
        failures = [style.outcome_of(c) for c in row.codes if c and style.outcome_of(c) != "ok"]
        if row.step == "RST" or row.label == "SYN (no answer)":
            failures = ["temporary"]  # a refused or unanswered connection: tried again later
        if failures:
            colour = style.OUTCOME[failures[0]]
            used.add(failures[0])
        arrow = ax.annotate(
            "", xy=(x[row.dst], y1), xytext=(x[row.src], y0),
            arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 2.6 if current else 1.3,
                        "shrinkA": 0, "shrinkB": 0},
            zorder=3,
        )  # fmt: skip
        arrow.set_gid("exchange")
        text = ax.text((x[row.src] + x[row.dst]) / 2, (y0 + y1) / 2, short_label(row.label),
                       ha="center", va="bottom", fontsize=8, color=colour, zorder=4,
                       bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})  # fmt: skip
        # On the arrow, at its middle if that is free, else further along it; above the
        # arrow first, then below; last, starting at its left end or ending at its right
        # one (a long label on an arrow near the edge of the diagram).
        x0, x1 = x[row.src], x[row.dst]
        spots = [
            (x0 + t * (x1 - x0), y0 + t * (y1 - y0), va)
            for va in ("bottom", "top")
            for t in (0.5, 0.35, 0.65, 0.2, 0.8)
        ]
        (xl, yl), (xr, yr) = sorted([(x0, y0), (x1, y1)])
        spots += [(xl + 0.15, yl + (yr - yl) * 0.1, va, "left") for va in ("bottom", "top")]
        spots += [(xr - 0.15, yr - (yr - yl) * 0.1, va, "right") for va in ("bottom", "top")]
        movable.append(labels.Movable(text, spots, own=(arrow.arrow_patch,)))
        arrows.append(arrow.arrow_patch)
    crashes = _crashes(ax, result, x, scale, rows, marks)
    _time_ticks(ax, scale)
    ax.set_ylim(bottom, top - 1.2)
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
        + (f" — page {page} of {count}" if page is not None else "")
        + f"\nscenario {result.scenario.name!r}; time runs down, long waits are cut",
        loc="left", fontsize=11,
    )  # fmt: skip
    handles = [Line2D([], [], color=c, lw=2, label=p.upper() if p != "pop3" else "POP3")
               for p, c in style.PROTOCOL.items() if p in set(rows["protocol"]) or p == "tcp"]  # fmt: skip
    if "temporary" in used:
        handles.append(Line2D([], [], color=style.OUTCOME["temporary"], lw=2,
                              label="temporary failure (4xx, refused)"))  # fmt: skip
    if "permanent" in used:
        handles.append(Line2D([], [], color=style.OUTCOME["permanent"], lw=2,
                              label="permanent failure (5xx)"))  # fmt: skip
    if (rows["step"] == "timeout").any():
        handles.append(Line2D([], [], color=style.OUTCOME["temporary"], marker="X", ms=9, lw=0,
                              label="no reply: the client's timeout"))  # fmt: skip
    if crashes:
        handles.append(Line2D([], [], color=style.OUTCOME["permanent"], marker="X", ms=12, lw=0,
                              label="server crash"))  # fmt: skip
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9,
              frameon=False)  # fmt: skip
    labels.place(ax, [*crashes, *movable], fixed, arrows, marks)
    return ax


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
) -> list[labels.Movable]:
    """Mark the moment a server crashed on its lane, if the ladder shows that moment; the
    words go right of the mark, or left, wherever no arrow crosses them."""
    from mailsim.scenario import CrashFault

    texts: list[labels.Movable] = []
    if rows.empty:
        return texts
    first, last = rows["time"].min(), rows["arrive"].max()
    for fault in result.scenario.faults:
        if isinstance(fault, CrashFault) and fault.node in x and first <= fault.at <= last:
            if any(t0 < fault.at < t1 for t0, t1, _, _ in scale.gaps):
                continue
            y = scale(fault.at)
            marks.extend(ax.plot([x[fault.node]], [y], marker="X", ms=14,
                                 color=style.OUTCOME["permanent"], zorder=6))  # fmt: skip
            text = ax.text(x[fault.node] + 0.15, y, f"{fault.node} crashes (back after"
                           f" {format_duration(fault.restart)})", fontsize=8.5,
                           va="center", color=style.OUTCOME["permanent"], zorder=6)  # fmt: skip
            spots = [(x[fault.node] + side * 0.15, y + dy, "center", ha)
                     for dy in (0.0, 0.4, -0.4, 0.8, -0.8) for side, ha in ((1, "left"), (-1, "right"))]  # fmt: skip
            texts.append(labels.Movable(text, spots))
    return texts


def short_label(text: str, width: int = 72) -> str:
    """A label that fits between lanes: a long reply loses its ``<address>:`` (the reason
    after it is what a class reads) and MAIL FROM its parameters, then the tail goes."""
    if len(text) > width:
        text = re.sub(r"^(\d{3}[ -](?:\d\.\d{1,3}\.\d{1,3} )?)<[^>]*>:? ", r"\1", text)
        text = re.sub(r" (SIZE|BODY)=\S+", "", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _why(result: Result, message: str, t0: float, t1: float) -> str:
    """What the message was waiting for during a cut wait."""
    events = result.events
    timeouts = events[(events["step"] == "timeout") & ((events["time"] - t1).abs() < 1e-6)]
    if not timeouts.empty:
        return "no reply: waiting for the client's timeout"
    hops = result.hops
    mine = hops[hops["message"] == message]
    starting = mine[(mine["start"] >= t1 - 1e-9) & (mine["start"] <= t1 + 1.0)]
    if not starting.empty and (starting["protocol"] == "pop3").any():
        return "waiting for the POP poll"
    from mailsim.scenario import CrashFault

    for fault in result.scenario.faults:
        # A server that is down for the whole wait: the message waits for it to restart.
        if (
            isinstance(fault, CrashFault)
            and fault.at <= t0 + 1e-6
            and t1 <= fault.at + fault.restart + 1.0
        ):
            return f"{fault.node} is down, until it restarts at {fault.at + fault.restart:.1f} s"
    failed = mine[(mine["end"] <= t0 + 1e-6) & ~mine["code"].astype(str).str.startswith(("2", "+"))]
    if not failed.empty:
        return "waiting to try again"
    return "waiting"


def _time_ticks(ax: Axes, scale: TimeScale) -> None:
    """Real time at the start of each stretch of activity (bold), and within a stretch
    every few drawn units, as milliseconds since the stretch began."""
    if not scale.points:
        return
    starts = [scale.points[0][0], *(t1 for _, t1, _, _ in scale.gaps)]
    ticks: dict[float, str] = {}
    for i, start in enumerate(starts):
        end = scale.gaps[i][0] if i < len(scale.gaps) else scale.points[-1][0]
        ticks[scale(start)] = f"{start:.3f} s"
        last_y = scale(start)
        for t, y in scale.points:
            if start < t <= end and y - last_y >= 8.0:
                ticks[y] = f"+{(t - start) * 1000:.1f} ms"
                last_y = y
    ys = sorted(ticks)
    ax.set_yticks(ys, [ticks[y] for y in ys], fontsize=8)
    for label in ax.get_yticklabels():
        if label.get_text().endswith(" s"):
            label.set_fontweight("bold")
    ax.set_ylabel("time (nonlinear: long waits cut)")
