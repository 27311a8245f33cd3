"""The simulation's clock: SimPy's Environment, with the one look-ahead the engine uses.

A session waits several times an exchange; when no other event is due before its wait
ends, nothing else can happen meanwhile, and the clock can move on at once instead of
through a Timeout event: the same times, the same random draws, the same outcomes, a
fraction of the cost. This is the only place that reads SimPy's internals (its current
time and its event queue); everywhere else the engine is plain SimPy.
"""

from __future__ import annotations

import simpy


class Clock(simpy.Environment):
    """``simpy.Environment`` plus :meth:`skip`."""

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

    def skip_to(self, at: float) -> bool:
        """Move the clock to ``at`` at once if no event is due before then or at it (a
        compiled session's run of waits, summed by the caller in the play's order)."""
        queue = self._queue
        if not queue or queue[0][0] > at:
            self._now = at
            return True
        return False
