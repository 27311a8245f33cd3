"""Reading a route from Received: headers: every dialect in the corpus, the messages
mailsim writes itself (simulate → render → parse gives the same hops), and bad input."""

from __future__ import annotations

import json
import math
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsim import trace
from mailsim.cli import main
from tests.conftest import ROOT, SCENARIOS, shipped

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
CORPUS = ROOT / "tests" / "data" / "headers"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_simulate_render_parse_gives_back_the_hops(path):
    result = shipped(path)
    checked = 0
    for copy in result.copies[:200]:
        if not copy.stamps:
            continue
        route = trace.parse(copy.to_email(result.epoch).as_string())
        assert len(route.hops) == len(copy.stamps)
        for hop, stamp in zip(route.hops, copy.stamps, strict=True):
            assert (hop.from_host, hop.from_ip, hop.by) == (
                stamp.helo, stamp.client_ip, stamp.by,
            )  # fmt: skip
            assert (hop.protocol, hop.id, hop.recipient) == (
                stamp.protocol, stamp.queue_id, stamp.recipient,
            )  # fmt: skip
            assert hop.tls == (stamp.tls is not None)
            assert hop.tls_version == stamp.tls
            seconds = stamp.time + stamp.skew
            written = (result.epoch + timedelta(seconds=seconds)).replace(microsecond=0)
            assert hop.time == written
            assert not hop.warnings or stamp.skew
        checked += 1
    assert checked > 0


POSTFIX = """Received: from mx.example.net (mx.example.net [192.0.2.8])
\tby imap.example.net (Dovecot) with LMTP id 8Hd2Fq for <b@example.net>;
\tMon, 02 Nov 2026 09:00:13 +0100
Received: from mail.example.org (mail.example.org [198.51.100.2])
\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
\tby mx.example.net (Postfix) with ESMTPS id 4Nq2Lk0Jz1z9sWm
\tfor <b@example.net>; Mon, 2 Nov 2026 08:00:12 +0000 (UTC)
Received: from [203.0.113.5] (helo=laptop.example.org)
\tby mail.example.org with esmtpsa (TLS1.3) tls TLS_AES_256_GCM_SHA384
\t(Exim 4.96) (envelope-from <a@example.org>) id 1qXyZa-000123-AB;
\tMon, 02 Nov 2026 09:00:02 +0100
Received: (qmail 12345 invoked from network); 2 Nov 2026 08:00:00 -0000
Received: this is not a received header at all
Subject: Test
From: a@example.org

body
"""


def test_a_chain_of_dialects_reads_bottom_up():
    route = trace.parse(POSTFIX)
    assert [h.garbled for h in route.hops] == [True, False, False, False, False]
    qmail, exim, relay, lmtp = route.hops[1:]
    assert (qmail.from_host, qmail.by, qmail.protocol) == (None, None, None)
    assert qmail.warnings == ["no time zone in '2 Nov 2026 08:00:00 -0000' (-0000): read as UTC"]
    assert (exim.from_host, exim.from_ip, exim.by, exim.protocol, exim.tls, exim.tls_version) == (
        "laptop.example.org", "203.0.113.5", "mail.example.org", "ESMTPSA", True, "1.3",
    )  # fmt: skip
    assert exim.id == "1qXyZa-000123-AB"
    assert (relay.from_host, relay.from_ip, relay.protocol, relay.recipient) == (
        "mail.example.org", "198.51.100.2", "ESMTPS", "b@example.net",
    )  # fmt: skip
    assert relay.time.astimezone(UTC).isoformat() == "2026-11-02T08:00:12+00:00"
    assert [h.delay for h in route.hops] == [None, None, 2.0, 10.0, 1.0]
    assert (lmtp.protocol, lmtp.tls) == ("LMTP", False)
    assert route.total == 13.0


def test_a_clock_that_goes_backwards_is_a_warning_not_a_crash():
    text = POSTFIX.replace("09:00:13 +0100", "09:00:05 +0100")
    lmtp = trace.parse(text).hops[-1]
    assert lmtp.delay == -7.0
    assert lmtp.warnings == [
        "7 s earlier than hop 4: the two servers' clocks disagree (clock skew)"
    ]


def test_the_cli_prints_the_hop_table_and_json(tmp_path, capsys):
    path = tmp_path / "m.eml"
    path.write_text(POSTFIX)
    assert main(["headers", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Route of “Test” from a@example.org: 5 hops, 13 s in all")
    assert "\n  1 ??   " in out
    assert (
        "hop 1: not a Received header this reader understands:"
        " 'this is not a received header at all'" in " ".join(out.split())
    )
    assert main(["headers", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [h["by"] for h in document["hops"]] == [
        None, None, "mail.example.org", "mx.example.net", "imap.example.net",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["headers", "missing.eml"], "", "mailsim: missing.eml: no such file"),
        (["headers", "-"], "Subject: hi\n\nno trace here\n",
         "mailsim: <stdin>: Received: no Received: headers found; give the whole message or"
         " all of its headers (in most mail programs: 'show original')"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(argv, stdin, message, capsys, monkeypatch, tmp_path):
    import io

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_an_mbox_gives_its_first_message():
    mbox = (
        "From a@example.org Mon Nov  2 09:00:00 2026\n"
        + POSTFIX
        + "\nFrom b@x Mon Nov  2 10:00:00 2026\nReceived: from x by y; Mon, 2 Nov 2026 10:00:00 +0000\n\nsecond\n"
    )
    assert len(trace.parse(mbox).hops) == 5


def corpus() -> list[Path]:
    return sorted(p for p in CORPUS.glob("*") if p.suffix in (".eml", ".mbox"))


def test_a_server_whose_clock_is_behind_writes_a_hop_that_goes_back_in_time():
    import mailsim

    scenario = mailsim.load(SCENARIOS / "classroom.yaml", ["nodes.mx-home.clock_skew=-90s"])
    result = mailsim.run(scenario)
    route = trace.parse(result.email("m1").as_string())
    relay, lmtp = route.hops[1], route.hops[2]
    stamps = result.copy("m1").stamps
    # The headers keep whole seconds: each time is cut to its second, skew included.
    written = [math.floor(s.time + s.skew) for s in stamps]
    assert written[1] - written[0] < -80
    assert relay.by == "mx.home.example"
    assert relay.delay == written[1] - written[0]
    assert relay.warnings == [
        f"{written[0] - written[1]} s earlier than hop 1: the two servers' clocks disagree"
        " (clock skew)"
    ]
    assert lmtp.delay == written[2] - written[1]  # pop-home's clock is right


def test_a_route_replays_as_a_scenario_through_the_same_servers(tmp_path, capsys):
    import mailsim

    original = shipped(SCENARIOS / "classroom.yaml")
    eml = tmp_path / "m1.eml"
    eml.write_text(original.email("m1").as_string())
    out = tmp_path / "replay.yaml"
    assert main(["headers", str(eml), "--scenario", str(out)]) == 0
    assert "wrote" in capsys.readouterr().err
    replayed = mailsim.run(mailsim.load(out))
    copy = replayed.copy("m1")
    assert copy.status == "retrieved"
    assert [s.by for s in copy.stamps] == [s.by for s in original.copy("m1").stamps]
    assert [s.protocol for s in copy.stamps] == ["ESMTPSA", "ESMTPS", "LMTP"]


def test_the_plot_draws_one_arrow_per_hop_and_a_skewed_clock_as_a_negative_bar(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from mailsim.plot.received import received
    from mailsim.plot.style import OUTCOME

    route = trace.parse(POSTFIX.replace("09:00:13 +0100", "09:00:05 +0100"))
    ax = received(route)
    try:
        arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
        # qmail's local hop names no hosts; the garbled one is left out.
        assert len(arrows) == 3
        bars = [p for p in ax.figure.axes[1].patches if isinstance(p, Rectangle)]
        widths = [bar.get_width() for bar in bars]
        assert widths == [2.0, 10.0, -7.0]
        assert bars[2].get_facecolor()[:3] == plt.matplotlib.colors.to_rgb(OUTCOME["temporary"])
    finally:
        plt.close(ax.figure)
    path = tmp_path / "route.png"
    source = tmp_path / "m.eml"
    source.write_text(POSTFIX)
    assert main(["headers", str(source), "--plot", str(path)]) == 0
    assert path.stat().st_size > 10_000
    assert main(["headers", str(source), "--plot", str(tmp_path / "route.txt")]) == 2


EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def as_expected(hop: trace.Hop) -> dict:
    if hop.garbled:
        return {"garbled": True}
    return {
        "from": hop.from_host, "ip": hop.from_ip, "by": hop.by, "protocol": hop.protocol,
        "tls": hop.tls, "id": hop.id, "for": hop.recipient,
        "time": hop.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if hop.time else None,
        "delay": hop.delay,
    }  # fmt: skip


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_every_sample_of_every_dialect_reads_as_expected(path):
    """Postfix, Exim, Sendmail, qmail, Exchange, Gmail, Dovecot LMTP, webmail, a skewed
    clock, missing parts, a garbled header, an mbox: hop count, hosts, protocols, TLS,
    ids, times and delays."""
    route = trace.parse(path.read_text())
    assert [as_expected(hop) for hop in route.hops] == EXPECTED[path.name]
    assert main(["headers", str(path), "--json"]) == 0


FRAGMENTS = ["from", "by", "with", "id", "for", "via", "(", ")", "[", "]", ";", "<", ">",
             "ESMTPS", "mx.example.net", "[192.0.2.1]", "(helo=x.example)", "Mon,",
             " 2 Nov 2026 ", "09:00:01", "+0100", "-0000", "(CET)", "TLSv1.3", "\n\t", "é"]  # fmt: skip


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=30))
def test_no_received_header_makes_the_reader_raise(parts):
    text = "".join(f"Received: {' '.join(parts[i::3])}\n" for i in range(3)) + "\nbody\n"
    route = trace.parse(text)
    assert len(route.hops) <= 3
    for hop in route.hops:
        assert hop.garbled or hop.raw is not None
    trace.table(route)
    json.dumps(route.to_dict())


@given(st.text(max_size=400))
def test_any_text_at_all_gives_a_route_or_no_hops(text):
    route = trace.parse(text)
    json.dumps(route.to_dict())


def test_the_corpus_is_complete():
    """Every sample has its expected parse, and every expected parse its sample (a
    sample left out of git would otherwise just skip its test)."""
    names = {p.name for p in corpus()}
    assert len(names) == 12
    assert names == set(EXPECTED) - {"_notes"}
