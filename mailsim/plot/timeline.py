"""A Gantt chart of many messages: for each (message, recipient), its hops as bars, and
the waits between them — queued, waiting to try again, waiting for the POP poll; failed
attempts marked with their reply codes."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from mailsim.plot import labels as labels_
from mailsim.plot import style
from mailsim.result import Result

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
    end_time = max(result.end_time, 1.0)
    scale, unit = style.time_unit(end_time)
    min_width = end_time / scale / 400  # keep millisecond sessions visible
    labels = []
    codes: list[tuple[int, labels_.Movable]] = []
    for row, copy in enumerate(copies):
        mine = hops[(hops["message"] == copy.message.id) & (hops["recipient"] == copy.recipient)]
        labels.append(f"{copy.message.id} → {copy.recipient}")
        previous_end = copy.submitted_at
        previous_failed = False
        for hop in mine.itertuples():
            if hop.start > previous_end:
                kind = (
                    "retry" if previous_failed else ("poll" if hop.protocol == "pop3" else "queued")
                )
                colour, hatch = WAITS[kind]
                ax.barh(row, (hop.start - previous_end) / scale, left=previous_end / scale,
                        height=0.35, color=colour, hatch=hatch, edgecolor="white", lw=0,
                        gid=f"wait-{kind}")  # fmt: skip
            outcome = style.outcome_of(str(hop.code))
            colour = (
                style.PROTOCOL.get(hop.protocol, "#333333")
                if outcome == "ok"
                else style.OUTCOME[outcome]
            )
            width = max((hop.end - hop.start) / scale, min_width)
            ax.barh(row, width, left=hop.start / scale, height=0.7, color=colour, gid="hop")
            if outcome != "ok":
                text = ax.text(hop.start / scale, row - 0.42, str(hop.code), fontsize=8,
                               color=colour, ha="left", va="bottom")  # fmt: skip
                spots = [(hop.start / scale, row - 0.42, "bottom"),
                         (hop.start / scale, row + 0.42, "top")]  # fmt: skip
                codes.append((row, labels_.Movable(text, spots)))
            previous_end = max(previous_end, hop.end)
            previous_failed = outcome != "ok"
        if copy.status in ("refused", "bounced", "expired"):
            ax.text(previous_end / scale, row, f"  {copy.status}", va="center", fontsize=8,
                    color=style.OUTCOME["permanent"])  # fmt: skip
    ax.set_yticks(range(len(copies)), labels, fontsize=8)
    ax.set_ylim(len(copies) - 0.4, -0.9)  # room above the first row for reply codes
    ax.set_xlabel(f"time since the start of the run ({unit})")
    ax.set_xlim(0, end_time / scale * 1.02)
    handles = [
        Patch(color=style.PROTOCOL["smtp"], label="SMTP hop (submission, relay)"),
        Patch(color=style.PROTOCOL["lmtp"], label="LMTP hop (into the mailbox)"),
        Patch(color=style.PROTOCOL["pop3"], label="POP3 hop (retrieval)"),
        Patch(color=WAITS["queued"][0], label="queued"),
        Patch(
            facecolor=WAITS["retry"][0],
            hatch="///",
            edgecolor="white",
            lw=0,
            label="waiting to try again",
        ),  # drawn as the bars are
        Patch(color=WAITS["poll"][0], label="waiting for the POP poll"),
        Patch(color=style.OUTCOME["temporary"], label="failed attempt (4xx, timeout)"),
        Patch(color=style.OUTCOME["permanent"], label="refused (5xx)"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)  # fmt: skip
    noun = "copy" if len(copies) == 1 else "copies"
    ax.set_title(f"Journeys of {len(copies)} message {noun} — scenario {result.scenario.name!r}",
                 loc="left", fontsize=11)  # fmt: skip
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    _codes(ax, codes)
    return ax


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
