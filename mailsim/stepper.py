"""Step through a run one protocol event at a time, as in Packet Tracer's simulation mode
(Capture/Forward), with the state of the world at that moment."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
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
    """``Stepper(scenario, seed)``: call :meth:`next_event` to advance by one event.
    ``scenario`` is a Scenario, a scenario file's path or a mapping, as for
    :func:`mailsim.run`."""

    def __init__(self, scenario: Scenario | str | Path | Mapping[str, Any], seed: int = 0) -> None:
        from mailsim import as_scenario
        from mailsim.rng import check_seed
        from mailsim.world import World

        scenario = as_scenario(scenario)
        self.world = World(scenario, check_seed(seed), fast_forward=False)  # an event a step
        self._limit = scenario.duration
        self.cursor = 0
        # What each session was for (submission, smtp, lmtp, pop3, dns): a session's
        # events may be read after it has closed.
        self.kinds: dict[int, str] = {}

    @property
    def finished(self) -> bool:
        return self.world.finished(self._limit)

    def next_event(
        self, protocol: str | None = None, message: str | None = None
    ) -> Snapshot | None:
        """The next recorded event, or None at the end. ``protocol`` keeps only the
        events of one protocol (``tcp``, ``tls``, ``dns``, ``smtp``, ``lmtp``, ``pop3``,
        ``https``) or the SMTP of one kind of session (``submission``); ``message`` only
        those that serve the message with this id."""
        recorder, env = self.world.recorder, self.world.env
        while True:
            while recorder.n_events <= self.cursor:
                if self.finished:
                    return None
                env.step()
                for number, session in self.world.open_sessions.items():
                    self.kinds.setdefault(number, session.service)
            index = self.cursor
            self.cursor += 1
            event = recorder.event_row(index)
            if self.matches(event, protocol, message):
                return self.snapshot(index, event)

    def matches(self, event: dict[str, Any], protocol: str | None, message: str | None) -> bool:
        if message is not None and message not in event["message"].split():
            return False
        if protocol is None or event["protocol"] == protocol:
            return True
        return event["protocol"] == "smtp" and self.kinds.get(event["session"]) == protocol

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
            sessions={
                **{n: session.label for n, session in world.open_sessions.items()},
                **{n: f"{session.label}, idle" for n, session in world.idle_sessions.items()},
            },
        )

    def result(self) -> Result:
        """The result of everything simulated so far."""
        from mailsim import world_result

        return world_result(self.world)
