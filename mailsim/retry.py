"""When a deferred message is tried again, and when it is given up: pure arithmetic.

Three schedules, each computed from the times of the message's arrival and of its failed
attempts so far:

* **postfix** — the queue manager of Postfix (qmgr(8), ``src/qmgr/qmgr_active.c``): after
  a failed attempt the next delay is the time the message has already spent in the queue,
  clamped to [minimal_backoff_time, maximal_backoff_time] (so it roughly doubles); the
  message is then picked up by the first scan of the deferred queue, every
  queue_run_delay. A failure once the message is maximal_queue_lifetime old returns it.
* **rfc** — RFC 5321 §4.5.4.1's guidance: retry intervals of at least 30 minutes, "two
  connection attempts in the first hour … then backing off to one every two or three
  hours", giving up after 4–5 days: here 30 min, 30 min, then every 2 h, for the
  queue lifetime.
* **exim** — Exim's default retry rule ``F,2h,15m; G,16h,1h,1.5; F,4d,6h`` (measured from
  the first failure): every 15 minutes for 2 hours, then intervals growing ×1.5 from 1 hour
  until 16 hours, then every 6 hours until 4 days, then the message is returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Policy = Literal["postfix", "rfc", "exim"]


@dataclass(frozen=True)
class Schedule:
    policy: Policy = "postfix"
    queue_run_delay: float = 300.0  # postconf(5), since Postfix 2.4
    minimal_backoff_time: float = 300.0
    maximal_backoff_time: float = 4000.0
    maximal_queue_lifetime: float = 5 * 86400.0
    bounce_queue_lifetime: float = 5 * 86400.0

    def next_attempt(
        self, arrived_at: float, failures: Sequence[float], bounce: bool = False
    ) -> float | None:
        """Time of the next attempt after the failed attempts at ``failures`` (the last
        one is now) of a message queued at ``arrived_at``; None: give it up now."""
        now = failures[-1]
        lifetime = self.bounce_queue_lifetime if bounce else self.maximal_queue_lifetime
        if now - arrived_at >= lifetime:
            return None
        if self.policy == "exim":
            return exim_next(failures)
        if self.policy == "rfc":
            return now + (1800.0 if len(failures) <= 2 else 7200.0)
        backoff = min(max(now - arrived_at, self.minimal_backoff_time), self.maximal_backoff_time)
        return scan_after(now + backoff, self.queue_run_delay)


def scan_after(t: float, every: float) -> float:
    """The first deferred-queue scan at or after ``t`` (scans at 0, every, 2·every…)."""
    return math.ceil(t / every - 1e-9) * every


def exim_next(failures: Sequence[float]) -> float | None:
    """Exim's default rule ``F,2h,15m; G,16h,1h,1.5; F,4d,6h``."""
    first, now = failures[0], failures[-1]
    elapsed = now - first
    if elapsed < 2 * 3600:
        return now + 15 * 60
    if elapsed < 16 * 3600:
        earlier = sum(1 for t in failures[:-1] if t - first >= 2 * 3600)
        return now + 3600 * 1.5**earlier
    if elapsed < 4 * 86400:
        return now + 6 * 3600
    return None
