"""Capture files judged by Wireshark's own reader: tshark (Debian's package).

Every shipped scenario's capture is read back: the SMTP, LMTP and POP3 dialogues tshark
finds are the events' plaintext steps, line by line and in order; its DNS messages are
the events' queries and answers; its TLS handshakes are the events' handshakes; TCP
analysis flags nothing but the retransmissions the scenario's faults cause; nothing is
malformed. A second reader (scapy) checks that every step's packet carries its time.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import mailsim
from tests.conftest import ROOT

TSHARK = shutil.which("tshark")
if TSHARK is None:
    why = "needs tshark from the distribution: apt-get install tshark (make test does, as root)"
    if os.environ.get("CI"):
        raise RuntimeError(why)  # in CI a missing tool fails the run, never skips
    pytest.skip(why, allow_module_level=True)

SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
# busy-office's twelve and a half hours make 2.8 million packets: its first 20 minutes
# carry every kind of step it has.
SHORTER = {"busy-office": ["duration=20min"]}
TEXT_PROTOCOLS = ("smtp", "lmtp", "pop3")


@functools.cache
def captured(name: str, folder: Path) -> tuple[mailsim.Result, Path]:
    scenario = mailsim.load(ROOT / "scenarios" / f"{name}.yaml", SHORTER.get(name, []))
    result = mailsim.run(scenario)
    path = folder / f"{name}.pcap"
    result.to_pcap(path)
    return result, path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("captures")


def tshark(path: Path, *args: str) -> list[list[str]]:
    """tshark's fields, one list per frame (LMTP's port 24 decoded as SMTP, as Wireshark's
    "Decode As" does: it knows no LMTP)."""
    done = subprocess.run(
        [TSHARK, "-r", str(path), "-d", "tcp.port==24,smtp", "-E", "occurrence=a",
         "-E", "aggregator=|", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.split("\t") for line in done.stdout.splitlines()]


def fields(*names: str) -> list[str]:
    return ["-T", "fields", *(x for name in names for x in ("-e", name))]


def by_session(result: mailsim.Result) -> dict[tuple[str, int, str, int], int]:
    """Each TCP session by its addresses and ports, seen from either end."""
    table = result.sessions[result.sessions["transport"] == "tcp"]
    out = {}
    for row in table.itertuples():
        out[(row.client_ip, row.client_port, row.server_ip, row.server_port)] = row.session
        out[(row.server_ip, row.server_port, row.client_ip, row.client_port)] = row.session
    return out


def plaintext(result: mailsim.Result, protocols: tuple[str, ...]) -> dict[int, list[tuple]]:
    """Per session, the lines of its steps sent before TLS began: ("C", command) from the
    client, ("S", first line) from the server. Two are not among them, as Wireshark reads
    them as the message's data: a QUIT sent in one flight with the message, and whatever
    the client sends after a pipelined DATA that was refused (no 354)."""
    events = result.events
    texts = result.recorder.wire_texts()
    clients = dict(zip(result.sessions["session"], result.sessions["client"], strict=True))
    out: dict[int, list[tuple]] = {}
    encrypted: set[int] = set()
    message_sent: dict[int, float] = {}
    for i, (session, src, protocol, step, time) in enumerate(
        zip(
            events["session"],
            events["src"],
            events["protocol"],
            events["step"],
            events["time"],
            strict=True,
        )
    ):
        if protocol == "tls":
            encrypted.add(session)
        if step == "message":
            message_sent[session] = time
        if protocol not in protocols or session in encrypted or step == "message":
            continue
        if step == "QUIT" and message_sent.get(session) == time:
            continue
        side = "C" if src == clients[session] else "S"
        line = texts[i].split("\r\n", 1)[0].rstrip()  # "+OK " as tshark's "+OK"
        out.setdefault(int(session), []).append((side, line))
    for lines in out.values():
        if ("C", "DATA") in lines and not any(t.startswith("354") for _, t in lines):
            after = lines.index(("C", "DATA")) + 1
            lines[after:] = [(side, t) for side, t in lines[after:] if side == "S"]
    return out


@pytest.mark.parametrize("name", SCENARIOS)
def test_tshark_reads_the_smtp_and_lmtp_dialogues_of_the_events(name, folder):
    result, path = captured(name, folder)
    sessions = by_session(result)
    seen: dict[int, list[tuple]] = {}
    for src, sport, dst, dport, commands, replies in tshark(
        path,
        "-Y",
        "smtp",
        *fields(
            "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "smtp.command_line", "smtp.response"
        ),
    ):
        session = sessions[(src, int(sport), dst, int(dport))]
        lines = [("C", c) for c in commands.split("|") if c]
        lines += [("S", r) for r in replies.split("|") if r]
        seen.setdefault(session, []).extend(
            (side, text.removesuffix("\\r\\n")) for side, text in lines
        )
    expected = plaintext(result, ("smtp", "lmtp"))
    assert seen == {s: lines for s, lines in expected.items() if lines}


@pytest.mark.parametrize("name", SCENARIOS)
def test_tshark_reads_the_pop3_dialogues_of_the_events(name, folder):
    result, path = captured(name, folder)
    sessions = by_session(result)
    seen: dict[int, list[tuple]] = {}
    for src, sport, dst, dport, command, parameter, status, description in tshark(
        path,
        "-Y",
        "pop",
        *fields(
            "ip.src",
            "tcp.srcport",
            "ip.dst",
            "tcp.dstport",
            "pop.request.command",
            "pop.request.parameter",
            "pop.response.indicator",
            "pop.response.description",
        ),
    ):
        session = sessions[(src, int(sport), dst, int(dport))]
        if command:
            line = f"{command} {parameter}".strip()
            seen.setdefault(session, []).append(("C", line))
        elif status:
            seen.setdefault(session, []).append(("S", f"{status} {description}".strip()))
    expected = plaintext(result, ("pop3",))
    assert seen == {s: lines for s, lines in expected.items() if lines}


@pytest.mark.parametrize("name", SCENARIOS)
def test_tshark_reads_the_dns_queries_and_answers_of_the_events(name, folder):
    result, path = captured(name, folder)
    seen = [
        (int(response), qname, qtype, rcode, mx, preference, a)
        for response, qname, qtype, rcode, mx, preference, a in tshark(
            path,
            "-Y",
            "dns",
            "-N",
            "n",
            *fields(
                "dns.flags.response",
                "dns.qry.name",
                "dns.qry.type",
                "dns.flags.rcode",
                "dns.mx.mail_exchange",
                "dns.mx.preference",
                "dns.a",
            ),
        )
    ]
    events = result.events
    dns = events[(events["protocol"] == "dns") & (events["step"] != "timeout")]
    expected = []
    asked = {}  # each exchange's question
    for session, step, code, detail in zip(
        dns["session"], dns["step"], dns["code"], dns["detail"], strict=True
    ):
        if step.startswith("query"):
            qname = detail.split("? ", 1)[1].split(" (again", 1)[0]
            asked[session] = qname, {"MX": "15", "A": "1"}[step.split()[1]]
            expected.append((0, *asked[session], "", "", "", ""))
            continue
        qname, qtype = asked[session]
        said = detail.split(" ", 1)[1].rsplit(" (", 1)[0]
        records = said.split(", ") if code == "NOERROR" and not said.startswith("NOERROR") else []
        mx = [r.split() for r in records if r.startswith("MX ")]
        a = [r.split()[1] for r in records if r.startswith("A ")]
        rcode = {"NOERROR": "0", "SERVFAIL": "2", "NXDOMAIN": "3"}[code]
        expected.append((1, qname, qtype, rcode, "|".join(m[2] for m in mx),
                         "|".join(m[1] for m in mx), "|".join(a)))  # fmt: skip
    assert seen == expected
    assert len(seen) == len(dns)


@pytest.mark.parametrize("name", SCENARIOS)
def test_tshark_sees_every_tls_handshake_and_nothing_malformed(name, folder):
    result, path = captured(name, folder)
    steps = list(result.events.loc[result.events["protocol"] == "tls", "step"])
    kinds = [
        kind
        for (types,) in tshark(path, "-Y", "tls.handshake.type", *fields("tls.handshake.type"))
        for kind in types.split("|")
    ]
    hellos = sum(s.startswith("ClientHello") for s in steps)
    assert kinds.count("1") == hellos
    assert kinds.count("2") == sum(s.startswith("ServerHello") for s in steps)
    # TLS 1.2 shows its certificate and key exchange; TLS 1.3 encrypts them.
    assert kinds.count("11") == sum("ServerHelloDone" in s for s in steps)
    assert kinds.count("16") == sum(s.startswith("ClientKeyExchange") for s in steps)
    assert tshark(path, "-Y", "_ws.malformed || _ws.expert.severity == error") == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_tcp_analysis_flags_only_the_syns_a_dead_server_left_unanswered(name, folder):
    result, path = captured(name, folder)
    flagged = tshark(path, "-Y", "tcp.analysis.flags", *fields("tcp.flags.syn", "tcp.flags.ack"))
    syns_again = sum(
        1
        for p in result.packets
        if p.flags == "S" and p.row < 0  # a SYN sent again
    )
    assert flagged == [["1", "0"]] * syns_again
    if not result.scenario.faults:
        assert flagged == []


def test_a_second_reader_finds_each_step_at_its_time_from_its_address(folder):
    """scapy, not dpkt which writes the file: each step's first packet left at the
    step's time, to the nanosecond, from the step's address and port."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.utils import rdpcap

    result, path = captured("classroom", folder)
    frames = rdpcap(str(path))
    packets = result.packets
    assert len(frames) == len(packets)
    events = result.events
    epoch = int(result.epoch.timestamp())
    carried = set()
    for frame, packet in zip(frames, packets, strict=True):
        if packet.row < 0:
            continue
        row = events.iloc[packet.row]
        assert frame.time - epoch == pytest.approx(row["time"], abs=0.6e-9)
        assert round((frame.time - epoch) * 10**9) == round(row["time"] * 10**9)
        layer = frame[TCP] if TCP in frame else frame[UDP]
        assert (frame[IP].src, layer.sport) == (row["src_ip"], row["src_port"])
        assert (frame[IP].dst, layer.dport) == (row["dst_ip"], row["dst_port"])
        carried.add((row["session"], row["src"], row["time"]))
    # Every step went out (steps sent together share their first packet).
    sent = events[events["step"] != "timeout"]
    assert carried == set(zip(sent["session"], sent["src"], sent["time"], strict=True))


def test_follow_tcp_gives_back_a_plaintext_dialogue_with_its_message(folder):
    """tls-downgrade's stripped relay hop travels in plaintext: following its stream gives
    every line, and the message with the Received line of the hop before."""
    result, path = captured("tls-downgrade", folder)
    events = result.events
    texts = result.recorder.wire_texts()
    smtp = result.sessions[result.sessions["service"] == "smtp"]
    with_message = set(events.loc[events["step"] == "message", "session"])
    tls = set(events.loc[events["protocol"] == "tls", "session"])
    session = next(s for s in smtp["session"] if s in with_message and s not in tls)
    streams = sorted(result.sessions.loc[result.sessions["transport"] == "tcp", "session"])
    done = subprocess.run(
        [TSHARK, "-r", str(path), "-q", "-z", f"follow,tcp,ascii,{streams.index(session)}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    dialogue = done.stdout.replace("\n", "")
    rows = events.index[(events["session"] == session) & (events["protocol"] == "smtp")]
    position = 0
    for row in rows:
        line = texts[row].replace("\r\n", "") if events.at[row, "step"] != "message" else ""
        found = dialogue.find(line, position)
        assert found >= 0, line
        position = found + len(line)
    message = events.loc[rows].query("step == 'message'")["message"].iloc[0]
    before = result.copy(message).stamps[0]
    assert f"Received: from {before.helo} ({before.client_host} [{before.client_ip}])" in (
        dialogue.replace("        ", " ")
    )


def test_a_capture_on_a_link_holds_what_crosses_it_when_it_crosses_it(folder, tmp_path):
    """On r-school–r-home: the relay hop only, as long after leaving its sender as the
    link before it takes, one router passed (TTL 63), between the two routers' MACs."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    result, _ = captured("classroom", folder)
    path = tmp_path / "wan.pcap"
    count = result.to_pcap(path, on="r-school,r-home")
    frames = rdpcap(str(path))
    assert len(frames) == count > 0
    relay = int(result.sessions.loc[result.sessions["service"] == "smtp", "session"].iloc[0])
    crossing = [p for p in result.packets if p.session == relay]
    assert len(frames) == len(crossing)
    epoch = int(result.epoch.timestamp())
    latency = {frozenset(link.between): link.latency for link in result.scenario.links}
    before = {
        "msa-school": latency[frozenset(("msa-school", "r-school"))],
        "mx-home": latency[frozenset(("mx-home", "r-home"))],
    }
    macs = {"02:00:c0:00:02:04", "02:00:c0:00:02:05"}
    for frame, packet in zip(frames, crossing, strict=True):
        assert float(frame.time - epoch) == pytest.approx(packet.time + before[packet.src])
        assert frame[IP].ttl == 63
        assert {frame[Ether].src, frame[Ether].dst} == macs


def test_a_lossy_link_shows_its_lost_packets_as_retransmissions(tmp_path):
    """Half the packets on r-school–r-home lost: each copy the model lost is sent again,
    and tshark counts exactly those retransmissions; beyond the loss the lost copies are
    missing: on r-home–mx-home only mx-home's packets (which meet the loss later) show
    retransmissions."""
    scenario = mailsim.load(
        ROOT / "scenarios" / "classroom.yaml",
        ['faults=[{"kind": "loss", "between": ["r-school", "r-home"], "rate": 0.5}]'],
    )
    result = mailsim.run(scenario, seed=3)
    lost = [p for p in result.packets if p.lost_on is not None]
    assert lost  # the seed loses some
    path = tmp_path / "lossy.pcap"
    result.to_pcap(path)
    retransmitted = tshark(path, "-Y", "tcp.analysis.retransmission", *fields("frame.number"))
    assert len(retransmitted) == len(lost)
    after = tmp_path / "after.pcap"
    result.to_pcap(after, on="r-home,mx-home")
    senders = tshark(after, "-Y", "tcp.analysis.retransmission", *fields("ip.src"))
    from_mx = [p for p in lost if p.src == "mx-home"]
    assert senders == [["192.0.2.6"]] * len(from_mx)


def test_plaintext_steps_are_as_many_bytes_on_the_wire_as_the_events_say(folder):
    """The timing model's byte counts are the capture's: in a session without TLS, each
    direction carries exactly the bytes of its steps; each DNS message is its step's size."""
    for name in ("tls-downgrade", "classroom", "backup-mx", "mailbox-full"):
        result, _ = captured(name, folder)
        events = result.events
        tls = set(events.loc[events["protocol"] == "tls", "session"])
        wanted: dict[tuple[int, str], int] = {}
        for session, src, protocol, nbytes in zip(
            events["session"], events["src"], events["protocol"], events["bytes"], strict=True
        ):
            if protocol != "tcp" and session not in tls:
                wanted[(session, src)] = wanted.get((session, src), 0) + nbytes
        carried: dict[tuple[int, str], int] = {}
        for p in result.packets:
            if p.session not in tls and p.lost_on is None and p.payload:
                carried[(p.session, p.src)] = carried.get((p.session, p.src), 0) + len(p.payload)
        assert carried == wanted, name


def test_the_cli_writes_a_capture_and_names_what_is_wrong(tmp_path):
    run = [str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "mailsim")]
    run = run if Path(run[0]).exists() else ["mailsim"]
    scenario = str(ROOT / "scenarios" / "classroom.yaml")
    done = subprocess.run(
        [*run, "run", scenario, "--pcap", str(tmp_path / "c.pcap"), "--pcap-on", "r-school,r-home"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(
        f"wrote 49 packets seen on r-school,r-home to {tmp_path / 'c.pcap'}"
    )
    wrong = subprocess.run(
        [*run, "run", scenario, "--pcap", str(tmp_path / "d.pcap"), "--pcap-on", "eve"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert wrong.returncode == 2
    assert wrong.stderr.startswith(
        f"mailsim: {scenario}: --pcap-on: no link or eavesdropper 'eve'; links: alice-pc,msa-school"
    )
    assert "Traceback" not in wrong.stderr
    assert not (tmp_path / "d.pcap").exists()


def test_the_packet_list_reads_what_tshark_reads_on_eves_line(tmp_path):
    """free-vs-paid-provider's eve: the packet list has tshark's frames, in its order; the
    lines it reads in plaintext are the frames tshark dissects as SMTP or POP, with the
    same words; Dave's sessions are TLS frames to both."""
    result = mailsim.run(mailsim.load(ROOT / "scenarios" / "free-vs-paid-provider.yaml"))
    path = tmp_path / "eve.pcap"
    result.to_pcap(path, on="eve")
    listed = result.packet_list(on="eve")
    frames = tshark(path, *fields("frame.number", "ip.src", "ip.dst", "_ws.col.Protocol"))
    assert len(listed) == len(frames)
    assert list(zip(listed["source"], listed["destination"], strict=True)) == [
        (src, dst) for _, src, dst, _ in frames
    ]
    smtp = tshark(path, "-Y", "smtp.req", *fields("frame.number", "smtp.command_line"))
    ours = listed[listed["info"].str.startswith("C: ") & (listed["protocol"] == "SMTP")]
    commands = ours[~ours["info"].str.startswith("C: message data, ")]
    assert [(int(n), line.split("|")[0].removesuffix("\\r\\n")) for n, line in smtp] == [
        (n, info.removeprefix("C: "))
        for n, info in zip(commands["no"], commands["info"], strict=True)
    ]
    tls = {int(n) for n, *_ in tshark(path, "-Y", "tls", *fields("frame.number"))}
    assert set(listed.loc[listed["protocol"] == "TLS", "no"]) <= tls
    assert "C: PASS wonderland" in set(listed["info"])  # Alice's POP3 password, as sent


def test_a_capture_as_a_link_in_the_page_holds_the_file_to_the_byte(tmp_path):
    """pcap_download: the file travels inside the page as a data: URL, the bytes to_pcap
    writes; its words say how many packets and how large."""
    import base64
    import re

    from mailsim import capture

    result = mailsim.run(mailsim.load(ROOT / "scenarios" / "free-vs-paid-provider.yaml"))
    packets = result.to_pcap(tmp_path / "eve.pcap", on="eve")
    link = result.pcap_download("eve.pcap", on="eve")
    data = (tmp_path / "eve.pcap").read_bytes()
    page = link._repr_html_()
    (encoded,) = re.findall(r'<a download="eve.pcap" href="data:application/vnd\.tcpdump\.pcap;'
                            r'base64,([A-Za-z0-9+/=]+)">⬇ eve.pcap</a>', page)  # fmt: skip
    assert base64.b64decode(encoded) == data
    assert f"— {packets:,} packets, {len(data) / 1000:,.1f} kB:" in page
    assert (link.packets, link.data) == (packets, data)
    old = capture.DOWNLOAD_LIMIT
    capture.DOWNLOAD_LIMIT = len(data) - 1
    try:
        with pytest.raises(ValueError, match=f"the capture is {len(data):,} bytes, too large"):
            result.pcap_download("eve.pcap", on="eve")
    finally:
        capture.DOWNLOAD_LIMIT = old
