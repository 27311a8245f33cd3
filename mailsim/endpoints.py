"""Where each session's packets come from and go to: the nodes' IP addresses and every
connection's ports, as a capture shows them.

Derived from the events after the run, never a second model: a session's first step says
who opened it, its first steps after the handshake whether TLS came first (the implicit
TLS ports), and the roles of its two ends which service it spoke. A client's ports are
the ephemeral ones Linux hands out, in turn from a start the run's seed picks; a
resolver's come at random from the same range, as RFC 5452 asks of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from mailsim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd

# Addresses for nodes without one: the documentation ranges of RFC 5737, then the
# benchmarking range of RFC 2544 for large worlds.
TEST_NETS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15")

# The ports servers listen on. Submission 587 with STARTTLS and 465 with implicit TLS
# (RFC 6409 §3.1, RFC 8314 §3.3); relay and MX 25 (RFC 5321 §4.5.4.2 is silent, IANA's
# registry is not); LMTP on 24, which IANA reserves for "any private mail system" and
# Dovecot's documentation uses for its LMTP listener (LMTP must not use 25, RFC 2033 §5);
# POP3 110 and 995 (RFC 1939 §3, RFC 8314 §3.3); IMAP 143 and 993 (RFC 9051 §2.1, RFC 8314
# §3.3); DNS 53 over UDP (RFC 1035 §4.2.1); webmail over HTTPS on 443 (RFC 9110 §4.2.2).
PORTS = {
    "submission": 587,
    "submissions": 465,
    "smtp": 25,
    "lmtp": 24,
    "pop3": 110,
    "pop3s": 995,
    "imap": 143,
    "imaps": 993,
    "dns": 53,
    "https": 443,
}
# Linux's net.ipv4.ip_local_port_range by default (Documentation/networking/ip-sysctl):
# the ports a client's connections and a resolver's queries come from.
EPHEMERAL = (32768, 60999)

SESSION_COLUMNS = (
    "session", "start", "client", "server", "service", "transport",
    "client_ip", "client_port", "server_ip", "server_port",
)  # fmt: skip


def addresses(scenario: Scenario) -> dict[str, str]:
    """Each node's IPv4 address: its own if the scenario sets one, else the next free one
    of the documentation ranges, in the order the nodes are written."""
    taken = {node.ip for node in scenario.nodes.values() if node.ip}
    free = _free(taken)
    return {name: node.ip or next(free) for name, node in scenario.nodes.items()}


def _free(taken: set[str]) -> Iterator[str]:
    for net in TEST_NETS:
        for ip in ipaddress.ip_network(net).hosts():
            if str(ip) not in taken:
                yield str(ip)


def service(client_role: str, server_role: str, protocol: str, tls_first: bool) -> str:
    """What a session spoke, as the name of its port: submission (a mail program to its
    server), smtp (server to server), lmtp (an MX to its mailbox server), pop3, imap, dns;
    with an s where TLS came before the protocol's first word; https (a browser's webmail)."""
    if protocol == "dns" or server_role == "dns":
        return "dns"
    if protocol == "https":
        return "https"
    if server_role == "pop":
        if client_role == "client":
            reads = "imap" if protocol == "imap" else "pop3"
            return f"{reads}s" if tls_first else reads
        return "lmtp"
    if client_role == "client":
        return "submissions" if tls_first else "submission"
    return "smtp"


def sessions(events: pd.DataFrame, scenario: Scenario, seed: int) -> pd.DataFrame:
    """One row per session of ``events``: who opened it, to whom, for what, and the
    addresses and ports of both ends."""
    import pandas as pd

    ips = addresses(scenario)
    roles = {name: node.role for name, node in scenario.nodes.items()}
    # A session's first step, and the first that was not TCP's (events are in time order).
    first = events.drop_duplicates("session").set_index("session").sort_index()
    talk = events[events["protocol"] != "tcp"].drop_duplicates("session")
    spoken = dict(zip(talk["session"], talk["protocol"].astype(str), strict=True))
    # What a session said inside TLS, where TLS came first (POP3 or IMAP on 995, 993).
    inner = talk[talk["protocol"] == "tls"]["session"]
    said = events[events["session"].isin(inner) & ~events["protocol"].isin(("tcp", "tls"))]
    said = said.drop_duplicates("session")
    within = dict(zip(said["session"], said["protocol"].astype(str), strict=True))
    web = set(events.loc[events["protocol"] == "https", "session"])  # TLS first, then HTTP
    picker = _Ports(seed)
    rows = []
    for session, start, client, server in zip(
        first.index,
        first["time"],
        first["src"].astype(str),
        first["dst"].astype(str),
        strict=True,
    ):
        protocol = "https" if session in web else spoken.get(session, "tcp")
        tls_first = protocol == "tls"
        what = service(roles[client], roles[server], within.get(session, protocol), tls_first)
        transport = "udp" if what == "dns" else "tcp"
        rows.append((
            int(session), float(start), client, server, what, transport,
            ips[client], picker.next(client, transport), ips[server], PORTS[what],
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=list(SESSION_COLUMNS))


class _Ports:
    """Ephemeral ports: a connection takes its client's next port (Linux keeps a counter
    from a random start, RFC 6056 §3.3.3); a DNS query a random one (RFC 5452 §9.2)."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng([seed, 53])
        self._next: dict[str, int] = {}

    def next(self, node: str, transport: str) -> int:
        low, high = EPHEMERAL
        if transport == "udp":
            return int(self._rng.integers(low, high + 1))
        if node not in self._next:
            self._next[node] = int(self._rng.integers(low, high + 1))
        port = self._next[node]
        self._next[node] = low + (port + 1 - low) % (high - low + 1)
        return port


def addressed(events: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``events`` with each step's source and destination address and port: the client's
    end for a step the client sent, the server's for one it answered."""
    import pandas as pd

    out = events.copy(deep=False)
    if table.empty:
        for column, kind in (("src_ip", object), ("src_port", "int32"), ("dst_ip", object),
                             ("dst_port", "int32")):  # fmt: skip
            out[column] = pd.Series([], dtype=kind)
        return out
    by = table.set_index("session")
    session = events["session"]
    forward = (events["src"].astype(str) == session.map(by["client"])).to_numpy()
    client = session.map(by["client_ip"]).astype(str).to_numpy()
    server = session.map(by["server_ip"]).astype(str).to_numpy()
    near = session.map(by["client_port"]).to_numpy(dtype="int32")
    far = session.map(by["server_port"]).to_numpy(dtype="int32")
    out["src_ip"] = pd.Categorical(np.where(forward, client, server))
    out["src_port"] = np.where(forward, near, far).astype("int32")
    out["dst_ip"] = pd.Categorical(np.where(forward, server, client))
    out["dst_port"] = np.where(forward, far, near).astype("int32")
    return out


def wire_words(ends: pd.Series, src: str) -> str:
    """A step's addresses and ports as a capture names them, from ``src``'s end of the
    session ``ends`` (a row of :func:`sessions`): "192.0.2.1:33266 → 192.0.2.2:587 ·
    TCP, submission"."""
    near = (ends["client_ip"], ends["client_port"])
    far = (ends["server_ip"], ends["server_port"])
    (a, p), (b, q) = (near, far) if src == ends["client"] else (far, near)
    return f"{a}:{p} → {b}:{q} · {str(ends['transport']).upper()}, {ends['service']}"
