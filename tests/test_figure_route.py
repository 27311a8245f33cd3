"""The route picture as a class sees it, projected at 1280×720: every word large enough
and dark enough to read from the back row, and the key where it leaves the network the
most room."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgb
from matplotlib.text import Text

from mailsim import plot
from mailsim.plot import style
from mailsim.plot.route import CONTRAST, contrast, readable
from tests.conftest import SCENARIOS, shipped
from tests.test_figure_layout import drawn_texts

# busy-office's run takes a minute and its route is the classroom's shape: left out here.
SHIPPED = sorted(p for p in SCENARIOS.glob("*.yaml") if p.stem != "busy-office")
DOMAIN_FILL = "#f2f2f2"  # the domain boxes that names and routers may sit on


def drawn(path, message=None):
    """The route figure of a shipped scenario, drawn, with every text it drew."""
    ax = plot.route(shipped(path), message)
    with drawn_texts() as texts:
        ax.figure.canvas.draw()
    return ax, texts


def background(text: Text) -> list[str]:
    """What a word may sit on: its own box, or else the page or a domain box."""
    patch = text.get_bbox_patch()
    if patch is not None and patch.get_facecolor()[3] == 1.0:
        return [patch.get_facecolor()]
    return ["white", DOMAIN_FILL]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_word_is_readable_from_the_back_row(path):
    ax, texts = drawn(path)
    try:
        renderer = ax.figure.canvas.get_renderer()
        assert ax.figure.bbox.size.tolist() == [1280, 720]
        small, faint = [], []
        for text in texts:
            em = text.get_fontsize() * ax.figure.dpi / 72
            height = text.get_window_extent(renderer).height
            if em < 14 or height < 14:
                small.append(f"{text.get_text()!r}: {em:.1f} px, drawn {height:.0f} px")
            ratio = min(contrast(text.get_color(), under) for under in background(text))
            if ratio < CONTRAST:
                faint.append(f"{text.get_text()!r}: {ratio:.2f}:1")
        assert len(texts) >= 10  # names, hop labels, the key, the title
        assert not small, small
        assert not faint, faint
    finally:
        plt.close(ax.figure)


def test_contrast_is_wcag_2():
    assert contrast("black") == pytest.approx(21.0)
    assert contrast("white") == pytest.approx(1.0)
    # WebAIM's checker: #767676 is the lightest grey that passes 4.5:1 on white.
    assert contrast("#767676") == pytest.approx(4.54, abs=0.01)
    assert contrast("#777777") < 4.5
    # Okabe–Ito's green and orange, as the arrows draw them, are too light for words.
    assert contrast(style.OUTCOME["ok"]) == pytest.approx(3.42, abs=0.01)
    assert contrast(style.OUTCOME["temporary"]) == pytest.approx(2.25, abs=0.01)


@pytest.mark.parametrize("outcome", ["ok", "temporary", "permanent"])
def test_a_hop_label_is_its_arrow_colour_darkened_just_enough(outcome):
    colour = to_rgb(style.OUTCOME[outcome])
    shade = readable(style.OUTCOME[outcome])
    assert contrast(shade) >= CONTRAST
    # The same hue: each channel scaled by one factor, the smallest that reads (1 % steps).
    channel = colour.index(max(colour))
    factor = shade[channel] / colour[channel]
    assert shade == pytest.approx(tuple(v * factor for v in colour))
    lighter = tuple(v * (factor + 0.01) for v in colour)
    assert contrast(lighter) < CONTRAST


def test_failed_and_delivered_hops_are_labelled_in_readable_shades():
    """mx-down: hops 2–6 refused (4.4.1) share the orange arrow; hop 7 gets through."""
    ax, texts = drawn(SCENARIOS / "mx-down.yaml")
    try:
        by_text = {t.get_text(): t for t in texts}
        failed = by_text["2–6  ✗ 4.4.1 ×5"]
        through = next(t for label, t in by_text.items() if label.startswith("7  "))
        assert to_rgb(failed.get_color()) == pytest.approx(readable(style.OUTCOME["temporary"]))
        assert to_rgb(through.get_color()) == pytest.approx(readable(style.OUTCOME["ok"]))
        (arrow,) = [p for p in ax.patches if p.get_gid() == "hop-2-6"]
        assert arrow.get_edgecolor()[:3] == pytest.approx(to_rgb(style.OUTCOME["temporary"]))
    finally:
        plt.close(ax.figure)


def test_the_key_goes_below_a_wide_network_and_beside_a_tall_one():
    """classroom is five times wider than tall: the key below it leaves the network the
    page's whole width; free-vs-paid-provider is nearly square: the key beside it."""
    for name, below in (("classroom", True), ("free-vs-paid-provider", False)):
        ax, _ = drawn(SCENARIOS / f"{name}.yaml")
        try:
            renderer = ax.figure.canvas.get_renderer()
            key = ax.get_legend().get_window_extent(renderer)
            frame = ax.get_window_extent(renderer)
            if below:
                assert key.y1 <= frame.y0
                # The nodes span 989 px, 77 % of the page (beside the key: 870 px, 68 %).
                offsets = [c.get_offset_transform().transform(c.get_offsets())
                           for c in ax.collections]  # fmt: skip
                xs = [x for points in offsets for x, _ in points]
                assert max(xs) - min(xs) > 0.75 * 1280
            else:
                assert key.x0 >= frame.x1
        finally:
            plt.close(ax.figure)
