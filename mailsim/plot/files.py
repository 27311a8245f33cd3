"""Writing figures to files for the command line (no screen needed: matplotlib falls
back to its Agg backend without a display)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from mailsim import plot
from mailsim.files import WriteError, unique_name, write_bytes, write_text
from mailsim.plot.delays import MANY
from mailsim.plot.sequence import pages
from mailsim.result import Result

FORMATS = (".png", ".svg", ".pdf")
ANIMATION_FORMATS = (".gif", ".mp4", ".html")


def save(
    result: Result,
    kind: str,
    path: Path,
    message: str | None = None,
    page: int | None = None,
    frame: int | None = None,
) -> Path:
    """Draw one figure into ``path`` (of an animation: one ``frame``, counted from 1, or
    the whole); WriteError (exit code 1) when it cannot be written."""
    if kind == "animate" and frame is not None:
        from mailsim.plot.animate import Scene

        scene = Scene(result, message)
        scene.update(frame - 1)
        _write_figure(scene.fig, path)
        return path
    if kind == "animate":
        from mailsim.plot.animate import html, write

        if path.suffix.lower() == ".html":
            write_text(path, html(result, message))
            return path
        try:
            write(result, path, message)
        except OSError as exc:
            raise WriteError(path, exc.strerror or str(exc)) from None
        return path
    draw = getattr(plot, kind)
    if kind == "sequence":
        ax = draw(result, message, page=page)
    else:
        ax = draw(result, message) if kind in ("route", "delays") else draw(result)
    _write_figure(ax.figure, path)
    return path


def _write_figure(figure: Any, path: Path) -> None:
    """The figure rendered in memory, then written: a full disk is one clear error."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, dpi=100, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(figure)
    write_bytes(path, buffer.getvalue())


def save_curve(table: Any, keys: list[str], path: Path) -> Path:
    """A sweep's curves with their confidence bands and slopes, to the mailbox and to the
    reader side by side (see :func:`mailsim.plot.study.curve`)."""
    from mailsim.plot.study import curve

    _write_figure(curve(table, keys, ("transfer_mean", "delay_mean")).figure, path)
    return path


PER_MESSAGE = 10  # route and ladder of at most this many messages besides the first
QUEUED = 0.1  # seconds: a copy that waited this long for a free session shows the queue


def telling(result: Result) -> str:
    """The message whose route and ladder come first: the one that waited longest for a
    free session when one waited at all (slow-server, busy-office: the queue is the
    point), else the first one."""
    frame = result.messages
    if len(frame) and float(frame["queue_time"].max()) >= QUEUED:
        return str(frame.loc[frame["queue_time"].idxmax(), "id"])
    return result.copies[0].message.id


def save_all(result: Result, folder: Path) -> list[Path]:
    """route.png, sequence.png (the first message, or the one that waited longest for a
    busy server when one did: the scenario's point) and its 1280×720 pages for a projector,
    sequence-page1.png …, timeline.png, servers.png, delays.png, load.png when there are
    many messages, overheard.png with an eavesdropper, verdicts.png where a server
    checked SPF, DKIM and DMARC, and for the next messages (bounces included)
    route-ID.png, sequence-ID.png and its pages, sequence-ID-page1.png …"""
    kinds = ("route", "sequence", "timeline", "servers", "delays") if result.copies else ("route",)
    if len(result.copies) > MANY:
        kinds += ("load",)
    if result.scenario.eavesdroppers:
        kinds += ("overheard",)
    if any(re.search(r"=(pass|fail)\b", c.authentication or "") for c in result.copies):
        kinds += ("verdicts",)  # a domain published SPF, DKIM or DMARC, and it was checked
    ids = list(dict.fromkeys(c.message.id for c in result.copies))
    first = telling(result) if ids else None
    written = [
        save(result, kind, folder / f"{kind}.png", first if kind in ("route", "sequence") else None)
        for kind in kinds
    ]
    if result.copies:
        # The ladder again, in 1280×720 pages for a projector.
        for page in range(1, pages(result, first) + 1):
            written.append(save(result, "sequence", folder / f"sequence-page{page}.png", first,
                                page=page))  # fmt: skip
    taken = {path.name.lower() for path in written}
    for message in [m for m in ids if m != first][:PER_MESSAGE]:
        for kind in ("route", "sequence"):
            name = unique_name(f"{kind}-{message}.png", taken)  # m/1 and m?1: two files
            written.append(save(result, kind, folder / name, message))
        # This message's ladder in 1280×720 pages too, named after its tall one (m?1's
        # sequence-m_1-2.png has sequence-m_1-2-page1.png …): the tall one is for a screen.
        stem = written[-1].stem
        for page in range(1, pages(result, message) + 1):
            name = unique_name(f"{stem}-page{page}.png", taken)
            written.append(save(result, "sequence", folder / name, message, page=page))
    return written
