"""The load over the day: how many messages people send, by the scenario's local time,
and how long the servers then take to put them in a mailbox — where a busy hour shows
whether the servers keep up (a queue) or not (nobody notices)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator

from mailsim.plot import style
from mailsim.result import Result
from mailsim.traffic import seconds_into_day

BINS = (60, 300, 900, 1800, 3600)  # seconds; the first that gives at most 60 bars


def _clock(hours: float, _: object = None) -> str:
    minutes = round(hours * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def load(result: Result, *, ax: Axes | None = None, width: float | None = None) -> Axes:
    """Bars: messages submitted per hour, in bins of ``width`` seconds (chosen from the
    run's length when not given). Lines, on the right axis: the mean and 95th
    percentile time from submission until the copy was in the recipient's mailbox, and
    the mean part of it spent waiting for a free server process (queueing)."""
    frame = result.messages
    frame = frame[frame["kind"] == "message"]
    if ax is None:
        _, ax = plt.subplots(figsize=(12.8, 6.4), layout="constrained")
    clock = seconds_into_day(result.scenario.start)
    span = max(float(frame["submitted_at"].max()) if len(frame) else 0.0, 60.0)
    width = width or next((w for w in BINS if span / w <= 60), BINS[-1])
    bins = (frame["submitted_at"].to_numpy() // width).astype(int)
    count = np.bincount(bins, minlength=1) if len(frame) else np.zeros(1, dtype=int)
    starts = (clock + np.arange(len(count)) * width) / 3600
    ax.bar(starts, count * 3600 / width, width=width / 3600, align="edge",
           color=style.PROTOCOL["submission"], alpha=0.35, label="messages sent per hour")  # fmt: skip
    ax.set_ylabel("messages sent per hour", color=style.PROTOCOL["submission"])
    ax.set_xlabel("time of day (the scenario's local time)")
    ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    # Ticks a few per axis: every 5 minutes for a half-hour run … every 3 hours for days.
    step = next(h for h in (1 / 12, 1 / 4, 1, 3) if span / 3600 / h <= 16)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlim(starts[0], starts[-1] + width / 3600)

    right = ax.twinx()
    done = frame[frame["delivered_at"].notna()]
    delay = (done["delivered_at"] - done["submitted_at"]).to_numpy()
    queue = done["queue_time"].to_numpy()
    which = (done["submitted_at"].to_numpy() // width).astype(int)
    middle = starts + width / 7200
    rows = [(middle[b], delay[which == b].mean(), np.percentile(delay[which == b], 95),
             queue[which == b].mean()) for b in np.unique(which)]  # fmt: skip
    if rows:
        x, mean, p95, wait = map(np.array, zip(*rows, strict=True))
        right.plot(x, p95, color=style.OUTCOME["permanent"], lw=1.2, ls="--")
        right.plot(x, mean, color=style.OUTCOME["ok"], lw=2.0)
        right.plot(x, wait, color=style.COST["queue"], lw=2.0, ls=":")
        right.set_ylim(0, max(float(p95.max()) * 1.15, 0.01))
    right.set_ylabel("seconds from sending to the recipient's mailbox")
    ax.set_zorder(right.get_zorder() + 1)  # bars behind the lines, ticks of both
    ax.patch.set_visible(False)
    ax.legend(
        handles=[
            Patch(color=style.PROTOCOL["submission"], alpha=0.35, label="messages sent per hour"),
            Line2D([], [], color=style.OUTCOME["ok"], lw=2.0, label="in the mailbox after: mean"),
            Line2D(
                [],
                [],
                color=style.OUTCOME["permanent"],
                lw=1.2,
                ls="--",
                label="in the mailbox after: 95th percentile",
            ),
            Line2D(
                [],
                [],
                color=style.COST["queue"],
                lw=2.0,
                ls=":",
                label="of which waiting for a free server process (mean)",
            ),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=2,
        fontsize=9,
        frameon=False,
    )
    minutes = width // 60
    ax.set_title(
        f"Load over the day: {len(frame):,} messages in {minutes}-minute bins"
        f" — scenario {result.scenario.name!r}",
        loc="left",
        fontsize=11,
    )
    return ax
