"""Security as pictures: what each eavesdropper could read, session by session, and how
the receiving server judged each message's sender (SPF, DKIM, DMARC) and where it put
it. Tables drawn large, in words and colours, so that the back row reads the verdicts."""

from __future__ import annotations

import re
import textwrap

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from mailsim.eavesdrop import KINDS
from mailsim.result import Result

# A cell's colours: (fill, text). Light fills, text dark enough on them (WCAG ≥ 4.5:1).
READ = ("#F8D3BC", "#7A2E00")  # a secret read in the clear (vermillion, light)
SEEN = ("#FBE5B5", "#5C4300")  # commands, readable but not secret (orange, light)
SEALED = ("#CFE3F2", "#003A63")  # only TLS records: sizes and timing (blue, light)
PLAIN = ("#EDEDED", "#333333")  # who talks to whom: never encrypted
EMPTY = ("#FFFFFF", "#767676")
KIND_COLOURS = {
    "password": READ,
    "envelope": READ,
    "headers and body": READ,
    "commands": SEEN,
    "TLS records": SEALED,
    "connection": PLAIN,
}
VERDICT = {
    "pass": ("#C9EBDD", "#00513A"),  # bluish green, light
    "fail": READ,
    "none": PLAIN,
}
UNALIGNED = SEEN  # SPF passed, but for another domain than the From: line's: no help
# Where a message landed, judged against who really sent it: (fill, text).
FATE = {
    "genuine": VERDICT["pass"],  # in the inbox, and it is who it says it is
    "stopped": SEALED,  # refused or put in the spam folder: the checks worked
    "forged": READ,  # a forged From: line in the inbox: the forgery got through
}
CARDS = 6  # messages on one 1280×720 page, each card readable from the back
FONT = 14  # points: 19 px at 100 dpi; the smallest text here is 11 pt, 15 px on 1280×720


def overheard(result: Result, eavesdropper: str | None = None, *, ax: Axes | None = None) -> Axes:
    """A table: one row per session that crossed the eavesdropper's link, one column per
    kind of thing it could read (the password, the envelope, the headers and body, other
    commands, only TLS records, the connection itself), each cell saying what exactly."""
    frame = result.overheard
    names = list(dict.fromkeys(frame["eavesdropper"])) if len(frame) else []
    if eavesdropper is None and names:
        eavesdropper = names[0]
    if eavesdropper is not None and eavesdropper not in names:
        taps = ", ".join(names) or "none in this scenario"
        raise ValueError(f"no eavesdropper {eavesdropper!r} (eavesdroppers: {taps})")
    mine = frame[frame["eavesdropper"] == eavesdropper] if names else frame
    rows = []
    for session, steps in mine.groupby("session", sort=False):
        first = steps.iloc[0]
        message = next((m for m in steps["message"] if m), "")
        what = f"{message} · {first['protocol']}" if message else f"{first['protocol']}, no message"
        label = f"{what}\n{first['src']} → {first['dst']}"
        found = {}
        for kind in KINDS:
            of_kind = steps[steps["what"] == kind]
            if len(of_kind):
                found[kind] = _cell(kind, list(of_kind["detail"]))
        rows.append((label, found, int(session)))
    if ax is None:
        height = min(7.2, max(3.0, 1.3 + 0.62 * len(rows)))
        _, ax = plt.subplots(figsize=(12.8, height if len(rows) < 10 else 7.2),
                             layout="constrained")  # fmt: skip
    columns = ["session", *(kind.replace(" and ", "\nand ") for kind in KINDS)]
    widths = [2.3, 2.1, 2.35, 1.65, 1.45, 1.5, 1.35]  # the envelope: two addresses
    lefts = [sum(widths[:i]) for i in range(len(widths))]
    total = sum(widths)
    ax.set_xlim(0, total)
    ax.set_ylim(len(rows) + 0.9, 0)
    ax.axis("off")
    for left, name in zip(lefts, columns, strict=True):
        ax.text(left + 0.05, 0.45, name, fontsize=FONT, fontweight="bold", va="center")
    for y, (label, found, session) in enumerate(rows, start=1):
        ax.text(0.05, y + 0.45, label, fontsize=FONT - 2, va="center", gid=f"session-{session}")
        for left, width, kind in zip(lefts[1:], widths[1:], KINDS, strict=True):
            fill, ink = KIND_COLOURS[kind] if kind in found else EMPTY
            ax.add_patch(Rectangle((left + 0.03, y + 0.06), width - 0.06, 0.8, facecolor=fill,
                                   edgecolor="white", gid=f"cell-{session}-{kind}"))  # fmt: skip
            text = found.get(kind, "—")
            ax.text(left + width / 2, y + 0.46, text, ha="center", va="center",
                    fontsize=FONT - 3, color=ink, gid=f"text-{session}-{kind}")  # fmt: skip
    link = _link(result, eavesdropper)
    secrets = sum(1 for _, found, _ in rows if any(k in found for k in KINDS[:3]))
    ax.set_title(
        f"What {eavesdropper or 'nobody'} could read on {link}: {len(rows)} sessions crossed"
        f" the link,\n{secrets} gave away secrets — scenario {result.scenario.name!r}",
        loc="left", fontsize=FONT + 1,
    )  # fmt: skip
    return ax


def _cell(kind: str, details: list[str]) -> str:
    """What a cell says: the secret itself, shortened to fit; for TLS records, how many."""
    if kind == "TLS records":
        return f"{len(details)} records:\nsizes and timing"
    if kind == "connection":
        return "who talks\nto whom"
    if kind == "commands":
        return f"{len(details)} commands"
    text = details[0]
    if kind == "envelope":  # MAIL FROM:<a> SIZE=…, RCPT TO:<b>: the two addresses
        addresses = [re.search(r"<([^>]*)>", d) for d in details]
        found = [m.group(1) or "<>" for m in addresses if m]
        return "\n".join(
            _short(f"{w} {a}", 28) for w, a in zip(("from", "to"), found, strict=False)
        )
    if kind == "headers and body":
        text = f"the whole message ({len(details)}×)" if len(details) > 1 else "the whole message"
    # "(AUTH PLAIN is base64, not encryption)": how it leaked, in the words that fit.
    text = re.sub(r"\((\w+ \w+) is base64[^)]*\)", r"(\1)", text)
    return "\n".join(textwrap.wrap(text, 24, max_lines=2, placeholder=" …"))


def _link(result: Result, eavesdropper: str | None) -> str:
    for spy in result.scenario.eavesdroppers:
        if spy.name == eavesdropper:
            return " ↔ ".join(spy.between)
    return "no link"


_MAILFROM = re.compile(r"smtp\.mailfrom=([^\s;]+)")
_RESULT = re.compile(r"\b(spf|dkim|dmarc)=(\w+)(?: \(p=(\w+)\))?")


def verdicts(result: Result, *, ax: Axes | None = None) -> Axes:
    """A card per message: who the envelope says sent it, who its From: line claims,
    the receiving server's SPF, DKIM and DMARC results (its Authentication-Results,
    RFC 8601) and what came of it — refused with the DMARC reply, or in which folder."""
    every = [c for c in result.copies if not c.message.is_bounce]
    copies = every[:CARDS]
    if ax is None:
        height = min(7.2, max(3.0, 1.4 + 0.9 * len(copies)))
        _, ax = plt.subplots(figsize=(12.8, height), layout="constrained")
    columns = ["id", "envelope sender\n(MAIL FROM)", "From: line\n(what bob sees)",
               "SPF", "DKIM", "DMARC", "what came of it"]  # fmt: skip
    widths = [0.6, 2.2, 2.55, 1.8, 0.9, 1.5, 2.95]
    lefts = [sum(widths[:i]) for i in range(len(widths))]
    ax.set_xlim(0, sum(widths))
    ax.set_ylim(len(copies) + 1.1, 0)
    ax.axis("off")
    for left, name in zip(lefts, columns, strict=True):
        ax.text(left + 0.05, 0.5, name, fontsize=FONT - 1, fontweight="bold", va="center")
    for y, copy in enumerate(copies, start=1):
        message = copy.message
        found = {name: (value, policy) for name, value, policy in
                 _RESULT.findall(copy.authentication or "")}  # fmt: skip
        claimed = message.header_from or message.sender
        cells = [message.id, message.sender or "<>", claimed]
        for left, text in zip(lefts, cells, strict=False):
            forged = text == claimed and claimed != message.sender and left > 0
            ax.text(left + 0.05, y + 0.55, _short(text, 24), fontsize=FONT - 2, va="center",
                    color="#7A2E00" if forged else "#222222",
                    fontweight="bold" if forged else "normal")  # fmt: skip
        claimed_domain = claimed.rpartition("@")[2].lower()
        for left, width, name in zip(lefts[3:6], widths[3:6], ("spf", "dkim", "dmarc"),
                                     strict=True):  # fmt: skip
            value, policy = found.get(name, ("none", ""))
            fill, ink = VERDICT.get(value, VERDICT["none"])
            shown = value if not policy else f"{value}\n(p={policy})"
            checked = _MAILFROM.search(copy.authentication or "")
            if name == "spf" and checked:  # SPF vouches for the envelope's domain only
                domain = checked.group(1).rpartition("@")[2].lower()
                shown = f"{value}\nfor {_short(domain, 16)}"
                if value == "pass" and domain != claimed_domain:
                    fill, ink = UNALIGNED  # a pass for mallory's own domain says nothing
                    shown = f"pass, but\nfor {_short(domain, 16)}"
            ax.add_patch(Rectangle((left + 0.04, y + 0.12), width - 0.08, 0.8, facecolor=fill,
                                   edgecolor="white", gid=f"{name}-{message.id}"))  # fmt: skip
            ax.text(left + width / 2, y + 0.52, shown, ha="center", va="center",
                    fontsize=FONT - 1, color=ink, gid=f"{name}-text-{message.id}")  # fmt: skip
        fate, kind = _fate(copy, forged=claimed_domain != (message.sender or "").rpartition("@")[2]
                           .lower())  # fmt: skip
        fill, ink = FATE[kind]
        ax.add_patch(Rectangle((lefts[6] + 0.04, y + 0.12), widths[6] - 0.08, 0.8,
                               facecolor=fill, edgecolor="white", gid=f"fate-box-{message.id}"))  # fmt: skip
        ax.text(lefts[6] + 0.1, y + 0.52, fate, fontsize=FONT - 2, va="center", color=ink,
                gid=f"fate-{message.id}")  # fmt: skip
    shown = f"the first {len(copies)} of {len(every):,} messages" if len(every) > CARDS else ""
    ax.set_title(
        f"Who really sent it? The receiving server's checks{', ' + shown if shown else ''}"
        f" — scenario {result.scenario.name!r}",
        loc="left", fontsize=FONT + 1,
    )  # fmt: skip
    return ax


def _fate(copy: object, forged: bool) -> tuple[str, str]:
    """Refused with the server's reply, or where the message landed — and whether that
    stopped a forgery, let one through, or delivered the real sender's mail."""
    status = getattr(copy, "status", "")
    reason = getattr(copy, "reason", "")
    folder = getattr(copy, "folder", "inbox")
    if status in ("bounced", "refused", "expired"):
        text = f"{status}: {reason}"
        return "\n".join(textwrap.wrap(text, 30, max_lines=3, placeholder=" …")), "stopped"
    if folder == "spam":
        return f"{status}, in the spam folder", "stopped"
    if forged:
        return f"{status}, in the inbox:\nthe forgery got through", "forged"
    return f"{status}, in the inbox", "genuine"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
