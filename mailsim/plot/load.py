"""The load over the day: how many messages people send, by the scenario's local time,
and how long the servers then take to put them in a mailbox — where a busy hour shows
whether the servers keep up (a queue) or not (nobody notices). Two panels sharing the
time axis, one quantity on each: two y-axes on one panel invite comparing their heights."""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mailsim.plot import style
from mailsim.plot.delays import GROUP_COLOURS, sender_domains
from mailsim.result import Result
from mailsim.traffic import seconds_into_day

BINS = (60, 300, 900, 1800, 3600)  # seconds; the first that gives at most 60 bars


# A 95th percentile needs at least 20 values to be more than the largest one: with
# fewer, np.percentile interpolates between the top two, and the line would claim more
# than the bin supports.
PERCENTILE_MIN = 20
SLOWEST = "#333333"  # the slowest message of a window: a mark, not a line
# End-of-DATA work from this much on is a scan (SpamAssassin, a virus check), which sets
# how many messages a server can take; below it, a queue file's fsync (5 ms by default).
SCAN = 0.1


def load(result: Result, *, ax: Axes | None = None, width: float | None = None) -> Axes:
    """Two panels over the same time of day, one quantity each. Above: messages
    submitted per hour, in bins of ``width`` seconds (chosen from the run's length when
    not given). Below: the mean and the 95th percentile time from submission until the
    copy was in the recipient's mailbox, and the mean part of it spent waiting for a free
    session (queueing). Where the scenario compares groups (two firms: the senders'
    domains), the bars and the means are drawn per group, one colour each. Returns the
    upper panel; ``ax``, if given, is split in two."""
    frame = result.messages
    frame = frame[frame["kind"] == "message"]
    own = ax is None
    top, bottom = _panels(ax)
    clock = seconds_into_day(result.scenario.start)
    span = max(float(frame["submitted_at"].max()) if len(frame) else 0.0, 60.0)
    width = width or _window(frame["submitted_at"].to_numpy(), span)
    bins = (frame["submitted_at"].to_numpy() // width).astype(int)
    count = np.bincount(bins, minlength=1) if len(frame) else np.zeros(1, dtype=int)
    starts = (clock + np.arange(len(count)) * width) / 3600
    groups = compared_groups(frame)
    domains = sender_domains(frame).to_numpy()
    handles: list[Any] = []
    below = np.zeros(len(count))
    for k, group in enumerate(groups or [None]):  # stacked: the total is the servers' load
        mine = bins if group is None else bins[domains == group]
        part = np.bincount(mine, minlength=len(count))[: len(count)] * 3600 / width
        colour = style.PROTOCOL["submission"] if group is None else _colour(k)
        top.bar(starts, part, width=width / 3600, bottom=below, align="edge", color=colour,
                alpha=0.45, label="messages sent per hour" if group is None else group,
                gid="load-sent")  # fmt: skip
        below = below + part
    top.set_ylabel("messages sent\nper hour")
    top.grid(axis="both", alpha=0.3)
    _capacity(top, result, float(below.max()) if len(below) else 0.0)

    done = frame[frame["delivered_at"].notna()]
    delay = (done["delivered_at"] - done["submitted_at"]).to_numpy()
    queue = done["queue_time"].to_numpy()
    which = (done["submitted_at"].to_numpy() // width).astype(int)
    middle = starts + width / 7200
    rows = [
        (middle[b], mine.mean(), _p95(mine), queue[which == b].mean(), mine.max())
        for b in np.unique(which)
        for mine in [delay[which == b]]
    ]
    longest = 0.0
    if rows:
        x, mean, p95, wait, slowest = map(np.array, zip(*rows, strict=True))
        means = _means(done, groups, which, delay, queue, middle)
        drawn = [mean, p95, *(m for _, m, _ in means.values())]
        longest = float(np.nanmax(np.concatenate(drawn if groups else [*drawn, slowest])))
        scale, unit = style.time_unit(longest if longest > 0 else 1.0)
        if groups:
            handles += _grouped(
                bottom, means, sender_domains(frame).value_counts().to_dict(), scale
            )
            handles += _grouped_p95(bottom, done, groups, which, delay, middle, scale)
        else:
            bottom.plot(x, mean / scale, color=style.OUTCOME["ok"], lw=2.4, gid="load-mean")
            handles.append(Line2D([], [], color=style.OUTCOME["ok"], lw=2.4,
                                  label="in the mailbox after: mean"))  # fmt: skip
        if np.isfinite(p95).any() and not groups:  # a group's own: in _grouped
            # Markers too: a window with enough messages between two without is a point.
            bottom.plot(x, p95 / scale, color=style.OUTCOME["permanent"], lw=1.6, ls="--",
                        marker="o", ms=4, gid="load-p95")  # fmt: skip
            handles.append(Line2D([], [], color=style.OUTCOME["permanent"], lw=1.6, ls="--",
                                  label=f"in the mailbox after: 95th percentile"
                                  f" (windows of {PERCENTILE_MIN} messages or more)"))  # fmt: skip
        if not groups:  # the unlucky message a mean hides, window by window
            bottom.plot(x, slowest / scale, ls="none", marker="^", ms=6, color=SLOWEST,
                        gid="load-max")  # fmt: skip
            handles.append(Line2D([], [], ls="none", marker="^", ms=6, color=SLOWEST,
                                  label="the slowest message of each window"))  # fmt: skip
        if wait.max() > 0 and not groups:
            bottom.plot(x, wait / scale, color=style.COST["queue"], lw=2.4, ls=":",
                        gid="load-queue")  # fmt: skip
            handles.append(Line2D([], [], color=style.COST["queue"], lw=2.4, ls=":",
                                  label="of which waiting for a free session (mean)"))  # fmt: skip
    else:
        scale, unit = 1.0, "s"
    bottom.set_ylim(0, max(longest / scale * 1.15, 0.01))
    bottom.set_ylabel(f"sending → mailbox\n({unit})")
    # The clock, said as the timeline and the servers figure say it; a few ticks per axis.
    style.clock_axis(bottom, 0.0, 3600.0, max(span, 5 * 60))
    bottom.grid(axis="both", alpha=0.3)
    bottom.set_xlim(starts[0], starts[-1] + width / 3600)
    handles, words = _key(handles)
    title = GROUPED_KEY if groups else None
    if handles and own:  # below the panels: a key inside would cover the busiest hours
        bottom.figure.legend(handles, words, title=title, title_fontsize=11, loc="outside lower center", ncol=2, fontsize=11,
                             frameon=False, handler_map={tuple: HandlerTuple(ndivide=None)})  # fmt: skip
    elif handles:
        bottom.legend(handles, words, title=title, title_fontsize=11, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=11,
                      frameon=False, handler_map={tuple: HandlerTuple(ndivide=None)})  # fmt: skip
    minutes = width // 60
    top.set_title(
        f"Load {'over the day' if span >= 8 * 3600 else 'during the run'}: {len(frame):,}"
        f" messages, counted in {minutes}-minute windows"
        f" — scenario {result.scenario.name!r}",
        loc="left",
        fontsize=13,
    )
    for axes in (top, bottom):
        axes.tick_params(labelsize=11)
        axes.yaxis.label.set_size(12)
    bottom.xaxis.label.set_size(12)
    return top


def compared_groups(messages: pd.DataFrame) -> list[str]:
    """The groups a scenario compares, as the delays figure's curves split them: the
    senders' domains (two firms, an office and its partner), when there are two to six."""
    names = list(dict.fromkeys(sender_domains(messages[messages["kind"] == "message"])))
    return names if 2 <= len(names) <= len(GROUP_COLOURS) else []


GROUPED_KEY = "sent from — bars: messages sent; lines: in the mailbox after, mean"
GROUP_MARKERS = ("o", "s", "^", "D", "v", "P")  # a group's shape, besides its colour
Means = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # group → x, delay, queueing


def _colour(k: int) -> str:
    """The k-th group's colour: the delays figure's, so that a firm keeps its colour."""
    return style.OKABE_ITO[GROUP_COLOURS[k]]


def _means(done: pd.DataFrame, groups: list[str], which: np.ndarray, delay: np.ndarray,
           queue: np.ndarray, middle: np.ndarray) -> Means:  # fmt: skip
    """Each group's mean time to the mailbox and mean queueing, window by window."""
    domains = sender_domains(done).to_numpy()
    means: Means = {}
    for group in groups:
        mine = domains == group
        windows = np.unique(which[mine])
        means[group] = (
            middle[windows],
            np.array([delay[mine & (which == b)].mean() for b in windows]),
            np.array([queue[mine & (which == b)].mean() for b in windows]),
        )
    return means


def _grouped(bottom: Axes, means: Means, counts: dict[str, int], scale: float) -> list[Any]:
    """One mean line per group, in its colour and shape; a dotted one, where its messages
    waited for a free session. Returns the key's entries: a group's bar and line as one."""
    handles: list[Any] = []
    for k, (group, (x, mean, wait)) in enumerate(means.items()):
        colour, marker = _colour(k), GROUP_MARKERS[k]
        bottom.plot(x, mean / scale, color=colour, lw=2.4, marker=marker, ms=6,
                    gid="load-mean", label=group)  # fmt: skip
        if wait.max() > 0:
            bottom.plot(x, wait / scale, color=colour, lw=2.4, ls=":", gid="load-queue",
                        label=f"{group}: waiting for a free session")  # fmt: skip
        bar = Patch(color=colour, alpha=0.45)
        handles.append(((bar, Line2D([], [], color=colour, lw=2.4, marker=marker, ms=6)),
                        f"{group} ({counts[group]:,} messages)"))  # fmt: skip
    if any(line.get_gid() == "load-queue" for line in bottom.get_lines()):
        handles.append(Line2D([], [], color="#000000", lw=2.4, ls=":",
                              label="dotted: of which waiting for a free session"))  # fmt: skip
    return handles


def _grouped_p95(bottom: Axes, done: pd.DataFrame, groups: list[str], which: np.ndarray,
                 delay: np.ndarray, middle: np.ndarray, scale: float) -> list[Any]:  # fmt: skip
    """Each group's 95th percentile, dashed in its colour, in the windows where it sent
    enough messages to tell one: one over all groups would read as any one group's."""
    domains = sender_domains(done).to_numpy()
    drawn = False
    for k, group in enumerate(groups):
        mine = domains == group
        windows = np.unique(which[mine])
        p95 = np.array([_p95(delay[mine & (which == b)]) for b in windows])
        if np.isfinite(p95).any():
            bottom.plot(middle[windows], p95 / scale, color=_colour(k), lw=1.6, ls="--",
                        marker=GROUP_MARKERS[k], ms=4, gid="load-p95")  # fmt: skip
            drawn = True
    if not drawn:
        return []
    return [Line2D([], [], color="#000000", lw=1.6, ls="--",
                   label=f"dashed: 95th percentile (windows of {PERCENTILE_MIN} messages or more)")]  # fmt: skip


def _capacity(top: Axes, result: Result, highest: float) -> None:
    """The most messages an hour the slowest-scanning mail server can take (its sessions
    × one message per end-of-DATA work): a line where the bars reach near it, else the
    figure in words — a server far above its load keeps everyone from waiting."""
    servers = {str(n) for n in result.hops["dst"]} if len(result.hops) else set()
    nodes = result.scenario.nodes
    rates = [
        (node.concurrency * 3600 / node.processing.data, name)
        for name, node in nodes.items()
        if node.role == "smtp" and (name in servers or not servers)
        and node.processing.data >= SCAN
    ]  # fmt: skip
    if not rates:
        return
    rate, name = min(rates)
    node = nodes[name]
    words = (f"{name} can take at most {rate:,.0f} an hour ({node.concurrency} at once,"
             f" {node.processing.data:g} s each)")  # fmt: skip
    if rate <= highest * 2.5:  # the bars still fill a third of the panel and more
        top.axhline(rate, color=style.OUTCOME["permanent"], lw=1.6, gid="load-capacity")
        top.set_ylim(0, max(rate, highest) * 1.2)  # an overloaded server: bars above it
        top.text(0.99, rate, words, transform=top.get_yaxis_transform(), ha="right",
                 va="bottom", fontsize=11, color=style.OUTCOME["permanent"])  # fmt: skip
    else:  # room above the bars for the words
        top.set_ylim(0, max(top.get_ylim()[1], highest * 1.3))
        top.text(0.99, 0.95, f"{words}: far above these bars", transform=top.transAxes,
                 ha="right", va="top", fontsize=11, gid="load-capacity",
                 bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85})  # fmt: skip


def _key(entries: list[Any]) -> tuple[list[Any], list[str]]:
    """The key's handles and words: an artist says its own label, a group's (bar, line)
    comes with its words."""
    pairs = [e if isinstance(e, tuple) else (e, e.get_label()) for e in entries]
    return [h for h, _ in pairs], [w for _, w in pairs]


def _window(sent: np.ndarray, span: float) -> int:
    """The narrowest window that gives at most 60 bars and, where the traffic allows, a
    95th percentile in most of them (a median of 20 messages a window) over 8 or more."""
    fitting = [w for w in BINS if span / w <= 60] or [BINS[-1]]
    for w in fitting:
        if span / w < 8:
            break
        if np.median(np.bincount((sent // w).astype(int))) >= PERCENTILE_MIN:
            return w
    return fitting[0]


def _p95(delays: np.ndarray) -> float:
    """The 95th percentile of a bin's delays, or NaN where it has too few to tell."""
    return float(np.percentile(delays, 95)) if len(delays) >= PERCENTILE_MIN else math.nan


def _panels(ax: Axes | None) -> tuple[Axes, Axes]:
    """The two panels: a new 1280×720 figure, or ``ax``'s place split in two."""
    if ax is None:
        _, (top, bottom) = plt.subplots(
            2, 1, figsize=(12.8, 7.2), sharex=True, layout="constrained",
            height_ratios=(1, 1.4),
        )  # fmt: skip
        return top, bottom
    figure = ax.get_figure()
    spec = ax.get_subplotspec()
    if spec is None or figure is None:
        raise ValueError("plot.load(ax=…) needs a subplot: it splits it into two panels")
    ax.remove()
    inner = spec.subgridspec(2, 1, height_ratios=(1, 1.4), hspace=0.08)
    top = figure.add_subplot(inner[0])
    bottom = figure.add_subplot(inner[1], sharex=top)
    top.tick_params(labelbottom=False)
    return top, bottom
