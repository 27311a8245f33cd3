"""The timelines and where the time went, as a class sees them at 1280×720: a server's
outage covers exactly the fault's window and the delivery comes after it, a message
waiting at a backup MX is a queue bar on that MX's row, no hop is too narrow to see, the
legend lists only what is drawn, and a millisecond difference hidden by a 5-minute poll
wait gets a panel of its own."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import Collection
from matplotlib.colors import to_hex

import mailsim
from mailsim import plot
from mailsim.plot import style
from mailsim.plot.delays import ways
from mailsim.plot.style import outcome_of
from mailsim.units import format_duration
from tests.conftest import SCENARIOS, row_of, run, shipped
from tests.test_figure_layout import problems

MIN_PX = 3.0
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def spans(ax: Axes, gid: str, row: int) -> list[tuple[float, float]]:
    """(x0, x1) of each bar with ``gid`` on ``row``, in data units."""
    found = []
    for collection in ax.collections:
        if collection.get_gid() != gid:
            continue
        for path in collection.get_paths():
            box = path.get_extents()
            if row - 0.5 <= (box.y0 + box.y1) / 2 <= row + 0.5:
                found.append((box.x0, box.x1))
    return sorted(found)


def pixel_widths(ax: Axes, collections: list[Collection]) -> list[float]:
    ax.figure.canvas.draw()
    widths = []
    for collection in collections:
        for path in collection.get_paths():
            box = path.get_extents()
            (x0, _), (x1, _) = ax.transData.transform([(box.x0, 0), (box.x1, 0)])
            widths.append(x1 - x0)
    return widths


def test_mx_down_outage_covers_the_fault_and_delivery_comes_after(page):
    result = run("mx-down")
    (fault,) = result.scenario.faults
    plot.servers(result, ax=page)
    row = row_of(page, fault.node)
    assert spans(page, "outage", row) == [
        pytest.approx((fault.start / 60, fault.end / 60), abs=1e-9)
    ]
    words = [t.get_text() for t in page.texts]
    assert f" down {fault.start / 60:.0f}–{fault.end / 60:.0f} min" in words
    hops = result.hops
    delivered = hops[(hops["dst"] == fault.node) & (hops["code"].astype(str) == "250")]
    (start,) = delivered["start"] / 60
    assert start > fault.end / 60
    assert pytest.approx(start, abs=1e-9) in [a for a, _ in spans(page, "session", row)]
    assert f"first try once it was over: {start:.1f} min " in words  # 149.7


def test_backup_mx_holds_the_message_in_its_queue(page):
    result = run("backup-mx")
    plot.servers(result, ax=page)
    hops = result.hops
    ok = hops[[outcome_of(str(c)) == "ok" for c in hops["code"]]]
    arrived = float(ok.loc[ok["dst"] == "backup-mx", "end"].iloc[0])
    left = float(ok.loc[ok["src"] == "backup-mx", "end"].iloc[0])
    assert left - arrived > 3600 * 0.9  # the hour the primary is down, and more
    row = row_of(page, "backup-mx")
    assert spans(page, "queue", row) == [pytest.approx((arrived / 60, left / 60), abs=1e-9)]


@pytest.mark.parametrize("name", ["mx-down", "backup-mx", "server-crash"])
def test_every_hop_is_visible(page, name):
    result = run(name)
    plot.timeline(result, ax=page)
    page.figure.canvas.draw()
    renderer = page.figure.canvas.get_renderer()
    bars = [p for p in page.patches if p.get_gid() == "hop"]
    assert bars
    assert min(b.get_window_extent(renderer).width for b in bars) >= MIN_PX
    # A real hop is far shorter than that: the widening is what makes it visible.
    shortest = float((result.hops["end"] - result.hops["start"]).min())
    (x0, _), (x1, _) = page.transData.transform([(0, 0), (shortest / 60, 0)])
    assert x1 - x0 < 1.0


@pytest.mark.parametrize("name", ["mx-down", "backup-mx", "dns-outage", "server-crash"])
def test_every_server_session_is_visible(page, name):
    plot.servers(run(name), ax=page)
    sessions = [c for c in page.collections if (c.get_gid() or "").startswith("session")]
    assert sessions
    assert min(pixel_widths(page, sessions)) >= MIN_PX


def _drawn_colours(ax: Axes) -> set[str]:
    colours = {to_hex(p.get_facecolor()) for p in ax.patches if p.get_width() > 0}
    for collection in ax.collections:
        colours |= {to_hex(c) for c in collection.get_facecolors()}
    return colours


@pytest.mark.parametrize("kind", ["timeline", "servers"])
@pytest.mark.parametrize("name", ["mx-down", "backup-mx", "unknown-user"])
def test_the_legend_lists_only_what_is_drawn(page, kind, name):
    getattr(plot, kind)(run(name), ax=page)
    legend = page.get_legend()
    entries = {to_hex(h.get_facecolor()) for h in legend.legend_handles}
    assert entries <= _drawn_colours(page)
    assert len({t.get_text() for t in legend.get_texts()}) == len(legend.get_texts())


def test_mx_down_timeline_has_no_queued_entry(page):
    """Its copy never waits in a queue for a visible time: no 'queued' in the legend."""
    plot.timeline(run("mx-down"), ax=page)
    labels = [t.get_text() for t in page.get_legend().get_texts()]
    assert "queued" not in labels
    assert "waiting to try again" in labels


def drawn_copies(ax: Axes, result: mailsim.Result) -> list:
    """The copies whose rows the timeline draws, top to bottom."""
    by_row = {f"{c.message.id} → {c.recipient}": c for c in result.copies}
    return [by_row[t.get_text()] for t in ax.get_yticklabels()]


def test_a_sample_says_of_how_many_and_which(page):
    result = run("own-server-or-provider")
    plot.timeline(result, ax=page)
    total = len(result.copies)
    copies = drawn_copies(page, result)
    assert 20 <= len(copies) < total
    same = total == len({c.message.id for c in result.copies})
    noun = "messages" if same else "message copies"
    title = page.get_title(loc="left")
    assert title.startswith(f"Journeys of {len(copies)} of {total:,} {noun}, sent ")
    assert ", the busiest minutes — " in title
    # Sent one after another: no copy of the run was sent between two drawn ones.
    sent = [c.submitted_at for c in copies]
    assert sent == sorted(sent)
    between = [c for c in result.copies if sent[0] <= c.submitted_at <= sent[-1]]
    assert len(between) == len(copies)
    # The axis spans the sample, not the whole run.
    shown = {(c.message.id, c.recipient) for c in copies}
    hops = result.hops
    mine = hops[[k in shown for k in zip(hops["message"], hops["recipient"], strict=True)]]
    assert page.get_xlim()[1] < result.end_time / 60
    assert page.get_xlim()[1] >= mine["end"].max() / 60
    assert page.get_xlim()[0] <= sent[0] / 60


def test_busy_office_shows_its_busiest_hour():
    """17,004 messages: the rows are the busiest minutes of the busiest hour, not the
    first messages of the day at 07:00."""
    result = run("busy-office")
    ax = plot.timeline(result)
    try:
        sent = np.array([c.submitted_at for c in result.copies])
        hour = int(np.argmax(np.bincount((sent // 3600).astype(int))))
        copies = drawn_copies(ax, result)
        assert len(copies) >= 20
        assert all(hour * 3600 <= c.submitted_at < (hour + 1) * 3600 for c in copies)
        assert hour >= 3  # 10:00 or later: the late-morning rush (the run starts at 07:00)
        title = ax.get_title(loc="left")
        assert f"Journeys of {len(copies)} of 17,004 messages, sent " in title
        assert "the busiest" in title
        assert milestones(ax) == []  # a sample of a day: no words on its bars
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize("name", ["open-relay", "spoofing", "unknown-user", "mx-down",
                                  "retry-policies", "greylisting"])  # fmt: skip
def test_reply_codes_lie_in_their_own_rows(name):
    """Each reply code sits within the band of the row of its failed attempt (open-relay
    printed 554 under the row above)."""
    ax = plot.timeline(run(name))
    try:
        ax.figure.canvas.draw()
        renderer = ax.figure.canvas.get_renderer()
        ticks = [float(t) for t in ax.get_yticks()]  # the bars' centres; row k is k ± 0.5
        to_px = ax.transData.transform
        failed = [p for p in ax.patches if p.get_gid() == "hop"
                  and outcome_of_colour(p) != "ok"]  # fmt: skip
        codes = [t for t in ax.texts if t.get_gid() == "code" and t.get_visible()]
        assert codes
        for text in codes:
            box = text.get_window_extent(renderer)
            x, y = text.get_position()
            # At its attempt's start or end, give or take the few pixels a bar widened
            # to be seen moves the bar after it.
            px = abs(to_px((1.0, 0.0))[0] - to_px((0.0, 0.0))[0])
            mine = [p for p in failed
                    if min(abs(p.get_x() - x), abs(p.get_x() + p.get_width() - x)) * px
                    <= MIN_PX + 0.5]  # fmt: skip
            assert mine, f"{text.get_text()} is not at a failed attempt"
            bar = min(mine, key=lambda p: abs(p.get_y() - y))  # the nearest one
            row = min(
                range(len(ticks)), key=lambda k: abs(ticks[k] - bar.get_y() - bar.get_height() / 2)
            )
            top, bottom = (to_px((0, row + d))[1] for d in (-0.5, 0.5))
            assert bottom <= box.y0, f"{text.get_text()!r} runs into the row below"
            assert box.y1 <= top, f"{text.get_text()!r} runs into the row above"
            # Nearer its own bar than the bar of the row above.
            own = to_px((0, bar.get_y()))[1]
            above = to_px((0, ticks[row - 1] + bar.get_height() / 2))[1] if row else 1e9
            assert box.y0 - own < above - box.y1
    finally:
        plt.close(ax.figure)


def outcome_of_colour(patch) -> str:
    from mailsim.plot import style

    colour = to_hex(patch.get_facecolor()).upper()
    return {v.upper(): k for k, v in style.OUTCOME.items()}.get(colour, "ok")


@pytest.mark.parametrize("kind", ["timeline", "servers"])
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_figures_fit_a_projector_with_readable_text(kind, path):
    """1280×720 — a timeline of a few journeys as tall as they and its key need, and no
    taller — every word at 10.5 pt or more (14.6 px at dpi 100), a legend that names
    only what is drawn and covers none of it."""
    from tests.test_figure_layout import drawn_texts

    result = shipped(path)
    ax = getattr(plot, kind)(result)
    try:
        figure = ax.figure
        width, height = figure.get_size_inches() * figure.dpi
        few = kind == "timeline" and len(result.copies) <= 3
        assert round(width) == 1280
        assert 250 <= round(height) < 720 if few else round(height) == 720
        if few:  # the key fits beside the journeys
            renderer = figure.canvas.get_renderer()
            figure.canvas.draw()
            assert ax.get_legend().get_window_extent(renderer).y0 >= 0
        with drawn_texts() as texts:
            figure.canvas.draw()
        small = {t.get_text() for t in texts if t.get_fontsize() < 10.5}
        assert not small
        legend = ax.get_legend()
        entries = {to_hex(h.get_facecolor()) for h in legend.legend_handles}
        assert entries <= _drawn_colours(ax)
        renderer = figure.canvas.get_renderer()
        assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    finally:
        plt.close(ax.figure)


def test_slow_server_shows_connections_waiting_for_a_session(page):
    """mx-home serves one session at a time: a second connection waits in the listen
    queue. Its row draws that waiting, and says how many waited at once."""
    import re

    result = run("slow-server")
    plot.servers(result, ax=page)
    row = row_of(page, "mx-home")
    waiting = [c for c in page.collections if c.get_gid() == "waiting-level"]
    assert len(waiting) == 1  # on one row only
    (level,) = waiting
    page.figure.canvas.draw()
    box = level.get_window_extent(page.figure.canvas.get_renderer())
    top, bottom = (page.transData.transform((0, row + d))[1] for d in (-0.5, 0.5))
    assert bottom <= box.y0
    assert box.y1 <= top
    words = [t.get_text() for t in page.texts]
    (said,) = [w for w in words if "waiting for a free session: up to" in w]
    peak = int(re.search(r"waiting for a free session: up to (\d+)", said).group(1))
    assert peak >= 2
    assert "waiting for a free session" in [t.get_text() for t in page.get_legend().get_texts()]
    # The relay hops into mx-home that waited: the queueing the delay parts report.
    assert result.messages["queue_time"].max() > 1.0


def test_a_bounced_message_leaves_the_queue_when_it_is_bounced(page):
    """unknown-user: the MX refuses m1 at 10.9 s and the bounce is in alice's mailbox
    13 ms later; m1 does not stay in msa-school's queue to the end of the run."""
    import importlib

    servers = importlib.import_module("mailsim.plot.servers")
    result = run("unknown-user")
    (row,) = [r for r in servers._rows(result) if r.name == "msa-school"]
    assert row.held
    assert max(b - a for a, b in row.held) <= 1.0
    plot.servers(result, ax=page)
    page.figure.canvas.draw()
    queued = [c for c in page.collections if c.get_gid() == "queue"]
    assert max(pixel_widths(page, queued)) <= servers.MIN_PX + 0.5


def test_a_refusal_is_drawn_in_the_permanent_colour_on_the_servers_row(page):
    """unknown-user: mx-home refuses the RCPT with 550 — a refused session (vermillion,
    "refused (5xx)"), not a failed one to be tried again (orange)."""
    plot.servers(run("unknown-user"), ax=page)
    refused = [c for c in page.collections if c.get_gid() == "session-refused"]
    assert refused
    assert {to_hex(c.get_facecolor()[0]) for c in refused} == {to_hex(style.OUTCOME["permanent"])}
    assert not [c for c in page.collections if c.get_gid() == "session-failed"]
    legend = [t.get_text() for t in page.get_legend().get_texts()]
    assert "refused (5xx)" in legend
    assert not any(text.startswith("failed session") for text in legend)


def _transfer_panel(ax: Axes) -> Axes:
    (panel,) = [a for a in ax.figure.axes if a is not ax]
    return panel


def test_free_vs_paid_transfer_panel_shows_both_tls_parts(page):
    result = run("free-vs-paid-provider")
    plot.delays(result, ax=page)
    panel = _transfer_panel(page)
    assert panel.get_xlabel().endswith("(ms)")
    frame = result.messages.sort_values("retrieved_at", key=lambda c: c.isna(), kind="stable")
    tls = frame["tls_time"].to_numpy() * 1000
    assert tls.min() < 10  # 7 ms without encryption
    assert tls.max() > 150  # 206 ms with
    bars = sorted(
        (p for p in panel.patches if p.get_gid() == "transfer-tls"),
        key=lambda p: p.get_y(),
    )
    assert len(bars) == len(frame)
    page.figure.canvas.draw()
    renderer = page.figure.canvas.get_renderer()
    widths = np.array([b.get_window_extent(renderer).width for b in bars])
    for bar, item, ms in zip(bars, frame.itertuples(), tls, strict=True):
        assert bar.get_x() == pytest.approx(item.network_time * 1000)  # after the network part
        if bar.get_window_extent(renderer).width > 3.6:  # not widened: its true length
            assert bar.get_width() == pytest.approx(ms)
    assert widths.min() >= MIN_PX
    small, large = widths[tls < 10], widths[tls > 150]
    assert large.min() > 5 * small.max()
    # The poll wait is not in the panel; the whole delay is in the first one.
    assert not [p for p in panel.patches if p.get_gid() == "transfer-poll"]
    assert [p for p in page.patches if p.get_gid() == "delay-poll"]


def test_the_transfer_panel_says_where_the_copy_reached_the_mailbox():
    """The report says "in the mailbox after 1.043 s"; the transfer bar goes on to 1.206 s
    with the POP3 download. The words at the bar's end say both."""
    result = run("classroom")
    ax = plot.delays(result)
    try:
        panel = _transfer_panel(ax)
        (copy,) = result.messages.itertuples()
        # In words only: the bar is stacked by kind, so no point on it is that moment.
        assert not [line for line in panel.lines if line.get_gid() == "mailbox"]
        words = [t.get_text() for t in panel.texts]
        assert f" all {format_duration(copy.delay - copy.poll_time)}\n to mailbox 1.043 s" in words
        assert format_duration(copy.to_mailbox) == "1.043 s"
        ax.figure.canvas.draw()
        texts = [t for a in ax.figure.axes for t in [*a.texts, *a.get_xticklabels(),
                 *a.get_yticklabels()] if t.get_text().strip()]  # fmt: skip
        texts += list(ax.figure.legends[0].get_texts())
        assert min(t.get_window_extent().height for t in texts) >= 14  # px, the back row
        assert problems(ax.figure) == []
    finally:
        plt.close(ax.figure)


def test_a_refused_try_is_a_refused_try_not_a_retry():
    """spoofing's m2 was refused at once (550, DMARC) and never tried again: its words say
    the time went on a refused try; tls-versions delivers without a reader, in black."""
    ax = plot.delays(run("spoofing"))
    try:
        words = " ".join(t.get_text() for t in ax.texts)
        assert "refused try 633.8 ms" in words
        assert "retries" not in words
        assert "failed tries" not in words
    finally:
        plt.close(ax.figure)
    ax = plot.delays(run("tls-versions"))
    try:
        ends = [t for t in ax.texts if "delivered after" in t.get_text()]
        assert len(ends) == 4
        assert {to_hex(t.get_color()) for t in ends} == {"#000000"}
        assert ax.get_xlabel() == "s from submission to delivery (or to where the journey ended)"
        assert problems(ax.figure) == []
    finally:
        plt.close(ax.figure)


def test_a_poll_free_scenario_keeps_one_panel(page):
    plot.delays(run("mx-down"), ax=page)
    assert page.figure.axes == [page]


def test_own_server_or_provider_has_one_curve_per_way(page):
    """Two firms, each writing inside and to the partner: a curve per way the mail went,
    so ownco's 1.0 s inside the firm stands beside cloudco's 1.4 s."""
    result = run("own-server-or-provider")
    plot.delays(result, ax=page)
    frame = result.messages[result.messages["retrieved_at"].notna()]
    names = sorted(set(ways(frame)))
    assert names == [
        "cloudco.example → cloudco.example",
        "cloudco.example → partner.example",
        "ownco.example → ownco.example",
        "ownco.example → partner.example",
        "partner.example → cloudco.example",
        "partner.example → ownco.example",
    ]
    curves = [line for line in page.lines if line.get_gid() == "ecdf"]
    assert len(curves) == len(names)
    for line, name in zip(curves, names, strict=True):
        delays = np.sort(frame.loc[ways(frame) == name, "delay"].to_numpy())
        assert np.allclose(line.get_xdata(), delays / 60)
    panel = _transfer_panel(page)
    labels = [t.get_text() for t in panel.get_legend().get_texts()]
    assert [label.split(",")[0] for label in labels] == names
    assert panel.get_legend().get_title().get_text() == "sent from → to"


def test_busy_office_curves_show_the_readers_poll(page):
    """The office reads every 30 minutes, the partner every 10: mail to the partner
    waits a median of about 5 minutes, mail to the office about 15, whoever sent it."""
    result = run("busy-office")
    plot.delays(result, ax=page)
    frame = result.messages[result.messages["retrieved_at"].notna()]
    median = frame.groupby(ways(frame))["delay"].median()
    assert median["office.example → partner.example"] < 6 * 60
    assert 13 * 60 < median["office.example → office.example"] < 17 * 60
    assert 13 * 60 < median["partner.example → office.example"] < 17 * 60
    labels = [t.get_text() for t in _transfer_panel(page).get_legend().get_texts()]
    wanted = format_duration(float(median["office.example → partner.example"]))
    assert labels[1].startswith(f"office.example → partner.example, 6,681 copies\nmedian {wanted},")


def test_percentiles_are_named_in_the_legend_off_the_lines(page):
    """p90 and p99 of a 5-minute poll lie a pixel apart: words beside them would be
    crossed; the legend names them, outside the axes, where no line runs."""
    data = mailsim.load(SCENARIOS / "classroom.yaml").model_dump(by_alias=True, exclude_none=True)
    data["messages"] = []
    data["duration"] = "10h"
    data["users"]["alice@school.example"]["mailbox"] = None
    data["traffic"] = [{"from": "alice@school.example", "to": "bob@home.example", "rate": "10/h"}]
    result = mailsim.run(mailsim.scenario.validate(data))  # type: ignore[attr-defined]
    plot.delays(result, ax=page)
    retrieved = result.messages[result.messages["retrieved_at"].notna()]
    delays = retrieved["delay"].to_numpy()
    legend = [a.get_legend() for a in page.figure.axes if a.get_legend()]
    texts = [t.get_text() for t in legend[0].get_texts()]
    assert texts == [
        f"p{q} = {format_duration(float(np.percentile(delays, q)))}" for q in (50, 90, 99)
    ]
    for q in (50, 90, 99):
        (line,) = [line for line in page.lines if line.get_gid() == f"p{q}"]
        assert line.get_xdata()[0] == pytest.approx(np.percentile(delays, q) / 60)
    page.figure.canvas.draw()
    renderer = page.figure.canvas.get_renderer()
    frame = page.get_window_extent(renderer)
    for text in legend[0].get_texts():
        assert text.get_window_extent(renderer).x0 >= frame.x1  # outside the lines' axes


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_no_label_covers_another_on_the_timeline(path):
    """Codes counted into "4.4.1 ×3" when attempts come close: a longer label takes in
    the next one it would reach (backup-mx's first retries, 7 minutes apart)."""
    ax = plot.timeline(shipped(path))
    try:
        assert not problems(ax.figure)
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_no_label_covers_another_on_the_servers_timeline(page, path):
    plot.servers(shipped(path), ax=page)
    assert not problems(page.figure)


def test_a_busy_server_shows_sessions_per_bin_and_its_peak(page):
    """own-server-or-provider: hundreds of sessions at each server would be a smear of
    bars; each row counts the sessions begun per 5 minutes and names its peak."""
    import importlib

    servers = importlib.import_module("mailsim.plot.servers")
    result = run("own-server-or-provider")
    plot.servers(result, ax=page)
    hops = result.hops[~result.hops["duplicate"]]
    ok = hops[[outcome_of(str(c)) == "ok" for c in hops["code"]]]
    mine = ok[(ok["src"] == "mail-own") | (ok["dst"] == "mail-own")]
    assert len(mine) > servers.DENSE
    edges = servers._bins(result.end_time)
    assert edges[1] - edges[0] == 60  # about 150 bins over 3 hours: one a minute
    counts, _ = np.histogram(mine["start"], bins=edges)
    words = [t.get_text() for t in page.texts]
    assert f"up to {counts.max()} sessions begun in a minute" in words
    assert not spans(page, "session", row_of(page, "mail-own"))  # counted, not barred
    assert not problems(page.figure)


def test_widened_hops_of_a_row_lie_side_by_side():
    """busy-office: a 57 ms submission and a 13 ms LMTP hop a second apart on a
    half-hour axis, each widened to be seen: the LMTP mark starts where the submission's
    ends, so both colours the key names are on the page."""
    ax = plot.timeline(run("busy-office"))
    try:
        hops = sorted((p for p in ax.patches if p.get_gid() == "hop"),
                      key=lambda p: (p.get_y(), p.get_x()))  # fmt: skip
        colours = set()
        for a, b in itertools.pairwise(hops):
            colours.add(to_hex(a.get_facecolor()))
            if a.get_y() == b.get_y():
                assert b.get_x() >= a.get_x() + a.get_width() - 1e-9
        assert {to_hex(c) for c in (style.PROTOCOL["smtp"], style.PROTOCOL["lmtp"])} <= colours
        assert ax.get_xlabel() == "time of day (the scenario's local time)"
        assert ax.xaxis.get_major_formatter()(ax.get_xlim()[0], 0).startswith("10:5")
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    ("name", "label", "window"),
    [("mx-down", "mx-home down\n0–120 min", (0, 120)),
     ("tls-downgrade", "man in the middle on r-school–r-home\n0–60 min", (0, 60))],
)  # fmt: skip
def test_the_timeline_shades_when_the_server_was_down(page, name, label, window):
    """mx-down: the MX is down 0–120 min, the next try comes at 150 — the band behind the
    rows and its entry in the key say why the wait ends there."""
    plot.timeline(run(name), ax=page)
    (band,) = [p for p in page.patches if p.get_gid() == "outage"]
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx(window)
    assert label in [t.get_text() for t in page.get_legend().get_texts()]


def test_a_full_mailbox_is_drawn_where_it_was_full(page):
    """mailbox-full: bob's mailbox over quota for the first hour — on the row of the
    server that holds it, with the first try after it (77.3 min), and on the timeline."""
    result = run("mailbox-full")
    plot.servers(result, ax=page)
    texts = [t.get_text() for t in page.texts]
    assert " bob's mailbox full 0–60 min" in texts
    assert "first try once it was over: 77.3 min " in texts
    page.clear()
    plot.timeline(result, ax=page)
    assert "pop-home bob's mailbox full\n0–60 min" in [
        t.get_text() for t in page.get_legend().get_texts()
    ]


def test_an_mx_s_incoming_session_and_its_lmtp_hop_are_two_marks():
    """classroom's mx-home: an 809 ms SMTP session and a 13 ms LMTP hop right after it,
    each widened to be seen on a 5-minute axis — the second starts where the first ends
    instead of covering it; sessions that overlap for real are left as they are."""
    import importlib

    servers = importlib.import_module("mailsim.plot.servers")
    bars = servers._side_by_side({"smtp": [(10.221, 11.030)], "lmtp": [(11.030, 11.043)]},
                                 least=0.05, scale=60.0)  # fmt: skip
    ((x0, w0),), ((x1, w1),) = bars["smtp"], bars["lmtp"]
    assert (x0, w0) == pytest.approx((10.221 / 60, 0.05))
    assert (x1, w1) == pytest.approx((x0 + w0, 0.05))
    wide = servers._side_by_side({"smtp": [(0.0, 600.0), (60.0, 660.0)]}, 0.05, 60.0)
    assert [pytest.approx(bar) for bar in [(0.0, 10.0), (1.0, 10.0)]] == wide["smtp"]


def session_waits(result: mailsim.Result) -> dict[int, tuple[str, float, float]]:
    """Each session whose connection waited for a free session: (the server, from the
    client's ACK reaching it, to the session's first step after the handshake)."""
    events = result.events
    acks = events[(events["protocol"] == "tcp") & (events["step"] == "ACK")]
    found = {}
    for session, group in events.groupby("session"):
        ack = acks[acks["session"] == session]
        later = group[group["protocol"] != "tcp"]
        if ack.empty or later.empty:
            continue
        start, end = float(ack["arrive"].iloc[0]), float(later["time"].min())
        if end - start > 0.01:
            found[int(session)] = (str(ack["dst"].iloc[0]), start, end)
    return found


def test_slow_server_draws_the_wait_for_a_session_apart_from_the_scan(page):
    """slow-server: mx-home serves one session at a time; a connection that came while
    it scanned another message waits for the 220 — a pale dotted stretch of its relay
    hop, from the ACK to the greeting, before the hop's blue (the 2 s scan)."""
    result = run("slow-server")
    plot.timeline(result, ax=page)
    copies = drawn_copies(page, result)
    hops = result.hops
    waits = session_waits(result)
    expected = set()
    for row, copy in enumerate(copies):
        mine = hops[(hops["message"] == copy.message.id) & (hops["recipient"] == copy.recipient)]
        for hop in mine.itertuples():
            if int(hop.session) in waits:
                node, start, end = waits[int(hop.session)]
                assert node == hop.dst == "mx-home"
                expected.add((row, round(start / 60, 9), round(end / 60, 9)))
    assert len(expected) >= 5  # the bunched sends of the busiest seconds queue
    ticks = [float(t) for t in page.get_yticks()]
    bars = [p for p in page.patches if p.get_gid() == "wait-session"]
    drawn = set()
    for bar in bars:
        row = min(
            range(len(ticks)), key=lambda k: abs(ticks[k] - bar.get_y() - bar.get_height() / 2)
        )
        drawn.add((row, round(bar.get_x(), 9), round(bar.get_x() + bar.get_width(), 9)))
        assert bar.get_hatch() == "..."
        # Over its relay hop's bar, which goes on after it: the server's work.
        # (A widened submission before it may have moved the hop's start a little.)
        end = bar.get_x() + bar.get_width()
        assert [p for p in page.patches if p.get_gid() == "hop" and p.get_y() == bar.get_y()
                and p.get_x() < end < p.get_x() + p.get_width()]  # fmt: skip
    assert drawn == expected
    labels = [t.get_text() for t in page.get_legend().get_texts()]
    assert "waiting for a free session\n(all the server's sessions busy)" in labels


@pytest.mark.parametrize("name", ["classroom", "mx-down", "tls-versions"])
def test_no_session_wait_where_no_connection_waited(page, name):
    result = run(name)
    plot.timeline(result, ax=page)
    assert not session_waits(result)
    assert not [p for p in page.patches if p.get_gid() == "wait-session"]
    labels = [t.get_text() for t in page.get_legend().get_texts()]
    assert not [label for label in labels if "free session" in label]


def marks(ax: Axes) -> list[float]:
    """The times (axis units) of the attempt ticks under the counted labels."""
    xs = [x for line in ax.lines if line.get_gid() == "attempt" for x in line.get_xdata()]
    return sorted({float(x) for x in xs if not np.isnan(x)})


def test_backup_mx_shows_each_retry_at_its_time(page):
    """backup-mx: mx-home refuses the school's server, then the backup MX, which tries it
    again after 7, 10 and 20 minutes — a tick at each attempt; the label over them,
    joined for want of room, says whose tries they were, not one schedule."""
    result = run("backup-mx")
    plot.timeline(result, ax=page)
    hops = result.hops
    failed = hops[[outcome_of(str(c)) != "ok" for c in hops["code"]]]
    assert marks(page) == pytest.approx(sorted(failed["start"] / 60), abs=1e-9)
    (code,) = [t for t in page.texts if t.get_gid() == "code" and t.get_visible()]
    assert code.get_text() == "4.4.1 connection refused ×5: msa-school once, then backup-mx 4 times"
    (bracket,) = [line for line in page.lines if line.get_gid() == "retry-bracket"]
    assert list(bracket.get_xdata()) == pytest.approx(
        [failed["start"].min() / 60, failed["end"].max() / 60]
    )
    # The label sits over the bracket, the ticks reach down into the bar.
    page.figure.canvas.draw()
    renderer = page.figure.canvas.get_renderer()
    label = code.get_window_extent(renderer)
    line = bracket.get_window_extent(renderer)
    assert 0 <= label.y0 - line.y1 <= 6


def test_retry_policies_say_each_schedule(page):
    """retry-policies: the same outage, three schedules — Postfix's doubling, the RFC's
    30 minutes, Exim's 30 minutes — read off the labels and the ticks."""
    result = run("retry-policies")
    plot.timeline(result, ax=page)
    words = {t.get_text() for t in page.texts if t.get_gid() == "code" and t.get_visible()}
    assert words == {
        "4.4.1 connection refused ×5, again after 9.8, 10, 20, 40 min",
        "4.4.1 connection refused ×3, every 30 min",
        "4.4.1 connection refused ×4, again after 29.8, 30, 30 min",
    }
    hops = result.hops
    failed = hops[[outcome_of(str(c)) != "ok" for c in hops["code"]]]
    assert marks(page) == pytest.approx(sorted(failed["start"] / 60), abs=1e-9)


@pytest.mark.parametrize("name", ["greylisting", "mx-down", "unknown-user"])
def test_codes_are_worded_as_the_route_words_them(page, name):
    """A failed attempt's code and gist on the timeline are the route's words: "450
    greylisted" on both, not "4.2.0" on one and "450" on the other."""
    result = run(name)
    plot.timeline(result, ax=page)
    codes = [t.get_text() for t in page.texts if t.get_gid() == "code" and t.get_visible()]
    assert codes
    route = plot.route(result, result.copies[0].message.id)
    try:
        said = [t.get_text() for t in route.texts]
    finally:
        plt.close(route.figure)
    for code in codes:
        reply = code.split(" ×")[0]
        assert any(f"✗ {reply}" in text for text in said), (reply, said)
    if name == "greylisting":
        assert codes == ["450 greylisted"]


def zoom_panel(ax: Axes) -> list[Axes]:
    return [child for child in ax.child_axes if child.get_gid() == "zoom"]


def test_tls_versions_compares_the_relay_hops_on_their_own_scale(page):
    """tls-versions: four relay hops of 0.5–0.96 s on a 17 s axis, a round trip (90 ms)
    apart — a panel draws them from their starts in ms, each labelled with its length."""
    result = run("tls-versions")
    plot.timeline(result, ax=page)
    (panel,) = zoom_panel(page)
    hops = result.hops
    relays = hops[hops["protocol"] == "smtp"].sort_values("start")
    bars = [p for p in panel.patches if p.get_gid() == "zoom-hop"]
    assert [b.get_x() for b in bars] == [0.0] * 4
    assert [b.get_width() for b in bars] == pytest.approx(
        list((relays["end"] - relays["start"]) * 1e3)
    )
    names = [t.get_text() for t in panel.get_yticklabels()]
    assert names == [f"{s} → {d}" for s, d in zip(relays["src"], relays["dst"], strict=True)]
    lengths = [t.get_text() for t in panel.texts if t.get_gid() == "zoom-length"]
    tls = [f"TLS {v}" if v else "plaintext" for v in relays["tls"]]
    expected = [
        f"{(e - s) * 1e3:.0f} ms · {t}"
        for s, e, t in zip(relays["start"], relays["end"], tls, strict=True)
    ]
    assert lengths == expected
    assert "503 ms · plaintext" in lengths
    assert "866 ms · TLS 1.2" in lengths
    # Below every row of the journeys, inside the page, words at 11 pt.
    page.figure.canvas.draw()
    renderer = page.figure.canvas.get_renderer()
    panel_top = panel.get_tightbbox(renderer).y1
    lowest_row = page.transData.transform((0, max(page.get_yticks()) + 0.5))[1]
    assert panel_top < lowest_row
    assert all(t.get_fontsize() >= 11 for t in [*panel.texts, *panel.get_yticklabels()])
    assert not problems(page.figure)


@pytest.mark.parametrize("name", ["classroom", "mx-down", "backup-mx", "greylisting",
                                  "retry-policies", "slow-server"])  # fmt: skip
def test_no_relay_panel_where_the_hops_compare_on_the_axis(page, name):
    """classroom has one relay hop, mx-down one that worked, backup-mx and the others
    relay hops of one length, slow-server too many for a panel: none needs it."""
    plot.timeline(run(name), ax=page)
    assert not zoom_panel(page)
    assert not [p for p in page.patches if p.get_gid() == "zoom-ground"]


@pytest.mark.parametrize(
    ("starts", "words"),
    [([0, 1800, 3600], "every 30 min"),
     ([10.3, 600.1, 1200.1, 2400.1], "again after 9.8, 10, 20 min"),
     ([10.3, 11.4, 420.8], "again after 1 s, 6.8 min"),
     ([10.0, 12.0], "again after 2 s"),
     ([120.1, 583.5], "again after 7.7 min")],
)  # fmt: skip
def test_a_retry_schedule_in_words(starts, words):
    """The gaps between attempts in the axis's unit; one too short for it in seconds."""
    from mailsim.plot.timeline import _schedule

    assert _schedule(starts, 60.0, "min") == words


def milestones(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_gid() == "milestone"]


def test_a_few_journeys_say_when_they_reached_the_mailbox_and_the_reader(page):
    """classroom: a second in the mailbox, five minutes to the reader — said above the
    bar, each where it happened; far apart, two labels."""
    result = run("classroom")
    plot.timeline(result, ax=page)
    (copy,) = result.copies
    into = format_duration(copy.delivered_at - copy.submitted_at)
    read = format_duration(copy.retrieved_at - copy.submitted_at)
    assert (into, read) == ("1.043 s", "4 min 50 s")
    assert milestones(page) == [
        f"in the mailbox {into} after sending",
        f"read {read} after sending",
    ]
    first, second = (t for t in page.texts if t.get_gid() == "milestone")
    assert first.get_position()[0] == pytest.approx(copy.delivered_at / 60)
    assert second.get_position()[0] == pytest.approx(copy.retrieved_at / 60)


def test_a_milestone_gives_way_to_the_reply_codes(page):
    """mx-down: five refused tries are labelled above the bar; the one label of the
    delivery and the reading, 2 h 30 min after sending, goes under it."""
    plot.timeline(run("mx-down"), ax=page)
    (label,) = [t for t in page.texts if t.get_gid() == "milestone"]
    assert label.get_text() == "in the mailbox 2 h 30 min, read 2 h 30 min after sending"
    assert label.get_verticalalignment() == "top"  # under the bar: the codes are above
    assert not problems(page.figure)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        # Each journey's tries are labelled above its bar: its words go under it, the
        # first two rows' too (between their bar and the next row's labels).
        (
            "retry-policies",
            [
                "2 h 30 min, read 2 h 35 min",
                "3 h 0 min, read 3 h 5 min",
                "2 h 0 min, read 2 h 5 min",
            ],
        ),
        ("server-crash", ["10 min 1 s, read 14 min 51 s", "17 min 44 s, read 18 min 1 s"]),
    ],
)
def test_every_journey_told_in_words_keeps_its_words_under_the_reply_codes(page, name, said):
    result = run(name)
    plot.timeline(result, ax=page)
    assert milestones(page) == [f"in the mailbox {words} after sending" for words in said]
    words = [t for t in page.texts if t.get_gid() == "milestone"]
    assert all(t.get_verticalalignment() == "top" for t in words)
    assert not problems(page.figure)  # nothing overlaps, nothing leaves the page
