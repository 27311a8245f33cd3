"""What someone listening on a link can read: the security lens on the wire.

An eavesdropper sits on one link of the scenario. Every session whose path crosses that
link passes it; what it learns depends on whether the step travelled before TLS started
or after. Before: the commands as sent — the envelope (MAIL FROM, RCPT TO), a password
(AUTH PLAIN is base64, not encryption; POP3's PASS is the password itself), the headers
and body of a message. After: only TLS records, their sizes and timing. Either way it
sees who talks to whom (addresses are not encrypted). A simplification: it reads the
steps of mail sessions, not DNS queries, and the TLS handshake reveals no names.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# What one step gives away, in the order a report lists it.
KINDS = ("password", "envelope", "headers and body", "commands", "TLS records", "connection")
SECRET = ("password", "envelope", "headers and body")


@dataclass(frozen=True)
class Tap:
    """An eavesdropper: its name and the link it listens on."""

    name: str
    link: frozenset[str]


def taps_on(taps: list[Tap], nodes: tuple[str, ...]) -> list[str]:
    """The eavesdroppers on a path (a sequence of nodes)."""
    links = {frozenset(pair) for pair in itertools.pairwise(nodes)}
    return [tap.name for tap in taps if tap.link in links]


def read(line: str, user: str | None) -> tuple[str, str]:
    """What a command line sent in plaintext tells: (kind, what it reveals)."""
    verb = line.split(" ", 1)[0].upper()
    words = line.split(" ", 3)
    if len(words) > 2 and words[1].upper() in ("LOGIN", "AUTHENTICATE"):  # IMAP, tagged
        if words[1].upper() == "LOGIN" and len(words) == 4:
            return "password", f"{words[2]} / {words[3]} (IMAP LOGIN)"
        return read(" ".join(["AUTH", *words[2:]]), user)
    if verb in ("MAIL", "RCPT"):
        return "envelope", line
    if verb == "AUTH":
        parts = line.split()
        if len(parts) >= 3 and parts[1].upper() == "PLAIN":
            try:
                _, who, password = base64.b64decode(parts[2]).decode().split("\0")
            except (ValueError, UnicodeDecodeError, binascii.Error):
                return "password", line
            return "password", f"{who} / {password} (AUTH PLAIN is base64, not encryption)"
        return "commands", line
    if verb == "PASS":
        secret = line.split(" ", 1)[1] if " " in line else ""
        return "password", f"{user or '?'} / {secret} (POP3 PASS)"
    return "commands", line


def summary(overheard: pd.DataFrame) -> pd.DataFrame:
    """One row per eavesdropper and session: which kinds it read, and the details of
    everything but TLS records (sizes only)."""
    import pandas as pd

    rows = []
    for (name, session), seen in overheard.groupby(["eavesdropper", "session"], sort=False):
        kinds = [k for k in KINDS if k in set(seen["what"])]
        secret = seen
        rows.append({
            "eavesdropper": name,
            "session": session,
            "src": seen["src"].iloc[0],
            "dst": seen["dst"].iloc[0],
            "protocol": seen["protocol"].iloc[0],
            "read": kinds,
            "plaintext": [k for k in kinds if k in (*SECRET, "commands")],
            "details": list(secret.loc[secret["what"].isin(SECRET), "detail"]),
            "tls_bytes": int(seen.loc[seen["what"] == "TLS records", "bytes"].sum()),
        })  # fmt: skip
    return pd.DataFrame(rows)
