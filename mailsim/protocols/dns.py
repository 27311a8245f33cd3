"""DNS answers for mail routing (RFC 1035 records, RFC 5321 §5.1 MX rules), as pure logic.

The scenario's zones are the whole DNS of its world: a name under no zone is NXDOMAIN.
The cache takes the current time as an argument, so it is testable without a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Rcode = Literal["NOERROR", "NXDOMAIN", "SERVFAIL"]
QType = Literal["MX", "A"]

# RFC 2308: negative answers are cached for the SOA minimum; 300 s is a common value.
NEGATIVE_TTL = 300.0


@dataclass(frozen=True)
class ZoneData:
    ttl: float
    mx: tuple[tuple[int, str], ...] = ()  # (preference, host)
    a: Mapping[str, str] = field(default_factory=dict)  # host → IPv4


@dataclass(frozen=True)
class Answer:
    name: str
    qtype: QType
    rcode: Rcode
    records: tuple[tuple[int, str], ...] | tuple[str, ...] = ()
    ttl: float = NEGATIVE_TTL

    def wire_size(self) -> int:
        """Bytes of the UDP answer as a resolver sends it: header, question, EDNS OPT
        record, and one resource record per record, names compressed (RFC 1035 §4.1.4):
        each owner a pointer to the question's name, an exchange's labels up to the
        longest ending the message already holds, then a pointer. Counted once: a
        cached answer is sent again and again."""
        size = self.__dict__.get("_wire_size")
        if size is None:
            size = self.__dict__["_wire_size"] = self._count()
        return size

    def _count(self) -> int:
        size = query_size(self.name)
        if self.qtype == "A":
            return size + len(self.records) * (2 + 10 + 4)
        known = _endings(self.name)
        for _, host in self.records:  # type: ignore[misc]
            size += 2 + 10 + 2 + _compressed(host, known)
            known |= _endings(host)
        return size

    def __str__(self) -> str:
        if self.rcode != "NOERROR":
            return self.rcode
        if not self.records:
            return "NOERROR (no records)"
        if self.qtype == "MX":
            return ", ".join(f"MX {p} {h}" for p, h in self.records)  # type: ignore[misc]
        return ", ".join(f"A {ip}" for ip in self.records)


def query_size(name: str) -> int:
    """Bytes of a query: header, QNAME, QTYPE and QCLASS, and an EDNS OPT record."""
    return 12 + len(name) + 2 + 4 + 11


def _endings(name: str) -> set[str]:
    """The names a compression pointer may stand for once ``name`` is in the message."""
    labels = name.lower().rstrip(".").split(".")
    return {".".join(labels[i:]) for i in range(len(labels))}


def _compressed(name: str, known: set[str]) -> int:
    """Bytes of ``name`` in the message: its labels before the longest known ending, then
    a 2-byte pointer to it (or the root's zero byte when none is known)."""
    labels = name.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        if ".".join(labels[i:]) in known:
            return sum(1 + len(label) for label in labels[:i]) + 2
    return sum(1 + len(label) for label in labels) + 1


def _zone_of(zones: Mapping[str, ZoneData], name: str) -> tuple[str, ZoneData] | None:
    labels = name.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        suffix = ".".join(labels[i:])
        if suffix in zones:
            return suffix, zones[suffix]
    return None


def lookup(zones: Mapping[str, ZoneData], name: str, qtype: QType) -> Answer:
    """The authoritative answer for ``name``/``qtype`` from the scenario's zones."""
    name = name.lower().rstrip(".")
    found = _zone_of(zones, name)
    if found is None:
        return Answer(name, qtype, "NXDOMAIN")
    apex, zone = found
    hosts = {h.lower(): ip for h, ip in zone.a.items()}
    exists = name == apex or name in hosts
    if not exists:
        return Answer(name, qtype, "NXDOMAIN", ttl=min(zone.ttl, NEGATIVE_TTL))
    if qtype == "MX":
        records = tuple(sorted(zone.mx)) if name == apex else ()
        return Answer(name, qtype, "NOERROR", records, zone.ttl)
    ip = hosts.get(name)
    return Answer(name, qtype, "NOERROR", (ip,) if ip else (), zone.ttl)


def mx_hosts(
    answer: Answer, domain: str, rng: np.random.Generator, own_host: str | None = None
) -> list[str]:
    """Hosts to try, best first. RFC 5321 §5.1: lower preference first, equal preferences
    in random order; no MX records at all means the domain itself (the implicit MX); a
    server that finds its own name in the list drops it and every MX of equal or higher
    preference (a backup MX only sends to better ones), so that mail cannot loop."""
    if answer.rcode != "NOERROR":
        return []
    if not answer.records:
        return [domain]
    records: Sequence[tuple[int, str]] = answer.records  # type: ignore[assignment]
    if own_host is not None:
        own = [pref for pref, host in records if host.lower() == own_host.lower()]
        if own:
            records = [(pref, host) for pref, host in records if pref < min(own)]
    by_pref: dict[int, list[str]] = {}
    for pref, host in records:
        by_pref.setdefault(pref, []).append(host)
    ordered: list[str] = []
    for pref in sorted(by_pref):
        group = by_pref[pref]
        if len(group) > 1:
            group = [group[i] for i in rng.permutation(len(group))]
        ordered.extend(group)
    return ordered


class Cache:
    """A resolver cache keyed by (name, type); entries live for their TTL."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[Answer, float]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, name: str, qtype: QType, now: float) -> Answer | None:
        entry = self._entries.get((name.lower(), qtype))
        if entry is None or entry[1] <= now:
            self.misses += 1
            return None
        self.hits += 1
        return entry[0]

    def put(self, answer: Answer, now: float) -> None:
        if answer.rcode == "SERVFAIL":
            return
        self._entries[(answer.name, answer.qtype)] = (answer, now + answer.ttl)

    def __len__(self) -> int:
        return len(self._entries)
