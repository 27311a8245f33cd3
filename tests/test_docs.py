"""The pictures the README shows are what the code draws today (``make docs`` draws them
anew): compared pixel by pixel, with room for a font's anti-aliasing, not for a change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.testing.compare import calculate_rms
from PIL import Image, ImageSequence

from mailsim.plot.files import save
from tests.conftest import ROOT

DOCS = ROOT / "docs" / "classroom"
TOLERANCE = 2.0  # RMS of 0–255 values: a moved label is 10 and more


def frames(path: Path) -> list[np.ndarray]:
    """Every frame of a PNG or GIF, as RGB values."""
    with Image.open(path) as image:
        return [np.asarray(f.convert("RGB"), dtype=float) for f in ImageSequence.Iterator(image)]


@pytest.mark.parametrize("kind", ["route", "sequence", "timeline", "servers", "delays"])
def test_the_readme_figures_are_what_the_code_draws(kind, classroom_result, tmp_path):
    drawn = save(classroom_result, kind, tmp_path / f"{kind}.png")
    committed, fresh = frames(DOCS / f"{kind}.png")[0], frames(drawn)[0]
    assert committed.shape == fresh.shape, f"docs/classroom/{kind}.png is stale: make docs"
    assert calculate_rms(committed, fresh) < TOLERANCE, f"docs/classroom/{kind}.png: make docs"


def test_the_readme_animation_is_what_the_code_draws(classroom_result, tmp_path, monkeypatch):
    monkeypatch.setenv("MAILSIM_FRAMES", "32")  # as make docs draws it
    drawn = save(classroom_result, "animate", tmp_path / "route.gif")
    committed, fresh = frames(DOCS / "route.gif"), frames(drawn)
    assert len(committed) == len(fresh), "docs/classroom/route.gif is stale: make docs"
    for before, now in zip(committed, fresh, strict=True):
        assert calculate_rms(before, now) < TOLERANCE, "docs/classroom/route.gif: make docs"


@pytest.mark.parametrize("frame", [96, 120, 209, 254, 309])
def test_the_animation_stills_in_docs_are_what_the_code_draws(frame, classroom_result, tmp_path):
    drawn = save(classroom_result, "animate", tmp_path / f"packets-{frame}.png", frame=frame)
    committed, fresh = frames(DOCS / f"packets-{frame}.png")[0], frames(drawn)[0]
    assert committed.shape == fresh.shape == (720, 1280, 3), "stale: make docs"
    assert calculate_rms(committed, fresh) < TOLERANCE, f"docs/classroom/packets-{frame}.png"
