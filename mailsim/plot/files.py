"""Writing figures to files for the command line (no screen needed: matplotlib falls
back to its Agg backend without a display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from mailsim import plot
from mailsim.plot.delays import MANY
from mailsim.plot.sequence import pages
from mailsim.result import Result

FORMATS = (".png", ".svg", ".pdf")
ANIMATION_FORMATS = (".gif", ".html")


def save(
    result: Result, kind: str, path: Path, message: str | None = None, page: int | None = None
) -> Path:
    if kind == "animate":
        from matplotlib.animation import PillowWriter

        animation = plot.animate(result, message)
        if path.suffix.lower() == ".html":
            path.write_text(animation.to_jshtml(), encoding="utf-8")
        else:
            animation.save(path, writer=PillowWriter(fps=8), dpi=60)
        return path
    draw = getattr(plot, kind)
    if kind == "sequence":
        ax = draw(result, message, page=page)
    else:
        ax = draw(result, message) if kind in ("route", "delays") else draw(result)
    try:
        ax.figure.savefig(path, dpi=100)
    finally:
        plt.close(ax.figure)
    return path


def save_curve(table: Any, keys: list[str], path: Path) -> Path:
    """A sweep's curve with its confidence band (see :func:`mailsim.plot.delays.curve`)."""
    from mailsim.plot.delays import curve

    ax = curve(table, keys)
    try:
        ax.figure.savefig(path, dpi=100)
    finally:
        plt.close(ax.figure)
    return path


PER_MESSAGE = 10  # route and ladder of at most this many messages besides the first


def save_all(result: Result, folder: Path) -> list[Path]:
    """route.png, sequence.png (the first message), timeline.png, delays.png, load.png
    when there are many messages, and for the next messages (bounces included) route-ID.png and sequence-ID.png."""
    kinds = ("route", "sequence", "timeline", "delays") if result.copies else ("route",)
    if len(result.copies) > MANY:
        kinds += ("load",)
    written = [save(result, kind, folder / f"{kind}.png") for kind in kinds]
    if result.copies:
        # The ladder again, in 1280×720 pages for a projector.
        for page in range(1, pages(result) + 1):
            written.append(save(result, "sequence", folder / f"sequence-page{page}.png", page=page))
    ids = list(dict.fromkeys(c.message.id for c in result.copies))
    for message in ids[1 : PER_MESSAGE + 1]:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in message)
        for kind in ("route", "sequence"):
            written.append(save(result, kind, folder / f"{kind}-{safe}.png", message))
    return written
