"""Addresses and ports: every session has the ports a capture of a real exchange would
show (587 or 465 for submission, 25 for relay, 24 for LMTP, 110 or 995 for POP3, 53 over
UDP for DNS), clients take ephemeral ports from Linux's range, and every event carries the
addresses and ports it went from and to."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import mailsim
from mailsim.endpoints import EPHEMERAL, PORTS, addresses, service
from tests.conftest import SCENARIOS, shipped

# busy-office's 1.3 million events take a minute to make; its sessions are the same kinds.
SHIPPED = sorted(p for p in SCENARIOS.glob("*.yaml") if p.stem != "busy-office")


def test_classroom_sessions_have_their_services_ports():
    result = shipped(SCENARIOS / "classroom.yaml")
    table = result.sessions
    got = list(zip(table["client"], table["server"], table["service"], table["transport"],
                   table["server_port"], strict=True))  # fmt: skip
    assert got == [
        ("bob-pc", "pop-home", "pop3", "tcp", 110),  # an empty poll at the start
        ("alice-pc", "msa-school", "submission", "tcp", 587),
        ("msa-school", "dns", "dns", "udp", 53),  # MX? home.example
        ("msa-school", "dns", "dns", "udp", 53),  # A? mx.home.example
        ("msa-school", "mx-home", "smtp", "tcp", 25),
        ("mx-home", "pop-home", "lmtp", "tcp", 24),
        ("bob-pc", "pop-home", "pop3", "tcp", 110),
    ]
    ips = addresses(result.scenario)
    assert list(table["client_ip"]) == [ips[n] for n in table["client"]]
    assert list(table["server_ip"]) == [ips[n] for n in table["server"]]
    # Bob's program takes the next port for its next connection.
    bob = table[table["client"] == "bob-pc"]["client_port"].tolist()
    assert bob[1] == bob[0] + 1


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_event_goes_between_its_sessions_two_ends(path):
    """A step the client sent goes from the client's port to the server's; a reply back."""
    result = shipped(path)
    events, table = result.events, result.sessions.set_index("session")
    # A client's timeout is no packet: it happens at the client alone.
    local = events["src"].astype(str) == events["dst"].astype(str)
    assert set(events.loc[local, "step"].astype(str)) <= {"timeout"}
    events = events[~local]
    assert set(events["session"]) == set(table.index)
    ends = table.loc[events["session"]]
    forward = events["src"].astype(str).to_numpy() == ends["client"].to_numpy()
    back = events["dst"].astype(str).to_numpy() == ends["client"].to_numpy()
    assert (forward ^ back).all()  # every step goes one way or the other
    for side, to in (("src", "dst"), ("dst", "src")):
        mine = forward if side == "src" else back
        assert (events[f"{side}_ip"].astype(str).to_numpy()[mine]
                == ends["client_ip"].to_numpy()[mine]).all()  # fmt: skip
        assert (
            events[f"{side}_port"].to_numpy()[mine] == ends["client_port"].to_numpy()[mine]
        ).all()
        assert (events[f"{to}_port"].to_numpy()[mine] == ends["server_port"].to_numpy()[mine]).all()
    low, high = EPHEMERAL
    assert table["client_port"].between(low, high).all()
    assert set(table["server_port"]) <= set(PORTS.values())
    tcp = table[table["transport"] == "tcp"]
    # No client uses one port for two connections at once.
    assert not tcp.duplicated(["client", "client_port"]).any()


def test_implicit_tls_takes_465_and_995():
    """free-vs-paid-provider's paid provider: TLS from the first byte (RFC 8314)."""
    result = shipped(SCENARIOS / "free-vs-paid-provider.yaml")
    table = result.sessions
    implicit = table[table["service"].isin(["submissions", "pop3s"])]
    assert set(implicit["server_port"]) == {465, 995}
    events = result.events
    for session in implicit["session"]:
        steps = events[events["session"] == session]["protocol"].astype(str)
        assert steps[steps != "tcp"].iloc[0] == "tls"  # TLS before the first word
    for session in table[table["service"] == "submission"]["session"]:
        steps = events[events["session"] == session]["protocol"].astype(str)
        assert steps[steps != "tcp"].iloc[0] == "smtp"


def test_the_received_line_names_the_sessions_client_address():
    result = shipped(SCENARIOS / "classroom.yaml")
    received = result.email("m1").get_all("Received")
    relay = next(line for line in received if "by mx.home.example" in line)
    (row,) = result.sessions[result.sessions["service"] == "smtp"].itertuples()
    assert re.search(rf"\[{re.escape(row.client_ip)}\]", relay)


def test_ports_are_the_seeds():
    scenario = mailsim.load(SCENARIOS / "classroom.yaml")
    one, again = mailsim.run(scenario, seed=1).sessions, mailsim.run(scenario, seed=1).sessions
    other = mailsim.run(scenario, seed=2).sessions
    pd.testing.assert_frame_equal(one, again)
    assert list(one["client_port"]) != list(other["client_port"])


def test_a_node_with_its_own_address_keeps_it_and_the_others_skip_it():
    data = mailsim.load(SCENARIOS / "classroom.yaml").model_dump(by_alias=True, exclude_none=True)
    first = next(iter(data["nodes"]))
    data["nodes"]["dns"]["ip"] = "192.0.2.1"
    ips = addresses(mailsim.scenario.validate(data))  # type: ignore[attr-defined]
    assert ips["dns"] == "192.0.2.1"
    assert ips[first] == "192.0.2.2"
    assert len(set(ips.values())) == len(ips)


@pytest.mark.parametrize(
    ("client", "server", "protocol", "tls_first", "expected"),
    [
        ("client", "smtp", "smtp", False, "submission"),
        ("client", "smtp", "tls", True, "submissions"),
        ("smtp", "smtp", "smtp", False, "smtp"),
        ("smtp", "pop", "lmtp", False, "lmtp"),
        ("client", "pop", "pop3", False, "pop3"),
        ("client", "pop", "tls", True, "pop3s"),
        ("smtp", "dns", "dns", False, "dns"),
    ],
)
def test_service_names(client, server, protocol, tls_first, expected):
    assert service(client, server, protocol, tls_first) == expected
