"""When a deferred message is tried again, and when it is given up: pure arithmetic.

Three schedules, each computed from the times of the message's arrival and of its failed
attempts so far. Real servers keep time in whole seconds (``time()``), and so do the
rules below where a server's own clock decides.

* **postfix** — the queue manager of Postfix (qmgr(8)). After a failed attempt it stamps
  the queue file with a time in the future: now + the time the message has already spent
  in the queue, clamped to [minimal_backoff_time, maximal_backoff_time] (so the pauses
  roughly double; ``src/qmgr/qmgr_active.c``, qmgr_active_done_3_generic). The message is
  picked up again by the first scan of the deferred queue that finds that stamp at most
  1 s ahead of its clock (qmgr_active_feed). Scans come every queue_run_delay, counted
  from when the queue manager started (``src/qmgr/qmgr.c``: a scan at start, then a
  timer), so where they fall relative to a failure — their *phase* — depends on the
  server, not on the message: with the defaults (300 s, 300 s) the first retry comes
  299–599 s after the failure, not always on a multiple of 300 s. A failure once the
  message is maximal_queue_lifetime old returns it.
* **rfc** — RFC 5321 §4.5.4.1's guidance: retry intervals of at least 30 minutes, "two
  connection attempts in the first hour … then backing off to one every two or three
  hours", giving up after 4–5 days: here 30 min, 30 min, then every 2 h, for the
  queue lifetime.
* **exim** — Exim's default retry rule ``F,2h,15m; G,16h,1h,1.5; F,4d,6h``, computed as
  ``src/src/retry.c`` (retry_update) does, from the first failure. But "retry times are
  hints rather than promises" (Exim spec, "Retry configuration"): a deferred message is
  tried only when a queue runner starts, every ``-q`` interval (Debian's exim4 runs
  ``exim4 -bd -q30m``: QUEUEINTERVAL='30m'), at the first run past its retry time. A
  message older than the last rule's cutoff (4 d) is tried at the next run anyway, and
  the failure of an address that has been failing for longer than that returns it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

Policy = Literal["postfix", "rfc", "exim"]

# qmgr_active.c, qmgr_active_feed: a deferred file is skipped while its time stamp is
# more than 1 s ahead of the clock ("st.st_mtime > time((time_t *) 0) + 1").
POSTFIX_EARLY = 1
# Rounding slack for comparing a time with a multiple of a scan interval.
_EPS = 1e-9


class EximRule(NamedTuple):
    """One parameter set of an Exim retry rule: letter, cutoff, interval, factor × 1000
    (retry.c keeps the multiplier as an integer in thousandths)."""

    letter: Literal["F", "G"]
    cutoff: int
    interval: int
    factor: int = 0


# Exim's default retry rule, in configure.default and in Debian's exim4-config
# (conf.d/retry/30_exim4-config): "*  *  F,2h,15m; G,16h,1h,1.5; F,4d,6h". That file
# warns: "these rules only limit the frequency of retries, the effective retry-time
# depends on the frequency of queue-running, too". With -q30m and a destination that
# never answers, a message arriving at 10 s, queue runs at 0, 30, 60… min:
#   5 failures judged by F,2h,15m (10 s on arrival; the runs at 30, 60, 90, 120 min —
#     the last 7190 s after the first failure, so "<= 2 h" still holds), 5 by G (the
#     runs at 2.5, 3.5, 5, 7.5, 11 h: +1 h, then each gap × 1.5 and the run after it),
#     14 by F,4d,6h (16.5 h, then every 6 h up to 94.5 h), and one at the first run after
#     the message is 4 days old, which returns it: 25 attempts in 4.02 days. Retried at
#     each retry time instead (no queue runner), the rule alone would give 29.
EXIM_RULES = (
    EximRule("F", 2 * 3600, 15 * 60),
    EximRule("G", 16 * 3600, 3600, 1500),
    EximRule("F", 4 * 86400, 6 * 3600),
)
EXIM_RETRY_INTERVAL_MAX = 86400  # retry_interval_max: "cannot be set greater than 24h"


@dataclass(frozen=True)
class Schedule:
    policy: Policy = "postfix"
    queue_run_delay: float = 300.0  # postconf(5), since Postfix 2.4
    minimal_backoff_time: float = 300.0
    maximal_backoff_time: float = 4000.0
    maximal_queue_lifetime: float = 5 * 86400.0
    bounce_queue_lifetime: float = 5 * 86400.0
    queue_runner_interval: float = 1800.0  # exim -q30m: Debian's QUEUEINTERVAL='30m'
    scan_phase: float = 0.0  # the first scan (postfix) or queue run (exim) after t = 0

    @property
    def scan_interval(self) -> float | None:
        """Time between the moments this server looks at its queue: Postfix's deferred
        queue scans, Exim's queue runs; None for rfc, which retries when it says."""
        if self.policy == "postfix":
            return self.queue_run_delay
        if self.policy == "exim":
            return self.queue_runner_interval
        return None

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
            due = exim_due(arrived_at, failures)
            if due is None:
                return None
            return next_scan(due, self.queue_runner_interval, self.scan_phase, after=now)
        if self.policy == "rfc":
            return now + (1800.0 if len(failures) <= 2 else 7200.0)
        return next_scan(
            postfix_due(arrived_at, now, self.minimal_backoff_time, self.maximal_backoff_time),
            self.queue_run_delay,
            self.scan_phase,
            after=now,
        )


def next_scan(due: float, every: float, phase: float = 0.0, after: float = -math.inf) -> float:
    """The first scan at or after ``due`` and strictly after ``after`` (the scan that
    just found the message is over), for scans at phase, phase + every, phase + 2·every…"""
    k = math.ceil((due - phase) / every - _EPS)
    if after > -math.inf:
        k = max(k, math.floor((after - phase) / every + _EPS) + 1)
    return phase + k * every


def postfix_due(arrived_at: float, failed_at: float, minimal: float, maximal: float) -> float:
    """From when a scan of Postfix's deferred queue takes the message again: the failure
    (in whole seconds, qmgr's event_time()) + its age clamped to [minimal, maximal],
    less the second that a scan forgives."""
    failed = math.floor(failed_at)
    backoff = min(max(failed - math.floor(arrived_at), minimal), maximal)
    return failed + backoff - POSTFIX_EARLY


def exim_next_try(failures: Sequence[float]) -> int | None:
    """The retry time of Exim's retry record after ``failures``, replayed one by one as
    retry.c's retry_update writes it; None once the address has been failing for longer
    than the last rule's cutoff: it times out and is returned.

    For each failure at ``now`` (whole seconds), the rule is the first whose cutoff the
    failing interval (now − first failure) has not passed — ``<=``: F,2h,15m still applies
    at exactly 2 h. F adds its interval; G takes the last gap (the smaller of the one
    predicted and the one that really passed), multiplies it by the factor, and uses at
    least the rule's first interval."""
    first = math.floor(failures[0])
    last_try = next_try = first  # a new record: first_failed = last_try = next_try = now
    for failed_at in failures:
        now = math.floor(failed_at)
        failing = now - first
        rule = next((r for r in EXIM_RULES if failing <= r.cutoff), None)
        if rule is None:
            return None
        if rule.letter == "F":
            later = now + rule.interval
        else:
            last_gap = min(next_try - last_try, now - last_try)
            gap = last_gap * rule.factor // 1000
            later = now + (rule.interval if last_gap < rule.interval else gap)
        last_try, next_try = now, min(later, now + EXIM_RETRY_INTERVAL_MAX)
    return next_try


def exim_due(arrived_at: float, failures: Sequence[float]) -> float | None:
    """From when a queue run tries the message again: its retry time, or — the ultimate
    address timeout (retry.c, retry_ultimate_address_timeout) — as soon as the message
    has been queued for longer than the last rule's cutoff; None: return it now."""
    next_try = exim_next_try(failures)
    if next_try is None:
        return None
    too_old = math.floor(arrived_at) + EXIM_RULES[-1].cutoff + 1  # "now - received > cutoff"
    return float(min(next_try, too_old))
