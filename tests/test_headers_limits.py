"""``mailsim headers`` on input that is large, strange or hostile: a date no calendar
holds, a device or a pipe instead of a file, a loop of thousands of hops, a file name
that tries to write YAML, an output that cannot be written. Each ends in a warning on
its hop or one clean line with exit code 2 (1 for a failed write), within the memory
and time a classroom laptop has."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import mailsim
from mailsim import replay, trace
from mailsim.names import address_error
from tests.bounded import mailsim as command
from tests.bounded import refused, within

CORPUS = Path(__file__).resolve().parent / "data" / "headers"
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def hop(i: int, *, tls: str = "", date: str | None = None, by: str | None = None) -> str:
    """The Received header of hop ``i`` (0 is the oldest), h{i} handing to h{i+1}."""
    when = date if date is not None else format_datetime(START + timedelta(seconds=i))
    server = by if by is not None else f"h{i + 1}.example.org"
    return (
        f"Received: from h{i}.example.org (h{i}.example.org [192.0.2.{i % 250 + 1}]){tls}\n"
        f"\tby {server} with ESMTPS id Q{i}; {when}\n"
    )


def message(hops: int, head: str = "From: a@example.org\nSubject: Test\n") -> str:
    """A message of ``hops`` Received headers, the newest on top."""
    return "".join(hop(i) for i in reversed(range(hops))) + head + "\nbody\n"


def write(folder: Path, text: str, name: str = "m.eml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_peak_memory_measured_is_the_commands_own():
    """A child forked from a large process starts with the parent's peak (Linux keeps
    it across exec): the commands are started from a small launcher."""
    ballast = bytearray(600 * 2**20)
    ballast[:: 2**12] = b"\x01" * len(ballast[:: 2**12])  # in memory, not only reserved
    try:
        run = command("schema")
    finally:
        del ballast
    assert run.code == 0
    assert run.peak_mb < 300, run.peak_mb


# --- 1. dates no calendar holds -----------------------------------------------------------

BAD_DATES = [
    "Mon, 1 Jan 99999999999999999999 00:00:00 +0000",  # year
    "Mon, 1 Jan 2026 99999999999:00:00 +0000",  # hour
    "Mon, 1 Jan 2026 00:99999999999:00 +0000",  # minute
    "Mon, 1 Jan 2026 00:00:99999999999 +0000",  # second
    "Mon, 1 Jan 2026 00:00:00 +99999999999",  # time zone
    "Mon, 1 Jan 2026 25:00:00 +0000",
    "Mon, 99 Jan 2026 00:00:00 +0000",
    "Fri, 31 Dec 9999 23:59:59 -2359",  # after year 9999 in UTC
]


@pytest.mark.parametrize("date", BAD_DATES, ids=range(len(BAD_DATES)))
def test_a_date_the_reader_cannot_use_is_a_warning_on_its_hop(date):
    assert trace.parse_date(date) == (None, [f"unreadable date {date!r}"])
    route = trace.parse(hop(2) + hop(1, date=date) + hop(0))
    assert [h.time is None for h in route.hops] == [False, True, False]
    assert route.hops[1].warnings == [f"unreadable date {date!r}"]
    assert [h.delay for h in route.hops] == [None, None, None]
    assert route.total == 2.0


def test_a_date_the_reader_cannot_use_is_shown_not_raised(tmp_path):
    path = write(tmp_path, hop(1, date=BAD_DATES[0]) + message(1))
    run = command("headers", path)
    assert (run.code, run.err) == (0, "")
    assert f"hop 2: unreadable date '{BAD_DATES[0]}'" in run.out
    within(run)
    run = command("headers", path, "--json")
    assert run.code == 0
    assert json.loads(run.out)["hops"][1]["warnings"] == [f"unreadable date '{BAD_DATES[0]}'"]


def test_comments_that_never_close_are_read_in_linear_time():
    date = "Mon, 2 Nov 2026 08:00:00 " + "(" * 200_000
    started = time.perf_counter()
    route = trace.parse(hop(0, date=date))
    assert time.perf_counter() - started < 2
    assert route.hops[0].time == START
    quoted = repr(date[:60] + "…")
    assert route.hops[0].warnings == [f"no time zone in {quoted} (-0000): read as UTC"]


# --- 2. a route nothing can replay ----------------------------------------------------------


def test_a_route_without_a_receiving_server_is_refused_for_a_replay(tmp_path):
    path = write(
        tmp_path, "Received: (qmail 123 invoked from network); 2 Nov 2026 08:00:00 -0000\n\n"
    )
    out = tmp_path / "replay.yaml"
    run = command("headers", path, "--scenario", out)
    refused(
        run,
        f"mailsim: {path}: Received: no hop names the server that received it ('by'):"
        " nothing to replay",
    )
    assert run.out == ""
    assert not out.exists()


# --- 3. every replay is a scenario mailsim accepts --------------------------------------------


def replayed(text: str, source: str = "the message") -> tuple[dict, mailsim.Scenario]:
    written = replay.scenario_of(trace.parse(text), source)
    return yaml.safe_load(written), mailsim.loads(written)


def test_a_message_without_from_replays_from_a_placeholder_sender():
    data, scenario = replayed(message(2, head="Subject: Test\n"))
    assert list(scenario.users) == ["sender@sender.example", "reader@reader.example"]
    assert scenario.messages[0].sender == "sender@sender.example"
    assert "no From: line" in data["description"]
    assert mailsim.run(scenario).copy("m1").status == "retrieved"


@pytest.mark.parametrize("version", ["TLSv1.0", "TLSv1.1", "TLS1_0"])
def test_tls_1_0_and_1_1_replay_as_1_2_with_a_note(version):
    text = "".join(
        hop(i, tls=f" (using {version} with cipher AES128-SHA)" if i == 1 else "")
        for i in (2, 1, 0)
    )
    data, scenario = replayed(text + "From: a@example.org\n\n")
    assert scenario.nodes["h2"].tls == "1.2"
    assert data["nodes"]["h2"]["tls"] == "1.2"
    assert "TLS 1.0 or 1.1" in data["description"]
    assert "same two round trips" in data["description"]
    assert mailsim.run(scenario).copy("m1").status == "retrieved"


def test_an_internationalised_address_replays_in_its_ascii_form():
    head = "From: Jörg <jörg@bücher.example>\nTo: ana@例え.テスト\n"
    data, scenario = replayed(message(2, head=head))
    assert list(scenario.users) == ["sender@xn--bcher-kva.example", "ana@xn--r8jz45g.xn--zckzah"]
    assert "'jörg' is not ASCII" in data["description"]
    assert mailsim.run(scenario).copy("m1").status == "retrieved"


def test_a_server_named_by_its_address_replays_under_a_stand_in_host_name():
    data, scenario = replayed(hop(1, by="[192.0.2.9]") + hop(0) + "From: a@example.org\n\n")
    assert data["nodes"]["192-0-2-9"]["host"] == "192-0-2-9.replay.example"
    assert data["dns"]["zones"]["reader.example"]["mx"][0]["host"] == "192-0-2-9.replay.example"
    assert (
        "'192.0.2.9' is not a host name (letters, digits and hyphens, RFC 1123; not an address,"
        " not 'unknown'): the server is called 192-0-2-9.replay.example."
    ) in data["description"].splitlines()
    copy = mailsim.run(scenario).copy("m1")
    assert copy.status == "retrieved"
    assert [s.by for s in copy.stamps][:2] == ["h1.example.org", "192-0-2-9.replay.example"]


def test_a_replay_written_by_the_command_passes_validate(tmp_path):
    head = "Subject: Test\nTo: ana@例え.テスト\n"
    text = hop(1, tls=" (using TLSv1.1 with cipher AES128-SHA)") + hop(0) + head + "\n"
    out = tmp_path / "replay.yaml"
    assert command("headers", write(tmp_path, text), "--scenario", out).code == 0
    run = command("validate", out)
    assert (run.code, run.err) == (0, "")


def test_a_from_line_of_400_000_at_signs_is_given_up_on_quickly():
    started = time.perf_counter()
    data, scenario = replayed(hop(0) + f"From: {'a@' * 400_000}\n\n")
    assert time.perf_counter() - started < 2
    assert list(scenario.users) == ["sender@sender.example", "reader@reader.example"]
    assert data["description"].splitlines() == [
        "The route of the message, replayed: 1 hop read from its Received: headers.",
        f"The From: line '{'a@' * 30}…' holds no address a scenario can use: the sender is"
        " written as sender@sender.example.",
        "The message has no To: line: the recipient is written as reader@reader.example.",
    ]


def corpus() -> list[Path]:
    return sorted(p for p in CORPUS.glob("*") if p.suffix in (".eml", ".mbox"))


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_every_real_sample_replays_as_a_valid_scenario(path):
    route = trace.parse(path.read_text(encoding="utf-8"))
    if not any(h.by and not h.garbled for h in route.hops):
        assert replay.refusal(route) is not None
        return
    strict(yaml.safe_load(replay.scenario_of(route, path.name)))
    mailsim.loads(replay.scenario_of(route, path.name))


HOSTNAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*",
    re.IGNORECASE,
)


def is_hostname(name: str) -> bool:
    """RFC 1123 §2.1: letters, digits and hyphens, labels of at most 63, 253 in all; a
    last label of digits alone would be an IPv4 address."""
    return bool(HOSTNAME.fullmatch(name)) and not name.rsplit(".", 1)[-1].isdigit()


def strict(data: dict) -> None:
    """What a strict validator asks of names, hosts and addresses."""
    for name, node in data["nodes"].items():
        assert re.fullmatch(r"[a-z0-9-]{1,63}", name), name
        if "host" in node:
            assert is_hostname(node["host"]), node["host"]
    for domain, zone in data["dns"]["zones"].items():
        assert is_hostname(domain), domain
        assert all(is_hostname(host) for host in zone["a"])
        assert all(is_hostname(mx["host"]) for mx in zone.get("mx", []))
    for address in data["users"]:
        assert address_error(address) is None, address
        assert not re.search(r"[*?{}]", address), address
    for sent in data["messages"]:
        assert sent["subject"].isprintable(), sent["subject"]
        assert sent["from"] in data["users"]
        assert sent["to"] in data["users"]
    assert all(c.isprintable() or c == "\n" for c in data["description"]), data["description"]


ODD_HOSTS = [
    "mx.example.net", "mail.example.org", "localhost", "unknown", "[192.0.2.1]", "192.0.2.7",
    "[IPv6:2001:db8::1]", "2001:db8::25", "mail_server.example.com", "bücher.example",
    "例え.テスト", "a" * 300 + ".example", "x" * 70 + ".example", "-x-.example", "mx..example",
    ".", "x.", "MX.EXAMPLE.NET", "mx.example.net.", "xn--bcher-kva.example", "a$b.example",
    "\u202eevil.example", "e\x1bvil.example", "h.123", "-", "(", ";", "from", "by",
]  # fmt: skip
PROTOCOLS = ["SMTP", "ESMTP", "ESMTPS", "ESMTPSA", "ESMTPA", "LMTP", "LMTPS", "HTTP", "HTTPS",
             "UTF8SMTPS", "local", "Microsoft SMTP Server (version=TLS1_2, cipher=X)"]  # fmt: skip
TLS = ["", "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)", "(version=TLS1_0)",
       "(TLSv1.1:AES128-SHA:128)", "(using SSLv3)", "(Google Transport Security)"]  # fmt: skip
ADDRESSES = ["a@example.org", "Jörg <jörg@bücher.example>", "<>", "undisclosed-recipients:;",
             "a*b@x.example", "{1..3}@x.example", "x@[192.0.2.1]", "ana@例え.テスト",
             '"john doe"@example.org', "b@" + "c" * 300 + ".example", "@", "a@b"]  # fmt: skip

hosts = st.one_of(
    st.sampled_from(ODD_HOSTS),
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,30}", fullmatch=True),
    st.text(min_size=1, max_size=20),
)
dates = st.one_of(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ).map(format_datetime),
    st.sampled_from(BAD_DATES),
    st.text(max_size=20),
)


@st.composite
def received(draw: st.DrawFn) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(f"from {draw(hosts)} ({draw(hosts)} [{draw(hosts)}])")
    parts.append(draw(st.sampled_from(TLS)))
    if draw(st.integers(0, 5)):
        parts.append(f"by {draw(hosts)}")
    if draw(st.booleans()):
        parts.append(f"with {draw(st.sampled_from(PROTOCOLS))}")
    if draw(st.booleans()):
        parts.append(f"id {draw(hosts)}")
    if draw(st.booleans()):
        parts.append(f"for <{draw(st.sampled_from(ADDRESSES))}>")
    date = draw(st.one_of(st.none(), dates))
    return " ".join(parts) + (f"; {date}" if date is not None else "")


@st.composite
def messages(draw: st.DrawFn) -> str:
    chain = draw(st.lists(received(), min_size=1, max_size=8))
    text = "".join(f"Received: {value}\n" for value in chain)
    for field in ("From", "To"):
        if draw(st.booleans()):
            text += f"{field}: {draw(st.sampled_from(ADDRESSES) | st.text(max_size=30))}\n"
    if draw(st.booleans()):
        text += f"Subject: {draw(st.text(max_size=40))}\n"
    return text + "\nbody\n"


@settings(max_examples=60)
@given(messages(), st.text(max_size=30))
def test_any_plausible_chain_replays_as_a_scenario_that_runs(text, source):
    route = trace.parse(text)
    trace.table(route)
    json.dumps(route.to_dict())
    if replay.refusal(route) is not None:
        assert not any(h.by and not h.garbled for h in route.hops)
        with pytest.raises(ValueError, match="nothing to replay"):
            replay.scenario_of(route, source)
        return
    written = replay.scenario_of(route, source)
    strict(yaml.safe_load(written))
    result = mailsim.run(mailsim.loads(written))
    assert len(result.messages) == 1


# --- 4. nothing from the input reaches the YAML but as data ------------------------------------

INJECTED = "x\nfaults: [{kind: down, node: mx, start: 0}]\n#"


def test_a_file_name_or_subject_cannot_write_yaml_into_the_replay(tmp_path):
    folded = INJECTED.replace("\n", "\n ")  # a header goes on after a line break and a space
    path = write(tmp_path, message(2, head=f"Subject: {folded}\n"), name=f"{INJECTED}.eml")
    out = tmp_path / "replay.yaml"
    run = command("headers", path, "--scenario", out)
    assert run.code == 0, run.err
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert "faults" not in data
    assert trace.shown(str(path)) in data["description"]
    assert "x\\nfaults: [{kind: down, node: mx, start: 0}]\\n#.eml" in data["description"]
    assert data["messages"][0]["subject"] == "x faults: [{kind: down, node: mx, start: 0}] #"
    comments = [line for line in out.read_text().splitlines() if line.startswith("#")]
    assert comments
    assert not any("faults" in line or ".eml" in line for line in comments)
    assert mailsim.load(out).faults == []


def test_control_characters_in_a_subject_are_replayed_escaped():
    data, scenario = replayed(message(2, head="Subject: a\x1b[2Jb\u202ec\x00\n"))
    assert data["messages"][0]["subject"] == "a\\x1b[2Jb\\u202ec\\x00"
    assert scenario.messages[0].subject == "a\\x1b[2Jb\\u202ec\\x00"


# --- 5. inputs that never end --------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_at_once(device):
    refused(command("headers", device), f"mailsim: {device}: is not a regular file")


def test_a_pipe_is_refused_not_waited_for(tmp_path):
    fifo = tmp_path / "pipe.eml"
    os.mkfifo(fifo)
    refused(command("headers", fifo, timeout=30), f"mailsim: {fifo}: is not a regular file")


def test_standard_input_that_never_ends_is_read_to_the_limit_and_refused():
    with open("/dev/zero", "rb") as zero:
        run = command("headers", "-", stdin=zero)
    refused(run, "mailsim: <stdin>: is larger than 64.0 MiB, the limit for an input file")


def test_bytes_that_are_not_text_are_read_as_text_with_replacements(tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(message(2, head="Subject: a\xff\xfeb\n").encode("latin-1") + bytes(range(256)))
    run = command("headers", path, "--json")
    assert (run.code, run.err) == (0, "")
    document = json.loads(run.out)
    assert (len(document["hops"]), document["subject"]) == (2, "a\ufffd\ufffdb")
    within(run)


# --- 6. routes too long to draw, and loops of thousands of hops -------------------------------


@pytest.mark.parametrize("option", ["--plot", "--scenario"])
def test_a_route_of_more_than_100_hops_is_neither_drawn_nor_replayed(tmp_path, option):
    path = write(tmp_path, message(101))
    out = tmp_path / ("route.png" if option == "--plot" else "replay.yaml")
    run = command("headers", path, option, out)
    refused(
        run,
        f"mailsim: {path}: Received: 101 hops, too many to "
        + ("draw" if option == "--plot" else "replay"),
        "at most 100",
        "RFC 5321 §6.3",
    )
    assert run.out == ""
    assert not out.exists()


def test_a_loop_too_long_to_read_whole_is_refused_as_more_than_it_read(tmp_path):
    path = write(tmp_path, message(5000))
    refused(
        command("headers", path, "--plot", tmp_path / "route.png"),
        f"mailsim: {path}: Received: more than 1,000 hops, too many to draw (at most 100",
    )


def test_the_table_and_json_show_every_hop_of_a_long_route(tmp_path):
    path = write(tmp_path, message(150))
    run = command("headers", path)
    assert run.code == 0
    assert run.out.startswith("Route of “Test” from a@example.org: 150 hops, 2 min 29 s in all")
    assert sum(1 for line in run.out.splitlines() if "h150.example.org" in line) == 1
    run = command("headers", path, "--json")
    assert len(json.loads(run.out)["hops"]) == 150
    within(run)


def test_a_route_of_100_hops_is_drawn_in_time(tmp_path):
    out = tmp_path / "route.png"
    run = command("headers", write(tmp_path, message(100)), "--plot", out)
    assert (run.code, run.err) == (0, f"wrote {out}\n")
    assert out.read_bytes().startswith(b"\x89PNG")
    within(run)


def test_names_of_100_kb_are_drawn_cut_short_and_in_time(tmp_path):
    """Each label of the figure is at most 40 characters, as the table's columns: a
    name of 100,000 took 90 s to draw."""
    name = "a" * 100_000 + ".example"
    text = hop(1, by=name) + hop(0) + f"Subject: {'s' * 200_000}\n\n"
    out = tmp_path / "route.png"
    run = command("headers", write(tmp_path, text), "--plot", out)
    assert (run.code, run.err) == (0, f"wrote {out}\n")
    within(run)
    table = trace.table(trace.parse(text), width=80)
    joined = table.replace("\n  ", "")  # lines wrapped at 80 columns, put back together
    assert joined.startswith(f"Route of “{'s' * 79}…” from an unknown sender: 2 hops")
    assert "a" * 20 in table
    assert "…" in table.split("#", 1)[1]  # the 100 KB name ends in a mark, not silently
    assert max(len(line) for line in table.splitlines()) <= 80


def test_the_plot_is_built_in_linear_time():
    """One scatter per role, not one per server: each scatter rescaled every point
    drawn before it (3,000 hops took 47 s to build)."""
    import matplotlib.pyplot as plt

    from mailsim.plot.received import received as draw

    ax = draw(trace.parse(message(100)))
    try:
        assert len(ax.collections) <= 3
        assert sum(len(c.get_offsets()) for c in ax.collections) == 101
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    ("hops", "named", "bars"),
    [(12, 13, 11), (15, 16, 7), (16, 9, 8), (30, 16, 10), (100, 16, 11)],
)
def test_a_long_route_names_as_many_servers_as_fit(hops, named, bars):
    """Up to 16 servers every one is named (at 11 points, in four rows); beyond, one in
    two, three …, and the last; the delays of up to 12 hops are labelled, beyond one in
    two, three … (the first hop has none)."""
    import matplotlib.pyplot as plt

    from mailsim.plot.received import received as draw

    ax = draw(trace.parse(message(hops)))
    try:
        names = [t.get_text() for t in ax.texts if t.get_text().endswith(".example.org")]
        assert len(names) == named
        assert names[0] == "h0.example.org"
        assert names[-1] == f"h{hops}.example.org"
        ticks = [t.get_text() for t in ax.figure.axes[1].get_yticklabels()]
        assert len(ticks) == bars
        assert ticks[0] == "hop 2: → h2.example.org"
        assert ("one name in" in ax.get_title(loc="left")) == (named <= hops)
    finally:
        plt.close(ax.figure)


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> Path:
    """60 MB of Received headers: a message that went round in a loop 420,000 times."""
    path = tmp_path_factory.mktemp("loop") / "loop.eml"
    with path.open("w", encoding="utf-8") as out:
        for i in reversed(range(420_000)):
            out.write(hop(i))
        out.write("From: a@example.org\nSubject: Loop\n\nbody\n")
    assert path.stat().st_size > 60 * 10**6
    return path


@pytest.mark.slow
@pytest.mark.parametrize("json_output", [False, True], ids=["table", "json"])
def test_a_loop_of_60_mb_is_read_within_bounds_and_says_what_it_left(loop, json_output):
    run = command("headers", loop, *(["--json"] if json_output else []))
    assert (run.code, run.err) == (0, "")
    within(run)
    if json_output:
        document = json.loads(run.out)
        assert len(document["hops"]) == trace.MAX_HOPS_READ
        assert document["hops"][0]["from"] == "h0.example.org"
        assert document["subject"] == "Loop"
        assert any("only the last 1.0 MiB" in w for w in document["warnings"])
    else:
        assert run.out.startswith(f"Route of “Loop” from a@example.org: {trace.MAX_HOPS_READ} hops")
        assert "only the last 1.0 MiB" in run.out


def test_more_received_headers_than_read_keeps_the_oldest_and_says_so():
    route = trace.parse(message(trace.MAX_HOPS_READ + 5))
    assert len(route.hops) == trace.MAX_HOPS_READ
    assert route.hops[0].from_host == "h0.example.org"
    assert route.warnings == [
        f"{trace.MAX_HOPS_READ + 5:,} Received: headers; only the oldest"
        f" {trace.MAX_HOPS_READ:,} are read (from 100 hops on, mail servers take a message"
        " for a loop: RFC 5321 §6.3)"
    ]


def test_headers_larger_than_read_keep_their_bottom_part():
    pad = "X-Pad: " + "p" * 990 + "\n"
    text = "Received: from new by top; Mon, 2 Nov 2026 09:00:00 +0000\n" + pad * 1300 + message(2)
    route = trace.parse(text)
    assert [h.by for h in route.hops] == ["h1.example.org", "h2.example.org"]
    assert route.subject == "Test"
    assert route.warnings == [
        "the headers are 1.2 MiB, more than any real message's; only the last 1.0 MiB"
        " (the oldest Received: headers and the sender's own) are read"
    ]


# --- 7. outputs that cannot be written ---------------------------------------------------------


def unwritable(tmp_path: Path) -> Path:
    """A folder nobody may write in: a read-only folder for a user; /proc for root, who
    may write in any folder of an ordinary file system."""
    if os.geteuid() == 0:
        return Path("/proc")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("option", ["--plot", "--scenario"])
@pytest.mark.parametrize("place", ["missing folder", "a folder", "read-only folder"])
def test_an_output_that_cannot_be_written_is_refused_before_reading(tmp_path, option, place):
    name = "route.png" if option == "--plot" else "replay.yaml"
    target, why = {
        "missing folder": (tmp_path / "missing" / name, "does not exist"),
        "a folder": (tmp_path / name, "is a folder; give a file name"),
        "read-only folder": (unwritable(tmp_path) / name, "cannot write in its folder"),
    }[place]
    if place == "a folder":
        target.mkdir()
    # The input does not exist: the output is checked first.
    run = command("headers", tmp_path / "absent.eml", option, target)
    refused(run, f"mailsim: {target}: {option}: ", why)


@pytest.mark.parametrize("option", ["--plot", "--scenario"])
def test_a_full_disk_is_one_line_and_exit_1(tmp_path, option):
    full = tmp_path / ("full.png" if option == "--plot" else "full.yaml")
    full.symlink_to("/dev/full")
    run = command("headers", write(tmp_path, message(2)), option, full)
    refused(run, f"mailsim: {full}: cannot write: No space left on device", code=1)


@pytest.mark.parametrize("option", ["--plot", "--scenario"])
def test_an_output_onto_the_input_is_refused(tmp_path, option):
    path = write(tmp_path, message(2), name="m.png" if option == "--plot" else "m.eml")
    before = path.read_bytes()
    refused(
        command("headers", path, option, path),
        f"mailsim: {path}: {option}: is the message being read; give another file name",
    )
    assert path.read_bytes() == before


def test_a_plot_of_unknown_format_is_refused_before_reading(tmp_path):
    run = command("headers", tmp_path / "absent.eml", "--plot", tmp_path / "route.txt")
    refused(run, f"mailsim: {tmp_path / 'route.txt'}: --plot: write .png, .svg or .pdf")


# --- 8. what a header says cannot break the table, the terminal or the figure ------------------

HOSTILE = "Received: from e\x1b[31mvil.example (x [192.0.2.1]) by mx\u202ecba.example with ESMTP\x08; Mon, 2 Nov 2026 09:00:01 +0000\n"  # fmt: skip


def test_control_and_bidi_characters_are_shown_escaped_in_the_table():
    text = HOSTILE + hop(0) + "From: a\x07@example.org\nSubject: $x^$ \u2067y\n\n"
    route = trace.parse(text)
    table = trace.table(route, width=200)
    assert all(c.isprintable() for line in table.splitlines() for c in line), table
    assert "e\\x1b[31mvil.example [192.0.2.1]" in table
    assert "mx\\u202ecba.example" in table
    assert "ESMTP\\x08" in table
    assert table.startswith("Route of “$x^$ \\u2067y” from a\\x07@example.org")
    lines = table.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    rows = [line for line in lines if re.match(r"  +\d+ ", line)]
    assert len(rows) == 2
    assert {re.search(r"\d\d:\d\d:\d\d", row).start() for row in rows} == {header.index("time")}


def test_the_json_keeps_the_exact_text(tmp_path):
    path = write(tmp_path, HOSTILE + hop(0))
    run = command("headers", path, "--json")
    assert run.code == 0
    hops = json.loads(run.out)["hops"]
    assert hops[1]["from"] == "e\x1b[31mvil.example"
    assert hops[1]["by"] == "mx\u202ecba.example"


def test_a_figure_draws_any_text_as_text(tmp_path):
    """Dollars would start matplotlib's maths; control characters, and Japanese in the
    default font, have no glyph (a box is drawn, no warning printed)."""
    text = (
        hop(2, by="例え.テスト")
        + HOSTILE
        + hop(0, by="a$b.example")
        + "Subject: $x^$ \u202e\x00\n\n"
    )
    out = tmp_path / "route.png"
    run = command("headers", write(tmp_path, text), "--plot", out)
    assert (run.code, run.err) == (0, f"wrote {out}\n")
    assert out.stat().st_size > 10_000
