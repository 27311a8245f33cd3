"""The packets of a run: every TCP segment and UDP datagram its sessions sent.

Derived from the events, never a second model. A step's bytes (:mod:`mailsim.wire`) go
as the segments the timing model sent them in: steps sent together (a pipelined MAIL,
RCPT, DATA; the message and its QUIT) share a flight; a flight longer than one segment
is paced by slow start as :func:`mailsim.network.sending_time` paces it, each segment
acknowledged when it arrives (the model's ACK clock). A real receiver acknowledges every
second full-sized segment (RFC 5681 §4.2): a server that has been answering the client
at once is out of Linux's quick-ACK mode by the time the message comes. So a capture of
the message shows about twice as many ACKs as a real one would, at the times the
model's pacing gives; the timing does not depend on them. The last one rides on the receiver's next
packet, or goes alone after Linux's 40 ms delayed-ACK timer when that comes later. Sequence numbers start from random initial ones (RFC 6528), the seed's. A
flight a lossy link dropped is sent again after each retransmission timeout the model
waited (RFC 6298: 1 s, doubling). The side that answered QUIT closes first (FIN, FIN,
ACK); a refused connection is a RST, a connect that timed out its SYN retransmissions.

Timing counts a step's application bytes; TLS adds 22–24 bytes a record on the wire (the
header, a nonce or type byte, the tag), which the segments carry but the model does not
wait for: at 10 Mbit/s, 18 µs a record.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mailsim import wire
from mailsim.network import (
    MAX_RETRANSMISSIONS,
    MSS,
    Path,
    Topology,
    backoff,
    departures,
)
from mailsim.protocols import tls

if TYPE_CHECKING:
    from mailsim.result import Result

DELAYED_ACK = 0.040  # s: Linux's TCP_DELACK_MIN, the least a receiver waits to ACK alone
SYN_RETRIES = 6  # Linux's tcp_syn_retries: SYNs again after 1, 3, 7, 15, 31, 63 s
BROWSER_ALPN = ("h2", "http/1.1")  # what a browser offers in its ClientHello (RFC 7301)


@dataclass(frozen=True, slots=True)
class Packet:
    """One segment or datagram as it left its sender."""

    time: float
    session: int
    forward: bool  # from the session's client to its server
    src: str
    dst: str
    flags: str  # TCP flags as letters ("S", "SA", "A", "PA", "FA", "RA"); "" for UDP
    seq: int
    ack: int
    payload: bytes
    row: int = -1  # the event whose first bytes it carries, -1 for none
    lost_on: tuple[str, str] | None = None  # the link that dropped this copy
    sealed: bool = False  # application data inside TLS records (an eavesdropper sees sizes)


@dataclass
class _Flight:
    """Steps one end sent at one moment: their rows, their bytes, when they arrived."""

    time: float
    arrive: float
    src: str
    dst: str
    rows: list[int]
    kind: str  # a TCP step (SYN, SYN-ACK, ACK, RST, SYN (no answer)) or "data"
    payload: bytes = b""
    model_bytes: int = 0
    sealed: bool = False


def packets(result: Result) -> list[Packet]:
    """Every packet of the run, in order of sending (steps sent at the same moment in the
    events' order)."""
    return list(stream(result))


def stream(result: Result) -> Iterator[Packet]:
    """The packets of :func:`packets`, made as they are needed: a session's packets are
    made when the merge in order of sending reaches its start, and let go once written,
    so that a day of a large office needs the memory of the sessions open at once."""
    events = result.events
    if events.empty:
        return
    maker = _Maker(result)
    rows_of = events.groupby("session", sort=False).indices
    waiting = sorted(result.sessions.itertuples(index=False), key=lambda r: (r.start, r.session))
    heap: list[tuple[float, float, int, int, Packet, Iterator[Packet]]] = []
    for opened, ends in enumerate([*waiting, None]):
        # Before a session starts, send everything of the open ones that left earlier.
        while heap and (ends is None or heap[0][0] < ends.start):
            _, _, order, k, packet, rest = heapq.heappop(heap)
            yield packet
            following = next(rest, None)
            if following is not None:
                heapq.heappush(heap, (following.time, _first_row(following), order, k + 1,
                                      following, rest))  # fmt: skip
        if ends is None:
            break
        rows = rows_of[ends.session]
        made = (
            maker.datagrams(ends, rows) if ends.transport == "udp" else maker.segments(ends, rows)
        )
        # A session's own packets in order of sending (ACKs are made after the data).
        mine = iter(sorted(made, key=lambda p: (p.time, _first_row(p))))
        first = next(mine, None)
        if first is not None:
            heapq.heappush(heap, (first.time, _first_row(first), opened, 0, first, mine))


def _first_row(packet: Packet) -> float:
    return packet.row if packet.row >= 0 else math.inf


class _Maker:
    """What the packets are made from: the run's events, wire texts, copies and paths."""

    def __init__(self, result: Result) -> None:
        from mailsim.faults import Faults

        self.result = result
        events = result.events
        self.time = events["time"].to_numpy()
        self.arrive = events["arrive"].to_numpy()
        self.src = events["src"].astype(str).to_numpy()
        self.dst = events["dst"].astype(str).to_numpy()
        self.protocol = events["protocol"].astype(str).to_numpy()
        self.step = events["step"].astype(str).to_numpy()
        self.code = events["code"].astype(str).to_numpy()
        self.detail = events["detail"].to_numpy()
        self.bytes = events["bytes"].to_numpy()
        self.message = events["message"].to_numpy()
        self.texts = result.recorder.wire_texts()
        self.faults = Faults(result.scenario)
        self.network = Topology(result.scenario, result.seed, self.faults)
        self.hosts = {n: node.host or n for n, node in result.scenario.nodes.items()}
        self.ttl = {d.lower(): z.ttl for d, z in result.scenario.dns.zones.items()}
        self.copies: dict[tuple[str, str], Any] = {}
        for copy in [*result.copies, *result.duplicates]:
            self.copies.setdefault((copy.message.id, copy.recipient), copy)
            self.copies.setdefault((copy.message.id, ""), copy)

    # -- DNS ---------------------------------------------------------------------------------

    def datagrams(self, ends: Any, rows: np.ndarray) -> Iterator[Packet]:
        rng = np.random.default_rng([self.result.seed, 53, int(ends.session)])
        txid = int(rng.integers(0, 2**16))
        for i in rows.tolist():
            step = self.step[i]
            if step == "timeout":
                continue
            forward = self.src[i] == ends.client
            if step.startswith("query"):
                qtype = step.split()[1]
                qname = self.detail[i].split("? ", 1)[1].split(" (again", 1)[0]
                payload = wire.dns_query(qname, qtype, txid)
            else:
                qname, said = self.detail[i].split(" ", 1)
                said = said.rsplit(" (", 1)[0]
                payload = wire.dns_answer(qname, qtype, txid, self.code[i], said, self._ttl(qname))
            yield Packet(
                float(self.time[i]), int(ends.session), forward, self.src[i], self.dst[i],
                "", 0, 0, payload, i,
            )  # fmt: skip

    def _ttl(self, name: str) -> float:
        labels = name.lower().split(".")
        for k in range(len(labels)):
            ttl = self.ttl.get(".".join(labels[k:]))
            if ttl is not None:
                return ttl
        return 300.0

    # -- TCP ---------------------------------------------------------------------------------

    def segments(self, ends: Any, rows: np.ndarray) -> list[Packet]:
        rng = np.random.default_rng([self.result.seed, 6, int(ends.session)])
        flights = self._flights(ends, rows.tolist(), rng)
        tcp = _Connection(ends, rng)
        out: list[Packet] = []
        closes = bool(flights) and self._closes(rows.tolist())
        for k, flight in enumerate(flights):
            forward = flight.src == ends.client
            later = [float(f.time) for f in flights[k + 1 :] if f.src == flight.dst]
            if closes and k == len(flights) - 1:  # its FIN acknowledges it
                later = [float(flight.arrive)]
            out.extend(self._send(tcp, flight, forward, later[0] if later else None))
        if closes:
            out.extend(self._close(tcp, flights[-1]))
        return out

    def _flights(self, ends: Any, rows: list[int], rng: np.random.Generator) -> list[_Flight]:
        """The session's rows grouped into flights, each with the bytes it carried."""
        flights: list[_Flight] = []
        version = "1.2" if any("ServerHelloDone" in self.step[i] for i in rows) else "1.3"
        encrypted, pending = False, b""
        user = ""
        for i in rows:
            step, protocol = self.step[i], self.protocol[i]
            if step == "timeout":
                continue
            if protocol == "tcp":
                kind, arrive = step, self.arrive[i]
                if self.detail[i] == "SYN (no answer)":  # sent again until the client gives up
                    kind = self.detail[i]
                    ends_at = [self.time[k] for k in rows if self.step[k] == "timeout"]
                    arrive = ends_at[0] if ends_at else self.time[i] + 2**SYN_RETRIES - 1
                flights.append(_Flight(self.time[i], arrive, self.src[i], self.dst[i], [i], kind,
                                       model_bytes=int(self.bytes[i])))  # fmt: skip
                continue
            if protocol == "tls":
                data = self._tls(step, int(self.bytes[i]), version, ends, rng)
                # Records are encrypted from the server's Finished on (TLS 1.3: in its
                # first flight; TLS 1.2: in its second).
                server_done = step.startswith("ServerHello") and version == "1.3"
                if server_done or step.startswith("ChangeCipherSpec"):
                    encrypted = True
                if server_done:
                    pending = wire.client_finish("1.3", tls.TRAILING_CLIENT_BYTES["1.3"], rng)
            else:
                if step == "USER":
                    user = self.texts[i][5:].strip()
                data = self._application(i, user)
                if encrypted:
                    data = wire.encrypt(data, version, rng)
                    if pending and self.src[i] == ends.client:
                        data, pending = pending + data, b""
            prev = flights[-1] if flights else None
            if (
                prev is not None
                and prev.kind == "data"
                and prev.src == self.src[i]
                and prev.time == self.time[i]
            ):
                prev.rows.append(i)
                prev.payload += data
                prev.model_bytes += int(self.bytes[i])
                prev.arrive = max(prev.arrive, self.arrive[i])
            else:
                sealed = encrypted and protocol != "tls"
                flights.append(_Flight(self.time[i], self.arrive[i], self.src[i], self.dst[i],
                                       [i], "data", data, int(self.bytes[i]), sealed))  # fmt: skip
        return flights

    def _tls(
        self, step: str, size: int, version: str, ends: Any, rng: np.random.Generator
    ) -> bytes:
        if step.startswith("ClientHello"):
            alpn = BROWSER_ALPN if ends.service == "https" else ()
            return wire.client_hello(self.hosts[ends.server], rng, alpn)
        if step.startswith("ServerHello"):
            return wire.server_flight(
                version, size, rng, self.hosts[ends.server], self.result.epoch
            )
        if step.startswith("ClientKeyExchange"):
            return wire.client_finish("1.2", size, rng)
        if step.startswith("ChangeCipherSpec"):
            return wire.server_finish(size, rng)
        return wire.alert(size)

    def _application(self, i: int, user: str) -> bytes:
        """A step's application bytes; the message after DATA, or after RETR's +OK, whole."""
        text = self.texts[i].encode()
        size = int(self.bytes[i])
        if self.step[i] == "message":
            return wire.terminated(self._content(i, "", size - 5))
        if size > len(text):  # a RETR's +OK, and the message it carries
            body = self._content(i, user, size - len(text) - 3)
            return text + body.replace(b"\r\n.", b"\r\n..") + b".\r\n"
        return text

    def _content(self, i: int, recipient: str, size: int) -> bytes:
        ids = str(self.message[i]).split()
        copy = None
        for found in ids:
            copy = self.copies.get((found, recipient)) or self.copies.get((found, ""))
            if copy is not None:
                break
        body = wire.content(copy, size, float(self.time[i]), self.result.epoch)
        return body[:-2] + b"\r\n" if recipient else body  # POP3: the last line's CRLF

    def _closes(self, rows: list[int]) -> bool:
        """Did the session end by QUIT and its answer (not a reset, a timeout, a crash)?"""
        steps = [self.step[i] for i in rows]
        return (
            "QUIT" in steps and steps[-1] not in ("timeout", "RST") and (self.code[rows[-1]] != "")
        )

    def _path(self, src: str, dst: str, t: float) -> Path:
        return self.network.path(src, dst, t)

    def _send(
        self, tcp: _Connection, flight: _Flight, forward: bool, answer: float | None
    ) -> Iterator[Packet]:
        """A flight's segments (again where a lossy link dropped them), and the ACKs the
        receiver sends alone."""
        t, kind = float(flight.time), flight.kind
        path = self._path(flight.src, flight.dst, t)
        if kind == "SYN (no answer)":
            yield from tcp.syn_retries(flight, t, float(flight.arrive))
            return
        if kind != "data":
            packet = tcp.control(flight, forward, kind, t)
            yield from self._lossy(packet, path, flight)
            if kind in ("SYN", "SYN-ACK", "ACK", "RST"):
                tcp.arrived(not forward, tcp.next[forward], float(flight.arrive))
            return
        chunks = [flight.payload[k : k + MSS] for k in range(0, len(flight.payload), MSS)]
        offsets = departures(len(chunks), path)
        link = MSS * 8 / path.bottleneck
        for n, (chunk, offset) in enumerate(zip(chunks, offsets, strict=True)):
            last = n == len(chunks) - 1
            at = t + offset
            packet = tcp.data(flight, forward, chunk, at, last, flight.rows[0] if n == 0 else -1)
            if last:
                sent = list(self._lossy(packet, path, flight))
                yield from sent
                reached = float(flight.arrive)
            else:
                sent = [packet]
                yield packet
                reached = at + link + path.latency
            tcp.arrived(not forward, packet.seq + len(chunk), reached)
            if not last:
                yield tcp.pure_ack(flight, not forward, reached)
            elif answer is None or answer > reached + DELAYED_ACK:
                yield tcp.pure_ack(flight, not forward, reached + DELAYED_ACK)

    def _lossy(self, packet: Packet, path: Path, flight: _Flight) -> Iterator[Packet]:
        """``packet``, preceded by the copies a lossy link dropped: the model's arrival
        says how many retransmission timeouts it waited."""
        if not self.faults.lossy:
            yield packet
            return
        link = next(
            (p for p in itertools.pairwise(path.nodes) if self.faults.loss(*p, packet.time) > 0),
            None,
        )
        nominal = path.latency + flight.model_bytes * 8 / path.bottleneck
        extra = float(flight.arrive) - float(flight.time) - nominal
        waited, copies = 0.0, []
        for rto in backoff(MAX_RETRANSMISSIONS if link is not None else 0):
            if waited + rto > extra + 1e-6:
                break
            copies.append(waited)
            waited += rto
        for k, lost in enumerate(copies):
            yield replace(
                packet, time=packet.time + lost, lost_on=link, row=-1 if k else packet.row
            )
        yield replace(packet, time=packet.time + waited, row=-1 if copies else packet.row)

    def _close(self, tcp: _Connection, last: _Flight) -> Iterator[Packet]:
        """The server, having answered QUIT, closes; the client closes in turn."""
        server, client = (last.src, last.dst) if last.src != tcp.ends.client else (
            last.dst, last.src
        )  # fmt: skip
        t = float(last.time)
        one_way = self._path(server, client, t).latency
        yield tcp.fin(False, server, client, t)
        t += one_way
        tcp.arrived(True, tcp.next[False], t)
        yield tcp.fin(True, client, server, t)
        t += one_way
        tcp.arrived(False, tcp.next[True], t)
        yield tcp.pure_ack_from(False, server, client, t)


class _Connection:
    """One TCP connection's sequence space: what each end sent and what has reached it."""

    def __init__(self, ends: Any, rng: np.random.Generator) -> None:
        self.ends = ends
        self.session = int(ends.session)
        isn = rng.integers(0, 2**32, size=2).tolist()
        self.isn = {True: isn[0], False: isn[1]}
        self.next = dict(self.isn)  # the next sequence number each end sends
        # What reached each end from the other: when, and the sequence number it holds up
        # to then (segments arrive in order: a later arrival holds more).
        self.got: dict[bool, tuple[list[float], list[int]]] = {True: ([], []), False: ([], [])}

    def arrived(self, receiver_is_client: bool, upto: int, at: float) -> None:
        """Bytes before ``upto`` of the other end's reached ``receiver_is_client``'s end."""
        times, upto_then = self.got[receiver_is_client]
        k = bisect.bisect_right(times, at)
        times.insert(k, at)
        upto_then.insert(k, upto)

    def acked(self, sender_is_client: bool, t: float) -> int:
        """The ACK number an end sends at ``t``: the other end's bytes it holds by then."""
        times, upto_then = self.got[sender_is_client]
        k = bisect.bisect_right(times, t + 1e-12)
        return upto_then[k - 1] % 2**32 if k else 0

    def control(self, flight: _Flight, forward: bool, kind: str, t: float) -> Packet:
        row = flight.rows[0]
        if kind == "SYN":
            self.next[True] = (self.isn[True] + 1) % 2**32
            return Packet(t, self.session, True, flight.src, flight.dst, "S", self.isn[True], 0,
                          b"", row)  # fmt: skip
        if kind == "SYN-ACK":
            self.next[False] = (self.isn[False] + 1) % 2**32
            ack = self.next[True]
            return Packet(t, self.session, False, flight.src, flight.dst, "SA", self.isn[False],
                          ack, b"", row)  # fmt: skip
        if kind == "RST":  # to a SYN: sequence 0, acknowledging the SYN (RFC 9293 §3.10.7.1)
            return Packet(t, self.session, False, flight.src, flight.dst, "RA", 0,
                          self.next[True], b"", row)  # fmt: skip
        return Packet(t, self.session, forward, flight.src, flight.dst, "A", self.next[forward],
                      self.next[not forward], b"", row)  # fmt: skip

    def syn_retries(self, flight: _Flight, t: float, gave_up: float) -> Iterator[Packet]:
        """A SYN nobody answers, sent again after 1, 2, 4… s until the client gives up."""
        self.next[True] = (self.isn[True] + 1) % 2**32
        wait, row = 0.0, flight.rows[0]
        yield Packet(t, self.session, True, flight.src, flight.dst, "S", self.isn[True], 0,
                     b"", row)  # fmt: skip
        for rto in backoff(SYN_RETRIES):
            wait += rto
            if t + wait > gave_up + 1e-9:
                break
            yield Packet(t + wait, self.session, True, flight.src, flight.dst, "S",
                         self.isn[True], 0, b"", -1)  # fmt: skip

    def data(
        self, flight: _Flight, forward: bool, chunk: bytes, t: float, last: bool, row: int
    ) -> Packet:
        seq = self.next[forward]
        self.next[forward] = (seq + len(chunk)) % 2**32
        flags = "PA" if last else "A"
        return Packet(t, self.session, forward, flight.src, flight.dst, flags, seq,
                      self.acked(forward, t), chunk, row, sealed=flight.sealed)  # fmt: skip

    def pure_ack(self, flight: _Flight, forward: bool, t: float) -> Packet:
        return self.pure_ack_from(forward, flight.dst, flight.src, t)

    def pure_ack_from(self, forward: bool, src: str, dst: str, t: float) -> Packet:
        return Packet(t, self.session, forward, src, dst, "A", self.next[forward],
                      self.acked(forward, t), b"")  # fmt: skip

    def fin(self, forward: bool, src: str, dst: str, t: float) -> Packet:
        seq = self.next[forward]
        self.next[forward] = (seq + 1) % 2**32
        return Packet(t, self.session, forward, src, dst, "FA", seq, self.acked(forward, t), b"")
