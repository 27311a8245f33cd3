"""A what-if study drawn: a metric against the varied value, with the 95 % confidence
band of each point, the fitted slope with its interval, and axes in words — a class reads
"one-way latency r-london ↔ r-newyork (ms)", not a path into a YAML file."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb

from mailsim.plot import style

METRIC_LABEL = {
    "transfer_mean": "sending → the recipient's mailbox (mean)",
    "delay_mean": "sending → read by the recipient's program (mean)",
    "delay_median": "sending → read (median)",
    "delay_p95": "sending → read (95th percentile)",
    "queue_mean": "waiting for a free session (mean)",
}

# The last part of a key path, in words; "{at}" is the node, link or user it belongs to.
_WORDS = {
    "latency": "one-way latency {at}",
    "jitter": "jitter {at}",
    "bandwidth": "bandwidth {at}",
    "loss": "packet loss {at}",
    "concurrency": "sessions at once at {at}",
    "data": "server work at the end of DATA at {at}",
    "command": "server work per command at {at}",
    "tls": "TLS at {at}",
    "pipelining": "PIPELINING at {at}",
    "poll": "how often {at}'s program polls",
    "rate": "messages per hour per sender ({at})",
    "size": "message size ({at})",
}
_DURATION = re.compile(r"\s*[0-9.]+\s*[a-zA-Z]+\s*")
Z95 = 1.96  # two-sided 95 % of the normal distribution
# Curves in colours that stand out on white (≥ 3:1 for lines), light ones (orange, sky,
# yellow) left out; markers and dashes tell the fit from the curve.
LINE_COLOURS = ("blue", "vermillion", "green", "purple", "black", "grey")


def key_words(key: str) -> str:
    """``links.r-london/r-newyork.latency`` → ``one-way latency r-london ↔ r-newyork``;
    a key it has no words for is shown as written."""
    from mailsim.overrides import segments

    try:
        parts = [text for text, _ in segments(key)]
    except Exception:
        return key
    if len(parts) < 3 or parts[-1] not in _WORDS:
        return key
    section, owner = parts[0], parts[1]
    if section == "links":
        at = owner.replace("/", " ↔ ") if "/" in owner else f"of link {owner}"
    elif section == "traffic":
        at = f"traffic {owner}"
    else:
        at = owner
    return _WORDS[parts[-1]].format(at=at)


def curve(
    table: pd.DataFrame,
    keys: list[str],
    metric: str | Sequence[str] = "transfer_mean",
    *,
    ax: Axes | None = None,
) -> Axes:
    """A sweep's result: ``metric`` against the first varied key, one line per value of
    the others, each with its 95 % confidence band (OMNeT++-style parameter study). Several
    metrics (e.g. to the mailbox and to the reader) are panels side by side sharing the x
    axis; the first panel is returned."""
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if ax is None:
        _, axes = plt.subplots(
            1, len(metrics), figsize=(12.8, 7.2), layout="constrained", sharex=True,
            squeeze=False,
        )  # fmt: skip
        panels = list(axes[0])
    else:
        panels = [ax]
        metrics = metrics[:1]
    for panel, name in zip(panels, metrics, strict=True):
        _panel(panel, table, keys, name, legend=ax is not None)
    if ax is None:  # one key below the panels, where it covers no point
        handles, labels = panels[0].get_legend_handles_labels()
        panels[0].figure.legend(handles, labels, loc="outside lower center", fontsize=12,
                                ncol=min(len(handles), 4), frameon=False)  # fmt: skip
    runs = int(table["runs"].min()) if len(table) else 0
    figure = panels[0].get_figure()
    title = f"What if the {key_words(keys[0])} changes? {runs} runs per point"
    if len(panels) > 1 and figure is not None:
        figure.suptitle(title, x=0.01, ha="left", fontsize=14)
    else:
        panels[0].set_title(title, loc="left", fontsize=14)
    return panels[0]


def _panel(ax: Axes, table: pd.DataFrame, keys: list[str], metric: str, legend: bool) -> None:
    from mailsim.units import parse_duration

    key, others = keys[0], keys[1:]
    values = list(dict.fromkeys(str(v) for v in table[key]))
    # Durations written with their unit (10ms, 5min): a real time axis. Bare numbers (a
    # TLS version, a count) and words are categories, in the order given.
    numeric = all(_DURATION.fullmatch(v) for v in values)
    if numeric:
        try:
            xs = {v: parse_duration(v) for v in values}
        except ValueError:
            numeric = False
    if not numeric:
        xs = {v: float(i) for i, v in enumerate(values)}
    longest = float(np.nanmax(table[f"{metric}_hi"].fillna(table[metric])))
    scale, unit = style.time_unit(longest if longest > 0 else 1.0)
    groups = table.groupby(others, sort=False) if others else [((), table)]
    colours = [style.OKABE_ITO[c] for c in LINE_COLOURS]
    for n, (point, group) in enumerate(groups):
        point = point if isinstance(point, tuple) else (point,)
        x = np.array([xs[str(v)] for v in group[key]])
        order = np.argsort(x)
        x = x[order] * (1000.0 if numeric else 1.0)
        y = group[metric].to_numpy(dtype=float)[order] / scale
        lo = group[f"{metric}_lo"].to_numpy(dtype=float)[order] / scale
        hi = group[f"{metric}_hi"].to_numpy(dtype=float)[order] / scale
        colour = colours[n % len(colours)]
        label = ", ".join(f"{key_words(k)} = {v}" for k, v in zip(others, point, strict=True))
        ax.plot(x, y, marker="o", color=colour, lw=2, label=label or "mean", gid="sweep-mean")
        ax.fill_between(x, lo, hi, color=colour, alpha=0.2, lw=0, label="95 % confidence interval",
                        gid="sweep-band")  # fmt: skip
        if numeric and len(set(x)) >= 2:
            _slope(ax, x, y, lo, hi, scale, colour, n)
    words = key_words(key)
    if numeric:
        ax.set_xlabel(f"{words} (ms)", fontsize=13)
    else:
        ax.set_xticks(list(xs.values()), values)
        ax.set_xlabel(words, fontsize=13)
    ax.set_ylabel(f"{METRIC_LABEL.get(metric, metric)} ({unit})", fontsize=13)
    ax.tick_params(labelsize=12)
    ax.set_ylim(bottom=0)
    ax.grid(color="#eeeeee")
    if legend:
        ax.legend(loc="best", fontsize=11, frameon=True, framealpha=0.9)


def slope(
    x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[float, float, float, float]:
    """The slope of ``y`` against ``x``, its 95 % interval and the line's intercept:
    weighted least squares on the points' means, each weighted by its confidence
    interval (the replications' spread), the interval the wider of what the points'
    spread and the fit's residuals allow; with no spread to weigh, plain least squares."""
    b, intercept = (float(v) for v in np.polyfit(x, y, 1))
    dof = len(x) - 2
    spread = float(np.sum((x - x.mean()) ** 2))
    # A curve that is not a line (a queue near saturation) is uncertain about its slope
    # however tight each point: the residuals' spread says by how much.
    residual = y - np.polyval(np.polyfit(x, y, 1), x)
    se = math.sqrt(float(np.sum(residual**2)) / dof / spread) if dof > 0 else math.nan
    half = (hi - lo) / 2 / Z95  # standard error of each mean
    if np.all(np.isfinite(half)) and np.all(half > 0):
        w = 1 / half**2
        xm = np.sum(w * x) / np.sum(w)
        b = float(
            np.sum(w * (x - xm) * (y - np.sum(w * y) / np.sum(w))) / np.sum(w * (x - xm) ** 2)
        )
        intercept = float(np.sum(w * y) / np.sum(w) - b * xm)
        weighted = math.sqrt(1 / float(np.sum(w * (x - xm) ** 2)))
        se = weighted if math.isnan(se) else max(se, weighted)
    return b, b - Z95 * se, b + Z95 * se, intercept


def _slope(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    scale: float,
    colour: str,
    n: int,
) -> None:
    """The fitted line, dashed in the curve's colour, and its slope in words, in the
    curve's hue darkened (the palette's orange is too light to read on white):
    milliseconds of the metric per millisecond of the varied time."""
    b, b_lo, b_hi, intercept = slope(x, y, lo, hi)
    ax.plot(x, intercept + b * x, color=colour, lw=1.2, ls="--", gid="sweep-fit")
    ms = scale * 1000  # ms of the metric per ms of x

    def shown(value: float) -> str:
        return f"{value * ms:.1f}".replace("-0.0", "0.0")

    text = f"— slope {shown(b)} ms per ms"
    if math.isfinite(b_lo):
        text += f" (95 %: {shown(b_lo)} to {shown(b_hi)})"
    dark = tuple(0.6 * c for c in to_rgb(colour))  # the curve's hue, dark enough to read
    ax.text(0.98, 0.04 + 0.07 * n, text, transform=ax.transAxes, ha="right", va="bottom",
            fontsize=12, color=dark, gid="sweep-slope",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.9})  # fmt: skip
