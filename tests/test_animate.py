"""Packets that move: the time map, the envelopes along their paths (artists' data), sealed
and open, failures, the caption, the files at 1280×720 and the notebook player."""

from __future__ import annotations

import importlib
import itertools
import math
import subprocess

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import mailsim
from mailsim.plot import style
from mailsim.plot.animate import CARD, MIN_FRAMES, Scene, timeline
from tests.conftest import SCENARIOS, shipped
from tests.test_widgets import png_size

# The module (mailsim.plot re-exports its function under the module's name).
anim = importlib.import_module("mailsim.plot.animate")


def table(*spans: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame({"time": [a for a, _ in spans], "arrive": [b for _, b in spans]})


@pytest.fixture(scope="module")
def scene(classroom_result) -> Scene:
    made = Scene(classroom_result, "m1")
    plt.close(made.fig)
    return made


def own(line: anim.Timeline, k: int) -> int:
    return line.end[k] - line.start[k]


# -- the time map ----------------------------------------------------------------------------


def test_every_flight_gets_three_frames_and_frames_never_run_backwards():
    # A session's ping-pong (2 ms each way), a 0.5 ms hop, a 141 ms upload, a 5 min wait.
    spans = [(0.0, 0.002), (0.002, 0.004), (0.0045, 0.005), (0.005, 0.146), (300.0, 300.002)]
    line = timeline(table(*spans))
    assert all(own(line, k) >= MIN_FRAMES for k in range(len(spans)))
    assert list(line.start) == sorted(line.start)
    assert all(line.end[k] <= line.start[k + 1] for k in range(len(spans) - 1))
    assert line.frames > line.end[-1]  # the last picture is held
    assert [line.time_at(f) for f in range(line.frames)] == sorted(
        line.time_at(f) for f in range(line.frames)
    )


def test_a_longer_flight_alone_in_the_air_gets_more_frames():
    spans = [(0.0, 0.0005), (0.001, 0.003), (0.004, 0.051), (0.06, 0.2)]
    line = timeline(table(*spans))
    frames = [own(line, k) for k in range(len(spans))]
    assert frames == sorted(frames)
    assert frames[-1] > frames[0]


def test_the_budget_is_kept_by_giving_long_flights_less_but_never_below_three_frames():
    spans = [(k * 0.1, k * 0.1 + (0.001 if k % 2 else 0.08)) for k in range(40)]
    free, tight = timeline(table(*spans), budget=10_000), timeline(table(*spans), budget=150)
    assert tight.frames <= 150 < free.frames
    assert all(own(tight, k) >= MIN_FRAMES for k in range(40))
    too_tight = timeline(table(*spans), budget=50)  # 40 flights need 120: the minimum wins
    assert all(own(too_tight, k) == MIN_FRAMES for k in range(40))


def test_flights_in_the_air_together_share_one_clock():
    # A 47 ms reply crossing the ocean while the mailbox server takes six 0.5 ms steps.
    spans = [(0.0, 0.047), *((0.001 + k * 0.001, 0.0015 + k * 0.001) for k in range(6))]
    line = timeline(table(*spans))
    assert line.start[0] <= line.start[1]
    assert line.end[6] <= line.end[0]
    assert all(own(line, k) >= MIN_FRAMES for k in range(1, 7))


def test_a_long_wait_becomes_a_short_clock_card_saying_what_ends_it(scene):
    line = scene.timeline
    (card,) = line.cards
    assert card.frames == CARD
    assert card.next == 54
    # From the last arrival (the 250 crossing back over the ocean) to bob-pc's poll.
    last = float(scene.flights["arrive"][:54].max())
    assert last == pytest.approx(11.0766, abs=1e-3)
    assert card.wait == pytest.approx(300.0 - last)
    assert line.start[54] == card.first + card.frames
    middle = card.first + card.frames // 2
    assert scene.words_at(middle) == "4 min 49 s later: bob-pc polls pop-home"
    assert line.in_air(middle) == []
    assert 11.04 < line.time_at(middle) < 300.0  # the clock runs through the wait


def test_classroom_plays_in_about_the_budget_and_every_flight_is_seen(scene):
    line = scene.timeline
    assert len(scene.rows) == 80
    assert all(own(line, k) >= MIN_FRAMES for k in range(80))
    assert line.frames <= anim.BUDGET
    # Milliseconds stay visible: the 141 ms crossing of the relay lasts longer on screen
    # than the 0.5 ms hand-off to the mailbox server, though not 280 times as long.
    took = [float(f.arrive - f.time) for f in scene.rows]
    slow = max(range(80), key=lambda k: took[k] if took[k] < 1 else 0.0)
    quick = min(range(80), key=lambda k: took[k])
    assert took[slow] == pytest.approx(0.141055, abs=1e-6)
    assert own(line, slow) >= 2 * own(line, quick) >= 2 * MIN_FRAMES
    assert {"dns", "tls", "smtp", "lmtp", "pop3", "tcp"} <= set(scene.flights["protocol"])


# -- the envelopes ---------------------------------------------------------------------------


def pixels(scene: Scene, point: tuple[float, float]) -> np.ndarray:
    return scene.ax.transData.transform([point])[0]


def off_path(scene: Scene, k: int, point: tuple[float, float]) -> float:
    """Pixels from ``point`` to the nearest link of flight ``k``'s path."""
    p = pixels(scene, point)
    best = math.inf
    path = scene.rows[k].path
    for a, b in itertools.pairwise(path):
        pa, pb = pixels(scene, scene.pos[a]), pixels(scene, scene.pos[b])
        t = np.clip(np.dot(p - pa, pb - pa) / np.dot(pb - pa, pb - pa), 0, 1)
        best = min(best, float(np.linalg.norm(p - (pa + t * (pb - pa)))))
    return best


def test_an_envelope_travels_its_path_through_the_routers_only_while_in_the_air(scene):
    line = scene.timeline
    k = next(i for i, f in enumerate(scene.rows) if f.src == "msa-school" and f.dst == "mx-home")
    assert scene.rows[k].path == ("msa-school", "r-school", "r-home", "mx-home")
    envelope = scene.envelopes[k]
    assert envelope.get_gid() == f"envelope-{k}"
    scene.update(line.start[k] - 1)
    assert not envelope.get_visible()
    gone = []
    for frame in range(line.start[k], line.end[k]):
        scene.update(frame)
        assert envelope.get_visible()
        (x,), (y,) = envelope.get_data()
        assert off_path(scene, k, (x, y)) <= anim.SIDE + 0.5
        gone.append(
            float(np.linalg.norm(pixels(scene, (x, y)) - pixels(scene, scene.pos["msa-school"])))
        )
    assert gone == sorted(gone)
    assert len(gone) >= MIN_FRAMES
    scene.update(line.end[k])
    assert not envelope.get_visible()


def test_an_envelope_moves_in_proportion_to_the_links_latency(scene):
    # msa-school → mx-home: 1 ms, 45 ms, 1 ms; half way is in the middle of the long link.
    k = next(i for i, f in enumerate(scene.rows) if f.src == "msa-school" and f.dst == "mx-home")
    x, _ = scene.where(k, 0.5)
    r_school, r_home = scene.pos["r-school"][0], scene.pos["r-home"][0]
    assert x == pytest.approx((r_school + r_home) / 2, abs=0.02 * abs(r_home - r_school))


def test_envelopes_ride_above_the_machines_and_the_route(scene):
    lowest = min(e.get_zorder() for e in scene.envelopes)
    assert all(c.get_zorder() < lowest for c in scene.ax.collections)  # the nodes' markers


def test_flights_after_the_handshake_are_sealed_and_before_it_open(scene):
    rows = scene.rows
    starttls = next(i for i, f in enumerate(rows) if f.step == "STARTTLS")
    ehlo_again = next(i for i, f in enumerate(rows) if i > starttls and f.step == "EHLO")
    hello = next(i for i, f in enumerate(rows) if f.protocol == "tls")
    assert rows[starttls].kind == "open"
    assert rows[ehlo_again].kind == "sealed"
    assert rows[hello].kind == "handshake"
    assert rows[hello].version == "1.3"
    assert scene.envelopes[starttls].get_marker() is anim.ENVELOPE_OPEN
    assert scene.envelopes[ehlo_again].get_marker() is anim.ENVELOPE_CLOSED
    assert scene.locks[starttls] is None
    assert scene.locks[ehlo_again] is not None
    assert scene.locks[hello] is None  # keys being agreed: closed, no padlock yet
    frame = scene.timeline.start[ehlo_again] + 1
    scene.update(frame)
    assert scene.locks[ehlo_again].get_visible()
    assert scene.locks[ehlo_again].get_data() == scene.envelopes[ehlo_again].get_data()
    # What an eavesdropper reads beside it: the size only; beside a plaintext one, words.
    assert scene.tags[ehlo_again].get_text() == f"{rows[ehlo_again].bytes:,} B"
    assert scene.tags[starttls].get_text() == "STARTTLS"


def test_the_caption_says_who_sends_what_and_whether_it_can_be_read(scene):
    rows = scene.rows
    k = next(i for i, f in enumerate(rows) if f.step == "message" and f.src == "alice-pc")
    scene.update(scene.timeline.start[k] + 1)
    assert scene.caption.get_text() == (
        f"t = {float(rows[k].time):.4f} s · alice-pc → msa-school · SMTP: the message "
        f"({rows[k].bytes:,} bytes) · sealed (TLS 1.3): an eavesdropper sees only its size"
    )
    query = next(i for i, f in enumerate(rows) if f.protocol == "dns")
    assert "MX? home.example" in scene.words_at(scene.timeline.start[query] + 1) or any(
        "MX? home.example" in scene.tags[j].get_text() for j in scene.timeline.in_air(
            scene.timeline.start[query] + 1)
    )  # fmt: skip
    starttls = next(i for i, f in enumerate(rows) if f.step == "STARTTLS")
    assert scene.words_at(scene.timeline.start[starttls]).endswith(
        "SMTP: STARTTLS · plaintext: anyone on the path can read it"
    )


def test_words_are_big_enough_and_the_caption_fits_every_frame(scene):
    px = 100 / 72
    assert scene.caption.get_fontsize() * px >= 14
    assert all(t.get_fontsize() * px >= 14 for t in scene.tags)
    width = scene.fig.bbox.width
    for frame in range(0, scene.timeline.frames, 3):
        scene.update(frame)
        box = scene.caption.get_window_extent()
        assert box.x0 >= 0, scene.caption.get_text()
        assert box.x1 <= width, scene.caption.get_text()


def test_the_caption_is_centred_on_the_figure_beside_a_key_to_the_right():
    scene = Scene(shipped(SCENARIOS / "free-vs-paid-provider.yaml"), "m2")
    plt.close(scene.fig)
    assert scene.ax.get_legend() is not None  # the key to the right of the map
    hello = next(k for k, f in enumerate(scene.rows) if f.step.startswith("ServerHello"))
    scene.update(scene.timeline.start[hello] + 1)
    text = scene.caption.get_text()
    assert text.startswith("t = ")
    assert text.endswith("TLS 1.3 handshake: agreeing on keys, the server's name readable")
    box = scene.caption.get_window_extent()
    assert box.x0 >= 0
    assert box.x1 <= scene.fig.bbox.width
    assert (box.x0 + box.x1) / 2 == pytest.approx(scene.fig.bbox.width / 2, abs=2)


def test_a_failure_is_crossed_at_the_machine_that_answered_and_said(tmp_path):
    result = shipped(SCENARIOS / "greylisting.yaml")
    scene = Scene(result)
    plt.close(scene.fig)
    failed = [k for k, f in enumerate(scene.rows) if f.outcome != "ok"]
    assert failed
    k = failed[0]
    assert scene.rows[k].outcome == "temporary"  # 450, though DATA's 554 followed it
    cross = scene.crosses[k]
    assert cross.get_data() == ([scene.pos["mx-home"][0]], [scene.pos["mx-home"][1]])
    scene.update(scene.timeline.start[k] - 1)
    assert not cross.get_visible()
    scene.update(scene.timeline.start[k] + 1)
    assert cross.get_visible()
    assert cross.get_color() == style.OUTCOME["temporary"]
    text = scene.caption.get_text()
    assert "mx-home → msa-school · SMTP: 450 4.2.0" in text
    assert "✖ temporary failure" in text
    # The next session after the greylisting delay: a card saying it is tried again.
    # msa-school's next try, after its retry interval, starts by asking DNS again.
    card = next(c for c in scene.timeline.cards if c.next > k)
    assert (
        scene.words_at(card.first) == "9 min 33 s later: msa-school tries again, first asking dns"
    )


def test_a_dns_timeout_is_a_failure_at_the_one_who_waited_and_moves_no_envelope():
    scene = Scene(shipped(SCENARIOS / "dns-outage.yaml"))
    plt.close(scene.fig)
    rows, line = scene.flights, scene.timeline
    out = rows[rows["step"] == "timeout"]
    assert len(out)
    assert set(out["outcome"]) == {"temporary"}
    assert all(own(line, k) >= MIN_FRAMES for k in out.index)
    k = int(out.index[0])
    scene.update(line.start[k] + 1)
    assert not scene.envelopes[k].get_visible()
    assert scene.crosses[k].get_visible()
    here = scene.pos["msa-school"]
    assert scene.crosses[k].get_data() == ([here[0]], [here[1]])
    text = scene.caption.get_text()
    assert text.endswith(
        "s · msa-school · DNS: MX? home.example: no answer from the resolver · ✖ temporary failure"
    )
    card = next(c for c in line.cards if c.next == k)  # five seconds of silence first
    assert scene.words_at(card.first) == "4.999 s later: no answer: msa-school gives up waiting"


# -- the files -------------------------------------------------------------------------------


def test_gif_and_mp4_are_written_at_1280x720(classroom_result, tmp_path, monkeypatch):
    import imageio_ffmpeg
    from PIL import Image

    from mailsim.plot.files import save

    monkeypatch.setenv("MAILSIM_FRAMES", "5")
    gif = save(classroom_result, "animate", tmp_path / "packets.gif")
    with Image.open(gif) as image:
        assert image.size == (1280, 720)
        assert image.n_frames == 5
    mp4 = save(classroom_result, "animate", tmp_path / "packets.mp4")
    # ffmpeg describes the file it reads: H.264, 1280×720, FPS frames a second.
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(mp4)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    (stream,) = [line for line in probe.stderr.splitlines() if "Video:" in line]
    assert "h264" in stream
    assert " 1280x720" in stream
    assert f" {anim.FPS} fps" in stream
    assert imageio_ffmpeg.count_frames_and_secs(str(mp4))[0] == 5
    assert mp4.read_bytes()[4:8] == b"ftyp"
    assert plt.get_fignums() == []


def test_the_web_page_plays_the_mp4(classroom_result, tmp_path, monkeypatch):
    import base64

    from mailsim.plot.files import save

    monkeypatch.setenv("MAILSIM_FRAMES", "3")
    page = save(classroom_result, "animate", tmp_path / "packets.html").read_text()
    assert '<video controls loop playsinline width="1280" height="720"' in page
    data = base64.b64decode(page.split("base64,")[1].split('"')[0])
    assert data[4:8] == b"ftyp"


def test_a_frame_drawn_on_the_kept_route_is_the_frame_drawn_whole(classroom_result):
    import io

    from PIL import Image

    scene = Scene(classroom_result)
    plt.close(scene.fig)
    sealed = next(k for k, f in enumerate(scene.rows) if f.step == "message")
    frames = [0, scene.timeline.start[sealed] + 1, scene.timeline.cards[0].first + 3]
    quicks = list(scene.pictures(frames))  # the canvas is the pictures' while they run
    for frame, quick in zip(frames, quicks, strict=True):
        scene.update(frame)
        buffer = io.BytesIO()
        scene.fig.savefig(buffer, format="png", dpi=100)
        whole = np.asarray(Image.open(buffer).convert("RGB"))
        assert quick.shape == whole.shape == (720, 1280, 3)
        assert np.abs(quick.astype(int) - whole).max() == 0


def test_the_gif_keeps_the_page_white_and_the_padlock_yellow(classroom_result, tmp_path):
    from PIL import Image

    scene = Scene(classroom_result)
    plt.close(scene.fig)
    sealed = next(k for k, f in enumerate(scene.rows) if f.step == "message")
    path = tmp_path / "two.gif"
    frames = [0, scene.timeline.start[sealed] + 1]  # the padlock's yellow only in the second
    anim._gif(scene.pictures(frames), path)
    with Image.open(path) as gif:
        gif.seek(1)
        picture = np.asarray(gif.convert("RGB")).astype(int)
    assert (picture[-5:, :5] == 255).all()  # a corner of the page
    yellow = np.array([int(style.OKABE_ITO["yellow"][i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(picture - yellow).sum(axis=-1) <= 12).sum() > 40


def test_the_frame_cap_spreads_the_frames_over_the_whole_story():
    assert anim.shown_frames(258, 5) == [0, 64, 128, 193, 257]
    assert anim.shown_frames(10, None) == list(range(10))
    assert anim.shown_frames(3, 8) == [0, 1, 2]


# -- the player ------------------------------------------------------------------------------


def test_the_player_jumps_to_a_chosen_flight_and_playing_moves_the_choice(classroom_result):
    from mailsim.player import Player  # its widgets need ipywidgets, a test extra

    player = Player(classroom_result)
    player.widget()
    c = player.controls
    flights_list, slider = c["flights"], c["slider"]
    assert len(flights_list.options) == len(player) == 80
    assert flights_list.options[20][0].strip().startswith("10.0454 s  alice-pc → msa-school  SMTP")
    flights_list.value = 40
    assert slider.value == player.frame_of(40)
    assert player.frame == slider.value
    assert png_size(c["picture"].value) == (1280, 720)
    # The DNS query leaves with the 250 reply: chosen, it stays chosen.
    query = next(k for k, f in enumerate(player.scene.rows) if f.protocol == "dns")
    flights_list.value = query
    assert flights_list.value == query
    assert slider.value == player.frame_of(query)
    slider.value = player.frame_of(60) + 1  # what Play does, a frame at a time
    assert flights_list.value == 60
    c["next"].click()
    c["back"].click()
    c["back"].click()
    assert slider.value == player.frame_of(60)
    c["speed"].value = "2×"
    assert c["play"].interval == round(1000 / anim.FPS / 2)
    card = player.scene.timeline.cards[0]
    slider.value = card.first + 1
    assert flights_list.value == card.next  # the card leads to bob-pc's poll
    assert plt.get_fignums() == []


def test_the_player_draws_any_frame_without_widgets(classroom_result):
    from mailsim.player import Player

    player = Player(classroom_result)
    assert player.flight_at(player.frame_of(5)) == 5
    assert png_size(player.show(10_000)) == (1280, 720)
    assert player.frame == player.frames - 1
    assert "the end: 80 flights" in player.scene.caption.get_text()


def test_the_animation_honours_the_frame_cap(classroom_result, monkeypatch):
    monkeypatch.setenv("MAILSIM_FRAMES", "4")
    animation = anim.animate(classroom_result, "m1")
    assert len(list(animation.new_frame_seq())) == 4
    html = animation.to_jshtml()  # drawn, as a notebook shows it: four frames, no more
    assert html.count("data:image/png;base64") == 4
    assert plt.get_fignums() == []
    _ = mailsim  # the package, imported for the fixtures' scenarios
