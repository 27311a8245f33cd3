"""When a deferred message is tried again: Postfix's queue manager, as pure arithmetic.

Postfix (qmgr(8), ``src/qmgr/qmgr_active.c``): after a failed attempt the next delay is
the time the message has already spent in the queue, clamped to
[minimal_backoff_time, maximal_backoff_time] (so it roughly doubles); the message is
picked up by the first scan of the deferred queue, every queue_run_delay, after that.
Past maximal_queue_lifetime it is returned to the sender.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PostfixPolicy:
    queue_run_delay: float = 300.0  # postconf(5), since Postfix 2.4
    minimal_backoff_time: float = 300.0
    maximal_backoff_time: float = 4000.0
    maximal_queue_lifetime: float = 5 * 86400.0

    def next_attempt(self, arrived_at: float, now: float) -> float | None:
        """Time of the next attempt for a message queued at ``arrived_at`` that failed at
        ``now``; None when it must be given up (its queue lifetime would be over)."""
        backoff = min(max(now - arrived_at, self.minimal_backoff_time), self.maximal_backoff_time)
        eligible = now + backoff
        scan = math.ceil(eligible / self.queue_run_delay - 1e-9) * self.queue_run_delay
        if scan - arrived_at > self.maximal_queue_lifetime:
            return None
        return scan
