"""One step's packet as Packet Tracer's PDU window shows it: layer by layer, then its bytes.

Application (the command or reply and what it means, or — under TLS — the records that
carry it), transport (ports, flags, sequence and acknowledgement numbers, as Wireshark
counts them: from 0 at each end's SYN), network (addresses, TTL) and link (the links the
packet crosses with their latency and bandwidth, and the MAC addresses on the first),
then the frame's bytes as hex and text. Made from :attr:`Result.packets` and the frames
of :mod:`mailsim.capture`: what the PDU view shows is what the capture holds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailsim.capture import Frames
from mailsim.endpoints import wire_words
from mailsim.protocols import meaning
from mailsim.units import format_duration

if TYPE_CHECKING:
    import pandas as pd

    from mailsim.result import Result
    from mailsim.segments import Packet

FLAGS = {"S": "SYN", "A": "ACK", "P": "PSH", "F": "FIN", "R": "RST"}
HEX_LINES = 8  # 128 bytes: the headers and the start of the payload


@dataclass(frozen=True)
class Layer:
    name: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Pdu:
    """The first packet of one step (or of the steps sent with it)."""

    layers: tuple[Layer, ...]
    frame: bytes
    encrypted: bool

    def hexdump(self, lines: int = HEX_LINES) -> str:
        """Offset, 16 bytes as hex, the same as text (a dot for what is not printable)."""
        out = []
        for offset in range(0, min(len(self.frame), 16 * lines), 16):
            chunk = self.frame[offset : offset + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            out.append(f"{offset:04x}  {chunk.hex(' '):<47}  {text}")
        rest = len(self.frame) - 16 * lines
        if rest > 0:
            out.append(f"      … {rest:,} more bytes")
        return "\n".join(out)

    def __str__(self) -> str:
        blocks = [f"{layer.name}\n" + "\n".join(f"  {line}" for line in layer.lines)
                  for layer in self.layers]  # fmt: skip
        return "\n".join([*blocks, f"Bytes ({len(self.frame):,})", self.hexdump()])


class Pdus:
    """The PDU of any step of a run, found by its session, sender and time."""

    def __init__(self, result: Result) -> None:
        self.result = result
        self._frames = Frames(result)
        self._ends = result.sessions.set_index("session")
        events = result.events
        session, src, time = (events[c].to_numpy() for c in ("session", "src", "time"))
        self._first: dict[tuple[int, str, float], Packet] = {}
        for packet in result.packets:
            if packet.row >= 0:
                r = packet.row
                key = (int(session[r]), str(src[r]), float(time[r]))
                self._first.setdefault(key, packet)
        self._isn = {
            (p.session, p.forward): p.seq for p in result.packets if "S" in p.flags and p.row >= 0
        }

    def of(self, session: int, src: str, time: float) -> Pdu | None:
        """The PDU of the step ``src`` sent in ``session`` at ``time`` (None: no packet,
        as for a client's own timeout)."""
        packet = self._first.get((int(session), str(src), float(time)))
        if packet is None:
            return None
        events = self.result.events
        steps = events[
            (events["session"] == session) & (events["src"] == src) & (events["time"] == time)
        ]
        encrypted = packet.sealed  # as the segments were made: inside TLS records or not
        path = self._frames.network.path(packet.src, packet.dst, packet.time)
        hops = list(itertools.pairwise(path.nodes)) or [(packet.src, packet.dst)]
        frame = self._frames.frame(packet, hops[0], 64, packet.time)
        layers = (
            self._application(steps, encrypted),
            self._transport(packet, int(session)),
            Layer("Network · IPv4", self._network(packet, len(frame))),
            Layer("Link · Ethernet", self._link(hops)),
        )
        return Pdu(layers, frame, encrypted)

    def _application(self, steps: pd.DataFrame, encrypted: bool) -> Layer:
        protocol = str(steps["protocol"].iloc[0])
        lines = []
        for step, code, detail in zip(steps["step"], steps["code"], steps["detail"], strict=True):
            what = meaning(str(step), str(code))
            lines.append(f"{detail}" + (f" — {what}" if what else ""))
        if protocol == "tcp":
            return Layer("Application · none (TCP's own control segment)", tuple(lines))
        if protocol == "tls":
            return Layer("Application · TLS handshake", tuple(lines))
        if encrypted:
            size = sum(int(b) for b in steps["bytes"])
            return Layer(
                f"Application · {_inner(protocol)} inside TLS",
                (
                    *lines,
                    f"on the wire: TLS records (Application Data) — an eavesdropper sees"
                    f" only that about {size:,} bytes went by, not these words",
                ),
            )
        return Layer(
            f"Application · {protocol.upper()}",
            (*lines, "on the wire as written: anyone on these links can read it"),
        )

    def _transport(self, packet: Packet, session: int) -> Layer:
        ends = self._ends.loc[session]
        where = wire_words(ends, packet.src)
        if ends["transport"] == "udp":
            return Layer("Transport · UDP", (where, f"length {8 + len(packet.payload)} bytes"))
        mine = self._isn.get((session, packet.forward), packet.seq)
        theirs = self._isn.get((session, not packet.forward))
        flags = ", ".join(FLAGS[f] for f in "SFRPA" if f in packet.flags)
        seq = (packet.seq - mine) % 2**32
        numbers = f"seq {seq}"
        if "A" in packet.flags and theirs is not None:
            numbers += f" · ack {(packet.ack - theirs) % 2**32}"
        numbers += " (counted from each end's SYN, as Wireshark does)"
        return Layer(
            "Transport · TCP",
            (where, f"flags {flags}", numbers, f"{len(packet.payload):,} bytes of data"),
        )

    def _network(self, packet: Packet, frame: int) -> tuple[str, ...]:
        ips = self._frames.ips
        return (
            f"{ips[packet.src]} → {ips[packet.dst]} ({packet.src} → {packet.dst})",
            f"TTL 64 · {frame - 14:,} bytes with the IP header · don't fragment",
        )

    def _link(self, hops: list[tuple[str, str]]) -> tuple[str, ...]:
        graph = self._frames.network.graph
        ips = self._frames.ips
        lines = [f"MAC {_mac(ips[hops[0][0]])} → {_mac(ips[hops[0][1]])} on the first link"]
        for a, b in hops:
            edge = graph.edges[a, b]
            lines.append(
                f"{a} – {b}: {format_duration(edge['latency'])} one way, {_rate(edge['bandwidth'])}"
            )
        return tuple(lines)


def _mac(ip: str) -> str:
    return "02:00:" + ":".join(f"{int(part):02x}" for part in ip.split("."))


def _rate(bits: float) -> str:
    for unit, size in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= size:
            return f"{bits / size:g} {unit}"
    return f"{bits:g} bit/s"


def _inner(protocol: str) -> str:
    """The protocol TLS carries: HTTPS is HTTP inside TLS (RFC 9110 §4.2.2)."""
    return "HTTP" if protocol == "https" else protocol.upper()
