"""A server's sessions (Postfix's process limit, Dovecot's client limit) as slots that
cost nothing while one is free.

SimPy's Resource makes a request event, a condition and a release event for every
session, even when a slot is free at once — most sessions of most runs. Here a free slot
is taken and given back directly; only a connection that finds every slot busy waits,
for an event that the session leaving hands its slot to, in the order they came
(first come, first served, as the Resource does).
"""

from __future__ import annotations

from collections import deque

import simpy


class Slots:
    """``capacity`` sessions at once; the rest wait in the listen queue."""

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.used = 0
        self.waiting: deque[simpy.Event] = deque()

    def take(self) -> simpy.Event | None:
        """A slot now (None), or the event that grants one when a session leaves."""
        if self.used < self.capacity and not self.waiting:
            self.used += 1
            return None
        turn = self.env.event()
        self.waiting.append(turn)
        return turn

    def give_back(self) -> None:
        """A session left: its slot goes to the first connection waiting, if any."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.triggered:
                turn.succeed()
                return
        self.used -= 1

    def leave(self, turn: simpy.Event) -> None:
        """A waiting connection gave up (its client timed out) before its turn."""
        if turn.triggered:  # granted meanwhile, not yet used: hand it on
            self.give_back()
        else:
            self.waiting.remove(turn)
