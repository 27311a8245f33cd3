"""A Gantt chart of many messages: for each (message, recipient), its hops as bars, and
the waits between them — queued, waiting to try again, waiting for the POP poll; failed
attempts marked with their reply codes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter

from mailsim.plot import labels as labels_
from mailsim.plot import style
from mailsim.result import Result
from mailsim.traffic import seconds_into_day

# Words in the failure colours, darkened to 4.5:1 or more on white (orange is 2.0:1).
TEXT = {"temporary": "#8A5A00", "permanent": "#A84300"}
MIN_PX = 3.5  # the narrowest hop drawn, in pixels
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
    labels = []
    drawn: set[str] = set()  # legend keys of what is on the axes
    codes: list[tuple[int, labels_.Movable]] = []
    for row, copy in enumerate(copies):
        y = row + shape.centre
        mine = hops[(hops["message"] == copy.message.id) & (hops["recipient"] == copy.recipient)]
        labels.append(f"{copy.message.id} → {copy.recipient}")
        previous_end = copy.submitted_at
        previous_failed = False
        for hop in mine.itertuples():
            if hop.start - previous_end > tiny:
                kind = (
                    "retry" if previous_failed else ("poll" if hop.protocol == "pop3" else "queued")
                )
                colour, hatch = WAITS[kind]
                ax.barh(y, (hop.start - previous_end) / scale, left=previous_end / scale,
                        height=shape.wait, color=colour, hatch=hatch, edgecolor="white", lw=0,
                        gid=f"wait-{kind}")  # fmt: skip
                drawn.add(kind)
            outcome = style.outcome_of(str(hop.code))
            colour = (
                style.PROTOCOL.get(hop.protocol, "#333333")
                if outcome == "ok"
                else style.OUTCOME[outcome]
            )
            ax.barh(y, (hop.end - hop.start) / scale, left=hop.start / scale, height=shape.hop,
                    color=colour, gid="hop")  # fmt: skip
            drawn.add(hop.protocol if outcome == "ok" else outcome)
            if outcome != "ok":
                top = y - shape.hop / 2 - 0.03  # just above the bar, within the row
                text = ax.text(hop.start / scale, top, str(hop.code), fontsize=FONT,
                               color=TEXT[outcome], ha="left", va="bottom", gid="code")  # fmt: skip
                spots = [(hop.start / scale, top, "bottom", "left"),
                         (hop.end / scale, top, "bottom", "right")]  # fmt: skip
                codes.append((row, labels_.Movable(text, spots)))
            previous_end = max(previous_end, hop.end)
            previous_failed = outcome != "ok"
        if copy.status in ("refused", "bounced", "expired"):
            ax.text(previous_end / scale, y, f"  {copy.status}", va="center", fontsize=FONT,
                    color=TEXT["permanent"])  # fmt: skip
    rows = max(float(len(copies)), _fit_rows(ax, ROOMY))
    ax.set_yticks([k + shape.centre for k in range(len(copies))], labels, fontsize=FONT)
    pad = (rows - len(copies)) / 2  # a few messages: rows of a bar's height, in the middle
    ax.set_ylim(len(copies) - 0.5 + pad, -0.5 - pad)
    if busiest:  # a few minutes in the middle of a day: the clock says when
        few = end_time - start_time < 5 * 60  # seconds on the ticks of a short stretch
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _clock(result, x * scale, few)))
        ax.set_xlabel("time of day (the scenario's local time)", fontsize=FONT)
    else:
        ax.set_xlabel(f"time since the start of the run ({unit})", fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    left = start_time - (end_time - start_time) * 0.01 if busiest else 0.0
    ax.set_xlim(left / scale, end_time / scale + (end_time - start_time) * 0.02 / scale)
    shown = [patch for key, patch in _legend().items() if key in drawn]
    handles = list({patch.get_label(): patch for patch in shown}.values())  # SMTP once
    handles += _outages(ax, result, scale, unit, (left, end_time))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=FONT,
              frameon=False)  # fmt: skip
    ax.set_title(f"Journeys of {_how_many(result, copies, busiest)} — scenario"
                 f" {result.scenario.name!r}", loc="left", fontsize=FONT + 1)  # fmt: skip
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    _codes(ax, codes)
    widen(ax, [p for p in ax.patches if p.get_gid() == "hop"], chain=True)
    return ax


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


def _legend() -> dict[str, Patch]:
    """Every entry the timeline may need, by the key its bars record when drawn."""
    return {
        "submission": Patch(color=style.PROTOCOL["smtp"], label="SMTP hop (submission, relay)"),
        "smtp": Patch(color=style.PROTOCOL["smtp"], label="SMTP hop (submission, relay)"),
        "lmtp": Patch(color=style.PROTOCOL["lmtp"], label="LMTP hop (into the mailbox)"),
        "pop3": Patch(color=style.PROTOCOL["pop3"], label="POP3 hop (retrieval)"),
        "queued": Patch(color=WAITS["queued"][0], label="queued"),
        "retry": Patch(
            facecolor=WAITS["retry"][0],
            hatch="///",
            edgecolor="white",
            lw=0,
            label="waiting to try again",
        ),  # drawn as the bars are
        "poll": Patch(color=WAITS["poll"][0], label="waiting for the POP poll"),
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


def _codes(ax: Axes, codes: list[tuple[int, labels_.Movable]]) -> None:
    """Reply codes above their failed attempts; where attempts come too close together
    to label each, the label before them counts them: "4.4.1 ×3"."""
    free = labels_.place(ax, [item for _, item in codes], fixed=[])
    Run = list[tuple[str, labels_.Movable]]  # (its code, its label): the first one shown
    runs: dict[int, list[Run]] = {}
    for (row, item), ok in zip(codes, free, strict=True):
        code = item.text.get_text()
        if ok or row not in runs:
            runs.setdefault(row, []).append([(code, item)])
        else:
            runs[row][-1].append((code, item))
    renderer = labels_._renderer(ax.figure)
    for row_runs in runs.values():
        k = 0
        while k < len(row_runs):
            _count(row_runs[k])
            # A longer label may now reach the next one: that one joins the count.
            if k + 1 < len(row_runs) and _touch(row_runs[k][0][1], row_runs[k + 1][0][1], renderer):
                row_runs[k] += row_runs.pop(k + 1)
                continue
            k += 1


def _count(run: list[tuple[str, labels_.Movable]]) -> None:
    """The first label of a run names the run's codes; the others are hidden."""
    (first, shown), rest = run[0], run[1:]
    for _, item in rest:
        item.text.set_visible(False)
    if rest:
        same = {code for code, _ in rest} == {first}
        shown.text.set_text(f"{first} ×{len(run)}" if same else f"{first} and others")


def _touch(a: labels_.Movable, b: labels_.Movable, renderer: object) -> bool:
    box_a = a.text.get_window_extent(renderer).padded(labels_.PAD)
    box_b = b.text.get_window_extent(renderer).padded(labels_.PAD)
    return bool(box_a.overlaps(box_b))


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
