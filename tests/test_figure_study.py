"""A what-if study as a class reads it: axes in words, the fitted slope with its interval,
the time to the mailbox and the time to the reader side by side."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import mailsim
from mailsim.plot.study import curve, key_words, slope
from tests.conftest import SCENARIOS
from tests.test_sweep import SLOPE

LATENCY = "links.r-london/r-newyork.latency"


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (LATENCY, "one-way latency r-london ↔ r-newyork"),
        ("links.3.jitter", "jitter of link 3"),
        ("nodes.mx-home.concurrency", "sessions at once at mx-home"),
        ("nodes.mx-home.processing.data", "server work at the end of DATA at mx-home"),
        ('users["bob@home.example"].poll', "how often bob@home.example's program polls"),
        ("traffic.0.rate", "messages per hour per sender (traffic 0)"),
        ("duration", "duration"),  # no words for it: shown as written
        ("nodes.x.colour", "nodes.x.colour"),
    ],
)
def test_a_varied_key_is_named_in_words(key, words):
    assert key_words(key) == words


def test_the_slope_of_points_on_a_line_is_exact_and_a_curve_widens_its_interval():
    x = np.array([10.0, 45.0, 80.0, 150.0, 300.0])
    y = 0.4 + 0.017 * x
    b, lo, hi, intercept = slope(x, y, y - 0.01, y + 0.01)
    assert (b, intercept) == pytest.approx((0.017, 0.4))
    # Equal spreads: the interval is ordinary least squares' with σ = 0.01 / 1.96.
    sigma = 0.01 / 1.96
    half = 1.96 * sigma / np.sqrt(np.sum((x - x.mean()) ** 2))
    assert (lo, hi) == pytest.approx((0.017 - half, 0.017 + half))
    # Points off the line: the residuals, not the tight bands, set the interval.
    bent = y + np.array([0.0, 0.3, 0.0, -0.3, 0.0])
    _, lo2, hi2, _ = slope(x, bent, bent - 0.01, bent + 0.01)
    assert hi2 - lo2 > 10 * (hi - lo)


def test_the_study_draws_both_halves_of_the_delay_with_its_slope_in_words():
    table = mailsim.sweep(SCENARIOS / "transatlantic.yaml", {LATENCY: ["10ms", "150ms", "300ms"]},
                          replications=3, workers=1)  # fmt: skip
    ax = curve(table, [LATENCY], ("transfer_mean", "delay_mean"))
    try:
        mailbox, reader = ax.figure.axes
        assert mailbox.get_xlabel() == "one-way latency r-london ↔ r-newyork (ms)"
        assert mailbox.get_ylabel() == "sending → the recipient's mailbox (mean) (s)"
        assert reader.get_ylabel().startswith("sending → read by the recipient's program")
        assert ax.figure.get_suptitle().startswith(
            "What if the one-way latency r-london ↔ r-newyork changes? 3 runs per point"
        )
        (text,) = [t for t in mailbox.texts if t.get_gid() == "sweep-slope"]
        assert text.get_text().startswith(f"— slope {SLOPE:.1f} ms per ms (95 %: ")
        (fit,) = [line for line in mailbox.get_lines() if line.get_gid() == "sweep-fit"]
        xs, ys = fit.get_data()
        assert (ys[-1] - ys[0]) / (xs[-1] - xs[0]) == pytest.approx(SLOPE / 1000, rel=1e-3)
        # The key is below both panels: it covers no point (the 10 ms one sat under it).
        ax.figure.canvas.draw()
        (key,) = ax.figure.legends
        assert [t.get_text() for t in key.get_texts()] == ["mean", "95 % confidence interval"]
        assert mailbox.get_legend() is None
        assert reader.get_legend() is None
        assert key.get_window_extent().y1 <= min(
            a.get_window_extent().y0 for a in (mailbox, reader)
        )
    finally:
        plt.close(ax.figure)
