"""Compiled sessions: a session whose course a key fixes is played for real once; the
later sessions of that key replay what it did.

Most sessions of a long run repeat one another exactly. A user whose program checks an
empty mailbox every few minutes goes through the same steps, with the same bytes over the
same links, so the same waits, every time. Playing the dialogue, the server's state
machine and the network step by step costs about 100 µs a session; replaying the waits
and the few records and callbacks that touch shared state costs a fraction of that, with
the same times to the last bit: the clock moves by the same additions in the same order,
at once as far as nothing else is due (:meth:`mailsim.clock.Clock.skip_run`). Below full
detail the replay of an empty check only waits and holds a server slot: no server,
dialogue or callbacks are made for it (:meth:`Template.quiet`).

A message session repeats another up to its addresses and queue id: the same lengths
over a path as long, the same verdicts, give the same waits (the keys are in
:mod:`mailsim.agents.keys`). Its replay lets the server answer the message itself from
the state the commands leave (:class:`Resume`), so the queue id, the recipients and the
sender checks are the session's own. The client's result is rebuilt from the template's
*outline* of it: the replies to the message by their place, the recipients by theirs.
Where that rebuild would not give the play's own result back, the template keeps no
outline and its replays *drive* the dialogue instead: they send it the replies the play
was sent, and it builds its result. A play whose result holds a reply naming its own
addresses (a refused recipient) makes no template, and its key is not tried again.

At full detail, where every step is recorded, each record of a replay takes its texts
from where the play took them (:data:`Source`): a command line from its form, the
places the client's grammar gives the session's own texts (``MAIL FROM:<its sender>``,
the login it sends: :meth:`Resume.form`), filled with this session's; a reply to the
message from this session's server; the rest — TCP, TLS, the server's capabilities —
from the template, but for the server's name that an SMTP or LMTP greeting and reply to
EHLO begin with, which is this session's server's. So a replay at full detail plays no
more of the dialogue than one at outcomes, and writes the records of a run of waits as
it goes through the run.
Each record keeps its direction, not its two machines: a replay puts its own client
and server there. So the keys hold no names, and a day of mail between many machines
and servers replays as few templates as where nothing is recorded. A play whose copied
records hold one of the session's own texts anywhere else (its addresses, the names of
its server or client, as a server whose reply to MAIL names the sender would) makes no
template; a short name that stands in a fixed text by chance (a machine called "Read",
in "Ready to start TLS") costs its key's template too.

A template is used only where its key can vouch for the outcome: no faults, no
eavesdroppers, no jitter or loss on the way — the things that make two sessions of one
key differ. What still differs, a free server slot or a wait in the listen queue, is
handled where it happens: a connection that finds every slot busy waits in the listen
queue as a play does; everything after the wait comes later by as long, which changes
nothing unless the connection's deadline, set before the wait, is now too close — closer
than its play met it (:attr:`Template.margin`), less :data:`SLACK` — or has passed: the
session then goes on as real play from the end of the wait. A play that gave up, or met
a deadline closer than :data:`SLACK`, makes no template. In check mode every session of
a known key is played for real as well and compared with its template — the records a
replay would copy text for text, the rest with the session's own names put as
placeholders — and its result with the one its template's outline rebuilds for it, so a
key that forgets a field fails a test instead of changing a result silently. (A
placeholder is put wherever the name stands, so a name that is also a word of a fixed
reply can be reported though a replay is exact.)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mailsim.scenario import Scenario

WAIT, RECORD, ON_SERVER, ON_CLIENT, ARRIVED, SLOT, SENT, ANSWERED = range(8)
# In a compiled plan: a run of waits, a time kept, the end, the dialogue started
RUN, MARK, END, START = -1, -2, -3, -4
SLACK = 1.0  # seconds: a deadline met by less than this does not vouch for later plays
SIGHTINGS = 3  # at full detail, a message session's key is scripted at its third play
COSTS = ("network", "tls", "server", "queue")
_QUIET = (RUN, MARK, SLOT, END)  # the ops of a plan that only waits and holds a slot


# Where a record's texts come from in a replay at full detail: the template's own (None),
# the i-th reply to the message, made anew ("content", i), the template's reply that
# begins with its server's name, with this session's server's name in its place ("host",
# its length), or a command line made from this session's own texts ("line", its
# str.format pattern over Resume.own(), whether the transcript shows the template's
# text instead: AUTH's and PASS's secrets are masked there).
Source = tuple[str, int] | tuple[str, str, bool] | None


def line_source(parts: tuple[str | int, ...], shown: bool) -> Source:
    """How a replay makes a command line whose literal texts and places in
    :meth:`Resume.own` are ``parts`` (:meth:`Resume.form`): a pattern for
    ``str.format``, or None where the line holds none of the session's own texts and
    the template's is copied. ``shown``: the transcript shows a fixed text instead."""
    if not shown and all(type(part) is str for part in parts):
        return None
    pattern = "".join(
        part.replace("{", "{{").replace("}", "}}") if type(part) is str else f"{{{part}}}"
        for part in parts
    )
    return ("line", pattern, shown)


def begins_with_host(reply: Any, detail: str, wire: str | None, host: str) -> Source:
    """Does ``reply``, a greeting or a reply to EHLO, begin with its server's name
    ``host``, as RFC 5321 has them do (§4.2, §4.1.1.1)? Then its texts ``detail`` and
    ``wire`` hold the name right after the code and a space or hyphen, and a replay puts
    its own server's name there (:func:`with_host`): ``("host", len(host))``; else
    None, and the reply's texts are the template's."""
    lines = reply.lines
    if not host or not lines or lines[0].split(" ", 1)[0] != host:
        return None
    at, end = len(reply.code) + 1, len(reply.code) + 1 + len(host)
    if detail[at:end] != host or (wire is not None and wire[at:end] != host):
        return None
    return ("host", len(host))


# A template's reply from each of a few servers, thousands of times in a run: kept,
# within a bound (a notebook runs world after world in one process).
@functools.lru_cache(maxsize=8192)
def with_host(row: tuple[Any, ...], cut: int, host: str) -> tuple[Any, ...]:
    """A reply's record ``row`` (protocol, step, code, detail, size, wire) whose texts
    begin, after the code and one character, with a server's name ``cut`` long: with
    ``host`` there instead."""
    protocol, step, code, detail, size, wire = row
    at = len(code) + 1
    detail = detail[:at] + host + detail[at + cut :]
    if wire is not None:
        wire = wire[:at] + host + wire[at + cut :]
    return protocol, step, code, detail, size, wire


def compilable(scenario: Scenario) -> bool:
    """Can the world's sessions be compiled? Only where nothing makes two sessions of
    one key differ: no faults, no eavesdroppers, no jitter on the way."""
    return not (
        scenario.faults or scenario.eavesdroppers or any(link.jitter for link in scenario.links)
    )


class Resume(Protocol):
    """What a message session gives to be replayed: the replies to the message cannot
    come from the template — they name the session's own queue id and recipients — so
    the server makes them anew, from the state the play left it in; the client's result
    is rebuilt from the template's outline of it, or its dialogue is driven."""

    def snapshot(self) -> Hashable:
        """The server's state at the end of the message that the key does not fix
        alone (TLS in use, logged in): kept in the template."""
        ...

    def restore(self, snapshot: Hashable) -> list[Any]:
        """Put the server in the state a play leaves it in at the end of the message and
        let it answer the message: the replies, and its side effects, as a play's."""
        ...

    def escapes(self, result: Any, content: list[Any]) -> bool:
        """Does ``result`` hold a reply, other than ``content``, that names the session's
        own addresses or queue id? Then a replay could not give it: no template."""
        ...

    host: str  # the server's name, which its greeting and reply to EHLO begin with

    def own(self) -> tuple[str, ...]:
        """The texts that are this session's own (addresses, password, queue id, the
        server's and client's names), in a fixed order: check mode compares plays
        without them, and no key holds them, so a template whose copied records hold
        one is not kept."""
        ...

    def form(self, line: str) -> tuple[str | int, ...]:
        """Command ``line`` of this session's client as literal texts and, where the
        client's grammar puts one of the session's own texts (EHLO's name, an address
        after MAIL FROM or RCPT TO, a login), its place in :meth:`own`: a replay at full
        detail makes its own line from it (:func:`line_source`). A place in the
        grammar, not a search for the text: a name that stands in a fixed text by
        chance stays fixed."""
        ...

    def watches(self, step: Any) -> bool:
        """Do the session's callbacks act at ``step``? A replay calls them only there."""
        ...

    def outline(self, result: Any, content: list[Any]) -> Hashable | None:
        """``result`` as :meth:`rebuild` makes it again for another session of the key,
        without playing the dialogue: the replies to the message by their place in
        ``content``, the recipients by their place in the envelope; or None, and the
        replays drive the dialogue. An outline whose rebuild does not give ``result``
        back is not kept (:meth:`Templates.keep`)."""
        ...

    def rebuild(self, outline: Hashable, content: list[Any]) -> Any:
        """This session's result from a template's ``outline`` and its own replies to
        the message: what its dialogue would have returned."""
        ...


class TemplateMismatch(AssertionError):
    """In check mode: a session of a known key did not do what its template does."""


@dataclass
class Script:
    """What one real play did, op by op, while it is being played.

    Times are kept as positions: position *k* is the clock after the session's *k*-th
    wait, so a replay starting at another moment finds them again by the same additions."""

    start: float
    ops: list[tuple[Any, ...]] = field(default_factory=list)
    clock: list[float] = field(default_factory=list)
    spoiled: str = ""  # why this play cannot be a template ("" if it can)
    deadline: int = 0  # the position where the connection's first deadline was set
    drives: bool = False  # a replay drives the dialogue: the replies it was sent are kept
    content: list[Any] = field(default_factory=list)  # the replies to the message
    own: tuple[str, ...] = ()  # a driving play's own texts (Resume.own)
    connected: float = math.nan  # the deadline the connection set (for its greeting)
    # How long before that deadline the play met it, at the closest: a replay that waits
    # in the listen queue meets it later by as long (Template.margin).
    margin: float = math.inf

    def __post_init__(self) -> None:
        self.clock.append(self.start)

    def waited(self, seconds: float, cost: str, now: float) -> None:
        self.ops.append((WAIT, seconds, cost))
        self.clock.append(now)

    def position(self, time: float) -> int:
        """The latest position at ``time``; spoils the script if no position has it."""
        clock = self.clock
        for i in range(len(clock) - 1, -1, -1):
            if clock[i] == time:
                return i
            if clock[i] < time:
                break
        self.spoil("a time between waits")
        return 0

    def recorded(
        self, times: tuple[float, float], row: tuple[Any, ...], source: Source, outward: bool
    ) -> None:
        """A record of ``row`` (its columns after the two ends) from the client to the
        server if ``outward``, else back; with ``source``, its texts are made anew by
        each replay from the session's own step or reply (see :data:`Source`)."""
        at, to = self.position(times[0]), self.position(times[1])
        self.ops.append((RECORD, at, to, row, source, outward))

    def names(self, texts: tuple[str, ...]) -> bool:
        """Does a record whose texts a replay would copy hold one of ``texts``? (As a
        substring: a short name inside a longer word counts, and costs a template.)"""
        copied = "\0".join(  # no text holds a NUL: none is found across two
            text
            for op in self.ops
            if (row := _copied(op)) is not None
            for text in row[3:6:2]  # the detail and the text on the wire
            if text
        )
        return any(t in copied for t in texts if t)

    def spoil(self, why: str) -> None:
        self.spoiled = self.spoiled or why

    def close_call(self, deadline: float, at: float) -> None:
        """A deadline was checked against ``at``: too close, and a replay starting at
        another moment might fall on the other side of it."""
        if deadline - at < SLACK:
            self.spoil("a deadline met by less than SLACK")
        if deadline == self.connected:
            self.margin = min(self.margin, deadline - at)


@dataclass
class Template:
    """A compiled session: its ops, and the outcome the session's caller is given."""

    key: Hashable
    ops: tuple[tuple[Any, ...], ...]
    result: Any
    dead: Any
    drives: bool = False
    own: tuple[str, ...] = ()
    # How long before the connection's deadline its play met it, at the closest: a replay
    # that waits in the listen queue for less than this less SLACK goes on replaying.
    margin: float = math.inf
    _plans: dict[bool, tuple[tuple[Any, ...], ...]] = field(default_factory=dict)
    _quiet: dict[bool, bool] = field(default_factory=dict)
    shared: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> Any:
        """The ops as check mode compares them: a driving template's with the session's
        own texts (addresses, queue id, host names) put as placeholders."""
        return _shape(self.ops, self.own) if self.drives else self.ops

    def plan(self, full: bool) -> tuple[tuple[Any, ...], ...]:
        """The ops as a replay runs them: consecutive waits merged into runs, each
        callback with the session's costs at that moment, the replies' arrivals at the
        end (nobody asks for them meanwhile). At full detail a run holds the records
        between its waits, each with the number of the run's waits before it: nothing
        but waits and records comes between them. The costs are summed here in the
        play's own order, so they equal the play's. In a driving template the replies
        to the message are None: each replay makes its own. One with an outline sends
        the dialogue nothing; a replay that drives the dialogue starts it (START)
        before its first reply is sent."""
        plan = self._plans.get(full)
        if plan is not None:
            return plan
        assert self.ops, "a template kept without its ops has only its run's plan"
        plan = self._plans[full] = self._compile(full)
        self.ops = ()  # replayed, so not in check mode, which compares ops: the plan alone
        return plan

    def quiet(self, full: bool) -> bool:
        """Does a replay of the plan only wait and hold a server slot: no records, no
        callbacks, no dialogue (a check that finds the mailbox empty, at outcomes and
        hops)? Such a replay needs nothing made for it (:meth:`Session.replay_quietly`)."""
        quiet = self._quiet.get(full)
        if quiet is None:
            quiet = self._quiet[full] = all(
                op[0] in _QUIET and not (op[0] == RUN and op[2]) for op in self.plan(full)
            )
        return quiet

    def _compile(self, full: bool) -> tuple[tuple[Any, ...], ...]:
        """The plan (see :meth:`plan`), made from the ops."""
        costs = dict.fromkeys(COSTS, 0.0)
        marks = {op[1] for op in self.ops if op[0] == SLOT}  # where a deadline was set
        out: list[tuple[Any, ...]] = []
        run: list[float] = []
        writes: list[tuple[Any, ...]] = []  # the run's records, each after its waits
        arrived: list[tuple[int, Any]] = []  # no one reads them before the end: set then
        position = 0
        content: Any = None  # the replies to the message: made anew by each replay
        started = False  # the dialogue, by a START before the first SENT

        def anew(replies: Any) -> Any:  # None stands for the replies a replay makes
            return None if replies is content else replies

        for op in self.ops:
            kind = op[0]
            if kind == ARRIVED:
                arrived.append((position, anew(op[1])))
                continue
            if kind == ANSWERED:
                content = op[1]
                out.append((ANSWERED, op[2]))
                continue
            if kind == SENT:  # without an outline, the replay drives the dialogue
                if self.result is None:
                    out += [(SENT, anew(op[1]))] if started else [(START,), (SENT, anew(op[1]))]
                    started = True
                continue
            if kind == WAIT:
                costs[op[2]] += op[1]
                run.append(op[1])
                position += 1
                if position in marks:
                    out += [self._run(run, writes), (MARK,)]
                    run, writes = [], []
                continue
            if kind == RECORD:
                if full:  # after the waits of the run so far
                    writes.append((len(run), *op[1:]))
                continue
            if run or writes:
                out.append(self._run(run, writes))
                run, writes = [], []
            if kind in (ON_SERVER, ON_CLIENT):
                out.append((kind, op[1], anew(op[2]), dict(costs)))
            elif kind == SLOT:
                out.append((SLOT, op[2], dict(costs)))
            else:
                out.append(op)
        if run or writes:
            out.append(self._run(run, writes))
        out.append((END, dict(costs), tuple(arrived)))
        return tuple(out)

    def _run(self, waits: list[float], writes: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        run = (RUN, tuple(waits), tuple(writes))
        return self.shared.setdefault(run, run)


class Templates:
    """The templates of one run, by key, and whether (and how strictly) they are used."""

    def __init__(self, on: bool, check: bool = False, full: bool = True) -> None:
        self.on = on
        self.check = check
        self.full = full  # the run's level of detail: the one plan its replays need
        self.known: dict[Hashable, Template] = {}
        self.spoiled: set[Hashable] = set()  # keys whose plays cannot be templates
        # One copy of each record, wait and run of waits, whichever templates hold it:
        # at full detail a world of many keys keeps thousands of templates.
        self.shared: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.replayed = 0  # sessions replayed to their end, for the benchmarks' figures
        self.handed = 0  # replays handed over to real play at a busy server slot
        self.queued = 0  # replays that waited in the listen queue and went on replaying
        # At full detail: how many times a key was played, unscripted, by its hash (a
        # key holds objects the garbage collector would walk; two keys of one hash are
        # at worst scripted early).
        self.seen: dict[int, int] = {}

    def quiet(self, key: Hashable) -> Template | None:
        """The template of ``key`` if a replay of it only waits and holds a slot
        (:meth:`Template.quiet`); None if the session must be played, or replayed with
        its dialogue and server (in check mode, every session is played)."""
        if not self.on or self.check:
            return None
        template = self.known.get(key)
        return template if template is not None and template.quiet(self.full) else None

    def worth(self, key: Hashable) -> bool:
        """Is a play of a message session's ``key`` worth scripting? At full detail a
        scripted play costs a fifth more than a play, and a replay saves less (it records
        every step too), and a template keeps its records: a key is scripted at its
        :data:`SIGHTINGS`-th play, so that the many keys a large world plays once or
        twice (a relay between two offices whose latency no other pair shares) cost
        nothing. (Scripting at the second play instead: no faster, in the benchmark
        world or busy-office, 2026-12-05.)"""
        if not self.full:
            return True
        h = hash(key)
        seen = self.seen[h] = self.seen.get(h, 0) + 1
        return seen >= SIGHTINGS

    def keep(
        self, key: Hashable, script: Script, result: Any, dead: Any, resume: Resume | None = None
    ) -> None:
        """A play of ``key`` has ended: keep it as the key's template, or in check mode
        compare it with the template kept. A driving template keeps its result's outline
        (:meth:`Resume.outline`), from which each replay rebuilds its own; or None, and
        its replays get theirs from the dialogue."""
        if script.spoiled:
            if script.drives and key not in self.known:
                self.spoiled.add(key)
            return
        if key in self.spoiled:  # an overlapping play of it was spoiled: always played
            return
        known = self.known.get(key)
        if known is not None and not self.check:  # played alongside the first: kept already
            return
        played = result
        if script.drives:  # an outline that does not give the play's result back: none
            assert resume is not None
            result = resume.outline(result, script.content)
            if result is not None and resume.rebuild(result, script.content) != played:
                result = None
        shared = self.shared.setdefault  # the records and waits many templates hold alike
        ops = tuple(shared(op, op) if op[0] in (WAIT, RECORD) else op for op in script.ops)
        made = Template(
            key, ops, result, dead, script.drives, script.own, script.margin, shared=self.shared
        )
        if known is None:  # its plan is made when it is first replayed
            self.known[key] = made
            return
        if made.shape != known.shape or dead != known.dead:
            raise TemplateMismatch(f"session key {key!r}: {_first_difference(known, made)}")
        if not known.drives and result != known.result:
            raise TemplateMismatch(f"session key {key!r}: the result {result!r}")
        if known.drives and known.result is not None:  # what a replay would return
            rebuilt = resume.rebuild(known.result, script.content)  # type: ignore[union-attr]
            if rebuilt != played:
                raise TemplateMismatch(
                    f"session key {key!r}: rebuilt {rebuilt!r}, played {played!r}"
                )


def _copied(op: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The texts of a record that a replay copies from its template, with the server's
    name that a greeting begins with left out (a NUL in its place); None for another op,
    or a record whose texts each replay makes anew, or makes from the client's grammar
    (a command line with the session's own texts: its form and masked text are fixed
    where a name may stand by chance, PASS ******** for a password of eight stars)."""
    if op[0] != RECORD:
        return None
    source = op[4]
    if source is None:
        return op[3]
    if source[0] == "host":
        return with_host(op[3], source[1], "\0")
    return None


def _shape(ops: tuple[tuple[Any, ...], ...], own: tuple[str, ...]) -> Any:
    """``ops`` with each of ``own`` in any text as ``<k>``, its place in ``own``; steps and
    replies as their fields. The longest first, so that one name inside another (an
    address inside a reply) goes whole. The records a replay copies are compared as they
    are: a name in them, by chance or not, is the same in every session of the key or
    a replay would copy the wrong one."""
    names = sorted(((n, f"<{k}>") for k, n in enumerate(own) if n), key=lambda p: -len(p[0]))

    def plain(part: Any) -> Any:
        if isinstance(part, str):
            for name, mark in names:
                part = part.replace(name, mark)
            return part
        if isinstance(part, list | tuple):
            return tuple(plain(item) for item in part)
        if dataclasses.is_dataclass(part) and not isinstance(part, type):
            fields = dataclasses.fields(part)
            return (type(part).__name__, *(plain(getattr(part, f.name)) for f in fields))
        return part

    def shaped(op: tuple[Any, ...]) -> Any:
        copied = _copied(op)
        if copied is not None:
            return (*op[:3], copied, *op[4:])
        if op[0] == RECORD and op[4] is not None and op[4][0] == "line":
            # a command line: its verb, size, form and masked text, as they are
            protocol, verb, code, text, nbytes, _ = op[3]
            shown = text if op[4][2] else None
            return (*op[:3], (protocol, verb, code, shown, nbytes), *op[4:])
        if op[0] == RECORD:  # its texts made anew; where they come from compared as it is
            return (*op[:3], plain(op[3]), *op[4:])
        return plain(op)

    return tuple(shaped(op) for op in ops)


def _first_difference(known: Template, made: Template) -> str:
    ops = made.shape
    for i, (a, b) in enumerate(zip(known.shape, ops, strict=False)):
        if a != b:
            return f"op {i} was {a!r}, now {b!r}"
    if len(known.ops) != len(ops):
        return f"{len(known.ops)} ops kept, {len(ops)} now"
    return "the same ops, another outcome"
