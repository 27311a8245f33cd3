"""The kinds of value a scenario's fields hold, each parsed from what a student writes
and bounded so that it cannot overflow later: durations, sizes, rates, dates, positions,
names, hosts, subjects and message ids.

A bound is where a value stops making sense for a lesson and starts breaking something
downstream: a date that a mail header cannot carry, a size that ``int()`` or the EHLO
SIZE line cannot hold, a run that never ends. Each says in its error what is allowed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from mailsim import names
from mailsim.errors import shown
from mailsim.units import finite, parse_duration, parse_per_second, parse_rate, parse_size

DAY = 86400.0
# A run simulates at most a year: longer than any queue lifetime (5 d in Postfix) or
# retry schedule, and every duration of a scenario (a poll, a TTL, a fault's end) is
# at most that too: a longer one would never be reached.
MAX_DURATION = 366 * DAY
# A machine's clock may be off by up to a century either way: a server whose clock
# battery died writes 1970 (56 years behind in 2026); more is no clock at all.
MAX_SKEW = 36525 * DAY
# Exchange Online's largest allowed message is 150 MB (Gmail's 25 MB): 1 GB is beyond
# any real message, and a copy of that size is still rendered in a blink.
MAX_MESSAGE_SIZE = 1e9
# Written in the EHLO SIZE line (RFC 1870) as a whole number: a terabyte is "no limit".
MAX_SIZE_LIMIT = 1e12
# A link slower than one bit per second carries nothing in a run of a year.
MIN_BANDWIDTH = 1.0
# Drawing coordinates: the shipped worlds use 0 to 10; a million keeps matplotlib's
# margins and scales finite.
MAX_POSITION = 1e6
# Dates of t = 0: from Unix time's start to the last year with four digits to spare
# for a century of clock error; the Date: of a mail header is 1900 or later (RFC 5322
# §3.3), checked with each machine's clock_skew.
YEARS = (1970, 2999)
EARLIEST_HEADER_DATE = datetime(1900, 1, 1)


def _bounded(limit: float, text: str) -> AfterValidator:
    """At most ``limit`` either way (signs are bounded by each field's ge/gt)."""

    def check(value: float) -> float:
        if abs(value) > limit:
            raise ValueError(f"at most {text}")
        return value

    return AfterValidator(check)


def _schema(description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": ["string", "number"], "description": description})


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    _bounded(MAX_DURATION, "366 d, the longest run"),
    _schema('a duration: "20ms", "5min", "2h"'),
]
Skew = Annotated[
    float,
    BeforeValidator(parse_duration),
    _bounded(MAX_SKEW, "100 years (36525d) either way"),
    _schema('a clock error: "-90s" (behind), "2min" (ahead)'),
]
MessageSize = Annotated[
    float,
    BeforeValidator(parse_size),
    _bounded(MAX_MESSAGE_SIZE, "1 GB (Exchange Online takes at most 150 MB)"),
    _schema('a size: "20KB", "1MB"'),
]
SizeLimit = Annotated[
    float,
    BeforeValidator(parse_size),
    _bounded(MAX_SIZE_LIMIT, "1000 GB"),
    _schema('a size: "10MB", "50MB"'),
]


def _slowdown(value: float) -> float:
    if value > MAX_SLOWDOWN:
        raise ValueError(
            f"at most {MAX_SLOWDOWN:,} times slower; for a server that stops answering,"
            " use a hang fault"
        )
    return value


# A server slowed a million times takes 80 min for a 5 ms queue-file write, past every
# timeout of RFC 5321 (the lessons use 100,000 to pass the 10 min end-of-data one);
# beyond that it has stopped, which the hang fault models.
MAX_SLOWDOWN = 1_000_000
Slowdown = Annotated[float, AfterValidator(_slowdown)]


def _at_least_one_bit(value: float) -> float:
    if 0 < value < MIN_BANDWIDTH:
        raise ValueError("at least 1 bps: a slower link carries nothing")
    return value


Bandwidth = Annotated[
    float,
    BeforeValidator(parse_rate),
    AfterValidator(_at_least_one_bit),
    _schema('a bandwidth: "50Mbps"'),
]
PerSecond = Annotated[
    float,
    BeforeValidator(parse_per_second),
    _schema('a rate: "10/h", "2/min"'),
]


def _coordinate(value: float) -> float:
    if abs(value) > MAX_POSITION:
        raise ValueError(f"a position is within ±{MAX_POSITION:,.0f} (the worlds use 0 to 10)")
    return value


Position = tuple[
    Annotated[float, AfterValidator(_coordinate)], Annotated[float, AfterValidator(_coordinate)]
]


def _duration_or_spread(value: Any) -> Any:
    if value == "spread":
        return value
    seconds = parse_duration(value)
    if not 0 <= seconds <= MAX_DURATION:
        raise ValueError(
            "must be 0 or more, at most 366 d" if seconds >= 0 else "must be 0 or more"
        )
    return seconds


PollStart = Annotated[
    float | Literal["spread"],
    BeforeValidator(_duration_or_spread),
    _schema('a duration ("5min") or "spread": a random moment of the first interval'),
]


def _tls_version(value: Any) -> Any:
    """YAML reads ``tls: 1.2`` as a number; a version is meant."""
    if isinstance(value, float) and value in (1.2, 1.3):
        return str(value)
    return value


# As written: "1.3", or 1.3 (a YAML number).
TlsVersion = Annotated[
    Literal["1.3", "1.2", "none"],
    BeforeValidator(_tls_version, json_schema_input_type=Literal["1.3", "1.2", "none"] | float),
]


def _profile(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 24:
            raise ValueError(f"a profile has one weight per hour, 24 in all, not {len(value)}")
        if any(isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0 for v in value):
            raise ValueError("hourly weights are numbers, 0 or more")
        for v in value:
            finite(v, "weight", "1 or 0.5")
        if max(value) == 0:
            raise ValueError("at least one hour needs a weight above 0")
    return value


Profile = Annotated[Literal["flat", "working-day"] | list[float], BeforeValidator(_profile)]


def _start(value: Any) -> Any:
    """YAML reads an unquoted 2026-11-02T09:00:00+01:00 as a date: the text is meant."""
    if isinstance(value, datetime):
        value = value.isoformat()
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{shown(value)} is not a date and time; write it like 2026-11-02T09:00:00+01:00"
            ) from None
        low, high = YEARS
        if not low <= moment.year <= high:
            raise ValueError(f"the year must be from {low} to {high}, not {moment.year}")
    return value


Start = Annotated[str, BeforeValidator(_start)]


def clock(start: str, skew: float) -> datetime:
    """What a machine ``skew`` seconds off reads at t = 0, in the start's own zone (as
    its Date: and Received: lines write it)."""
    return datetime.fromisoformat(start).replace(tzinfo=None) + timedelta(seconds=skew)


HostName = Annotated[str, AfterValidator(names.host)]
NodeName = Annotated[str, AfterValidator(names.node)]
Address = Annotated[str, AfterValidator(names.address)]
MessageId = Annotated[str, AfterValidator(names.message_id)]
Password = Annotated[str, AfterValidator(names.password)]
Subject = Annotated[
    str, AfterValidator(lambda text: names.line(text, "a subject", names.MAX_SUBJECT))
]
Label = Annotated[str, AfterValidator(names.name)]
Record = Annotated[str, AfterValidator(lambda text: names.line(text, "a record", names.MAX_RECORD))]


def at_most(limit: int, what: str, instead: str = "") -> AfterValidator:
    """A count bound on a list or mapping: "12,000 nodes; at most 10,000 in one scenario"."""

    def check(value: Any) -> Any:
        if len(value) > limit:
            raise ValueError(
                f"{len(value):,} {what}; at most {limit:,} in one scenario"
                + (f": {instead}" if instead else "")
            )
        return value

    return AfterValidator(check)
