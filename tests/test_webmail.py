"""Webmail: a browser sends over HTTPS to its provider's front end, and reads in an inbox
page that refreshes (issue 21, item 4).

The requests' octets are parsed back by a second implementation (scapy's HTTP/2 and
HPACK, the standard library's HTTP/1.1 reader); the submission's time is recomputed
from the scenario's latencies, bandwidths and server work: three round trips; a refresh
that finds new mail, two on the connection the page keeps."""

from __future__ import annotations

import io
import json
from http.client import HTTPResponse

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import yaml
from matplotlib.colors import to_hex, to_rgb
from matplotlib.text import Text
from scapy.contrib import http2 as h2
from scapy.layers.tls.all import TLS
from scapy.layers.tls.extensions import TLS_Ext_ALPN

import mailsim
from mailsim import cli, plot, report
from mailsim.network import TCP_ACK, TCP_SYN, sending_time
from mailsim.pdu import Pdus
from mailsim.plot import style
from mailsim.plot.sequence import contrast, ink, pages
from mailsim.protocols import http, tls
from tests.conftest import SCENARIOS, shipped

WEBMAIL = SCENARIOS / "webmail.yaml"
DANA = 'users["dana@webmail.example"]'
HOST = "mail.webmail.example"
FAST = 1e18  # bit/s: transmission time vanishes, only round trips and work remain


def session_of(result: mailsim.Result, message: str, protocol: str) -> int:
    hops = result.hops
    row = hops[(hops["message"] == message) & (hops["protocol"] == protocol)].iloc[0]
    return int(row["session"])


# -- the octets ------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 16_384, 16_385, 40_000])
def test_http2_request_is_the_preface_settings_headers_and_data_frames(length):
    body = bytes(range(256)) * (length // 256) + b"x" * (length % 256)
    raw = http.request_bytes(HOST, http.SEND_PATH, body)
    assert len(raw) == http.request_size(HOST, http.SEND_PATH, length)
    assert raw.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    frames = h2.H2Seq(raw[24:]).frames
    kinds = [f.type for f in frames]
    data_frames = max(1, -(-length // 16_384))
    assert kinds == [4, 8, 1] + [0] * data_frames  # SETTINGS, WINDOW_UPDATE, HEADERS, DATA…
    settings = {s.id: s.value for s in frames[0].payload.settings}
    assert settings == {1: 65_536, 2: 0, 4: 131_072, 5: 16_384}
    headers = h2.HPackHdrTable().gen_txt_repr(frames[2]).splitlines()
    assert headers == [
        ":method POST",
        ":scheme https",
        f":authority {HOST}",
        ":path /mail/send",
        "content-type: message/rfc822",
        f"content-length: {length}",
        f"user-agent: {http.USER_AGENT}",
        f"cookie: {http.COOKIE}",
    ]
    assert "EH" in frames[2].flags
    assert frames[2].stream_id == 1
    data = frames[3:]
    assert b"".join(bytes(f.payload.data) for f in data if f.len) == body
    assert ["ES" in f.flags for f in data] == [False] * (data_frames - 1) + [True]


def test_http2_response_is_the_server_settings_its_ack_headers_and_json():
    response = http.FrontEnd("4Fx2Q", 10_000_000).respond(http.send(HOST, 8_000))
    raw = http.response_bytes("200", '{"id":"4Fx2Q","labelIds":["SENT"]}')
    assert (response.code, response.text, response.size) == ("200", "OK", len(raw))
    frames = h2.H2Seq(raw).frames
    assert [(f.type, sorted(f.flags)) for f in frames] == [
        (4, []), (4, ["A"]), (1, ["EH"]), (0, ["ES"])
    ]  # fmt: skip
    assert h2.HPackHdrTable().gen_txt_repr(frames[2]).splitlines() == [
        ":status 200",
        "content-type: application/json",
        "content-length: 34",
    ]
    assert json.loads(bytes(frames[3].payload.data)) == {"id": "4Fx2Q", "labelIds": ["SENT"]}


def test_http11_request_and_response_are_read_back_by_the_standard_library():
    body = b"Subject: hi\r\n\r\nhello\r\n"
    raw = http.request_bytes(HOST, http.SEND_PATH, body, "1.1")
    assert len(raw) == http.request_size(HOST, http.SEND_PATH, len(body), "1.1")
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /mail/send HTTP/1.1"
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert fields["Host"] == HOST
    assert fields["Content-Type"] == "message/rfc822"
    assert int(fields["Content-Length"]) == len(rest)
    assert rest == body

    class Wire(io.BytesIO):
        def makefile(self, *_: object) -> io.BytesIO:
            return self

    raw_response = http.response_bytes("413", '{"error":"too large"}', "1.1")
    reply = HTTPResponse(Wire(raw_response))  # type: ignore[arg-type]
    reply.begin()
    assert (reply.status, reply.reason) == (413, "Content Too Large")
    assert json.loads(reply.read()) == {"error": "too large"}


def test_hpack_integers_take_more_octets_past_their_prefix():
    # RFC 7541 §C.1.2: 1337 with a 5-bit prefix is 31, 154, 10.
    assert http.integer(1337, 5) == bytes([31, 154, 10])
    assert http.integer(10, 5) == bytes([10])


# -- the run ---------------------------------------------------------------------------------


def test_webmail_submission_is_three_round_trips_and_the_server_work():
    scenario = mailsim.load(WEBMAIL, [f"links[{i}].bandwidth=1e18" for i in range(9)])
    result = mailsim.run(scenario)
    net = mailsim.world.World(scenario).network  # type: ignore[attr-defined]
    session = session_of(result, "m1", "https")
    events = result.events[result.events["session"] == session]
    work = scenario.nodes["webmail"].processing
    rtt = net.rtt("dana-laptop", "webmail")
    # TCP (SYN, SYN-ACK; the ACK goes with the ClientHello), TLS 1.3, the POST and its 200.
    expected = 3 * rtt + work.tls + work.data
    assert events["arrive"].max() - events["time"].min() == pytest.approx(expected, abs=1e-9)
    assert list(events["step"]) == [
        "SYN", "SYN-ACK", "ACK", "ClientHello (key share)",
        "ServerHello, Certificate, Finished", "POST", "200",
    ]  # fmt: skip


def test_webmail_submission_time_from_the_scenarios_latencies_and_bandwidths():
    result = shipped(WEBMAIL)
    scenario = result.scenario
    hop = result.hops[(result.hops["message"] == "m1")].iloc[0]
    # dana-laptop → r-cafe → r-provider → webmail: 4 + 10 + 1 ms one way; the café's
    # 30 Mbit/s Wi-Fi is the narrowest link; the server's processing is the default.
    one_way, rate, rtt = 0.015, 30e6, 0.030
    work = scenario.nodes["webmail"].processing
    request = http.request_size(HOST, http.SEND_PATH, 12_000) + tls.TRAILING_CLIENT_BYTES["1.3"]
    flights = [
        one_way + TCP_SYN * 8 / rate,  # SYN
        one_way + TCP_SYN * 8 / rate,  # SYN-ACK
        one_way + tls.CLIENT_HELLO * 8 / rate,  # ClientHello (with the ACK)
        work.tls,
        one_way + sending_time(tls.SERVER_FLIGHT, rate, rtt),  # ServerHello … Finished
        one_way + sending_time(request, rate, rtt),  # the POST (TLS Finished ahead)
        work.data,  # the front end takes the message: committed
    ]
    response = len(
        http.response_bytes("200", f'{{"id":"{_queue_id(result)}","labelIds":["SENT"]}}')
    )
    assert hop["protocol"] == "https"
    assert hop["start"] == pytest.approx(10.0)
    assert hop["end"] - hop["start"] == pytest.approx(sum(flights), abs=1e-9)
    acknowledged = sum(flights) + one_way + response * 8 / rate
    assert hop["acknowledged"] - hop["start"] == pytest.approx(acknowledged, abs=1e-9)
    assert TCP_ACK < tls.CLIENT_HELLO  # the ACK arrives first: it costs no wait of its own


def _queue_id(result: mailsim.Result) -> str:
    received = result.email("m1").get_all("Received")
    return received[-1].split(" id ", 1)[1].split()[0]


def test_the_received_line_says_with_https_by_the_webmail_front_end():
    result = shipped(WEBMAIL)
    received = [" ".join(line.split()) for line in result.email("m1").get_all("Received")]
    ip = result.sessions.groupby("client")["client_ip"].first()["dana-laptop"]
    first = received[-1]  # the oldest is the last: each server prepends its own
    assert first.startswith(f"from dana-laptop.cafe.example (dana-laptop.cafe.example [{ip}])")
    assert "(using TLSv1.3 with cipher" in first
    assert f"by {HOST} (webmail) with HTTPS id " in first
    assert "by mail.webmail.example (Postfix) with ESMTPSA" in " ".join(
        " ".join(line.split()) for line in result.email("m2").get_all("Received")
    )


def test_the_browser_hop_is_https_on_443_with_tls_13_and_a_login():
    result = shipped(WEBMAIL)
    hop = result.hops[result.hops["message"] == "m1"].iloc[0]
    assert (hop["src"], hop["dst"], hop["protocol"], hop["tls"], hop["auth"]) == (
        "dana-laptop", "webmail", "https", "1.3", True
    )  # fmt: skip
    sessions = result.sessions.set_index("session")
    assert tuple(sessions.loc[int(hop["session"]), ["service", "server_port"]]) == ("https", 443)
    packets = result.packet_list()
    laptop = sessions.loc[int(hop["session"]), "client_ip"]  # dana's one session
    mine = packets[(packets["source"] == laptop) | (packets["destination"] == laptop)]
    assert set(mine["protocol"]) == {"TCP", "TLS"}  # nothing of HTTP shows through


def test_the_security_lens_sees_the_browser_hop_sealed_and_the_relay_open():
    result = shipped(WEBMAIL)
    heard = result.overheard
    web = session_of(result, "m1", "https")
    relay = session_of(result, "m1", "smtp")
    cafe = heard[(heard["eavesdropper"] == "mallory") & (heard["session"] == web)]
    assert set(cafe["what"]) == {"connection", "TLS records"}
    backbone = heard[(heard["eavesdropper"] == "eve") & (heard["session"] == relay)]
    assert "headers and body" in set(backbone["what"])
    assert not (heard["session"] == web).loc[heard["eavesdropper"] == "eve"].any()


def test_http11_can_be_chosen_and_counts_its_own_octets():
    result = mailsim.run(mailsim.load(WEBMAIL, [f"{DANA}.http=1.1"]))
    events = result.events
    post = events[events["step"] == "POST"].iloc[0]
    assert post["detail"] == "POST /mail/send HTTP/1.1 (12,000 bytes)"
    expected = http.request_size(HOST, http.SEND_PATH, 12_000, "1.1") + 64  # TLS Finished
    assert post["bytes"] == expected


def test_a_message_over_the_limit_is_refused_with_413_and_not_sent_again():
    result = mailsim.run(mailsim.load(WEBMAIL, ["nodes.webmail.message_size_limit=10000"]))
    hops = result.hops[result.hops["message"] == "m1"]
    assert list(hops["code"]) == ["413"]
    assert list(hops["outcome"]) == ["413 Content Too Large"]
    row = result.messages.set_index("id").loc["m1"]
    assert (row["status"], row["reason"]) == ("refused", "413 Content Too Large")


@pytest.mark.parametrize(
    ("override", "where", "problem"),
    [
        (f"{DANA}.smtp=null", "smtp", "a browser sends through the webmail front end"),
        (f"{DANA}.retrieval=pop3", "retrieval", "a browser reads no pop3: it reads in the"),
        ('users["bob@home.example"].retrieval=webmail', "retrieval", "webmail is read in a"),
        (f"{DANA}.spam_bot=true", "spam_bot", "a spam bot speaks SMTP on port 25"),
    ],
)
def test_a_browser_user_is_checked(override, where, problem):
    with pytest.raises(mailsim.ScenarioError) as caught:
        mailsim.load(WEBMAIL, [override])
    found = [p for p in caught.value.problems if problem in p.message]
    assert found, [p.message for p in caught.value.problems]
    assert found[0].key.endswith(f".{where}")


# -- reading in the browser ------------------------------------------------------------------

READ = "pop.webmail.example"


def _frames(raw: bytes) -> list:
    return list(h2.H2Seq(raw).frames)


def test_a_pages_requests_share_one_hpack_table_and_decode_as_sent():
    conn = http.Connection()
    first = http.get_bytes(conn, READ, http.INBOX_PATH, http.JSON)
    second = http.get_bytes(conn, READ, http.MESSAGE_PATH + "1", http.RFC822)
    assert first.startswith(http.PREFACE)
    table = h2.HPackHdrTable()  # one decoder for the connection, as a server keeps
    opening = _frames(first[len(http.PREFACE) :])
    assert [f.type for f in opening] == [4, 8, 1]
    ack, *rest = _frames(second)  # the server's SETTINGS came with the first response
    assert (ack.type, sorted(ack.flags), ack.len) == (4, ["A"], 0)
    headers = [opening[2], *rest]
    assert [f.type for f in headers] == [1, 1]
    assert [f.stream_id for f in headers] == [1, 3]
    assert all({"EH", "ES"} <= set(f.flags) for f in headers)
    decoded = [table.gen_txt_repr(f).splitlines() for f in headers]
    assert decoded[1] == [
        ":method GET", ":scheme https", f":authority {READ}", ":path /mail/messages/1",
        "accept: message/rfc822", f"user-agent: {http.USER_AGENT}", f"cookie: {http.COOKIE}",
    ]  # fmt: skip
    assert decoded[0][3:5] == [":path /mail/inbox", "accept: application/json"]
    # The second request names the host, user agent and cookie by one index each: its
    # literals are the path and the accept value alone (RFC 7541 §2.3.2).
    literal = len("/mail/messages/1") + 2 + len(http.RFC822) + 2
    # The SETTINGS acknowledgement; the frame header; :method GET and :scheme https from
    # the static table; the host, user agent and cookie from the dynamic one, an octet each.
    assert len(second) == 9 + 9 + 2 + 3 + literal
    third = http.get_bytes(conn, READ, http.INBOX_PATH, http.JSON)
    assert len(third) == 9 + 5 + 2  # everything indexed; its path was added by the first


def test_a_long_connections_responses_stay_within_the_browsers_table():
    """Hundreds of refreshes on one connection, each content-length new: the server's
    table evicts within the 4,096 octets the browser's decoder keeps (RFC 7541 §4.2),
    so a decoder of that size reads every response (it fails past an index it lacks)."""
    answers = http.Answers("2")
    decoder = h2.HPackHdrTable()  # 4,096 octets, as a browser starts
    for size in range(1_000, 1_400):
        head = answers.head("200", http.RFC822, size)
        frames = _frames(head)
        lines = decoder.gen_txt_repr(frames[-1]).splitlines()
        assert lines[2] == f"content-length: {size}"
    assert sum(http._entry(n, v) for n, v in answers.table.table) <= http.TABLE


def test_the_front_end_lists_new_mail_sends_it_and_marks_it_seen():
    seen: set[int] = set()
    front = http.Webmail([4_000, 700], seen)
    conn = http.Connection()
    listed = front.respond(http.get(conn, READ, http.INBOX_PATH, http.JSON))
    assert (listed.code, listed.data) == ("200", ("1", "2"))
    opened = front.respond(http.get(conn, READ, http.MESSAGE_PATH + "2", http.RFC822))
    assert (opened.code, opened.payload, seen) == ("200", 700, {2})
    again = front.respond(http.get(conn, READ, http.INBOX_PATH, http.JSON))
    assert again.data == ("1",)
    missing = front.respond(http.get(conn, READ, http.MESSAGE_PATH + "9", http.RFC822))
    assert missing.code == "404"
    # The responses' octets: SETTINGS and their ACK once, then HEADERS and DATA, the
    # content type indexed after its first use.
    answers = http.Answers("2")
    body = http.listing([1, 2], [4_000, 700]).encode()
    raw = answers.head("200", http.JSON, len(body)) + body
    assert listed.size == len(raw) + 9  # + the DATA frame's header
    frames = _frames(raw + b"")[:3]
    assert [(f.type, sorted(f.flags)) for f in frames] == [(4, []), (4, ["A"]), (1, ["EH"])]
    assert json.loads(body) == {"messages": [{"uid": 1, "size": 4000}, {"uid": 2, "size": 700}]}


def _reading(result: mailsim.Result) -> pd.DataFrame:
    events = result.events
    ends = events["src"].astype(str) + " " + events["dst"].astype(str)
    return events[ends.isin(["dana-laptop pop-webmail", "pop-webmail dana-laptop"])]


def test_a_refresh_is_one_round_trip_on_the_kept_connection_and_opening_one_more():
    scenario = mailsim.load(WEBMAIL, [f"links[{i}].bandwidth=1e18" for i in range(10)])
    result = mailsim.run(scenario)
    net = mailsim.world.World(scenario).network  # type: ignore[attr-defined]
    rtt = net.rtt("dana-laptop", "pop-webmail")
    work = scenario.nodes["pop-webmail"].processing
    reading = _reading(result)
    reading = reading[reading["session"] == reading["session"].min()]  # the first page
    at = lambda t: list(reading[reading["time"].between(t, t + 1)]["step"])  # noqa: E731
    assert at(0) == [
        "SYN", "SYN-ACK", "ACK", "ClientHello (key share)",
        "ServerHello, Certificate, Finished", "GET", "200",
    ]  # fmt: skip
    assert at(60) == ["GET", "200"]  # Roundcube's minute; no TCP, no TLS: the kept connection
    assert at(360) == ["GET", "200", "GET", "200"]  # m3 is new: listed, then opened
    assert reading["session"].nunique() == 1
    hop = result.hops[(result.hops["message"] == "m3") & (result.hops["protocol"] == "https")]
    (start, end) = hop[["start", "end"]].iloc[0]
    assert (hop["src"].iloc[0], hop["dst"].iloc[0]) == ("pop-webmail", "dana-laptop")
    assert start == 360.0
    assert end - start == pytest.approx(2 * rtt + 2 * work.command, abs=1e-9)
    row = result.messages.set_index("id").loc["m3"]
    assert (row["status"], row["retrieval"]) == ("retrieved", "webmail")


def test_the_wait_for_the_page_is_the_time_from_delivery_to_the_refresh():
    result = shipped(WEBMAIL)
    row = result.messages.set_index("id").loc["m3"]
    hops = result.hops[result.hops["message"] == "m3"]
    delivered = hops[hops["protocol"] == "lmtp"]["end"].iloc[0]
    assert row["poll_time"] == pytest.approx(360.0 - delivered, abs=1e-9)
    text = report.text(result)
    assert f"waiting for the page to refresh {360.0 - delivered:.3f} s" in text


def test_a_page_that_refreshes_less_often_than_the_keep_alive_connects_each_time():
    result = mailsim.run(mailsim.load(WEBMAIL, [f"{DANA}.poll=2min"]))
    reading = _reading(result)
    syns = reading[reading["step"] == "SYN"]["time"]
    assert list(syns)[:4] == [0.0, 120.0, 240.0, 360.0]  # 2 min > nginx's 75 s
    assert reading.groupby("session")["step"].apply(lambda s: (s == "GET").sum()).min() == 1
    hop = result.hops[(result.hops["message"] == "m3") & (result.hops["protocol"] == "https")]
    assert hop["start"].iloc[0] == 360.0


def test_nginx_closes_a_kept_connection_after_its_first_hour():
    """keepalive_time: the refresh that ends past the connection's first hour is its
    last; the next one (61 min) connects anew, and that connection is kept again."""
    data = yaml.safe_load(WEBMAIL.read_text())
    data["duration"] = "3h"
    data["messages"].append({"id": "m4", "at": "2h", "from": "bob@home.example",
                             "to": "dana@webmail.example", "size": "4KB"})  # fmt: skip
    result = mailsim.run(mailsim.scenario.validate(data))
    reading = _reading(result)
    syns = reading[reading["step"] == "SYN"]["time"]
    assert list(syns) == [0.0, 3660.0]  # the run ends as m4 is read, at 2 h 1 min
    gets = reading[reading["step"] == "GET"].groupby("session")["time"]
    assert gets.max().iloc[0] == 3600.0  # the refresh at 60 min is the first one's last
    # the next connection's first GET: after TCP and TLS, as the first connection's was
    assert gets.min().iloc[1] - 3660.0 == pytest.approx(gets.min().iloc[0], abs=1e-9)
    assert gets.count().sum() == 122 + 2  # a refresh a minute to 2 h 1 min; m3, m4 opened


def test_a_network_that_forgets_the_kept_connection_costs_the_browsers_timeout():
    link = next(i for i, link in enumerate(shipped(WEBMAIL).scenario.links)
                if "dana-laptop" in link.between)  # fmt: skip
    result = mailsim.run(mailsim.load(WEBMAIL, [f"links[{link}].idle_timeout=30s"]))
    reading = _reading(result)
    lost = reading[reading["step"] == "timeout"]
    assert lost["detail"].iloc[0].startswith("no reply within 300 s")
    assert "forgot the idle connection" in lost["detail"].iloc[0]
    # The GET at 60 s is never answered; the page gives up at 360 s and connects again
    # at its next refresh, 420 s, where m3 waits.
    assert lost["time"].iloc[0] == pytest.approx(360.0)
    hop = result.hops[(result.hops["message"] == "m3") & (result.hops["protocol"] == "https")]
    assert hop["start"].iloc[0] == 420.0
    # The report says why m3 waited more than the page's minute.
    text = " ".join(report.text(result, width=200).split())
    assert "waiting for the page (a refresh lost on a forgotten connection) 1 min 29 s" in text


# -- the figures -----------------------------------------------------------------------------


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.findobj(Text) if t.get_visible()]


def test_the_ladder_draws_the_post_and_its_200_in_https_colour_inside_the_tls_band():
    result = shipped(WEBMAIL)
    ax = plot.sequence(result, "m1", page=1)
    try:
        words_ink = ink(style.PROTOCOL["https"])
        words = {t.get_text(): t for t in ax.texts}
        post = words["POST /mail/send HTTP/2 (12,000 bytes)"]
        assert to_hex(post.get_color()) == words_ink
        assert to_hex(words["200 OK"].get_color()) == words_ink
        assert contrast(to_rgb(words_ink)) >= 4.5
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "HTTP (inside TLS)" in legend
    finally:
        plt.close(ax.figure)


def test_the_ladder_shows_a_refresh_on_the_kept_connection_as_encrypted():
    """The page's handshake was at 0 s, long before m3; its refresh at 6 min is still
    inside TLS: the band covers both GETs and their 200s, and says so in the key."""
    result = shipped(WEBMAIL)
    session = session_of(result, "m3", "https")
    ax = plot.sequence(result, "m3", page=pages(result, "m3"))
    try:
        (band,) = [p for p in ax.patches if p.get_gid() == f"encrypted-{session}"]
        y0, y1 = sorted((band.get_y(), band.get_y() + band.get_height()))
        shown = [t for t in ax.texts if t.get_text().startswith("GET /mail/")
                 or t.get_text() == "200 OK"]  # fmt: skip
        assert len(shown) == 4
        assert all(y0 <= t.get_position()[1] <= y1 for t in shown)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "encrypted: after\nthe TLS handshake" in legend
        assert "waiting for the page to refresh" in " ".join(t.get_text() for t in ax.texts)
    finally:
        plt.close(ax.figure)


def test_the_route_names_the_browser_hop_https():
    ax = plot.route(shipped(WEBMAIL), "m1")
    try:
        texts = _texts(ax)
        assert any(t.startswith("1") and "HTTPS, TLS 1.3" in t for t in texts), texts
        assert not any("HTTPS" in t and t.startswith("2") for t in texts)
    finally:
        plt.close(ax.figure)


def test_the_timeline_keys_the_https_hop_in_its_own_colour():
    ax = plot.timeline(shipped(WEBMAIL))
    try:
        key = {t.get_text(): h for t, h in zip(ax.get_legend().get_texts(),
                                               ax.get_legend().legend_handles, strict=True)}  # fmt: skip
        patch = key["HTTPS hop (webmail)"]
        assert to_hex(patch.get_facecolor()) == style.PROTOCOL["https"].lower()
        hops = [p for p in ax.patches if p.get_gid() == "hop"]
        assert to_hex(hops[0].get_facecolor()) == style.PROTOCOL["https"].lower()
    finally:
        plt.close(ax.figure)


def test_the_packet_view_says_the_post_is_http_inside_tls_on_443():
    result = shipped(WEBMAIL)
    events = result.events
    post = events[events["step"] == "POST"].iloc[0]
    pdu = Pdus(result).of(int(post["session"]), str(post["src"]), float(post["time"]))
    assert pdu is not None
    assert pdu.encrypted
    assert pdu.layers[0].name == "Application · HTTP inside TLS"
    assert b"POST" not in pdu.frame
    assert pdu.frame[36:38] == (443).to_bytes(2, "big")  # the TCP destination port


def test_the_browsers_client_hello_offers_h2_by_alpn_and_a_mail_programs_does_not():
    result = shipped(WEBMAIL)
    services = dict(zip(result.sessions["session"], result.sessions["service"], strict=True))
    offered = {}
    for packet in result.packets:
        if packet.forward and packet.payload[:1] == b"\x16" and packet.session not in offered:
            hello = TLS(packet.payload).msg[0]
            assert len(packet.payload) == tls.CLIENT_HELLO
            alpn = [e for e in hello.ext if isinstance(e, TLS_Ext_ALPN)]
            offered[packet.session] = [p.protocol for e in alpn for p in e.protocols]
    by_service = {services[s]: protocols for s, protocols in offered.items()}
    assert by_service["https"] == [b"h2", b"http/1.1"]
    assert by_service["submission"] == []


def test_step_follows_only_the_browsers_http_with_f_https():
    args = cli.build_parser().parse_args(["step", str(WEBMAIL), "--filter", "https"])
    out = io.StringIO()
    assert cli._step(args, io.StringIO("\n\nq\n"), out) == 0
    events = [line for line in out.getvalue().splitlines() if line.startswith("#")]
    assert len(events) == 3
    assert events[0].endswith("dana-laptop → webmail  https  POST /mail/send HTTP/2")
    assert "webmail → dana-laptop  https [200]  200 OK" in events[1]
    assert "dana-laptop → pop-webmail  https  GET /mail/inbox" in events[2]
