"""Writing figures to files for the command line (no screen needed: matplotlib falls
back to its Agg backend without a display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from mailsim import plot
from mailsim.result import Result

FORMATS = (".png", ".svg", ".pdf")


def save(result: Result, kind: str, path: Path, message: str | None = None) -> Path:
    draw = getattr(plot, kind)
    ax = draw(result, message) if kind in ("route", "sequence", "delays") else draw(result)
    try:
        ax.figure.savefig(path, dpi=100)
    finally:
        plt.close(ax.figure)
    return path


def save_all(result: Result, folder: Path) -> list[Path]:
    """route.png, sequence.png (the first message), timeline.png, delays.png."""
    kinds = ("route", "sequence", "timeline", "delays") if result.copies else ("route",)
    return [save(result, kind, folder / f"{kind}.png") for kind in kinds]
