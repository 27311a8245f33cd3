"""Where the time went: per message, the end-to-end delay split into its parts (stacked
bars, like Postfix's ``delays=a/b/c/d``); for many messages, the distribution (ECDF)
with its percentiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from mailsim.message import COSTS
from mailsim.plot import style
from mailsim.plot.sequence import ink
from mailsim.plot.timeline import widen
from mailsim.result import Result
from mailsim.units import format_duration

SHORT = {"network": "network", "tls": "TLS", "dns": "DNS", "server": "server",
         "queue": "queue", "retry": "failed tries", "poll": "POP wait"}  # fmt: skip
MANY = 30  # above this many copies, draw the distribution instead of one bar each
FONT = 11  # points: 15.3 px on a 1280×720 page, the least any word here gets
MAILBOX = "#000000"  # the mark where a copy reached the mailbox; the rest is the download


def delays(result: Result, message: str | None = None, *, ax: Axes | None = None) -> Axes:
    """Stacked delay parts per copy (or of one ``message``); an ECDF for many copies.

    Copies that were never retrieved (bounced, expired, still on their way) get a bar too,
    below the retrieved ones: the time they spent until their journey ended, and why."""
    frame = result.messages
    if message is not None:
        frame = frame[frame["id"] == message]
    retrieved = frame["retrieved_at"].notna()
    if retrieved.sum() > MANY:
        return _ecdf(result, frame[retrieved], ax, len(frame))
    frame = frame.sort_values("retrieved_at", key=lambda c: c.isna(), kind="stable")
    below = ax is None  # a figure of its own: the key goes below, the bars get the width
    if ax is None:
        height = max(3.0, 0.6 * len(frame) + 2.2)
        _, ax = plt.subplots(figsize=(12.8, height), layout="constrained")
    longest = float(frame["delay"].max()) if len(frame) else 1.0
    scale, unit = style.time_unit(longest)
    # A copy that was never retrieved needs the width for its reason: one panel then.
    beside = poll_dominates(frame) and bool(frame["retrieved_at"].notna().all())
    labels = []
    for row, item in enumerate(frame.itertuples()):
        left = _stack(ax, row, item, COSTS, scale, "delay")
        # The working parts are too small to see next to the waits: say every part in
        # words (short names: the legend has the long ones), so that they add up to the
        # number at the end of the bar.
        working = _words(item, list(COSTS))
        if item.status in ("refused", "bounced") and item.retry_time > 0:
            # Refused at once, never tried again: no retries, a refused try.
            working = working.replace("failed tries", "refused try")
        words = f"  {format_duration(item.delay)}"
        if pd.isna(item.retrieved_at):
            reason = f": {_short(str(item.reason))}" if item.reason else ""
            words = f"  {item.status} after {format_duration(item.delay)}{reason}"
        # Failure words in a failure colour; a delivered copy (nobody reads it in this
        # run) is no failure.
        failed = item.status in ("refused", "bounced", "expired")
        colour = ink(style.OUTCOME["permanent"]) if failed else "#000000"
        ax.text(left / scale, row, words, va="center", fontsize=FONT, color=colour)
        if len(frame) > 1 and not beside:  # one copy: the legend says each part already
            ax.text(0, row - 0.45, f" {working}", va="center", fontsize=FONT, color="#333333")
        labels.append(f"{item.id} → {item.recipient}")
    # The legend says how much each part is: small parts are invisible next to long waits.
    handles = []
    for cost in COSTS:
        total = frame[f"{cost}_time"]
        if total.sum() <= 0:
            continue
        label = style.COST_LABEL[cost] if cost != "poll" else _wait(frame)[0]
        if len(frame) == 1:
            label += f": {format_duration(float(total.iloc[0]))}"
        handles.append(Patch(color=style.COST[cost], label=label))
    ax.set_yticks(range(len(labels)), labels, fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    ax.set_ylim(len(labels) - 0.5, -0.8)  # top row first, with room for its words
    end = "retrieval" if frame["retrieved_at"].notna().any() else "delivery"
    ax.set_xlabel(f"{unit} from submission to {end} (or to where the journey ended)")
    ax.set_xlim(0, longest / scale * 1.3)  # room for the words after the longest bar
    if beside:  # the scenario's name goes over the wider panel
        ax.set_title("Where the time went", loc="left", fontsize=FONT)
    else:
        ax.set_title(f"Where the time went: end-to-end delay of each message, by part —"
                     f" scenario {result.scenario.name!r}", loc="left", fontsize=FONT)  # fmt: skip
    if beside:
        ax.set_xlim(0, longest / scale * 1.6)  # room for the words after the bars
        ax.set_xlabel(f"{unit} from submission to retrieval")
    ax.xaxis.label.set_fontsize(FONT)
    legend_ax = _transfer(frame, _beside(ax), result.scenario.name) if beside else ax
    if below:
        ax.figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4),
                         fontsize=FONT, frameon=False)  # fmt: skip
    else:
        legend_ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                         fontsize=FONT, frameon=False)  # fmt: skip
    if beside:  # after the legend: the panel's width in pixels is final only now
        widen(
            legend_ax, [p for p in legend_ax.patches if (p.get_gid() or "").startswith("transfer-")]
        )
    return ax


def _wait(frame: pd.DataFrame) -> tuple[str, str]:
    """The wait for the reader's program, long and short: POP's poll where everyone reads
    with POP3, else any poll (IMAP's too; a push waits for none)."""
    ways = set(frame["retrieval"].dropna())
    if ways <= {"pop3"}:
        return style.COST_LABEL["poll"], "POP wait"
    if "webmail" in ways:
        return "waiting for the poll (POP3, IMAP) or the page", "poll wait"
    return "waiting for the poll (POP3, IMAP)", "poll wait"


def poll_dominates(frame: pd.DataFrame) -> bool:
    """The POP wait is most of every delay and the transfer (all the rest) too small to
    see beside it: then the transfer gets a panel of its own, on its own scale."""
    if frame.empty or float(frame["poll_time"].sum()) <= 0:
        return False
    transfer = frame["delay"] - frame["poll_time"]
    return float(transfer.max()) < 0.05 * float(frame["delay"].max())


def _beside(ax: Axes) -> Axes:
    """A second panel to the right of ``ax``, sharing its rows: ``ax`` keeps its place in
    the caller's figure and gives up part of its width."""
    spec = ax.get_subplotspec()
    if spec is None:  # an Axes placed by hand: the panel inside its right part
        return ax.inset_axes((0.62, 0.0, 0.38, 1.0), sharey=ax)
    left, right = spec.subgridspec(1, 2, width_ratios=(1, 2.8), wspace=0.04)
    ax.set_subplotspec(left)
    return ax.figure.add_subplot(right, sharey=ax)


def _transfer(frame: pd.DataFrame, ax: Axes, scenario: str) -> Axes:
    """Each copy's transfer — every part but the POP wait — on a millisecond scale when it
    fits one: 7 ms of TLS beside 206 ms are then two bars, not two hairlines."""
    parts = [c for c in COSTS if c != "poll"]
    longest = float((frame["delay"] - frame["poll_time"]).max())
    scale, unit = (0.001, "ms") if longest < 2.0 else style.time_unit(longest)
    for row, item in enumerate(frame.itertuples()):
        left = _stack(ax, row, item, parts, scale, "transfer")
        words = f" {format_duration(left)}"
        if pd.notna(item.to_mailbox) and item.to_mailbox < left:
            # The report's "in the mailbox after …"; the rest is the download. In words
            # only: the bar is stacked by kind of time, not in time order, so no point on
            # it is the moment the mailbox was reached.
            words = f" all {format_duration(left)}\n to mailbox {format_duration(float(item.to_mailbox))}"
        ax.text(left / scale, row, words, va="center", fontsize=FONT)
        if len(frame) > 1:  # one copy: the legend says each part already
            ax.text(0, row - 0.45, " " + _words(item, parts), va="center", fontsize=FONT,
                    color="#333333")  # fmt: skip
    ax.set_xlim(0, longest / scale * 1.3)
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.set_xlabel(f"the transfer alone: all but the {_wait(frame)[1]} ({unit})", fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    ax.set_title(f"…and the transfer alone — scenario {scenario!r}", loc="left", fontsize=FONT)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    return ax


def _stack(ax: Axes, row: int, item: Any, parts: Sequence[str], scale: float, gid: str) -> float:
    """One copy's parts as a stacked bar on ``row``; returns their sum in seconds."""
    left = 0.0
    for cost in parts:
        width = float(getattr(item, f"{cost}_time"))
        if width > 0:
            ax.barh(row, width / scale, left=left / scale, color=style.COST[cost],
                    height=0.6, gid=f"{gid}-{cost}")  # fmt: skip
        left += width
    return left


def _words(item: Any, parts: list[str]) -> str:
    """A copy's parts in words, short names (the legend has the long ones)."""
    return " + ".join(
        f"{SHORT[c]} {format_duration(float(getattr(item, f'{c}_time')))}"
        for c in parts
        if float(getattr(item, f"{c}_time")) > 0
    )


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def sender_domains(frame: pd.DataFrame) -> pd.Series:
    """Each copy's sender's domain — the firm, the provider, the office."""
    return _domains(frame["sender"])


def ways(frame: pd.DataFrame) -> pd.Series:
    """Each copy's group: the way it went, sender's domain → recipient's domain. The
    sender's side decides the transfer, the recipient's the poll (bob reads when his
    program asks), so a curve per way keeps both apart; with more ways than colours,
    the sender's domain alone."""
    sender = sender_domains(frame)
    way = sender + " → " + _domains(frame["recipient"])
    return way if way.nunique() <= len(GROUP_COLOURS) else sender


def _domains(addresses: pd.Series) -> pd.Series:
    return addresses.astype(str).str.rsplit("@", n=1).str[-1].str.lower()


GROUP_COLOURS = ("blue", "purple", "green", "sky", "black", "grey")  # failures keep theirs
GROUP_STYLES = ("-", "--", "-.", ":", "-", "--")


def _ecdf(result: Result, frame: pd.DataFrame, ax: Axes | None, copies: int) -> Axes:
    """The distribution of the delay; one curve per way the mail went when the scenario
    compares several (two firms, an office and its partner); beside it, when the POP
    wait is most of every delay, the distribution of the time to the recipient's mailbox
    (what the report and the scenarios call "in the mailbox after")."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12.8, 7.2), layout="constrained")
    domains = ways(frame)
    names = sorted(set(domains))  # a firm's ways side by side
    grouped = 2 <= len(names) <= len(GROUP_COLOURS)
    beside = poll_dominates(frame)
    # To the mailbox, as the report says it; without the POP3 download, which depends on
    # the reader's server and not on the path the message took.
    transfer = frame["to_mailbox"].fillna(frame["delay"] - frame["poll_time"])
    labels = {n: _group_label(n, frame["delay"][domains == n], transfer[domains == n], beside)
              for n in names}  # fmt: skip
    lines = _curves(ax, frame["delay"], domains, labels, grouped, 60.0)
    ax.set_xlabel("end-to-end delay, submission to retrieval (minutes)", fontsize=FONT)
    ax.set_ylabel("share of messages retrieved within", fontsize=FONT)
    _style(ax)
    ax.set_title(f"Delivery delay of the {len(frame):,} of {copies:,} message copies that were"
                 f" retrieved — scenario {result.scenario.name!r}", loc="left", fontsize=FONT)  # fmt: skip
    legend_ax = ax
    if beside:
        legend_ax = _beside(ax)
        _curves(legend_ax, transfer, domains, labels, grouped, 1.0)
        legend_ax.tick_params(axis="y", left=False, labelleft=False)
        legend_ax.set_xlabel("sending → in the recipient's mailbox (s)", fontsize=FONT)
        _style(legend_ax)
        legend_ax.set_xlim(0, float(transfer.max()) * 1.05)
        legend_ax.set_title(f"…and to the mailbox — scenario {result.scenario.name!r},"
                            f" {len(frame):,} of {copies:,} copies retrieved", loc="left",
                            fontsize=FONT)  # fmt: skip
        ax.set_title("Delivery delay", loc="left", fontsize=FONT)
        ax.set_xlabel("end-to-end delay (minutes)", fontsize=FONT)
    if grouped:
        title = "sent from → to" if " → " in names[0] else "sent from"
        legend_ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=FONT,
                         frameon=False, title=title, title_fontsize=FONT)  # fmt: skip
    else:
        handles = [*lines, *_percentiles(ax, frame["delay"].to_numpy(dtype=float))]
        legend_ax.legend(handles=handles[1:], loc="upper left", bbox_to_anchor=(1.0, 1.0),
                         fontsize=FONT, frameon=False, title="of the whole delay",
                         title_fontsize=FONT)  # fmt: skip
    return ax


def _style(ax: Axes) -> None:
    ax.tick_params(labelsize=FONT)
    ax.set_ylim(0, 1.02)
    ax.grid(color="#eeeeee")


def _group_label(name: str, delay: pd.Series, transfer: pd.Series, beside: bool) -> str:
    """A group's legend entry: its size and medians (of the transfer too, when drawn)."""
    text = f"{name}, {len(delay):,} copies\nmedian {format_duration(float(delay.median()))}"
    if beside:
        text += f", in the mailbox {format_duration(float(transfer.median()))}"
    return text


def _curves(ax: Axes, delay: pd.Series, domains: pd.Series, labels: dict[str, str],
            grouped: bool, scale: float) -> list[Any]:  # fmt: skip
    """One ECDF step line per group (or one for all)."""
    groups = [(labels[n], delay[domains == n]) for n in labels] if grouped else [(None, delay)]
    lines = []
    for k, (label, part) in enumerate(groups):
        values = np.sort(part.to_numpy(dtype=float))
        share = np.arange(1, len(values) + 1) / len(values)
        (line,) = ax.step(values / scale, share, where="post", lw=2, gid="ecdf", label=label,
                          color=style.OKABE_ITO[GROUP_COLOURS[k]], ls=GROUP_STYLES[k])  # fmt: skip
        lines.append(line)
    return lines


def _percentiles(ax: Axes, values: np.ndarray) -> list[Any]:
    """p50, p90, p99 as lines, named in the legend: words beside the lines would be
    crossed by the next line when two percentiles lie close (p90 and p99 of a poll)."""
    lines = []
    for q, colour, ls in ((50, "green", "--"), (90, "orange", "-."), (99, "vermillion", ":")):
        v = float(np.percentile(values, q))
        lines.append(ax.axvline(v / 60, color=style.OKABE_ITO[colour], ls=ls, lw=2, gid=f"p{q}",
                                label=f"p{q} = {format_duration(v)}"))  # fmt: skip
    return lines
