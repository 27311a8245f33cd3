"""Where the time went: per message, the end-to-end delay split into its parts (stacked
bars, like Postfix's ``delays=a/b/c/d``); for many messages, the distribution (ECDF)
with its percentiles."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from mailsim.message import COSTS
from mailsim.plot import style
from mailsim.result import Result
from mailsim.units import format_duration

SHORT = {"network": "network", "tls": "TLS", "dns": "DNS", "server": "server",
         "queue": "queue", "retry": "retries", "poll": "POP wait"}  # fmt: skip
MANY = 30  # above this many copies, draw the distribution instead of one bar each


def delays(result: Result, message: str | None = None, *, ax: Axes | None = None) -> Axes:
    """Stacked delay parts per copy (or of one ``message``); an ECDF for many copies.

    Copies that were never retrieved (bounced, expired, still on their way) get a bar too,
    below the retrieved ones: the time they spent until their journey ended, and why."""
    frame = result.messages
    if message is not None:
        frame = frame[frame["id"] == message]
    retrieved = frame["retrieved_at"].notna()
    if retrieved.sum() > MANY:
        return _ecdf(result, frame.loc[retrieved, "delay"].to_numpy(), ax, len(frame))
    frame = frame.sort_values("retrieved_at", key=lambda c: c.isna(), kind="stable")
    if ax is None:
        _, ax = plt.subplots(figsize=(12.8, max(2.6, 0.5 * len(frame) + 2.0)), layout="constrained")
    longest = float(frame["delay"].max()) if len(frame) else 1.0
    scale, unit = style.time_unit(longest)
    labels = []
    for row, item in enumerate(frame.itertuples()):
        left = 0.0
        for cost in COSTS:
            width = float(getattr(item, f"{cost}_time"))
            if width > 0:
                ax.barh(row, width / scale, left=left / scale, color=style.COST[cost],
                        height=0.6, gid=f"delay-{cost}")  # fmt: skip
            left += width
        # The working parts are too small to see next to the waits: say every part in
        # words (short names: the legend has the long ones), so that they add up to the
        # number at the end of the bar.
        working = " + ".join(
            f"{SHORT[c]} {format_duration(float(getattr(item, f'{c}_time')))}"
            for c in COSTS
            if float(getattr(item, f"{c}_time")) > 0
        )
        words = f"  {format_duration(item.delay)}"
        if pd.isna(item.retrieved_at):
            reason = f": {_short(str(item.reason))}" if item.reason else ""
            words = f"  {item.status} after {format_duration(item.delay)}{reason}"
        colour = "#000000" if pd.notna(item.retrieved_at) else style.OUTCOME["permanent"]
        ax.text(left / scale, row, words, va="center", fontsize=9, color=colour)
        if len(frame) > 1:  # one copy: the legend says each part's value already
            ax.text(0, row - 0.42, f" {working}", va="center", fontsize=8, color="#333333")
        labels.append(f"{item.id} → {item.recipient}")
    # The legend says how much each part is: small parts are invisible next to long waits.
    handles = []
    for cost in COSTS:
        total = frame[f"{cost}_time"]
        if total.sum() <= 0:
            continue
        label = style.COST_LABEL[cost]
        if len(frame) == 1:
            label += f": {format_duration(float(total.iloc[0]))}"
        handles.append(Patch(color=style.COST[cost], label=label))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)  # fmt: skip
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.75)  # top row first, with room for its words
    ax.set_xlabel(f"{unit} from submission to retrieval (or to where the journey ended)")
    ax.set_xlim(0, longest / scale * 1.15)
    ax.set_title(f"Where the time went: end-to-end delay of each message, by part — scenario"
                 f" {result.scenario.name!r}", loc="left", fontsize=11)  # fmt: skip
    return ax


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _ecdf(result: Result, values: np.ndarray, ax: Axes | None, copies: int) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(12.8, 7.2), layout="constrained")
    values = np.sort(values)
    share = np.arange(1, len(values) + 1) / len(values)
    ax.step(values / 60, share, where="post", color=style.OKABE_ITO["blue"], lw=2, gid="ecdf")
    right = float(values[-1]) / 60 if len(values) else 1.0
    # Each percentile's label at its own height, so that close lines keep them apart;
    # labels of lines near the right edge go to the left of their line.
    for y, q, colour in ((0.10, 50, "green"), (0.18, 90, "orange"), (0.26, 99, "vermillion")):
        v = float(np.percentile(values, q))
        ax.axvline(v / 60, color=style.OKABE_ITO[colour], ls="--", lw=1)
        near_edge = v / 60 > 0.75 * right
        ax.text(v / 60, y, f" p{q} = {format_duration(v)} " , fontsize=9,
                ha="right" if near_edge else "left", color=style.OKABE_ITO[colour])  # fmt: skip
    ax.set_xlabel("end-to-end delay, submission to retrieval (minutes)")
    ax.set_ylabel("share of messages retrieved within")
    ax.set_ylim(0, 1.02)
    ax.grid(color="#eeeeee")
    ax.set_title(f"Delivery delay of the {len(values)} of {copies} message copies that were"
                 f" retrieved — scenario {result.scenario.name!r}", loc="left", fontsize=11)  # fmt: skip
    return ax
