"""Where the CPU time of a run goes, by kind of session.

    python benchmarks/sessions.py --messages 3000

runs the world of ``throughput.py`` at ``outcomes`` and times every resumption of every
session's play (the session's own code, its dialogue, its server and the callbacks it
makes), by kind: relay, submission, LMTP, POP3 with mail, POP3 finding the mailbox empty,
IMAP, HTTPS — and counts those replayed from a template (:mod:`mailsim.compiled`). What
is left is outside sessions: SimPy's loop, traffic, queues, DNS. The
timing wraps each resumption, which adds a little to every session: compare the kinds
with one another, and runs with runs, rather than with ``throughput.py``'s figures.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable, Generator
from typing import Any

from throughput import world

from mailsim import session
from mailsim.scenario import validate
from mailsim.world import World


def kind_of(s: session.Session) -> str:
    """The session's kind, as the table names it."""
    if s.protocol == "smtp":
        return "submission" if s.service == "submission" else "relay"
    if s.protocol == "pop3":
        return "pop3 with mail" if s.message else "pop3, empty"
    return s.protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--users", type=int, default=20, help="per domain")
    args = parser.parse_args()

    spent: Counter[str] = Counter()
    count: Counter[str] = Counter()
    replays: Counter[str] = Counter()
    seen: set[int] = set()  # a quiet replay handed over at a busy slot then plays
    clock = time.process_time

    def timed(play: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Any]:
        def timed_play(
            self: session.Session, *args: Any, **kwargs: Any
        ) -> Generator[Any, Any, Any]:
            kind = kind_of(self)
            if self.id not in seen:
                seen.add(self.id)
                count[kind] += 1
            inner = play(self, *args, **kwargs)
            value = None
            while True:
                began = clock()
                try:
                    event = inner.send(value)
                except StopIteration as stop:
                    spent[kind] += clock() - began
                    replays[kind] += self.replayed
                    return stop.value
                spent[kind] += clock() - began
                value = yield event

        return timed_play

    # Sessions play, or (checks that find the mailbox empty) replay quietly.
    session.Session.play = timed(session.Session.play)  # type: ignore[method-assign]
    session.Session.replay_quietly = timed(session.Session.replay_quietly)  # type: ignore[method-assign]
    scenario = validate(world(args.domains, args.users, args.messages))
    run = World(scenario, 0, detail="outcomes")
    began = clock()
    run.run()
    total = clock() - began
    print(f"{args.messages:,} messages at outcomes: {total:.2f} s of CPU")
    print(f"{'kind':16} {'sessions':>9} {'replayed':>9} {'CPU':>8} {'each':>9}")
    for kind, seconds in spent.most_common():
        each = 1e6 * seconds / count[kind]
        print(f"{kind:16} {count[kind]:9,} {replays[kind]:9,} {seconds:7.2f}s {each:7.0f}µs")
    inside = sum(spent.values())
    print(f"{'outside sessions':16} {'':9} {'':9} {total - inside:7.2f}s")


if __name__ == "__main__":
    main()
