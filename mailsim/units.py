"""Human units for scenario files: "20ms", "5min", "2h", "20KB", "50Mbps".

Every value is turned into SI: seconds, bytes, bits per second. Scenario files are
written by students, so a bare number is accepted too (seconds, bytes, bit/s), and a
bad unit raises ``ValueError`` with the units that would have worked. A value is always
a finite number: YAML's ``.inf`` and ``.nan``, or "1e400s", would make a run that never
ends or a size that cannot be written, so they are refused here, saying what to write.
"""

from __future__ import annotations

import math
import re

from mailsim.errors import shown

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ/]*)\s*$")

DURATION_UNITS: dict[str, float] = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}

# Sizes: decimal prefixes as used by mail servers' size limits (Postfix message_size_limit
# is in bytes; "10MB" in a scenario means 10,000,000 bytes), binary ones spelled KiB/MiB.
SIZE_UNITS: dict[str, float] = {
    "B": 1.0,
    "KB": 1e3,
    "kB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "KiB": 1024.0,
    "MiB": 1024.0**2,
    "GiB": 1024.0**3,
}

RATE_UNITS: dict[str, float] = {
    "bps": 1.0,
    "kbps": 1e3,
    "Kbps": 1e3,
    "Mbps": 1e6,
    "Gbps": 1e9,
}


def _parse(text: str | float | int, units: dict[str, float], what: str) -> float:
    if isinstance(text, bool):
        raise ValueError(f"expected a {what} such as {_example(units)}")
    if isinstance(text, int | float):
        return finite(text, what, _example(units))
    match = _NUMBER.match(str(text))
    if not match:
        raise ValueError(f"{shown(text)} is not a {what}; write it like {_example(units)}")
    number, unit = float(match.group(1)), match.group(2)
    if unit and unit not in units:
        raise ValueError(
            f"unknown unit {shown(unit)} in {shown(text)}; use one of"
            f" {', '.join(sorted(set(units)))}"
        )
    value = number * units[unit] if unit else number
    if not math.isfinite(value):
        raise ValueError(f"{shown(text)} is too large a {what}; write it like {_example(units)}")
    return value


def finite(number: float | int, what: str = "number", example: str = "") -> float:
    """``number`` as a float, if it is a finite one; else a ValueError saying what to
    write (YAML spells infinity ``.inf`` and not-a-number ``.nan``)."""
    try:
        value = float(number)
    except OverflowError:  # a whole number of hundreds of digits
        raise ValueError(f"the number is too large to be a {what}") from None
    if math.isfinite(value):
        return value
    spelt = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    instead = f"; write a {what} such as {example}" if example else ""
    raise ValueError(f"must be a finite number, not {spelt}{instead}")


def _example(units: dict[str, float]) -> str:
    if units is DURATION_UNITS:
        return '"20ms", "5min" or "2h"'
    if units is SIZE_UNITS:
        return '"20KB" or "1MB"'
    return '"50Mbps" or "1Gbps"'


_PART = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([A-Za-zµ]+)")


def parse_duration(text: str | float | int) -> float:
    """Seconds from "20ms", "1.5s", "5min", "2h", "5d" (a bare number is seconds), or
    a sum of them written as on a clock: "1h30min", "2d 12h"."""
    if isinstance(text, str) and not _NUMBER.match(text):
        parts = list(_PART.finditer(text))
        if len(parts) > 1 and "".join(p.group(0) for p in parts).strip() == text.strip():
            total = sum(_parse(p.group(0), DURATION_UNITS, "duration") for p in parts)
            if not math.isfinite(total):
                raise ValueError(f"{shown(text)} is too large a duration")
            return total
    return _parse(text, DURATION_UNITS, "duration")


def parse_size(text: str | float | int) -> float:
    """Bytes from "20KB", "1.5MB", "64KiB" (a bare number is bytes)."""
    return _parse(text, SIZE_UNITS, "size")


def parse_rate(text: str | float | int) -> float:
    """Bits per second from "50Mbps", "1Gbps" (a bare number is bit/s)."""
    return _parse(text, RATE_UNITS, "bandwidth")


_PER = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*/\s*(s|sec|min|h|d)\s*$")


def parse_per_second(text: str | float | int) -> float:
    """Events per second from "10/h", "2/min" or "1/d" (a bare number is per second)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return finite(text, "rate", '"10/h" or "2/min"')
    match = _PER.match(str(text))
    if not match:
        raise ValueError(f'{shown(text)} is not a rate; write it like "10/h" or "2/min"')
    value = float(match.group(1)) / DURATION_UNITS[match.group(2)]
    if not math.isfinite(value):
        raise ValueError(f'{shown(text)} is too large a rate; write it like "10/h" or "2/min"')
    return value


def format_duration(seconds: float) -> str:
    """Readable duration for reports: 0.0123 → "12.3 ms", 420 → "7 min 0 s"."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 60:
        return f"{seconds:.3f} s"
    if seconds < 3600 - 0.5:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s"
    hours, rest = divmod(round(seconds / 60), 60)
    if hours < 24:
        return f"{hours} h {rest} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
