"""busy-office.yaml: a working day of 500 people — the load follows the clock, the
server keeps up, the poll is what people wait for; with one slow scanner it does not keep
up. Every number its comment states is checked here, from the scenario's own numbers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import mailsim
from mailsim import plot
from mailsim.traffic import WORKING_DAY
from tests.conftest import SCENARIOS, shipped

BUSY = SCENARIOS / "busy-office.yaml"
OPEN = range(7, 19)  # the run: 07:00 to 19:00, local time


@pytest.fixture(scope="module")
def day() -> mailsim.Result:
    return shipped(BUSY)


def per_hour(result: mailsim.Result, hour: int) -> np.ndarray:
    """Message copies submitted in the local hour ``hour`` (07:00 is t = 0)."""
    frame = result.messages
    at = frame["submitted_at"]
    return frame[(frame["kind"] == "message") & (at // 3600 == hour - 7)]


def test_nothing_is_lost_in_a_day_of_17000_messages(day):
    summary = day.summary()
    assert summary["sent"] == summary["retrieved"] == len(day.messages) == 17004
    assert len(day.scenario.accounts) == 540


def test_each_person_sends_what_the_profile_and_rate_say(day):
    """3.5/h in the busiest hour × the weights of 07:00–19:00 (8.95 peak hours) ≈ 31 per
    person; contacts 4/h → 35.8."""
    hours = sum(WORKING_DAY[h] for h in OPEN)
    assert hours == pytest.approx(8.95)
    sent = day.messages.groupby("sender").size()
    staff = sent[sent.index.str.endswith("@office.example")]
    contacts = sent[sent.index.str.endswith("@partner.example")]
    assert staff.mean() == pytest.approx(3.5 * hours, rel=0.03)
    assert contacts.mean() == pytest.approx(4 * hours, rel=0.05)


def test_the_late_morning_is_three_times_as_busy_as_the_early_morning(day):
    early = len(per_hour(day, 7))
    rush = (len(per_hour(day, 10)) + len(per_hour(day, 11))) / 2
    # Expected from the profile: 0.35 of the peak at 7:00, 1.0 at 10:00 and 11:00.
    peak = 500 * 3.5 + 40 * 4
    assert early == pytest.approx(0.35 * peak, rel=0.1)
    assert rush == pytest.approx(peak, rel=0.05)
    assert 2.5 < rush / early < 3.5


def test_the_server_keeps_up_and_the_poll_is_what_people_wait_for(day):
    rush = per_hour(day, 11)
    to_mailbox = rush["delivered_at"] - rush["submitted_at"]
    # A 1 s scan, round trips and the relay: about 1.2 s; a few hundredths of a second
    # waiting for one of the 2 scanners.
    assert to_mailbox.mean() == pytest.approx(1.2, abs=0.05)
    assert 0.01 < rush["queue_time"].mean() < 0.1
    assert per_hour(day, 7)["queue_time"].mean() < rush["queue_time"].mean()
    # Outlook's 30-minute send/receive: a median of 15 minutes for staff, whatever the
    # server does; the partner's 10-minute poll: 5 minutes.
    frame = day.messages
    staff = frame[frame["recipient"].str.endswith("@office.example")]
    partner = frame[frame["recipient"].str.endswith("@partner.example")]
    assert staff["delay"].median() == pytest.approx(15 * 60, rel=0.05)
    assert partner["delay"].median() == pytest.approx(5 * 60, rel=0.05)
    assert staff["poll_time"].sum() > 0.99 * staff["delay"].sum()


def test_with_one_slow_scanner_the_queue_grows_until_lunch_and_drains_after():
    """concurrency 1, 2 s scans: the rush needs ~2,000 × 2 s of scanning an hour."""
    slow = mailsim.load(
        BUSY,
        ["nodes.mail-office.concurrency=1", "nodes.mail-office.processing.data=2s",
         "duration=6.5h"],
    )  # fmt: skip
    result = mailsim.run(slow, detail="outcomes")

    def mean_to_mailbox(hour: int) -> float:
        rows = per_hour(result, hour)
        return float((rows["delivered_at"] - rows["submitted_at"]).mean())

    seven, nine, eleven, one = (mean_to_mailbox(h) for h in (7, 9, 11, 13))
    assert seven < 5
    assert nine > 10 * seven
    assert eleven > 5 * 60  # minutes, not seconds
    assert one < eleven / 10  # after lunch the queue is gone


def test_the_load_plot_draws_every_message_once_per_bin(day):
    ax = plot.load(day)
    try:
        bars = ax.patches
        width = bars[1].get_x() - bars[0].get_x()  # hours
        assert width == pytest.approx(0.25)  # 12.5 h of run → 15-minute bins
        counted = sum(bar.get_height() * width for bar in bars)
        assert counted == pytest.approx(17004)
        # One quantity per panel, the time of day shared below.
        top, bottom = ax.figure.axes
        assert top is ax
        assert bottom.get_shared_x_axes().joined(top, bottom)
        assert bottom.xaxis.get_major_formatter()(7.0, None) == "07:00"
        assert {line.get_gid() for line in bottom.get_lines()} == {
            "load-mean", "load-p95", "load-queue"
        }  # fmt: skip
        assert "15-minute windows" in top.get_title(loc="left")
        # Each firm's 95th percentile, drawn only where its window holds 20 messages or
        # more: the office's and the partner's, each its own.
        frame = day.messages[day.messages["kind"] == "message"]
        delivered = frame[frame["delivered_at"].notna()]
        firm = delivered["sender"].str.split("@").str[1]
        p95s = [line for line in bottom.get_lines() if line.get_gid() == "load-p95"]
        assert len(p95s) == 2
        for line, name in zip(p95s, ["office.example", "partner.example"], strict=True):
            mine = delivered[firm == name]
            per_window = (mine["submitted_at"] // 900).value_counts().sort_index()
            drawn = np.isfinite(line.get_ydata().astype(float))
            assert list(drawn) == list(per_window.to_numpy() >= 20)
    finally:
        plt.close(ax.figure)


# --- own-server-or-provider.yaml ---------------------------------------------------------

CHOICE = SCENARIOS / "own-server-or-provider.yaml"


def in_the_mailbox_after(result: mailsim.Result) -> dict[tuple[str, str], float]:
    """Mean seconds from submission to the mailbox, by sender and recipient domain."""
    frame = result.messages
    frame = frame[frame["kind"] == "message"]
    seconds = frame["delivered_at"] - frame["submitted_at"]
    by = [frame["sender"].str.split("@").str[1], frame["recipient"].str.split("@").str[1]]
    return seconds.groupby(by).mean().to_dict()


def test_inside_the_firm_the_own_server_is_eleven_round_trips_closer():
    result = shipped(CHOICE)
    after = in_the_mailbox_after(result)
    own = after[("ownco.example", "ownco.example")]
    cloud = after[("cloudco.example", "cloudco.example")]
    # Round trips from the desks: 2 × 0.5 ms to ownco's server; 2 × (0.5 + 2 + 13 +
    # 0.2) ms to the provider. 11.5 of them until the server holds the message (connect
    # and 220: 2, EHLO, STARTTLS, TLS 1.3, EHLO, AUTH: 5, MAIL, RCPT, DATA apart as
    # Thunderbird sends them: 3, the message: 1.5), and the 20 KB cross cloudco's
    # 100 Mbps uplink.
    rtt_own, rtt_cloud = 2 * 0.0005, 2 * (0.0005 + 0.002 + 0.013 + 0.0002)
    uplink = 20_005 * 8 / 100e6
    assert cloud - own == pytest.approx(11.5 * (rtt_cloud - rtt_own) + uplink, abs=0.001)
    assert own == pytest.approx(1.0, abs=0.05)
    assert cloud == pytest.approx(1.4, abs=0.05)
    assert after[("ownco.example", "partner.example")] == pytest.approx(1.2, abs=0.05)
    assert after[("cloudco.example", "partner.example")] == pytest.approx(1.8, abs=0.05)
    assert result.messages["delay"].median() == pytest.approx(5 * 60, rel=0.15)
    assert result.summary()["retrieved"] == result.summary()["sent"]


def test_only_the_own_pop_server_is_read_in_plaintext():
    events = shipped(CHOICE).events
    pop = events[events["protocol"] == "pop3"]
    assert set(pop.loc[pop["dst"] == "pop-own", "step"]) >= {"USER", "PASS", "RETR"}
    assert "STLS" not in set(pop.loc[pop["dst"] == "pop-own", "step"])
    assert "STLS" in set(pop.loc[pop["dst"] == "pop-provider", "step"])
    tls = events[events["protocol"] == "tls"]
    assert "pop-own" not in set(tls["dst"])
    assert {"pop-provider", "mail-provider", "mail-own"} <= set(tls["dst"])


def test_at_85_times_the_mail_the_own_server_queues_and_the_provider_does_not():
    busy = mailsim.load(CHOICE, ["traffic.0.rate=300/h"])
    result = mailsim.run(busy, detail="outcomes")
    frame = result.messages
    queue = frame.groupby(frame["sender"].str.split("@").str[1])["queue_time"].mean()
    assert queue["ownco.example"] == pytest.approx(1.2, abs=0.15)
    assert queue["cloudco.example"] == 0
    after = in_the_mailbox_after(result)
    assert after[("ownco.example", "ownco.example")] == pytest.approx(2.3, abs=0.15)
    assert after[("cloudco.example", "cloudco.example")] == pytest.approx(1.4, abs=0.05)


def test_a_window_of_few_messages_claims_no_95th_percentile():
    """slow-server: about 10 messages a minute, in 1-minute windows — too few for a 95th
    percentile, so none is drawn and the legend does not promise one."""
    result = mailsim.run(mailsim.load(SCENARIOS / "slow-server.yaml"), detail="outcomes")
    ax = plot.load(result)
    try:
        bottom = ax.figure.axes[1]
        assert {line.get_gid() for line in bottom.get_lines()} == {
            "load-mean", "load-queue", "load-max"
        }  # fmt: skip
        legend = [t.get_text() for t in ax.figure.legends[0].get_texts()]
        assert not any("95th" in text for text in legend)
        assert "the slowest message of each window" in legend
        assert "1-minute windows" in ax.get_title(loc="left")
    finally:
        plt.close(ax.figure)


def test_own_server_or_providers_windows_hold_enough_for_a_95th_percentile():
    """464 messages in 3 hours: 5-minute windows hold about 13 each, too few for a 95th
    percentile; the plot takes 15-minute windows, where every one holds 20 or more — and
    its key sits below the panels, covering no line."""
    result = shipped(CHOICE)
    ax = plot.load(result)
    try:
        assert "15-minute windows" in ax.get_title(loc="left")
        bottom = ax.figure.axes[1]
        p95s = [line for line in bottom.get_lines() if line.get_gid() == "load-p95"]
        assert p95s  # at least one firm sends 20 in most windows
        assert all(np.isfinite(line.get_ydata().astype(float)).any() for line in p95s)
        ax.figure.canvas.draw()
        (key,) = ax.figure.legends
        box = key.get_window_extent()
        for panel in ax.figure.axes:
            assert box.y1 <= panel.get_window_extent().y0
        assert "95th" in " ".join(t.get_text() for t in key.get_texts())
    finally:
        plt.close(ax.figure)


def test_the_slow_servers_load_shows_its_capacity_and_each_minutes_slowest():
    """slow-server: one session, a 2-second scan: at most 1,800 messages an hour, a line
    above the busiest minute (960 an hour); each minute's slowest message is a mark, up
    to the 8.84 s the lesson's table shows."""
    result = mailsim.run(mailsim.load(SCENARIOS / "slow-server.yaml"), detail="outcomes")
    ax = plot.load(result)
    try:
        (line,) = [a for a in ax.get_lines() if a.get_gid() == "load-capacity"]
        assert list(line.get_ydata()) == [1800.0, 1800.0]
        words = [t.get_text() for t in ax.texts]
        assert words == ["mx-home can take at most 1,800 an hour (1 at once, 2 s each)"]
        busiest = max(bar.get_height() for bar in ax.patches)
        assert busiest == pytest.approx(960.0)
        (slowest,) = [a for a in ax.figure.axes[1].get_lines() if a.get_gid() == "load-max"]
        m = result.messages
        to_mailbox = m["delivered_at"] - m["submitted_at"]
        per_minute = to_mailbox.groupby(m["submitted_at"] // 60).max()
        assert list(slowest.get_ydata()) == pytest.approx(list(per_minute))
        assert max(slowest.get_ydata()) == pytest.approx(8.842, abs=5e-4)
    finally:
        plt.close(ax.figure)


def test_a_server_far_above_its_load_is_said_in_words(day):
    """busy-office: two sessions of a 1-second scan take 7,200 an hour, five times the
    busiest quarter hour: in words, above the bars, not a line that would flatten them.
    Each firm's 95th percentile is its own, where it sent enough."""
    ax = plot.load(day)
    try:
        assert not [a for a in ax.get_lines() if a.get_gid() == "load-capacity"]
        (words,) = [t for t in ax.texts if t.get_gid() == "load-capacity"]
        assert words.get_text() == (
            "mail-office can take at most 7,200 an hour (2 at once, 1 s each): far above these bars"
        )
        bottom = ax.figure.axes[1]
        p95 = [a for a in bottom.get_lines() if a.get_gid() == "load-p95"]
        means = [a for a in bottom.get_lines() if a.get_gid() == "load-mean"]
        assert {a.get_color() for a in p95} <= {a.get_color() for a in means}
    finally:
        plt.close(ax.figure)


def test_an_overloaded_servers_bars_rise_above_its_capacity_unclipped():
    """slow-server with an 8-second scan takes at most 450 an hour; the busiest minute
    sends 960 an hour: the line is drawn under the bars, and the bars are whole."""
    result = mailsim.run(
        mailsim.load(SCENARIOS / "slow-server.yaml", ["nodes.mx-home.processing.data=8s"]),
        detail="outcomes",
    )
    ax = plot.load(result)
    try:
        (line,) = [a for a in ax.get_lines() if a.get_gid() == "load-capacity"]
        assert list(line.get_ydata()) == [450.0, 450.0]
        assert ax.get_ylim()[1] >= max(bar.get_height() for bar in ax.patches) == 960.0
    finally:
        plt.close(ax.figure)
