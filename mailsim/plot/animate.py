"""The message moving along its route, hop by hop: an animation for notebooks (HTML) and
files (GIF). Each hop gets the same number of frames — hops last from milliseconds to
hours, so the caption, not the speed, tells the real time."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation

from mailsim.plot import style
from mailsim.plot.route import route
from mailsim.plot.topology import positions
from mailsim.result import Result
from mailsim.units import format_duration


def animate(
    result: Result,
    message: str | None = None,
    *,
    recipient: str | None = None,
    frames: int | None = None,
    interval: int = 120,
) -> FuncAnimation:
    """An animation of ``message`` travelling; ``frames`` in all (default 48, or the
    ``MAILSIM_FRAMES`` environment variable, which CI sets low)."""
    frames = frames or int(os.environ.get("MAILSIM_FRAMES", "48"))
    copy = result.copy(message or result.copies[0].message.id, recipient)
    hops = result.hops
    mine = hops[(hops["message"] == copy.message.id) & (hops["recipient"] == copy.recipient)
                & ~hops["duplicate"]]  # fmt: skip
    path = [h for h in mine.itertuples() if str(h.src) != str(h.dst)]
    fig, ax = plt.subplots(figsize=(12.8, 7.2), layout="constrained")
    route(result, copy.message.id, recipient=copy.recipient, ax=ax)
    pos = positions(result)
    (dot,) = ax.plot([], [], "o", ms=16, color=style.OKABE_ITO["yellow"], mec="black", zorder=10)
    caption = ax.text(0.5, 0.02, "", transform=ax.transAxes, ha="center", fontsize=11,
                      bbox={"boxstyle": "round", "fc": "white", "ec": "#999999"})  # fmt: skip
    per_hop = max(1, frames // max(len(path), 1))

    def update(frame: int) -> tuple:
        if not path:
            return (dot, caption)
        k = min(frame // per_hop, len(path) - 1)
        hop = path[k]
        f = min(1.0, (frame - k * per_hop + 1) / per_hop)
        (x0, y0), (x1, y1) = pos[str(hop.src)], pos[str(hop.dst)]
        dot.set_data([x0 + (x1 - x0) * f], [y0 + (y1 - y0) * f])
        ok = style.outcome_of(str(hop.code)) == "ok"
        dot.set_color(style.OKABE_ITO["yellow"] if ok else style.OUTCOME["temporary"])
        what = "" if ok else f" — failed: {hop.code}"
        caption.set_text(
            f"hop {hop.index}: {hop.src} → {hop.dst} ({hop.protocol}) at t = "
            f"{format_duration(hop.start)}, took {format_duration(hop.end - hop.start)}{what}"
        )
        return (dot, caption)

    total = per_hop * max(len(path), 1)
    animation = FuncAnimation(fig, update, frames=total, interval=interval, blit=False)
    plt.close(fig)  # shown by to_jshtml() or saved; never left open in pyplot
    return animation
