"""The route picture follows the wire: each hop is drawn along the links its packets
crossed (the run's lowest-latency path), hops on one link side by side, and a server
that was down is ringed and says when, on the node itself."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgb

import mailsim
from mailsim import plot
from mailsim.faults import Faults
from mailsim.network import Topology
from mailsim.plot import style
from mailsim.plot.route import LANE, MITER, SHRINK, readable
from mailsim.plot.style import time_unit
from mailsim.plot.topology import positions
from mailsim.scenario import validate
from tests.conftest import SCENARIOS, shipped
from tests.test_figure_route import SHIPPED

VERMILLION = style.OKABE_ITO["vermillion"]


def drawn(name: str, message: str | None = None):
    result = shipped(SCENARIOS / f"{name}.yaml")
    ax = plot.route(result, message)
    ax.figure.canvas.draw()
    return result, ax


def arrows(ax) -> dict[str, np.ndarray]:
    """Each hop's shaft as drawn, in pixels, by gid."""
    shafts = {}
    for patch in ax.patches:
        if (patch.get_gid() or "").startswith("hop-"):
            path = patch.get_transform().transform_path(patch.get_path())
            shafts[patch.get_gid()] = np.asarray(path.to_polygons(closed_only=False)[0])
    return shafts


def pixels(ax, result) -> dict[str, np.ndarray]:
    return {n: ax.transData.transform(p) for n, p in positions(result).items()}


def to_segment(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Distance from ``point`` to segment a–b, and how far along it (0 to 1) it projects."""
    ab = b - a
    t = float(np.clip(np.dot(point - a, ab) / np.dot(ab, ab), 0.0, 1.0))
    return float(np.hypot(*(point - (a + t * ab)))), t


def walk(
    shaft: np.ndarray, links: list[tuple[str, str]], at: dict[str, np.ndarray], tolerance: float
):
    """The links the shaft runs along, in order, and how far the farthest point (or
    midpoint between two points) lies from the nearest link. A point stays with the link of the
    point before while within ``tolerance`` of it (near a node, another link leaving it
    may be nearer), else it goes with its nearest link."""
    points = np.vstack([shaft, (shaft[1:] + shaft[:-1]) / 2])
    order = np.argsort(np.r_[np.arange(len(shaft)), np.arange(len(shaft) - 1) + 0.5])
    visited: list[frozenset[str]] = []
    worst = 0.0
    for point in points[order]:
        gaps = {frozenset((a, b)): to_segment(point, at[a], at[b])[0] for a, b in links}
        nearest = min(gaps, key=gaps.__getitem__)
        worst = max(worst, gaps[nearest])
        if not visited or gaps[visited[-1]] > tolerance:
            visited.append(nearest)
    return visited, worst


def hop_ends(result, message: str, gid: str) -> tuple[str, str, float]:
    """A drawn hop's source, the node it goes to (for a failed DNS look-up, the resolver
    that was asked and never answered), and when it started — of the copy the route draws
    (its first, when the message went to several people)."""
    first = int(gid.split("-")[1])
    recipient = next(c.recipient for c in result.copies if c.message.id == message)
    hops = result.hops[(result.hops["message"] == message)
                       & (result.hops["recipient"] == recipient)].set_index("index")  # fmt: skip
    row = hops.loc[first]
    dst = row["dst"]
    if dst not in result.scenario.nodes:
        (dst,) = [name for name, node in result.scenario.nodes.items() if node.role == "dns"]
    return str(row["src"]), str(dst), float(row["start"])


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_hop_runs_along_the_links_its_packets_crossed(path):
    """Every point of every hop's line lies on a link, at most its lane's offset (times
    MITER at a corner) to the side; the links it runs along, in order, are the path the
    run's network gave that hop when it started; it starts and ends by its two nodes."""
    result = shipped(path)
    message = result.copies[0].message.id
    ax = plot.route(result, message)
    try:
        ax.figure.canvas.draw()
        at = pixels(ax, result)
        links = [tuple(link.between) for link in result.scenario.links]
        shafts = arrows(ax)
        assert shafts
        # The widest a hop can sit from its link: the outer lane when all share one.
        tolerance = MITER * LANE * (len(shafts) - 1) / 2 + 1.0
        network = Topology(result.scenario, result.seed, Faults(result.scenario))
        shrink = SHRINK * ax.figure.dpi / 72
        for gid, shaft in shafts.items():
            src, dst, start = hop_ends(result, message, gid)
            nodes = network.path(src, dst, start).nodes
            visited, worst = walk(shaft, links, at, tolerance)
            assert visited == [frozenset(p) for p in itertools.pairwise(nodes)], gid
            assert worst <= tolerance, (gid, worst)
            assert np.hypot(*(shaft[0] - at[src])) <= shrink + tolerance
            assert np.hypot(*(shaft[-1] - at[dst])) <= shrink + tolerance
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize("message", ["m1", "m2"])
def test_every_hop_past_the_eavesdropper_crosses_her_mark(message):
    """free-vs-paid-provider: eve listens on r-west–r-east. Each hop whose session she
    overheard runs along that whole link, through her ✖ at its middle; the others not."""
    result, ax = drawn("free-vs-paid-provider", message)
    try:
        at = pixels(ax, result)
        west, east = at["r-west"], at["r-east"]
        (spy,) = [c for c in ax.collections if c.get_gid() == "eavesdropper"]
        mark = spy.get_offset_transform().transform(spy.get_offsets())[0]
        overheard = set(result.overheard["session"])
        hops = result.hops[result.hops["message"] == message].set_index("index")
        crossing = 0
        for gid, shaft in arrows(ax).items():
            sessions = hops.loc[int(gid.split("-")[1]) : int(gid.split("-")[2]), "session"]
            on = [t for p in shaft if (g := to_segment(p, west, east))[0] <= LANE for t in [g[1]]]
            if set(sessions) & overheard:
                crossing += 1
                assert min(on) < 0.05, gid  # the whole link
                assert max(on) > 0.95, gid
                assert min(np.hypot(*(shaft - mark).T)) <= LANE, gid  # past the ✖
            else:
                assert not on, gid
        assert crossing == 2  # the submission and the relay both cross the backbone
    finally:
        plt.close(ax.figure)


def test_the_retrieval_goes_by_the_links_not_across_the_house():
    """classroom: bob-pc has one link, to r-home; pop-home one, to mx-home. Hop 4
    (pop-home → bob-pc) goes pop-home → mx-home → r-home → bob-pc, and nothing is drawn
    on the straight line between them, where no link is."""
    result, ax = drawn("classroom")
    try:
        at = pixels(ax, result)
        links = [tuple(link.between) for link in result.scenario.links]
        shaft = arrows(ax)["hop-4-4"]
        visited, worst = walk(shaft, links, at, LANE)
        assert worst <= LANE / 2 + 1.0  # one of two lanes on mx-home–pop-home
        expected = [("pop-home", "mx-home"), ("mx-home", "r-home"), ("r-home", "bob-pc")]
        assert visited == [frozenset(pair) for pair in expected]
        middle = (at["pop-home"] + at["bob-pc"]) / 2
        assert min(np.hypot(*(shaft - middle).T)) > 30
    finally:
        plt.close(ax.figure)


def offset_along(shaft: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The signed distance, to the left of a → b, of the shaft's points along the middle
    of that link (those within three lanes of it: not the hop's other links)."""
    direction = (b - a) / np.hypot(*(b - a))
    left = np.array([-direction[1], direction[0]])
    along = (shaft - a) @ direction / np.hypot(*(b - a))
    side = (shaft - a) @ left
    middle = (along > 0.3) & (along < 0.7) & (np.abs(side) < 3 * LANE)
    return float(np.median(side[middle]))


@pytest.mark.parametrize(
    ("name", "link", "gids"),
    [
        ("classroom", ("mx-home", "pop-home"), ["hop-3-3", "hop-4-4"]),
        ("mx-down", ("backbone", "mx-home"), ["hop-2-6", "hop-7-7", "hop-9-9"]),
    ],
)
def test_hops_on_one_link_run_side_by_side(name, link, gids):
    """Hops that share a link are LANE px apart, centred on it: classroom's LMTP hand-off
    and the retrieval back on mx-home–pop-home; mx-down's refused tries, the delivery and
    the retrieval on backbone–mx-home."""
    result, ax = drawn(name)
    try:
        at = pixels(ax, result)
        shafts = arrows(ax)
        offsets = sorted(offset_along(shafts[g], at[link[0]], at[link[1]]) for g in gids)
        assert np.diff(offsets) == pytest.approx([LANE] * (len(gids) - 1), abs=0.5)
        assert sum(offsets) == pytest.approx(0.0, abs=0.5)
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_no_two_arrowheads_meet(path):
    """Each hop ends at its own point by its node: no two tips closer than a lane."""
    result = shipped(path)
    ax = plot.route(result)
    try:
        ax.figure.canvas.draw()
        tips = [shaft[-1] for shaft in arrows(ax).values()]
        for a, b in itertools.combinations(tips, 2):
            assert np.hypot(*(a - b)) >= LANE - 0.5
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    ("name", "node", "words"),
    [
        ("mx-down", "mx-home", "down {at}–{end}"),
        ("backup-mx", "mx-home", "down {at}–{end}"),
        ("server-crash", "mx-home", "crashed {at}–{end}"),
    ],
)
def test_a_server_that_was_down_is_ringed_and_says_when(name, node, words):
    """The fault's window in the unit of the servers figure's axis (mx-down: 0 to 7200 s
    on a 150-minute run, "0–120 min"), under a vermillion ring round the node."""
    result, ax = drawn(name)
    try:
        (fault,) = [f for f in result.scenario.faults if getattr(f, "node", None) == node]
        scale, unit = time_unit(result.end_time)

        def at(seconds: float) -> str:
            return f"{seconds / scale:.1f}".rstrip("0").rstrip(".")

        if fault.kind == "crash":
            expected = words.format(at=at(fault.at), end=at(fault.at + fault.restart))
        else:
            expected = words.format(at="0", end=at(fault.end))
        expected += f" {unit}"
        (ring,) = [c for c in ax.collections if c.get_gid() == f"down-{node}"]
        centre = ring.get_offset_transform().transform(ring.get_offsets())[0]
        assert list(centre) == pytest.approx(list(pixels(ax, result)[node]))
        assert to_rgb(ring.get_edgecolor()[0]) == pytest.approx(to_rgb(VERMILLION))
        assert ring.get_facecolor().size == 0 or ring.get_facecolor()[0][3] == 0
        (text,) = [t for t in ax.texts if t.get_gid() == f"down-{node}"]
        assert text.get_text() == expected
        assert to_rgb(text.get_color()) == pytest.approx(readable(VERMILLION))
        renderer = ax.figure.canvas.get_renderer()
        box = text.get_window_extent(renderer)
        assert box.y1 < centre[1]  # under the node
        assert box.x0 < centre[0] < box.x1
        assert "server down (when: below it)" in [t.get_text() for t in ax.get_legend().texts]
    finally:
        plt.close(ax.figure)


def test_mx_down_says_two_hours():
    _, ax = drawn("mx-down")
    try:
        assert [t.get_text() for t in ax.texts if t.get_gid() == "down-mx-home"] == [
            "down 0–120 min"  # as the servers figure and the timeline say it
        ]
    finally:
        plt.close(ax.figure)


def test_no_ring_without_a_fault_on_a_server():
    _, ax = drawn("classroom")
    try:
        assert not [c for c in ax.collections if (c.get_gid() or "").startswith("down-")]
        assert "server down (when: below it)" not in [t.get_text() for t in ax.get_legend().texts]
    finally:
        plt.close(ax.figure)


def classroom_with(links: list[dict], nodes: dict, faults: list[dict]):
    data = shipped(SCENARIOS / "classroom.yaml").scenario.model_dump(
        by_alias=True, exclude_none=True
    )
    data["nodes"].update(nodes)
    data["links"] += links
    data["faults"] = faults
    return mailsim.run(validate(data), seed=0)


BACKBONE_DOWN = {"kind": "link-down", "between": ["r-school", "r-home"]}
DETOUR = (
    [{"between": ["r-school", "r-detour"], "latency": "50ms"},
     {"between": ["r-detour", "mx-home"], "latency": "50ms"}],
    {"r-detour": {"role": "router", "pos": [3, -1]}},
)  # fmt: skip


@pytest.mark.parametrize(
    ("faults", "via"),
    [
        # The backbone down all along: the relay takes the slower detour (100 ms one way
        # against 46 ms), the way the run sent it.
        ([BACKBONE_DOWN], ["msa-school", "r-school", "r-detour", "mx-home"]),
        # With every link up, the backbone: the detour is drawn but not taken.
        ([], ["msa-school", "r-school", "r-home", "mx-home"]),
    ],
)
def test_a_hop_goes_the_way_the_network_sent_it_then(faults, via):
    result = classroom_with(*DETOUR, faults)
    ax = plot.route(result)
    try:
        ax.figure.canvas.draw()
        at = pixels(ax, result)
        links = [tuple(link.between) for link in result.scenario.links]
        (relay,) = [g for g in arrows(ax) if g.startswith("hop-2-")]
        visited, worst = walk(arrows(ax)[relay], links, at, MITER * LANE)
        assert visited == [frozenset(pair) for pair in itertools.pairwise(via)]
        assert worst <= LANE
    finally:
        plt.close(ax.figure)


def test_a_hop_that_found_no_path_is_drawn_where_it_would_have_gone():
    """The backbone down for 15 minutes, no detour: the relay's tries time out (no path
    then); their arrow runs over the backbone, the way they would have gone, as the
    delivery after it does (r-home raised off the line msa-school–mx-home, so that a
    straight arrow between them would run along no link)."""
    down = {**BACKBONE_DOWN, "end": "15min"}
    result = classroom_with([], {"r-home": {"role": "router", "pos": [3, 0.5]}}, [down])
    ax = plot.route(result)
    try:
        ax.figure.canvas.draw()
        at = pixels(ax, result)
        links = [tuple(link.between) for link in result.scenario.links]
        shafts = arrows(ax)
        relay = result.hops.query("src == 'msa-school' and dst == 'mx-home'")
        tries, delivery = relay["index"].iloc[:-1], relay["index"].iloc[-1]
        assert set(relay["code"].iloc[:-1]) == {"4.4.1"}
        assert len(tries) > 1  # several tries, one arrow
        backbone = ["msa-school", "r-school", "r-home", "mx-home"]
        for gid in [f"hop-{tries.iloc[0]}-{tries.iloc[-1]}", f"hop-{delivery}-{delivery}"]:
            visited, _ = walk(shafts[gid], links, at, MITER * LANE)
            assert visited == [frozenset(pair) for pair in itertools.pairwise(backbone)], gid
    finally:
        plt.close(ax.figure)


def test_a_try_that_found_no_mx_ends_at_the_resolver_that_never_answered():
    """dns-outage: tries 2–4 never connected to anything: drawn into mx-home they would
    say the MX was reached and refused. They end at the resolver, and say what was asked."""
    result = shipped(SCENARIOS / "dns-outage.yaml")
    ax = plot.route(result, "m1")
    try:
        ax.figure.canvas.draw()
        at = pixels(ax, result)
        shaft = arrows(ax)["hop-2-4"]
        shrink = SHRINK * ax.figure.dpi / 72
        assert np.hypot(*(shaft[-1] - at["dns"])) <= shrink + LANE
        labels = [t.get_text() for t in ax.texts if t.get_text().startswith("2–4")]
        # Over: from the first try's start to the last one's end; again after: from that
        # end: 10.1 s + 19 min 43 s + 19 min 50 s is the next try's start, 2,383.6 s.
        assert labels == [
            "2–4  ✗ 4.4.3 no answer: where is home.example's MX?\n"
            "tried 3× over 19 min 43 s, again after 19 min 50 s"
        ]
    finally:
        plt.close(ax.figure)
