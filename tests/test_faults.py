"""Faults, retries and bounces, checked against the rules that decide them."""

from __future__ import annotations

import email
import email.policy
import math
from typing import Any

import pytest

import mailsim
from mailsim import report
from mailsim.errors import InputError
from mailsim.scenario import validate
from tests.conftest import SCENARIOS


def load(name: str) -> dict[str, Any]:
    return mailsim.load(SCENARIOS / f"{name}.yaml").model_dump(by_alias=True, exclude_none=True)


def run(data: dict[str, Any], seed: int = 0) -> mailsim.Result:
    return mailsim.run(validate(data), seed=seed)


def attempts(result: mailsim.Result, message: str) -> tuple[list[float], list[float], list[str]]:
    """For the relay hop of ``message``: when each attempt began (its MX query), when it
    ended, and its outcome code."""
    events = result.events
    queries = events[(events["message"] == message) & (events["step"] == "query MX")]
    hops = result.hops
    relay = hops[(hops["message"] == message) & (hops["protocol"].isin(["smtp", "dns"]))]
    relay = relay[relay["src"] != "alice-pc"]
    return list(queries["time"]), list(relay["end"]), list(relay["code"])


# -- retry schedules, recomputed here from each policy's own rule --------------------------


def postfix_next(arrived: float, failed_at: float, phase: float = 0.0) -> float:
    """qmgr: backoff = time in queue (whole seconds), clamped to 300…4000 s; the next
    deferred-queue scan (every 300 s from ``phase``) that finds the stamp at most 1 s
    ahead takes the message."""
    failed = math.floor(failed_at)
    backoff = min(max(failed - math.floor(arrived), 300), 4000)
    due = failed + backoff - 1
    return phase + math.ceil((due - phase) / 300.0) * 300.0


def rfc_next(k: int, failed_at: float) -> float:
    return failed_at + (1800.0 if k < 2 else 7200.0)  # 30 min, 30 min, then 2 h


def test_two_hour_outage_attempt_times_follow_each_retry_policy():
    # retry-policies.yaml pins Postfix's scans and Exim's queue runs to round numbers.
    result = mailsim.run(mailsim.load(SCENARIOS / "retry-policies.yaml"))
    hops = result.hops
    starts = {}
    for message in ("postfix", "rfc", "exim"):
        mine = hops[hops["message"] == message]
        arrived = mine[mine["protocol"] == "submission"]["end"].iloc[0]
        relay = mine[mine["protocol"] == "smtp"]
        ends, codes = list(relay["end"]), list(relay["code"])
        events = result.events
        starts[message] = list(
            events[(events["message"] == message) & (events["step"] == "query MX")]["time"]
        )
        assert codes[-1] == "250"
        assert all(code == "4.4.1" for code in codes[:-1])  # connection refused
        assert starts[message][0] == pytest.approx(arrived)  # the first attempt is immediate
        if message == "postfix":
            expected = [postfix_next(arrived, failed_at) for failed_at in ends[:-1]]
            assert starts[message][1:] == pytest.approx(expected, abs=1e-9)
        elif message == "rfc":
            expected = [rfc_next(k, failed_at) for k, failed_at in enumerate(ends[:-1])]
            assert starts[message][1:] == pytest.approx(expected, abs=1e-9)
        # The MX is back at 7200 s: the first attempt after that succeeds, none before.
        assert starts[message][-2] < 7200 <= starts[message][-1]
    assert [round(t) for t in starts["postfix"]] == [10, 600, 1200, 2400, 4800, 9000]
    # Exim at -q30m: its 15-minute retry times wait for the next queue run (tests/test_retry).
    assert [round(t) for t in starts["exim"]] == [10, 1800, 3600, 5400, 7200]


# -- greylisting ------------------------------------------------------------------------------


def test_greylisting_delays_the_first_message_by_what_the_defaults_imply():
    result = mailsim.run(mailsim.load(SCENARIOS / "greylisting.yaml"))
    starts, ends, codes = attempts(result, "m1")
    assert codes == ["450", "250"]
    # First try refused 450 4.2.0; Postfix retries after its 300 s minimal backoff, at the
    # next 300 s queue scan wherever this seed's scans fall: 5 to 10 minutes later, when
    # more than postgrey's 300 s have passed.
    phase = starts[1] % 300
    assert starts[1] == pytest.approx(postfix_next(starts[0], ends[0], phase), abs=1e-9)
    assert 298 < starts[1] - ends[0] < 600
    outcome = result.hops.query("message == 'm1' and code == '450'")["outcome"].iloc[0]
    assert outcome.startswith(
        "450 4.2.0 <bob@home.example>: Recipient address rejected: Greylisted"
    )
    # The second message from the same sender to the same recipient is not delayed.
    _, _, codes2 = attempts(result, "m2")
    assert codes2 == ["250"]
    m2 = result.messages.set_index("id").loc["m2"]
    assert m2["retry_time"] == 0
    assert result.messages.set_index("id").loc["m1", "retry_time"] > 298


def test_greylisting_a_retry_too_soon_is_refused_again():
    data = load("greylisting")
    data["faults"][0]["delay"] = "15min"  # longer than Postfix's first backoff
    data["nodes"]["msa-school"]["queue"]["scan_phase"] = "0s"
    result = run(data)
    starts, _, codes = attempts(result, "m1")
    assert codes == ["450", "450", "250"]
    assert [round(t) for t in starts] == [10, 600, 1200]  # 600 - 10 < 900 <= 1200 - 10


def test_greylisting_reply_is_postgreys_as_postfix_sends_it():
    """postgrey answers DEFER_IF_PERMIT 4.2.0 Greylisted, see …/help/<domain>.html
    (4.2.0 because Postfix ≥ 2.3 sends etrn_domain); Postfix replies with its
    access_map_defer_code 450 and its "<rcpt>: Recipient address rejected:" prefix."""
    result = mailsim.run(mailsim.load(SCENARIOS / "greylisting.yaml"))
    (line,) = result.hops.query("message == 'm1' and code == '450'")["outcome"]
    assert line == (
        "450 4.2.0 <bob@home.example>: Recipient address rejected: Greylisted, see"
        " http://postgrey.schweikert.ch/help/home.example.html"
    )
    assert validate(load("greylisting")).faults[0].status == "4.2.0"  # type: ignore[union-attr]


def test_greylisting_status_is_a_setting():
    data = load("greylisting")
    data["faults"][0]["status"] = "4.7.1"  # postgrey behind a Postfix older than 2.3
    (line,) = run(data).hops.query("message == 'm1' and code == '450'")["outcome"]
    assert line.startswith("450 4.7.1 <bob@home.example>: Recipient address rejected: Greylisted")


def test_greylisting_status_takes_the_two_real_codes_only():
    data = load("greylisting")
    data["faults"][0]["status"] = "5.7.1"  # a greylister's refusal is temporary
    with pytest.raises(InputError) as caught:
        validate(data)
    (problem,) = caught.value.problems
    assert problem.key == "faults.0.status"


# -- crashes, timeouts and duplicates ------------------------------------------------------


def test_crash_right_after_250_loses_nothing():
    result = mailsim.run(mailsim.load(SCENARIOS / "server-crash.yaml"))
    m1 = result.hops[result.hops["message"] == "m1"]
    # The school's server relayed once: the MX's 250 was a promise kept across the crash.
    assert list(m1[m1["protocol"] == "smtp"]["code"]) == ["250"]
    lmtp = m1[m1["protocol"] == "lmtp"]
    assert list(lmtp["code"]) == ["4.4.2", "250"]
    crash, restart = 10.918, 10.918 + 600
    assert lmtp["start"].iloc[1] == pytest.approx(restart)  # delivered right after restart
    assert set(result.messages["status"]) == {"retrieved"}
    assert result.summary()["duplicates"] == 0
    assert lmtp["start"].iloc[0] < crash < lmtp["end"].iloc[0] + 1e-9


def test_connection_to_a_crashed_machine_times_out_after_30_s():
    result = mailsim.run(mailsim.load(SCENARIOS / "server-crash.yaml"))
    m2 = result.hops.query("message == 'm2' and protocol == 'smtp'")
    first = m2.iloc[0]
    assert first["outcome"] == "connect to mx.home.example:25: Connection timed out (4.4.1)"
    assert first["end"] - first["start"] == pytest.approx(30.0)


def slow_mx(seconds_after_dot: float) -> dict[str, Any]:
    """The MX needs ``seconds_after_dot`` after the first message's "." (which reaches it
    at 11.018 s): a slow-down just then."""
    data = load("classroom")
    factor = seconds_after_dot / 0.005  # the default end-of-DATA work
    data["faults"] = [
        {"kind": "slow", "node": "mx-home", "factor": factor, "start": 11.0, "end": 11.05}
    ]
    return data


def test_a_timeout_after_the_dot_makes_a_duplicate():
    # The MX takes 11 minutes after "." (a content filter stuck): longer than the 10 min
    # the client waits (RFC 5321 §4.5.3.2.6). The MX then commits the message anyway; the
    # school's server, which never saw the 250, sends it again.
    result = run(slow_mx(660))
    relay = result.hops.query("protocol == 'smtp' and not duplicate")
    assert relay["code"].iloc[0] == "4.4.2"
    assert relay["end"].iloc[0] - relay["start"].iloc[0] > 600
    summary = result.summary()
    assert summary["duplicates"] == 1
    assert summary["retrieved"] == 1
    assert result.messages["duplicates"].tolist() == [1]
    (dup,) = result.duplicates
    # The duplicate came from a session whose message had been sent but whose 250 was not read.
    steps = result.events[result.events["session"] == dup.duplicated_in]
    assert "message" in set(steps["step"])
    assert not ((steps["step"] == "250") & steps["detail"].str.contains("queued")).any()
    # Reported as a second copy of m1, not as a message of its own.
    assert len(result.messages) == 1
    assert dup.duplicate_of is not None
    assert dup.duplicate_of.message.id == "m1"
    text = report.text(result, width=200)
    assert text.count("\nm1  ") + text.startswith("m1  ") == 1
    text = " ".join(text.split())
    assert "+ a second copy (its 250 was lost on the way) reached the mailbox at" in text
    assert text.endswith(
        "sent 1 = retrieved 1 + delivered 0 + refused 0 + bounced 0 + expired 0 + in flight 0"
        " (duplicates 1)"
    )
    document = result.to_dict()
    assert [m["id"] for m in document["messages"]] == ["m1"]
    assert document["summary"]["duplicates"] == 1


def test_a_slow_server_within_the_timeout_makes_no_duplicate():
    result = run(slow_mx(540))
    assert result.summary()["duplicates"] == 0
    assert list(result.hops.query("protocol == 'smtp'")["code"]) == ["250"]


def test_server_that_hangs_costs_the_client_its_greeting_timeout():
    data = load("classroom")
    data["faults"] = [{"kind": "hang", "node": "mx-home", "start": 0, "end": "5min"}]
    result = run(data)
    relay = result.hops.query("protocol == 'smtp'")
    first = relay.iloc[0]
    assert first["outcome"] == "no reply within 300 s (4.4.2)"
    # SYN, SYN-ACK, ACK, then 300 s waiting for the 220 greeting (smtp_helo_timeout).
    rtt = 2 * 0.047
    assert first["end"] - first["start"] == pytest.approx(rtt + 300.0, abs=1e-3)
    assert list(relay["code"]) == ["4.4.2", "250"]


def test_overloaded_server_greets_with_421_and_the_message_waits():
    data = load("classroom")
    data["faults"] = [{"kind": "overload", "node": "mx-home", "start": 0, "end": "5min"}]
    result = run(data)
    relay = result.hops.query("protocol == 'smtp'")
    assert relay["outcome"].iloc[0] == "421 4.3.2 All server ports are busy"
    assert list(relay["code"]) == ["421", "250"]


# -- DNS and network faults ---------------------------------------------------------------


def test_nxdomain_is_permanent_and_bounces():
    data = load("unknown-user")
    data["messages"][0]["to"] = ["bob@home.example"]
    data["faults"] = [{"kind": "nxdomain", "domain": "home.example"}]
    result = run(data)
    m1 = result.messages.set_index("id").loc["m1"]
    assert m1["status"] == "bounced"
    # Concluded by msa-school itself: no server replied 550, so no reply code.
    assert m1["reason"] == "5.4.4 <bob@home.example>: Host or domain name not found"
    assert result.summary()["bounces_retrieved"] == 1


def test_servfail_is_temporary():
    data = load("classroom")
    data["faults"] = [{"kind": "servfail", "domain": "home.example", "end": "2min"}]
    result = run(data)
    # A failed attempt of the hop to home.example's server, for a reason DNS gave.
    dns = result.hops.query("dst == 'home.example'")
    assert list(dns["code"]) == ["4.4.3"]  # what Postfix logs: dsn=4.4.3, no server said 451
    assert list(dns["protocol"]) == ["smtp"]
    assert result.messages["status"].tolist() == ["retrieved"]


def test_link_down_means_connection_timeouts_until_it_is_back():
    data = load("classroom")
    data["faults"] = [{"kind": "link-down", "between": ["r-school", "r-home"], "end": "15min"}]
    result = run(data)
    relay = result.hops.query("protocol == 'smtp'")
    assert set(relay["code"][:-1]) == {"4.4.1"}
    assert relay["start"].iloc[-1] >= 900
    assert result.messages["status"].tolist() == ["retrieved"]


def test_link_down_with_a_detour_takes_the_detour():
    data = load("classroom")
    data["links"].append({"between": ["r-school", "mx-home"], "latency": "100ms"})
    data["faults"] = [{"kind": "link-down", "between": ["r-school", "r-home"]}]
    result = run(data)
    assert list(result.hops.query("protocol == 'smtp'")["code"]) == ["250"]


def test_packet_loss_adds_retransmission_timeouts():
    base = run(load("classroom"))
    data = load("classroom")
    data["faults"] = [{"kind": "loss", "between": ["r-school", "r-home"], "rate": 0.2}]
    lossy = [run(data, seed=s) for s in range(3)]
    relay_time = [
        r.hops.query("protocol == 'smtp'")["end"].iloc[-1]
        - r.hops.query("protocol == 'smtp'")["start"].iloc[-1]
        for r in lossy
    ]
    clean = base.hops.query("protocol == 'smtp'")
    clean_time = clean["end"].iloc[0] - clean["start"].iloc[0]
    assert all(t >= clean_time - 1e-9 for t in relay_time)
    assert max(relay_time) >= clean_time + 1.0  # at least one 1 s RTO somewhere
    assert run(data, seed=1).to_json() == lossy[1].to_json()


# -- bounces ----------------------------------------------------------------------------------


def test_bounce_is_an_rfc_3464_report_from_the_null_sender():
    result = mailsim.run(mailsim.load(SCENARIOS / "unknown-user.yaml"))
    dsn = result.messages.set_index("id").loc["m1.dsn1"]
    assert dsn["kind"] == "bounce"
    assert dsn["sender"] == ""
    assert dsn["status"] == "retrieved"
    text = result.email("m1.dsn1").as_string()
    parsed = email.message_from_string(text, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    parts = [part.get_content_type() for part in parsed.iter_parts()]
    assert parts == ["text/plain", "message/delivery-status", "message/rfc822"]
    # The failed message itself comes back (Postfix's bounce_size_limit: 50,000 bytes).
    (returned,) = list(parsed.iter_parts())[2].iter_parts()
    assert (returned["Subject"], returned["To"]) == ("Homework", "bobby@home.example")
    body = returned.get_content()
    assert len(body) == pytest.approx(20_000, abs=100)  # the 20 KB message, under the limit
    assert "Action: failed" in text
    assert "Status: 5.1.1" in text
    assert "Final-Recipient: rfc822; bobby@home.example" in text
    assert "Reporting-MTA: dns; mail.school.example" in text
    assert parsed["Return-Path"] == "<>"
    # It travelled on the null reverse-path (RFC 5321 §4.5.5).
    mail_from = result.events.query("message == 'm1.dsn1' and step == 'MAIL'")["detail"]
    assert mail_from.iloc[0].startswith("MAIL FROM:<>")


def test_a_bounce_that_cannot_be_delivered_is_not_bounced_again():
    data = load("unknown-user")
    del data["users"]["alice@school.example"]["mailbox"]  # Alice has no mailbox
    result = run(data)
    summary = result.summary()
    assert summary["bounced"] == 1
    assert summary["bounces_sent"] == 1
    assert summary["bounces_undeliverable"] == 1
    assert len(result.messages) == 2  # no bounce of the bounce


def test_expired_message_is_returned_with_status_4_4_7():
    data = load("mx-down")
    data["nodes"]["msa-school"]["queue"] = {"maximal_queue_lifetime": "1h"}
    result = run(data)
    m1 = result.messages.set_index("id").loc["m1"]
    assert m1["status"] == "expired"
    assert m1["reason"].startswith("delivery time expired")
    text = result.email("m1.dsn1").as_string()
    assert "Status: 4.4.7" in text
    assert "Action: failed" in text
    # Given up at the first failed attempt once the message is an hour old: 4800 s.
    expired_at = result.messages.set_index("id").loc["m1.dsn1", "submitted_at"]
    assert 3600 <= expired_at < 4900


def test_delay_warning_tells_the_sender_and_delivery_goes_on():
    data = load("mx-down")
    data["nodes"]["msa-school"]["queue"] = {"delay_warning_time": "1h"}
    result = run(data)
    messages = result.messages.set_index("id")
    assert messages.loc["m1", "status"] == "retrieved"
    assert messages.loc["m1.dsn1", "subject"] == "Delayed Mail (still being retried)"
    assert "Action: delayed" in result.email("m1.dsn1").as_string()
    assert len(messages) == 2  # one warning only


def test_conservation_line_in_the_report(capsys):
    from mailsim.cli import main

    main(["run", str(SCENARIOS / "unknown-user.yaml")])
    out = " ".join(capsys.readouterr().out.split())  # as read, whatever the width
    assert (
        "sent 1 = retrieved 0 + delivered 0 + refused 0 + bounced 1 + expired 0 + in flight 0"
        " (duplicates 0)" in out
    )
    assert "bounces sent back 1 = retrieved 1 + delivered 0 + undeliverable 0 + in flight 0" in out


def test_mailbox_full_452_is_retried_by_the_mx_552_bounces():
    result = mailsim.run(mailsim.load(SCENARIOS / "mailbox-full.yaml"))
    lmtp = result.hops.query("protocol == 'lmtp' and message == 'm1'")
    assert set(lmtp["code"][:-1]) == {"452"}
    assert lmtp["code"].iloc[-1] == "250"
    assert lmtp["start"].iloc[-1] >= 3600
    data = load("mailbox-full")
    data["faults"][0]["code"] = 552
    bounced = run(data).messages.set_index("id")
    assert bounced.loc["m1", "status"] == "bounced"
    assert bounced.loc["m1", "reason"].startswith("552 5.2.2 <bob@home.example> Quota exceeded")


def test_backup_mx_takes_the_message_and_queues_it():
    result = mailsim.run(mailsim.load(SCENARIOS / "backup-mx.yaml"))
    hops = result.hops
    first = hops[(hops["src"] == "msa-school") & (hops["protocol"] == "smtp")]
    # One attempt: the primary refused, the backup (preference 20) accepted.
    assert list(zip(first["dst"], first["code"], first["attempts"], strict=True)) == [
        ("mx-home", "4.4.1", 1),
        ("backup-mx", "250", 1),
    ]
    onward = hops[hops["src"] == "backup-mx"]
    assert set(onward["dst"]) == {"mx-home"}
    assert onward["code"].iloc[-1] == "250"
    assert onward["start"].iloc[-1] >= 3600


def test_submission_refused_temporarily_stays_in_the_outbox():
    data = load("classroom")
    data["faults"] = [{"kind": "down", "node": "msa-school", "end": "1min"}]
    result = run(data)
    sub = result.hops.query("protocol == 'submission'")
    assert list(sub["code"]) == ["4.4.1", "250"]
    assert sub["start"].iloc[1] == pytest.approx(10 + 300.0 + sub["end"].iloc[0] - 10, abs=1e-6)
    assert result.messages["status"].tolist() == ["retrieved"]


# -- regressions found in review --------------------------------------------------------------


def test_heavy_packet_loss_ends_instead_of_retrying_forever():
    data = load("classroom")
    data["messages"][0]["size"] = "1MB"
    data["faults"] = [{"kind": "loss", "between": ["r-school", "r-home"], "rate": 0.5}]
    result = run(data)  # TCP gives up after 15 retransmissions; the session times out
    assert result.messages["status"].tolist() in (["in_flight"], ["retrieved"])


def test_a_message_downloaded_twice_is_counted_once():
    data = load("classroom")
    data["messages"].append({"id": "m2", "at": "700s", "from": "alice@school.example",
                             "to": "bob@home.example"})  # fmt: skip
    # The first retrieval's session hangs after RETR: no QUIT, so the server keeps m1.
    data["faults"] = [{"kind": "hang", "node": "pop-home", "start": 300.17, "end": 300.5}]
    result = run(data)
    assert result.messages.set_index("id")["status"].to_dict() == {
        "m1": "retrieved",
        "m2": "retrieved",
    }
    again = result.hops.query("message == 'm1' and protocol == 'pop3'")
    assert list(again["outcome"]) == ["+OK 20000 octets", "+OK 20000 octets (retrieved again)"]
    # Keeping outcomes only, m1 is a row once retrieved: the second download still counts.
    lean = mailsim.run(validate(data), detail="outcomes").messages
    assert lean["hops"].tolist() == result.messages["hops"].tolist() == [5, 4]


def test_overlapping_crashes_of_one_server():
    data = load("mx-down")
    data["faults"] += [
        {"kind": "crash", "node": "msa-school", "at": "100s", "restart": "10min"},
        {"kind": "crash", "node": "msa-school", "at": "200s", "restart": "10min"},
    ]
    result = run(data)
    assert result.messages["status"].tolist() == ["retrieved"]
    assert run(data).to_json() == result.to_json()


def test_crash_after_reading_the_250_makes_no_duplicate():
    data = load("classroom")
    data["faults"] = [{"kind": "crash", "node": "msa-school", "at": 11.1, "restart": "1min"}]
    result = run(data)  # the MSA dies during QUIT, after it read the MX's 250
    assert result.summary()["duplicates"] == 0
    assert list(result.hops.query("protocol == 'smtp'")["code"]) == ["250"]


def test_a_backup_mx_never_sends_to_an_mx_no_better_than_itself():
    data = load("backup-mx")
    data["nodes"]["backup2"] = {"role": "smtp", "host": "backup2.home.example",
                                "relay_domains": ["home.example"]}  # fmt: skip
    data["links"].append({"between": ["backbone", "backup2"], "latency": "30ms"})
    zone = data["dns"]["zones"]["home.example"]
    zone["mx"].append({"preference": 30, "host": "backup2.home.example"})
    zone["a"]["backup2.home.example"] = "backup2"
    result = run(data)
    between = result.hops.query(
        "src in ['backup-mx', 'backup2'] and dst in ['backup-mx', 'backup2']"
    )
    assert between.empty  # RFC 5321 §5.1: drop own preference and higher
    assert result.messages["status"].tolist() == ["retrieved"]


def test_recipient_address_case_does_not_matter():
    data = load("classroom")
    data["messages"][0]["to"] = ["Bob@home.example"]
    result = run(data)
    assert result.messages["status"].tolist() == ["retrieved"]


def test_exim_policy_honours_the_queue_lifetime():
    data = load("mx-down")
    data["faults"][0]["end"] = "1d"
    data["nodes"]["msa-school"]["queue"] = {"policy": "exim", "maximal_queue_lifetime": "1h"}
    assert run(data).messages.set_index("id").loc["m1", "status"] == "expired"


def test_a_silent_resolver_is_asked_twice_5_s_apart_then_given_up():
    """dns-outage: glibc's stub resolver (timeout 5 s, attempts 2) asks, asks again
    after 5 s, and gives up 10 s after the first query; when the resolver is back
    (1200 s), the 1500 s attempt gets its answer from the first query (queue scans
    pinned to round numbers)."""
    pinned = "nodes.msa-school.queue.scan_phase=0s"
    result = mailsim.run(mailsim.load(SCENARIOS / "dns-outage.yaml", [pinned]))
    events = result.events
    dns = events[(events["protocol"] == "dns") & (events["message"] == "m1")]
    steps = list(zip(dns["step"], dns["time"].round(6), strict=True))
    first = steps[0][1]
    assert steps[:3] == [
        ("query MX", first),
        ("query MX", round(first + 5.0, 6)),
        ("timeout", round(first + 10.0, 6)),
    ]
    assert steps[3:6] == [("query MX", 600.0), ("query MX", 605.0), ("timeout", 610.0)]
    assert steps[6] == ("query MX", 1500.0)
    assert steps[7][0] == "answer"
    assert "again, after 5 s" in str(dns["detail"].iloc[1])


def test_a_backup_mx_that_is_the_best_mx_says_the_mail_loops_back():
    """RFC 5321 §5.1: a server drops itself and worse MX hosts; when it is the best one
    for a domain it does not deliver, Postfix says 5.4.6 "loops back to myself"."""
    scenario = mailsim.load(
        SCENARIOS / "backup-mx.yaml", ['dns.zones["home.example"].mx.1.preference=5']
    )
    result = mailsim.run(scenario)
    copy = result.copy("m1")
    assert copy.status == "bounced"
    assert copy.reason == "5.4.6 mail for home.example loops back to myself"


def test_a_bounce_returns_a_message_over_bounce_size_limit_as_its_headers():
    """Postfix does not cut a message to fit bounce_size_limit (50,000 bytes): it returns
    the headers alone, as a delay warning does."""
    data = load("unknown-user")
    data["messages"][0]["size"] = "1MB"
    result = run(data)
    parsed = email.message_from_string(result.email("m1.dsn1").as_string(),
                                       policy=email.policy.default)  # fmt: skip
    returned = list(parsed.iter_parts())[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert "Subject: Homework" in returned.get_content()
    # The bounce weighs what it carries: its text and report, and the headers.
    bounce = result.messages.set_index("id").loc["m1.dsn1"]
    assert bounce["size"] == 2500 + 500
