"""The plain-text report ``mailsim run`` prints: each message's hops, where its time went,
and the line that accounts for every message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailsim.eavesdrop import summary
from mailsim.message import COSTS
from mailsim.result import Result
from mailsim.units import format_duration

COST_LABELS = {
    "network": "network",
    "tls": "TLS",
    "dns": "DNS",
    "server": "server work",
    "queue": "queueing",
    "retry": "failed attempts and retry waits",
    "poll": "waiting for the POP poll",
}


def text(result: Result, limit: int = 20, overrides: Sequence[str] = ()) -> str:
    """A readable report; at most ``limit`` messages are shown in detail. ``overrides``
    (the ``--set`` changes) are named in the first line, so that a copied report says
    how to run it again."""
    changed = "".join(f" · --set {o}" for o in overrides)
    lines = [
        f"mailsim {result.version} · scenario {result.scenario.name!r} · seed {result.seed}"
        f"{changed} · simulated {format_duration(result.end_time)}",
        "",
    ]
    hops = result.hops
    rows = result.message_rows
    for m in rows[: max(limit, 0)]:
        lines.append(f"{m.id}  {m.sender} → {m.recipient}  “{m.subject}”  {m.size} bytes")
        mine = hops[
            (hops["message"] == m.id) & (hops["recipient"] == m.recipient) & ~hops["duplicate"]
        ]
        lines.append(
            f"  {'#':>2}  {'from':<12} {'to':<12} {'protocol':<10} {'start':>11}"
            f" {'took':>10}  {'TLS':<4} {'auth':<4} outcome"
        )
        for h in mine.itertuples():
            lines.append(
                f"  {h.index:>2}  {h.src:<12} {h.dst:<12} {h.protocol:<10}"
                f" {h.start:>10.3f}s {format_duration(h.end - h.start):>10}"
                f"  {h.tls or '-':<4} {'yes' if h.auth else 'no':<4} {h.outcome}"
            )
        checked = m.authentication
        if checked and any(f"{check}=none" not in checked for check in ("spf", "dkim", "dmarc")):
            lines.append(f"  Authentication-Results: {checked}")
        if m.folder not in (None, "inbox"):
            lines.append(f"  put in the {m.folder} folder (DMARC: p=quarantine)")
        if m.status == "retrieved":
            lines.append(f"  retrieved after {format_duration(m.retrieved_at - m.submitted_at)}:")
            parts = [
                f"{COST_LABELS[name]} {format_duration(getattr(m, f'{name}_time'))}"
                for name in COSTS
                if getattr(m, f"{name}_time") >= 5e-7
            ]
            lines.append("    " + " + ".join(parts))
        else:
            why = f" ({m.reason})" if m.reason else ""
            lines.append(f"  status: {m.status}{why}")
        for dup in result.duplicates:
            first = dup.duplicate_of
            if first is not None and first.seq == m.seq and dup.delivered_at is not None:
                lines.append(
                    f"  + a second copy (its 250 was lost on the way) reached the mailbox at"
                    f" {dup.delivered_at:.3f}s"
                )
        lines.append("")
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - max(limit, 0)} more (use --json or --out)")
    lines += eavesdropping(result, limit)
    lines.append(conservation_line(result))
    return "\n".join(lines)


def eavesdropping(result: Result, limit: int = 20) -> list[str]:
    """For each eavesdropper, each session that crossed its link: what it could read."""
    heard = result.overheard
    lines: list[str] = []
    for spy in result.scenario.eavesdroppers:
        a, b = spy.between
        lines.append(f"What {spy.name}, listening on {a}–{b}, could read:")
        mine = heard[heard["eavesdropper"] == spy.name]
        table = summary(mine) if len(mine) else None
        if table is None:
            lines += ["  nothing: no session crossed the link", ""]
            continue
        messages = mine.groupby("session")["message"].first()
        for shown, row in enumerate(table.itertuples()):
            if shown >= limit:
                lines.append(f"  … and {len(table) - limit} more sessions")
                break
            who = messages[row.session] or "(a poll, no mail)"
            lines.append(f"  {who}  {row.src} → {row.dst} ({row.protocol}): {_read(row)}")
        lines.append("")
    return lines


def _read(row: Any) -> str:
    secrets = [k for k in row.plaintext if k != "commands"]
    if secrets:
        return "in plaintext — " + "; ".join(row.details)
    if "TLS records" in row.read:
        first = (
            "STLS: the greeting and CAPA"
            if row.protocol == "pop3"
            else "STARTTLS: the greeting and EHLO"
        )
        before = f" (before {first})" if row.plaintext else ""
        return f"only TLS records, {row.tls_bytes:,} bytes{before}"
    return "the commands and replies, no message"


def conservation_line(result: Result) -> str:
    """The line that accounts for every message people sent, by final state, and one for
    the bounces sent back if there were any."""
    s = result.summary()
    line = (
        f"sent {s['sent']} = retrieved {s['retrieved']} + delivered {s['delivered']}"
        f" + bounced {s['bounced']} + expired {s['expired']} + in flight {s['in_flight']}"
        f" (duplicates {s['duplicates']})"
    )
    if s["bounces_sent"]:
        line += (
            f"\nbounces sent back {s['bounces_sent']} = retrieved {s['bounces_retrieved']}"
            f" + delivered {s['bounces_delivered']} + undeliverable"
            f" {s['bounces_undeliverable']} + in flight {s['bounces_in_flight']}"
        )
    return line
