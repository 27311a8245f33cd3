"""When people write: Poisson arrivals, flat or following the hours of a working day.

A traffic generator's ``rate`` is the rate at the busiest hour. With a ``profile`` (24
hourly weights, by the local time of the scenario's ``start``), arrivals form a
non-homogeneous Poisson process, drawn by thinning (Lewis & Shedler 1979): candidates
come at the peak rate and each is kept with the weight of its hour. A flat profile draws
exactly what a plain Poisson process draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np

# The working day by local hour, 1 = the busiest hour. Its shape follows what mail
# providers and analysts measured: traffic rises from 6:00, peaks in the late morning
# (10–12), dips at lunch, stays nearly as high in the afternoon with a small rise before
# 17:00, then falls through the evening (WEB.DE/GMX, "Rushhour am Vormittag", 2018;
# Webafrica on bizcommunity.com: a peak around 9:00, a steep fall after 15:00). The
# weights sum to 9.6 peak hours: at 3.5/h a person sends about 33 messages a day, the 33.4 sent per working
# day that EmailAnalytics measured over 569 business users (May 2021).
WORKING_DAY: tuple[float, ...] = (
    0.02, 0.02, 0.02, 0.02, 0.02, 0.02,  # 00–06: night
    0.10, 0.35, 0.75, 0.95, 1.00, 1.00,  # 06–12: arriving, the morning rush
    0.60, 0.75, 0.90, 0.90, 0.85, 0.60,  # 12–18: lunch, the afternoon
    0.30, 0.15, 0.10, 0.10, 0.05, 0.03,  # 18–24: the evening
)  # fmt: skip
PROFILES: dict[str, tuple[float, ...]] = {"flat": (1.0,) * 24, "working-day": WORKING_DAY}


def weights(profile: str | Sequence[float]) -> tuple[float, ...]:
    """24 hourly weights scaled so that the busiest hour is 1."""
    values = PROFILES[profile] if isinstance(profile, str) else tuple(profile)
    peak = max(values)
    return tuple(v / peak for v in values)


def seconds_into_day(start: str) -> float:
    """Local time of day of the scenario's t = 0 (``2026-11-02T09:00:00+01:00`` → 9 h)."""
    moment = datetime.fromisoformat(start)
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def arrivals(
    rng: np.random.Generator,
    rate: float,
    start: float,
    stop: float,
    profile: str | Sequence[float] = "flat",
    clock: float = 0.0,
) -> Iterator[float]:
    """Times of one sender's messages in [start, stop); ``clock`` is the local time of
    day at t = 0. For each kept arrival the caller may draw from ``rng`` (a recipient)
    before asking for the next: the stream stays the same as before profiles existed."""
    hourly = weights(profile)
    flat = min(hourly) == 1.0
    at = start
    while True:
        at += float(rng.exponential(1.0 / rate))
        if at >= stop:
            return
        if flat or rng.random() < hourly[int((clock + at) % 86400 // 3600)]:
            yield at


def expected_count(
    rate: float,
    start: float,
    stop: float,
    profile: str | Sequence[float] = "flat",
    clock: float = 0.0,
) -> float:
    """How many arrivals :func:`arrivals` yields on average in [start, stop): ``rate``
    times the integral of the hourly weights over the window (exact, hour by hour)."""
    if stop <= start:
        return 0.0
    hourly = weights(profile)
    prefix = [0.0]
    for weight in hourly:
        prefix.append(prefix[-1] + weight * 3600)

    def integral(t: float) -> float:
        """∫ weight from local midnight of day 0 to local time ``t``."""
        days, rest = divmod(t, 86400)
        hour, into = divmod(rest, 3600)
        h = int(hour)
        return days * prefix[24] + prefix[h] + hourly[h] * into

    return rate * (integral(clock + stop) - integral(clock + start))
