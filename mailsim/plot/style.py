"""One palette for every figure: a colour per protocol, per outcome, per delay part, per
role. Okabe & Ito's colour-blind-safe palette (2008), so that no pair is told apart by
red/green alone; line styles and markers carry the same meaning a second time."""

from __future__ import annotations

from typing import Any

OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#7F7F7F",
    "black": "#000000",
}

# Orange and vermillion are kept for failures (temporary, permanent) in every figure.
PROTOCOL = {
    "tcp": OKABE_ITO["grey"],
    "tls": OKABE_ITO["black"],
    "dns": OKABE_ITO["sky"],
    "submission": OKABE_ITO["blue"],
    "smtp": OKABE_ITO["blue"],
    "lmtp": OKABE_ITO["green"],
    "pop3": OKABE_ITO["purple"],
    # Reading mail too, so a purple, but a deep violet that no one takes for POP3's
    # reddish purple (ColorBrewer's Paired violet; 8.9:1 on white).
    "imap": "#6A3D9A",
    # A browser's webmail: the Okabe–Ito yellow, the one hue left, darkened (RGB scaled
    # towards black) to 3.4:1 on white, enough for bars and arrows (WCAG 1.4.11); the
    # ladder darkens its words further, as it does every colour's.
    "https": "#9E8A00",
}

OUTCOME = {
    "ok": OKABE_ITO["green"],
    "temporary": OKABE_ITO["orange"],  # 4xx, timeouts: tried again
    "permanent": OKABE_ITO["vermillion"],  # 5xx: returned to the sender
}

COST = {
    "network": OKABE_ITO["blue"],
    "tls": OKABE_ITO["black"],
    "dns": OKABE_ITO["sky"],
    "server": OKABE_ITO["green"],
    "queue": OKABE_ITO["grey"],
    "retry": OKABE_ITO["orange"],  # waits caused by temporary failures
    "poll": "#EBD0E1",  # a pale POP3 colour: waiting for the mail program, not working
}

COST_LABEL = {
    "network": "network",
    "tls": "TLS",
    "dns": "DNS",
    "server": "server work",
    "queue": "queueing",
    "retry": "failed tries & retry waits",
    "poll": "waiting for the POP poll",
}

ROLE = {
    # role: (marker, colour, size)
    "client": ("s", OKABE_ITO["blue"], 380),
    "smtp": ("D", OKABE_ITO["vermillion"], 380),
    "dns": ("^", OKABE_ITO["sky"], 380),
    "pop": ("o", OKABE_ITO["green"], 420),
    "router": (".", OKABE_ITO["grey"], 120),
}

# The mailbox server's name where someone reads it over IMAP (it offers both, as Dovecot).
IMAP_MAILBOX = "mailbox server (POP3, IMAP)"
ROLE_LABEL = {
    "client": "mail program (MUA)",
    "smtp": "mail server (MTA)",
    "dns": "DNS resolver",
    "pop": "mailbox server (POP3)",
    "router": "router",
}


def outcome_of(code: str) -> str:
    """ok / temporary / permanent from a reply code or enhanced status (first digit), or
    IMAP's OK, NO, BAD and its untagged "*" (a login refused is not tried again alone)."""
    if code.startswith(("2", "3", "+")) or code in ("NOERROR", "OK", "*"):
        return "ok"
    if code in ("NXDOMAIN", "NO", "BAD"):
        return "permanent"
    if code.startswith("5") or code.startswith("-"):
        return "permanent"
    return "temporary"


def time_unit(seconds: float) -> tuple[float, str]:
    """One choice of unit for every figure: seconds, minutes or hours by the span shown."""
    if seconds < 120:
        return 1.0, "s"
    if seconds < 4 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def window(start: float, end: float | None, scale: float, unit: str) -> str:
    """A stretch of the run in an axis's unit, as precise as its edges need: "0–120 min",
    "0.2–10.2 min", "from 5 min" (one way of writing an outage in every figure)."""
    if end is None:
        return f"from {number(start / scale)} {unit}"
    return f"{number(start / scale)}–{number(end / scale)} {unit}"


def number(value: float) -> str:
    """A value with one decimal at most: 120, 10.2."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


# The time axis of a run of many messages (a working day): the scenario's clock, said the
# same way in the timeline, the servers and the load figures.
CLOCK_LABEL = "time of day (the scenario's local time)"
CLOCK_STEPS = (60, 300, 900, 3600, 3 * 3600)  # seconds between ticks: the first giving ≤ 16


def clock(seconds_of_day: float, seconds: bool = False) -> str:
    """A moment as the time of day: 10:58 (10:58:07 with ``seconds``)."""
    moment = round(seconds_of_day) % 86400
    hours, rest = divmod(moment, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if seconds else "")


def clock_axis(ax: Any, origin: float, scale: float, span: float) -> None:
    """Label ``ax``'s x axis with the clock: an axis value x is ``origin + x * scale``
    seconds into the day; ticks on round times, a few across ``span`` seconds (with
    seconds on a stretch under 5 minutes)."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    step = next((s for s in CLOCK_STEPS if span / s <= 16), CLOCK_STEPS[-1])
    few = span < 5 * 60
    ax.xaxis.set_major_locator(MultipleLocator(step / scale, offset=-origin % step / scale))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock(origin + x * scale, few)))
    ax.set_xlabel(CLOCK_LABEL)
