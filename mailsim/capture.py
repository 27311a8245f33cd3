"""A capture file of a run, as Wireshark and tshark open it (pcap, nanosecond times).

Each packet of :mod:`mailsim.segments` becomes an Ethernet frame holding an IPv4 packet
and its TCP segment or UDP datagram, built with dpkt. Where it is seen decides what the
file holds: by default each packet as it leaves its sender (everything the run sent);
on one link (``link``, or an eavesdropper's ``tap``), only the packets whose path crosses
it, when they reach it (the latency of the links before), with the MAC addresses of
that link's two ends and the TTL lowered by each router passed (RFC 791). Times are the
scenario's clock: its ``start`` plus the simulated seconds.

Each node's MAC address is locally administered (02:00, RFC 7042 §2.1) followed by its
IPv4 address, so that a frame names its machines in both layers.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, BinaryIO

from mailsim.segments import Packet, stream

if TYPE_CHECKING:
    import pandas as pd

    from mailsim.result import Result
    from mailsim.scenario import Scenario

TTL = 64  # Linux's net.ipv4.ip_default_ttl
WINDOW = 0xFFFF  # scaled by 2**7: 8 MB, a receive window that never limits (as modelled)
WINDOW_SCALE = 7
SYN_WINDOW = 64240  # Linux's first window: 44 segments of 1460 bytes
MSS_OPTION = 1460


Where = str | tuple[str, str] | None  # an eavesdropper's name, a link's two nodes, or none


Progress = Callable[[float, float], None]  # (simulated seconds written, of the run's)


def write(
    result: Result, path: str | FilePath, on: Where = None, progress: Progress | None = None
) -> int:
    """Write the run's packets to ``path`` as seen ``on`` a link or by an eavesdropper
    (None: as each leaves its sender); returns how many were written. A day of a large
    office makes millions of packets: ``progress`` is told how far the writing got."""
    link = point(result.scenario, on)
    _needs_steps(result)
    with open(path, "wb") as out:
        return write_to(result, out, link, progress)


def write_to(
    result: Result,
    out: BinaryIO,
    link: tuple[str, str] | None = None,
    progress: Progress | None = None,
) -> int:
    import dpkt

    writer = dpkt.pcap.Writer(out, snaplen=65535, nano=True)
    n = 0
    end = max(result.end_time, 1e-9)
    # Made as they are written: a long run's packets never all sit in memory.
    for when, frame in Frames(result).seen(stream(result), link):
        writer.writepkt_time(frame, when)
        n += 1
        if progress is not None and n % 4096 == 0:
            progress(min(float(when - Frames.epoch_of(result)), end), end)
    if progress is not None:
        progress(end, end)
    return n


# A capture carried inside the page: a classroom's exchanges are kilobytes; a day's
# traffic belongs in a file (Result.to_pcap), not in a notebook.
DOWNLOAD_LIMIT = 10_000_000


class Download:
    """A capture as a link that saves it: the file travels inside the page (a data: URL),
    so that it downloads wherever the page is shown — JupyterLab, Voilà (which serves no
    file but pictures from the lesson's folder), an exported HTML page."""

    def __init__(self, name: str, data: bytes, packets: int) -> None:
        self.name, self.data, self.packets = name, data, packets

    def _repr_html_(self) -> str:
        import base64
        import html

        url = "data:application/vnd.tcpdump.pcap;base64," + base64.b64encode(self.data).decode()
        name = html.escape(self.name)
        return (
            f'<p><a download="{name}" href="{url}">⬇ {name}</a> — {self.packets:,} packets,'
            f" {len(self.data) / 1000:,.1f} kB: save it and open it in Wireshark</p>"
        )

    def __repr__(self) -> str:
        return f"<{self.name}: {self.packets:,} packets, {len(self.data):,} bytes>"


def download(result: Result, name: str, on: Where = None) -> Download:
    """The capture of :func:`write` as a link to save it (see :class:`Download`)."""
    import io

    link = point(result.scenario, on)
    _needs_steps(result)
    buffer = io.BytesIO()
    packets = write_to(result, buffer, link)
    if buffer.tell() > DOWNLOAD_LIMIT:
        raise ValueError(
            f"the capture is {buffer.tell():,} bytes, too large to carry in the page: write"
            " it to a file with result.to_pcap(path)"
        )
    return Download(name, buffer.getvalue(), packets)


def write_links(result: Result, folder: str | FilePath) -> list[FilePath]:
    """One file per link that carried packets, named after its two nodes."""
    _needs_steps(result)
    written = []
    for a, b in links(result.scenario):
        path = FilePath(folder) / f"{a}--{b}.pcap"
        with open(path, "wb") as out:
            if write_to(result, out, (a, b)):
                written.append(path)
                continue
        path.unlink()
    return written


def _needs_steps(result: Result) -> None:
    if result.recorder.detail != "full":
        raise ValueError(
            f"a capture needs every protocol step: run with detail='full', not "
            f"{result.recorder.detail!r}"
        )


def point(scenario: Scenario, on: Where) -> tuple[str, str] | None:
    """The link a capture is taken on: an eavesdropper's, or a link named by its nodes
    ("r-school,r-home" or a pair); ValueError naming the choices otherwise."""
    if on is None:
        return None
    known = links(scenario)
    spies = {spy.name: tuple(spy.between) for spy in scenario.eavesdroppers}
    if isinstance(on, str):
        if on in spies:
            a, b = spies[on]
            return (a, b)
        pair = tuple(part.strip() for part in on.split(","))
    else:
        pair = tuple(on)
    for a, b in known:
        if frozenset(pair) == frozenset((a, b)) and len(pair) == 2:
            return (a, b)
    names = ", ".join(f"{a},{b}" for a, b in known[:6]) + (", …" if len(known) > 6 else "")
    also = f"; eavesdroppers: {', '.join(spies)}" if spies else ""
    raise ValueError(f"no link or eavesdropper {on!r}; links: {names}{also}")


def links(scenario: Scenario) -> list[tuple[str, str]]:
    """The scenario's links, as written."""
    return [(a, b) for a, b in (link.between for link in scenario.links)]


class Frames:
    """Turns packets into frames: addresses, ports, headers, options, timestamps."""

    def __init__(self, result: Result) -> None:
        from mailsim.faults import Faults
        from mailsim.network import Topology

        self.result = result
        self.ends = {
            int(r.session): (r.client_ip, int(r.client_port), r.server_ip, int(r.server_port),
                             r.transport)
            for r in result.sessions.itertuples(index=False)
        }  # fmt: skip
        from mailsim.endpoints import addresses

        self.ips = addresses(result.scenario)
        self.network = Topology(result.scenario, result.seed, Faults(result.scenario))
        self.epoch = self.epoch_of(result)
        self._ip_id: dict[str, int] = {}
        self._tsval: dict[tuple[int, bool], int] = {}
        self._made: dict[tuple[int, bool, tuple[str, str]], tuple[Any, Any, Any]] = {}

    @staticmethod
    def epoch_of(result: Result) -> Decimal:
        """The scenario's start as a capture's timestamp (seconds since 1970, exactly)."""
        start = result.epoch.timestamp() if result.epoch is not None else 0.0
        return Decimal(int(start * 1_000_000_000)) / 1_000_000_000

    def seen(
        self, sent: Iterable[Packet], link: tuple[str, str] | None
    ) -> Iterable[tuple[Decimal, bytes]]:
        """(timestamp, frame) of each packet seen at the capture point, in time order."""
        for t, packet, hop, routers in self.arrivals(sent, link):
            yield self.epoch + _ns(t), self.frame(packet, hop, TTL - routers, t)

    def arrivals(
        self, sent: Iterable[Packet], link: tuple[str, str] | None
    ) -> Iterator[tuple[float, Packet, tuple[str, str], int]]:
        """(time, packet, link's ends in its direction, routers passed) of each packet
        seen at the capture point, in time order. ``sent`` comes in order of sending and
        a packet reaches the link no sooner than it left: one seen before the next one
        leaves can go out at once, so only the packets on their way are held."""
        held: list[tuple[float, int, Packet, tuple[str, str], int]] = []
        for k, packet in enumerate(sent):
            while held and held[0][0] < packet.time:
                t, _, early, hop, routers = heapq.heappop(held)
                yield t, early, hop, routers
            where = self._where(packet, link)
            if where is not None:
                delay, hop, routers = where
                heapq.heappush(held, (packet.time + delay, k, packet, hop, routers))
        while held:
            t, _, early, hop, routers = heapq.heappop(held)
            yield t, early, hop, routers

    def _where(
        self, packet: Packet, link: tuple[str, str] | None
    ) -> tuple[float, tuple[str, str], int] | None:
        """Seconds after sending that ``packet`` reaches the capture point, the link's
        ends in its direction, and the routers it passed; None if it never does."""
        path = self.network.path(packet.src, packet.dst, packet.time)
        hops = list(itertools.pairwise(path.nodes))
        if link is None:
            return 0.0, hops[0] if hops else (packet.src, packet.dst), 0
        wanted = frozenset(link)
        for k, (a, b) in enumerate(hops):
            if packet.lost_on is not None and frozenset(packet.lost_on) == frozenset(
                hops[k - 1] if k else ("", "")
            ):
                return None  # dropped on the link before
            if frozenset((a, b)) == wanted:
                delay = sum(self.network.graph.edges[x, y]["latency"] for x, y in hops[:k])
                return delay, (a, b), k
        return None

    def frame(self, packet: Packet, hop: tuple[str, str], ttl: int, t: float) -> bytes:
        """The Ethernet frame of ``packet`` on ``hop``. The frame objects of a session's
        direction are made once and refilled (making dpkt objects is most of the cost)."""
        key = (packet.session, packet.forward, hop)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = self._make(packet, hop)
            if len(self._made) > 4096:
                self._made.pop(next(iter(self._made)))
        eth, ip, segment = made
        segment.data = packet.payload
        segment.sum = 0
        if ip.p == dpkt_udp():
            segment.ulen = 8 + len(packet.payload)
        else:
            segment.seq, segment.ack = packet.seq, packet.ack
            segment.flags = _flags(packet.flags)
            segment.win = SYN_WINDOW if "S" in packet.flags else WINDOW
            segment.opts = self._options(packet, t)
            segment.off = (20 + len(segment.opts)) // 4
        ip.ttl, ip.id, ip.sum = ttl, self._next_id(packet.src), 0
        ip.len = 20 + len(segment)
        return bytes(eth)

    def _make(self, packet: Packet, hop: tuple[str, str]) -> tuple[Any, Any, Any]:
        import dpkt

        client_ip, client_port, server_ip, server_port, transport = self.ends[packet.session]
        if packet.forward:
            src, sport, dst, dport = client_ip, client_port, server_ip, server_port
        else:
            src, sport, dst, dport = server_ip, server_port, client_ip, client_port
        segment: Any
        if transport == "udp":
            segment = dpkt.udp.UDP(sport=sport, dport=dport)
            proto = dpkt.ip.IP_PROTO_UDP
        else:
            segment = dpkt.tcp.TCP(sport=sport, dport=dport)
            proto = dpkt.ip.IP_PROTO_TCP
        ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, df=1,
                        data=segment)  # fmt: skip
        eth = dpkt.ethernet.Ethernet(
            src=mac(self.ips[hop[0]]), dst=mac(self.ips[hop[1]]), type=dpkt.ethernet.ETH_TYPE_IP,
            data=ip,
        )  # fmt: skip
        return eth, ip, segment

    def _next_id(self, node: str) -> int:
        n = self._ip_id.get(node, sum(self.ips[node].encode()) * 257 % 65536)
        self._ip_id[node] = (n + 1) % 65536
        return n

    def _options(self, packet: Packet, t: float) -> bytes:
        """Linux's options: on a SYN, MSS, SACK permitted, timestamps, window scale (20
        bytes: a 60-byte packet); on every other segment but a reset, timestamps (12)."""
        if packet.flags == "RA":
            return b""
        key = (packet.session, packet.forward)
        tsval = (int(t * 1000) + 1_000_003 * (1 + packet.forward)) % 2**32
        self._tsval[key] = tsval
        tsecr = self._tsval.get((packet.session, not packet.forward), 0)
        stamp = struct.pack("!BBII", 8, 10, tsval, 0 if packet.flags == "S" else tsecr)
        if "S" in packet.flags:
            return (
                struct.pack("!BBH", 2, 4, MSS_OPTION)
                + b"\x04\x02"
                + stamp
                + b"\x01"
                + struct.pack("!BBB", 3, 3, WINDOW_SCALE)
            )
        return b"\x01\x01" + stamp


def mac(ip: str) -> bytes:
    """02:00 and the four bytes of the address."""
    return b"\x02\x00" + socket.inet_aton(ip)


# TCP's flag bits (RFC 9293 §3.1).
_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def _flags(letters: str) -> int:
    value = 0
    for letter in letters:
        value |= _BITS[letter]
    return value


def dpkt_udp() -> int:
    return 17  # IPPROTO_UDP


def _ns(t: float) -> Decimal:
    """Simulated seconds to the nanosecond, exactly."""
    return Decimal(round(t * 1_000_000_000)) / 1_000_000_000


# What a capture's summary line calls each service (Wireshark's protocol names).
SHOWN_AS = {"submission": "SMTP", "submissions": "TLS", "smtp": "SMTP", "lmtp": "LMTP",
            "pop3": "POP", "pop3s": "TLS", "imap": "IMAP", "imaps": "TLS",
            "dns": "DNS", "https": "TLS"}  # fmt: skip
TLS_RECORDS = {20: "Change Cipher Spec", 21: "Alert", 22: "Handshake", 23: "Application Data"}
TLS_HANDSHAKES = {1: "Client Hello", 2: "Server Hello", 11: "Certificate",
                  12: "Server Key Exchange", 14: "Server Hello Done", 16: "Client Key Exchange"}  # fmt: skip


def table(result: Result, on: Where = None) -> pd.DataFrame:
    """The capture as Wireshark's packet list shows it: number, time (simulated seconds),
    source, destination, protocol, length and a line of information — what someone
    capturing ``on`` a link (or an eavesdropper's) reads without any key."""
    import pandas as pd

    _needs_steps(result)
    frames = Frames(result)
    services = dict(zip(result.sessions["session"], result.sessions["service"], strict=True))
    rows = []
    reader = _Reader()
    for n, (t, packet, _hop, _routers) in enumerate(
        frames.arrivals(stream(result), point(result.scenario, on)), start=1
    ):
        protocol, info = reader.summary(packet, services[packet.session])
        rows.append((n, t, frames.ips[packet.src], frames.ips[packet.dst], protocol,
                     len(packet.payload), info))  # fmt: skip
    return pd.DataFrame(
        rows, columns=["no", "time", "source", "destination", "protocol", "bytes", "info"]
    )


class _Reader:
    """Summary lines from the bytes alone, as a capture tool reads a stream: it remembers,
    per connection and direction, how much of a TLS record is still to come, whether the
    last segment ended a flight, and whether a message's data is being sent (after a
    354, until the line with a single dot)."""

    def __init__(self) -> None:
        self._record_left: dict[tuple[int, bool], int] = {}
        self._midway: dict[tuple[int, bool], bool] = {}
        self._in_data: set[int] = set()

    def summary(self, packet: Packet, service: str) -> tuple[str, str]:
        """(protocol, info) of one packet."""
        data = packet.payload
        if service == "dns":
            return "DNS", _dns(data)
        if not data:
            flags = ", ".join(name for f, name in (("S", "SYN"), ("F", "FIN"), ("R", "RST"),
                                                    ("A", "ACK")) if f in packet.flags)  # fmt: skip
            return "TCP", f"[{flags}]"
        stream = (packet.session, packet.forward)
        midway = self._midway.get(stream, False)
        self._midway[stream] = "P" not in packet.flags
        left = self._record_left.get(stream, 0)
        names, self._record_left[stream] = _tls(data, left)
        if names:
            return "TLS", names
        if left:
            return "TCP", f"the rest of a TLS record ({len(data):,} bytes)"
        side = "C" if packet.forward else "S"
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        if packet.forward and packet.session in self._in_data:
            if data.endswith(b"\r\n.\r\n") or b"\r\n.\r\n" in data:
                self._in_data.discard(packet.session)
            words = "" if midway else f" — {line[:80]}"
            return SHOWN_AS[service], f"C: message data, {len(data):,} bytes{words}"
        if not packet.forward and any(reply.startswith(b"354") for reply in data.split(b"\r\n")):
            self._in_data.add(packet.session)
        if midway:
            return SHOWN_AS[service], f"{side}: more of the same data ({len(data):,} bytes)"
        return SHOWN_AS[service], f"{side}: {line[:100]}"


def _tls(data: bytes, left: int) -> tuple[str, int]:
    """The TLS records that begin in a segment, by name ("" when none does), and how much
    of the last one is still to come; ``left`` bytes of an earlier record come first."""
    names: list[str] = []
    at = left
    while at + 5 <= len(data) and data[at] in TLS_RECORDS and data[at + 1] == 3:
        kind, size = data[at], int.from_bytes(data[at + 3 : at + 5], "big")
        name = TLS_RECORDS[kind]
        if kind == 22 and at + 5 < len(data):
            name = TLS_HANDSHAKES.get(data[at + 5], "Encrypted Handshake Message")
        if name not in names:
            names.append(name)
        at += 5 + size
    if at <= len(data) and not names:
        return "", 0
    return ", ".join(names), max(0, at - len(data))


def _dns(data: bytes) -> str:
    import dns.message
    import dns.rcode
    import dns.rdatatype

    message = dns.message.from_wire(data)
    question = message.question[0]
    asked = f"{dns.rdatatype.to_text(question.rdtype)} {question.name.to_text(True)}"
    if not message.flags & 0x8000:
        return f"Standard query 0x{message.id:04x} {asked}"
    answers = " ".join(
        f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}"
        for rrset in message.answer
        for rdata in rrset
    )
    rcode = dns.rcode.to_text(message.rcode())
    said = answers if rcode == "NOERROR" else rcode
    return f"Standard query response 0x{message.id:04x} {asked} {said}".strip()
