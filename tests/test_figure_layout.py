"""Figures as a class sees them at 1280×720: on every shipped scenario, no two drawn
labels cover each other and none is cut off at the figure's edge; route labels keep off
arrows that are not their own where the picture leaves room."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure
from matplotlib.path import Path
from matplotlib.text import Text

import mailsim
from mailsim import plot
from mailsim.plot.delays import MANY
from mailsim.plot.sequence import pages
from tests.conftest import SCENARIOS, shipped

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
SLACK = 1.0  # pixels: anti-aliased edges may touch


@contextmanager
def drawn_texts() -> Iterator[list[Text]]:
    """Every Text drawn while the block runs (ticks of a hidden axis are not drawn)."""
    seen: list[Text] = []
    original = Text.draw

    def draw(self: Text, renderer) -> None:
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            seen.append(self)

    Text.draw = draw  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        Text.draw = original  # type: ignore[method-assign]


def problems(figure: Figure) -> list[str]:
    with drawn_texts() as texts:
        figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text().replace("\n", " ")[:50], t.get_window_extent(renderer)) for t in texts]
    found = []
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > SLACK and height > SLACK:
            found.append(f"{a!r} overlaps {b!r} by {width:.0f}×{height:.0f} px")
    frame = figure.bbox
    for a, box in boxes:
        if (
            box.x0 < -SLACK
            or box.y0 < -SLACK
            or box.x1 > frame.x1 + SLACK
            or box.y1 > frame.y1 + SLACK
        ):
            found.append(f"{a!r} is cut off at the edge of the figure")
    return found


def figures(result: mailsim.Result) -> Iterator[tuple[str, Figure]]:
    ids = list(dict.fromkeys(c.message.id for c in result.copies))
    for message in ids[:4]:
        yield f"route {message}", plot.route(result, message).figure
    yield "timeline", plot.timeline(result).figure
    if result.copies:
        yield "servers", plot.servers(result).figure
    yield "delays", plot.delays(result).figure
    if result.scenario.eavesdroppers:
        yield "overheard", plot.overheard(result).figure
    if any(re.search(r"=(pass|fail)\b", c.authentication or "") for c in result.copies):
        yield "verdicts", plot.verdicts(result).figure  # as --plots draws it
    if len(result.copies) > MANY:
        yield "load", plot.load(result).figure
    for page in range(1, pages(result) + 1):
        yield f"ladder page {page}", plot.sequence(result, page=page).figure


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_no_label_covers_another(path):
    result = shipped(path)
    found = []
    for name, figure in figures(result):
        try:
            found += [f"{name}: {p}" for p in problems(figure)]
        finally:
            plt.close(figure)
    assert not found, "\n".join(found)


# A further message of a few scenarios, as --plots pages it (sequence-ID-pageN.png).
FURTHER = [("spoofing", "m3"), ("tls-downgrade", "m2")]


@pytest.mark.parametrize(("name", "message"), FURTHER, ids=[f"{n}-{m}" for n, m in FURTHER])
def test_no_label_covers_another_on_a_further_messages_pages(name, message):
    result = shipped(SCENARIOS / f"{name}.yaml")
    found = []
    for page in range(1, pages(result, message) + 1):
        figure = plot.sequence(result, message, page=page).figure
        try:
            found += [f"ladder {message} page {page}: {p}" for p in problems(figure)]
        finally:
            plt.close(figure)
    assert not found, "\n".join(found)


def test_the_check_sees_an_overlap():
    figure, ax = plt.subplots(figsize=(4, 3))
    ax.text(0.5, 0.5, "SMTP 250 2.0.0 Ok")
    ax.text(0.52, 0.5, "4.4.1")
    ax.text(0.95, 0.1, "a label running off the right edge")
    try:
        found = problems(figure)
    finally:
        plt.close(figure)
    assert len(found) == 2
    assert "overlaps" in found[0]
    assert "cut off" in found[1]


def test_a_route_label_keeps_off_other_arrows_when_there_is_room():
    """server-crash: hop 4 (mx-home → pop-home, 13.2 ms) runs right under the failed
    hop 3 arrow; its label must sit clear of arrow 3."""
    result = mailsim.run(mailsim.load(SCENARIOS / "server-crash.yaml"))
    ax = plot.route(result)
    try:
        figure = ax.figure
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        (label,) = [t for t in ax.texts if t.get_text().startswith("4  ")]
        (arrow,) = [p for p in ax.patches if p.get_gid() == "hop-3-3"]
        path = arrow.get_transform().transform_path(arrow.get_path())
        box = label.get_window_extent(renderer)
        pieces = path.to_polygons(closed_only=False)
        assert not any(Path(piece).intersects_bbox(box, filled=False) for piece in pieces)
    finally:
        plt.close(ax.figure)
