"""What a name, a host, an address or a line of text may hold in a scenario.

Names travel far: into the report's table, into mail headers, into file names and onto
the terminal. A line break in a subject would forge a header; a tab or a bidirectional
control (U+202E turns the rest of a line around) would make a table lie about what it
shows. Each rule here says, in its error, what is allowed, so that a student can fix
the name at once. Pure functions: each returns the value or raises ValueError.
"""

from __future__ import annotations

import re
import unicodedata

from mailsim.errors import BIDI_CONTROLS, shown

# RFC 1123 §2.1 and RFC 1035 §2.3.4: a host name is labels of letters, digits and
# hyphens, at most 63 characters each, at most 253 in all (without the final dot).
HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_HOST = 253
# RFC 5322 §3.2.3: atext, the characters of a local part or a message id without quotes.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
# RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
MAX_LOCAL_PART = 64
# RFC 5322 §2.1.1: a header line is at most 998 characters; a subject longer than one
# such line is no lesson. Message ids: the Message-ID line holds the id, "@", the
# sender's domain (at most 253) and 15 more characters, so 500 keeps it within 998.
MAX_SUBJECT = 998
MAX_MESSAGE_ID = 500
# Names shown in tables and plot titles: long enough for any real name, short enough
# that a title stays one line.
MAX_NAME = 100
# RFC 4616 §2: PLAIN carries a password of at most 255 octets.
MAX_PASSWORD = 255
# A DNS TXT record is strings of at most 255 octets, and SPF asks that the whole answer
# fit in 512 (RFC 7208 §3.4); DMARC records are shorter still.
MAX_RECORD = 512

_NAMES = {
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a carriage return",
    "\x00": "a NUL character",
    "\u2028": "a line separator",
    "\u2029": "a paragraph separator",
}
_EXAMPLE_HOST = "e.g. mail.school.example"


def unprintable(text: str) -> str | None:
    """What the first character of ``text`` is that a line of text cannot hold (a
    control character, a line or paragraph separator, a bidirectional control, a lone
    surrogate), or None."""
    if text.isprintable():
        return None  # the common case, checked in C: no Cc, Cf, Cs, Zl or Zp at all
    for char in text:
        code = f"U+{ord(char):04X}"
        if char in _NAMES:
            return f"{_NAMES[char]} ({code})"
        if char in BIDI_CONTROLS:
            return f"a bidirectional control ({code})"
        category = unicodedata.category(char)
        if category == "Cc":
            return f"a control character ({code})"
        if category == "Cs":
            return f"a lone surrogate ({code}), which is not a character"
    return None  # zero-width joiners of emoji, soft hyphens, other spaces: harmless


def line(text: str, what: str, limit: int) -> str:
    """One line of printable text, any script (right-to-left included), at most
    ``limit`` characters."""
    if len(text) > limit:
        raise ValueError(f"{what} is {len(text):,} characters long; at most {limit:,}")
    bad = unprintable(text)
    if bad is not None:
        raise ValueError(f"{what} holds {bad}; write it as one line of plain text")
    return text


def name(text: str, what: str = "a name") -> str:
    """A name shown in tables and titles: one line, not blank, at most MAX_NAME."""
    line(text, what, MAX_NAME)
    if not text.strip():
        raise ValueError(f"{what} must not be empty")
    return text


def host_error(text: str) -> str | None:
    """Why ``text`` is not a host name (RFC 1123), or None."""
    if not text:
        return "it is empty"
    if len(text) > MAX_HOST:
        return f"it is {len(text):,} characters long; a host name has at most {MAX_HOST}"
    if text.endswith("."):
        return "write it without the final dot"
    for label in text.split("."):
        if not label:
            return "it has an empty label (two dots in a row, or a dot first)"
        if len(label) > 63:
            return f"a label of it is {len(label)} characters long; at most 63"
        if not HOST_LABEL.fullmatch(label):
            return (
                "a host name holds only letters a–z, digits and hyphens, in labels joined"
                " by dots, none starting or ending with a hyphen"
            )
    return None


def host(text: str, what: str = "a host name") -> str:
    """A host name: labels of letters, digits and hyphens joined by dots."""
    why = host_error(text)
    if why is not None:
        raise ValueError(f"{shown(text)} is not {what}: {why} ({_EXAMPLE_HOST})")
    return text


def node(text: str) -> str:
    """A node's name, which is also its host name in headers unless it has a ``host``."""
    why = host_error(text)
    if why is not None:
        raise ValueError(
            f"{shown(text)} cannot name a node: {why}; a node's name stands for its host"
            " name in headers, so it is written like one (e.g. mx-home)"
        )
    return text


def address_error(text: str) -> str | None:
    """Why ``text`` is not a plain e-mail address (local-part@domain), or None."""
    local, at, domain = text.rpartition("@")
    if not at or not local:
        return "is not an e-mail address (local-part@domain)"
    if len(local) > MAX_LOCAL_PART:
        return f"has a local part of {len(local)} characters; at most {MAX_LOCAL_PART}"
    if not DOT_ATOM.fullmatch(local):
        return (
            "is not an e-mail address: its local part holds only letters a–z, digits and"
            " !#$%&'*+-/=?^_`{|}~, with single dots between them"
        )
    if "." not in domain:
        return "is not an e-mail address: its domain needs a dot (local-part@school.example)"
    why = host_error(domain)
    if why is not None:
        return f"is not an e-mail address: its domain is not a host name ({why})"
    return None


def address(text: str) -> str:
    """A plain e-mail address, local-part@domain, as the From: line holds it."""
    why = address_error(text)
    if why is not None:
        raise ValueError(f"{shown(text)} {why}")
    return text


def message_id(text: str) -> str:
    """A message id as the left part of a Message-ID header, ``<id@domain>``
    (RFC 5322 §3.6.4): letters, digits and ``!#$%&'*+-/=?^_`{|}~``, with single dots."""
    if len(text) > MAX_MESSAGE_ID:
        raise ValueError(f"a message id is at most {MAX_MESSAGE_ID} characters, not {len(text):,}")
    if not DOT_ATOM.fullmatch(text):
        raise ValueError(
            f"{shown(text)} cannot be a message id: it goes into the Message-ID header, so"
            " it holds only letters a–z, digits and !#$%&'*+-/=?^_`{|}~, with single dots"
            " between them (no spaces, no @, no < >)"
        )
    return text


def password(text: str) -> str:
    """A password as a mail program's password field takes it: printable, one line."""
    return line(text, "a password", MAX_PASSWORD)
