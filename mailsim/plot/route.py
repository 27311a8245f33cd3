"""One message's route over the network: the topology, and its mail hops as numbered
arrows along the links their packets crossed, labelled beside them (never on them, on
another hop's line, a name or a machine; far off, with a leader line that crosses no
words and runs along no line) with their duration and TLS (a padlock, shut or open);
failed tries as wide as a hop in their own lane, dotted in the
warning colour, with a ✗ where they stopped and how long the sender waited; a server
that was down ringed; eavesdroppers and men in the middle marked on their links."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath
from matplotlib.transforms import ScaledTranslation

from mailsim.faults import Faults
from mailsim.network import NoRoute, Topology
from mailsim.plot import labels, style
from mailsim.plot.topology import domain_of, positions
from mailsim.result import Result
from mailsim.scenario import CrashFault, DownFault, HangFault, Scenario
from mailsim.units import format_duration

# Every word is read from the back of a classroom, projected at 1280×720 (dpi 100):
# at least 14 px high (10.08 pt), and at least 4.5:1 against the white it sits on.
TEXT = 11.0  # points: 15.3 px — node names, hop labels, domains, the legend
SMALL = 10.5  # points: 14.6 px — routers, kept quieter by their grey, not their size
CONTRAST = 4.5  # WCAG 2 AA for body text
DOMAIN_FILL = "#f2f2f2"  # a domain's box: names and routers on it still read (≥ 5:1)
DOMAIN_PAD = 0.25  # data units around a domain's nodes
KEY_WIDTH_PX = 290  # the key beside the network, at 11 pt
KEY_ROW_PX = 35  # one row of the key below it
TITLE_PX = 60  # two lines of title
LEADER = 40.0  # pixels: a hop label farther than this from its arrow gets a line to it
LANE = 8.0  # pixels between hops side by side on one link (a 2.5 pt line is 3.5 px)
MITER = 2.0  # a hop's corner lies at most this many times its lane's offset from the node
SHRINK = 14.0  # points: a hop starts and ends this far from a node's centre, off its marker
JOG = 1.5  # a change of lane at a node: a slant this many times the lanes' gap long
STEP = 8.0  # pixels between the points of a hop's line
# Pixels between a hop label's box and its arrow: just beside it first, then farther out
# (past LEADER with a line back to it), where other words and arrows leave no room.
GAPS = (4.0, 12.0, 24.0, 36.0, 60.0, 90.0, 130.0, 180.0)
# Where along a hop's longest link its label goes (fractions of it), the middle first;
# along its other links, fewer places: a label by the longest link reads best.
ALONG = (0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85)
ALONG_SHORT = (0.5, 0.3, 0.7, 0.15, 0.85)
OUTAGE = style.OKABE_ITO["vermillion"]  # the ring round a server that was down
ATTACKER = style.OKABE_ITO["vermillion"]  # a man in the middle's mark on its link
LINES = 3.0  # WCAG 2.1's 3:1 for graphics: a failed try's line against a domain's box
HOP_WIDTH = 2.5  # points: every hop's line, delivered or failed
FAR = 0.02  # seconds: a link this long (one way) or longer has its latency written on it
RING = 1100  # points²: the ring's area, round a 380–420 pt² node marker


def route(
    result: Result,
    message: str | None = None,
    *,
    recipient: str | None = None,
    ax: Axes | None = None,
    key: bool = True,
    words: bool = True,
    outcome: bool = True,
) -> Axes:
    """Draw the network and the route of ``message`` (default: the first one). A panel
    too small for all of it (the step viewer's, whose ladder and text say each exchange)
    may leave out the ``key`` and the hops' ``words``; a lesson that asks how long the
    message took leaves its ``outcome`` out of the title."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12.8, 7.2), layout="constrained")
    scenario = result.scenario
    pos = positions(result)
    named: list[str] = []
    router_labels: list[labels.Movable] = []
    link_labels: list[labels.Movable] = []  # placed last: words of the network, not the route
    _domains(ax, result, pos)
    for link in scenario.links:
        (x0, y0), (x1, y1) = pos[link.between[0]], pos[link.between[1]]
        ax.plot([x0, x1], [y0, y1], color="#cccccc", lw=1.5, zorder=1, gid="link")
        if float(link.latency) >= FAR:  # a long link: what a round trip over it costs
            text = ax.annotate(f"{float(link.latency) * 1000:g} ms one way",
                               ((x0 + x1) / 2, (y0 + y1) / 2), xytext=(0, -9),
                               textcoords="offset points", ha="center", va="top",
                               fontsize=SMALL, color="#666666", zorder=2, gid="latency")  # fmt: skip
            spots = [((0, -9), "center", "top"), ((0, 9), "center", "bottom"),
                     ((0, -30), "center", "top"), ((0, 30), "center", "bottom")]  # fmt: skip
            link_labels.append(labels.Movable(text, spots))
    for role, (marker, colour, size) in style.ROLE.items():
        names = [n for n, node in scenario.nodes.items() if node.role == role]
        if not names:
            continue
        ax.scatter(
            [pos[n][0] for n in names], [pos[n][1] for n in names], s=size, marker=marker,
            color=colour, edgecolor="white", linewidth=1.5, zorder=3,
            label=_role_label(scenario, role),
        )  # fmt: skip
        if role != "router":
            named += names
        else:
            for n in names:  # routers: small, grey, out of the way: above, or off a hop's line
                text = ax.annotate(n, pos[n], xytext=(0, 7), textcoords="offset points",
                                   ha="center", va="bottom", fontsize=SMALL, color="#666666",
                                   zorder=2, gid="router")  # fmt: skip
                spots = [((0, 7), "center", "bottom"), ((0, -7), "center", "top"),
                         ((8, 0), "left", "center"), ((-8, 0), "right", "center")]  # fmt: skip
                link_labels.append(labels.Movable(text, spots))
    spies = _eavesdroppers(ax, scenario, pos)
    unit = style.time_unit(max(result.end_time, 1.0))  # as the servers figure's axis
    rings = _outages(ax, scenario, pos, unit)
    title = "Network"
    journey: list[Hop] = []
    if result.copies:
        copy = result.copy(message or result.copies[0].message.id, recipient)
        journey = _journey(result, copy.message.id, copy.recipient, pos)
        title = _title(result, copy.message.id, copy.recipient, outcome)
    # A node's name goes below it, or where no hop arrow crosses it: above, right, left.
    name_labels = []
    for n in named:
        # A server that relays for anyone says so under its name: the open relay's point.
        name = f"{n}\n(open relay)" if getattr(scenario.nodes[n], "open_relay", False) else n
        text = ax.annotate(name, pos[n], xytext=(0, -18), textcoords="offset points",
                           ha="center", va="top", fontsize=TEXT, zorder=4)  # fmt: skip
        spots = [((0, -18), "center", "top"), ((0, 18), "center", "bottom"),
                 ((16, 0), "left", "center"), ((-16, 0), "right", "center")]  # fmt: skip
        name_labels.append(labels.Movable(text, spots))
    attackers = _attackers(ax, scenario, pos, journey, unit)
    handles = _key(ax, journey, rings)
    if key:
        _legend(ax, handles, pos)
    ax.set_title(title, fontsize=12, loc="left")
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.08)
    ax.set_axis_off()
    _freeze(ax)
    hop_labels: list[labels.Movable] = []
    _draw_hops(ax, journey, pos, hop_labels)
    arrows = [item.leads for item in hop_labels if item.leads]  # names keep off them
    if not words:
        for item in hop_labels:
            item.text.remove()
        journey, hop_labels = [], []
    domains = [t for t in ax.texts if t.get_gid() == "domain"]
    nodes = [
        c
        for c in ax.collections
        if c.get_label() in (*style.ROLE_LABEL.values(), style.IMAP_MAILBOX)
        or (c.get_gid() or "").startswith("down-")
    ]
    marks = [c for c in ax.collections if c.get_gid() in ("eavesdropper", "attacker")]
    movable = [*router_labels, *name_labels, *rings, *attackers,
               *sorted(hop_labels, key=_room), *spies, *link_labels]  # fmt: skip
    links = [line for line in ax.lines if line.get_gid() == "link"]
    free = labels.place(ax, movable, domains, arrows, [*nodes, *marks], links)
    for item, placed in zip(movable[len(movable) - len(link_labels) :],
                            free[len(movable) - len(link_labels) :], strict=True):  # fmt: skip
        if not placed:  # a link's latency is a hint: no room, no words
            item.text.set_visible(False)
    _leaders(ax, hop_labels)
    _padlocks(ax, journey, hop_labels)
    return ax


def _not_its_domains(
    ax: Axes, hop: Hop, pos: dict[str, tuple[float, float]]
) -> list[FancyBboxPatch]:
    """The domain boxes that hold neither end of a hop: its label there would seem to
    be about that domain."""
    ends = [pos[hop.nodes[0]], pos[hop.nodes[-1]]]
    return [
        box
        for box in ax.patches
        if isinstance(box, FancyBboxPatch)
        and (box.get_gid() or "").startswith("domain-")
        and not any(_holds(_extent(box), end) for end in ends)
    ]


def _extent(box: FancyBboxPatch) -> Box:
    return (box.get_x(), box.get_y(), box.get_x() + box.get_width(),
            box.get_y() + box.get_height())  # fmt: skip


def _room(item: labels.Movable) -> float:
    """How much room a hop label has beside its arrow: the length of the arrow's middle
    part, in pixels. The shortest go first, while there is room by them; a long arrow
    finds a free place somewhere along it."""
    shaft = labels.middle(item.leads) if item.leads is not None else np.zeros((1, 2))
    return float(np.hypot(*np.diff(shaft, axis=0).T).sum())


def _leaders(ax: Axes, hop_labels: list[labels.Movable]) -> None:
    """A thin line from a hop label that had to move far from its arrow (no room beside
    it) back to the arrow's middle part, so that no one reads it as another hop's: the
    one its placement chose, crossing no label and running along no line; drawn under
    markers and names, so that it never hides a word."""
    to_data = ax.transData.inverted()
    for item in hop_labels:
        if item.line is None or item.leads is None:
            continue
        (x0, y0), (x1, y1) = to_data.transform(np.array(item.line))
        ax.add_artist(Line2D([x0, x1], [y0, y1], color=item.text.get_color(), lw=1.0,
                             zorder=2.5, gid=f"leader-{item.leads.get_gid()}"))  # fmt: skip


def _legend(ax: Axes, handles: list[Any], pos: dict[str, tuple[float, float]]) -> None:
    """The key beside a network taller than the page's shape, below a wide one: where it
    leaves the network the larger scale (its words are as large either way)."""
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    width, height = max(max(xs) - min(xs), 1e-9), max(max(ys) - min(ys), 1e-9)
    page_w, page_h = ax.figure.get_size_inches() * ax.figure.dpi
    room = page_h - TITLE_PX
    beside = min((page_w - KEY_WIDTH_PX) / width, room / height)
    below = min(page_w / width, (room - KEY_ROW_PX * _rows(len(handles))) / height)
    common = {"fontsize": TEXT, "frameon": False, "markerscale": 0.6, "borderaxespad": 0.0}
    if beside >= below:
        key = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                        labelspacing=1.0, **common)  # fmt: skip
    else:
        key = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01),
                        ncols=-(-len(handles) // _rows(len(handles))), columnspacing=1.5,
                        **common)  # fmt: skip
    for handle, text in zip(key.legend_handles, key.get_texts(), strict=True):
        if text.get_text() == style.ROLE_LABEL["router"] and isinstance(handle, PathCollection):
            handle.set_sizes([250])  # the map's small dot, large enough to see in the key
        elif text.get_text() in MARKS and isinstance(handle, PathCollection):
            handle.set_sizes([300])  # a listener's or an attacker's ✖, as on the map


RING_KEY = "server down (when: below it)"
MARKS = ("eavesdropper", "man in the middle")


def _key(ax: Axes, journey: list[Hop], rings: list[labels.Movable]) -> list[Any]:
    """The key: the machines, listeners and attackers on the map (each once), then only
    the kinds of hop this route draws, each as it is drawn (its padlock, its ✗)."""
    handles, seen = [], set()
    for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
        if name not in seen and name != RING_KEY:
            seen.add(name)
            handles.append(handle)
    kinds = {_kind(hop) for hop in journey}
    ok = style.OUTCOME["ok"]
    looks = {
        "tls": {"color": ok, "ls": "-", "marker": LOCKED},
        "plain": {"color": ok, "ls": "--", "marker": UNLOCKED},
        "temporary": {"color": FAILED["temporary"], "ls": ":", "marker": "x"},
        "permanent": {"color": FAILED["permanent"], "ls": ":", "marker": "x"},
    }
    for kind, look in looks.items():
        if kind in kinds:
            padlock = kind in ("tls", "plain")
            handles.append(Line2D([], [], lw=HOP_WIDTH, markersize=22 if padlock else 17,
                                  markeredgewidth=0 if padlock else 3.0,
                                  markerfacecolor=readable(look["color"]) if padlock else None,
                                  label=KINDS[kind], **look))  # fmt: skip
    if rings:
        handles.append(Line2D([], [], marker="o", ls="", markersize=20, markerfacecolor="none",
                              markeredgecolor=OUTAGE, markeredgewidth=2.5, label=RING_KEY))  # fmt: skip
    return handles


def _rows(entries: int) -> int:
    """Rows of a key laid out below the network: four entries to a row."""
    return -(-entries // 4)


def _eavesdroppers(
    ax: Axes, scenario: Any, pos: dict[str, tuple[float, float]]
) -> list[labels.Movable]:
    """A mark on each tapped link, with who listens there (labels placed later)."""
    placed = []
    for spy in scenario.eavesdroppers:
        (x0, y0), (x1, y1) = pos[spy.between[0]], pos[spy.between[1]]
        middle = ((x0 + x1) / 2, (y0 + y1) / 2)
        ax.scatter(*middle, s=220, marker="X", color=style.OKABE_ITO["black"],
                   edgecolor="white", linewidth=1.2, zorder=5, label="eavesdropper",
                   gid="eavesdropper")  # fmt: skip
        text = ax.annotate(f"{spy.name} listens", middle, xytext=(0, 12),
                           textcoords="offset points", ha="center", va="bottom", fontsize=TEXT,
                           color=style.OKABE_ITO["black"], zorder=5)  # fmt: skip
        spots = [((0, 12), "center", "bottom"), ((0, -12), "center", "top"),
                 ((12, 0), "left", "center"), ((-12, 0), "right", "center")]  # fmt: skip
        placed.append(labels.Movable(text, spots))
    return placed


def _attackers(
    ax: Axes,
    scenario: Any,
    pos: dict[str, tuple[float, float]],
    journey: list[Hop],
    unit: tuple[float, str],
) -> list[labels.Movable]:
    """A mark on each link where a man in the middle strips STARTTLS, and what it did
    to this route's hops that crossed it while it was there (labels placed later)."""
    placed = []
    for fault in scenario.faults:
        if getattr(fault, "kind", None) != "strip-starttls":
            continue
        a, b = fault.between
        if a not in pos or b not in pos:
            continue
        (x0, y0), (x1, y1) = pos[a], pos[b]
        middle = ((x0 + x1) / 2, (y0 + y1) / 2)
        ax.scatter(*middle, s=260, marker="X", color=ATTACKER, edgecolor="white",
                   linewidth=1.2, zorder=5, label="man in the middle", gid="attacker")  # fmt: skip
        crossed = [
            hop
            for hop in journey
            if frozenset((a, b)) in {frozenset(link) for link in hop.links}
            and any(fault.active(float(h.start)) for h in hop.group)
        ]
        # What it did to this route: a hop that only may use TLS went on in plaintext
        # (one that requires TLS failed: its own label says so).
        plain = [h for h in crossed if h.outcome == "ok" and not h.group[0].tls]
        words = [f"man in the middle, {_span(fault.start, fault.end, unit)}:", "strips STARTTLS"]
        if plain:
            words[1] += f": hop {_numbers(plain)} goes in plaintext"
        text = ax.annotate("\n".join(words), middle, xytext=(0, 14),
                           textcoords="offset points", ha="center", va="bottom", fontsize=TEXT,
                           color=readable(ATTACKER), zorder=5, gid="attacker",
                           bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})  # fmt: skip
        spots = [((0, 14), "center", "bottom"), ((0, -14), "center", "top"),
                 ((0, 40), "center", "bottom"), ((0, -40), "center", "top"),
                 ((0, 70), "center", "bottom"), ((0, -70), "center", "top"),
                 ((30, 40), "left", "bottom"), ((30, -40), "left", "top"),
                 ((-30, 40), "right", "bottom"), ((-30, -40), "right", "top"),
                 ((0, 100), "center", "bottom"), ((0, -100), "center", "top")]  # fmt: skip
        placed.append(labels.Movable(text, spots))
    return placed


def _numbers(hops: list[Hop]) -> str:
    """The hops' numbers as their labels give them: "2", "2–5", "2, 6"."""
    return ", ".join(hop.label.split()[0] for hop in hops)


def _domains(ax: Axes, result: Result, pos: dict[str, tuple[float, float]]) -> None:
    """A light box around the nodes of each mail domain, labelled with its name. A box
    takes in routers (a domain's own network) but no machine of anyone else, so a domain
    whose machines sit apart (a firm's desks, its provider's server across the internet)
    gets one box for each place."""
    groups: dict[str, list[str]] = {}
    for name in result.scenario.nodes:
        domain = _domain(result.scenario, name)
        if domain:
            groups.setdefault(domain, []).append(name)
    for domain, names in sorted(groups.items()):
        others = [
            pos[n]
            for n, node in result.scenario.nodes.items()
            if n not in names and node.role != "router"
        ]
        for k, (x0, y0, x1, y1) in enumerate(_places(names, others, pos)):
            box = FancyBboxPatch(
                (x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.02,rounding_size=0.15",
                facecolor=DOMAIN_FILL, edgecolor="#bbbbbb", lw=1, zorder=0,
                gid=f"domain-{domain}-{k}",
            )  # fmt: skip
            ax.add_patch(box)
            ax.text(x0 + 0.05, y1 + 0.04, domain, fontsize=TEXT, color="#555555",
                    va="bottom", zorder=0, gid="domain")  # fmt: skip


def _domain(scenario: Any, name: str) -> str | None:
    """The node's mail domain, or none for a machine that the users of several domains
    share and that no domain names (tls-versions' one mailbox server for four colleges)."""
    node = scenario.nodes[name]
    host = (node.host or "").lower()
    named = (
        getattr(node, "domains", None)
        or getattr(node, "relay_domains", None)
        or any(host == d.lower() or host.endswith("." + d.lower()) for d in scenario.dns.zones)
    )
    users = {
        address.rsplit("@", 1)[-1].lower()
        for address, user in scenario.users.items()
        if name in (user.client, user.mailbox)
    }
    if not named and len(users) > 1:
        return None
    return domain_of(scenario, name)


Box = tuple[float, float, float, float]


def _places(
    names: list[str], others: list[tuple[float, float]], pos: dict[str, tuple[float, float]]
) -> list[Box]:
    """The boxes (x0, y0, x1, y1) of one domain: its nodes, joined while the box around
    them holds none of the ``others``."""
    boxes = [_around([pos[n]]) for n in names]
    joined = True
    while joined:
        joined = False
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                union = _union(boxes[a], boxes[b])
                if not any(_holds(union, point) for point in others):
                    boxes[a] = union
                    del boxes[b]
                    joined = True
                    break
            if joined:
                break
    return sorted(boxes)


def _around(points: list[tuple[float, float]]) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs) - DOMAIN_PAD, min(ys) - DOMAIN_PAD, max(xs) + DOMAIN_PAD, max(ys) + DOMAIN_PAD)


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _holds(box: Box, point: tuple[float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@dataclass
class Hop:
    """One arrow of the route: a hop, or the tries of a hop that failed alike, with the
    nodes its packets crossed."""

    group: list[Any]
    dst: str
    outcome: str
    nodes: tuple[str, ...]  # the network path, src first
    label: str

    @property
    def gid(self) -> str:
        return f"hop-{self.group[0].index}-{self.group[-1].index}"

    @property
    def links(self) -> list[tuple[str, str]]:
        return list(itertools.pairwise(self.nodes))


# What each kind of hop is called in the key; its arrows carry the same label.
KINDS = {
    "tls": "hop, encrypted (TLS)",
    "plain": "hop, plaintext",
    "temporary": "failed attempt (4xx, timeout)",
    "permanent": "refused (5xx)",
}


def _kind(hop: Hop) -> str:
    if hop.outcome != "ok":
        return hop.outcome
    return "tls" if hop.group[0].tls else "plain"


def _padlock(closed: bool) -> MplPath:
    """A padlock for a marker (DejaVu Sans has no 🔒): a body and a shackle, shut for a
    hop under TLS, open (lifted, its left leg out of the body) for plaintext."""
    body = [(-0.5, -0.6), (0.5, -0.6), (0.5, 0.05), (-0.5, 0.05), (-0.5, -0.6)]
    outer, inner, lift = 0.36, 0.2, 0.0 if closed else 0.22
    top = 0.3 + lift  # the arcs' centre
    legs = (0.05, 0.05) if closed else (0.05 + lift + 0.08, 0.05)  # (left, right) foot
    turn = np.linspace(0.0, np.pi, 16)
    shackle = [(outer, legs[1]), (outer, top)]
    shackle += [(outer * np.cos(a), top + outer * np.sin(a)) for a in turn]
    shackle += [(-outer, legs[0]), (-inner, legs[0])]
    shackle += [(-inner * np.cos(a), top + inner * np.sin(a)) for a in turn]
    shackle += [(inner, legs[1]), (outer, legs[1])]
    # A marker is scaled by its farthest point: both locks reach as far (a point drawn as
    # nothing), so that the open one is no smaller than the shut one.
    reach = MplPath([(0.0, -0.9), (0.0, 0.9)], [MplPath.MOVETO, MplPath.MOVETO])
    return MplPath.make_compound_path(
        MplPath(body, closed=True), MplPath(shackle, closed=True), reach
    )


LOCKED, UNLOCKED = _padlock(True), _padlock(False)
LOCK_ROOM = "     "  # a hop label's gap after its number, where its padlock is drawn
LOCK_PT = 16.0  # points: a padlock's height, the words' capitals and a little more


def _journey(
    result: Result, message: str, recipient: str, pos: dict[str, tuple[float, float]]
) -> list[Hop]:
    """The copy's hops as arrows to draw, each with its path over the links."""
    hops = result.hops
    mine = hops[
        (hops["message"] == message) & (hops["recipient"] == recipient) & ~hops["duplicate"]
    ]
    heard = _heard(result)
    wire = Wire(result)
    journey = []
    for group in _grouped(mine):
        hop, last = group[0], group[-1]
        # A try whose DNS lookup failed is a hop to the domain (no server was found):
        # drawn to the resolver that was asked and never answered — an arrow into the
        # domain's MX would say the server was reached and refused.
        looked_up = hop.dst not in pos
        dst = _resolver_of(result, str(hop.src)) if looked_up else str(hop.dst)
        if dst is None or hop.src == dst or hop.src not in pos:
            continue
        outcome = style.outcome_of(str(hop.code))
        numbers = f"{hop.index}" if len(group) == 1 else f"{hop.index}–{last.index}"
        if outcome == "ok":
            tls = f" · TLS {hop.tls}" if hop.tls else " · plaintext"
            if hop.protocol == "https":  # a browser's hop: its protocol is news
                tls = f" · HTTPS, TLS {hop.tls}"
            label = f"{numbers}{LOCK_ROOM}{format_duration(hop.end - hop.start)}{tls}"
            sender = result.scenario.nodes.get(str(hop.src))
            if sender is not None and sender.role == "client" and hop.protocol != "pop3":
                # Who may send through a server: mail taken without a login (an open
                # relay, or a server that trusts its network) says so.
                label += "" if hop.auth else "\nno login, accepted anyway"
        else:
            why = f"no answer: where is {hop.dst}'s MX?" if looked_up else gist(str(hop.outcome))
            label = (
                f"{numbers}  ✗ {hop.code} {why}".rstrip()
                + "\n"
                + _again(mine, group, result.scenario.nodes)
            )
        listeners = _listened(heard, [int(h.session) for h in group])
        if listeners:
            label += "\n" + listeners
        nodes = wire.path(str(hop.src), dst, float(hop.start))
        journey.append(Hop(group, dst, outcome, nodes, label))
    return journey


class Wire:
    """The paths the simulation's packets took: lowest latency over the links up at the
    time (the run's own Topology); a hop with no path then (its link was down) is drawn
    along the path it would have taken with every link up."""

    def __init__(self, result: Result) -> None:
        self._network = Topology(result.scenario, result.seed, Faults(result.scenario))

    def path(self, src: str, dst: str, t: float) -> tuple[str, ...]:
        for at in (t, None):  # at no time: no link is down
            try:
                return self._network.path(src, dst, at).nodes
            except NoRoute:
                continue
        return (src, dst)  # no path at all: straight across, as before


def _lanes(journey: list[Hop], pos: dict[str, tuple[float, float]]) -> list[list[float]]:
    """For each hop, on each link of its path, its lane: a signed count of LANE widths
    to the left of the link as its first hop crosses it. The hops on a link take the
    lanes side by side in journey order, centred on the link; hops that run together
    over several links keep their order on each, so they do not cross at the corners.
    A hop alone on its links through a machine that another hop also goes through keeps
    a lane's width to the inside of its turn there: two routes that meet at a router
    only touch it, they do not cross on it."""
    users: dict[frozenset[str], list[int]] = {}
    for k, hop in enumerate(journey):
        for link in hop.links:
            users.setdefault(frozenset(link), []).append(k)
    through: dict[str, int] = {}
    for hop in journey:
        for node in set(hop.nodes[1:-1]):
            through[node] = through.get(node, 0) + 1
    first = {link: journey[ks[0]] for link, ks in users.items()}
    lanes = []
    for k, hop in enumerate(journey):
        row = []
        for a, b in hop.links:
            on = users[frozenset((a, b))]
            lane = on.index(k) - (len(on) - 1) / 2
            # The same side of the link whichever way this hop crosses it.
            forward = (a, b) in first[frozenset((a, b))].links
            row.append(lane if forward else -lane)
        for i in range(1, len(hop.nodes) - 1):
            links = [frozenset(hop.links[i - 1]), frozenset(hop.links[i])]
            if through[hop.nodes[i]] < 2 or any(len(users[link]) > 1 for link in links):
                continue
            (xa, ya), (xb, yb), (xc, yc) = (pos[n] for n in hop.nodes[i - 1 : i + 2])
            turn = (xb - xa) * (yc - yb) - (yb - ya) * (xc - xb)  # > 0: a left turn
            if abs(turn) > 1e-9:
                row[i - 1] = row[i] = 1.5 if turn > 0 else -1.5
        lanes.append(row)
    return lanes


def _polyline(
    ax: Axes, hop: Hop, lanes: list[float], pos: dict[str, tuple[float, float]]
) -> np.ndarray:
    """The hop's line in data coordinates: straight along each link, LANE pixels per lane
    to its side, joined at a corner where the lines meet (or, for a sharp turn or a change
    of lane, by a short step at the node), starting and ending SHRINK points from the
    nodes' centres so that markers stay visible; dense, so that a label's leader finds
    the middle of a long link."""
    points = ax.transData.transform([pos[n] for n in hop.nodes])
    shrink = SHRINK * ax.figure.dpi / 72
    lines = []  # each link's offset line: (start, end, direction)
    for (p, q), lane in zip(itertools.pairwise(points), lanes, strict=True):
        direction = (q - p) / max(float(np.hypot(*(q - p))), 1e-9)
        left = np.array([-direction[1], direction[0]])
        offset = left * lane * LANE
        lines.append((p + offset, q + offset, direction))
    corners = [lines[0][0] + lines[0][2] * shrink]
    for k in range(1, len(lines)):
        (_, end, d1), (start, _, d2) = lines[k - 1], lines[k]
        reach = MITER * LANE * max(abs(lanes[k - 1]), abs(lanes[k]))
        corners += _corner(end, d1, start, d2, points[k], reach)
    corners.append(lines[-1][1] - lines[-1][2] * shrink)
    dense = [corners[0]]
    for p, q in itertools.pairwise(corners):
        steps = max(1, int(np.ceil(np.hypot(*(q - p)) / STEP)))
        dense += [p + (q - p) * s / steps for s in range(1, steps + 1)]
    return ax.transData.inverted().transform(np.array(dense))


def _corner(
    end: np.ndarray,
    d1: np.ndarray,
    start: np.ndarray,
    d2: np.ndarray,
    node: np.ndarray,
    reach: float,
) -> list[np.ndarray]:
    """Where one link's offset line turns into the next's at ``node`` (pixels): their
    crossing, if it is at most ``reach`` from the node (MITER times the larger offset);
    else both lines' ends, joined by a slant where the way goes on almost straight."""
    cross = d1[0] * d2[1] - d1[1] * d2[0]
    if abs(cross) > 1e-6:
        # end + s·d1 = start + u·d2, solved for s.
        gap = start - end
        s = (gap[0] * d2[1] - gap[1] * d2[0]) / cross
        meet = end + s * d1
        if np.hypot(*(meet - node)) <= reach + 1e-9:
            return [meet]
    if np.allclose(end, start):
        return [end]
    if float(np.dot(d1, d2)) > 0:  # on almost straight: a slanted step from lane to lane
        jog = JOG * float(np.hypot(*(end - start)))
        return [end - d1 * jog, start + d2 * jog]
    return [end, start]


def _title(result: Result, message: str, recipient: str, outcome: bool = True) -> str:
    """Whose message, to whom, and what became of it (and in which scenario)."""
    copy = result.copy(message, recipient)
    status = copy.status
    if copy.retrieved_at is not None:
        status += f" after {format_duration(copy.retrieved_at - copy.submitted_at)}"
    sender = copy.message.sender or "the mail system (a bounce)"
    title = f"Route of message {message!r}: {sender} → {recipient}"
    title += f" — {status}" if outcome else ""
    scenario = f"(scenario {result.scenario.name!r})"
    # One line where it fits the figure's width at 12 pt, else the scenario below.
    return f"{title} {scenario}" if len(title) + len(scenario) < 110 else f"{title}\n{scenario}"


def _freeze(ax: Axes) -> None:
    """Lay the figure out and keep the axes' limits as they are then: hops are drawn
    side by side in pixels, which must not change under them."""
    ax.figure.draw_without_rendering()  # type: ignore[union-attr]
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    # With the limits fixed, a later layout (a panel's title wrapped) keeps the aspect by
    # the box: "datalim" could only ignore the limits, and says so in a warning.
    ax.set_aspect("equal", adjustable="box")


def _outages(
    ax: Axes, scenario: Any, pos: dict[str, tuple[float, float]], unit: tuple[float, str]
) -> list[labels.Movable]:
    """A vermillion ring round each server that a fault takes down, crashes or hangs,
    and when, under it (labels placed later): why the hops to it failed."""
    spans: dict[str, list[str]] = {}
    for fault in scenario.faults:
        if isinstance(fault, DownFault | HangFault):
            verb = "down" if isinstance(fault, DownFault) else "hangs"
            spans.setdefault(fault.node, []).append(f"{verb} {_span(fault.start, fault.end, unit)}")
        elif isinstance(fault, CrashFault):
            end = fault.at + fault.restart
            spans.setdefault(fault.node, []).append(f"crashed {_span(fault.at, end, unit)}")
    placed = []
    for node, words in spans.items():
        if node not in pos:
            continue
        ax.scatter(*pos[node], s=RING, marker="o", facecolors="none", edgecolors=OUTAGE,
                   linewidths=2.5, zorder=3.5, gid=f"down-{node}", label=RING_KEY)  # fmt: skip
        text = ax.annotate("\n".join(words), pos[node], xytext=(0, -38),
                           textcoords="offset points", ha="center", va="top", fontsize=TEXT,
                           color=readable(OUTAGE), zorder=4, gid=f"down-{node}",
                           bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})  # fmt: skip
        spots = [((0, -38), "center", "top"), ((0, -18), "center", "top"),
                 ((0, 36), "center", "bottom"), ((0, 18), "center", "bottom"),
                 ((20, -16), "left", "top"), ((-20, -16), "right", "top")]  # fmt: skip
        placed.append(labels.Movable(text, spots))
    return placed


def _span(start: float, end: float | None, unit: tuple[float, str]) -> str:
    """From when to when, in the unit of the run's length as the servers figure says it."""
    return style.window(start, end, *unit)


def _draw_hops(
    ax: Axes,
    journey: list[Hop],
    pos: dict[str, tuple[float, float]],
    hop_labels: list[labels.Movable],
) -> None:
    """Draw each hop along its links, in its lane, with its label (``hop_labels``
    receives them, to be placed later). The axes' limits must be final: lanes are pixels."""
    for hop, lanes in zip(journey, _lanes(journey, pos), strict=True):
        ok = hop.outcome == "ok"
        colour = style.OUTCOME["ok"] if ok else FAILED[hop.outcome]
        line = _polyline(ax, hop, lanes, pos)
        # A failed try: as wide as a hop, dotted, in its own lane, with no arrowhead but
        # a ✗ where it stopped.
        arrow = FancyArrowPatch(
            path=MplPath(line),
            arrowstyle="-|>,head_length=0.7,head_width=0.35" if ok else "-",
            lw=HOP_WIDTH,
            color=colour,
            linestyle=("-" if hop.group[0].tls else "--") if ok else ":",
            capstyle="butt" if ok else "round",
            mutation_scale=16,  # arrowheads large enough to show the direction
            zorder=2.9,  # under the markers: a hop through a machine goes into it and out
            gid=hop.gid,
            label=KINDS[_kind(hop)],
        )
        ax.add_patch(arrow)
        if not ok:
            ax.plot(*line[-1], marker="x", markersize=11, markeredgewidth=3.0, color=colour,
                    zorder=3.6, gid=f"stop-{hop.gid}",
                    path_effects=[patheffects.withStroke(linewidth=6, foreground="white")])  # fmt: skip
        # Opaque white under the words, in a darker shade of the arrow's colour: Okabe–Ito
        # green and orange are too light to read on white (3.4:1, 2.2:1).
        # On its line until placed: inside the axes, so that the layout engine, which
        # runs again before placement, leaves the axes (and the lanes' pixels) as they are.
        a, b = max(hop.links, key=lambda link: _length(pos, *link))
        middle = np.add(pos[a], pos[b]) / 2
        text = ax.text(*middle, hop.label, ha="center", va="center", fontsize=TEXT, zorder=6,
                       color=readable(colour),
                       bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})  # fmt: skip
        spots = _label_spots(ax, hop, lanes, pos, _size(text))
        hop_labels.append(labels.Movable(text, spots, leads=arrow, reach=LEADER,
                                         away=_not_its_domains(ax, hop, pos),
                                         stops=[pos[n] for n in hop.nodes]))  # fmt: skip


def _padlocks(ax: Axes, journey: list[Hop], hop_labels: list[labels.Movable]) -> None:
    """A padlock in each delivered hop's label, in the gap after its number: shut for
    TLS, open for plaintext — said by a shape as well as by the words and the dashes."""
    renderer = labels._renderer(ax.figure)  # type: ignore[arg-type]
    for hop, item in zip(journey, hop_labels, strict=True):
        if hop.outcome != "ok":
            continue
        text = item.text
        box = text.get_window_extent(renderer)
        font = text.get_fontproperties()
        first, *rest = text.get_text().split("\n")
        width = renderer.get_text_width_height_descent(first, font, ismath=False)[0]
        number = first[: first.index(LOCK_ROOM)]
        before = renderer.get_text_width_height_descent(number, font, ismath=False)[0]
        room = renderer.get_text_width_height_descent(LOCK_ROOM, font, ismath=False)[0]
        x = (box.x0 + box.x1) / 2 - width / 2 + before + room / 2
        y = box.y1 - box.height / (1 + len(rest)) / 2
        colour = text.get_color()
        # At the words' anchor, moved by a fixed distance on the page: when the axes are
        # later made smaller (a panel of the step viewer), words and padlock move as one.
        anchor = ax.transData.transform(text.get_position())
        dpi = ax.figure.dpi
        shift = ScaledTranslation((x - anchor[0]) / dpi, (y - anchor[1]) / dpi,
                                  ax.figure.dpi_scale_trans)  # fmt: skip
        ax.scatter(*text.get_position(), s=LOCK_PT**2,
                   marker=LOCKED if hop.group[0].tls else UNLOCKED, color=colour,
                   linewidths=0, zorder=6.5, gid=f"lock-{hop.gid}",
                   transform=ax.transData + shift, label=KINDS[_kind(hop)])  # fmt: skip


def _length(pos: dict[str, tuple[float, float]], a: str, b: str) -> float:
    return float(np.hypot(*np.subtract(pos[b], pos[a])))


def _size(text: Any) -> tuple[float, float]:
    """A label's width and height in pixels, with its white box and the room kept free
    around it."""
    box = labels._box(text, labels._renderer(text.figure))
    return box.width, box.height


def _label_spots(
    ax: Axes,
    hop: Hop,
    lanes: list[float],
    pos: dict[str, tuple[float, float]],
    size: tuple[float, float],
) -> list[tuple[float, float]]:
    """Where a hop's label may go, in data coordinates: beside its arrow, never on it
    (the words would hide the line they name) — on its lane's side first, then the
    other; by its longest link (the middle first; hops side by side there start at
    different places along it), then by its other links, longest first; then farther
    out, GAPS pixels at a time. A label of size (width, height) pixels keeps its gap to
    the arrow at any slope: its centre is half its extent across the link farther."""
    points = ax.transData.transform([pos[n] for n in hop.nodes])
    lengths = [float(np.hypot(*(q - p))) for p, q in itertools.pairwise(points)]
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    width, height = size
    clear = HOP_WIDTH * ax.figure.dpi / 72 / 2  # half the line's width
    spots: list[np.ndarray] = []
    for gap in GAPS:
        for rank, k in enumerate(order):
            p, q, lane = points[k], points[k + 1], lanes[k]
            along = (q - p) / max(lengths[k], 1e-9)
            left = np.array([-along[1], along[0]])
            across = (width * abs(left[0]) + height * abs(left[1])) / 2 + clear + gap
            side = -1.0 if lane < 0 else 1.0
            for t in ALONG if rank == 0 else ALONG_SHORT:
                on = p + (q - p) * t + left * lane * LANE
                spots += [on + left * side * across, on - left * side * across]
    # No room beside it anywhere: on the line itself, the least in the way.
    spots += [p + (q - p) * 0.5 for p, q in itertools.pairwise(points)]
    return [(float(x), float(y)) for x, y in ax.transData.inverted().transform(spots)]


# What a listener read, in a hop label's few words (mailsim.eavesdrop.SECRET's order).
SECRETS = {"password": "password", "envelope": "envelope", "headers and body": "message"}


def _heard(result: Result) -> dict[int, dict[str, set[str]]]:
    """For each session an eavesdropper's link carried: who listened, and what they read."""
    if not result.scenario.eavesdroppers:
        return {}
    heard: dict[int, dict[str, set[str]]] = {}
    for row in result.overheard.itertuples():
        heard.setdefault(int(row.session), {}).setdefault(str(row.eavesdropper), set()).add(
            str(row.what)
        )
    return heard


def _listened(heard: dict[int, dict[str, set[str]]], sessions: list[int]) -> str:
    """A hop label's second line: what each listener on its path read — the scenario's
    question ("what can someone on the backbone read?") answered on the arrow itself."""
    kinds: dict[str, set[str]] = {}
    for session in sessions:
        for name, what in heard.get(session, {}).items():
            kinds.setdefault(name, set()).update(what)
    return "\n".join(f"{name} reads{_read(what)}" for name, what in sorted(kinds.items()))


def _read(what: set[str]) -> str:
    """The secrets read (password, envelope, message); else the commands sent before TLS
    began, else nothing but TLS records."""
    secrets = [word for kind, word in SECRETS.items() if kind in what]
    if secrets:
        return ": " + ", ".join(secrets)
    if "commands" in what:
        return " only commands" + (" before TLS" if "TLS records" in what else "")
    return " nothing (TLS)"


def _resolver_of(result: Result, node: str) -> str | None:
    """The DNS resolver ``node`` asks: its own ``resolver``, or the scenario's only one."""
    nodes = result.scenario.nodes
    named = getattr(nodes[node], "resolver", None) if node in nodes else None
    if named in nodes:
        return str(named)
    resolvers = [name for name, n in nodes.items() if n.role == "dns"]
    return resolvers[0] if len(resolvers) == 1 else None


# A failed try's reply in a few words: (what the reply says, lower case; the words).
GISTS = (
    ("greylist", "greylisted"),
    ("connection refused", "connection refused"),
    ("timed out", "no answer (timed out)"),
    ("crashed", "cut short: a crash"),
    ("quota", "mailbox full"),
    ("tls is required", "no STARTTLS offered, TLS required"),
    ("authentication failed", "wrong password"),
    ("relay access denied", "relaying denied"),
    ("dmarc", "DMARC: reject"),
    ("user unknown", "no such user"),
)


def gist(reply: str) -> str:
    """What a failed try's reply says, in the few words a hop label has room for."""
    lowered = reply.lower()
    return next((words for key, words in GISTS if key in lowered), "")


def _again(mine: Any, group: list[Any], machines: Any) -> str:
    """A failed hop label's second line: how many tries, over how long, and how long the
    sender then waited before it tried again (a greylisting server's whole point) — or
    which other server it tried instead (a backup MX), and when."""
    first, last = group[0], group[-1]
    tries = ""
    if len(group) > 1:
        # From the first try's start to the last one's end, and the wait from that end:
        # the two add up with the first start to the next try's start.
        tries = f"tried {len(group)}× over {format_duration(last.end - first.start)}, "
    later = mine[(mine["index"] > last.index) & (mine["src"] == last.src)]
    if later.empty or style.outcome_of(str(last.code)) == "permanent":
        return tries + ("not again" if tries else "not tried again")
    wait = float(later["start"].iloc[0]) - float(last.end)
    after = "at once" if wait < 1.0 else f"after {format_duration(wait)}"
    other = str(later["dst"].iloc[0])
    if other != str(last.dst) and str(last.dst) in machines:  # not a domain's lookup
        return tries + f"then {other} {after}"
    return tries + ("again" if tries else "tried again") + f" {after}"


def _grouped(hops: Any) -> list[list[Any]]:
    """Consecutive failed attempts on the same hop with the same code share one arrow."""
    groups: list[list[Any]] = []
    for hop in hops.itertuples():
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and style.outcome_of(str(hop.code)) != "ok"
            and (last.src, last.dst, str(last.code)) == (hop.src, hop.dst, str(hop.code))
        ):
            groups[-1].append(hop)
        else:
            groups.append([hop])
    return groups


def readable(
    colour: str, ratio: float = CONTRAST, background: str = "white"
) -> tuple[float, float, float]:
    """``colour`` darkened (towards black, keeping its hue) just enough to be read on
    ``background``: a contrast of at least ``ratio`` (words: ``CONTRAST``)."""
    rgb = to_rgb(colour)
    for step in range(101):
        shade = tuple(v * (1 - step / 100) for v in rgb)
        if contrast(shade, background) >= ratio:
            return shade  # type: ignore[return-value]
    return (0.0, 0.0, 0.0)


def contrast(colour: Any, background: Any = "white") -> float:
    """WCAG 2's contrast ratio of two colours, 1 to 21."""
    lighter, darker = sorted((_luminance(colour), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(colour: Any) -> float:
    """WCAG 2's relative luminance (sRGB channels linearised)."""
    r, g, b = (v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in to_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# A failed try's line: its outcome's colour, darkened to 3:1 on a domain's grey box.
FAILED = {
    outcome: readable(style.OUTCOME[outcome], LINES, DOMAIN_FILL)
    for outcome in ("temporary", "permanent")
}


def _role_label(scenario: Scenario, role: str) -> str:
    """A role's name in the key; the mailbox server's says IMAP where someone reads so."""
    if role == "pop" and any(u.retrieval != "pop3" for u in scenario.accounts.values()):
        return style.IMAP_MAILBOX
    return style.ROLE_LABEL[role]
