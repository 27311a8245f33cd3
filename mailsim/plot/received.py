"""A real message's route, read from its headers (:mod:`mailsim.trace`): the servers in
the order the message passed them, each hop's protocol and encryption, what the
receiving servers found when they checked the sender (SPF, DKIM, DMARC), and below, how
long each hop took — where a negative bar says two clocks disagree.

The chain is always connected: a hop that does not name its client was handed on by the
server before it; where a hop names a client other than the server before it, the
stretch between them is drawn as a dotted grey link "not in the headers" (a provider's
internal relays, a header someone removed). Nothing is drawn as "?".

Every text comes from a stranger's message, so it is drawn as plain text: a "$" starts
no formula (matplotlib's mathtext would fail on "$x^$"), and control characters are
shown as escapes, as in the hop table. Every word is at least 14 px high at 1280×720
and at least 4.5:1 against white, for the back row of a classroom."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.offsetbox import AnnotationBbox, HPacker, TextArea
from matplotlib.text import Text

from mailsim.plot import labels, style
from mailsim.plot.route import readable
from mailsim.trace import Hop, Route, shown, too_long

PLAIN = {"parse_math": False}  # text, never a formula
HOST_CHARS = 40  # as in the hop table; a longer name would take seconds to draw, and no room
TEXT = 11.0  # points: 15.3 px at 100 dpi, read from the back row
TITLE = 12.0
MARKS = {"client": "■", "smtp": "◆", "pop": "●"}  # the glyphs of style.ROLE's markers
MARK_WORDS = {"client": "sender's program", "smtp": "mail server", "pop": "mailbox server"}
# Servers named side by side across 1280 px at 11 points, in four rows; a longer route
# names every second, third … server and hop, and draws in a second instead of several.
LABELS = 16
BARS = 12  # delay bars labelled one under the other in the lower panel, 20 px apart
MARKER = 300.0  # points², a server's marker where there is room
GAP = "not in the headers"
GAP_COLOUR = "#767676"  # the lightest grey that is still 4.5:1 on white
UNNAMED = "(server not named)"
# A verdict's colour (the word says it too): pass, fail, and the ones in between.
VERDICT = {
    "pass": (readable(style.OUTCOME["ok"]), "✓"),
    "fail": (readable(style.OUTCOME["permanent"]), "✗"),
    "permerror": (readable(style.OUTCOME["permanent"]), "✗"),
    "softfail": (readable(style.OUTCOME["temporary"]), "~"),
    "temperror": (readable(style.OUTCOME["temporary"]), "~"),
}
NO_VERDICT = ("#595959", "–")  # none, neutral, policy …: nothing was proven either way


@dataclass
class Chain:
    """The servers in order, and what joins them: ``links`` as (from node, to node,
    hop or None for a stretch the headers do not cover); ``local`` as (node, hop) for
    hops that stayed inside one machine (a program handing mail to its own server)."""

    nodes: list[str] = field(default_factory=list)
    links: list[tuple[int, int, Hop | None]] = field(default_factory=list)
    local: list[tuple[int, Hop]] = field(default_factory=list)
    server: dict[int, str] = field(default_factory=dict)  # each hop's (by index): its node


def same_server(a: str, b: str) -> bool:
    """Two names of one machine: equal but for case, or sharing a generated first
    label (Exchange names VI1EUR04FT012 ….mail.protection.outlook.com when it receives
    and ….eop-eur04.prod.protection.outlook.com when it sends on)."""
    if a.lower() == b.lower():
        return True
    first_a, first_b = a.split(".")[0].lower(), b.split(".")[0].lower()
    return first_a == first_b and len(first_a) >= 8 and any(c.isdigit() for c in first_a)


def _client(hop: Hop) -> str | None:
    return hop.from_host or hop.from_ip


def _server(hops: list[Hop], i: int, before: str | None) -> str:
    """Hop ``i``'s server: its "by" name; else, for a hop that names its client, the
    client of the hop after it; else (a program's local hop, as qmail writes them) the
    machine it ran on: the server before it, or the client of the hop after it."""
    hop = hops[i]
    if hop.by:
        return hop.by
    after = _client(hops[i + 1]) if i + 1 < len(hops) else None
    if _client(hop) is not None:
        return after or UNNAMED
    return before or after or UNNAMED


def chain(hops: list[Hop]) -> Chain:
    """The connected chain of ``hops`` (oldest first, none garbled): each hop's client
    is the previous hop's server unless it names another one."""
    out = Chain()
    for i, hop in enumerate(hops):
        before = out.nodes[-1] if out.nodes else None
        client = _client(hop) or before
        if client is not None and (before is None or not same_server(before, client)):
            out.nodes.append(client)
            if before is not None:
                out.links.append((len(out.nodes) - 2, len(out.nodes) - 1, None))
        server = _server(hops, i, out.nodes[-1] if out.nodes else None)
        if out.nodes and same_server(out.nodes[-1], server):
            out.local.append((len(out.nodes) - 1, hop))
            out.server[hop.index] = out.nodes[-1]
            continue
        out.server[hop.index] = server
        out.nodes.append(server)
        if client is None:  # the first hop, begun on its own server
            out.local.append((len(out.nodes) - 1, hop))
        else:
            out.links.append((len(out.nodes) - 2, len(out.nodes) - 1, hop))
    return out


def _label(text: str, room: int = HOST_CHARS) -> str:
    """``text`` as drawn: control characters escaped, at most ``room`` characters."""
    cut = shown(text[:room])
    return cut if len(cut) <= room and len(text) <= room else cut[: room - 1] + "…"


def received(route: Route) -> Axes:
    """Two panels, returned as the top one: the chain of servers with one arrow per
    hop (solid: TLS, dashed: plaintext) and a box of each checking server's verdicts,
    and each hop's delay as a bar. ValueError for a route of more than
    :data:`mailsim.trace.LOOP_HOPS` hops (a loop)."""
    why = too_long(route, "draw")
    if why is not None:
        raise ValueError(why)
    with warnings.catch_warnings():
        # Names are measured while placed; one in a script the font lacks is drawn as
        # boxes, not warned about (as when the figure is saved).
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        return _draw(route)


def _draw(route: Route) -> Axes:
    figure = plt.figure(figsize=(12.8, 7.2))
    # Placed by hand, not by a layout engine: the chain takes the page's whole width,
    # however long the names beside the delay bars below are.
    top = figure.add_axes((0.01, 0.47, 0.98, 0.41))
    bottom = figure.add_axes((0.2, 0.09, 0.78, 0.3))
    hops = [hop for hop in route.hops if not hop.garbled]
    drawn = chain(hops)
    _delays(bottom, route, hops, drawn)
    step = -(-max(len(drawn.nodes), len(hops), 1) // LABELS)  # 1 up to 16 names, 2 up to 32 …
    top.set_xlim(-0.7, max(len(drawn.nodes) - 0.3, 0.7))
    top.set_ylim(-1, 1)
    top.set_axis_off()
    names, roles = _nodes(top, drawn, hops, step)
    lines, hop_labels = _links(top, drawn, step)
    checked, connectors = _verdicts(top, route, drawn)
    left_out = _place(top, names, hop_labels, [*lines, *connectors], checked)
    title = f"“{_label(route.subject, 80)}”" if route.subject else "a message"
    notes = [f"one name in {step}"] if step > 1 else []
    unread = [str(hop.index) for hop in route.hops if hop.garbled]
    if unread:
        notes.append(f"hop{'s' if len(unread) > 1 else ''} {', '.join(unread[:5])} unreadable")
    if left_out:
        notes.append(f"{left_out} label{'s' if left_out > 1 else ''} left out for lack of room")
    # The markers in words (■ ◆ ● as drawn), then the arrows.
    shapes = [f"{MARKS[role]} = {MARK_WORDS[role]}" for role in ("client", "smtp", "pop")
              if role in roles]  # fmt: skip
    key = ", ".join(shapes) + "; solid arrow = TLS, dashed = plaintext"
    if any(hop is None for _, _, hop in drawn.links):
        key += f", dotted grey = {GAP}"
    top.set_title(
        f"The route of {title}, read from its {len(route.hops)} Received: headers\n"
        f"(oldest first; {'; '.join([key, *notes])})",
        loc="left", fontsize=TITLE, **PLAIN,
    )  # fmt: skip
    return top


def _nodes(
    ax: Axes, drawn: Chain, hops: list[Hop], step: int
) -> tuple[list[labels.Movable], list[str]]:
    """One marker per server (one scatter per role: each scatter rescales the view over
    every point drawn before) and the names, every ``step``-th and the last."""
    last = len(drawn.nodes) - 1
    lmtp = bool(hops) and (hops[-1].protocol or "").startswith("LMTP")
    begun_locally = any(node == 0 for node, _ in drawn.local)
    roles: dict[str, list[int]] = {}
    names = []
    for x, host in enumerate(drawn.nodes):
        first = x == 0 and not begun_locally
        role = "client" if first else "pop" if lmtp and x == last and x else "smtp"
        roles.setdefault(role, []).append(x)
        if x % step and x != last:
            continue
        text = ax.annotate(_label(host), (x, 0), xytext=(0, 16), textcoords="offset points",
                           ha="center", va="bottom", fontsize=TEXT, gid=f"server {x}",
                           **PLAIN)  # fmt: skip
        sign = 1 if (x // step) % 2 == 0 else -1  # alternate, so long names do not collide
        # Centred first; at the ends of the page, a long name may end (or begin) at its server.
        spots = [
            ((0, sign * s * off), ha, "bottom" if sign * s > 0 else "top")
            for off in (16, 40, 64)
            for ha in ("center", "right", "left")
            for s in (1, -1)
        ]
        names.append(labels.Movable(text, spots))
    for role, xs in roles.items():
        marker, colour, _ = style.ROLE[role]
        size = min(MARKER, (0.7 * _spacing(len(drawn.nodes))) ** 2)
        ax.scatter(xs, [0] * len(xs), s=size, marker=marker, color=colour, zorder=3)
    return names, list(roles)


def _spacing(servers: int) -> float:
    """Points between two servers' centres: the axes' 1254 px over the servers and their
    margins (-0.7 … servers - 0.3). Markers shrink when a long route crowds them."""
    return 0.98 * 1280 / (servers + 0.4) * 72 / 100


def _links(ax: Axes, drawn: Chain, step: int) -> tuple[list, list[labels.Movable]]:
    """An arrow per hop between two servers, a dotted link per stretch not in the
    headers, and their labels; a hop inside one machine gets a label by its server."""
    arrows, movable = [], []
    shrink = min(MARKER**0.5 / 2, 0.35 * _spacing(len(drawn.nodes)))  # off the markers
    for k, (a, b, hop) in enumerate(drawn.links):
        colour = style.OUTCOME["ok"] if hop is not None else GAP_COLOUR
        dashes = ":" if hop is None else "-" if hop.tls else "--"
        arrow = ax.annotate("", (b, 0), (a, 0), arrowprops={
            "arrowstyle": "-|>" if hop is not None else "-", "color": colour, "lw": 2,
            "ls": dashes, "shrinkA": shrink, "shrinkB": shrink,
        }, gid=f"hop {hop.index}" if hop is not None else f"gap {k}")  # fmt: skip
        arrows.append(arrow.arrow_patch)
        if hop is not None and (hop.index - 1) % step:
            continue
        text = _hop_text(hop) if hop is not None else GAP
        label = ax.annotate(text, ((a + b) / 2, 0), xytext=(0, 6), textcoords="offset points",
                            ha="center", va="bottom", fontsize=TEXT, color=readable(colour),
                            **PLAIN)  # fmt: skip
        movable.append(labels.Movable(label, _around(), own=(arrow.arrow_patch,)))
    for x, hop in drawn.local:
        if (hop.index - 1) % step:
            continue
        note = f" ({_label(hop.note, 28)})" if hop.note else ""
        label = ax.annotate(f"{hop.index}: inside this machine{note}", (x, 0), xytext=(0, -40),
                            textcoords="offset points", ha="center", va="top", fontsize=TEXT,
                            color=readable(style.OUTCOME["ok"]), **PLAIN)  # fmt: skip
        movable.append(labels.Movable(label, _around(start=16)))
    return arrows, movable


def _around(start: float = 6) -> list[tuple]:
    """Places above and below a point, nearest first, as (offset, ha, va)."""
    return [
        ((0, sign * off), "center", "bottom" if sign > 0 else "top")
        for off in (start, start + 24, start + 48, start + 72)
        for sign in (1, -1)
    ]


def _hop_text(hop: Hop) -> str:
    tls = f"TLS {hop.tls_version}" if hop.tls_version else ("TLS" if hop.tls else "plaintext")
    return f"{hop.index}: {_label(hop.protocol or 'no protocol said', 16)} · {tls}"


def _verdicts(ax: Axes, route: Route, drawn: Chain) -> tuple[list[Text], list[Any]]:
    """A box per Authentication-Results header, under the server that checked (or at
    the end of the chain, where the header does not say which): "mx.google.com
    checked: ✓ SPF pass · ✓ DKIM pass · ✓ DMARC pass", each verdict in its colour."""
    texts: list[Text] = []
    connectors: list[Any] = []  # a thin line from each box up to its server
    last = len(drawn.nodes) - 1
    for row, (server, found) in enumerate(route.verdicts()[:3]):
        if not found:
            continue
        named = [x for x, n in enumerate(drawn.nodes) if server and same_server(n, server)]
        at = named[0] if named else last  # a checker not on the route: at its end, unlinked
        who = f"{_label(server)} checked:" if server else "an unnamed server checked:"
        parts = [TextArea(who, textprops={"fontsize": TEXT, **PLAIN})]
        for method, result in found.items():
            colour, mark = VERDICT.get(result, NO_VERDICT)
            words = f"{mark} {method.upper()} {_label(result, 12)}"
            parts.append(TextArea(words, textprops={"fontsize": TEXT, "color": colour,
                                                    "fontweight": "bold", **PLAIN}))  # fmt: skip
        align = 0.1 if at < last / 3 else 0.9 if at > 2 * last / 3 else 0.5
        box = AnnotationBbox(
            HPacker(children=parts, pad=0, sep=10),
            (at, 0), xybox=(at, 0.02 + 0.16 * row), boxcoords=("data", "axes fraction"),
            # The server's line enters the box near its left end, middle or right end.
            box_alignment=(align, 0.0),
            bboxprops={"ec": "#595959", "fc": "white", "boxstyle": "round,pad=0.4"},
            arrowprops={"arrowstyle": "-", "color": GAP_COLOUR, "lw": 1, "shrinkB": 12,
                        "relpos": (align, 1.0)} if named else None,  # straight up from the box
            pad=0.3, gid=f"checked {row}",
        )  # fmt: skip
        ax.add_artist(box)
        texts += [part._text for part in parts]
        if box.arrow_patch is not None:
            connectors.append(box.arrow_patch)
    return texts, connectors


def _place(
    ax: Axes,
    names: list[labels.Movable],
    hop_labels: list[labels.Movable],
    lines: list,
    fixed: list[Text],
) -> int:
    """Names first, then hop labels, each at its first free place; a label with no free
    place is left out rather than drawn over another. Says how many were left out."""
    scatters = list(ax.collections)
    free = labels.place(ax, [*names, *hop_labels], fixed=fixed, lines=lines, markers=scatters)
    left = 0
    for item, ok in zip([*names, *hop_labels], free, strict=True):
        if not ok:
            item.text.set_visible(False)
            left += 1
    return left


def _delays(ax: Axes, route: Route, hops: list[Hop], drawn: Chain) -> None:
    """Each hop's delay as a bar, orange where the clocks disagree (a negative delay);
    where no two hops in a row have times, a sentence instead of an empty frame."""
    timed = [hop for hop in hops if hop.delay is not None]
    if not timed:
        ax.set_axis_off()
        ax.text(0, 0.5, "No delays to show: no two hops in a row say when they took the"
                " message.", fontsize=TEXT, transform=ax.transAxes, **PLAIN)  # fmt: skip
        return
    values = [float(hop.delay) for hop in timed if hop.delay is not None]
    colours = [style.OUTCOME["temporary"] if v < 0 else style.PROTOCOL["smtp"] for v in values]
    ax.barh(range(len(timed)), values, color=colours)
    step = -(-max(len(timed), 1) // BARS)
    rows = range(0, len(timed), step)
    names = [f"hop {timed[i].index}: → {_label(drawn.server[timed[i].index])}" for i in rows]
    ax.set_yticks(rows, names, fontsize=TEXT, **PLAIN)
    ax.tick_params(axis="x", labelsize=TEXT)
    ax.invert_yaxis()
    ax.axvline(0, color="#888888", lw=0.8)
    for i in rows:
        value = values[i]
        note = f" {value:.0f} s" + (" — clocks disagree" if value < 0 else "")
        ax.text(max(value, 0), i, note, va="center", fontsize=TEXT)
    ax.set_xlabel("seconds since the hop before (the headers keep whole seconds)",
                  fontsize=TEXT)  # fmt: skip
    if route.total is not None:
        ax.set_title(f"Delay per hop: {route.total:.0f} s from the first to the last",
                     loc="left", fontsize=TEXT)  # fmt: skip
    low = min([0.0, *values])
    high = max([1.0, *values])
    ax.set_xlim(low * 1.3 if low < 0 else 0, high * 1.3)
    _room_for_names(ax)


def _room_for_names(ax: Axes) -> None:
    """Widen the left margin to the longest bar name, measured as drawn."""
    figure = ax.figure
    renderer = labels._renderer(figure)  # the one way every figure here measures text
    widest = max((t.get_window_extent(renderer).width for t in ax.get_yticklabels()), default=0)
    left = (widest + 24) / figure.bbox.width
    box = ax.get_position()
    ax.set_position((left, box.y0, 0.98 - left, box.height))
