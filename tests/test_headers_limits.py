"""``mailsim headers`` on input that is large, strange or hostile: a date no calendar
holds, a device or a pipe instead of a file, a loop of thousands of hops, a file name
that tries to write YAML, an output that cannot be written. Each ends in a warning on
its hop or one clean line with exit code 2 (1 for a failed write), within the memory
and time a classroom laptop has."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from mailsim import trace
from tests.bounded import mailsim as command
from tests.bounded import within

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


# --- 6. routes too long to draw, and loops of thousands of hops -------------------------------


def test_the_table_and_json_show_every_hop_of_a_long_route(tmp_path):
    path = write(tmp_path, message(150))
    run = command("headers", path)
    assert run.code == 0
    assert run.out.startswith("Route of “Test” from a@example.org: 150 hops, 2 min 29 s in all")
    assert sum(1 for line in run.out.splitlines() if "h150.example.org" in line) == 1
    run = command("headers", path, "--json")
    assert len(json.loads(run.out)["hops"]) == 150
    within(run)


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


# --- 8. what a header says cannot break the table, the terminal or the figure ------------------

HOSTILE = "Received: from e\x1b[31mvil.example (x [192.0.2.1]) by mx\u202ecba.example with ESMTP\x08; Mon, 2 Nov 2026 09:00:01 +0000\n"  # fmt: skip


def test_control_and_bidi_characters_are_shown_escaped_in_the_table():
    text = HOSTILE + hop(0) + "From: a\x07@example.org\nSubject: $x^$ \u2067y\n\n"
    route = trace.parse(text)
    table = trace.table(route)
    assert all(c.isprintable() for line in table.splitlines() for c in line), table
    assert "e\\x1b[31mvil.example [192.0.2.1]" in table
    assert "mx\\u202ecba.example" in table
    assert "ESMTP\\x08" in table
    assert table.startswith("Route of “$x^$ \\u2067y” from a\\x07@example.org")
    lines = table.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    rows = [line for line in lines if re.match(r"  +\d+  ", line)]
    assert len(rows) == 2
    assert {len(row) for row in rows} == {len(header)}
    assert {row.index(" 2026-11-02") for row in rows} == {header.index(" time") + 0}


def test_the_json_keeps_the_exact_text(tmp_path):
    path = write(tmp_path, HOSTILE + hop(0))
    run = command("headers", path, "--json")
    assert run.code == 0
    hops = json.loads(run.out)["hops"]
    assert hops[1]["from"] == "e\x1b[31mvil.example"
    assert hops[1]["by"] == "mx\u202ecba.example"
