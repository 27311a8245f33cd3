"""The step-through viewer and the animation: the drawing logic headless, the widget
callbacks with ipywidgets (no front end is needed to run them)."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import pytest

import mailsim
from mailsim.plot import animate
from mailsim.plot.route import route
from mailsim.plot.sequence import exchanges
from mailsim.plot.topology import positions
from mailsim.widgets import StepViewer


def test_viewer_steps_through_every_exchange_of_the_message(classroom_result):
    viewer = StepViewer(classroom_result)
    assert len(viewer) == len(exchanges(classroom_result, "m1"))
    assert viewer.detail(0).splitlines()[
        1
    ] == "bob-pc → pop-home: SYN" or "alice-pc" in viewer.detail(0)
    text = viewer.detail(10)
    assert "EHLO alice-pc.school.example" in text
    assert "meaning: SMTP: hello, and tell me your extensions" in text


def test_viewer_draws_a_step_with_the_current_exchange_highlighted(classroom_result):
    viewer = StepViewer(classroom_result)
    fig = viewer.draw(12)
    try:
        route_ax, ladder_ax, text_ax = fig.axes
        current = [p for p in route_ax.patches if p.get_gid() == "current"]
        assert len(current) == 1
        assert "Step 13 of" in text_ax.texts[0].get_text()
        thick = [
            a
            for a in ladder_ax.texts
            if a.get_gid() == "exchange" and a.arrow_patch.get_linewidth() > 2
        ]
        assert len(thick) == 1
    finally:
        plt.close(fig)


def test_the_current_exchange_follows_the_links_and_padlocks_stay_in_their_labels(
    classroom_result,
):
    """The relay msa-school → mx-home crosses r-school and r-home: the yellow mark goes
    through both routers, its arrowhead on the last link. A route drawn in a panel keeps
    its padlocks in their hop labels when the figure's layout changes."""
    viewer = StepViewer(classroom_result, protocols=("smtp",))
    relay = next(k for k, row in enumerate(viewer.rows.itertuples())
                 if (row.src, row.dst) == ("msa-school", "mx-home"))  # fmt: skip
    fig = viewer.draw(relay)
    try:
        route_ax = fig.axes[0]
        pos = positions(classroom_result)
        (path,) = [line for line in route_ax.lines if line.get_gid() == "current-path"]
        assert list(zip(*path.get_data(), strict=True)) == [
            pos["msa-school"], pos["r-school"], pos["r-home"]
        ]  # fmt: skip
        (arrow,) = [p for p in route_ax.patches if p.get_gid() == "current"]
        assert (arrow._posA_posB[0], arrow._posA_posB[1]) == (pos["r-home"], pos["mx-home"])
        assert not [t for t in route_ax.texts if "ms ·" in t.get_text()]  # no hop words
    finally:
        plt.close(fig)
    # The route in a panel whose size changes after it is drawn: padlocks move with
    # their words.
    fig = plt.figure(figsize=(12.8, 7.2), layout="constrained")
    try:
        route_ax = fig.add_subplot(1, 2, 1)
        route(classroom_result, ax=route_ax)
        fig.add_subplot(1, 2, 2).set_title("a panel drawn later")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        labels = [t.get_window_extent(renderer) for t in route_ax.texts if "ms ·" in t.get_text()]
        locks = [c for c in route_ax.collections if (c.get_gid() or "").startswith("lock-")]
        assert len(locks) == len(labels) == 4
        for lock in locks:
            x, y = lock.get_offset_transform().transform(lock.get_offsets()[0])
            assert any(b.x0 <= x <= b.x1 and b.y0 <= y <= b.y1 for b in labels)
    finally:
        plt.close(fig)


def test_viewer_filter_by_protocol(classroom_result):
    viewer = StepViewer(classroom_result, protocols=("dns",))
    assert len(viewer) == 4
    assert "meaning: DNS: where is the MX record of this name?" in viewer.detail(0)


def test_reply_code_meanings(classroom_result):
    viewer = StepViewer(classroom_result, protocols=("smtp",))
    details = [viewer.detail(i) for i in range(len(viewer))]
    assert any("meaning: 354: start mail input; end with <CRLF>.<CRLF>" in d for d in details)
    assert any("meaning: authentication succeeded" in d for d in details)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, from its IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_widget_buttons_move_the_step_and_the_slider_counts_as_the_text(classroom_result):
    viewer = StepViewer(classroom_result)
    box = viewer.widget()
    controls = viewer._controls
    assert box.children[0].children[0] is controls["back"]
    slider = controls["slider"]
    assert (slider.min, slider.value, slider.max) == (1, 1, len(viewer))
    controls["next"].click()
    controls["next"].click()
    assert slider.value == 3
    assert viewer.detail(viewer.step).startswith(f"Step 3 of {len(viewer)} ")
    controls["back"].click()
    assert (viewer.step, slider.value) == (1, 2)
    # The picture is replaced whole at each step, at the figure's 1280×720.
    assert png_size(controls["picture"].value) == (1280, 720)
    assert controls["picture"].layout.width == "100%"  # as wide as the notebook


def test_the_simple_viewer_says_each_step_in_words_for_a_school_class(classroom_result):
    """No addresses, ports, microseconds, RFC numbers, event list or packet bytes: who
    says what to whom, what it means, how long it takes; the same steps and pictures."""
    import re

    simple, full = StepViewer(classroom_result, simple=True), StepViewer(classroom_result)
    assert len(simple) == len(full)
    ehlo = next(k for k, row in enumerate(simple.rows.itertuples())
                if str(row.label).startswith("EHLO"))  # fmt: skip
    assert simple.detail(ehlo).splitlines() == [
        f"Step {ehlo + 1} of {len(full)} · SMTP · conversation 1 of 6",
        "alice-pc → msa-school: EHLO alice-pc.school.example",
        "it takes 2.0 ms to arrive",
        "meaning: hello: the computer says its name and asks what the server can do",
    ]
    # Plain words where the reference's are a standard's, and no step ahead on the ladder.
    assert simple.detail(ehlo + 1).endswith("meaning: OK, done")
    fig = simple.draw(0)
    try:
        ladder = fig.axes[1]
        shown = [t.get_text() for t in ladder.texts if t.get_gid() == "label"]
        assert shown == ["SYN"]  # who speaks first is not given away
    finally:
        plt.close(fig)
    for step in range(len(simple)):
        first, _message, *rest = simple.detail(step).splitlines()  # it may name one: DNS
        words = "\n".join([first, *rest])
        assert not re.search(r"RFC|\d+\.\d+\.\d+\.\d+|:\d{2,5}\b|t = ", words), words
    box = simple.widget()
    controls = simple._controls
    assert [type(child).__name__ for child in box.children] == ["HBox", "Image"]
    assert box.children[1] is controls["picture"]
    controls["next"].click()
    assert simple.step == 1
    assert controls["packet"].value == ""  # never filled: no bytes in the simple viewer
    assert png_size(controls["picture"].value) == (1280, 720)


def test_a_journey_of_many_steps_is_a_few_conversations_to_jump_between(classroom_result):
    """Alice's message takes 80 steps in six conversations. Next conversation stops
    wherever the talk turns to another one: a DNS query asked while the submission's
    last replies are on their way does not make it jump over them (the 250 "queued"
    is the lesson's "accepted")."""
    viewer = StepViewer(classroom_result, simple=True)
    rows = viewer.rows
    starts = viewer.conversations
    first = [(rows["protocol"].iloc[k], rows["src"].iloc[k], rows["dst"].iloc[k]) for k in starts]
    assert first == [
        ("tcp", "alice-pc", "msa-school"),  # the submission
        ("dns", "msa-school", "dns"),  # MX?
        ("dns", "msa-school", "dns"),  # A?
        ("tcp", "msa-school", "mx-home"),  # the relay
        ("tcp", "mx-home", "pop-home"),  # LMTP
        ("tcp", "bob-pc", "pop-home"),  # Bob's check
    ]
    assert len(viewer) == 80
    queued = next(k for k in range(len(viewer)) if "queued as" in rows["label"].iloc[k])
    assert starts[1] < queued < starts[2]  # the MX query goes out before it arrives
    assert viewer.detail(queued).splitlines()[0].endswith("· conversation 1 of 6")
    assert viewer.detail(starts[3]).splitlines()[0].endswith("· conversation 4 of 6")
    assert viewer.detail(starts[1]).splitlines()[-1] == (
        "meaning: asks DNS, the internet's address book: which server takes mail for this name?"
    )
    # Every turn from one conversation to another, and no other step, is a stop.
    sessions = rows["session"].tolist()
    turns = [k for k in range(1, 80) if sessions[k] != sessions[k - 1]]
    assert viewer.turns == [0, *turns]
    assert queued in viewer.turns
    viewer.widget()
    controls = viewer._controls
    visited = []
    for _ in range(len(turns) + 1):
        controls["next conversation"].click()
        visited.append(controls["slider"].value)
    assert visited == [k + 1 for k in turns] + [turns[-1] + 1]  # stays at the last
    controls["slider"].value = queued + 2
    controls["previous conversation"].click()  # to where its stretch began: the 250
    assert controls["slider"].value == queued + 1
    controls["previous conversation"].click()  # at a turn: the turn before, the query
    assert controls["slider"].value == starts[1] + 1
    # The route says nothing of how long the message took: the lesson asks that first.
    fig = viewer.draw(0)
    assert "retrieved" not in fig.axes[0].get_title(loc="left")
    assert "retrieved after" in StepViewer(classroom_result).draw(0).axes[0].get_title(loc="left")
    plt.close("all")


def test_the_protocol_filter_is_one_click_per_protocol(classroom_result):
    viewer = StepViewer(classroom_result)
    viewer.widget()
    controls = viewer._controls
    toggles = controls["protocols"]
    assert list(toggles) == list(dict.fromkeys(viewer._all["protocol"]))
    for name, toggle in toggles.items():
        toggle.value = name == "smtp"  # a click each: no Ctrl-click needed
    assert set(viewer.rows["protocol"]) == {"smtp"}
    assert controls["slider"].max == len(viewer)
    assert controls["slider"].value <= len(viewer)


def test_the_headers_reader_draws_the_route_at_every_click():
    """Lesson 7's "Show the route": six clicks, six full drawings (the picture's bytes
    are replaced, never an output area cleared and filled again)."""
    from mailsim.widgets import headers_reader
    from tests.conftest import ROOT

    text = (ROOT / "tests" / "data" / "headers" / "gmail.eml").read_text()
    before = plt.get_fignums()  # what other tests of this process left open
    reader = headers_reader(text)
    controls = reader.controls
    seen = []
    for _ in range(6):
        controls["button"].click()
        seen.append(controls["picture"].value)
    assert all(png_size(data) == (1280, 720) for data in seen)
    assert "<pre>" in controls["table"].value
    assert plt.get_fignums() == before  # each drawing closed once shown
    controls["box"].value = "Subject: no Received lines\n\nhello"
    controls["button"].click()
    assert controls["picture"].value == b""


def test_animation_frames_follow_the_route(classroom_result, monkeypatch):
    monkeypatch.setenv("MAILSIM_FRAMES", "8")
    before = plt.get_fignums()
    animation = animate(classroom_result, "m1")
    html = animation.to_jshtml()
    assert "<img" in html or "animation" in html.lower()
    assert plt.get_fignums() == before


def test_cli_animate_writes_a_gif(tmp_path, monkeypatch, capsys):
    from mailsim.cli import main
    from tests.conftest import SCENARIOS

    monkeypatch.setenv("MAILSIM_FRAMES", "4")
    out = tmp_path / "route.gif"
    assert main(["plot", "animate", str(SCENARIOS / "classroom.yaml"), "-o", str(out)]) == 0
    assert out.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert (
        main(["plot", "animate", str(SCENARIOS / "classroom.yaml"), "-o", str(tmp_path / "x.png")])
        == 2
    )
    assert "use one of .gif, .mp4, .html" in capsys.readouterr().err


def test_without_ipywidgets_the_viewer_says_which_extra_to_install(classroom_result, monkeypatch):
    import sys

    from mailsim.widgets import StepViewer

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # as if it were not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'mailsim\[notebooks\]'"):
        StepViewer(classroom_result).widget()


def test_stepping_and_filtering_keep_every_lifeline_in_its_column(classroom_result):
    def lanes(viewer: StepViewer, step: int) -> list[tuple[str, float]]:
        fig = viewer.draw(step)
        try:
            ladder = fig.axes[1]
            return [(t.get_text(), t.get_position()[0]) for t in ladder.texts
                    if t.get_gid() == "lane"]  # fmt: skip
        finally:
            plt.close(fig)

    everything = StepViewer(classroom_result)
    first = lanes(everything, 0)
    assert [name for name, _ in first] == list(
        dict.fromkeys([*everything._all["src"], *everything._all["dst"]])
    )
    assert lanes(everything, len(everything) - 1) == first  # the POP3 end of the journey
    assert lanes(StepViewer(classroom_result, protocols=("pop3",)), 0) == first
    assert lanes(StepViewer(classroom_result, protocols=("dns", "lmtp")), 2) == first


def test_a_note_is_drawn_with_its_exchanges_but_is_not_a_step():
    """slow-server: bob's POP3 session fetches many messages; the ladder keeps this one's
    RETR and a note for the others. The class steps through exchanges that move; the
    note is shown in the ladder around them, never as a step of its own."""
    from tests.conftest import SCENARIOS, shipped

    result = shipped(SCENARIOS / "slow-server.yaml")
    every = exchanges(result, result.copies[0].message.id)
    notes = every.index[every["step"] == "note"]
    assert len(notes) >= 1
    viewer = StepViewer(result)
    assert len(viewer) == len(every) - len(notes)
    assert "note" not in set(viewer.rows["step"])
    assert not any("other messages fetched" in viewer.detail(k) for k in range(len(viewer)))
    step = int((viewer.rows.index < notes[0]).sum())  # the first step after the note
    fig = viewer.draw(step)
    try:
        ladder = fig.axes[1]
        drawn = [t.get_text() for t in ladder.texts if t.get_gid() == "note"]
        assert drawn == [every.at[notes[0], "label"]]
    finally:
        plt.close(fig)


@pytest.mark.parametrize(("name", "steps"), [("classroom", (0, 12, 30, 79)),
                                             ("backup-mx", (0, 40, 72, 127))])  # fmt: skip
def test_no_word_of_the_viewer_covers_another(name, steps):
    """The route in a panel keeps its names, marks and failures but not its hop words
    (the ladder and the text below say each exchange); seven lifelines' names take two
    lines; a long label is cut in the panel, given whole in the text below."""
    from tests.conftest import SCENARIOS, shipped
    from tests.test_figure_layout import problems

    viewer = StepViewer(shipped(SCENARIOS / f"{name}.yaml"))
    for step in steps:
        fig = viewer.draw(step)
        try:
            assert problems(fig) == [], step
            # The ladder's words are read from the back row too: 14 px at least.
            ladder = fig.axes[1]
            words = [*ladder.texts, *ladder.get_yticklabels()]
            sizes = {t.get_fontsize() * fig.dpi / 72 for t in words if t.get_text()}
            assert min(sizes) >= 14, (step, sorted(sizes))
        finally:
            plt.close(fig)


def test_each_step_says_its_addresses_and_ports(classroom_result):
    """A command goes from the client's ephemeral port to the service's port, its reply
    back: the line a capture shows for the packet."""
    viewer = StepViewer(classroom_result)
    table = classroom_result.sessions
    (submission,) = table[table["service"] == "submission"].itertuples()
    client = f"{submission.client_ip}:{submission.client_port}"
    server = f"{submission.server_ip}:587"
    rows = viewer.rows
    syn = next(k for k in range(len(rows)) if rows.iloc[k]["step"] == "SYN")
    assert viewer.detail(syn).split("\n")[2] == f"{client} → {server} · TCP, submission"
    reply = next(k for k in range(len(rows)) if rows.iloc[k]["step"] == "SYN-ACK")
    assert viewer.detail(reply).split("\n")[2] == f"{server} → {client} · TCP, submission"
    query = next(k for k in range(len(rows)) if str(rows.iloc[k]["protocol"]) == "dns")
    assert viewer.detail(query).split("\n")[2].endswith(":53 · UDP, dns")


def test_the_event_list_jumps_the_viewer_and_follows_it(classroom_result):
    """Packet Tracer's event list: one row per step (time, from → to, protocol, what);
    choosing a row moves the viewer there, and stepping moves the choice."""
    viewer = StepViewer(classroom_result)
    viewer.widget()
    controls = viewer._controls
    events = controls["events"]
    lines = viewer.event_list()
    assert len(lines) == len(viewer) == len(events.options)
    first = viewer.rows.iloc[0]
    assert lines[0] == (f"{first['time']:>12.6f} s  {first['src']} → {first['dst']}  TCP    SYN")
    ehlo = next(k for k, line in enumerate(lines) if "EHLO alice-pc" in line)
    events.value = ehlo + 1
    assert controls["slider"].value == ehlo + 1
    assert viewer.step == ehlo
    controls["next"].click()
    assert events.value == ehlo + 2
    # Filtering keeps the list to the steps shown.
    for name, toggle in controls["protocols"].items():
        toggle.value = name == "dns"
    assert [label.split()[5] for label, _ in events.options] == ["DNS"] * len(viewer) == ["DNS"] * 4


def test_the_pdu_view_shows_the_layers_and_bytes_of_the_current_step(classroom_result):
    """Alice's EHLO before STARTTLS: readable, from her port to 587, PSH and ACK, her
    address and the first link; the bytes hold the command. Her AUTH after STARTTLS: only
    TLS records on the wire."""
    viewer = StepViewer(classroom_result)
    viewer.widget()
    lines = viewer.event_list()
    ehlo = next(k for k, line in enumerate(lines) if "EHLO alice-pc" in line)
    auth = next(k for k, line in enumerate(lines) if "AUTH PLAIN" in line)
    viewer._controls["events"].value = ehlo + 1
    shown = viewer._controls["packet"].value
    sessions = classroom_result.sessions.set_index("session")
    submission = sessions[sessions["service"] == "submission"].iloc[0]
    for words in (
        "Application · SMTP\n  EHLO alice-pc.school.example — SMTP: hello",
        "anyone on these links can read it",
        f"192.0.2.1:{submission['client_port']} → 192.0.2.2:587 · TCP, submission",
        "flags PSH, ACK",
        "seq 1 · ack 40",
        "192.0.2.1 → 192.0.2.2 (alice-pc → msa-school)",
        "MAC 02:00:c0:00:02:01 → 02:00:c0:00:02:02 on the first link",
        "alice-pc – msa-school: 2.0 ms one way, 100 Mbit/s",
        "45 48 4c 4f 20 61 6c 69 63 65",  # "EHLO alice"
    ):
        assert words in html.unescape(shown), words
    pdu = viewer.pdu(auth)
    assert pdu.encrypted
    assert pdu.layers[0].name == "Application · SMTP inside TLS"
    assert b"AUTH" not in pdu.frame
    assert pdu.frame[66:69] == b"\x17\x03\x03"  # a TLS Application Data record's header


def test_cli_draws_one_frame_of_the_animation_as_a_still(tmp_path, capsys):
    """--frame N: a still for slides, at 1280×720; a frame that does not exist is named
    with the count there is."""
    from mailsim.cli import main
    from mailsim.plot.animate import Scene
    from tests.conftest import SCENARIOS

    classroom = str(SCENARIOS / "classroom.yaml")
    out = tmp_path / "still.png"
    assert main(["plot", "animate", classroom, "--frame", "231", "-o", str(out)]) == 0
    assert png_size(out.read_bytes()) == (1280, 720)
    count = Scene.frames_of(mailsim.run(SCENARIOS / "classroom.yaml"))
    assert main(["plot", "animate", classroom, "--frame", str(count + 1), "-o", str(out)]) == 2
    assert f"--frame: no frame {count + 1}: there are {count}" in capsys.readouterr().err
    assert main(["plot", "route", classroom, "--frame", "2", "-o", str(out)]) == 2
    assert "--frame: no frame 2: only animate has frames" in capsys.readouterr().err
