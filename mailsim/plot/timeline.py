"""A Gantt chart of many messages: for each (message, recipient), its hops as bars, and
the waits between them — queued, waiting to try again, waiting for the POP poll; failed
attempts marked with their reply codes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Rectangle

from mailsim.plot import labels as labels_
from mailsim.plot import style
from mailsim.result import Result

# Words in the failure colours, darkened to 4.5:1 or more on white (orange is 2.0:1).
TEXT = {"temporary": "#8A5A00", "permanent": "#A84300"}
MIN_PX = 3.5  # the narrowest hop drawn, in pixels
WAITS = {
    "queued": ("#d9d9d9", ""),
    "retry": (style.OUTCOME["temporary"], "///"),
    "poll": (style.COST["poll"], ""),
}


def timeline(result: Result, *, ax: Axes | None = None, limit: int = 40) -> Axes:
    """Draw the first ``limit`` copies' journeys against time (minutes)."""
    copies = result.copies[:limit]
    if ax is None:
        _, ax = plt.subplots(
            figsize=(12.8, max(3.0, 0.45 * len(copies) + 1.8)), layout="constrained"
        )
    hops = result.hops
    hops = hops[~hops["duplicate"]]
    end_time = max(_shown_end(result, copies, hops), 1.0)
    scale, unit = style.time_unit(end_time)
    tiny = end_time * 1.02 / 1000  # a wait under a pixel wide is not drawn, nor in the legend
    labels = []
    drawn: set[str] = set()  # legend keys of what is on the axes
    codes: list[tuple[int, labels_.Movable]] = []
    for row, copy in enumerate(copies):
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
                ax.barh(row, (hop.start - previous_end) / scale, left=previous_end / scale,
                        height=0.35, color=colour, hatch=hatch, edgecolor="white", lw=0,
                        gid=f"wait-{kind}")  # fmt: skip
                drawn.add(kind)
            outcome = style.outcome_of(str(hop.code))
            colour = (
                style.PROTOCOL.get(hop.protocol, "#333333")
                if outcome == "ok"
                else style.OUTCOME[outcome]
            )
            ax.barh(row, (hop.end - hop.start) / scale, left=hop.start / scale, height=0.7,
                    color=colour, gid="hop")  # fmt: skip
            drawn.add(hop.protocol if outcome == "ok" else outcome)
            if outcome != "ok":
                text = ax.text(hop.start / scale, row - 0.42, str(hop.code), fontsize=10,
                               color=TEXT[outcome], ha="left", va="bottom")  # fmt: skip
                spots = [(hop.start / scale, row - 0.42, "bottom"),
                         (hop.start / scale, row + 0.42, "top")]  # fmt: skip
                codes.append((row, labels_.Movable(text, spots)))
            previous_end = max(previous_end, hop.end)
            previous_failed = outcome != "ok"
        if copy.status in ("refused", "bounced", "expired"):
            ax.text(previous_end / scale, row, f"  {copy.status}", va="center", fontsize=10,
                    color=TEXT["permanent"])  # fmt: skip
    ax.set_yticks(range(len(copies)), labels, fontsize=10)
    ax.set_ylim(len(copies) - 0.4, -0.9)  # room above the first row for reply codes
    ax.set_xlabel(f"time since the start of the run ({unit})")
    ax.set_xlim(0, end_time / scale * 1.02)
    shown = [patch for key, patch in _legend().items() if key in drawn]
    handles = list({patch.get_label(): patch for patch in shown}.values())  # SMTP once
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=10,
              frameon=False)  # fmt: skip
    ax.set_title(f"Journeys of {_how_many(result, len(copies))} — scenario"
                 f" {result.scenario.name!r}", loc="left", fontsize=11)  # fmt: skip
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    _codes(ax, codes)
    widen(ax, [p for p in ax.patches if p.get_gid() == "hop"])
    return ax


def _shown_end(result: Result, copies: list, hops: pd.DataFrame) -> float:
    """Where the drawn journeys end: a sample of the first messages of a day is drawn on
    its own minutes, not on the whole day's axis; a copy still on its way runs to the end."""
    if any(c.status == "in_flight" for c in copies):
        return result.end_time
    shown = {(c.message.id, c.recipient) for c in copies}
    mine = hops[[key in shown for key in zip(hops["message"], hops["recipient"], strict=True)]]
    ends = [*mine["end"], *(c.submitted_at for c in copies)]
    return float(max(ends)) if ends else result.end_time


def _how_many(result: Result, shown: int) -> str:
    """The title's count: a sample says of how many ("40 of 17,004 messages")."""
    total = len(result.copies)
    noun = "messages" if total == len({c.message.id for c in result.copies}) else "message copies"
    if shown < total:
        return f"{shown} of {total:,} {noun}"
    if total == 1:
        return "1 message copy" if noun == "message copies" else "1 message"
    return f"{total} {noun}"


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


def widen(ax: Axes, bars: list[Rectangle]) -> None:
    """Bars narrower than MIN_PX pixels on the drawn axes get that width: a 13 ms hop on
    a 3-hour axis is still a mark the class can see."""
    ax.figure.draw_without_rendering()  # the layout engine has placed the axes now
    (x0, _), (x1, _) = ax.transData.transform([(0.0, 0.0), (1.0, 0.0)])
    least = MIN_PX / max(abs(x1 - x0), 1e-12)
    for bar in bars:
        if bar.get_width() < least:
            bar.set_width(least)
            bar.set_zorder(bar.get_zorder() + 0.5)  # over the wider neighbour it now touches


def _codes(ax: Axes, codes: list[tuple[int, labels_.Movable]]) -> None:
    """Reply codes above (or below) their failed attempts; where attempts come too close
    together to label each, the label before them counts them: "4.4.1 ×3"."""
    free = labels_.place(ax, [item for _, item in codes], fixed=[])
    groups: dict[int, list[list[str]]] = {}  # row → [[shown code, hidden codes…], …]
    texts: dict[int, list[labels_.Movable]] = {}
    for (row, item), ok in zip(codes, free, strict=True):
        code = item.text.get_text()
        if ok or row not in groups:
            groups.setdefault(row, []).append([code])
            texts.setdefault(row, []).append(item)
        else:
            item.text.set_visible(False)
            groups[row][-1].append(code)
    for row, runs in groups.items():
        for run, item in zip(runs, texts[row], strict=True):
            if len(run) > 1:
                same = len(set(run)) == 1
                item.text.set_text(f"{run[0]} ×{len(run)}" if same else f"{run[0]} and others")
