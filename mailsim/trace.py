"""Reading a real message's route from its trace headers (RFC 5321 §4.4, RFC 5322 §3.6.7).

Every server that handles a message puts a ``Received:`` line on top of it: who it came
from, who took it, with which protocol, when. Read from the bottom up, they are the
route. Real servers write them in many dialects (Postfix, Exim, Sendmail, qmail,
Exchange, Gmail, Dovecot's LMTP, webmail's HTTP); this module reads the clauses they
share and the comments they add (addresses, TLS), and never raises on what it cannot
read: a header it cannot make sense of becomes a flagged hop, a time that goes backwards
a warning (the clocks of two servers disagree).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import ipaddress
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KEYWORDS = ("from", "by", "via", "with", "id", "for")
# RFC 3848's protocol names: an S means TLS, an A means the client authenticated.
TLS_PROTOCOLS = {"ESMTPS", "ESMTPSA", "LMTPS", "LMTPSA", "SMTPS", "UTF8SMTPS", "UTF8SMTPSA",
                 "HTTPS"}  # fmt: skip
# TLS as servers note it in comments: "using TLSv1.3", "version=TLS1_2", "(TLS1.3)",
# "TLS 1.2", "Google Transport Security" (not a host name such as mx.tls12.example).
_TLS_IN_COMMENT = re.compile(
    r"(\bTLS ?v?1[._][0-3]|\bSSLv3|Google Transport Security|using TLS)", re.IGNORECASE
)
_TLS_VERSION = re.compile(r"\bTLS ?v?(1)[._]([0-3])", re.IGNORECASE)
_BRACKETED = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_HELO = re.compile(r"\bhelo[= ]\s*([^\s)]+)", re.IGNORECASE)

# RFC 5321 §6.3: a server that counts Received: headers to find a loop "SHOULD use a
# large rejection threshold, normally at least 100" (Postfix's hopcount_limit is 50).
# A route this long is a loop; drawing or replaying it would show nothing more.
LOOP_HOPS = 100
# Enough to show a loop whole, ten times over; past it, only the oldest hops are read.
MAX_HOPS_READ = 1000
# Headers read, from the bottom: 32 times Sendmail's limit for all the headers of a
# message (MaxHeadersLength, 32 KB), read in well under a second.
MAX_HEADER_CHARS = 2**20


@dataclass
class Hop:
    """One Received header, in the order the message travelled (``index`` 1 is the
    oldest, the bottom header)."""

    index: int
    raw: str
    from_host: str | None = None
    from_ip: str | None = None
    by: str | None = None
    protocol: str | None = None
    tls: bool = False
    tls_version: str | None = None
    id: str | None = None
    recipient: str | None = None  # the "for" clause
    time: datetime | None = None
    delay: float | None = None  # seconds since the previous hop with a time
    garbled: bool = False
    note: str | None = None  # a comment before the clauses: "(qmail 123 invoked from network)"
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "from": self.from_host,
            "ip": self.from_ip,
            "by": self.by,
            "protocol": self.protocol,
            "tls": self.tls,
            "tls_version": self.tls_version,
            "id": self.id,
            "for": self.recipient,
            "time": self.time.isoformat() if self.time else None,
            "delay": self.delay,
            "garbled": self.garbled,
            "note": self.note,
            "warnings": self.warnings,
            "raw": self.raw,
        }


@dataclass
class Route:
    """A message's route: its hops oldest first, and what its other headers say."""

    hops: list[Hop]
    subject: str | None = None
    sender: str | None = None  # the From: line
    recipient: str | None = None  # the To: line
    message_id: str | None = None
    date: datetime | None = None
    authentication: list[str] = field(default_factory=list)  # Authentication-Results
    warnings: list[str] = field(default_factory=list)
    partial: bool = False  # headers were left unread (too many; the warnings say which)

    @property
    def total(self) -> float | None:
        """Seconds from the first hop's time to the last one's."""
        times = [hop.time for hop in self.hops if hop.time is not None]
        return (times[-1] - times[0]).total_seconds() if len(times) >= 2 else None

    def checks(self) -> dict[str, str]:
        """SPF, DKIM, DMARC results from the newest Authentication-Results header."""
        found: dict[str, str] = {}
        for header in self.authentication[:1]:
            for method in ("spf", "dkim", "dmarc", "arc"):
                match = re.search(rf"\b{method}=(\w+)", header, re.IGNORECASE)
                if match:
                    found[method] = match.group(1).lower()
        return found

    def verdicts(self) -> list[tuple[str | None, dict[str, str]]]:
        """Each Authentication-Results header, newest first: the server that checked
        (its authserv-id, RFC 8601 §2.2; None where it wrote none, as Exchange does) and
        what it found for SPF, DKIM, DMARC (and ARC), in that order."""
        return [_verdict(header) for header in self.authentication]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "from": self.sender,
            "message_id": self.message_id,
            "date": self.date.isoformat() if self.date else None,
            "total": self.total,
            "checks": self.checks(),
            "warnings": self.warnings,
            "hops": [hop.to_dict() for hop in self.hops],
        }


METHODS = ("spf", "dkim", "dmarc", "arc")


def _verdict(header: str) -> tuple[str | None, dict[str, str]]:
    """One Authentication-Results header: its authserv-id (the word before the first
    ";", unless that word is already a result) and each method's first result. Comments
    are left out: "(google.com: domain of … designates …)" holds no verdict."""
    text = _without_comments(header)
    head, _, rest = text.partition(";")
    server: str | None = head.strip().split()[0] if head.strip() else None
    if server is not None and "=" in server:
        server, rest = None, text  # no authserv-id: the first clause is a result
    found: dict[str, str] = {}
    for method in METHODS:
        match = re.search(rf"(?<![\w.-]){method}\s*=\s*([\w-]+)", rest, re.IGNORECASE)
        if match:
            found[method] = match.group(1).lower()
    return server, found


# --- reading one header -----------------------------------------------------------------


def _split_date(value: str) -> tuple[str, str | None]:
    """The clauses and the date: the date follows the last ";" outside comments."""
    depth, cut = 0, -1
    for i, char in enumerate(value):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0:
            cut = i
    if cut < 0:
        return value, None
    return value[:cut], value[cut + 1 :].strip() or None


def _tokens(text: str) -> list[tuple[str, bool]]:
    """Words and comments (nested parentheses kept whole): (text, is_comment)."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char == "(":
            depth, start = 0, i
            while i < len(text):
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            out.append((text[start + 1 : i - 1].strip(), True))
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] != "(":
                i += 1
            out.append((text[start:i], False))
    return out


def _clauses(text: str) -> dict[str, tuple[list[str], list[str]]]:
    """Each keyword's words and comments, in order of appearance; comments before any
    keyword (qmail's "(qmail 123 invoked from network)") go under ""."""
    clauses: dict[str, tuple[list[str], list[str]]] = {"": ([], [])}
    current, commented = "", False
    for token, comment in _tokens(text):
        if not comment and token.lower() in KEYWORDS and token.lower() not in clauses:
            current, commented = token.lower(), False
            clauses[current] = ([], [])
        elif comment:
            clauses[current][1].append(token)
            commented = True
        elif commented and current:
            # Words after a clause's comment are extras (Exim's "tls CIPHER"), not its value.
            clauses[""][0].append(token)
        else:
            clauses[current][0].append(token)
    return clauses


def _ip(text: str) -> str | None:
    """An IP address written in brackets, or bare, in ``text``."""
    for candidate in [*_BRACKETED.findall(text), *re.findall(r"[0-9A-Fa-f:.]{7,}", text)]:
        try:
            return str(ipaddress.ip_address(candidate.strip(".")))
        except ValueError:
            continue
    return None


def _hostname(text: str) -> str | None:
    text = text.strip().strip("[]").rstrip(".")
    return text or None


def quoted(text: str, room: int = 60) -> str:
    """``text`` quoted for a message, control characters escaped, cut after ``room``
    characters: a warning names what it could not read without repeating a megabyte."""
    return repr(text if len(text) <= room else text[:room] + "…")


def _without_comments(text: str) -> str:
    """``text`` with each "(…)" replaced by a space, in one pass: a regular expression
    would try every "(" of a comment that never closes against the rest of the text."""
    out, i = [], 0
    while (start := text.find("(", i)) >= 0 and (end := text.find(")", start)) >= 0:
        out += [text[i:start], " "]
        i = end + 1
    out.append(text[i:])
    return "".join(out)


def parse_date(text: str) -> tuple[datetime | None, list[str]]:
    """An RFC 5322 date as servers really write it (extra spaces, no weekday, a time
    zone name in a comment, single-digit hours); a naive result is read as UTC. A date
    no calendar holds (year 99999999999, hour 99999, or past the year 9999 in UTC) is
    unreadable, not an error."""
    warnings: list[str] = []
    cleaned = " ".join(_without_comments(text).replace(",", ", ").split())
    try:
        moment = email.utils.parsedate_to_datetime(cleaned)
        if moment.tzinfo is None:
            warnings.append(f"no time zone in {quoted(text.strip())} (-0000): read as UTC")
            moment = moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)  # delays and the JSON compare times in UTC
    except (TypeError, ValueError, IndexError, OverflowError):
        return None, [f"unreadable date {quoted(text)}"]
    return moment, warnings


def parse_received(value: str, index: int = 0) -> Hop:
    """One Received header's value."""
    raw = " ".join(value.split())
    hop = Hop(index=index, raw=raw)
    clauses_text, date_text = _split_date(raw)
    clauses = _clauses(clauses_text)
    if date_text is None:
        hop.warnings.append("no date")
    else:
        hop.time, warnings = parse_date(date_text)
        hop.warnings += warnings
    words, comments = clauses.get("from", ([], []))
    if "from" in clauses:
        said = " ".join(comments)
        helo = _HELO.search(said)
        word = words[0] if words else None
        rdns = comments[0].split()[0] if comments and comments[0].split() else None
        hop.from_ip = _ip(said) or (_ip(word) if word else None)
        if word and _ip(word) is None and word.lower() != "unknown":
            hop.from_host = _hostname(word)
        elif helo:
            hop.from_host = _hostname(helo.group(1))
        elif rdns and _ip(rdns) is None and rdns.lower() not in ("helo", "unknown"):
            hop.from_host = _hostname(rdns)
        else:
            hop.from_host = hop.from_ip or (_hostname(word) if word else None)
    if "by" in clauses and clauses["by"][0]:
        hop.by = _hostname(clauses["by"][0][0])
    if "with" in clauses and clauses["with"][0]:
        hop.protocol = " ".join(clauses["with"][0]).upper()
    if "id" in clauses and clauses["id"][0]:
        hop.id = clauses["id"][0][0].rstrip(";")
    if "for" in clauses and clauses["for"][0]:
        hop.recipient = clauses["for"][0][0].strip("<>;")
    every_comment = " ".join(c for _, cs in clauses.values() for c in cs)
    version = _TLS_VERSION.search(every_comment)
    if version:
        hop.tls_version = f"{version.group(1)}.{version.group(2)}"
    tls_words = " ".join(clauses.get("with", ([], []))[0] + clauses.get("", ([], []))[0])
    hop.tls = (
        (hop.protocol or "") in TLS_PROTOCOLS
        or bool(_TLS_IN_COMMENT.search(every_comment))
        or bool(re.search(r"\btls\b", tls_words, re.IGNORECASE))
    )
    if clauses[""][1]:
        hop.note = clauses[""][1][0]
    known = any(k in clauses for k in KEYWORDS)
    if not known and hop.time is None and not clauses[""][1]:
        hop.garbled = True
        hop.warnings = ["not a Received header this reader understands"]
    return hop


def too_long(route: Route, doing: str) -> str | None:
    """Why ``route`` is too long to ``doing`` ("draw", "replay"), or None: the table
    shows a loop, a figure or a replay of it would show nothing more."""
    if len(route.hops) <= LOOP_HOPS:
        return None
    count = f"more than {len(route.hops):,}" if route.partial else f"{len(route.hops):,}"
    return (
        f"{count} hops, too many to {doing} (at most {LOOP_HOPS}: from"
        f" {LOOP_HOPS} hops on, mail servers take a message for a loop, RFC 5321 §6.3)"
    )


# --- reading a message ------------------------------------------------------------------


def first_message(text: str) -> str:
    """The headers to read: an mbox's first message, or the text as it is. (Found with
    ``str.find``, in one pass over a mailbox of any size.)"""
    if not text.startswith("From "):
        return text
    start = text.find("\n") + 1
    if start == 0:
        return ""
    # The next message begins with a "From " line after a blank one (mbox, RFC 4155).
    i = text.find("\nFrom ", start)
    while i >= 0:
        if not text[text.rfind("\n", 0, i) + 1 : i].strip():
            return text[start : i + 1]
        i = text.find("\nFrom ", i + 1)
    return text[start:]


def _header_section(text: str) -> tuple[str, list[str]]:
    """The header fields of the first message (the body is never read), at most
    :data:`MAX_HEADER_CHARS` of them from the bottom, and a warning if that left any
    out. Servers add their fields on top, so the bottom holds the oldest hops and the
    sender's own From:, To: and Subject:."""
    text = first_message(text.replace("\r\n", "\n")).lstrip("\n")
    end = text.find("\n\n")
    section = text if end < 0 else text[: end + 1]
    if len(section) <= MAX_HEADER_CHARS:
        return section, []
    # Cut where a field begins: a line that does not start with a space or a tab.
    cut = section.find("\n", len(section) - MAX_HEADER_CHARS - 1)
    while cut >= 0 and section[cut + 1 : cut + 2] in (" ", "\t"):
        cut = section.find("\n", cut + 1)
    warning = (
        f"the headers are {len(section) / 2**20:.1f} MiB, more than any real message's;"
        f" only the last {MAX_HEADER_CHARS / 2**20:.1f} MiB (the oldest Received: headers"
        " and the sender's own) are read"
    )
    return ("" if cut < 0 else section[cut + 1 :]), [warning]


def parse(text: str) -> Route:
    """The route of the message in ``text`` (a whole message, pasted headers, or an
    mbox). Hops oldest first; delays between consecutive times; warnings, never an
    exception, for what does not add up. Bounded: at most :data:`MAX_HEADER_CHARS` of
    headers and :data:`MAX_HOPS_READ` hops are read, with a warning when more were there."""
    section, warnings = _header_section(text)
    message = email.message_from_string(section, policy=email.policy.compat32)
    received = message.get_all("Received") or []
    if len(received) > MAX_HOPS_READ:
        warnings.append(
            f"{len(received):,} Received: headers; only the oldest {MAX_HOPS_READ:,} are"
            f" read (from {LOOP_HOPS} hops on, mail servers take a message for a loop:"
            " RFC 5321 §6.3)"
        )
        received = received[-MAX_HOPS_READ:]
    hops = [parse_received(str(value), i) for i, value in enumerate(reversed(received), 1)]
    route = Route(hops=hops, warnings=warnings, partial=bool(warnings))
    route.subject = _plain(message.get("Subject"))
    route.sender = _plain(message.get("From"))
    route.recipient = _plain(message.get("To"))
    route.message_id = _plain(message.get("Message-ID"))
    date = message.get("Date")
    if date:
        route.date, _ = parse_date(str(date))
    route.authentication = [" ".join(str(v).split()) for v in
                            message.get_all("Authentication-Results") or []]  # fmt: skip
    # A delay is only the hop's own: after a hop without a time there is none.
    for before, hop in itertools.pairwise(hops):
        if hop.time is None or before.time is None:
            continue
        hop.delay = (hop.time - before.time).total_seconds()
        if hop.delay < 0:
            hop.warnings.append(
                f"{-hop.delay:.0f} s earlier than hop {before.index}: the two servers'"
                " clocks disagree (clock skew)"
            )
    if not hops:
        route.warnings.append("no Received: headers — paste the full headers of the message")
    return route


def _plain(value: Any) -> str | None:
    return " ".join(str(value).split()) if value is not None else None


def shown(text: str) -> str:
    """``text`` with what a terminal would act on written as an escape (``\\x1b``,
    ``\\u202e``): control characters, and the invisible marks that reverse the order of
    what follows. A header can then neither recolour the terminal nor move the table's
    columns; the JSON keeps the exact text."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short(text: str, room: int = 200) -> str:
    """``text`` for one line of the table: escaped, at most ``room`` characters."""
    return shown(text) if len(text) <= room else shown(text[: room - 1]) + "…"


# --- the hop table ----------------------------------------------------------------------


def table(route: Route, width: int | None = None) -> str:
    """The route as a header analyser shows it: one row per hop, its delay and share of
    the total, then the sender checks and every warning — in ``width`` columns (default:
    the terminal's), long names wrapped in their cell and past 64 characters ended
    with "…", never cut without a mark."""
    from rich.table import Table

    from mailsim.report import render, terminal_width, wrap
    from mailsim.units import format_duration

    width = width or terminal_width()
    total = route.total
    # Shares of a total only mean something when no clock went backwards.
    skewed = any(hop.delay is not None and hop.delay < 0 for hop in route.hops)
    # One day in one time zone (the common case): the date goes in the title, once.
    days = {hop.time.strftime("%Y-%m-%d %z") for hop in route.hops if hop.time}
    clock = "%H:%M:%S" if len(days) == 1 else "%Y-%m-%d %H:%M:%S %z"
    title = f"“{_short(route.subject, 80)}”" if route.subject else "the message"
    sender = _short(route.sender, 80) if route.sender else "an unknown sender"
    heading = (
        f"Route of {title} from {sender}: {len(route.hops)} hop"
        + ("" if len(route.hops) == 1 else "s")
        + (f", {total:.0f} s in all" if total is not None and total < 60 else "")
        + (f", {format_duration(total)} in all" if total is not None and total >= 60 else "")
    )
    if len(days) == 1:
        day, zone = next(iter(days)).split()
        heading += f"; on {day}, times {zone}"
    out = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="")
    out.add_column("#", justify="right", no_wrap=True)
    for name in ("from", "by", "with"):
        out.add_column(name, overflow="fold", ratio=2 if name != "with" else 1)
    out.add_column("TLS", no_wrap=True)
    out.add_column("time", overflow="fold")
    out.add_column("delay", justify="right", no_wrap=True)
    out.add_column("share", justify="right", no_wrap=True)
    for hop in route.hops:
        if hop.garbled:  # its text is quoted under Warnings
            out.add_row(str(hop.index), "??", "??", "??", "", "", "", "")
            continue
        origin = _short(hop.from_host or (f"({hop.note})" if hop.note else "-"), 64)
        if hop.from_ip and hop.from_ip != hop.from_host:
            origin += f" [{hop.from_ip}]"
        delay = share = ""
        if hop.delay is not None:  # headers keep whole seconds
            delay = f"{hop.delay:.0f} s" if abs(hop.delay) < 60 else format_duration(hop.delay)
            if total and not skewed:
                share = f"{100 * hop.delay / total:.0f} %"
        out.add_row(
            str(hop.index),
            origin,
            _short(hop.by or "-", 64),
            _short(hop.protocol or "-", 20),
            (hop.tls_version or "yes") if hop.tls else "-",
            hop.time.strftime(clock) if hop.time else "(no date)",
            delay,
            share,
        )
    lines = [*wrap(heading, width, 2), "", *("  " + line for line in render(out, width - 2))]
    checks = route.checks()
    if checks:
        said = " · ".join(f"{name.upper()} {shown(result)}" for name, result in checks.items())
        lines += ["", *wrap(f"Sender checks (Authentication-Results): {said}", width, 2)]
    notes = [
        f"hop {hop.index}: {w}" + (f": {quoted(hop.raw)}" if hop.garbled else "")
        for hop in route.hops
        for w in hop.warnings
    ]
    notes += route.warnings
    if notes:
        lines += ["", "Warnings:", *(x for n in notes for x in wrap(f"  {shown(n)}", width, 4))]
    return "\n".join(lines)
