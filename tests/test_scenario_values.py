"""Values a scenario may hold: finite numbers within the bounds that keep a run and its
mail headers real, names without control characters, host names that are host names,
message ids a Message-ID header can carry. Each refusal names the key and says what
to write instead; each extreme that is allowed runs and renders its messages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

import mailsim
from mailsim.errors import InputError
from mailsim.units import parse_duration
from tests.conftest import SCENARIOS

CLASSROOM = (SCENARIOS / "classroom.yaml").read_text()
TRAFFIC = "traffic: [{from: alice@school.example, to: bob@home.example, rate: 1/h}]\n"


def edited(old: str, new: str, text: str = CLASSROOM) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def problems_of(text: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        mailsim.loads(text, "s.yaml")
    return [str(p) for p in caught.value.problems]


def line_of(text: str, fragment: str) -> int:
    return text.split(fragment)[0].count("\n") + 1


def changed_line(text: str, new: str) -> int:
    """The line of ``text`` that ``new`` changed: its first line the classroom lacks."""
    return line_of(text, next(line for line in new.splitlines() if line not in CLASSROOM))


MESSAGE = 'subject: "Homework for Monday"'
HOST = "host: mx.home.example, domains"
ROUTER = "r-school:   {role: router, pos: [2, 0]}"
MX = "mx-home:    {role: smtp, host: mx.home.example, domains: [home.example]"
LINK = "{between: [r-school, r-home], latency: 45ms, bandwidth: 1Gbps}"

NOT_FINITE = [
    # (what, old, new, key, message)
    ("message size", "size: 20KB", "size: .inf", "messages.0.size",
     'must be a finite number, not .inf; write a size such as "20KB" or "1MB"'),
    ("message size as text", "size: 20KB", 'size: "1e400"', "messages.0.size",
     """'1e400' is too large a size; write it like "20KB" or "1MB\""""),
    ("size limit", MX, MX + ", message_size_limit: .inf", "nodes.mx-home.message_size_limit",
     'must be a finite number, not .inf; write a size such as "20KB" or "1MB"'),
    ("jitter", LINK, LINK.replace("45ms,", "45ms, jitter: .inf,"), "links.3.jitter",
     'must be a finite number, not .inf; write a duration such as "20ms", "5min" or "2h"'),
    ("latency", LINK, LINK.replace("45ms", ".nan"), "links.3.latency",
     'must be a finite number, not .nan; write a duration such as "20ms", "5min" or "2h"'),
    ("duration", "duration: 1h", "duration: .inf", "duration",
     'must be a finite number, not .inf; write a duration such as "20ms", "5min" or "2h"'),
    ("negative infinity", "duration: 1h", "duration: -.inf", "duration",
     'must be a finite number, not -.inf; write a duration such as "20ms", "5min" or "2h"'),
    ("clock skew", ROUTER, ROUTER.replace("}", ", clock_skew: .inf}"), "nodes.r-school.clock_skew",
     'must be a finite number, not .inf; write a duration such as "20ms", "5min" or "2h"'),
    ("position", ROUTER, ROUTER.replace("[2, 0]", "[.inf, 0]"), "nodes.r-school.pos.0",
     "must be a finite number, not .inf"),
    ("traffic rate", "messages:", TRAFFIC.replace("1/h", ".inf") + "messages:", "traffic.0.rate",
     'must be a finite number, not .inf; write a rate such as "10/h" or "2/min"'),
    ("rate as text", "messages:", TRAFFIC.replace("1/h", '"1' + "0" * 400 + '/h"') + "messages:",
     "traffic.0.rate", "is too large a rate"),
    ("profile of NaNs", "messages:",
     TRAFFIC.replace("1/h", "1/h, profile: [" + ", ".join([".nan"] * 24) + "]") + "messages:",
     "traffic.0.profile", "hourly weights are numbers, 0 or more"),
    ("profile with infinity", "messages:",
     TRAFFIC.replace("1/h", "1/h, profile: [.inf" + ", 0" * 23 + "]") + "messages:",
     "traffic.0.profile", "must be a finite number, not .inf; write a weight such as 1 or 0.5"),
    ("slowdown", "messages:", "faults: [{kind: slow, node: mx-home, factor: .inf}]\nmessages:",
     "faults.0.factor", "must be a finite number, not .inf"),
    ("loss rate", "messages:",
     "faults: [{kind: loss, between: [r-school, r-home], rate: .nan}]\nmessages:",
     "faults.0.rate", "must be a finite number, not .nan"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "key", "message"), [c[1:] for c in NOT_FINITE], ids=[c[0] for c in NOT_FINITE]
)
def test_numbers_that_are_not_finite_are_refused(old, new, key, message):
    text = edited(old, new)
    (problem,) = problems_of(text)
    assert problem.startswith(f"s.yaml:{changed_line(text, new)}: {key}: ")
    assert message in problem


TOO_LARGE = [
    ("message size", "size: 20KB", "size: 5GB", "messages.0.size",
     "at most 1 GB (Exchange Online takes at most 150 MB) (got '5GB')"),
    ("traffic size", "messages:", TRAFFIC.replace("1/h", "1/h, size: 2GB") + "messages:",
     "traffic.0.size", "at most 1 GB"),
    ("size limit", MX, MX + ", message_size_limit: 2000GB", "nodes.mx-home.message_size_limit",
     "at most 1000 GB (got '2000GB')"),
    ("duration", "duration: 1h", "duration: 400d", "duration",
     "at most 366 d, the longest run (got '400d')"),
    ("a poll", "poll: 5min", "poll: 1000d", 'users["bob@home.example"].poll',
     "at most 366 d, the longest run (got '1000d')"),
    ("clock ahead", ROUTER, ROUTER.replace("}", ", clock_skew: 1e12}"), "nodes.r-school.clock_skew",
     "at most 100 years (36525d) either way (got '1e12')"),
    ("clock behind", ROUTER, ROUTER.replace("}", ", clock_skew: -1e12}"), "nodes.r-school.clock_skew",
     "at most 100 years (36525d) either way (got '-1e12')"),
    ("start far ahead", "duration: 1h", "duration: 1h\nstart: 9999-12-31T23:59:59+00:00", "start",
     "the year must be from 1970 to 2999, not 9999 (got '9999-12-31T23:59:59+00:00')"),
    ("start too early", "duration: 1h", "duration: 1h\nstart: 1969-12-31T23:59:59+00:00", "start",
     "the year must be from 1970 to 2999, not 1969"),
    ("a date that does not exist", "duration: 1h", "duration: 1h\nstart: 2026-13-45", "start",
     "'2026-13-45' is not a date and time; write it like 2026-11-02T09:00:00+01:00"),
    ("position", ROUTER, ROUTER.replace("[2, 0]", "[1.0e300, 0]"), "nodes.r-school.pos.0",
     "a position is within ±1,000,000 (the worlds use 0 to 10)"),
    ("bandwidth too small", LINK, LINK.replace("1Gbps", "1.0e-300"), "links.3.bandwidth",
     "at least 1 bps: a slower link carries nothing"),
    ("slowdown", "messages:", "faults: [{kind: slow, node: mx-home, factor: 1.0e300}]\nmessages:",
     "faults.0.factor",
     "at most 1,000,000 times slower; for a server that stops answering, use a hang fault"),
    ("a whole number of 400 digits", "size: 20KB", "size: " + "9" * 400, "messages.0.size",
     "the number is too large to be a size"),
    ("sessions at once", MX, MX + ", concurrency: 1000000", "nodes.mx-home.concurrency",
     "Input should be less than or equal to 100000 (got 1000000)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "key", "message"), [c[1:] for c in TOO_LARGE], ids=[c[0] for c in TOO_LARGE]
)
def test_values_past_their_bound_are_refused_saying_the_bound(old, new, key, message):
    text = edited(old, new)
    (problem,) = problems_of(text)
    assert problem.startswith(f"s.yaml:{changed_line(text, new)}: {key}: ")
    assert message in problem


def test_a_clock_set_before_1900_is_refused_with_the_start():
    text = edited("duration: 1h", "duration: 1h\nstart: 1970-01-01T00:00:00+00:00")
    text = edited(ROUTER, ROUTER.replace("}", ", clock_skew: -36525d}"), text)
    assert problems_of(text) == [
        f"s.yaml:{line_of(text, 'clock_skew')}: nodes.r-school.clock_skew: puts this machine's"
        " clock at 1869-12-31 when the run starts; the date in a mail header is 1900 or later"
        " (RFC 5322 §3.3)"
    ]


def extreme(start: str, skew: str, at: str, poll: str) -> mailsim.Scenario:
    """The classroom at an end of the dates allowed: the longest run, Alice's server's
    clock off by ``skew``, the message sent at ``at``, Bob polling every ``poll``."""
    text = edited("duration: 1h", f"duration: 366d\nstart: {start}")
    text = edited(
        "{role: smtp, host: mail.school.example,",
        f"{{role: smtp, host: mail.school.example, clock_skew: {skew},",
        text,
    )
    text = edited("poll: 5min", f"poll: {poll}", text)
    return mailsim.loads(edited("at: 10s", f"at: {at}", text), "s.yaml")


@pytest.mark.parametrize(
    ("start", "skew", "at", "poll"),
    [
        # 1900-01-01 on the clock of Alice's server: 70 years (25,567 days) before 1970.
        ("1970-01-01T00:00:00-12:00", "-25567d", "0s", "5min"),
        # The last second of 2999 far east, the message at the end of a year's run, a
        # clock a century ahead: 3101 in a Received line.
        ("2999-12-31T23:59:59+14:00", "36525d", "365d 23h", "366d"),
    ],
    ids=["earliest", "latest"],
)
def test_the_extreme_dates_allowed_render_as_mail_headers(start, skew, at, poll):
    scenario = extreme(start, skew, at, poll)
    result = mailsim.run(scenario)
    (row,) = result.message_rows
    assert row.status in ("retrieved", "delivered")
    rendered = result.email("m1").as_bytes().decode().replace("\n ", " ")
    years = set(re.findall(r"\b(\d{4}) \d\d:\d\d:\d\d [+-]\d{4}", rendered))
    sent = datetime.fromisoformat(start) + timedelta(seconds=parse_duration(at))
    skewed = sent + timedelta(seconds=parse_duration(skew))
    assert {str(sent.year), str(skewed.year)} <= years, rendered
    assert min(map(int, years)) >= 1900


NAMES = [
    ("subject with a line break", MESSAGE, 'subject: "Homework\\r\\nBcc: all@school.example"',
     "messages.0.subject",
     "a subject holds a carriage return (U+000D); write it as one line of plain text"),
    ("subject with a bidi override", MESSAGE, 'subject: "Home\\u202ework"', "messages.0.subject",
     "a subject holds a bidirectional control (U+202E)"),
    ("subject with a tab", MESSAGE, 'subject: "Home\\twork"', "messages.0.subject",
     "a subject holds a tab (U+0009)"),
    ("long subject", MESSAGE, "subject: " + "x" * 999, "messages.0.subject",
     "a subject is 999 characters long; at most 998"),
    ("message id with a space", "id: m1", 'id: "m 1"', "messages.0.id",
     "'m 1' cannot be a message id: it goes into the Message-ID header, so it holds only"
     " letters a–z, digits and !#$%&'*+-/=?^_`{|}~, with single dots between them (no"
     " spaces, no @, no < >)"),
    ("message id in brackets", "id: m1", 'id: "<m1>"', "messages.0.id", "cannot be a message id"),
    ("message id with a line break", "id: m1", 'id: "m1\\r\\nBcc: x"', "messages.0.id",
     "cannot be a message id"),
    ("message id of 501 characters", "id: m1", "id: " + "m" * 501, "messages.0.id",
     "a message id is at most 500 characters, not 501"),
    ("host with a line break", HOST, 'host: "mx.home.example\\r\\nX-Evil: 1", domains',
     "nodes.mx-home.host",
     "is not a host name: a host name holds only letters a–z, digits and hyphens, in labels"
     " joined by dots, none starting or ending with a hyphen (e.g. mail.school.example)"),
    ("host with a final dot", HOST, "host: mx.home.example., domains", "nodes.mx-home.host",
     "'mx.home.example.' is not a host name: write it without the final dot"),
    ("host with a long label", HOST, f"host: {'m' * 64}.home.example, domains",
     "nodes.mx-home.host",
     "a label of it is 64 characters long; at most 63"),
    ("node name with a space", "  r-school:   {role", '  "r school":   {role', 'nodes.r school',
     "'r school' cannot name a node: a host name holds only letters a–z, digits and hyphens,"
     " in labels joined by dots, none starting or ending with a hyphen; a node's name stands"
     " for its host name in headers, so it is written like one (e.g. mx-home)"),
    ("node name with a line break", "  r-school:   {role", '  "r-sch\\nool":   {role',
     "nodes.r-sch\\nool", "'r-sch\\nool' cannot name a node"),
    ("zone with a bidi override", "    home.example:\n", '    "home\\u202e.example":\n',
     'dns.zones["home\\u202e.example"]', "'home\\u202e.example' is not a host name"),
    ("MX host with a tab", "host: mx.home.example}]", 'host: "mx.home\\t.example"}]',
     'dns.zones["home.example"].mx.0.host', "is not a host name"),
    ("domain with a space", "domains: [home.example]", 'domains: ["home example"]',
     "nodes.mx-home.domains.0", "'home example' is not a host name"),
    ("eavesdropper with a tab", "messages:",
     'eavesdroppers: [{name: "e\\tve", between: [r-school, r-home]}]\nmessages:',
     "eavesdroppers.0.name", "a name holds a tab (U+0009); write it as one line of plain text"),
    ("scenario name with an escape", "name: classroom", 'name: "class\\e[31mroom"', "name",
     "a name holds a control character (U+001B)"),
    ("password with a NUL", "password: wonderland", 'password: "wonder\\0land"',
     'users["alice@school.example"].password', "a password holds a NUL character (U+0000)"),
    ("user with an escape", "  alice@school.example: {", '  "al\\eice@school.example": {',
     'users["al\\x1bice@school.example"]', "'al\\x1bice@school.example' is not an e-mail"
     " address: its local part holds only letters a–z, digits and !#$%&'*+-/=?^_`{|}~, with"
     " single dots between them"),
    ("forged From with a line break", MESSAGE,
     MESSAGE + ', header_from: "a@bank.example\\r\\nBcc: all@school.example"',
     "messages.0.header_from", "is not an e-mail address"),
    ("SPF with an address that is none", "      a: {mail.school.example: msa-school}",
     '      a: {mail.school.example: msa-school}\n      spf: "v=spf1 ip4:999.1.1.1 -all"',
     'dns.zones["school.example"].spf',
     "'ip4:999.1.1.1' names no IPv4 address or network; write it like ip4:192.0.2.0/24 or"
     " ip4:192.0.2.10"),
    ("a node named by a number", "  r-school:   {role", "  1:   {role", "nodes.1",
     "a name is text, not 1: put it in quotes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "key", "message"), [c[1:] for c in NAMES], ids=[c[0] for c in NAMES]
)
def test_names_and_text_hold_what_headers_and_tables_can_show(old, new, key, message):
    text = edited(old, new)
    problems = problems_of(text)
    assert problems[0].startswith(f"s.yaml:{changed_line(text, new)}: {key}: ")
    assert message in problems[0]
    assert all("\n" not in p and "\t" not in p and "\u202e" not in p for p in problems)


ALLOWED = [
    ("subject in Hebrew with an emoji", MESSAGE, 'subject: "שיעורי בית 📚"'),
    ("subject with a family emoji (zero-width joiners)", MESSAGE, 'subject: "👩‍👩‍👧 trip"'),
    ("message id of 300 characters", "id: m1", "id: " + "m.1" * 100),
    ("message id with every atext character", "id: m1", 'id: "a!#$%&\'*+-/=?^_`{|}~.b"'),
    ("host in capitals", HOST, "host: MX.Home.Example, domains"),
    ("node name with dots", "r-school", "r.school.example"),
]


@pytest.mark.parametrize(("old", "new"), [c[1:] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_names_that_headers_can_carry_are_kept(old, new):
    text = CLASSROOM.replace(old, new)
    scenario = mailsim.loads(text, "s.yaml")
    result = mailsim.run(scenario)
    (row,) = result.message_rows
    assert row.status == "retrieved"
    result.email(row.id).as_bytes()  # renders: no header injection, no encoding error


def test_every_shipped_scenario_stays_valid():
    for path in sorted(SCENARIOS.glob("*.yaml")):
        mailsim.load(path)
