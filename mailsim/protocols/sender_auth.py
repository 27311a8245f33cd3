"""Sender authentication at the receiving MX: SPF (RFC 7208), DKIM (RFC 6376) and DMARC
(RFC 7489), as simplified, truthful models, and the Authentication-Results header
(RFC 8601) that records them.

What is modelled: SPF's question — is the connecting server's address one the envelope
sender's domain lists? — with the mechanisms ``ip4``, ``a``, ``mx``, ``all`` and their
qualifiers; DKIM's — did a server of the From domain sign, and is the body unchanged
since? — without the cryptography; DMARC's — does a pass of either align with the From
domain, and what does that domain ask for when nothing does? What is left out, and said
so: ``include``, ``redirect`` and macros, DNS lookup limits and time, DKIM keys, header
canonicalisation, the public suffix list (alignment compares the last two labels).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# SPF results by qualifier (RFC 7208 §4.6.2).
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


def spf(
    record: str | None,
    domain: str,
    ip: str,
    a_of: Callable[[str], Sequence[str]],
    mx_of: Callable[[str], Sequence[str]],
) -> str:
    """The SPF result for a client ``ip`` sending as ``domain``: ``none`` without a
    record, else the qualifier of the first matching mechanism (``neutral`` when none
    matches). ``a_of(host)`` and ``mx_of(domain)`` give addresses from the zones."""
    if record is None:
        return "none"
    terms = record.split()
    if not terms or terms[0].lower() != "v=spf1":
        return "permerror"
    address = ipaddress.IPv4Address(ip)
    for term in terms[1:]:
        qualifier = QUALIFIERS.get(term[0])
        mechanism = term[1:] if qualifier else term
        mechanism, _, argument = mechanism.partition(":")
        mechanism = mechanism.lower()
        if mechanism == "all":
            matches = True
        elif mechanism == "ip4":
            matches = address in ipaddress.IPv4Network(argument, strict=False)
        elif mechanism == "a":
            matches = ip in a_of(argument or domain)
        elif mechanism == "mx":
            matches = ip in mx_of(argument or domain)
        else:
            return "permerror"  # include, exists, redirect: not modelled
        if matches:
            return qualifier or "pass"
    return "neutral"


def organisational(domain: str) -> str:
    """The organisational domain, simplified to the last two labels (no public suffix
    list: ``mail.school.example`` → ``school.example``)."""
    return ".".join(domain.lower().rsplit(".", 2)[-2:])


def aligned(a: str, b: str) -> bool:
    """DMARC's relaxed alignment (RFC 7489 §3.1): the same organisational domain."""
    return organisational(a) == organisational(b)


@dataclass(frozen=True)
class Dmarc:
    """A DMARC record's policy: ``none`` (only report), ``quarantine`` (spam folder) or
    ``reject``."""

    policy: str

    @classmethod
    def parse(cls, record: str | None) -> Dmarc | None:
        if record is None:
            return None
        tags = dict(part.strip().split("=", 1) for part in record.split(";") if "=" in part.strip())
        if tags.get("v", "").strip() != "DMARC1":
            return None
        policy = tags.get("p", "none").strip().lower()
        return cls(policy if policy in ("none", "quarantine", "reject") else "none")


@dataclass(frozen=True)
class Verdict:
    """What the receiving MX concluded: each check's result, the action, and the
    Authentication-Results header it adds."""

    spf: str
    dkim: str
    dmarc: str
    action: str  # "accept", "spam folder", "reject"
    header: str
    mail_from: str
    header_d: str | None
    header_from: str

    @property
    def reply(self) -> tuple[str, str] | None:
        """The refusal for a DMARC reject (OpenDMARC's text), or None."""
        if self.action != "reject":
            return None
        return "550", f"5.7.1 rejected by DMARC policy for {self.header_from}"


def verdict(
    receiver: str,
    mail_from: str,
    header_from: str,
    spf_result: str,
    dkim_result: str,
    dkim_domain: str | None,
    policy: Dmarc | None,
) -> Verdict:
    """DMARC over SPF and DKIM (RFC 7489 §4.2): pass when either passes *and* aligns with
    the From domain; otherwise the From domain's policy decides."""
    spf_ok = spf_result == "pass" and aligned(mail_from, header_from)
    dkim_ok = (
        dkim_result == "pass" and dkim_domain is not None and aligned(dkim_domain, header_from)
    )
    if policy is None:
        dmarc, action = "none", "accept"
    elif spf_ok or dkim_ok:
        dmarc, action = "pass", "accept"
    else:
        dmarc = "fail"
        action = {"none": "accept", "quarantine": "spam folder", "reject": "reject"}[policy.policy]
    parts = [f"spf={spf_result} smtp.mailfrom={mail_from or '<>'}"]
    parts.append(f"dkim={dkim_result}" + (f" header.d={dkim_domain}" if dkim_domain else ""))
    dmarc_part = f"dmarc={dmarc}"
    if policy is not None:
        dmarc_part += f" (p={policy.policy})"
    parts.append(f"{dmarc_part} header.from={header_from}")
    header = f"{receiver}; " + "; ".join(parts)
    return Verdict(spf_result, dkim_result, dmarc, action, header, mail_from, dkim_domain,
                   header_from)  # fmt: skip
