import re

import pytest

from mailsim.units import (
    format_duration,
    parse_duration,
    parse_per_second,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20ms", 0.02),
        ("1.5s", 1.5),
        ("5min", 300.0),
        ("2h", 7200.0),
        ("5d", 432000.0),
        ("250us", 0.00025),
        (" 3 s ", 3.0),
        (7, 7.0),
        (0.5, 0.5),
        ("1e3ms", 1.0),
        ("1h30min", 5400.0),
        ("2d 12h", 216000.0),
        ("1min 0.5s", 60.5),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [("20KB", 20_000), ("1MB", 1_000_000), ("64KiB", 65_536), ("512B", 512), (100, 100)],
)
def test_sizes(text, nbytes):
    assert parse_size(text) == nbytes


@pytest.mark.parametrize(
    ("text", "bps"), [("50Mbps", 50e6), ("1Gbps", 1e9), ("56kbps", 56e3), (1000, 1000.0)]
)
def test_rates(text, bps):
    assert parse_rate(text) == bps


@pytest.mark.parametrize(
    ("parse", "text", "fragment"),
    [
        (parse_duration, "20 parsecs", "unknown unit 'parsecs'"),
        (parse_duration, "fast", "not a duration"),
        (parse_duration, "1h 30parsecs", "unknown unit 'parsecs'"),
        (parse_duration, "1h30", "not a duration"),
        (parse_size, "20KBs", "unknown unit 'KBs'"),
        (parse_rate, "50MB", "unknown unit 'MB'"),
        (parse_duration, True, "expected a duration"),
    ],
)
def test_bad_units_say_what_works(parse, text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0123, "12.3 ms"), (1.5, "1.500 s"), (420, "7 min 0 s"), (7260, "2 h 1 min")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_duration, float("inf"), 'must be a finite number, not .inf; write a duration such as "20ms"'),
        (parse_duration, float("-inf"), "must be a finite number, not -.inf"),
        (parse_duration, float("nan"), "must be a finite number, not .nan"),
        (parse_size, float("inf"), 'write a size such as "20KB" or "1MB"'),
        (parse_rate, float("nan"), 'write a bandwidth such as "50Mbps" or "1Gbps"'),
        (parse_per_second, float("inf"), 'write a rate such as "10/h" or "2/min"'),
        (parse_duration, "1e400", "'1e400' is too large a duration"),
        (parse_duration, "1e308d", "'1e308d' is too large a duration"),
        (parse_size, "1e308GB", "'1e308GB' is too large a size"),
        (parse_duration, 10**400, "the number is too large to be a duration"),
        (parse_per_second, "1" + "0" * 400 + "/h", "is too large a rate"),
        (parse_duration, "1" + "0" * 308 + "d 1h", "is too large a duration"),
    ],
)  # fmt: skip
def test_numbers_are_finite(parse, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(value)


def test_a_long_value_is_quoted_short():
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_duration("x" * 10_000)
    assert len(str(caught.value)) < 120


@pytest.mark.parametrize(("text", "per_second"), [("10/h", 10 / 3600), ("2/min", 2 / 60), (3, 3.0)])
def test_rates_of_events(text, per_second):
    assert parse_per_second(text) == pytest.approx(per_second)
