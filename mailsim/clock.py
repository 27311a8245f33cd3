"""The simulation's clock: SimPy's Environment, with the one look-ahead the engine uses.

A session waits several times an exchange; when no other event is due before its wait
ends, nothing else can happen meanwhile, and the clock can move on at once instead of
through a Timeout event: the same times, the same random draws, the same outcomes, a
fraction of the cost. This is the only place that reads SimPy's internals (its current
time and its event queue); everywhere else the engine is plain SimPy.
"""

from __future__ import annotations

import math

import simpy


class Clock(simpy.Environment):
    """``simpy.Environment`` plus :meth:`skip` and :meth:`skip_run`."""

    def skip(self, seconds: float) -> bool:
        """Move the clock ``seconds`` on at once if no event is due before then, and say
        whether it did; if not, the caller yields ``timeout(seconds)`` as usual. An event
        due at that very moment counts as due before: ties keep SimPy's order."""
        at = self._now + seconds
        queue = self._queue
        if not queue or queue[0][0] > at:
            self._now = at
            return True
        return False

    def skip_run(self, waits: tuple[float, ...], first: int, clock: list[float]) -> int:
        """Move the clock through ``waits[first:]``, one after another, for as long as no
        event is due before the next one ends (:meth:`skip`, wait by wait, without a
        call for each), and append each time reached to ``clock``; return the index of
        the first wait the caller must yield a timeout for (``len(waits)`` when none).
        A compiled session's run of waits: nothing else runs meanwhile, so the first
        event due is the same for every wait of the run."""
        now, queue = self._now, self._queue
        due = queue[0][0] if queue else math.inf
        end = len(waits)
        i = first
        while i < end:
            at = now + waits[i]
            if due <= at:
                break
            now = at
            clock.append(at)
            i += 1
        self._now = now
        return i
