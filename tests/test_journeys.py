"""Journeys through small worlds: smart hosts, implicit MX, DNS caching, server queues,
Poisson traffic and the rendered message."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import numpy as np
import pytest

import mailsim
from mailsim.scenario import validate


def world(**extra: Any) -> dict[str, Any]:
    """Two domains joined by a router; a.example sends, b.example receives."""
    data: dict[str, Any] = {
        "name": "two-domains",
        "duration": "2h",
        "nodes": {
            "pc-a": {"role": "client"},
            "mta-a": {"role": "smtp", "host": "mail.a.example", "domains": ["a.example"]},
            "dns": {"role": "dns"},
            "core": {"role": "router"},
            "mx-b": {"role": "smtp", "host": "mx.b.example", "domains": ["b.example"]},
            "pop-b": {"role": "pop", "host": "pop.b.example"},
            "pc-b": {"role": "client"},
        },
        "links": [
            {"between": ["pc-a", "mta-a"], "latency": "1ms"},
            {"between": ["mta-a", "dns"], "latency": "1ms"},
            {"between": ["mta-a", "core"], "latency": "10ms"},
            {"between": ["core", "mx-b"], "latency": "10ms"},
            {"between": ["mx-b", "pop-b"], "latency": "1ms"},
            {"between": ["core", "pc-b"], "latency": "5ms"},
        ],
        "dns": {
            "zones": {
                "b.example": {
                    "mx": [{"preference": 10, "host": "mx.b.example"}],
                    "a": {"mx.b.example": "mx-b"},
                }
            }
        },
        "users": {
            "ann@a.example": {"client": "pc-a", "smtp": "mta-a"},
            "ben@b.example": {"client": "pc-b", "smtp": "mx-b", "mailbox": "pop-b", "poll": "1min"},
        },
        "messages": [{"id": "m1", "at": 0, "from": "ann@a.example", "to": "ben@b.example"}],
    }
    data.update(extra)
    return data


def test_relay_chain_through_a_smart_host_and_a_filtering_gateway():
    data = world()
    data["nodes"]["gw"] = {"role": "smtp", "host": "gw.a.example", "mynetworks": ["mta-a"]}
    data["nodes"]["mta-a"]["relayhost"] = "gw"
    data["links"].append({"between": ["mta-a", "gw"], "latency": "1ms"})
    data["links"].append({"between": ["gw", "core"], "latency": "2ms"})
    result = mailsim.run(validate(data))
    hops = result.hops
    assert list(zip(hops["src"], hops["dst"], hops["protocol"], strict=True)) == [
        ("pc-a", "mta-a", "submission"),
        ("mta-a", "gw", "smtp"),
        ("gw", "mx-b", "smtp"),
        ("mx-b", "pop-b", "lmtp"),
        ("pop-b", "pc-b", "pop3"),
    ]
    received = result.email("m1").get_all("Received")
    assert len(received) == 4
    assert "by gw.a.example (Postfix) with ESMTPS" in " ".join(received[2].split())
    # The smart host needs no DNS; the gateway looks up the MX.
    dns = result.events[result.events["protocol"] == "dns"]
    assert set(dns["src"]) | set(dns["dst"]) == {"gw", "dns"}


def test_gateway_not_open_to_the_sender_denies_relay():
    data = world()
    data["nodes"]["gw"] = {"role": "smtp", "host": "gw.a.example"}  # no mynetworks
    data["nodes"]["mta-a"]["relayhost"] = "gw"
    data["links"].append({"between": ["mta-a", "gw"], "latency": "1ms"})
    result = mailsim.run(validate(data))
    row = result.messages.iloc[0]
    assert row["status"] == "bounced"
    assert row["reason"] == "554 5.7.1 <ben@b.example>: Relay access denied"


def test_domain_without_mx_uses_its_a_record_as_implicit_mx():
    data = world()
    data["dns"]["zones"]["b.example"] = {"a": {"b.example": "mx-b"}}
    result = mailsim.run(validate(data))
    dns = result.events[result.events["step"] == "answer"]["detail"].tolist()
    assert dns == [
        "b.example NOERROR (no records) (cache miss)",
        "b.example A 192.0.2.5 (cache miss)",
    ]
    assert result.messages.iloc[0]["status"] == "retrieved"


def test_second_message_hits_the_dns_cache_within_the_ttl():
    data = world(messages=[
        {"id": "m1", "at": 0, "from": "ann@a.example", "to": "ben@b.example"},
        {"id": "m2", "at": "30min", "from": "ann@a.example", "to": "ben@b.example"},
        {"id": "m3", "at": "90min", "from": "ann@a.example", "to": "ben@b.example"},
    ])  # fmt: skip
    data["dns"]["zones"]["b.example"]["ttl"] = "1h"
    result = mailsim.run(validate(data))
    answers = result.events[result.events["step"] == "answer"]
    how = [
        (m, d.rsplit("(", 1)[1].rstrip(")"))
        for m, d in zip(answers["message"], answers["detail"], strict=True)
    ]
    assert how == [
        ("m1", "cache miss"), ("m1", "cache miss"),
        ("m2", "cache hit"), ("m2", "cache hit"),
        ("m3", "cache miss"), ("m3", "cache miss"),  # 90 min > the 1 h TTL
    ]  # fmt: skip
    dns_time = result.messages.set_index("id")["dns_time"]
    assert dns_time["m2"] < 0.01 < dns_time["m1"]


def test_busy_server_makes_sessions_queue():
    data = world(messages=[
        {"id": f"m{i}", "at": 0, "from": "ann@a.example", "to": "ben@b.example"} for i in range(3)
    ])  # fmt: skip
    data["nodes"]["mta-a"]["concurrency"] = 1
    result = mailsim.run(validate(data))
    queued = result.messages.set_index("id")["queue_time"]
    assert queued["m0"] == pytest.approx(0, abs=1e-9)
    assert 0 < queued["m1"] < queued["m2"]
    # Each waits for the submission sessions before it to end (QUIT answered).
    sub = result.hops[result.hops["protocol"] == "submission"].set_index("message")
    assert sub.loc["m1", "end"] > sub.loc["m0", "end"]


def test_poisson_traffic_is_reproducible_and_has_the_asked_rate():
    data = world(messages=[], duration="10h")
    data["traffic"] = [
        {"from": "ann@a.example", "to": "ben@b.example", "rate": "30/h", "size": "5KB"}
    ]
    scenario = validate(data)
    result = mailsim.run(scenario, seed=3)
    times = np.sort(result.messages["submitted_at"].to_numpy())
    assert len(times) == pytest.approx(300, rel=0.2)
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(120, rel=0.2)  # exponential, mean 1/rate
    assert gaps.std() == pytest.approx(120, rel=0.25)  # an exponential's sd equals its mean
    assert set(result.messages["status"]) == {"retrieved"}
    again = mailsim.run(scenario, seed=3)
    assert again.to_json() == result.to_json()
    assert mailsim.run(scenario, seed=4).to_json() != result.to_json()


def test_rendered_message_is_rfc_5322_with_received_chain_from_the_top(classroom_result):
    text = classroom_result.email("m1").as_string()
    parsed = email.message_from_string(text, policy=email.policy.default)
    received = parsed.get_all("Received")
    assert len(received) == 3
    assert received[0].startswith("from mx.home.example")
    assert "with LMTP" in received[0]
    assert "by mx.home.example (Postfix) with ESMTPS id" in received[1]
    assert "with ESMTPSA id" in received[2]
    assert "TLSv1.3" in received[2]
    assert parsed["Return-Path"] == "<alice@school.example>"
    assert parsed["Message-ID"] == "<m1@school.example>"
    assert parsed["Subject"] == "Homework for Monday"
    assert len(text.encode()) == pytest.approx(20_000, rel=0.1)


def test_messages_to_several_domains_split_per_destination():
    data = world()
    data["nodes"]["mta-a"]["domains"] = ["a.example"]
    data["nodes"]["pop-a"] = {"role": "pop"}
    data["links"].append({"between": ["mta-a", "pop-a"], "latency": "1ms"})
    data["users"]["amy@a.example"] = {
        "client": "pc-a",
        "smtp": "mta-a",
        "mailbox": "pop-a",
        "poll": "1min",
    }
    data["messages"] = [
        {"id": "m1", "at": 0, "from": "ann@a.example", "to": ["ben@b.example", "amy@a.example"]}
    ]
    result = mailsim.run(validate(data))
    hops = result.hops.set_index(["recipient", "index"])
    assert hops.loc[("amy@a.example", 2), "dst"] == "pop-a"  # local: straight to LMTP
    assert hops.loc[("ben@b.example", 2), "dst"] == "mx-b"  # remote: relayed
    # One submission session carried both recipients.
    assert hops.loc[("amy@a.example", 1), "session"] == hops.loc[("ben@b.example", 1), "session"]
    assert set(result.messages["status"]) == {"retrieved"}
