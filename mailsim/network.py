"""The network: nodes with roles, links, lowest-latency paths, and how long bytes take.

This is the only module that computes transfer times. A transfer from one node to another
follows the path of lowest total latency; it takes the sum of the links' one-way
latencies, plus the bytes' transmission time at the path's narrowest link, plus a jitter
draw per link (uniform in [0, jitter], from that link's own random stream).

Bulk data (a message after DATA, a RETR answer) goes as TCP segments of 1460 bytes
under slow start: at first 10 segments may be unacknowledged (RFC 6928), and each ACK,
back one round trip after its segment left the narrowest link, frees that segment's
place and widens the window by one (RFC 5681 §3.1). So each flight is sent while the
previous flight's ACKs are on their way, and the sender waits only until its window
holds a round trip's worth of segments: a 20 kB message waits for an ACK at most once,
a 1 MB attachment at most six times (:func:`sending_time`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx
import numpy as np

from mailsim.faults import Faults
from mailsim.rng import stream
from mailsim.scenario import Scenario

MSS = 1460  # bytes per TCP segment on Ethernet (1500 MTU − 40 bytes of headers)
INITIAL_WINDOW = 10  # segments, RFC 6928
TCP_SYN = 60  # bytes of a SYN or SYN-ACK with options
TCP_ACK = 52
INITIAL_RTO = 1.0  # seconds, RFC 6298 §2.1; doubled after each loss (§5.5)
MAX_RTO = 120.0  # RFC 6298 §2.5: a maximum of at least 60 s
MAX_RETRANSMISSIONS = 15  # Linux tcp_retries2: then the connection is given up


@dataclass(frozen=True)
class Path:
    nodes: tuple[str, ...]
    latency: float  # one-way, seconds
    bottleneck: float  # bits per second
    jittery: tuple[tuple[str, str], ...]  # links on the path whose jitter is not zero

    @property
    def rtt(self) -> float:
        return 2 * self.latency


_UP: frozenset[frozenset[str]] = frozenset()  # no link down


class NoRoute(Exception):
    """No network path between two nodes."""


class Topology:
    """The scenario's network as a networkx graph, with cached paths and timing."""

    def __init__(self, scenario: Scenario, seed: int, faults: Faults | None = None) -> None:
        graph = nx.Graph()
        for name, node in scenario.nodes.items():
            graph.add_node(name, role=node.role)
        for link in scenario.links:
            a, b = link.between
            graph.add_edge(a, b, latency=link.latency, jitter=link.jitter, bandwidth=link.bandwidth)
        self.graph = graph
        # Links that forget idle connections (a NAT, a mobile network): their timeouts.
        self._forgetful = {
            frozenset(link.between): link.idle_timeout
            for link in scenario.links
            if link.idle_timeout is not None
        }
        self._rng: dict[frozenset[str], np.random.Generator] = {
            frozenset(link.between): stream(seed, "link", *sorted(link.between))
            for link in scenario.links
            if link.jitter > 0
        }
        self._seed = seed
        # Loss streams only for the links that ever lose packets, made on first use
        # (a stream costs ~0.1 ms to seed; large worlds have thousands of links).
        self._loss_rng: dict[frozenset[str], np.random.Generator] = {}
        self.faults = faults
        self._paths: dict[tuple[str, str, frozenset[frozenset[str]]], Path | None] = {}
        # Without link faults a path never changes: found by (src, dst) alone.
        self._fixed: dict[tuple[str, str], Path] | None = (
            None if faults and faults.links_can_fail else {}
        )
        self._lossy = bool(faults and faults.lossy)
        self._core: dict[tuple[str, str, frozenset[frozenset[str]]], tuple[str, ...]] = {}

    def path(self, src: str, dst: str, t: float | None = None) -> Path:
        """The lowest-latency path at time ``t`` (avoiding links that are down then)."""
        fixed = self._fixed
        if fixed is not None:
            found = fixed.get((src, dst))
            if found is not None:
                return found
        down = self.faults.links_down(t) if self.faults and t is not None else _UP
        key = (src, dst, down)
        if key not in self._paths:
            self._paths[key] = self._path(src, dst, down)
        path = self._paths[key]
        if path is None:
            raise NoRoute(f"no network path from {src} to {dst}")
        if fixed is not None:
            fixed[(src, dst)] = path
        return path

    def _path(self, src: str, dst: str, down: frozenset[frozenset[str]]) -> Path | None:
        graph = self.graph
        if down:
            graph = nx.restricted_view(graph, [], [tuple(pair) for pair in down])
        if src not in graph or dst not in graph:
            return None
        # A host with a single link reaches everything through its neighbour: search
        # between the neighbours and share that search among all hosts behind them
        # (a large world has thousands of hosts and a few dozen routers).
        a, b = _through(graph, src), _through(graph, dst)
        if a in (dst, b) or b == src:
            a, b = src, dst
        core = self._core.get((a, b, down))
        if core is None:
            try:
                core = tuple(nx.shortest_path(graph, a, b, weight="latency"))
            except nx.NetworkXNoPath:
                core = ()
            self._core[(a, b, down)] = core
        if not core:
            return None
        nodes = [*([src] if a != src else []), *core, *([dst] if b != dst else [])]
        pairs = list(itertools.pairwise(nodes))
        edges = [self.graph.edges[a, b] for a, b in pairs]
        return Path(
            nodes=tuple(nodes),
            latency=sum(e["latency"] for e in edges),
            bottleneck=min((e["bandwidth"] for e in edges), default=math.inf),
            jittery=tuple(pair for pair, e in zip(pairs, edges, strict=True) if e["jitter"] > 0),
        )

    def forgets(self, src: str, dst: str, idle: float, t: float | None = None) -> str | None:
        """The first link from ``src`` to ``dst`` that forgets a connection idle for
        ``idle`` seconds (its ``idle_timeout`` has passed), as "a–b"; None if none does."""
        if not self._forgetful:
            return None
        try:
            nodes = self.path(src, dst, t).nodes
        except NoRoute:
            return None
        for a, b in itertools.pairwise(nodes):
            timeout = self._forgetful.get(frozenset((a, b)))
            if timeout is not None and idle >= timeout:
                return f"{a}–{b}"
        return None

    def reachable(self, src: str, dst: str, t: float | None = None) -> bool:
        try:
            self.path(src, dst, t)
        except NoRoute:
            return False
        return True

    def rtt(self, src: str, dst: str, t: float | None = None) -> float:
        """Round-trip time without jitter or transmission: 2 × the path's latency."""
        return self.path(src, dst, t).rtt

    def transfer_time(self, src: str, dst: str, nbytes: int, t: float | None = None) -> float:
        """Seconds for ``nbytes`` sent in one flight at time ``t`` from ``src`` to reach
        ``dst``; raises NoRoute when no path carries traffic then."""
        if src == dst:
            return 0.0
        path = self.path(src, dst, t)
        time = path.latency + nbytes * 8 / path.bottleneck
        if path.jittery or self._lossy:  # most paths neither: no call (the hottest code)
            time = self._noisy(path, time, nbytes, t)
        return time

    def bulk_time(self, src: str, dst: str, nbytes: int, t: float | None = None) -> float:
        """Like :meth:`transfer_time` for ``nbytes`` that TCP slow start paces: from the
        first segment sent until the last byte arrives (see :func:`sending_time`)."""
        if src == dst:
            return 0.0
        path = self.path(src, dst, t)
        time = path.latency + sending_time(nbytes, path.bottleneck, path.rtt)
        if path.jittery or self._lossy:
            time = self._noisy(path, time, nbytes, t)
        return time

    def _noisy(self, path: Path, time: float, nbytes: int, t: float | None) -> float:
        """``time`` plus each jittery link's draw and the time lost to packet loss."""
        for a, b in path.jittery:
            jitter = self.graph.edges[a, b]["jitter"]
            time += float(self._rng[frozenset((a, b))].uniform(0.0, jitter))
        if self._lossy and t is not None:
            time += self._retransmissions(path, nbytes, t)
        return time

    def _retransmissions(self, path: Path, nbytes: int, t: float) -> float:
        """Time lost to packet loss: each lost flight waits a retransmission timeout."""
        assert self.faults is not None
        extra = 0.0
        segments = max(1, math.ceil(nbytes / MSS))
        for a, b in itertools.pairwise(path.nodes):
            rate = self.faults.loss(a, b, t)
            if rate <= 0:
                continue
            lost = 1 - (1 - rate) ** segments  # some segment of the flight is lost
            key = frozenset((a, b))
            rng = self._loss_rng.get(key)
            if rng is None:
                rng = self._loss_rng[key] = stream(self._seed, "loss", *sorted(key))
            for rto in backoff(MAX_RETRANSMISSIONS):
                if rng.random() >= lost:
                    break
                extra += rto
        return extra


def sending_time(nbytes: int, bandwidth: float, rtt: float) -> float:
    """Seconds from the first bit of ``nbytes`` entering the narrowest link until its
    last bit has left it, when TCP slow start paces the segments.

    The sender starts with 10 segments unacknowledged (RFC 6928); the ACK of each
    segment comes back ``rtt`` after the segment left the link, frees its place and
    widens the window by one segment (RFC 5681 §3.1; nothing is lost, so slow start
    never ends, and the receiver's window never limits). The ACKs of one flight thus
    release the next flight, twice as long, as fast as they arrive: a flight starts one
    segment's transmission plus one round trip after the previous one started, or
    straight after it when the previous flight takes longer to send than that, and from
    then on the link never idles. So only the flights the window holds back are walked:
    at most 16 for a gigabyte (17 flights). Delayed ACKs (one for every second segment,
    RFC 1122 §4.2.3.2, RFC 5681 §4.2) are not modelled.
    """
    start, rest = flights(nbytes, bandwidth, rtt)[-1]
    return start + rest * 8 / bandwidth


def flights(nbytes: int, bandwidth: float, rtt: float) -> list[tuple[float, int]]:
    """The flights :func:`sending_time` sends ``nbytes`` in: when each starts (seconds
    from the first bit) and how many bytes it carries. The last one takes the rest,
    however long: the link never idles once a flight takes longer to send than an ACK
    takes to come back. The ladder draws them (:mod:`mailsim.plot.sequence`)."""
    segment = MSS * 8 / bandwidth
    ack = segment + rtt  # from a flight's first bit to the ACK of its first segment
    out: list[tuple[float, int]] = []
    start, sent, flight = 0.0, 0, INITIAL_WINDOW * MSS  # seconds, bytes, bytes
    while sent + flight < nbytes and flight * 8 / bandwidth < ack:
        out.append((start, flight))
        start += ack
        sent += flight
        flight *= 2
    out.append((start, nbytes - sent))
    return out


def departures(segments: int, path: Path) -> list[float]:
    """When each segment of a flight leaves, from its first: :func:`sending_time`'s
    slow start segment by segment — flights of 10, 20, 40… segments, each sent as the
    ACKs of the one before come back (the capture files' packets, :mod:`mailsim.segments`)."""
    link = MSS * 8 / path.bottleneck
    ack = link + path.rtt
    out: list[float] = []
    start, flight = 0.0, INITIAL_WINDOW
    while len(out) + flight < segments and flight * link < ack:
        out += [start + k * link for k in range(flight)]
        start += ack
        flight *= 2
    out += [start + k * link for k in range(segments - len(out))]
    return out


def backoff(tries: int) -> Iterator[float]:
    """The retransmission timeouts of ``tries`` tries in turn: 1 s, doubled after each
    loss up to MAX_RTO (RFC 6298 §2.1, §5.5); a SYN is retried on the same clock."""
    rto = INITIAL_RTO
    for _ in range(tries):
        yield rto
        rto = min(rto * 2, MAX_RTO)


def _through(graph: nx.Graph, node: str) -> str:
    """The neighbour every path from ``node`` goes through, if it has only one link."""
    if graph.degree(node) == 1:
        return next(iter(graph.neighbors(node)))
    return node
