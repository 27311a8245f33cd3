"""What a run will cost, known before it starts (DESIGN.md principle 7: bounded).

A scenario of 40 lines can ask for a billion messages (``rate: 1000000``), a hundred
thousand mailboxes polled every minute for a year, or a sweep of a hundred million runs.
Before anything is simulated, :func:`estimate` counts the work from the scenario's own
numbers — messages (the expected count of each traffic generator's Poisson arrivals over
its hours), mail sessions, protocol events at the chosen detail — and converts it to
memory and time with the costs measured in ``benchmarks/README.md``. :func:`check`
refuses, in one line that gives the estimate and the way on, a run that cannot finish or
cannot fit: more messages than ``max_messages`` (``--max-messages``), more sessions than
ten times that, or more memory than half of this machine's.

The estimate is an order of magnitude, not a promise: retries after failures, bounces and
the spread of Poisson arrivals are not counted (a busy office's 17,000 messages are
estimated within a few per cent; see ``tests/test_budget.py``).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailsim.compiled import compilable
from mailsim.errors import InputError, Problem
from mailsim.protocols.http import KEEPALIVE
from mailsim.protocols.imap import IDLE_RENEWAL

if TYPE_CHECKING:
    from mailsim.model import User
    from mailsim.scenario import Scenario

# A million messages: the largest run measured (5.6 min and 300 MiB at --detail outcomes,
# benchmarks/README.md); more is refused unless asked for with --max-messages.
MAX_MESSAGES = 1_000_000
# Sessions (submissions, relays, DNS queries, POP3 polls) per allowed message: the
# throughput world has 8.1–8.8; ten leaves room and stops a year of idle polls.
SESSIONS_PER_MESSAGE = 10
# A sweep: at most this many runs, and this many grid points (each is loaded and checked
# before the first run starts; a curve of a thousand points is already unreadable).
MAX_RUNS = 100_000
MAX_GRID_POINTS = 1_000
# A sweep may send this many times --max-messages in all, over all its runs.
SWEEP_FACTOR = 10
# Worker processes of a sweep per core: more only take turns, and each holds a run.
WORKERS_PER_CORE = 4

# Costs measured on the project's 2-core machine (benchmarks/README.md; the busy office
# for memory). CPU: a session played step by step costs 240 µs at outcomes (2.14 s /
# 8,857 sessions of the throughput world, 2026-12-01, its building included; 80–470 µs
# a session in the small shipped scenarios, 2026-12-05), a quarter more at full. Where
# sessions are compiled (mailsim.compiled: SMTP, LMTP and POP3, not IMAP or webmail),
# that is the first plays of each kind, about three a person (the throughput world 2.5 at
# outcomes and 4.7 at full, where a kind is played three times before it is kept; the
# busy office 1.1); the later ones are replayed, in 45 µs at outcomes (a million
# messages: 333 s for 8.1 million sessions, 2026-12-05) and 1.8 times that at full,
# which records their every step (fitted 2026-12-05 to the throughput world's 10,000
# messages, 6.4 s: 1.8; the busy office, 5.1 s, takes 1.25). A world of mostly empty POP3
# checks is overestimated: such a replay takes about 11 µs at outcomes. Events per
# session (149,412 / 8,857); bytes kept per event at full (events table, copies with
# their Received stamps), per copy at hops and full, per finished message at outcomes;
# the interpreter with its libraries; the tables built for --out and --plots (pandas:
# about 240 B per event at full).
SECONDS_PER_PLAY = 240e-6
SECONDS_PER_REPLAY = 45e-6
KINDS_PER_PERSON = 3
FULL_SLOWDOWN = 1.25
FULL_REPLAY_SLOWDOWN = 1.8
EVENTS_PER_SESSION = 17
# A web page's refresh on the connection it keeps is a GET and its 200: two events, not a
# session's seventeen (the connection is opened once).
REFRESH_SHARE = 2 / EVENTS_PER_SESSION
BYTES_PER_EVENT = 120
BYTES_PER_COPY = 3_000
BYTES_PER_ROW = 250
BYTES_BASE = 130 * 2**20
BYTES_PER_TABLE_EVENT = 240
# A mail user in the world (account, mailbox, poll process: 97 MB for 100,000 users), and
# a session under way (its dialogue, TLS and TCP state: 100,000 polls at the same moment
# take 367 MB more) — measured with tracemalloc.
BYTES_PER_USER = 1_000
BYTES_PER_OPEN_SESSION = 3_700
# Sessions a copy takes on its way: submission, a DNS query, a relay, LMTP, the POP3
# retrieval (counted with the polls).
SESSIONS_PER_COPY = 4
# After the last message is sent, the run goes on until it is read: the longest poll
# interval, plus the Postfix back-off's longest wait (4,000 s) when servers can fail.
MAXIMAL_BACKOFF = 4000.0


@dataclass(frozen=True)
class Estimate:
    """The expected work of one run: counts, then memory and CPU time."""

    messages: float
    copies: float
    polls: float
    sessions: float
    events: float
    memory: float  # bytes at the peak
    seconds: float  # CPU seconds on a machine like the project's
    detail: str

    def describe(self) -> str:
        """``about 17,000 messages, 84,000 sessions, 350 MB and 31 s``."""
        return (
            f"about {rounded(self.messages)} messages, {rounded(self.sessions)} sessions,"
            f" {_bytes(self.memory)} and {_seconds(self.seconds)}"
        )


def rounded(value: float) -> str:
    """A count to two significant figures, with thousands separated: an estimate
    should not look exact."""
    if math.isinf(value) or math.isnan(value):
        return "unbounded"
    if value < 100:
        return f"{value:,.0f}"
    digits = math.floor(math.log10(value)) - 1
    return f"{round(value, -digits):,.0f}"


def _bytes(value: float) -> str:
    if value >= 2**30:
        return f"{rounded(value / 2**30)} GB"
    return f"{rounded(value / 2**20)} MB"


def _seconds(value: float) -> str:
    from mailsim.units import format_duration

    if value > 86400 * 365:
        return f"{rounded(value / (86400 * 365))} years"
    if value < 60:
        return "under a second" if value < 1 else f"{value:.0f} s"
    return format_duration(value)


def estimate(scenario: Scenario, detail: str = "full", tables: bool = False) -> Estimate:
    """The work of running ``scenario`` at ``detail``; ``tables``: the events, hops and
    messages tables will be built (``--out``, ``--plots``)."""
    from mailsim.traffic import expected_count, seconds_into_day

    duration = scenario.duration
    clock = seconds_into_day(scenario.start)
    messages = float(len(scenario.messages))
    copies = float(sum(len(scenario.addresses(m.to)) for m in scenario.messages))
    last = max((m.at for m in scenario.messages), default=0.0)
    for traffic in scenario.traffic:
        stop = min(traffic.stop if traffic.stop is not None else duration, duration)
        senders = len(scenario.addresses(traffic.sender))
        count = senders * expected_count(traffic.rate, traffic.start, stop, traffic.profile, clock)
        messages += count
        copies += count  # one recipient each
        if count > 0:
            last = max(last, stop)
    accounts = scenario.accounts
    polling = [user for user in accounts.values() if user.mailbox]
    # A phone on IMAP IDLE is told of mail at once (no tail to wait for) and opens a
    # session only at each renewal; every other reader checks every `poll`.
    tail = max((u.poll for u in polling if u.retrieval != "imap-idle"), default=0.0)
    if scenario.faults:
        tail += MAXIMAL_BACKOFF
    horizon = min(duration, last + tail) if copies else 0.0
    polls_of = {
        address: max(0.0, horizon - (user.poll_start if user.poll_start != "spread" else 0.0))
        / (IDLE_RENEWAL if user.retrieval == "imap-idle" else user.poll)
        * (REFRESH_SHARE if _keeps_connection(user) else 1.0)
        for address, user in accounts.items()
        if user.mailbox
    }
    polls = sum(polls_of.values())
    sessions = SESSIONS_PER_COPY * copies + polls
    # Users who poll at the same moments (no `poll_start: spread`) are sessions at once.
    herd = max(
        Counter((u.poll_start, u.poll) for u in polling if u.poll_start != "spread").values(),
        default=0,
    )
    held = BYTES_PER_USER * len(accounts) + BYTES_PER_OPEN_SESSION * herd
    events = EVENTS_PER_SESSION * sessions
    if detail == "full":
        memory = BYTES_BASE + held + BYTES_PER_EVENT * events + BYTES_PER_COPY * copies
        if tables:
            memory += BYTES_PER_TABLE_EVENT * events
    elif detail == "hops":
        memory = BYTES_BASE + held + BYTES_PER_COPY * copies
    else:
        memory = BYTES_BASE + held + BYTES_PER_ROW * copies
    played = sessions
    if compilable(scenario):  # IMAP and webmail sessions are played all the same
        uncompiled = sum(n for a, n in polls_of.items() if accounts[a].retrieval != "pop3")
        played = uncompiled + min(sessions - uncompiled, KINDS_PER_PERSON * len(accounts))
    full = detail == "full"
    seconds = SECONDS_PER_PLAY * played * (FULL_SLOWDOWN if full else 1.0)
    seconds += SECONDS_PER_REPLAY * (sessions - played) * (FULL_REPLAY_SLOWDOWN if full else 1.0)
    return Estimate(messages, copies, polls, sessions, events, memory, seconds, detail)


def memory_budget() -> float:
    """Half of this machine's memory: a run must leave room for everything else."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return total / 2


def check(
    scenario: Scenario,
    name: str,
    detail: str = "full",
    max_messages: int = MAX_MESSAGES,
    tables: bool = False,
) -> Estimate:
    """The estimate of a run that can finish and fit; InputError saying the estimate and
    how to go on otherwise. ``name`` is the scenario's file, for the message."""
    work = estimate(scenario, detail, tables)
    if work.messages > max_messages:
        raise InputError(
            [
                Problem(
                    name,
                    "traffic" if scenario.traffic else "messages",
                    f"this run would send {rounded(work.messages)} messages"
                    f" ({_seconds(work.seconds)} of work), more than the {max_messages:,}"
                    " allowed: shorten `duration`, lower the traffic's `rate` or its"
                    " senders, or allow more with --max-messages",
                )
            ]
        )
    sessions = SESSIONS_PER_MESSAGE * max_messages
    if work.sessions > sessions:
        raise InputError(
            [
                Problem(
                    name,
                    "users",
                    f"this run would play {rounded(work.sessions)} mail sessions, of them"
                    f" {rounded(work.polls)} POP3 polls ({_seconds(work.seconds)} of work),"
                    f" more than the {sessions:,} allowed: shorten `duration`, poll less"
                    " often (`poll`), or allow more with --max-messages",
                )
            ]
        )
    budget = memory_budget()
    if work.memory > budget:
        lighter = estimate(scenario, "outcomes")
        way = (
            f"--detail outcomes needs about {_bytes(lighter.memory)}"
            if detail != "outcomes" and lighter.memory <= budget
            else "shorten `duration` or send less"
        )
        raise InputError(
            [
                Problem(
                    name,
                    "",
                    f"this run would need {_bytes(work.memory)} at --detail {detail}"
                    f" ({rounded(work.messages)} messages), more than half of this"
                    f" machine's memory ({_bytes(budget)}): {way}",
                )
            ]
        )
    return work


def _keeps_connection(user: User) -> bool:
    """A browser's page refreshed within the web server's keep-alive."""
    return user.retrieval == "webmail" and user.poll <= KEEPALIVE
