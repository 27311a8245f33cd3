"""Figures: they render headless for every shipped scenario, and what they draw is the
data: one ladder arrow per exchange, one route arrow per hop, delay segments that add up."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.patches import FancyArrowPatch, Rectangle

import mailsim
from mailsim import plot
from mailsim.cli import main
from mailsim.plot.delays import MANY, ways
from mailsim.plot.sequence import collapse_repeats, exchanges, short_label, shown_label
from mailsim.units import format_duration
from tests.conftest import SCENARIOS, shipped

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


@pytest.fixture(scope="module", params=SHIPPED, ids=[p.stem for p in SHIPPED])
def result(request) -> mailsim.Result:
    return shipped(request.param)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_sequence_has_one_arrow_per_exchange(result, ax):
    message = result.copies[0].message.id
    before = plt.get_fignums()
    assert plot.sequence(result, message, ax=ax) is ax
    assert plt.get_fignums() == before  # drew on the given Axes, made no figure
    rows, _ = collapse_repeats(exchanges(result, message))
    arrows = [a for a in ax.texts if a.get_gid() == "exchange"]
    assert len(arrows) == (~rows["step"].isin(["timeout", "note"])).sum()
    # Each arrow carries its exchange's label (long lines shortened or, for a failure's
    # reason, wrapped, keeping the start).
    labels = [t.get_text() for t in ax.texts]
    for label in rows[~rows["step"].isin(["timeout", "note"])]["label"]:
        shown = shown_label(label)
        split = any(t.startswith(f"{shown}\npackets 1–") for t in labels)  # slow start's flights
        assert split or shown in labels or f"{shown}\n{crossing(rows, label)}" in labels, shown
        assert all(len(line) <= 72 for line in shown.split("\n"))
        assert shown.split(" ")[0] == label.split(" ")[0]  # the same command or code
    assert ax.get_title(loc="left").startswith(f"Every exchange of message {message!r}")


def crossing(rows: pd.DataFrame, label: str) -> str:
    """The words under a label whose packet is on its way while others start."""
    (row,) = rows[rows["label"] == label].itertuples()
    return f"({format_duration(row.arrive - row.time)} on the way)"


def test_a_reply_crossing_other_exchanges_says_it_is_on_its_way(ax):
    """The relay's 250 to the end of DATA travels 47 ms back while the MX already hands
    the message to the mailbox over LMTP: its label says both happen at once, and only
    the labels of packets that others overtake say so."""
    result = shipped(SCENARIOS / "classroom.yaml")
    message = result.copies[0].message.id
    plot.sequence(result, message, ax=ax)
    rows, _ = collapse_repeats(exchanges(result, message))
    texts = [t.get_text() for t in ax.texts if t.get_gid() == "label"]
    crossed = [t for t in texts if "on the way" in t]
    queued = rows[
        rows["label"].str.startswith("250 2.0.0 Ok: queued") & (rows["src"] == "mx-home")
    ].iloc[0]
    assert any(t.startswith(shown_label(queued["label"])) for t in crossed)
    assert crossing(rows, queued["label"]) == "(47.0 ms on the way)"
    for t in crossed:
        same = rows[[shown_label(label) == t.rsplit("\n", 1)[0] for label in rows["label"]]]
        assert any(
            ((rows["time"] > row.time) & (rows["time"] < row.arrive)).any()
            for row in same.itertuples()
        )


def test_route_has_one_arrow_per_hop(result, ax):
    copy = result.copies[0]
    assert plot.route(result, copy.message.id, ax=ax) is ax
    hops = result.hops
    mine = hops[(hops["message"] == copy.message.id) & (hops["recipient"] == copy.recipient)
                & ~hops["duplicate"] & (hops["src"].astype(str) != hops["dst"].astype(str))]  # fmt: skip
    arrows = [
        p
        for p in ax.patches
        if isinstance(p, FancyArrowPatch) and (p.get_gid() or "").startswith("hop-")
    ]
    # One arrow per hop; repeated failures of one hop with one code share an arrow.
    covered = []
    for arrow in arrows:
        first, last = map(int, arrow.get_gid().split("-")[1:])
        covered += range(first, last + 1)
    assert sorted(covered) == sorted(mine["index"])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "mail server (MTA)" in legend
    # Failure colours are explained exactly when some hop is drawn in them.
    codes = mine["code"].astype(str)
    temporary = codes.str.startswith("4").any()
    refused = codes.str.startswith("5").any()
    assert ("failed attempt (4xx, timeout)" in legend) == temporary
    assert ("refused (5xx)" in legend) == refused


def test_delay_segments_add_up_to_the_end_to_end_delay(result, ax):
    """Every copy has a row, the retrieved ones first; a bounced or expired copy's parts
    add up to the time until its journey ended."""
    plot.delays(result, ax=ax)
    frame = result.messages
    if frame["retrieved_at"].notna().sum() > MANY:  # many copies: their distribution
        domains = ways(frame[frame["retrieved_at"].notna()]).nunique()
        assert [line.get_gid() for line in ax.lines].count("ecdf") == domains  # one per group
        return
    ordered = [*frame[frame["retrieved_at"].notna()].itertuples(),
               *frame[frame["retrieved_at"].isna()].itertuples()]  # fmt: skip
    bars = [
        p
        for p in ax.patches
        if isinstance(p, Rectangle) and (p.get_gid() or "").startswith("delay-")
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"{item.id} → {item.recipient}" for item in ordered
    ]
    longest = frame["delay"].max()
    scale = 1.0 if longest < 120 else 60.0 if longest < 4 * 3600 else 3600.0
    for row, item in enumerate(ordered):
        mine = [b for b in bars if abs(b.get_y() + b.get_height() / 2 - row) < 1e-9]
        assert sum(b.get_width() for b in mine) * scale == pytest.approx(
            item.delay, rel=1e-6, abs=1e-6
        )


def test_timeline_draws_every_hop(result, ax):
    plot.timeline(result, ax=ax)  # a sample of a long run: the rows that fit
    rows = {t.get_text() for t in ax.get_yticklabels()}
    shown = {(c.message.id, c.recipient) for c in result.copies
             if f"{c.message.id} → {c.recipient}" in rows}  # fmt: skip
    assert len(shown) == len(rows)
    hops = result.hops[~result.hops["duplicate"]]
    hops = hops[[(m, r) in shown for m, r in zip(hops["message"], hops["recipient"], strict=True)]]
    bars = [p for p in ax.patches if p.get_gid() == "hop"]
    assert len(bars) == len(hops)


def test_delays_of_many_messages_is_an_ecdf_with_percentiles(ax):
    data = mailsim.load(SCENARIOS / "classroom.yaml").model_dump(by_alias=True, exclude_none=True)
    data["messages"] = []
    data["duration"] = "10h"
    data["users"]["alice@school.example"]["mailbox"] = None
    data["traffic"] = [{"from": "alice@school.example", "to": "bob@home.example", "rate": "10/h"}]
    result = mailsim.run(mailsim.scenario.validate(dict(data.items())))  # type: ignore[attr-defined]
    plot.delays(result, ax=ax)
    assert [line.get_gid() for line in ax.lines].count("ecdf") == 1
    texts = " ".join(t.get_text() for a in ax.figure.axes if a.get_legend()
                     for t in a.get_legend().get_texts())  # fmt: skip
    assert "p50 =" in texts
    assert "p99 =" in texts


def test_cli_writes_the_four_pictures(tmp_path, capsys):
    assert main(["run", str(SCENARIOS / "classroom.yaml"), "--plots", str(tmp_path)]) == 0
    for name in ("route", "sequence", "timeline", "delays"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG")
    assert plt.get_fignums() == []


def test_cli_plot_one_figure(tmp_path, capsys):
    out = tmp_path / "ladder.svg"
    assert main(["plot", "sequence", str(SCENARIOS / "classroom.yaml"), "-o", str(out)]) == 0
    assert out.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--message", "m9"], "--message: no message 'm9' (messages: m1)"),
        (["--message", "m1x"], "--message: no message 'm1x'; did you mean 'm1'?"),
        (["-o", "x.gif"], "-o: unknown format; use one of .png, .svg, .pdf"),
        (["-o", "/no/such/folder/x.png"], "-o: the folder '/no/such/folder' does not exist"),
    ],
)
def test_cli_plot_bad_options_exit_2(tmp_path, capsys, argv, fragment):
    args = ["plot", "route", str(SCENARIOS / "classroom.yaml")]
    if "-o" not in argv:
        args += ["-o", str(tmp_path / "x.png")]
    assert main(args + argv) == 2
    assert fragment in capsys.readouterr().err


def test_eml_files_parse_back(tmp_path):
    import email
    import email.policy

    assert main(["run", str(SCENARIOS / "classroom.yaml"), "--eml", str(tmp_path), "--json"]) == 0
    (path,) = tmp_path.glob("*.eml")
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert len(parsed.get_all("Received")) == 3


def test_repeated_failed_attempts_collapse_into_one_labelled_cut(ax):
    pinned = "nodes.msa-school.queue.scan_phase=0s"  # queue scans at round numbers
    result = mailsim.run(mailsim.load(SCENARIOS / "mx-down.yaml", [pinned]))
    rows, cuts = collapse_repeats(exchanges(result, "m1"))
    assert len(cuts) == 1
    # Attempts at 600, 1200, 2400 and 4800 s fail alike (the first one rides with the
    # submission): 600 s and 4800 s stay, the two between are cut.
    assert cuts[0][1] == "2 more attempts just like the one above, at 20 min 0 s, 40 min 0 s"
    plot.sequence(result, "m1", ax=ax)
    texts = [t.get_text() for t in ax.texts]
    assert any("2 more attempts just like the one above" in t for t in texts)
    assert len(rows) < len(exchanges(result, "m1"))


def test_crash_is_marked_on_the_ladder(ax):
    result = mailsim.run(mailsim.load(SCENARIOS / "server-crash.yaml"))
    plot.sequence(result, "m1", ax=ax)
    assert any(t.get_text().startswith("mx-home crashes (back after 10 min 0 s)") for t in ax.texts)


def test_plots_dir_has_a_route_and_ladder_per_message(tmp_path):
    assert main(["run", str(SCENARIOS / "unknown-user.yaml"), "--plots", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in names if "page" not in n] == [
        "delays.png", "route-m1.dsn1.png", "route.png", "sequence-m1.dsn1.png", "sequence.png",
        "servers.png", "timeline.png",
    ]  # fmt: skip


def test_ladder_pages_fit_a_projector_and_cover_every_exchange():
    from mailsim.plot.sequence import pages, paginate, time_scale

    result = mailsim.run(mailsim.load(SCENARIOS / "classroom.yaml"))
    rows, _ = collapse_repeats(exchanges(result, "m1"))
    count = pages(result, "m1")
    book = paginate(rows, time_scale(rows, 5.0))
    assert count == len(book) > 1
    assert [p.first for p in book[1:]] == [p.stop for p in book[:-1]]
    assert book[-1].stop == len(rows)
    drawn = 0
    for page in range(1, count + 1):
        ax = plot.sequence(result, "m1", page=page)
        try:
            drawn += sum(1 for a in ax.texts if a.get_gid() == "exchange")
            assert f"page {page} of {count}\n" in ax.get_title(loc="left")
            width, height = ax.figure.get_size_inches() * ax.figure.dpi
            assert (round(width), round(height)) == (1280, 720)
        finally:
            plt.close(ax.figure)
    assert drawn == (rows["step"] != "timeout").sum()
    with pytest.raises(ValueError, match="page must be from 1 to"):
        plot.sequence(result, "m1", page=count + 1)


def test_plots_dir_has_projector_pages(tmp_path):
    from PIL import Image

    from mailsim.plot.sequence import pages

    assert main(["run", str(SCENARIOS / "classroom.yaml"), "--plots", str(tmp_path)]) == 0
    page_files = sorted(tmp_path.glob("sequence-page*.png"))
    assert len(page_files) == pages(mailsim.run(mailsim.load(SCENARIOS / "classroom.yaml")))
    for path in page_files:
        with Image.open(path) as image:
            assert image.size == (1280, 720)


def test_plots_dir_pages_every_messages_ladder(tmp_path):
    """Each further message's ladder is paged too (sequence-m3-page1.png …), beside its
    tall sequence-m3.png; every page is exactly 1280×720."""
    from PIL import Image

    from mailsim.plot.sequence import pages

    path = SCENARIOS / "spoofing.yaml"
    assert main(["run", str(path), "--plots", str(tmp_path)]) == 0
    result = mailsim.run(mailsim.load(path))
    ids = list(dict.fromkeys(c.message.id for c in result.copies))
    assert len(ids) >= 3
    for message in ids[1:]:
        assert (tmp_path / f"sequence-{message}.png").exists()
        count = len(list(tmp_path.glob(f"sequence-{message}-page*.png")))
        assert count == pages(result, message) >= 1, message
    paged = [p for p in tmp_path.iterdir() if re.search(r"-page\d+\.png$", p.name)]
    assert len(paged) == sum(pages(result, m) for m in ids)
    for page in paged:
        with Image.open(page) as image:
            assert image.size == (1280, 720), page.name


def test_a_long_reply_keeps_its_reason():
    greylisted = ("450 4.7.1 <bob@home.example>: Recipient address rejected: Greylisted, see"
                  " http://postgrey.schweikert.ch/help/home.example.html")  # fmt: skip
    assert short_label(greylisted).startswith("450 4.7.1 Recipient address rejected: Greylisted")
    group = "MAIL FROM:<alice@school.example> SIZE=20000 · RCPT TO:<bob@home.example> · DATA"
    assert (
        short_label(group) == "MAIL FROM:<alice@school.example> · RCPT TO:<bob@home.example> · DATA"
    )
    assert short_label("QUIT") == "QUIT"


def test_a_long_ehlo_reply_is_wrapped_not_cut():
    """Whether STARTTLS is among the capabilities is the point of an EHLO reply: its list
    goes on two lines whole; a note on a line of its own stays there."""
    ehlo = ("250 strict.school.example PIPELINING SIZE 10240000 STARTTLS ENHANCEDSTATUSCODES"
            " 8BITMIME")  # fmt: skip
    shown = shown_label(ehlo)
    assert "…" not in shown
    assert shown.replace("\n", " ") == ehlo
    assert shown.count("\n") == 1
    noted = shown_label(ehlo + "\n(STARTTLS stripped between a and b)")
    assert noted == shown + "\n(STARTTLS stripped between a and b)"


def test_the_first_route_and_ladder_show_the_message_that_queued(monkeypatch, tmp_path):
    """slow-server's point is the queue for mx-home's one session: route.png and
    sequence.png show the message that waited longest for it, not the first one (which
    did not wait); the others get their own files; classroom keeps m1."""
    from mailsim.plot import files

    result = shipped(SCENARIOS / "slow-server.yaml")
    waited = result.messages.set_index("id")["queue_time"]
    chosen = files.telling(result)
    assert waited[chosen] == waited.max() >= 1.0
    assert waited[result.copies[0].message.id] == 0
    calls = []
    monkeypatch.setattr(files, "save", lambda r, kind, path, message=None, page=None:
                        calls.append((kind, path.name, message)) or path)  # fmt: skip
    files.save_all(result, tmp_path)
    assert ("route", "route.png", chosen) in calls
    assert ("sequence", "sequence.png", chosen) in calls
    assert ("delays", "delays.png", None) in calls
    assert not [c for c in calls if c[1].startswith(f"route-{chosen}")]
    assert files.telling(shipped(SCENARIOS / "classroom.yaml")) == "m1"
