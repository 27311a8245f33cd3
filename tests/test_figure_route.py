"""The route picture as a class sees it, projected at 1280×720: every word large enough
and dark enough to read from the back row, the key where it leaves the network the most
room, and domain boxes that claim no one else's machines."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.patches import FancyArrowPatch
from matplotlib.path import Path
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from mailsim import plot
from mailsim.plot import labels, style
from mailsim.plot.files import telling
from mailsim.plot.route import CONTRAST, FAILED, LEADER, contrast, readable
from mailsim.plot.topology import domain_of, positions
from mailsim.units import format_duration
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
        failed = next(t for label, t in by_text.items() if label.startswith("2–6  ✗ 4.4.1"))
        through = next(t for label, t in by_text.items() if label.startswith("7  "))
        assert to_rgb(failed.get_color()) == pytest.approx(readable(FAILED["temporary"]))
        assert to_rgb(through.get_color()) == pytest.approx(readable(style.OUTCOME["ok"]))
        (arrow,) = [p for p in ax.patches if p.get_gid() == "hop-2-6"]
        assert arrow.get_edgecolor()[:3] == pytest.approx(FAILED["temporary"])
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


def held(ax, result) -> dict[str, set[str]]:
    """Each domain box (by its gid) and the nodes drawn inside it."""
    pos = positions(result)
    boxes = {}
    for patch in ax.patches:
        if (patch.get_gid() or "").startswith("domain-"):
            x0, y0 = patch.get_x(), patch.get_y()
            x1, y1 = x0 + patch.get_width(), y0 + patch.get_height()
            boxes[patch.get_gid()] = {
                n for n, (x, y) in pos.items() if x0 <= x <= x1 and y0 <= y <= y1
            }
    return boxes


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_domain_box_holds_no_one_elses_machine(path):
    result = shipped(path)
    ax = plot.route(result)
    try:
        boxes = held(ax, result)
        assert boxes
        for gid, names in boxes.items():
            domain = gid.removeprefix("domain-").rsplit("-", 1)[0]
            nodes = result.scenario.nodes
            strangers = {
                n
                for n in names
                if nodes[n].role != "router" and domain_of(result.scenario, n) != domain
            }
            assert not strangers, f"{gid} holds {strangers}"
    finally:
        plt.close(ax.figure)


def test_a_firm_and_its_provider_get_a_box_each():
    """own-server-or-provider: cloudco's desks are in the west, the provider's servers
    that hold its mail in the east, with ownco's office and the internet between them.
    One box around both would claim them all for cloudco (it did, and hid its label).
    The provider's mail and POP3 servers are both the provider's (mail.provider.example,
    pop.provider.example): one box, whichever domain's mail they hold — not the mail
    server in a cloudco box and its POP3 server in a provider box of its own."""
    result = shipped(SCENARIOS / "own-server-or-provider.yaml")
    ax = plot.route(result)
    try:
        boxes = held(ax, result)
        assert boxes["domain-cloudco.example-0"] == {"cloud-pcs"}
        provider = [gid for gid in boxes if gid.startswith("domain-provider.example-")]
        assert provider == ["domain-provider.example-0"]
        assert boxes["domain-provider.example-0"] == {"mail-provider", "pop-provider"}
        assert boxes["domain-ownco.example-0"] == {"own-pcs", "mail-own", "pop-own"}
        titles = [t.get_text() for t in ax.texts if t.get_gid() == "domain"]
        assert titles.count("cloudco.example") == 1
        assert titles.count("provider.example") == 1
    finally:
        plt.close(ax.figure)


def test_a_domain_box_takes_in_its_own_network():
    """same-domain: the school's machines around its LAN switch: one box, the switch in."""
    result = shipped(SCENARIOS / "same-domain.yaml")
    ax = plot.route(result)
    try:
        assert held(ax, result) == {"domain-school.example-0": set(result.scenario.nodes)}
    finally:
        plt.close(ax.figure)


def test_a_machine_four_domains_share_is_in_no_box():
    """tls-versions: one mailbox server and one laptop pool serve all four colleges."""
    result = shipped(SCENARIOS / "tls-versions.yaml")
    ax = plot.route(result)
    try:
        boxes = held(ax, result)
        assert boxes["domain-modern.example-0"] == {"mx-modern"}
        assert not any({"mailboxes", "laptops"} & names for names in boxes.values())
    finally:
        plt.close(ax.figure)


def hop_texts(ax) -> list[Text]:
    """The hop labels: they start with the hop's number (node names, domains do not)."""
    return [t for t in ax.texts if t.get_text()[:1].isdigit() and t.get_gid() is None]


def hop_labels(ax) -> dict[int, str]:
    """Each hop label's text by the number of the first hop it stands for."""
    return {int(t.get_text().split()[0].split("–")[0]): t.get_text() for t in hop_texts(ax)}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # alice: no TLS anywhere on freemail: her password, then the message twice.
        ("m1", {1: "eve reads: password, envelope, message", 2: "eve reads: envelope, message"}),
        # dave: implicit TLS to paidmail, STARTTLS from it: the EHLO, then records.
        ("m2", {1: "eve reads nothing (TLS)", 2: "eve reads only commands before TLS"}),
        # carol's answer to alice: freemail's MX offers no TLS; alice's POP3 sends PASS.
        ("m3", {2: "eve reads: envelope, message", 4: "eve reads: password, message"}),
    ],
)
def test_a_hop_past_the_eavesdropper_says_what_she_read(message, expected):
    """free-vs-paid-provider: eve taps r-west–r-east; the hops whose sessions cross it
    (result.overheard) say on a second line what she read there, the others say nothing."""
    result = shipped(SCENARIOS / "free-vs-paid-provider.yaml")
    ax = plot.route(result, message)
    try:
        overheard = set(result.overheard["session"])
        hops = result.hops[result.hops["message"] == message].set_index("index")
        for index, text in hop_labels(ax).items():
            _, *more = text.split("\n")
            assert more == ([expected[index]] if index in expected else [])
            assert (hops.loc[index, "session"] in overheard) == (index in expected)
        assert set(expected) <= set(hop_labels(ax))
    finally:
        plt.close(ax.figure)


def test_without_an_eavesdropper_a_hop_label_is_one_line():
    result = shipped(SCENARIOS / "classroom.yaml")
    ax = plot.route(result)
    try:
        assert len(hop_labels(ax)) == 4
        assert not any("\n" in text for text in hop_labels(ax).values())
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    ("name", "message", "first", "last"),
    [("mx-down", "m1", 2, 6), ("retry-policies", "rfc", 2, 4), ("retry-policies", "exim", 2, 5)],
)
def test_repeated_failures_say_how_long_the_retries_went_on(name, message, first, last):
    """The refused tries of one hop share an arrow; its label says how many, and how long
    from the first to the last (the scenario's retry schedule: mx-down's 10 s to 4783 s)."""
    result = shipped(SCENARIOS / f"{name}.yaml")
    hops = result.hops[result.hops["message"] == message].set_index("index")
    ax = plot.route(result, message)
    try:
        span = format_duration(hops.loc[last, "start"] - hops.loc[first, "start"])
        code = hops.loc[first, "code"]
        (label,) = [t.get_text() for t in ax.texts if t.get_text().startswith(f"{first}–{last}  ")]
        head, tries = label.split("\n")[:2]
        assert head.startswith(f"{first}–{last}  ✗ {code} ")
        assert tries.startswith(f"tried {last - first + 1}× over {span}")
    finally:
        plt.close(ax.figure)


def gap_to_arrow(label: Text, arrow, renderer) -> float:
    """Pixels between a label's box and the middle three fifths of its arrow's shaft."""
    path = arrow.get_transform().transform_path(arrow.get_path())
    shaft = np.asarray(path.to_polygons(closed_only=False)[0])
    middle = shaft[len(shaft) // 5 : len(shaft) - len(shaft) // 5]
    box = label.get_window_extent(renderer)
    nearest = np.column_stack(
        [np.clip(middle[:, 0], box.x0, box.x1), np.clip(middle[:, 1], box.y0, box.y1)]
    )
    return float(np.min(np.hypot(*(middle - nearest).T)))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_hop_label_far_from_its_arrow_has_a_line_to_it(path):
    """Where there was no room beside an arrow its label moved away; a line more than
    LEADER px long leads back to the arrow's middle part, and only then."""
    ax, _ = drawn(path)
    try:
        renderer = ax.figure.canvas.get_renderer()
        arrows = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("hop-")}
        leaders = {line.get_gid(): line for line in ax.lines}
        for label in hop_texts(ax):
            numbers = label.get_text().split()[0].split("–")
            gid = f"hop-{numbers[0]}-{numbers[-1]}"
            gap = gap_to_arrow(label, arrows[gid], renderer)
            leader = leaders.get(f"leader-{gid}")
            assert (leader is not None) == (gap > LEADER), (label.get_text(), gap)
            if leader is not None:
                ends = ax.transData.transform(leader.get_xydata())
                assert np.hypot(*(ends[1] - ends[0])) == pytest.approx(gap, abs=0.5)
    finally:
        plt.close(ax.figure)


def test_transatlantic_labels_below_the_boxes_lead_to_their_arrows():
    """The LMTP hand-off is a short arrow beside the delivery on mx-college's link, under
    node names: its label goes below the domain box, with a line up to its arrow. (The
    submission, drawn straight along its link, has room for its label just above it.)"""
    ax, _ = drawn(SCENARIOS / "transatlantic.yaml")
    try:
        leaders = sorted(g for line in ax.lines if (g := line.get_gid() or "").startswith("leader"))
        assert leaders == ["leader-hop-3-3"]
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize("message", ["m3", "m4"])
def test_a_short_hop_label_leaves_the_machines_visible(message):
    """free-vs-paid-provider: carol's submission (carol-pc → mx-college) is a short arrow
    between two markers and two names; its label used to sit on carol-pc's square."""
    ax, _ = drawn(SCENARIOS / "free-vs-paid-provider.yaml", message)
    try:
        renderer = ax.figure.canvas.get_renderer()
        (label,) = [t for t in hop_texts(ax) if t.get_text().startswith("1  ")]
        box = label.get_window_extent(renderer)
        nodes = [c for c in ax.collections if c.get_label() in style.ROLE_LABEL.values()]
        for markers in nodes:
            half = np.sqrt(markers.get_sizes()[0]) / 2 * ax.figure.dpi / 72
            for x, y in markers.get_offset_transform().transform(markers.get_offsets()):
                assert not (box.x0 < x + half and x - half < box.x1
                            and box.y0 < y + half and y - half < box.y1), markers.get_label()  # fmt: skip
    finally:
        plt.close(ax.figure)


def test_the_key_shows_the_router_dot_large_enough_to_see():
    """The map's routers are small grey dots on purpose; in the key, scaled down with the
    other symbols, the dot was 120 × 0.6² ≈ 43 pt² — a speck. It is drawn at 250 pt²."""
    ax, _ = drawn(SCENARIOS / "classroom.yaml")
    try:
        key = ax.get_legend()
        sizes = {
            text.get_text(): handle.get_sizes()[0]
            for handle, text in zip(key.legend_handles, key.get_texts(), strict=True)
            if hasattr(handle, "get_sizes")
        }
        assert sizes["router"] == 250
        assert sizes["router"] > sizes["mail server (MTA)"]  # '.' is drawn at half an 'o'
    finally:
        plt.close(ax.figure)


def line_of(arrow) -> np.ndarray:
    """An arrow's shaft as drawn, in pixels."""
    path = arrow.get_transform().transform_path(arrow.get_path())
    return np.asarray(path.to_polygons(closed_only=False)[0])


def test_a_greylisted_try_is_as_plain_to_see_as_the_hop_that_followed_it():
    """greylisting: the first try (hop 2) was refused with 450 and tried again minutes
    later. It is drawn as wide as a hop, dark enough to see on a domain's grey box (3:1,
    WCAG's ratio for graphics), in its own lane beside the delivery (hop 3), with a ✗
    where it stopped and words saying what happened and how long the sender waited."""
    result = shipped(SCENARIOS / "greylisting.yaml")
    hops = result.hops[result.hops["message"] == "m1"].set_index("index")
    ax, texts = drawn(SCENARIOS / "greylisting.yaml")
    try:
        patches = {p.get_gid(): p for p in ax.patches}
        failed, through = patches["hop-2-2"], patches["hop-3-3"]
        assert failed.get_linewidth() >= through.get_linewidth()
        for under in ("white", DOMAIN_FILL):
            assert contrast(failed.get_edgecolor(), under) >= 3.0
        (stop,) = [line for line in ax.lines if line.get_gid() == "stop-hop-2-2"]
        assert stop.get_marker() == "x"
        assert np.allclose(ax.transData.transform(stop.get_xydata())[0], line_of(failed)[-1])
        (label,) = [t.get_text() for t in texts if t.get_text().startswith("2  ")]
        wait = format_duration(hops.loc[3, "start"] - hops.loc[2, "end"])
        assert label == f"2  ✗ 450 greylisted\ntried again after {wait}"
        # Side by side on the backbone, not one under the other.
        a, b = line_of(failed), line_of(through)
        middle = a[len(a) // 3 : 2 * len(a) // 3]
        gaps = np.min(np.hypot(*(middle[:, None, :] - b[None, :, :]).transpose(2, 0, 1)), axis=1)
        assert gaps.min() >= 6.0
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    ("message", "words"),
    [("m1", "strips STARTTLS: hop 2 goes in plaintext"), ("m2", "strips STARTTLS")],
)
def test_the_man_in_the_middle_is_on_the_link_where_it_strips_starttls(message, words):
    """tls-downgrade: the attacker sits between r-school and r-home for the first hour;
    alice's server, which only may use TLS, relays in plaintext past it (hop 2)."""
    result = shipped(SCENARIOS / "tls-downgrade.yaml")
    ax, texts = drawn(SCENARIOS / "tls-downgrade.yaml", message)
    try:
        pos = positions(result)
        (mark,) = [c for c in ax.collections if c.get_gid() == "attacker"]
        middle = np.mean([pos["r-school"], pos["r-home"]], axis=0)
        assert list(mark.get_offsets()[0]) == pytest.approx(list(middle))
        (said,) = [t.get_text() for t in texts if t.get_gid() == "attacker"]
        assert said.split("\n") == ["man in the middle, 0–60 min:", words]
        assert "man in the middle" in [t.get_text() for t in ax.get_legend().get_texts()]
    finally:
        plt.close(ax.figure)


def test_a_delivered_hop_has_a_padlock_shut_for_tls_and_open_for_plaintext():
    """tls-downgrade m1: the submission under TLS, the relay stripped to plaintext."""
    from mailsim.plot.route import LOCKED, UNLOCKED

    result = shipped(SCENARIOS / "tls-downgrade.yaml")
    hops = result.hops[result.hops["message"] == "m1"].set_index("index")
    ax, _ = drawn(SCENARIOS / "tls-downgrade.yaml", "m1")
    try:
        locks = {c.get_gid(): c for c in ax.collections if (c.get_gid() or "").startswith("lock")}
        assert sorted(locks) == [f"lock-hop-{i}-{i}" for i in hops.index]
        for index, hop in hops.iterrows():
            shape = locks[f"lock-hop-{index}-{index}"].get_paths()[0]
            expected = LOCKED if hop["tls"] else UNLOCKED
            assert np.allclose(shape.vertices / np.abs(shape.vertices).max(),
                               expected.vertices / np.abs(expected.vertices).max())  # fmt: skip
        assert hops.loc[1, "tls"]
        assert not hops.loc[2, "tls"]
    finally:
        plt.close(ax.figure)


def messages_of(result, most: int = 11) -> list[str]:
    """The messages whose routes `mailsim run --plots` draws (route.png, route-ID.png)."""
    return list(dict.fromkeys(c.message.id for c in result.copies))[:most]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_the_key_lists_only_what_the_route_draws(path):
    """Every entry of the key names something drawn on the map (an arrow, a padlock, a
    marker carries that label): no 'hop, plaintext' on a route without one."""
    result = shipped(path)
    for message in messages_of(result) or [None]:
        ax = plot.route(result, message)
        try:
            key = ax.get_legend()
            drawn_labels = {
                a.get_label() for a in ax.get_children() if a is not key and a.get_visible()
            }
            listed = [t.get_text() for t in key.get_texts()]
            assert set(listed) <= drawn_labels, (message, set(listed) - drawn_labels)
            assert len(listed) == len(set(listed))
        finally:
            plt.close(ax.figure)


def test_same_domain_hops_do_not_cross():
    """same-domain: alice's submission (alice-pc → lan → msa-school) and carol's POP3
    download (pop-school → lan → carol-pc) both go through the LAN switch; each bends on
    its own side of it instead of crossing the other there."""
    ax, _ = drawn(SCENARIOS / "same-domain.yaml")
    try:
        arrows = [p for p in ax.patches if (p.get_gid() or "").startswith("hop-")]
        assert len(arrows) == 3
        for a, b in itertools.combinations(arrows, 2):
            assert not Path(line_of(a)).intersects_path(Path(line_of(b)), filled=False), (
                a.get_gid(),
                b.get_gid(),
            )
    finally:
        plt.close(ax.figure)


def test_the_open_relay_and_the_mail_it_took_without_a_login_say_so():
    """open-relay: the bot never logs in, and relay-old passes its spam on — the hop and
    the server say it; sam logs in on 587, and his hop says nothing of the kind."""
    result = shipped(SCENARIOS / "open-relay.yaml")
    ax = plot.route(result, "spam-old")
    try:
        texts = [t.get_text() for t in ax.texts]
        assert any(t.startswith("1 ") and t.endswith("\nno login, accepted anyway") for t in texts)
        assert "relay-old\n(open relay)" in texts
        assert "mail-new" in texts  # Postfix's defaults: no such words
    finally:
        plt.close(ax.figure)
    ax = plot.route(result, "sam")
    try:
        assert not any("no login" in t.get_text() for t in ax.texts)
    finally:
        plt.close(ax.figure)


def test_a_long_link_says_its_latency():
    """transatlantic: the ocean cable's 45 ms one way is what the relay's round trips pay
    for — written on the route, where the hop crosses it; short links stay unlabelled."""
    result = shipped(SCENARIOS / "transatlantic.yaml")
    ax = plot.route(result)
    try:
        shown = [t.get_text() for t in ax.texts if t.get_gid() == "latency" and t.get_visible()]
        assert shown == ["45 ms one way"]
    finally:
        plt.close(ax.figure)


# Every shipped scenario's route.png, drawn once for the collision checks below.
_FIGURES: dict[str, plt.Axes] = {}


@pytest.fixture(scope="module")
def route_png():
    """The route figure `mailsim run --plots` writes first (route.png), drawn, by path."""

    def draw(path):
        if path.stem not in _FIGURES:
            result = shipped(path)
            ax = plot.route(result, telling(result) if result.copies else None)
            ax.figure.canvas.draw()
            _FIGURES[path.stem] = ax
        return _FIGURES[path.stem]

    # one figure a shipped scenario stays open for the module: more than pyplot's 20
    with plt.rc_context({"figure.max_open_warning": 0}):
        yield draw
    for ax in _FIGURES.values():
        plt.close(ax.figure)
    _FIGURES.clear()


def label_boxes(ax) -> dict[Text, Bbox]:
    """Every word drawn on the map (names, hop labels, domains, outages, latencies) and
    the box it covers, its white box included, in pixels."""
    renderer = ax.figure.canvas.get_renderer()
    boxes = {}
    for text in ax.texts:
        if not text.get_visible() or not text.get_text():
            continue
        box = text.get_window_extent(renderer)
        if text.get_bbox_patch() is not None:
            box = Bbox.union([box, text.get_bbox_patch().get_window_extent(renderer)])
        boxes[text] = box
    return boxes


def node_marker_boxes(ax) -> list[tuple[str, Bbox]]:
    """The square each machine's or router's marker covers, in pixels."""
    boxes = []
    for markers in ax.collections:
        if markers.get_label() not in style.ROLE_LABEL.values():
            continue
        half = np.sqrt(markers.get_sizes()[0]) / 2 * ax.figure.dpi / 72
        for x, y in markers.get_offset_transform().transform(markers.get_offsets()):
            boxes.append(
                (markers.get_label(), Bbox.from_extents(x - half, y - half, x + half, y + half))
            )
    return boxes


def overlap(a: Bbox, b: Bbox) -> bool:
    """Two boxes share some area (touching is not covering)."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def gid_of(label: Text) -> str:
    """The gid of the arrow a hop label names: hop-4-7 for '4–7 …'."""
    numbers = label.get_text().split()[0].split("–")
    return f"hop-{numbers[0]}-{numbers[-1]}"


def leaders_of(ax) -> dict[str, np.ndarray]:
    """Each leader line as drawn, in pixels, by the gid of the arrow it leads to."""
    return {
        line.get_gid().removeprefix("leader-"): ax.transData.transform(line.get_xydata())
        for line in ax.lines
        if (line.get_gid() or "").startswith("leader-")
    }


def label_collisions(ax) -> list[str]:
    """Words over words, or over a machine's marker."""
    boxes = label_boxes(ax)
    found = [
        f"{a.get_text()!r} covers {b.get_text()!r}"
        for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2)
        if overlap(box_a, box_b)
    ]
    for text, box in boxes.items():
        found += [
            f"{text.get_text()!r} covers a {role}'s marker"
            for role, marker in node_marker_boxes(ax)
            if overlap(box, marker)
        ]
    return found


def leader_collisions(ax) -> list[str]:
    """Leaders through words other than their own label's, or running along a hop's
    line (more than 10 px within 3 px of it, its last 3 px where it meets its arrow
    aside): a leader must read as a leader, not as a piece of a hop."""
    boxes = label_boxes(ax)
    arrows = {p.get_gid(): line_of(p) for p in ax.patches if (p.get_gid() or "").startswith("hop-")}
    found = []
    for gid, (start, end) in leaders_of(ax).items():
        leader = Path(np.array([start, end]))
        found += [
            f"{gid}'s leader crosses {text.get_text()!r}"
            for text, box in boxes.items()
            if not (text in hop_texts(ax) and gid_of(text) == gid)
            and leader.intersects_bbox(box, filled=False)
        ]
        length = float(np.hypot(*(end - start)))
        points = start + np.outer(np.linspace(0, 1 - 3 / length, int(length)), end - start)
        for other, shaft in arrows.items():
            near = np.min(
                np.hypot(*(points[:, None, :] - dense(shaft)[None]).transpose(2, 0, 1)), axis=1
            )
            if (near <= 3.0).sum() * length / len(points) > 10.0:
                found.append(f"{gid}'s leader runs along {other}")
    return found


def dense(line: np.ndarray, step: float = 1.0) -> np.ndarray:
    """A polyline's points every ``step`` pixels or closer."""
    points = [line[0]]
    for p, q in itertools.pairwise(line):
        n = max(1, int(np.ceil(np.hypot(*(q - p)) / step)))
        points += [p + (q - p) * s / n for s in range(1, n + 1)]
    return np.array(points)


def covered_hops(ax) -> list[str]:
    """Hop labels drawn over their own hop's line: the words hide what they name."""
    boxes = label_boxes(ax)
    arrows = {p.get_gid(): line_of(p) for p in ax.patches if (p.get_gid() or "").startswith("hop-")}
    return [
        f"{label.get_text()!r} covers its own arrow"
        for label in hop_texts(ax)
        if Path(arrows[gid_of(label)]).intersects_bbox(boxes[label], filled=False)
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_no_word_covers_another_or_a_machine(path, route_png):
    assert not label_collisions(route_png(path))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_leader_crosses_no_word_and_runs_along_no_hop(path, route_png):
    assert not leader_collisions(route_png(path))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_hop_label_sits_beside_its_arrow_not_on_it(path, route_png):
    ax = route_png(path)
    assert hop_texts(ax)
    assert not covered_hops(ax)


def test_a_leader_along_a_hop_is_caught():
    """The check above sees a leader drawn on another hop's line (it once hid there)."""
    fig, ax = plt.subplots()
    try:
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        ax.add_patch(FancyArrowPatch(path=Path([(1, 5), (9, 5)]), arrowstyle="-", gid="hop-2-2"))
        ax.plot([2, 8], [5.02, 5.02], gid="leader-hop-1-1")
        fig.canvas.draw()
        assert leader_collisions(ax) == ["hop-1-1's leader runs along hop-2-2"]
    finally:
        plt.close(fig)


def test_a_label_takes_the_place_whose_leader_runs_along_no_line():
    """Another hop's line lies where the leader from a label's first place would run
    (down to its arrow, below the label): it takes the next place, whose leader goes
    straight down to its arrow, crossing nothing."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    try:
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        steps = np.linspace(0, 1, 101)  # dense, as the route draws its hops
        own = FancyArrowPatch(path=Path(np.column_stack([10 * steps, 1 + 0 * steps])),
                              arrowstyle="-", gid="hop-1-1")  # fmt: skip
        ax.add_patch(own)
        text = ax.text(5, 7, "1  label", ha="center", va="center")
        fig.canvas.draw()
        first = labels.leader(text.get_window_extent(), labels.middle(own), 40.0)
        assert first is not None
        x = ax.transData.inverted().transform(first[1])[0]  # where it meets the arrow
        other = FancyArrowPatch(path=Path(np.column_stack([x + 0 * steps, 1 + 4 * steps])),
                                arrowstyle="-", gid="hop-2-2")  # fmt: skip
        ax.add_patch(other)
        item = labels.Movable(text, [(5, 7), (2, 7)], leads=own)
        assert labels.place(ax, [item], lines=[own, other]) == [True]
        assert text.get_position() == (2, 7)
        assert item.line is not None
        box = text.get_window_extent(fig.canvas.get_renderer())
        (x0, y0), (x1, y1) = item.line
        assert x0 == pytest.approx(x1)
        assert box.x0 <= x0 <= box.x1
        assert y0 == pytest.approx(box.y0)
        assert y1 == pytest.approx(ax.transData.transform((2, 1))[1])
    finally:
        plt.close(fig)
