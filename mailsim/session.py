"""Playing a pure dialogue over the simulated network, as SimPy waits.

A client dialogue (from :mod:`mailsim.protocols`) yields steps; this module carries each
across the network, lets the server state machine answer, waits exactly as long as the
network and the server take, records each step, and sends the replies back into the
dialogue. Every wait is booked under one cost (network, tls, server, queue), so a
session's duration is fully explained by its parts.

Faults change what happens on the wire, not the dialogues: a refused or unanswered
connection, a server that stops answering or crashes, a link that is down. The client
then waits for its per-command timeout (RFC 5321 §4.5.3.2), the connection is lost, and
the dialogue receives a temporary failure for everything still outstanding. A server
that commits a message after its client has given up keeps it: the client will try
again, and the recipient may get the message twice (RFC 5321 §6.1, §4.5.3.2.6).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from mailsim.compiled import (
    ANSWERED,
    ARRIVED,
    END,
    MARK,
    ON_CLIENT,
    ON_SERVER,
    RUN,
    SENT,
    SLACK,
    SLOT,
    START,
    Resume,
    Script,
    Source,
    Template,
    begins_with_host,
    line_source,
    with_host,
)
from mailsim.eavesdrop import read, taps_on
from mailsim.network import TCP_ACK, TCP_SYN, NoRoute
from mailsim.protocols import (
    Commands,
    Connect,
    Content,
    Idle,
    Reply,
    Request,
    Step,
    TlsHandshake,
    http,
    imap,
    pop3,
    smtp,
    tls,
)
from mailsim.slots import Slots

if TYPE_CHECKING:
    from mailsim.agents.context import WorldView

TCP_RST = 40
QUIT_LINE = len("QUIT\r\n")
BYE = Reply("221", ("2.0.0 Bye",))  # a QUIT's reply (Postfix)
TLS_ALERT = 7 + 40  # a TLS alert record (RFC 8446 §6) in one TCP segment
# What an overloaded server says instead of its greeting: Postfix's 421, Dovecot's POP3
# [SYS/TEMP] (RFC 3206) and IMAP's untagged BYE with UNAVAILABLE (RFC 9051 §7.1).
BUSY = {
    "smtp": Reply("421", ("4.3.2 All server ports are busy",)),
    "pop3": Reply("-ERR", ("[SYS/TEMP] Too many connections",)),
    "imap": imap.tagged("*", "BYE", "[UNAVAILABLE] Too many connections"),
}


class Server(Protocol):
    """What a session needs of a server state machine (SMTP, LMTP or POP3)."""

    def greeting(self) -> Reply: ...
    def handle(self, line: str) -> Reply: ...
    def tls_started(self, version: str) -> None: ...


@dataclass(frozen=True)
class Work:
    """How long a server works on each kind of step (from the scenario's Processing)."""

    command: float
    data: float
    tls: float
    tls_version: str | None


Observer = Callable[[Step, list[Reply], "Session"], None]


@dataclass(frozen=True)
class Handover:
    """A replay that found every server slot busy and waited in the listen queue, after
    which its template cannot vouch for what follows (the client gave up, or its
    greeting's deadline came too close): real play goes on from the end of that wait."""

    deadline: float
    turn: simpy.Event


Events = Generator[simpy.Event, Any, Any]


class Session:
    """One TCP connection from ``client`` to ``server_node`` playing one dialogue."""

    replayed = False  # played from a template to its end (for the benchmarks' figures)

    def __init__(
        self,
        world: WorldView,
        client: str,
        server_node: str,
        protocol: str,
        message: str = "",
    ) -> None:
        self.world = world
        self.env = world.env
        self.client = client
        self.server_node = server_node
        self.protocol = protocol
        self.service = protocol  # what the session is for: "submission" is SMTP on 587/465
        self.message = message
        self.id = world.new_session_id()
        self.start = self.env.now
        self.costs: dict[str, float] = {"network": 0.0, "tls": 0.0, "server": 0.0, "queue": 0.0}
        self._pending = 0  # bytes owed to the next client flight (TLS 1.3 Finished)
        self.dead: Reply | None = None  # set when the connection is lost
        self.client_gone = False  # the client gave up while the server still worked
        self.closed = False  # nothing listens on the port: the SYN gets an RST
        self.arrived: dict[int, float] = {}  # id of a reply → when it reached the client
        # … or, after a replay, its replies by position, and the positions' times
        self._arrivals: tuple[Any, list[float], list[Reply]] | None = None
        rules = READERS.get(protocol, smtp)
        self._timeout = rules.timeout
        self._lost = rules.lost
        self._connect_timeout = rules.CONNECT_TIMEOUT
        self._faults = world.faults
        self._faulty = bool(world.faults)  # else no fault needs asking, step by step
        self._full = world.recorder.detail == "full"  # else protocol steps are not kept
        self._fast_forward = world.fast_forward
        self._host = world.hosts[server_node]
        self._encrypted = False  # TLS is on: an eavesdropper sees only records
        self._user: str | None = None  # POP3 USER, for what PASS gives away
        self._taps: list[str] = []
        self._script: Script | None = None  # what this play does, to compile it
        if world.taps:
            try:
                path = world.network.path(client, server_node, self.env.now)
                self._taps = taps_on(world.taps, path.nodes)
            except NoRoute:
                pass

    # -- waiting and recording -------------------------------------------------------------

    def _wait(self, seconds: float, cost: str) -> Events:
        """``World.wait``, without a call: a session waits several times per exchange."""
        self.costs[cost] += seconds
        if not (self._fast_forward and self.env.skip(seconds)):
            yield self.env.timeout(seconds)
        if self._script is not None:
            self._script.waited(seconds, cost, self.env.now)

    def _transit(self, src: str, dst: str, nbytes: int, bulk: bool = False) -> float:
        """How long the flight takes if sent now; inf when no path carries it."""
        net, now = self.world.network, self.env.now
        try:
            if bulk:
                return net.bulk_time(src, dst, nbytes, now)
            return net.transfer_time(src, dst, nbytes, now)
        except NoRoute:
            return math.inf

    def _record(
        self,
        times: tuple[float, float],
        src: str,
        dst: str,
        protocol: str,
        step: str,
        code: str,
        detail: str,
        nbytes: int,
        wire: str | None = None,
        source: Source = None,
    ) -> None:
        self.world.recorder.event(
            times[0], times[1], self.message, self.id, src, dst, protocol, step, code, detail,
            nbytes, wire,
        )  # fmt: skip
        if self._script is not None and self._full:  # else a replay makes no records
            # The two ends by their role, put back by each replay as its own machines.
            outward = (src, dst) == (self.client, self.server_node)
            if not outward and (src, dst) != (self.server_node, self.client):
                self._script.spoil("a record between other machines")
            row = (protocol, step, code, detail, nbytes, wire)
            self._script.recorded(times, row, source, outward)

    def _record_line(self, times: tuple[float, float], step: Commands, i: int) -> None:
        """Command line ``i`` of ``step``, as the transcript shows it (AUTH's secret
        masked) and, where that differs, as it went on the wire."""
        line = step.lines[i]
        row = _line_row(
            self.protocol, _verb(line, self.protocol), line, (step.shown or step.lines)[i]
        )
        source: Source = None
        script = self._script
        if script is not None and self._resume is not None:  # where the line's own texts are
            source = line_source(self._resume.form(line), step.shown is not None)
            if source is not None and str(source[1]).format(*script.own) != line:
                script.spoil("a command line not made as its form says")
        self._record(times, self.client, self.server_node, *row, source)

    def _record_reply(self, times: tuple[float, float], reply: Reply, greets: bool = False) -> None:
        """A reply, with its wire form when it is not its transcript line (multi-line);
        ``greets``: a greeting or reply to EHLO, which begins with the server's name."""
        row = self._reply_row(reply)
        source: Source = None
        if self._script is not None and self._resume is not None:  # a reply made anew?
            source = next(
                (("content", i) for i, r in enumerate(self._script.content) if r is reply), None
            )
            if source is None and greets:
                source = begins_with_host(reply, row[3], row[5], self._resume.host)
        self._record(times, self.server_node, self.client, *row, source)

    def _reply_row(self, reply: Reply) -> tuple[Any, ...]:
        """A reply's record after its two ends, with its wire form when that is not its
        transcript line (a multi-line reply)."""
        detail, wire = str(reply), reply.wire()
        shown = None if wire == detail + "\r\n" else wire
        return (self.protocol, reply.code, reply.code, detail, reply.size, shown)

    def _greets(self, step: Step, i: int) -> bool:
        """Is reply ``i`` to ``step`` one that begins with the SMTP or LMTP server's name:
        its greeting, or its reply to EHLO, HELO or LHLO (RFC 5321 §4.2, §4.1.1.1)?"""
        if self.protocol not in ("smtp", "lmtp"):
            return False
        if isinstance(step, Connect):
            return True
        return (
            isinstance(step, Commands)
            and i < len(step.lines)
            and _verb(step.lines[i], self.protocol) in smtp.HELLOS
        )

    def _overhear(
        self, times: tuple[float, float], src: str, dst: str, what: str, detail: str, nbytes: int
    ) -> None:
        """What the eavesdroppers on this session's path read of one step."""
        if self._encrypted and what not in ("connection", "TLS records"):
            what, detail = "TLS records", f"{nbytes} bytes"
        for name in self._taps:
            self.world.recorder.overheard(
                name, times[0], self.id, self.message, src, dst, self.service, what, detail,
                nbytes,
            )  # fmt: skip

    def arrival(self, reply: Reply, default: float) -> float:
        """When ``reply`` reached the client, or ``default`` if it did not. A replay
        leaves its replies by position, looked up here for the few that are asked for
        (the deciding reply of each hop); the latest arrival of a reply counts."""
        at = self.arrived.get(id(reply))
        if at is not None or self._arrivals is None:
            return default if at is None else at
        positions, clock, content = self._arrivals
        for position, replies in reversed(positions):
            if any(r is reply for r in (content if replies is None else replies)):
                return clock[position]
        return default

    @property
    def label(self) -> str:
        """``alice-pc → msa-school (submission)``: who talks to whom, for what."""
        return f"{self.client} → {self.server_node} ({self.service})"

    def snapshot(self) -> dict[str, float]:
        return dict(self.costs)

    # -- playing ---------------------------------------------------------------------------

    def play(
        self,
        dialogue: Generator[Step, list[Reply], Any],
        server: Server,
        work: Work,
        slot: Slots | None = None,
        on_server: Observer | None = None,
        on_client: Observer | None = None,
        key: Hashable | None = None,
        resume: Resume | None = None,
        handover: Handover | None = None,
    ) -> Events:
        """Run ``dialogue`` against ``server`` to its end; return the dialogue's result.

        ``on_server`` is called when the server has answered a step (before the reply
        travels back); ``on_client`` when the reply has reached the client. ``key``, where
        the caller can give one, names everything that fixes the session's course (see
        :mod:`mailsim.compiled`): a later session of the same key replays this one. With
        ``resume`` the server answers the message in a replay, the result is rebuilt from
        the template's outline (or the dialogue is driven), and the callbacks are called
        where ``resume`` says they act (:meth:`_watched`). With ``handover``, the session
        was replayed quietly up to the end of its wait in the listen queue
        (:meth:`replay_quietly`): play goes on from there."""
        if handover is None:  # else as the quiet replay that handed over left them
            self._turn: simpy.Event | None = None  # waiting for a slot
            self._holds = False  # has a slot
        self._slot = slot
        self._resume = resume
        opened = self.world.open_sessions
        opened[self.id] = self
        templates = self.world.templates
        try:
            replies: list[Reply] | None = None
            if not templates.on:
                key = None
            # A key is known or spoiled, never both (Templates.keep): the common case, a
            # replay, hashes the key once.
            template = templates.known.get(key) if key is not None else None
            if template is None and key in templates.spoiled:
                key = None
            if template is not None and not templates.check and handover is None:
                # A replay starts the dialogue only if it drives it, or hands over.
                done = yield from self._replay(template, on_server, on_client, dialogue)
                if not isinstance(done, Handover):  # replayed to its end
                    templates.replayed += 1
                    self.replayed = True
                    return done
                handover = done
            if handover is not None:
                templates.handed += 1
                step = next(dialogue)
                replies = yield from self._accept(
                    step, server, work, handover.deadline, handover.turn, queued=True
                )
            else:
                step = next(dialogue)
                if key is not None and (resume is None or templates.worth(key)):
                    self._script = Script(self.env.now, drives=resume is not None)
                    if resume is not None:  # what check mode compares without
                        self._script.own = resume.own()
            played = self._play_step
            if self._script is None and self.world.swift and self._plain_paths():
                played = self._swift_step
            while True:
                if replies is None:
                    replies = yield from played(step, server, work, on_server)
                if on_client is not None and self.dead is None:
                    on_client(step, replies, self)
                    if self._script is not None and self._watched(step):
                        self._script.ops.append((ON_CLIENT, step, replies))
                if self._script is not None and self._script.drives:
                    self._script.ops.append((SENT, replies))
                step = dialogue.send(replies)
                replies = None
        except StopIteration as stop:
            script = self._script
            if script is not None:
                if resume is not None and resume.escapes(stop.value, script.content):
                    script.spoil("a reply naming the session's own addresses")
                if resume is not None and self.dead is not None:  # it names the server
                    script.spoil("a connection lost or refused")
                # A record a replay would copy names the session's own: no template, but
                # where check mode compares this play with the key's, record by record.
                if (
                    resume is not None
                    and self._full
                    and script.names(resume.own())
                    and not (templates.check and key in templates.known)
                ):
                    script.spoil("a record a replay would copy naming the session's own")
                templates.keep(key, script, stop.value, self.dead, resume)
            return stop.value
        finally:
            opened.pop(self.id, None)
            self._release()

    def _watched(self, step: Step) -> bool:
        """Does a replay call the callbacks at ``step``? Everywhere the play did; with
        ``resume``, where it says they act (an SMTP session's at the message alone)."""
        return self._resume is None or self._resume.watches(step)

    def _play_step(
        self, step: Step, server: Server, work: Work, on_server: Observer | None
    ) -> Events:
        if self.dead is not None:
            return [self.dead] * _expected(step)
        if self._forgotten and isinstance(step, Commands | Request):
            return (yield from self._unheard(step))
        if isinstance(step, Connect):
            replies = yield from self._connect(step, server, work)
            if not replies:  # a client that speaks first, without TLS: no reply to read
                return replies
            return replies * (_expected(step) // len(replies))  # failed early
        if isinstance(step, Commands):
            return (yield from self._commands(step, server, work, on_server))
        if isinstance(step, TlsHandshake):
            return (yield from self._handshake(step, server, work))
        if isinstance(step, Idle):
            return (yield from self._idle(step, server))
        if isinstance(step, Request):
            return (yield from self._request(step, server, work, on_server))
        return (yield from self._content(step, server, work, on_server))

    # -- the plain course, swiftly -------------------------------------------------------

    def _plain_paths(self) -> bool:
        """Can this session take the swift steps? Its client and server are two machines
        that a path joins (in a quiet world, one that never changes), and it is not
        refused at once (nothing listening)."""
        if self.client == self.server_node or self.closed:
            return False
        network = self.world.network
        try:
            network.path(self.client, self.server_node)
            network.path(self.server_node, self.client)
        except NoRoute:
            return False
        return True

    def _swift_step(
        self, step: Step, server: Server, work: Work, on_server: Observer | None
    ) -> Events:
        """:meth:`_play_step` in a quiet world (no faults, eavesdroppers, jitter or loss)
        when nothing is recorded step by step and no template is being made: the same
        waits, summed in the same order, in one frame instead of a dozen. Whatever leaves
        the plain course — a connection lost, a busy server, a refused port, a deadline —
        goes to the general code at the start of the part that leaves it, before the clock
        has moved for that part, so it plays from there exactly as it would have."""
        if self.dead is not None or self._forgotten:
            return (yield from self._play_step(step, server, work, on_server))
        pending, self._pending = self._pending, 0
        if isinstance(step, Commands):
            lines = step.lines
            replies = yield from self._exchange(
                step, step.size + pending, False, step.cost, work.command * len(lines), "server",
                lambda: [server.handle(line) for line in lines], step.cost, on_server,
            )  # fmt: skip
            return replies if self.dead is None else [self.dead] * len(lines)
        if isinstance(step, Content):
            nbytes = step.size + 5 + pending + (QUIT_LINE if step.quit else 0)
            end: Any = server  # an SMTP or LMTP server: it has an end of DATA
            replies = yield from self._exchange(
                step, nbytes, True, step.cost, work.data, "server",
                lambda: list(end.end_of_data()), step.cost, on_server,
            )  # fmt: skip
            return replies if self.dead is None else [self.dead] * step.replies
        if isinstance(step, Request):
            nbytes = step.size + pending
            web: Any = server  # a web front end: it responds to requests
            replies = yield from self._exchange(
                step, nbytes, nbytes > 1460, step.cost,
                work.data if step.body else work.command, "server",
                lambda: [web.respond(step)], step.cost, on_server,
            )  # fmt: skip
            return replies if self.dead is None else [self.dead]
        self._pending = pending  # the steps below send nothing the TLS Finished rides on
        if isinstance(step, TlsHandshake):
            return (yield from self._swift_tls(step, step.version, server, work))
        if isinstance(step, Connect):
            replies = yield from self._swift_connect(step, server, work)
            if not replies:
                return replies
            return replies * (_expected(step) // len(replies))
        return (yield from self._play_step(step, server, work, on_server))

    def _exchange(
        self,
        step: Step,
        nbytes: int | None,
        bulk: bool,
        send_cost: str,
        seconds: float,
        cost: str,
        answer: Callable[[], list[Reply]],
        back_cost: str,
        on_server: Observer | None = None,
        deadline: float | None = None,
        size: int | None = None,
    ) -> Events:
        """:meth:`_send` (unless ``nbytes`` is None: the greeting) then :meth:`_answer`,
        on the plain course, in one frame. None when the flight missed its deadline."""
        env, costs, network = self.env, self.costs, self.world.network
        c, s = self.client, self.server_node
        if deadline is None:
            deadline = env.now + self._timeout(step)
        if nbytes is not None:
            took = network.bulk_time(c, s, nbytes) if bulk else network.transfer_time(c, s, nbytes)
            if env.now + took > deadline:
                yield from self._give_up(deadline, "sending timed out")
                return None
            costs[send_cost] += took
            if not env.skip(took):
                yield env.timeout(took)
        done = env.now + seconds
        if done > deadline:
            env.process(self._late(step, done, answer, on_server))
            return (yield from self._give_up(deadline, self._no_reply(step)))
        costs[cost] += seconds
        if not env.skip(seconds):
            yield env.timeout(seconds)
        replies = answer()
        back = sum(r.size for r in replies) if size is None else size
        took = network.bulk_time(s, c, back) if back > 1460 else network.transfer_time(s, c, back)
        self.client_gone = env.now + took > deadline
        if on_server is not None:
            on_server(step, replies, self)
        if self.client_gone:
            return (yield from self._give_up(deadline, self._no_reply(step)))
        costs[back_cost] += took
        if not env.skip(took):
            yield env.timeout(took)
        now, arrived = env.now, self.arrived
        for reply in replies:
            arrived[id(reply)] = now
        return replies

    def _swift_tls(self, step: Step, offered: str, server: Server, work: Work) -> Events:
        """:meth:`_tls` on the plain course."""
        version = tls.negotiate(offered, work.tls_version) or offered
        for flight in tls.HANDSHAKES[version]:
            yield from self._exchange(
                step, flight.client_bytes, False, "tls", work.tls, "tls", _no_replies, "tls",
                size=flight.server_bytes,
            )  # fmt: skip
            if self.dead is not None:
                return [self.dead]
        return self._tls_up(server, version)

    def _swift_connect(self, step: Connect, server: Server, work: Work) -> Events:
        """:meth:`_connect` and :meth:`_accept` on the plain course: the handshake, a free
        slot taken, implicit TLS if asked, the greeting."""
        if step.tls and work.tls_version is None:  # nothing listens on 465 or 995
            return (yield from self._connect(step, server, work))
        env, costs, network = self.env, self.costs, self.world.network
        c, s = self.client, self.server_node
        for took in (network.transfer_time(c, s, TCP_SYN), network.transfer_time(s, c, TCP_SYN)):
            costs["network"] += took
            if not env.skip(took):
                yield env.timeout(took)
        deadline = env.now + self._timeout(step)
        if step.greeting:
            took = network.transfer_time(c, s, TCP_ACK)
            costs["network"] += took
            if not env.skip(took):
                yield env.timeout(took)
        if self._slot is not None:
            turn = self._slot.take()
            if turn is not None:  # every slot busy: the listen queue, as in general play
                return (yield from self._accept(step, server, work, deadline, turn))
            self._holds = True
        hello: list[Reply] = []
        if step.tls:
            hello = yield from self._swift_tls(step, step.tls, server, work)
            if self.dead is not None:
                return hello
            deadline = env.now + self._timeout(step)
        if not step.greeting:
            return hello
        greeting = yield from self._exchange(
            step, None, False, "network", work.command, "server", lambda: [server.greeting()],
            "network", deadline=deadline,
        )  # fmt: skip
        return [*hello, *greeting] if self.dead is None else greeting

    def replay_quietly(self, template: Template, slot: Slots | None) -> Events:
        """Replay a template whose plan only waits and holds a server slot (a check that
        finds the mailbox empty, at outcomes and hops: :meth:`Template.quiet`), with no
        dialogue, server or callbacks made for it: :meth:`_replay` with none, opening
        and closing the session as :meth:`play` does. Return the template's result, or a
        :class:`Handover` (:meth:`_wait_turn`): the caller then makes the dialogue and
        the server and goes on with :meth:`play` from there."""
        opened = self.world.open_sessions
        opened[self.id] = self
        self._slot, self._holds, self._turn = slot, False, None
        done: Any = None
        try:
            done = yield from self._replay(template, None, None, None)
            if not isinstance(done, Handover):
                self.world.templates.replayed += 1
                self.replayed = True
            return done
        finally:
            if not isinstance(done, Handover):  # else play goes on with the session open
                opened.pop(self.id, None)
                self._release()

    def _wait_turn(self, template: Template, turn: simpy.Event, deadline: float) -> Events:
        """A replay found every server slot busy: wait in the listen queue as a play
        does (:meth:`_queue`). Return the wait, to go on replaying; or None, for real play
        to go on from here — when the client gave up, or when the wait brings the
        connection's deadline closer than its play met it less :data:`SLACK` (its
        greeting might then come too late)."""
        queue = yield from self._queue(turn, deadline)
        if not turn.triggered or queue > template.margin - SLACK:
            return None
        self.world.templates.queued += 1
        return queue

    def _replay(
        self,
        template: Template,
        on_server: Observer | None,
        on_client: Observer | None,
        dialogue: Generator[Step, list[Reply], Any] | None,
    ) -> Events:
        """Do what ``template`` did, from this moment; return the session's result. When
        every server slot is busy, wait in the listen queue as a play does and go on; or,
        where the template cannot vouch for what follows the wait (:meth:`_wait_turn`),
        return a :class:`Handover`, for the caller to go on as real play from there
        (:meth:`_accept`). A driving template's replay has the server make its own
        replies to the message; the result is rebuilt from the template's outline of it,
        or, without one, the dialogue is sent the replies its play was sent. A quiet
        template's replay has no dialogue (None): its plan never starts one."""
        env = self.env
        skip_run, timeout = env.skip_run, env.timeout
        clock = [env.now]  # the times of the positions
        mark = env.now
        result = None if template.drives else template.result
        content: list[Reply] = []
        queue = 0.0  # the wait in the listen queue: the template's plays had none
        out, back = (self.client, self.server_node), (self.server_node, self.client)
        record, message, session = self.world.recorder.step, self.message, self.id
        own: tuple[str, ...] | None = None  # this session's texts, for its command lines

        def made(row: tuple[Any, ...], source: tuple[Any, ...]) -> tuple[Any, ...]:
            """A record's texts as this session makes them (see Source): a command line
            with its own texts, a reply with its server's name, its reply to the message."""
            nonlocal own
            if source[0] == "line":
                if own is None:
                    own = self._resume.own()  # type: ignore[union-attr]
                line = source[1].format(*own)
                return _line_row(row[0], row[1], line, row[3] if source[2] else line)
            if source[0] == "host":
                return with_host(row, source[1], self._resume.host)  # type: ignore[union-attr]
            return self._reply_row(content[source[1]])

        for op in template.plan(self._full):
            kind = op[0]
            if kind == RUN:  # the clock moved at once as far as nothing else is due
                waits = op[1]
                i = skip_run(waits, 0, clock)
                # At full detail its records, each once the waits before it are over
                for at, p0, p1, row, source, outward in op[2]:
                    while i < at:  # something else happens meanwhile
                        yield timeout(waits[i])
                        clock.append(env.now)
                        i = skip_run(waits, i + 1, clock)
                    if source is not None:
                        row = made(row, source)
                    # … between this session's own two machines
                    record(clock[p0], clock[p1], message, session, out if outward else back, row)
                while i < len(waits):  # something else happens meanwhile
                    yield timeout(waits[i])
                    clock.append(env.now)
                    i = skip_run(waits, i + 1, clock)
            elif kind == START:
                next(dialogue)  # to its first step, the connection
            elif kind == SENT:
                try:
                    dialogue.send(content if op[1] is None else op[1])
                except StopIteration as stop:
                    result = stop.value
            elif kind == ON_CLIENT:
                self.costs = dict(op[3])
                if queue:
                    self.costs["queue"] = queue
                on_client(op[1], content if op[2] is None else op[2], self)  # type: ignore[misc]
            elif kind == MARK:
                mark = env.now
            elif kind == ANSWERED:
                content = self._resume.restore(op[1])  # type: ignore[union-attr]
            elif kind == ON_SERVER:
                self.costs = dict(op[3])
                if queue:
                    self.costs["queue"] = queue
                on_server(op[1], content if op[2] is None else op[2], self)  # type: ignore[misc]
            elif kind == SLOT:
                turn = self._slot.take()  # type: ignore[union-attr]
                if turn is not None:
                    self.costs = dict(op[2])
                    queue = yield from self._wait_turn(template, turn, mark + op[1])
                    if queue is None:
                        return Handover(mark + op[1], turn)
                self._holds = True
            elif kind == END:
                self.costs = dict(op[1])
                if queue:
                    self.costs["queue"] = queue
                self._arrivals = (op[2], clock, content)  # looked up by arrival()
        self.dead = template.dead
        if template.drives and template.result is not None:
            return self._resume.rebuild(template.result, content)  # type: ignore[union-attr]
        return result

    def _release(self) -> None:
        turn, self._turn = self._turn, None
        if self._slot is None:
            return
        if self._holds:
            self._holds = False
            self._slot.give_back()
        elif turn is not None:
            self._slot.leave(turn)

    def _give_up(self, deadline: float, why: str) -> Events:
        """No reply in time: wait for the client's timeout, then drop the connection."""
        if self._script is not None:
            self._script.spoil("gave up")
        wait = max(0.0, deadline - self.env.now)
        yield from self._wait(wait, "network")
        now = self.env.now
        self._record(
            (now, now), self.server_node, self.client, self.protocol, "timeout", "", why, 0
        )
        self.dead = self._lost(why)
        self._release()
        return [self.dead]

    def _answer(
        self,
        step: Step,
        work: float,
        cost: str,
        answer: Callable[[], list[Reply]],
        deadline: float,
        back_cost: str,
        on_server: Observer | None = None,
        record: Callable[[tuple[float, float], list[Reply]], None] | None = None,
        size: int | None = None,
    ) -> Events:
        """The server works on what has just reached it and answers, unless it hangs,
        crashes, or is slower than the client's patience; the replies travel back.
        Returns the replies, or the connection-lost reply when the client gave up."""
        env, c, s = self.env, self.client, self.server_node
        seconds = work
        if self._faulty:
            faults = self._faults
            if faults.hangs(s, env.now):
                return (yield from self._give_up(deadline, self._no_reply(step)))
            seconds = work * faults.slowness(s, env.now)
            if faults.crash_between(s, env.now, env.now + seconds) is not None:
                return (yield from self._give_up(deadline, self._no_reply(step)))
        done = env.now + seconds
        script = self._script
        if script is not None:
            script.close_call(deadline, done)
        if done > deadline:
            # The server goes on working after the client has hung up: if it commits,
            # the message is now in two places.
            env.process(self._late(step, done, answer, on_server))
            return (yield from self._give_up(deadline, self._no_reply(step)))
        yield from self._wait(seconds, cost)
        replies = answer()
        if script is not None and self._resume is not None and type(step) is Content:
            script.content = replies
            script.ops.append((ANSWERED, replies, self._resume.snapshot()))
        nbytes = sum(r.size for r in replies) if size is None else size
        took = self._transit(s, c, nbytes, bulk=nbytes > 1460)
        self.client_gone = env.now + took > deadline
        if on_server is not None:
            on_server(step, replies, self)
            if script is not None and self._watched(step):
                script.ops.append((ON_SERVER, step, replies))
        if script is not None:
            script.close_call(deadline, env.now + took)
        if self.client_gone:
            return (yield from self._give_up(deadline, self._no_reply(step)))
        sent = env.now
        yield from self._wait(took, back_cost)
        times = (sent, env.now)
        for reply in replies:
            self.arrived[id(reply)] = env.now
        if script is not None:
            script.ops.append((ARRIVED, replies))
        if record is not None:
            record(times, replies)
        elif self._full:
            for i, reply in enumerate(replies):
                self._record_reply(times, reply, self._greets(step, i))
        if self._taps:
            for reply in replies:
                kind = "headers and body" if reply.payload else "commands"
                detail = f"a message of {reply.payload} bytes" if reply.payload else str(reply)
                self._overhear(times, s, c, kind, detail, reply.size)
        return replies

    def _no_reply(self, step: Step) -> str:
        return f"no reply within {self._timeout(step):.0f} s"

    def _late(
        self, step: Step, at: float, answer: Callable[[], list[Reply]], on_server: Observer | None
    ) -> Events:
        yield self.env.timeout(at - self.env.now)
        if self._faults.crashed(self.server_node, self.env.now):
            return
        replies = answer()
        self.client_gone = True
        if on_server is not None:
            on_server(step, replies, self)

    def _send(self, nbytes: int, cost: str, deadline: float, bulk: bool = False) -> Events:
        """Carry a client flight to the server; None if it cannot arrive in time."""
        took = self._transit(self.client, self.server_node, nbytes, bulk)
        sent = self.env.now
        if self._script is not None:
            self._script.close_call(deadline, sent + took)
        if sent + took > deadline:
            yield from self._give_up(
                deadline, "no route to the server" if took == math.inf else "sending timed out"
            )
            return None
        yield from self._wait(took, cost)
        return (sent, self.env.now)

    def _stripped(self) -> bool:
        """Does a STARTTLS-stripping man in the middle sit on the way back now?"""
        try:
            path = self.world.network.path(self.server_node, self.client, self.env.now)
        except NoRoute:
            return False
        return self._faults.strips_starttls(path.nodes, self.env.now)

    # -- the steps -------------------------------------------------------------------------

    def _connect(self, step: Connect, server: Server, work: Work) -> Events:
        env, c, s, faults = self.env, self.client, self.server_node, self._faults
        start = env.now
        syn = self._transit(c, s, TCP_SYN)
        if syn == math.inf or (self._faulty and faults.crashed(s, start + syn)):
            # Nothing answers the SYN (no route, or a dead machine): SYN retransmissions
            # until the client's connect timeout.
            self._record((start, start), c, s, "tcp", "SYN", "", "SYN (no answer)", TCP_SYN)
            yield from self._wait(self._connect_timeout, "network")
            why = f"connect to {self._host}:{step.port}: Connection timed out"
            self._record((env.now, env.now), s, c, "tcp", "timeout", "", why, 0)
            self.dead = self._lost(why, "4.4.1")
            return [self.dead]
        yield from self._wait(syn, "network")
        self._record((start, env.now), c, s, "tcp", "SYN", "", "SYN", TCP_SYN)
        if self._taps:
            where = f"{self.world.ips[c]} → {self.world.ips[s]} port {step.port}"
            self._overhear((start, env.now), c, s, "connection", where, TCP_SYN)
        # A server without TLS does not listen on the implicit-TLS ports (465, 995).
        refused = self.closed or (self._faulty and faults.refuses(s, env.now))
        if refused or (step.tls and work.tls_version is None):
            sent = env.now
            yield from self._wait(self._transit(s, c, TCP_RST), "network")
            self._record(
                (sent, env.now), s, c, "tcp", "RST", "", "RST (connection refused)", TCP_RST
            )
            self.dead = self._lost(
                f"connect to {self._host}:{step.port}: Connection refused", "4.4.1"
            )
            return [self.dead]
        sent = env.now
        yield from self._wait(self._transit(s, c, TCP_SYN), "network")
        self._record((sent, env.now), s, c, "tcp", "SYN-ACK", "", "SYN-ACK", TCP_SYN)
        deadline = env.now + self._timeout(step)
        sent = env.now
        if step.greeting:
            yield from self._wait(self._transit(c, s, TCP_ACK), "network")
            self._record((sent, env.now), c, s, "tcp", "ACK", "", "ACK", TCP_ACK)
        else:  # the client speaks first: its first flight leaves with the ACK
            ack = (sent, sent + self._transit(c, s, TCP_ACK))
            self._record(ack, c, s, "tcp", "ACK", "", "ACK", TCP_ACK)
        if self._faulty and faults.overloaded(s, env.now) and not faults.hangs(s, env.now):
            busy = BUSY.get(self.protocol, BUSY["smtp"])
            replies = yield from self._answer(
                step, work.command, "server", lambda: [busy], deadline, "network"
            )
            self.dead = self.dead or busy
            return replies
        script = self._script
        if script is not None:
            # the position after the SYN-ACK, where the deadline was set (the ACK's wait
            # follows it when the server speaks first)
            script.deadline = len(script.clock) - (2 if step.greeting else 1)
            script.connected = deadline
        turn = None
        if self._slot is not None:
            if script is not None:
                script.ops.append((SLOT, script.deadline, self._timeout(step)))
            turn = self._slot.take()
        return (yield from self._accept(step, server, work, deadline, turn))

    def _accept(
        self,
        step: Connect,
        server: Server,
        work: Work,
        deadline: float,
        turn: simpy.Event | None,
        queued: bool = False,
    ) -> Events:
        """The server takes the connection: when every session slot is busy (``turn``)
        it waits in the listen queue (unless a replay has ``queued`` already); then
        implicit TLS, if asked, and the greeting."""
        env = self.env
        if self._slot is not None:
            if turn is not None:  # all sessions busy: the connection waits in the listen queue
                if not queued:
                    yield from self._queue(turn, deadline)
                if not turn.triggered:
                    return (
                        yield from self._give_up(deadline, "no greeting: all server processes busy")
                    )
            self._holds = True
        hello: list[Reply] = []
        if step.tls:  # implicit TLS: the handshake before anything else (RFC 8314 §3.3)
            hello = yield from self._tls(step, step.tls, server, work)
            if self.dead is not None:
                return hello
            deadline = env.now + self._timeout(step)
        if not step.greeting:  # the client speaks first (HTTP): nothing to read
            return hello

        def greet() -> list[Reply]:
            hello = server.greeting()  # IMAP lists its capabilities here: a stripper's prey
            return [_without_starttls(hello) if self._faulty and self._stripped() else hello]

        greeting = yield from self._answer(step, work.command, "server", greet, deadline, "network")
        return [*hello, *greeting] if self.dead is None else greeting

    def _queue(self, turn: simpy.Event, deadline: float) -> Events:
        """Wait in the listen queue for ``turn``, the client's patience lasting until
        ``deadline``; return the wait, which is the session's queue cost."""
        env = self.env
        self._turn = turn
        before = env.now
        yield turn | env.timeout(max(0.0, deadline - env.now))
        waited = env.now - before
        self.costs["queue"] += waited
        if turn.triggered:
            self._turn = None
        return waited

    def _commands(
        self, step: Commands, server: Server, work: Work, on_server: Observer | None
    ) -> Events:
        c, s = self.client, self.server_node
        deadline = self.env.now + self._timeout(step)
        nbytes = step.size + self._pending
        self._pending = 0
        times = yield from self._send(nbytes, step.cost, deadline)
        if times is None:
            return [self.dead] * len(step.lines)
        if self._full or self._taps:
            for i, line in enumerate(step.lines):
                self._record_line(times, step, i)
                if self._taps:
                    verb = _verb(line, self.protocol)
                    if verb == "USER":
                        self._user = line.split(" ", 1)[-1]
                    what, detail = read(line, self._user)
                    self._overhear(times, c, s, what, detail, len(line) + 2)
        # The server's work is server work, on STARTTLS too: only the round trips
        # encryption adds are booked as TLS.
        cost = "server"

        def answer() -> list[Reply]:
            replies = [server.handle(line) for line in step.lines]
            if self._faulty and self._stripped():
                replies = [_without_starttls(reply) for reply in replies]
            return replies

        replies = yield from self._answer(
            step,
            work.command * len(step.lines),
            cost,
            answer,
            deadline,
            step.cost,
            on_server,
        )
        return replies if self.dead is None else [self.dead] * len(step.lines)

    def _handshake(self, step: TlsHandshake, server: Server, work: Work) -> Events:
        return (yield from self._tls(step, step.version, server, work))

    def _tls(self, step: Step, offered: str, server: Server, work: Work) -> Events:
        """The TLS handshake's flights (after STARTTLS, or right after connecting)."""
        c, s = self.client, self.server_node
        version = tls.negotiate(offered, work.tls_version) or offered
        for flight in tls.HANDSHAKES[version]:
            deadline = self.env.now + self._timeout(step)
            times = yield from self._send(flight.client_bytes, "tls", deadline)
            if times is None:
                return [self.dead]
            self._record(
                times,
                c,
                s,
                "tls",
                flight.client_label,
                "",
                flight.client_label,
                flight.client_bytes,
            )
            if self._taps:
                self._overhear(times, c, s, "TLS records", flight.client_label, flight.client_bytes)
            if self._faulty and self._faults.tls_fails(s, self.env.now):
                return (yield from self._tls_alert())

            def record(times: tuple[float, float], _: list[Reply], f: tls.Flight = flight) -> None:
                self._record(times, s, c, "tls", f.server_label, "", f.server_label, f.server_bytes)
                if self._taps:
                    self._overhear(times, s, c, "TLS records", f.server_label, f.server_bytes)

            yield from self._answer(
                step, work.tls, "tls", lambda: [], deadline, "tls", record=record,
                size=flight.server_bytes,
            )  # fmt: skip
            if self.dead is not None:
                return [self.dead]
        return self._tls_up(server, version)

    def _tls_up(self, server: Server, version: str) -> list[Reply]:
        """The handshake is done: the client's Finished rides on its next flight (TLS
        1.3), the server starts over encrypted, an eavesdropper sees records only."""
        self._pending = tls.TRAILING_CLIENT_BYTES[version]
        server.tls_started(version)
        self._encrypted = True
        return [Reply("TLS", (version,))]

    def _tls_alert(self) -> Events:
        """The server answers the ClientHello with a fatal alert; the connection ends."""
        if self._script is not None:
            self._script.spoil("TLS alert")
        c, s, env = self.client, self.server_node, self.env
        sent = env.now
        yield from self._wait(self._transit(s, c, TLS_ALERT), "tls")
        self._record((sent, env.now), s, c, "tls", "Alert", "", "Alert (handshake failure)",
                     TLS_ALERT)  # fmt: skip
        self.dead = self._lost("Cannot start TLS: handshake failure", "4.7.5")
        self._release()
        return [self.dead]

    # -- IMAP IDLE (RFC 2177) ----------------------------------------------------------------

    _woken: simpy.Event | None = None  # fired by :meth:`push` while the client idles
    _forgotten = ""  # the link that forgot this idle connection, as "a–b"

    def push(self, reply: Reply) -> None:
        """The server sends ``reply`` (``* n EXISTS``) on its own: wake the idling client.
        Called by the mailbox server when a delivery reaches an idling session."""
        if self._woken is not None and not self._woken.triggered:
            self._woken.succeed(reply)

    def _idle(self, step: Idle, server: Server) -> Events:
        """Nothing travels until the server pushes news, or ``step.timeout`` passes. Mail
        that came while the client was busy is news at once (Dovecot checks as IDLE
        begins). A link that forgets idle connections (its ``idle_timeout``) drops a push
        sent after that long: the client waits on, unaware, to its renewal. Idling, the
        session is not under way: the run may end while a phone idles."""
        env = self.env
        since, ends = env.now, env.now + step.timeout
        opened, idling = self.world.open_sessions, self.world.idle_sessions
        opened.pop(self.id, None)
        idling[self.id] = self
        try:
            news = server.news()  # type: ignore[attr-defined]
            while True:
                if news is None:
                    self._woken = env.event()
                    yield self._woken | env.timeout(ends - env.now)
                    news = self._woken.value if self._woken.triggered else None
                    self._woken = None
                forgets = self.world.network.forgets(
                    self.server_node, self.client, env.now - since, env.now
                )
                if news is None:
                    self._forgotten = forgets or ""
                    return []
                took = self._transit(self.server_node, self.client, news.size)
                why = f"{forgets} forgot the connection" if forgets else None
                if why is None and took == math.inf:
                    why = "no route to the client"
                if why is None:
                    break
                now = env.now
                self._record((now, now), self.server_node, self.client, self.protocol, "lost",
                             "", f"{_pushed(news)}: lost, {why}", news.size)  # fmt: skip
                news = None
        finally:
            idling.pop(self.id, None)
            opened[self.id] = self
        sent = env.now
        yield from self._wait(took, step.cost)
        self.arrived[id(news)] = env.now
        if self._full or self._taps:
            times = (sent, env.now)
            s, c, size = self.server_node, self.client, news.size
            self._record(times, s, c, self.protocol, "*", "*", _pushed(news), size, news.wire())
            if self._taps:
                self._overhear(times, s, c, "commands", _pushed(news), size)
        return [news]

    def _unheard(self, step: Commands | Request) -> Events:
        """A command or request on a connection the network has forgotten: it goes out,
        no reply ever comes (the NAT drops it), and the client gives up at its timeout."""
        now = self.env.now
        c, s, protocol = self.client, self.server_node, self.protocol
        if isinstance(step, Request):
            self._record((now, now), c, s, protocol, step.method, "", step.line, step.size)
        for line in step.lines if isinstance(step, Commands) else ():
            self._record((now, now), c, s, protocol, _verb(line, protocol), "", line,
                         len(line) + 2)  # fmt: skip
        why = f"{self._no_reply(step)}: {self._forgotten} forgot the idle connection"
        yield from self._give_up(now + self._timeout(step), why)
        return [self.dead] * (len(step.lines) if isinstance(step, Commands) else 1)

    def _content(
        self, step: Content, server: Server, work: Work, on_server: Observer | None
    ) -> Events:
        c, s = self.client, self.server_node
        deadline = self.env.now + self._timeout(step)
        quit_ = QUIT_LINE if step.quit else 0
        nbytes = step.size + 5 + self._pending  # the message, then <CRLF>.<CRLF>
        self._pending = 0
        times = yield from self._send(nbytes + quit_, step.cost, deadline, bulk=True)
        if times is None:
            return [self.dead] * step.replies
        self._record(times, c, s, self.protocol, "message", "", f"({step.size} bytes) .", nbytes)
        if step.quit:
            self._record(times, c, s, self.protocol, "QUIT", "", "QUIT", quit_)
        if self._taps:
            what = f"a message of {step.size} bytes"
            self._overhear(times, c, s, "headers and body", what, nbytes)

        def record(times: tuple[float, float], replies: list[Reply]) -> None:
            """The replies to the message, and the 221 to the QUIT that came with it:
            the client reads the first and closes without reading the second."""
            if self._full:
                for reply in [*replies, *([BYE] if step.quit else [])]:
                    self._record_reply(times, reply)
            if self._taps and step.quit:
                self._overhear(times, s, c, "commands", str(BYE), BYE.size)

        replies = yield from self._answer(
            step,
            work.data,  # the QUIT is read after the "." is answered
            "server",
            lambda: list(server.end_of_data()),  # type: ignore[attr-defined]
            deadline,
            step.cost,
            on_server,
            record=record,
        )
        return replies if self.dead is None else [self.dead] * step.replies

    def _request(
        self, step: Request, server: Any, work: Work, on_server: Observer | None
    ) -> Events:
        """An HTTP request and its response: the request (with the TLS 1.3 Finished
        ahead of it) travels as one flight, the server works on it (a message as the end
        of DATA is worked on), and the response comes back."""
        c, s = self.client, self.server_node
        deadline = self.env.now + self._timeout(step)
        nbytes = step.size + self._pending
        self._pending = 0
        times = yield from self._send(nbytes, step.cost, deadline, bulk=nbytes > 1460)
        if times is None:
            return [self.dead]
        self._record(times, c, s, self.protocol, step.method, "", step.line, nbytes)
        if self._taps:
            what = "headers and body" if step.body else "commands"
            self._overhear(times, c, s, what, step.line, nbytes)
        replies = yield from self._answer(
            step,
            work.data if step.body else work.command,
            "server",
            lambda: [server.respond(step)],
            deadline,
            step.cost,
            on_server,
        )
        return replies if self.dead is None else [self.dead]


# IMAP names its capabilities inside a line ("[CAPABILITY IMAP4rev2 … STARTTLS
# LOGINDISABLED] Dovecot ready."): the stripper takes STARTTLS out, and LOGINDISABLED with
# it, so that a client may log in before TLS (RFC 9051 §6.2.1's warning).
_IMAP_STRIPPED = re.compile(r" (?:STARTTLS|LOGINDISABLED)(?=[ \]]|$)", re.IGNORECASE)


def _without_starttls(reply: Reply) -> Reply:
    """The reply as a STARTTLS-stripping man in the middle passes it on."""
    if reply.tag is not None:  # IMAP: in the greeting, CAPABILITY and its login reply
        lines = tuple(_imap_stripped(line) for line in reply.lines)
        data = tuple(_imap_stripped(line) for line in reply.data)
        if lines == reply.lines and data == reply.data:
            return reply
        return dataclasses.replace(reply, lines=lines, data=data)
    lines = tuple(line for line in reply.lines if line.upper() != "STARTTLS")
    data = tuple(line for line in reply.data if line.upper() != "STLS")
    if lines == reply.lines and data == reply.data:
        return reply
    return Reply(reply.code, lines, data, reply.payload, reply.local)


# The protocols a mail program reads with, by session protocol: their client timeouts and
# how a lost connection reads (SMTP's otherwise).
READERS = {"pop3": pop3, "imap": imap, "https": http}  # the client's patience, by protocol


def _no_replies() -> list[Reply]:
    """What a TLS flight is answered with: records, no reply."""
    return []


def _pushed(news: Reply) -> str:
    """Untagged lines pushed during IDLE, as one line: "* 2 EXISTS · * 1 RECENT"."""
    return " · ".join(f"* {line}" for line in news.data)


def _line_row(protocol: str, verb: str, line: str, text: str) -> tuple[Any, ...]:
    """A command line's record after its two ends: the transcript's ``text`` (AUTH's
    secret masked) and, where that differs, the line as it went on the wire; its size
    as sent."""
    return (protocol, verb, "", text, len(line) + 2, None if text == line else line + "\r\n")


def _verb(line: str, protocol: str) -> str:
    """The command a line carries: its first word, after the tag in IMAP (``a3 SELECT``;
    DONE has no tag)."""
    words = line.split(" ", 2)
    if protocol == "imap" and len(words) > 1:
        return words[1].upper()
    return words[0].upper()


def _imap_stripped(text: str) -> str:
    return _IMAP_STRIPPED.sub("", text) if "CAPABILITY" in text.upper() else text


def _expected(step: Step) -> int:
    """How many replies a step gets (for steps after the connection was lost)."""
    if isinstance(step, Connect):
        return max(1, bool(step.tls) + step.greeting)
    if isinstance(step, Commands):
        return len(step.lines)
    if isinstance(step, Content):
        return step.replies
    return 1
