"""The servers and load figures as a class reads them: a busy queue drawn at its true
level (its peak exactly, empty as empty), the same clock on the servers, timeline and
load axes, one phrase for a connection that waits, the firms a scenario compares told
apart, and relays whose sessions are too short to see compared in words."""

from __future__ import annotations

import importlib

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import to_hex

import mailsim
from mailsim import plot
from mailsim.plot import style
from mailsim.plot.delays import GROUP_COLOURS, sender_domains
from mailsim.plot.style import outcome_of
from tests.conftest import row_of, run

servers = importlib.import_module("mailsim.plot.servers")


def on_row(ax: Axes, artist: Artist) -> int:
    """The row an artist drawn in a band's own units (counts from its base) sits on."""
    base = artist.get_transform().transform((0.0, 0.0))
    _, y = ax.transData.inverted().transform(base)
    return round(y)


def mine(ax: Axes, gid: str, row: int) -> list[Artist]:
    return [a for a in [*ax.collections, *ax.lines] if a.get_gid() == gid and on_row(ax, a) == row]


def true_peak(result: mailsim.Result, node: str) -> int:
    """The most message copies ``node`` held at one moment, from the hops alone: a copy
    is held from the end of the hop that brought it to the end of the one that took it on."""
    hops = result.hops[~result.hops["duplicate"]]
    hops = hops[[outcome_of(str(c)) == "ok" for c in hops["code"]]]
    stays = []
    for _, journey in hops.sort_values("index").groupby(["message", "recipient"]):
        arrived = journey[journey["dst"] == node]["end"].tolist()
        left = journey[journey["src"] == node]["end"].tolist()
        stays += [(a, b) for a, b in zip(arrived, left, strict=False)]
    edges = sorted([(a, 1) for a, _ in stays] + [(b, -1) for _, b in stays])
    return int(np.cumsum([d for _, d in edges]).max())


# --- 1. a busy queue at its true level ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "node", "band"),
    [("slow-server", "msa-school", 0.2), ("slow-server", "mx-home", 0.1),
     ("own-server-or-provider", "mx-partner", 0.2)],
)  # fmt: skip
def test_a_busy_queue_is_drawn_up_to_its_true_peak_and_down_to_zero(page, name, node, band):
    """A row of hundreds of stays: the number held from moment to moment, its highest
    drawn level the true peak, its lowest zero, a hairline where it is empty, and the
    peak in words."""
    result = run(name)
    plot.servers(result, ax=page)
    row = row_of(page, node)
    (level,) = mine(page, "held-level", row)
    heights = np.concatenate([path.vertices[:, 1] for path in level.get_paths()])
    peak = true_peak(result, node)
    assert heights.max() == peak
    assert heights.min() == 0
    # Scaled to the row's own peak: the peak reaches the band's top, 0.2 of a row (0.1
    # where connections waiting for a session share it: mx-home).
    top = level.get_transform().transform((0, peak))[1]
    bottom = level.get_transform().transform((0, 0))[1]
    unit = abs(page.transData.transform((0, 1))[1] - page.transData.transform((0, 0))[1])
    assert abs(top - bottom) == pytest.approx(band * unit, rel=1e-6)
    (zero,) = mine(page, "held-zero", row)
    assert list(zero.get_ydata()) == [0, 0]
    assert list(zero.get_xdata()) == pytest.approx([0, page.get_xlim()[1] / 1.02], rel=0.02)
    (mark,) = mine(page, "held-peak", row)
    assert max(mark.get_ydata()) == peak
    words = " ".join(t.get_text() for t in page.texts)
    assert f"up to {peak} message{'s' if peak != 1 else ''} in the queue at once" in words


def test_a_queue_that_is_mostly_empty_does_not_look_full(page):
    """slow-server's mx-home holds each message a few milliseconds: the band is empty
    for nearly all of the run (before, every 10 s bin with one stay was drawn full)."""
    result = run("slow-server")
    plot.servers(result, ax=page)
    (level,) = mine(page, "held-level", row_of(page, "mx-home"))
    # The step profile's flat tops above zero: how long the queue held anything.
    (path,) = level.get_paths()
    x, y = path.vertices[:, 0], path.vertices[:, 1]
    tops = (y[:-1] > 0) & (y[1:] == y[:-1])
    held = float(np.abs(np.diff(x))[tops].sum())
    assert held > 0
    assert held < 0.05 * page.get_xlim()[1]


# --- 2. one clock on every time axis ------------------------------------------------------


def test_servers_timeline_and_load_read_the_same_clock():
    """slow-server: 292 messages — the timeline draws the busiest minutes against the
    clock, the load figure draws the run against it: the servers figure says the same."""
    result = run("slow-server")
    axes = [plot.servers(result), plot.timeline(result), plot.load(result).figure.axes[1]]
    try:
        labels = {ax.get_xlabel() for ax in axes}
        assert labels == {"time of day (the scenario's local time)"} == {style.CLOCK_LABEL}
        servers_ax = axes[0]
        low, high = servers_ax.get_xlim()
        shown = [x for x in servers_ax.get_xticks() if low <= x <= high]
        ticks = [servers_ax.xaxis.get_major_formatter()(x, None) for x in shown]
        assert ticks == ["09:00", "09:05", "09:10", "09:15", "09:20", "09:25", "09:30"]
    finally:
        for ax in axes:
            plt.close(ax.figure)


@pytest.mark.parametrize("name", ["classroom", "mx-down"])
def test_a_run_of_few_messages_counts_from_the_start_as_the_timeline_does(name):
    result = run(name)
    axes = [plot.servers(result), plot.timeline(result)]
    try:
        assert axes[0].get_xlabel() == axes[1].get_xlabel()
        assert axes[0].get_xlabel().startswith("time since the start of the run")
    finally:
        for ax in axes:
            plt.close(ax.figure)


# --- 3. one phrase for waiting ------------------------------------------------------------


def test_waiting_is_said_one_way_in_the_servers_and_load_figures():
    result = run("slow-server")
    axes = [plot.servers(result), plot.load(result)]
    try:
        words = [t.get_text() for ax in axes for t in ax.texts]
        words += [t.get_text() for t in axes[0].get_legend().get_texts()]
        words += [t.get_text() for legend in axes[1].figure.legends for t in legend.get_texts()]
        waiting = [w for w in words if "waiting for a free" in w]
        assert len(waiting) >= 3  # the row, the servers' key, the load's key
        assert all("waiting for a free session" in w for w in waiting)
    finally:
        for ax in axes:
            plt.close(ax.figure)


# --- 4. the firms a scenario compares -----------------------------------------------------


def test_the_load_figure_draws_each_firm_on_its_own():
    """own-server-or-provider: one mean line per sender's domain, in the colours and
    order of the delays figure's curves, each named in the key with its messages; the
    bars above stacked by firm, adding up to each firm's messages."""
    result = run("own-server-or-provider")
    frame = result.messages[result.messages["kind"] == "message"]
    domains = list(dict.fromkeys(sender_domains(frame)))
    assert set(domains) == {"ownco.example", "cloudco.example", "partner.example"}
    ax = plot.load(result)
    try:
        bottom = ax.figure.axes[1]
        means = [line for line in bottom.get_lines() if line.get_gid() == "load-mean"]
        assert [line.get_label() for line in means] == domains
        colours = [to_hex(line.get_color()) for line in means]
        assert colours == [to_hex(style.OKABE_ITO[c]) for c in GROUP_COLOURS[: len(domains)]]
        assert len({line.get_marker() for line in means}) == len(domains)
        (key,) = ax.figure.legends
        texts = [t.get_text() for t in key.get_texts()]
        counts = sender_domains(frame).value_counts()
        for domain in domains:
            assert f"{domain} ({counts[domain]:,} messages)" in texts
        bars = [p for p in ax.patches if p.get_gid() == "load-sent"]
        width = bars[1].get_x() - bars[0].get_x()
        for domain, colour in zip(domains, colours, strict=True):
            drawn = sum(b.get_height() * width for b in bars if to_hex(b.get_facecolor()) == colour)
            assert drawn == pytest.approx(counts[domain])
    finally:
        plt.close(ax.figure)


def test_a_load_figure_of_one_sender_domain_has_one_mean_line():
    ax = plot.load(run("slow-server"))
    try:
        means = [line for line in ax.figure.axes[1].get_lines() if line.get_gid() == "load-mean"]
        assert len(means) == 1
        assert not ax.figure.legends[0].get_title().get_text()
    finally:
        plt.close(ax.figure)


def test_the_servers_figure_says_whose_each_server_is(page):
    """own-server-or-provider: ownco's own servers, the provider's for cloudco, the
    partner's; the resolver serves them all and is nobody's; rows firm by firm, in the
    order the scenario declares its users."""
    plot.servers(run("own-server-or-provider"), ax=page)
    names = [t.get_text() for t in page.get_yticklabels()]
    assert names == [
        "mail-own (MTA)\nownco.example",
        "pop-own (POP3 server)\nownco.example",
        "mail-provider (MTA)\nfor cloudco.example",
        "pop-provider (POP3 server)\nfor cloudco.example",
        "mx-partner (MTA)\npartner.example",
        "pop-partner (POP3 server)\npartner.example",
        "dns (resolver)",
    ]


def test_an_open_relay_is_not_the_spam_bots_server(page):
    """open-relay: the bot sends through oldco's relay; that makes it no server of
    bot.example's. newco's own server is newco's."""
    plot.servers(run("open-relay"), ax=page)
    names = [t.get_text() for t in page.get_yticklabels()]
    assert "relay-old (MTA)" in names
    assert "mail-new (MTA)\nnewco.example" in names
    assert not any("bot.example" in name for name in names)


@pytest.mark.parametrize("name", ["classroom", "slow-server", "tls-versions"])
def test_a_scenario_of_one_firm_names_no_firm(page, name):
    plot.servers(run(name), ax=page)
    assert all("\n" not in t.get_text() for t in page.get_yticklabels())


# --- 5. relays too short to see, compared in words ----------------------------------------


def test_four_relays_sessions_are_compared_in_words(page):
    """tls-versions: four relay sessions of 0.5–0.95 s on a 10-minute axis are a pixel
    wide each; each MX's row says its session's length and TLS version."""
    result = run("tls-versions")
    plot.servers(result, ax=page)
    hops = result.hops
    relays = hops[(hops["protocol"] == "smtp") & (hops["src"] == "msa-school")]
    assert relays["dst"].nunique() == 4
    words = [t.get_text() for t in page.texts]
    for hop in relays.itertuples():
        tls = f"TLS {hop.tls}" if hop.tls else "no TLS"
        said = f" incoming SMTP session: {hop.end - hop.start:.2f} s, {tls}"
        assert said in words
        (text,) = [t for t in page.texts if t.get_text() == said]
        assert row_of(page, hop.dst) == round(text.get_position()[1])
    assert " incoming SMTP session: 0.50 s, no TLS" in words  # mx-plain, the fastest
    assert " incoming SMTP session: 0.87 s, TLS 1.2" in words  # mx-tls12


@pytest.mark.parametrize("name", ["classroom", "mx-down", "backup-mx"])
def test_no_session_words_where_no_relays_are_compared(page, name):
    plot.servers(run(name), ax=page)
    assert not [t for t in page.texts if "incoming SMTP session" in t.get_text()]
