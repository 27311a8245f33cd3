"""Step through a run one protocol event at a time, as in Packet Tracer's simulation mode
(Capture/Forward), with the state of the world at that moment."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mailsim.result import Result
from mailsim.scenario import Scenario


@dataclass(frozen=True)
class Snapshot:
    """One protocol event and the world's state once it has happened."""

    index: int
    event: dict[str, Any]
    time: float
    queues: dict[str, list[str]]  # MTA → message ids waiting there
    mailboxes: dict[str, list[str]]  # address → message ids in the mailbox
    sessions: dict[int, str]  # open session → "client → server (protocol)"

    def __str__(self) -> str:
        e = self.event
        code = f" [{e['code']}]" if e["code"] else ""
        return (
            f"#{self.index:<4} t={e['time']:.6f}s → {e['arrive']:.6f}s  "
            f"{e['src']} → {e['dst']}  {e['protocol']}{code}  {e['detail']}"
        )


class Stepper:
    """``Stepper(scenario, seed)``: call :meth:`next_event` to advance by one event."""

    def __init__(self, scenario: Scenario, seed: int = 0) -> None:
        from mailsim.world import World

        self.world = World(scenario, seed, fast_forward=False)  # one event per step
        self._limit = scenario.duration
        self.cursor = 0

    @property
    def finished(self) -> bool:
        return self.world.finished(self._limit)

    def next_event(self, protocol: str | None = None) -> Snapshot | None:
        """The next recorded event (only of ``protocol`` if given), or None at the end."""
        recorder, env = self.world.recorder, self.world.env
        while True:
            while recorder.n_events <= self.cursor:
                if self.finished:
                    return None
                env.step()
            index = self.cursor
            self.cursor += 1
            event = recorder.event_row(index)
            if protocol is None or event["protocol"] == protocol:
                return self.snapshot(index, event)

    def __iter__(self) -> Iterator[Snapshot]:
        while (snap := self.next_event()) is not None:
            yield snap

    def snapshot(self, index: int, event: dict[str, Any]) -> Snapshot:
        world = self.world
        return Snapshot(
            index=index,
            event=event,
            time=world.env.now,
            queues={name: [c.message.id for c in mta.queue] for name, mta in world.mtas.items()},
            mailboxes={
                user: [c.message.id for c in box]
                for pop in world.pops.values()
                for user, box in pop.mailboxes.items()
            },
            sessions=dict(world.open_sessions),
        )

    def result(self) -> Result:
        """The result of everything simulated so far."""
        from mailsim import world_result

        return world_result(self.world)
