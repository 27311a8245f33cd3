"""One message's route over the network: the topology, and its mail hops as numbered
arrows labelled with their duration and TLS; failed attempts in the warning colour."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from mailsim.plot import labels, style
from mailsim.plot.topology import domain_of, positions
from mailsim.result import Result
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


def route(
    result: Result,
    message: str | None = None,
    *,
    recipient: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the network and the route of ``message`` (default: the first one)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12.8, 7.2), layout="constrained")
    scenario = result.scenario
    pos = positions(result)
    named: list[str] = []
    _domains(ax, result, pos)
    for link in scenario.links:
        (x0, y0), (x1, y1) = pos[link.between[0]], pos[link.between[1]]
        ax.plot([x0, x1], [y0, y1], color="#cccccc", lw=1.5, zorder=1)
    for role, (marker, colour, size) in style.ROLE.items():
        names = [n for n, node in scenario.nodes.items() if node.role == role]
        if not names:
            continue
        ax.scatter(
            [pos[n][0] for n in names], [pos[n][1] for n in names], s=size, marker=marker,
            color=colour, edgecolor="white", linewidth=1.5, zorder=3,
            label=style.ROLE_LABEL[role],
        )  # fmt: skip
        if role != "router":
            named += names
        else:
            for n in names:  # routers: small, grey, out of the way
                ax.annotate(n, pos[n], xytext=(0, 7), textcoords="offset points", ha="center",
                            va="bottom", fontsize=SMALL, color="#666666", zorder=2, gid="router")  # fmt: skip
    spies = _eavesdroppers(ax, scenario, pos)
    title = "Network"
    hop_labels: list[labels.Movable] = []
    if result.copies:
        copy = result.copy(message or result.copies[0].message.id, recipient)
        title = _hops(ax, result, copy.message.id, copy.recipient, pos, hop_labels)
    # A node's name goes below it, or where no hop arrow crosses it: above, right, left.
    name_labels = []
    for n in named:
        text = ax.annotate(n, pos[n], xytext=(0, -18), textcoords="offset points",
                           ha="center", va="top", fontsize=TEXT, zorder=4)  # fmt: skip
        spots = [((0, -18), "center", "top"), ((0, 18), "center", "bottom"),
                 ((16, 0), "left", "center"), ((-16, 0), "right", "center")]  # fmt: skip
        name_labels.append(labels.Movable(text, spots))
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color=style.OUTCOME["ok"], lw=2.5, label="hop, encrypted (TLS)"),
        Line2D([], [], color=style.OUTCOME["ok"], lw=2.5, ls="--", label="hop, plaintext"),
    ]
    drawn = {p.get_edgecolor()[:3] for p in ax.patches if (p.get_gid() or "").startswith("hop-")}
    for outcome, label in (("temporary", "failed attempt (4xx, timeout)"),
                           ("permanent", "refused (5xx)")):  # fmt: skip
        if to_rgb(style.OUTCOME[outcome]) in drawn:
            handles.append(Line2D([], [], color=style.OUTCOME[outcome], lw=2, ls=":", label=label))
    _legend(ax, handles, pos)
    ax.set_title(title, fontsize=12, loc="left")
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.08)
    ax.set_axis_off()
    domains = [t for t in ax.texts if t.get_gid() in ("domain", "router")]
    arrows = [arrow for item in hop_labels for arrow in item.own]
    nodes = [c for c in ax.collections if c.get_label() in style.ROLE_LABEL.values()]
    labels.place(ax, [*name_labels, *hop_labels, *spies], domains, arrows, nodes)
    _leaders(ax, hop_labels)
    return ax


def _leaders(ax: Axes, hop_labels: list[labels.Movable]) -> None:
    """A thin line from a hop label that had to move far from its arrow (no room beside
    it) back to the arrow's middle part, so that no one reads it as another hop's; drawn
    under markers and names, so that it never hides a word."""
    renderer = labels._renderer(ax.figure)  # type: ignore[arg-type]  # the one labels used
    to_data = ax.transData.inverted()
    for item in hop_labels:
        arrow = item.own[0]
        path = arrow.get_transform().transform_path(arrow.get_path())  # type: ignore[attr-defined]
        shaft = np.asarray(path.to_polygons(closed_only=False)[0])
        points = shaft[len(shaft) // 5 : len(shaft) - len(shaft) // 5]  # not at a node
        box = item.text.get_window_extent(renderer)
        edge = np.column_stack([np.clip(points[:, 0], box.x0, box.x1),
                                np.clip(points[:, 1], box.y0, box.y1)])  # fmt: skip
        gaps = np.hypot(*(points - edge).T)
        k = int(np.argmin(gaps))
        if gaps[k] <= LEADER:
            continue
        (x0, y0), (x1, y1) = to_data.transform([edge[k], points[k]])
        ax.add_artist(Line2D([x0, x1], [y0, y1], color=item.text.get_color(), lw=1.0,
                             zorder=2.5, gid=f"leader-{arrow.get_gid()}"))  # fmt: skip


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


def _hops(
    ax: Axes,
    result: Result,
    message: str,
    recipient: str,
    pos: dict[str, tuple[float, float]],
    hop_labels: list[labels.Movable],
) -> str:
    """Draw the hop arrows and their labels (``hop_labels`` receives them, to be placed
    once the figure is laid out); returns the title."""
    hops = result.hops
    mine = hops[
        (hops["message"] == message) & (hops["recipient"] == recipient) & ~hops["duplicate"]
    ]
    heard = _heard(result)
    seen: dict[tuple[str, str], int] = {}
    for group in _grouped(mine):
        hop, last = group[0], group[-1]
        # A try whose DNS lookup failed is a hop to the domain (no server was found):
        # its arrow points at the server the domain's MX names, labelled as a lookup.
        looked_up = hop.dst not in pos
        dst = _server_of(result, str(hop.dst)) if looked_up else hop.dst
        if dst is None or hop.src == dst or hop.src not in pos:
            continue
        outcome = style.outcome_of(str(hop.code))
        n = seen.get((hop.src, dst), 0)
        seen[(hop.src, dst)] = n + 1
        bend = 0.18 + 0.16 * n
        kwargs: dict[str, Any] = {
            "arrowstyle": "-|>,head_length=0.7,head_width=0.35",
            "connectionstyle": f"arc3,rad={bend}",
            "lw": 2.5 if outcome == "ok" else 1.6,
            "color": style.OUTCOME["ok"] if outcome == "ok" else style.OUTCOME[outcome],
            "linestyle": ("-" if hop.tls else "--") if outcome == "ok" else ":",
            "shrinkA": 14,
            "shrinkB": 14,
            "mutation_scale": 16,  # arrowheads large enough to show the direction
            "zorder": 5,
        }
        arrow = FancyArrowPatch(pos[hop.src], pos[dst], **kwargs)
        arrow.set_gid(f"hop-{hop.index}-{last.index}")
        ax.add_patch(arrow)
        numbers = f"{hop.index}" if len(group) == 1 else f"{hop.index}–{last.index}"
        if outcome == "ok":
            tls = f" · TLS {hop.tls}" if hop.tls else " · plaintext"
            label = f"{numbers}  {format_duration(hop.end - hop.start)}{tls}"
        else:
            # How long the retries went on: what a down server costs the message.
            span = f" over {format_duration(last.start - hop.start)}" if len(group) > 1 else ""
            times = f" ×{len(group)}{span}" if len(group) > 1 else ""
            lookup = f" · no DNS answer for {hop.dst}" if looked_up else ""
            label = f"{numbers}  ✗ {hop.code}{times}{lookup}"
        listeners = _listened(heard, [int(h.session) for h in group])
        if listeners:
            label += "\n" + listeners
        (x0, y0), (x1, y1) = pos[hop.src], pos[dst]
        # On the arc (matplotlib's arc3: a quadratic Bézier through the control point
        # midpoint + rad · (dy, −dx)); arrows between the same two nodes put their labels
        # at different places along the arc so that they do not cover each other.
        cx, cy = (x0 + x1) / 2 + bend * (y1 - y0), (y0 + y1) / 2 - bend * (x1 - x0)

        # On the arc (its middle first), or pushed out on the side it bulges to; arrows
        # between the same two nodes start at different places along it.
        first = 0.5 - 0.2 * (n % 3) if n else 0.5
        spots = [_on_arc((x0, y0), (cx, cy), (x1, y1), t) for t in (first, 0.4, 0.6, 0.3, 0.7)]
        length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
        out_x, out_y = (y1 - y0) / length, -(x1 - x0) / length
        spots[1:1] = [(spots[0][0] + out_x * k, spots[0][1] + out_y * k) for k in (0.12, 0.2)]
        spots += [
            (spots[0][0] + out_x * k, spots[0][1] + out_y * k)
            for k in (0.3, 0.45, -0.15, -0.3, 0.6, 0.8, -0.45, -0.6, 1.0, -0.8)
        ]
        best = spots[0]
        # Opaque white under the words, in a darker shade of the arrow's colour: Okabe–Ito
        # green and orange are too light to read on white (3.4:1, 2.2:1).
        text = ax.text(*best, label, ha="center", va="center", fontsize=TEXT, zorder=6,
                       color=readable(kwargs["color"]),
                       bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})  # fmt: skip
        hop_labels.append(labels.Movable(text, spots, own=(arrow,)))
    copy = result.copy(message, recipient)
    status = copy.status
    if copy.retrieved_at is not None:
        status += f" after {format_duration(copy.retrieved_at - copy.submitted_at)}"
    sender = copy.message.sender or "the mail system (a bounce)"
    title = f"Route of message {message!r}: {sender} → {recipient} — {status}"
    scenario = f"(scenario {result.scenario.name!r})"
    # One line where it fits the figure's width at 12 pt, else the scenario below.
    return f"{title} {scenario}" if len(title) + len(scenario) < 110 else f"{title}\n{scenario}"


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


def _server_of(result: Result, domain: str) -> str | None:
    """The node the domain's most preferred MX record names (through an A record that
    names a node), for a hop that never got as far as asking it."""
    zones = result.scenario.dns.zones
    zone = zones.get(domain)
    for mx in sorted(zone.mx if zone else [], key=lambda record: record.preference):
        for other in zones.values():
            node = other.a.get(mx.host)
            if node in result.scenario.nodes:
                return node
    return None


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


def _on_arc(
    p0: tuple[float, float], c: tuple[float, float], p1: tuple[float, float], t: float
) -> tuple[float, float]:
    """The point at ``t`` of the quadratic Bézier curve p0 → c → p1 (matplotlib's arc3)."""
    a, b, d = (1 - t) ** 2, 2 * t * (1 - t), t**2
    return (a * p0[0] + b * c[0] + d * p1[0], a * p0[1] + b * c[1] + d * p1[1])


def readable(colour: str) -> tuple[float, float, float]:
    """``colour`` darkened (towards black, keeping its hue) just enough to be read on
    white: a contrast of at least ``CONTRAST``."""
    rgb = to_rgb(colour)
    for step in range(101):
        shade = tuple(v * (1 - step / 100) for v in rgb)
        if contrast(shade) >= CONTRAST:
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
