"""A real message's route, read from its headers (:mod:`mailsim.trace`): the servers in
the order the message passed them, each hop's protocol and encryption, and below, how
long each hop took — where a negative bar says two clocks disagree.

Every text comes from a stranger's message, so it is drawn as plain text: a "$" starts
no formula (matplotlib's mathtext would fail on "$x^$"), and control characters are
shown as escapes, as in the hop table."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from mailsim.plot import style
from mailsim.trace import Route, shown, too_long

PLAIN = {"parse_math": False}  # text, never a formula
HOST_CHARS = 40  # as in the hop table; a longer name would take seconds to draw, and no room
# Names that fit side by side across the figure at 8 points; a longer route names every
# second, third … server and hop, and draws in a second instead of several.
LABELS = 25


def _label(text: str, room: int = HOST_CHARS) -> str:
    """``text`` as drawn: control characters escaped, at most ``room`` characters."""
    cut = shown(text[:room])
    return cut if len(cut) <= room and len(text) <= room else cut[: room - 1] + "…"


def received(route: Route) -> Axes:
    """Two panels, returned as the top one: the chain of servers with one arrow per
    hop (solid: TLS, dashed: plaintext), and each hop's delay as a bar. ValueError for
    a route of more than :data:`mailsim.trace.LOOP_HOPS` hops (a loop)."""
    why = too_long(route, "draw")
    if why is not None:
        raise ValueError(why)
    _, (top, bottom) = plt.subplots(
        2, 1, figsize=(12.8, 7.2), height_ratios=(1.1, 1.0), layout="constrained"
    )
    hops = [hop for hop in route.hops if not hop.garbled]
    hosts: list[str] = []
    for hop in hops:
        for host in (hop.from_host or hop.from_ip or "?", hop.by or "?"):
            if not hosts or hosts[-1] != host:
                hosts.append(host)
    last_lmtp = bool(hops) and (hops[-1].protocol or "").startswith("LMTP")
    step = -(-max(len(hosts), len(hops), 1) // LABELS)  # 1 up to 25 names, 2 up to 50 …
    roles: dict[str, list[int]] = {}
    for x, host in enumerate(hosts):
        role = "client" if x == 0 else "pop" if last_lmtp and x == len(hosts) - 1 else "smtp"
        roles.setdefault(role, []).append(x)
        if x % step and x != len(hosts) - 1:
            continue
        y = 0.35 if (x // step) % 2 else -0.35  # alternate, so long names do not collide
        top.annotate(_label(host), (x, 0), xytext=(0, 14 if y > 0 else -14),
                     textcoords="offset points", ha="center", va="bottom" if y > 0 else "top",
                     fontsize=8, **PLAIN)  # fmt: skip
    # One scatter per role: each scatter rescales the view over every point drawn before.
    for role, xs in roles.items():
        marker, colour, _ = style.ROLE[role]
        top.scatter(xs, [0] * len(xs), s=300, marker=marker, color=colour, zorder=3)
    position = {host: x for x, host in enumerate(hosts)}
    for i, hop in enumerate(hops):
        a = position.get(hop.from_host or hop.from_ip or "?")
        b = position.get(hop.by or "?")
        if a is None or b is None or a == b:
            continue
        colour = style.OUTCOME["ok"]
        top.annotate("", (b, 0), (a, 0), arrowprops={
            "arrowstyle": "-|>", "color": colour, "lw": 2, "ls": "-" if hop.tls else "--",
            "shrinkA": 9, "shrinkB": 9,
        })  # fmt: skip
        if i % step:
            continue
        tls = f"TLS {hop.tls_version}" if hop.tls_version else ("TLS" if hop.tls else "plaintext")
        top.text((a + b) / 2, -0.12 if (i // step) % 2 else 0.12,
                 f"{hop.index}: {_label(hop.protocol or '?', 12)} · {tls}", ha="center",
                 va="center", fontsize=8, color=colour,
                 bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1}, **PLAIN)  # fmt: skip
    top.set_xlim(-0.7, max(len(hosts) - 0.3, 0.7))
    top.set_ylim(-1, 1)
    top.set_axis_off()
    title = f"“{_label(route.subject, 80)}”" if route.subject else "a message"
    thinned = f"; one name in {step}" if step > 1 else ""
    top.set_title(f"The route of {title}, read from its {len(route.hops)} Received: headers"
                  f" (oldest first; solid = TLS, dashed = plaintext{thinned})", loc="left",
                  fontsize=11, **PLAIN)  # fmt: skip

    timed = [hop for hop in hops if hop.delay is not None]
    values = [hop.delay for hop in timed]
    colours = [style.OUTCOME["temporary"] if v < 0 else style.PROTOCOL["smtp"] for v in values]
    bottom.barh(range(len(timed)), values, color=colours)
    rows = range(0, len(timed), step)
    labels = [f"hop {timed[i].index}: → {_label(timed[i].by or '?')}" for i in rows]
    bottom.set_yticks(rows, labels, fontsize=8, **PLAIN)
    bottom.invert_yaxis()
    bottom.axvline(0, color="#888888", lw=0.8)
    for i in rows:
        value = values[i]
        note = f" {value:.0f} s" + (" — clocks disagree" if value < 0 else "")
        bottom.text(max(value, 0), i, note, va="center", fontsize=8)
    bottom.set_xlabel("seconds since the hop before (the headers keep whole seconds)")
    if route.total is not None:
        bottom.set_title(f"Delay per hop: {route.total:.0f} s from the first to the last",
                         loc="left", fontsize=10)  # fmt: skip
    low = min([0.0, *values])
    high = max([1.0, *values])
    bottom.set_xlim(low * 1.3 if low < 0 else 0, high * 1.3)
    return top
