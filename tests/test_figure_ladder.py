"""The ladder as a class sees it on a projector: every 1280×720 page of the first
message of every shipped scenario (and of a further message of a few) is read from the back row (text at least 14 px high,
contrast at least 4.5:1 on white), keeps each lifeline at the same x, is filled, draws
each wait once with the fault's own numbers, shows only the message's own POP3 fetch,
marks what TLS encrypts and labels every row's time by one rule."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.text import Text

import mailsim
from mailsim import plot
from mailsim.plot.sequence import FILL, exchanges, pages
from mailsim.scenario import CrashFault
from mailsim.units import format_duration
from tests.conftest import SCENARIOS, shipped

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
MIN_PX = 14.0


def wcag_contrast(colour) -> float:
    """WCAG 2 contrast ratio on white, computed here from the artist's RGB."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in to_rgb(colour))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def drawn(ax: Axes) -> list[Text]:
    """Every piece of text the page draws: title, lane names, labels, ticks, legend."""
    figure = ax.figure
    figure.canvas.draw()
    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return [t for t in texts if t.get_window_extent().overlaps(figure.bbox)]


@dataclass
class Measured:
    """What one page shows, measured on its artists in pixels."""

    smallest: tuple[float, str]  # text height (font size in px), which text
    faint: list[tuple[str, float]]  # texts under 4.5:1
    lifelines: list[float]  # x of each lifeline, px
    fill: float  # share of the axes height from its top to the lowest drawn exchange
    waits: list[str]
    pauses: list[str]  # the words of a pause a page break falls in, at the page's top
    exchange_labels: list[str]
    notes: list[str]
    ticks: list[tuple[str, str]]  # (text, weight)


def measure(ax: Axes) -> Measured:
    texts = drawn(ax)
    dpi = ax.figure.dpi
    sizes = [(t.get_fontsize() * dpi / 72, t.get_text()) for t in texts]
    faint = [(t.get_text(), wcag_contrast(t.get_color())) for t in texts]
    lines = [line for line in ax.lines if line.get_gid() == "lifeline"]
    xs = [float(ax.transData.transform((line.get_xdata()[0], 0))[0]) for line in lines]
    frame = ax.get_window_extent()
    lowest = frame.y1
    for arrow in ax.texts:
        if arrow.get_gid() in ("exchange", "flight", "ack"):
            for point in (arrow.xy, arrow.xyann):  # type: ignore[attr-defined]
                lowest = min(lowest, ax.transData.transform(point)[1])
    for band in ax.patches:
        if band.get_gid() == "wait":
            lowest = min(lowest, band.get_window_extent().y0)
    ticks = [(t.get_text(), str(t.get_fontweight())) for t in ax.get_yticklabels()]
    return Measured(
        smallest=min(sizes),
        faint=[(text, c) for text, c in faint if c < 4.5],
        lifelines=xs,
        fill=(frame.y1 - lowest) / frame.height,
        waits=[t.get_text() for t in ax.texts if t.get_gid() == "wait"],
        pauses=[t.get_text() for t in ax.texts if t.get_gid() == "pause"],
        exchange_labels=[t.get_text() for t in ax.texts if t.get_gid() == "label"],
        notes=[t.get_text() for t in ax.texts if t.get_gid() == "note"],
        ticks=ticks,
    )


@functools.cache
def book(path: Path, message: str | None = None) -> tuple[Measured, ...]:
    """Every page of a message's ladder (default: the first message's), measured once
    per test session."""
    result = shipped(path)
    measured = []
    for page in range(1, pages(result, message) + 1):
        ax = plot.sequence(result, message, page=page)
        try:
            measured.append(measure(ax))
        finally:
            plt.close(ax.figure)
    return tuple(measured)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_word_is_14_px_and_dark_enough(path):
    for number, page in enumerate(book(path), 1):
        height, text = page.smallest
        assert height >= MIN_PX, f"page {number}: {text!r} is {height:.1f} px high"
        assert not page.faint, f"page {number}: under 4.5:1 on white: {page.faint}"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_lifelines_stay_put_and_pages_are_filled(path):
    measured = book(path)
    first = measured[0].lifelines
    assert len(first) >= 2
    for number, page in enumerate(measured, 1):
        assert page.lifelines == pytest.approx(first, abs=0.01), f"page {number}"
    for number, page in enumerate(measured[:-1], 1):
        assert page.fill >= FILL, f"page {number} is {page.fill:.0%} full"


# A further message of a few scenarios, as --plots pages it (sequence-ID-pageN.png).
FURTHER = [("spoofing", "m3"), ("tls-downgrade", "m2")]


@pytest.mark.parametrize(("name", "message"), FURTHER, ids=[f"{n}-{m}" for n, m in FURTHER])
def test_a_further_messages_pages_are_read_from_the_back_and_filled(name, message):
    measured = book(SCENARIOS / f"{name}.yaml", message)
    first = measured[0].lifelines
    for number, page in enumerate(measured, 1):
        height, text = page.smallest
        assert height >= MIN_PX, f"page {number}: {text!r} is {height:.1f} px high"
        assert not page.faint, f"page {number}: under 4.5:1 on white: {page.faint}"
        assert page.lifelines == pytest.approx(first, abs=0.01), f"page {number}"
    for number, page in enumerate(measured[:-1], 1):
        assert page.fill >= FILL, f"page {number} is {page.fill:.0%} full"


def test_the_check_sees_a_faint_colour_and_small_text():
    """The Okabe–Ito sky as it is (2.2:1) and 8 pt text (11 px) fail the checks above."""
    assert wcag_contrast("#56B4E9") < 4.5
    assert wcag_contrast("black") == pytest.approx(21.0)
    figure, ax = plt.subplots(figsize=(12.8, 7.2))
    ax.text(0.5, 0.5, "SYN", fontsize=8, color="#56B4E9")
    try:
        page = measure(ax)
    finally:
        plt.close(figure)
    assert page.smallest[0] == pytest.approx(8 * 100 / 72)
    assert ("SYN", pytest.approx(wcag_contrast("#56B4E9"))) in page.faint


def test_server_crash_draws_each_wait_once_with_the_faults_numbers():
    path = SCENARIOS / "server-crash.yaml"
    result = shipped(path)
    (fault,) = [f for f in result.scenario.faults if isinstance(f, CrashFault)]
    rows = exchanges(result, "m1")
    # The waits of the ladder, from its events: pauses of more than 5 s between rows.
    ends = rows["arrive"].cummax().shift()
    waits = [(float(e), float(t)) for e, t in zip(ends, rows["time"], strict=True) if t - e > 5]
    assert len(waits) == 2  # the crash, then the POP poll
    shown = [text for page in book(path) for text in page.waits]
    assert len(shown) == len(waits)
    for (t0, t1), text in zip(waits, shown, strict=True):
        assert text.startswith(f"⋯ {format_duration(t1 - t0)} ")
    crash = shown[0]
    back = fault.at + fault.restart
    assert f"{fault.node} crashed at {fault.at:.3f} s" in crash
    assert f"down for {format_duration(fault.restart)}, until {back:.3f} s" in crash
    # The crash came as the last reply was on its way (before the wait began); the wait
    # ends when the MX is back.
    assert waits[0][0] - 1 <= fault.at <= waits[0][0]
    assert waits[0][1] == pytest.approx(back, abs=0.1)


def test_slow_server_ladder_holds_only_its_own_fetch():
    path = SCENARIOS / "slow-server.yaml"
    result = shipped(path)
    message = result.copies[0].message.id
    measured = book(path)
    retrs = [t for page in measured for t in page.exchange_labels if t.startswith("RETR ")]
    deles = [t for page in measured for t in page.exchange_labels if t.startswith("DELE ")]
    assert len(retrs) == 1
    assert deles == [retrs[0].replace("RETR", "DELE")]
    # That RETR is this message's: its reply arrives when the message reached its reader.
    events = result.message_events(message)
    session = events[events["detail"] == retrs[0]]["session"].iloc[0]
    fetched = events[(events["session"] == session) & (events["step"] == "RETR")]
    command = fetched[fetched["detail"] == retrs[0]].index[0]
    reply = events[(events.index > command) & (events["session"] == session)].iloc[0]
    hops = result.hops
    (arrival,) = hops[(hops["message"] == message) & (hops["protocol"] == "pop3")]["end"]
    assert reply["arrive"] == pytest.approx(arrival, abs=1e-9)
    others = len(fetched) - 1
    assert others > 1
    notes = [n for page in measured for n in page.notes]
    assert notes == [f"(+ {others} other messages fetched in this session)"]


@pytest.mark.parametrize("name", ["classroom", "free-vs-paid-provider", "tls-downgrade"])
def test_the_encrypted_band_starts_at_each_tls_handshake(name):
    """STARTTLS (classroom) and implicit TLS on 465 and 995: every handshake that
    succeeded opens a band between its two lifelines where its last handshake arrow
    arrives — the handshake itself is not encrypted (TLS 1.2 sends the certificate in the
    clear) — below the ClientHello arrow."""
    result = shipped(SCENARIOS / f"{name}.yaml")
    message = result.copies[0].message.id
    rows = exchanges(result, message)
    hellos = rows[rows["step"].str.startswith("ClientHello")]
    done = {
        s
        for s, steps in rows[rows["protocol"] == "tls"].groupby("session")
        if steps["step"].str.startswith("ServerHello").any()
    }
    assert done, "the scenario has a TLS handshake"
    found = set()
    for page in range(1, pages(result, message) + 1):
        ax = plot.sequence(result, message, page=page)
        try:
            arrows = [t for t in ax.texts if t.get_gid() == "exchange"]
            lanes = {t.get_text(): t.get_position()[0] for t in ax.texts if t.get_gid() == "lane"}
            for hello in hellos.itertuples():
                if hello.session not in done:
                    continue
                a, b = lanes[hello.src], lanes[hello.dst]
                between = [t for t in arrows if {t.xyann[0], t.xy[0]} == {a, b}]  # type: ignore[attr-defined]
                hello_y = [t.xyann[1] for t in between if t.xyann[0] == a]  # type: ignore[attr-defined]
                bands = [p for p in ax.patches if p.get_gid() == f"encrypted-{hello.session}"]
                if not bands:
                    continue
                (band,) = bands
                top = band.get_y()
                if any(t.xy[1] == pytest.approx(top) for t in between):  # type: ignore[attr-defined]
                    found.add(hello.session)
                    assert not hello_y or min(hello_y) < top  # the ClientHello above it
                    assert band.get_x() < min(a, b)
                    assert band.get_x() + band.get_width() > max(a, b)
                    legend = [t.get_text() for t in ax.get_legend().get_texts()]
                    assert any(t.startswith("encrypted") for t in legend)
        finally:
            plt.close(ax.figure)
    assert found == done & set(hellos["session"])


def test_every_row_is_timed_by_one_rule():
    """classroom page 1: the first row bold at its run time, 10.000 s; every other row
    in milliseconds since then, from the exchanges' own times."""
    path = SCENARIOS / "classroom.yaml"
    result = shipped(path)
    first = book(path)[0]
    ax = plot.sequence(result, page=1)
    try:
        shown = sum(1 for t in ax.texts if t.get_gid() == "exchange")
        assert "bold: run time; +ms: since the bold time above" in ax.get_ylabel()
    finally:
        plt.close(ax.figure)
    times = sorted(set(exchanges(result, "m1")["time"].iloc[:shown]))
    assert first.ticks[0] == ("10.000 s", "bold")
    assert [text for text, _ in first.ticks[1:]] == [
        f"+{(t - times[0]) * 1000:.1f} ms" for t in times[1:]
    ]
    assert all(weight == "normal" for _, weight in first.ticks[1:])
    for path in SHIPPED:
        for page in book(path):
            text, weight = page.ticks[0]
            assert weight == "bold", (path.stem, text)
            assert re.fullmatch(r"\d+\.\d{3} s", text), (path.stem, text)
            for text, weight in page.ticks[1:]:
                # Two moments one tick apart get one digit more: "+1.0040 s", "+2.05 ms".
                plain = re.fullmatch(r"\+\d+\.\d{1,2} ms|\+\d+\.\d{3,4} s", text)
                assert (weight == "bold" and re.fullmatch(r"\d+\.\d{3} s", text)) or plain


def test_no_arrow_runs_through_a_label():
    """Every label on an arrow sits in an opaque white box drawn above all arrows."""
    result = shipped(SCENARIOS / "unknown-user.yaml")
    ax = plot.sequence(result, page=1)
    try:
        arrows = [t for t in ax.texts if t.get_gid() == "exchange"]
        top = max(t.arrow_patch.get_zorder() for t in arrows)  # type: ignore[attr-defined]
        for label in (t for t in ax.texts if t.get_gid() == "label"):
            box = label.get_bbox_patch()
            assert box is not None
            assert to_rgb(box.get_facecolor()) == (1.0, 1.0, 1.0)
            assert box.get_facecolor()[3] == 1.0
            assert box.get_edgecolor()[3] == 0.0
            assert label.get_zorder() > top
    finally:
        plt.close(ax.figure)


def test_a_refused_recipient_keeps_its_reason_wrapped_not_cut():
    path = SCENARIOS / "unknown-user.yaml"
    result = shipped(path)
    events = result.message_events("m1")
    (refusal,) = events[events["code"].astype(str).str.startswith("550")]["detail"]
    reason = str(refusal).split(">: ", 1)[1]  # "Recipient address rejected: User unknown …"
    labels = [t for page in book(path) for t in page.exchange_labels if "550" in t]
    assert len(labels) == 1
    assert reason in labels[0].replace("\n", " ")
    assert "\n" in labels[0]


def test_a_mailbox_poll_session_of_one_message_has_no_note():
    result = mailsim.run(mailsim.load(SCENARIOS / "classroom.yaml"))
    rows = exchanges(result, "m1")
    assert not (rows["step"] == "note").any()
    assert (rows["step"] == "RETR").sum() == 1


def test_a_stripped_ehlo_reply_shows_its_whole_list_and_says_it_was_stripped():
    """tls-downgrade: mx-home's EHLO reply reaches msa-school without STARTTLS; the
    ladder shows every capability left, wrapped, not cut, and the words of what happened."""
    path = SCENARIOS / "tls-downgrade.yaml"
    replies = [t for page in book(path) for t in page.exchange_labels
               if t.startswith("250 mx.home.example")]  # fmt: skip
    assert replies
    for text in replies:
        assert "…" not in text
        assert text.replace("\n", " ").startswith(
            "250 mx.home.example PIPELINING SIZE 10240000 ENHANCEDSTATUSCODES 8BITMIME"
        )
        assert text.endswith("\n✖ a man in the middle on r-school–r-home removed STARTTLS")
    # Once the man in the middle is gone, carol's message sees STARTTLS and no such words.
    result = shipped(path)
    later = [str(t) for t in exchanges(result, "m2")["label"]
             if str(t).startswith("250 mx.home.example") and " STARTTLS " in str(t)]  # fmt: skip
    assert later
    assert not any("stripped" in t for t in later)


def test_a_page_break_in_a_pause_says_so_in_words():
    """slow-server: mx-home works 2 s at the end of DATA, and connections wait for one of
    its busy sessions. Where a page break falls in such a pause, the next page starts
    with the words of it, in a band above its first row; inside a page the words stand
    in the space the pause takes."""
    from mailsim.plot.sequence import _layout

    path = SCENARIOS / "slow-server.yaml"
    result = shipped(path)
    ids = list(dict.fromkeys(c.message.id for c in result.copies))
    found = []
    for message in ids[:4]:
        book_ = _layout(result, message, 5.0)[3]
        found += [(message, n, p) for n, p in enumerate(book_, 1) if p.pause]
    assert found, "no page break in a pause: the check checks nothing"
    message, number, page = found[0]
    t0, t1 = page.pause
    rows = _layout(result, message, 5.0)[0]
    assert rows.iloc[page.first]["label"] == "220 mx.home.example ESMTP Postfix"
    words = book(path, message)[number - 1].pauses
    assert words == [
        f"⋯ {format_duration(t1 - t0)}: connected, waiting for a free session at mx-home"
        " (all busy) ⋯"
    ]
    # Where the scan is inside a page, its words are there too, between its two rows.
    inside = [t for page in book(path) for t in page.pauses]
    assert any("mx-home works on the message it received (end of DATA)" in t for t in inside)


def test_a_login_outside_tls_says_it_crossed_the_wire_readable():
    """free-vs-paid: alice logs in to freemail without TLS — masked on the ladder like
    every password, yet said to be readable; dave's login inside TLS is not; the school's
    POP3 login after STLS is not either."""
    result = shipped(SCENARIOS / "free-vs-paid-provider.yaml")
    warned = "\n⚠ sent in the clear: readable on every link"
    alice = exchanges(result, "m1")
    (auth,) = alice.loc[alice["step"] == "AUTH", "label"]
    assert auth == "AUTH PLAIN ********" + warned
    dave = exchanges(result, "m2")
    (auth,) = dave.loc[dave["step"] == "AUTH", "label"]
    assert auth == "AUTH PLAIN ********"
    classroom = exchanges(shipped(SCENARIOS / "classroom.yaml"), "m1")
    assert not classroom["label"].str.contains("in the clear").any()


def test_a_connection_waiting_for_a_free_session_says_so():
    """slow-server: t1.dara.3 connected to mx-home and waited 6.474 s for its greeting
    while mx-home's one session scanned other messages — the cut wait names it."""
    result = shipped(SCENARIOS / "slow-server.yaml")
    said = []
    for page in range(1, pages(result, "t1.dara.3") + 1):
        ax = plot.sequence(result, "t1.dara.3", page=page)
        said += [t.get_text() for t in ax.texts if t.get_gid() in ("pause", "wait")]
        plt.close(ax.figure)
    assert "⋯ 6.474 s waiting for a free session at mx-home (all busy) ⋯" in said


def test_a_message_slow_start_sends_in_two_flights_is_drawn_as_them():
    """classroom's 20 KB: 14 packets of 1,460 bytes; TCP's first window holds 10, so the
    other 4 leave when the ACK of the first comes back — on Alice's 2 ms, 100 Mbit/s
    link, 0.1168 ms of sending plus a 4 ms round trip after the first. The ladder draws
    the two flights and that ACK, with the times the scenario's numbers give."""
    from mailsim.plot.sequence import collapse_repeats, flights

    result = mailsim.run(SCENARIOS / "classroom.yaml", seed=0)
    rows, _ = collapse_repeats(exchanges(result, "m1"))
    found = flights(result, rows)
    submission = rows[(rows["step"] == "message") & (rows["src"] == "alice-pc")]
    (k,) = submission.index
    row = submission.loc[k]
    first, second = found[k]
    link, latency = 1460 * 8 / 100e6, 0.002
    assert (first.first, first.last, first.of, second.first, second.last) == (1, 10, 14, 11, 14)
    assert first.start == row["time"]
    assert first.end == pytest.approx(row["time"] + 10 * link + latency, abs=1e-12)
    assert first.ack == pytest.approx(
        (row["time"] + link + latency, row["time"] + link + 2 * latency), abs=1e-12
    )
    assert second.start == pytest.approx(row["time"] + link + 2 * latency, abs=1e-12)
    assert second.end == row["arrive"]  # the model's own arrival, to the bit
    assert second.ack is None
    # The relay over the ocean and LMTP into the mailbox go in two flights as well.
    assert sorted(rows.loc[list(found), "src"]) == ["alice-pc", "msa-school", "mx-home"]
    for page in range(1, pages(result, "m1") + 1):
        ax = plot.sequence(result, "m1", page=page)
        if "packets 1–10 of 14" in " ".join(t.get_text() for t in ax.texts):
            break
    assert page == 2  # where Alice's message goes up
    words = [t.get_text() for t in ax.texts if t.get_gid() == "label"]
    assert "(20000 bytes) .\npackets 1–10 of 14" in words
    assert "packets 11–14 of 14" in words
    assert "ACK" in words
    acks = [a for a in ax.texts if a.get_gid() == "ack"]
    assert [(a.xyann[0] > a.xy[0]) for a in acks] == [True]  # back from the server
    plt.close("all")


def test_a_message_of_one_flight_keeps_its_one_arrow():
    """10 KB fit in TCP's first window: nothing waits for an ACK, nothing is split."""
    from mailsim.plot.sequence import collapse_repeats, flights

    small = mailsim.load(SCENARIOS / "classroom.yaml", ["messages.0.size=10KB"])
    result = mailsim.run(small, seed=0)
    rows, _ = collapse_repeats(exchanges(result, "m1"))
    assert flights(result, rows) == {}
