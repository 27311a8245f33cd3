"""Bulk transfers under TCP slow start, against a packet-by-packet simulation.

The reference below knows nothing of flights: it sends one segment at a time through
one link, whenever the window lets it, and moves its clock from ACK to ACK. The
network's closed form must give the same arrival time, to the nanosecond.
"""

from __future__ import annotations

import heapq
import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsim.network import INITIAL_WINDOW, MSS, Topology, sending_time
from mailsim.scenario import validate

MIB = 2**20
SIZES = [1, 1460, 1461, 14_600, 14_601, 20_000, 100_000, MIB, 10_000_000]
BANDWIDTHS = [1e6, 10e6, 50e6, 100e6, 1e9, 10e9]
RTTS = [0.001, 0.004, 0.02, 0.09, 0.2, 0.3]
NS = 1e-9


def packet_by_packet(nbytes: int, bandwidth: float, latency: float) -> float:
    """When the last byte of ``nbytes`` arrives, one segment and one ACK at a time.

    Segments of MSS bytes (the last one shorter) queue for a link of ``bandwidth``; at
    most ``cwnd`` may be unacknowledged, 10 at first (RFC 6928), and each ACK, back one
    round trip after its segment left the link, frees a place and adds one to ``cwnd``
    (RFC 5681 §3.1)."""
    rtt = 2 * latency
    sizes = [MSS] * (nbytes // MSS) + ([nbytes % MSS] if nbytes % MSS else [])
    cwnd, unacked, sent = INITIAL_WINDOW, 0, 0
    now = link_free = arrival = 0.0
    acks: list[float] = []  # when each ACK still on its way comes back
    while True:
        while sent < len(sizes) and unacked < cwnd:
            link_free = max(now, link_free) + sizes[sent] * 8 / bandwidth
            heapq.heappush(acks, link_free + rtt)
            arrival = link_free + latency
            sent += 1
            unacked += 1
        if sent == len(sizes):
            return arrival
        now = heapq.heappop(acks)
        unacked -= 1
        cwnd += 1


def line(*links: tuple[float, float]) -> Topology:
    """Nodes n0 … nk in a row, joined by links of (one-way latency, bandwidth)."""
    nodes = {f"n{i}": {"role": "router"} for i in range(len(links) + 1)}
    data = [
        {"between": [f"n{i}", f"n{i + 1}"], "latency": latency, "bandwidth": bandwidth}
        for i, (latency, bandwidth) in enumerate(links)
    ]
    return Topology(validate({"nodes": nodes, "links": data}), seed=0)


def old_rule(nbytes: int, bandwidth: float, latency: float) -> float:
    """The rule before: the whole transmission, plus one round trip per doubling flight."""
    segments, rounds, window, sent = math.ceil(nbytes / MSS), 0, INITIAL_WINDOW, INITIAL_WINDOW
    while sent < segments:
        window *= 2
        sent += window
        rounds += 1
    return latency + nbytes * 8 / bandwidth + rounds * 2 * latency


@pytest.mark.parametrize("rtt", RTTS)
@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
def test_bulk_time_is_the_packet_by_packet_time(bandwidth, rtt):
    net = line((rtt / 2, bandwidth))
    for nbytes in SIZES:
        expected = packet_by_packet(nbytes, bandwidth, rtt / 2)
        assert net.bulk_time("n0", "n1", nbytes) == pytest.approx(expected, abs=NS), nbytes


def test_a_gigabyte_over_the_longest_fattest_path_is_the_packet_by_packet_time():
    # 10 Gbit/s, 300 ms: a round trip holds 256,850 segments' transmission, so the sender
    # waits for ACKs 15 times (flights of 10 … 163,840) before the link stays busy.
    assert line((0.15, 10e9)).bulk_time("n0", "n1", 10**9) == pytest.approx(
        packet_by_packet(10**9, 10e9, 0.15), abs=NS
    )


def test_the_path_sends_at_its_narrowest_link_and_waits_for_its_whole_round_trip():
    net = line((0.001, 1e9), (0.020, 50e6), (0.001, 1e9))
    for nbytes in SIZES:
        expected = packet_by_packet(nbytes, 50e6, 0.022)
        assert net.bulk_time("n0", "n3", nbytes) == pytest.approx(expected, abs=NS), nbytes
        assert net.bulk_time("n3", "n0", nbytes) == pytest.approx(expected, abs=NS), nbytes


@given(
    nbytes=st.integers(1, 10_000_000),
    bandwidth=st.floats(1e5, 1e11),
    latency=st.floats(0.0, 0.5),
)
def test_bulk_time_is_the_packet_by_packet_time_anywhere(nbytes, bandwidth, latency):
    expected = packet_by_packet(nbytes, bandwidth, latency)
    assert line((latency, bandwidth)).bulk_time("n0", "n1", nbytes) == pytest.approx(
        expected, abs=NS
    )


def test_up_to_ten_segments_go_at_once_as_one_flight():
    net = line((0.045, 50e6))
    for nbytes in (1, 1460, 1461, 14_600):
        assert net.bulk_time("n0", "n1", nbytes) == net.transfer_time("n0", "n1", nbytes)
    # The eleventh segment waits for the first one's ACK: one segment's transmission and
    # a round trip after the start, then its 1 byte crosses.
    segment = MSS * 8 / 50e6
    assert net.bulk_time("n0", "n1", 14_601) == pytest.approx(
        segment + 0.090 + 8 / 50e6 + 0.045, abs=NS
    )


def test_a_20_kb_message_waits_once_for_an_ack():
    # 14 segments: 10, then 4 released by the first ACKs. 100 Mbit/s, 4 ms round trip.
    segment = MSS * 8 / 100e6
    expected = 0.002 + (segment + 0.004) + (20_005 - 10 * MSS) * 8 / 100e6
    assert line((0.002, 100e6)).bulk_time("n0", "n1", 20_005) == pytest.approx(expected, abs=NS)


def test_when_a_segment_takes_longer_than_a_round_trip_the_window_never_limits():
    # 1 Mbit/s: a segment takes 11.68 ms, its ACK is back 1 ms after: the link never idles.
    net = line((0.0005, 1e6))
    for nbytes in SIZES:
        assert net.bulk_time("n0", "n1", nbytes) == pytest.approx(0.0005 + nbytes * 8 / 1e6, abs=NS)


def test_a_mebibyte_at_50_mbps_costs_74_to_146_ms_less_than_the_old_rule():
    """The old rule added the whole transmission on top of six round trips; the sender in
    fact sends each flight while the previous one's ACKs are on their way."""
    segment = MSS * 8 / 50e6  # 233.6 µs
    # RTT 20 ms: a round trip and a segment hold 86.6 segments' transmission, so the
    # flights of 10, 20, 40 and 80 segments wait for ACKs; from the fifth (160 segments,
    # longer than a round trip) the link stays busy until the last of the 719 segments.
    at_20 = 0.010 + 4 * (segment + 0.020) + (MIB - 150 * MSS) * 8 / 50e6
    assert line((0.010, 50e6)).bulk_time("n0", "n1", MIB) == pytest.approx(at_20, abs=NS)
    assert old_rule(MIB, 50e6, 0.010) - at_20 == pytest.approx(2 * 0.020 + 146 * segment, abs=NS)
    # RTT 200 ms: all seven flights (10 … 320, then the last 89 segments) wait but the first.
    at_200 = 0.100 + 6 * (segment + 0.200) + (MIB - 630 * MSS) * 8 / 50e6
    assert line((0.100, 50e6)).bulk_time("n0", "n1", MIB) == pytest.approx(at_200, abs=NS)
    assert old_rule(MIB, 50e6, 0.100) - at_200 == pytest.approx(624 * segment, abs=NS)
    # In between, the old rule's excess grows with the round trip until every flight waits
    # (from 80 ms on); as a share of the true time it peaks at 35 % (40 ms).
    saved, share = [], []
    for rtt_ms in range(20, 201, 10):
        new = line((rtt_ms / 2000, 50e6)).bulk_time("n0", "n1", MIB)
        saved.append(old_rule(MIB, 50e6, rtt_ms / 2000) - new)
        share.append(round(saved[-1] / new * 100))
    assert all(b > a - NS for a, b in itertools.pairwise(saved))  # never less
    assert (round(saved[0] * 1000, 1), round(saved[-1] * 1000, 1)) == (74.1, 145.8)
    assert saved[6:] == pytest.approx([624 * segment] * 13, abs=NS)  # RTT 80 … 200 ms
    assert (share[0], max(share), share[-1]) == (33, 35, 11)


def test_a_mebibyte_at_very_high_bandwidth_takes_6_5_round_trips():
    """719 segments go in seven flights: 10, 20, 40, 80, 160, 320 and the last 89. The
    sender waits for an ACK before each flight but the first (six round trips, each
    starting after one segment's transmission) and the last byte then crosses one way:
    6.5 RTT plus 6 segments' and the last flight's transmission, as long as the sixth
    flight (320 segments) takes less than a round trip and a segment to send."""
    assert math.ceil(MIB / MSS) == 719 == 630 + 89
    for rtt in RTTS:
        net = line((rtt / 2, 1e18))  # transmission takes no time
        assert net.bulk_time("n0", "n1", MIB) == pytest.approx(6.5 * rtt, abs=NS)
        assert old_rule(MIB, 1e18, rtt / 2) == pytest.approx(6.5 * rtt, abs=NS)
    # At 10 Gbit/s and 100 ms: 6.5 RTT + 110.0 µs (the old rule: + 838.9 µs).
    new = line((0.050, 10e9)).bulk_time("n0", "n1", MIB)
    assert new == pytest.approx(6.5 * 0.1 + (6 * MSS + MIB - 630 * MSS) * 8 / 10e9, abs=NS)
    assert round((new - 0.65) * 1e6, 1) == 110.0
    assert round((old_rule(MIB, 10e9, 0.050) - 0.65) * 1e6, 1) == 838.9


def test_sending_time_walks_flights_only_while_the_window_limits():
    # A gigabyte at 1 Gbit/s over 20 ms: a round trip holds 1,713 segments, so the flights
    # of 10 … 1,280 wait (eight of them, 2,550 segments), then 8 s of a busy link.
    segment = MSS * 8 / 1e9
    assert sending_time(10**9, 1e9, 0.020) == pytest.approx(
        8 * (segment + 0.020) + (10**9 - 2_550 * MSS) * 8 / 1e9, abs=NS
    )
    assert sending_time(0, 1e9, 0.020) == 0.0
