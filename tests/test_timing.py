"""Every second of a result is explainable from the scenario's numbers.

Each session's duration is recomputed here from the round trips the protocol needs
(REFERENCE.md b4), the path's RTT, the bytes ÷ bandwidth and the servers' processing
times, and compared with what the simulation measured.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mailsim
from mailsim.network import MSS, sending_time
from mailsim.scenario import validate
from tests.conftest import SCENARIOS

FAST = 1e18  # bit/s: transmission time vanishes, only round trips and work remain


def classroom_with(bandwidth: float | None = None, **server: object) -> mailsim.Scenario:
    data = mailsim.load(SCENARIOS / "classroom.yaml").model_dump(by_alias=True, exclude_none=True)
    if bandwidth is not None:
        for link in data["links"]:
            link["bandwidth"] = bandwidth
    for _name, node in data["nodes"].items():
        if node["role"] == "smtp":
            node.update(server)
    return validate(data)


def session_durations(result: mailsim.Result) -> dict[tuple[str, str, str], list[float]]:
    """(client, server, protocol) → durations of its TCP sessions, from SYN to last reply."""
    events = result.events
    out: dict[tuple[str, str, str], list[float]] = {}
    for _, rows in events[events["protocol"] != "dns"].groupby("session"):
        first = rows.iloc[0]
        protocols = set(rows["protocol"]) - {"tcp", "tls"}
        key = (first["src"], first["dst"], protocols.pop())
        out.setdefault(key, []).append(rows["arrive"].max() - rows["time"].min())
    return out


# Round trips per session (1 recipient, 20 kB: one extra round trip of TCP slow start,
# waiting for the first ACK before the last 4 of its 14 segments).
# The mail program is Thunderbird: MAIL, RCPT and DATA each wait for their reply.
SUBMISSION_RTTS = 2 + 1 + 1 + 1 + 1 + 1 + (1 + 1 + 1) + (1 + 1) + 1  # connect+220, EHLO,
# STARTTLS, TLS 1.3, EHLO, AUTH, MAIL, RCPT, DATA, message (+slow start), QUIT
# The servers relay as Postfix does: MAIL/RCPT/DATA in one group, QUIT with the "." and
# its 221 not awaited — the session ends with the reply to the message.
RELAY_RTTS = 2 + 1 + 1 + 1 + 1 + 1 + (1 + 1)  # no AUTH between servers
LMTP_RTTS = 2 + 1 + 1 + (1 + 1)  # connect+220, LHLO, MAIL/RCPT/DATA, message
POP_RTTS = 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + (1 + 1) + 1 + 1  # connect+OK, CAPA, STLS,
# TLS 1.3, CAPA, USER, PASS, STAT, LIST, RETR (+slow start), DELE, QUIT
EMPTY_POP_RTTS = 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1  # ... STAT says 0, QUIT


def test_round_trip_table_matches_reference():
    # REFERENCE.md b4: relay with STARTTLS + TLS 1.3 + PIPELINING is 9 RTT for a message
    # in one flight, QUIT's included; Postfix sends QUIT with the "." and does not wait
    # for its 221: 8. A 20 kB message needs one more round trip of slow start: its 14
    # segments are more than the initial window of 10.
    assert sending_time(20_005, FAST, 1.0) == pytest.approx(1.0)
    assert sending_time(10 * MSS, FAST, 1.0) == pytest.approx(0.0)
    assert RELAY_RTTS == 9 - 1 + 1


def test_every_session_is_its_round_trips_plus_server_work():
    scenario = classroom_with(bandwidth=FAST)
    result = mailsim.run(scenario)
    net = mailsim.world.World(scenario).network  # type: ignore[attr-defined]
    cmd, data, tls = 0.0005, 0.005, 0.001  # Processing defaults
    expected = {
        ("alice-pc", "msa-school", "smtp"): SUBMISSION_RTTS * net.rtt("alice-pc", "msa-school")
        + 9 * cmd  # greeting, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA, QUIT
        + tls
        + data,
        ("msa-school", "mx-home", "smtp"): RELAY_RTTS * net.rtt("msa-school", "mx-home")
        + 7 * cmd  # greeting, EHLO, STARTTLS, EHLO, MAIL, RCPT, DATA
        + tls
        + data,
        ("mx-home", "pop-home", "lmtp"): LMTP_RTTS * net.rtt("mx-home", "pop-home")
        + 5 * cmd  # greeting, LHLO, MAIL, RCPT, DATA
        + data,
    }
    durations = session_durations(result)
    for key, seconds in expected.items():
        assert durations[key] == [pytest.approx(seconds, abs=1e-9)], key
    pop_rtt = net.rtt("bob-pc", "pop-home")
    polls = durations[("bob-pc", "pop-home", "pop3")]
    empty = EMPTY_POP_RTTS * pop_rtt + 8 * cmd + tls
    full = POP_RTTS * pop_rtt + 11 * cmd + tls
    assert polls == [pytest.approx(empty, abs=1e-9), pytest.approx(full, abs=1e-9)]


def test_classroom_rtts_are_the_scenario_latencies():
    net = mailsim.world.World(mailsim.load(SCENARIOS / "classroom.yaml")).network  # type: ignore[attr-defined]
    assert net.rtt("alice-pc", "msa-school") == pytest.approx(0.004)
    assert net.rtt("msa-school", "mx-home") == pytest.approx(2 * (0.001 + 0.045 + 0.001))
    assert net.rtt("bob-pc", "pop-home") == pytest.approx(2 * (0.005 + 0.001 + 0.0005))


def test_bandwidth_adds_bytes_over_the_bottleneck_once_per_flight(classroom_result):
    fast = session_durations(mailsim.run(classroom_with(bandwidth=FAST)))
    real = session_durations(classroom_result)
    events = classroom_result.events
    # The submission path is one 100 Mbit/s link: every byte of the session crosses it.
    session = events[(events["src"] == "alice-pc") & (events["protocol"] != "dns")]["session"].iloc[
        0
    ]
    rows = events[events["session"] == session]
    # Pipelined commands share a flight: count each flight's bytes once, as the network does.
    flights = rows.groupby(["time", "src"])["bytes"].sum()
    transmission = flights.sum() * 8 / 100e6 + 64 * 8 / 100e6  # + TLS 1.3 client Finished
    # But the message's first 10 segments wait only for the first one's transmission: the
    # other nine go while its ACK is on its way (9 × 116.8 µs < the 4 ms round trip).
    assert 9 * MSS * 8 / 100e6 < 0.004
    transmission -= 9 * MSS * 8 / 100e6
    key = ("alice-pc", "msa-school", "smtp")
    assert real[key][0] - fast[key][0] == pytest.approx(transmission, abs=1e-9)


def test_pipelining_off_costs_one_round_trip_per_command():
    on = session_durations(mailsim.run(classroom_with(bandwidth=FAST)))
    off = session_durations(mailsim.run(classroom_with(bandwidth=FAST, pipelining=False)))
    rtt = 2 * (0.001 + 0.045 + 0.001)
    key = ("msa-school", "mx-home", "smtp")
    # MAIL, RCPT and DATA: three round trips instead of one.
    assert off[key][0] - on[key][0] == pytest.approx(2 * rtt, abs=1e-9)


def test_tls_12_costs_one_more_round_trip_than_13():
    v13 = session_durations(mailsim.run(classroom_with(bandwidth=FAST)))
    v12 = session_durations(mailsim.run(classroom_with(bandwidth=FAST, tls="1.2")))
    key = ("msa-school", "mx-home", "smtp")
    rtt = 2 * (0.001 + 0.045 + 0.001)
    assert v12[key][0] - v13[key][0] == pytest.approx(rtt + 0.001, abs=1e-9)  # + server crypto


def test_plaintext_relay_saves_starttls_handshake_and_second_ehlo():
    tls = session_durations(mailsim.run(classroom_with(bandwidth=FAST)))
    plain = session_durations(mailsim.run(classroom_with(bandwidth=FAST, tls="none")))
    key = ("msa-school", "mx-home", "smtp")
    rtt = 2 * (0.001 + 0.045 + 0.001)
    assert tls[key][0] - plain[key][0] == pytest.approx(3 * rtt + 2 * 0.0005 + 0.001, abs=1e-9)


def test_delay_parts_add_up_to_the_end_to_end_delay(classroom_result):
    row = classroom_result.messages.iloc[0]
    parts = sum(row[f"{name}_time"] for name in mailsim.message.COSTS)  # type: ignore[attr-defined]
    assert parts == pytest.approx(row["retrieved_at"] - row["submitted_at"], abs=1e-9)
    # The poll wait is the time between delivery and the start of the next poll (at 300 s).
    assert row["poll_time"] == pytest.approx(300.0 - row["delivered_at"], abs=1e-9)
    # Two DNS look-ups, both cache misses: 2 × (RTT to the resolver + recursion) + bytes.
    assert row["dns_time"] == pytest.approx(2 * (0.002 + 0.08), abs=1e-5)


@given(
    nbytes=st.integers(1, 50_000_000),
    bandwidth=st.sampled_from([1e6, 10e6, 50e6, 100e6, 1e9, 10e9]),
    rtt=st.floats(0.0001, 0.5),
)
def test_slow_starts_flights_carry_every_byte_in_windows_that_double(nbytes, bandwidth, rtt):
    """The flights the ladder draws are sending_time's: 10, 20, 40… full segments, the
    last one the rest; each starts one segment's sending plus a round trip after the one
    before; the last ends when sending_time says."""
    from mailsim.network import INITIAL_WINDOW, flights

    parts = flights(nbytes, bandwidth, rtt)
    assert sum(size for _, size in parts) == nbytes
    assert [size for _, size in parts[:-1]] == [
        INITIAL_WINDOW * MSS * 2**k for k in range(len(parts) - 1)
    ]
    assert [b - a for (a, _), (b, _) in pairwise(parts)] == pytest.approx(
        [MSS * 8 / bandwidth + rtt] * (len(parts) - 1)
    )
    start, rest = parts[-1]
    assert sending_time(nbytes, bandwidth, rtt) == start + rest * 8 / bandwidth
