"""The network: nodes with roles, links, lowest-latency paths, and how long bytes take.

This is the only module that computes transfer times. A transfer from one node to another
follows the path of lowest total latency; it takes the sum of the links' one-way
latencies, plus the bytes' transmission time at the path's narrowest link, plus a jitter
draw per link (uniform in [0, jitter], from that link's own random stream).

Bulk data (a message after DATA, a RETR answer) also pays TCP slow start: a new
connection may send 10 segments before the first ACK (RFC 6928 initial window, MSS
1460 bytes), doubling each round trip (RFC 5681), so a 20 kB message needs one extra
round trip and a 1 MB attachment several.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache

import networkx as nx
import numpy as np

from mailsim.rng import stream
from mailsim.scenario import Scenario

MSS = 1460  # bytes per TCP segment on Ethernet (1500 MTU − 40 bytes of headers)
INITIAL_WINDOW = 10  # segments, RFC 6928
TCP_SYN = 60  # bytes of a SYN or SYN-ACK with options
TCP_ACK = 52


@dataclass(frozen=True)
class Path:
    nodes: tuple[str, ...]
    latency: float  # one-way, seconds
    bottleneck: float  # bits per second
    jittery: tuple[tuple[str, str], ...]  # links on the path whose jitter is not zero

    @property
    def rtt(self) -> float:
        return 2 * self.latency


class NoRoute(Exception):
    """No network path between two nodes."""


class Topology:
    """The scenario's network as a networkx graph, with cached paths and timing."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        graph = nx.Graph()
        for name, node in scenario.nodes.items():
            graph.add_node(name, role=node.role)
        for link in scenario.links:
            a, b = link.between
            graph.add_edge(a, b, latency=link.latency, jitter=link.jitter, bandwidth=link.bandwidth)
        self.graph = graph
        self._rng: dict[frozenset[str], np.random.Generator] = {
            frozenset(link.between): stream(seed, "link", *sorted(link.between))
            for link in scenario.links
            if link.jitter > 0
        }
        self.path = cache(self._path)

    def _path(self, src: str, dst: str) -> Path:
        try:
            nodes = nx.shortest_path(self.graph, src, dst, weight="latency")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            raise NoRoute(f"no network path from {src} to {dst}") from None
        pairs = list(itertools.pairwise(nodes))
        edges = [self.graph.edges[a, b] for a, b in pairs]
        return Path(
            nodes=tuple(nodes),
            latency=sum(e["latency"] for e in edges),
            bottleneck=min((e["bandwidth"] for e in edges), default=math.inf),
            jittery=tuple(pair for pair, e in zip(pairs, edges, strict=True) if e["jitter"] > 0),
        )

    def reachable(self, src: str, dst: str) -> bool:
        try:
            self.path(src, dst)
        except NoRoute:
            return False
        return True

    def rtt(self, src: str, dst: str) -> float:
        """Round-trip time without jitter or transmission: 2 × the path's latency."""
        return self.path(src, dst).rtt

    def transfer_time(self, src: str, dst: str, nbytes: int) -> float:
        """Seconds for ``nbytes`` sent in one flight from ``src`` to reach ``dst``."""
        if src == dst:
            return 0.0
        path = self.path(src, dst)
        time = path.latency + nbytes * 8 / path.bottleneck
        for a, b in path.jittery:
            jitter = self.graph.edges[a, b]["jitter"]
            time += float(self._rng[frozenset((a, b))].uniform(0.0, jitter))
        return time

    def bulk_time(self, src: str, dst: str, nbytes: int) -> float:
        """Like :meth:`transfer_time`, plus the round trips TCP slow start adds."""
        return self.transfer_time(src, dst, nbytes) + slow_start_rounds(nbytes) * self.rtt(src, dst)


def slow_start_rounds(nbytes: int) -> int:
    """Round trips beyond the first that slow start needs to send ``nbytes``: flights of
    10, 20, 40 … segments."""
    segments = math.ceil(nbytes / MSS)
    rounds, window, sent = 0, INITIAL_WINDOW, INITIAL_WINDOW
    while sent < segments:
        window *= 2
        sent += window
        rounds += 1
    return rounds
