"""Building a world from a scenario, and running it: the only place that wires agents.

``World(scenario, seed)`` makes a fresh SimPy environment, the network, the recorder and
one agent per node, and schedules the scenario's messages and traffic. A run never
changes the scenario, so one scenario drives any number of replications.
"""

from __future__ import annotations

import gc
import itertools
from collections import Counter
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any

import numpy as np
import simpy

from mailsim.agents.client import MailClient
from mailsim.agents.mta import Mta
from mailsim.agents.pop import MailboxServer
from mailsim.agents.resolver import Resolver
from mailsim.clock import Clock
from mailsim.compiled import Templates, compilable
from mailsim.eavesdrop import Tap
from mailsim.endpoints import addresses
from mailsim.faults import Faults
from mailsim.message import (
    Copy,
    Failure,
    Message,
    Report,
    Stamp,
    bounce_message,
    enhanced_status,
)
from mailsim.network import Topology
from mailsim.protocols import Reply, sender_auth
from mailsim.protocols.dns import ZoneData
from mailsim.record import Recorder
from mailsim.rng import stream, uniform
from mailsim.scenario import CrashFault, DnsNode, PopNode, Scenario, SmtpNode, User
from mailsim.session import Session
from mailsim.traffic import arrivals, seconds_into_day

TERMINAL = ("retrieved", "refused", "bounced", "expired")
GC_THRESHOLD = 20_000  # new containers between two collections of the youngest generation
# The protocol of a retrieval hop, by how the reader reads (IMAP for imap and imap-idle).
READ_OVER = {"pop3": "pop3", "webmail": "https"}


class World:
    def __init__(
        self,
        scenario: Scenario,
        seed: int = 0,
        detail: str = "full",
        fast_forward: bool = True,
        check_templates: bool = False,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.env = Clock(initial_time=0.0)  # times are floats, from the first
        self.fast_forward = fast_forward
        self.faults = Faults(scenario)
        self.network = Topology(scenario, seed, self.faults)
        self.recorder = Recorder(detail)
        self.taps = [Tap(spy.name, frozenset(spy.between)) for spy in scenario.eavesdroppers]
        # Compiled sessions, where nothing can make two sessions of a key differ.
        quiet = compilable(scenario)
        self.templates = Templates(
            fast_forward and quiet, check=check_templates, full=detail == "full"
        )
        # … and sessions played by the swift steps (Session._swift_step), where nothing
        # is recorded step by step either.
        self.swift = fast_forward and quiet and detail != "full"
        self.epoch = datetime.fromisoformat(scenario.start)
        self._sessions = itertools.count(1)
        self.open_sessions: dict[int, Session] = {}  # under way, by id
        # Held open with nothing under way (IMAP IDLE, a web page between refreshes).
        self.idle_sessions: dict[int, Session] = {}
        self._assign_addresses()
        # The zones as written (SPF, DKIM, DMARC records), by lower-case domain.
        self._zone_records = {d.lower(): z for d, z in scenario.dns.zones.items()}
        self.zones = {
            domain.lower(): ZoneData(
                ttl=zone.ttl,
                mx=tuple((mx.preference, mx.host.lower()) for mx in zone.mx),
                a={host.lower(): self._ip_of(target) for host, target in zone.a.items()},
            )
            for domain, zone in scenario.dns.zones.items()
        }
        accounts = scenario.accounts
        self.credentials = {address: user.password for address, user in accounts.items()}
        self._users = {address.lower(): user for address, user in accounts.items()}
        self.mailbox_users = frozenset(
            address.lower() for address, user in accounts.items() if user.mailbox
        )
        self.resolvers = {
            n: Resolver(self, n, s) for n, s in scenario.nodes.items() if isinstance(s, DnsNode)
        }
        self.mtas = {
            n: Mta(self, n, s) for n, s in scenario.nodes.items() if isinstance(s, SmtpNode)
        }
        self.pops = {
            n: MailboxServer(self, n, s)
            for n, s in scenario.nodes.items()
            if isinstance(s, PopNode)
        }
        self.clients = {n: MailClient(self, n) for n in scenario.nodes_of("client")}
        # Every copy by its seq, but at ``outcomes``, where a finished copy leaves only
        # its row in the recorder: memory then grows with the messages still on their way.
        self.copies: dict[int, Copy] = {}
        self._retire = detail == "outcomes"
        self._seqs = itertools.count()
        self.duplicates: list[Copy] = []
        self._reports = itertools.count(1)
        self._open = 0  # copies not yet in a terminal state
        self._generators = 0  # traffic generators still producing
        self._clock = seconds_into_day(scenario.start)  # local time of day at t = 0
        self.done = self.env.event()
        self._mx_rngs: dict[str, np.random.Generator] = {}
        self._schedule()

    # -- wiring ------------------------------------------------------------------------------

    def _assign_addresses(self) -> None:
        self.ips: dict[str, str] = addresses(self.scenario)
        self.hosts: dict[str, str] = {
            name: node.host or name for name, node in self.scenario.nodes.items()
        }
        self.node_by_ip = {ip: name for name, ip in self.ips.items()}

    def _ip_of(self, target: str) -> str:
        return self.ips.get(target, target)

    def resolver_for(self, node: str) -> Resolver:
        spec = self.scenario.nodes[node]
        name = getattr(spec, "resolver", None) or next(iter(self.resolvers))
        return self.resolvers[name]

    def mx_rng(self, node: str) -> np.random.Generator:
        """Per-MTA stream for shuffling equal-preference MX hosts (RFC 5321 §5.1)."""
        if node not in self._mx_rngs:
            self._mx_rngs[node] = stream(self.seed, "mx-order", node)
        return self._mx_rngs[node]

    def authenticate(self, receiver: str, client: str, copy: Copy) -> sender_auth.Verdict:
        """SPF, DKIM and DMARC for ``copy`` arriving at ``receiver`` from node ``client``,
        from the records in the scenario's zones (see :mod:`mailsim.protocols.sender_auth`)."""
        lower = self._zone_records

        def a_of(host: str) -> list[str]:
            host = host.lower()
            return [z.a[host] for z in self.zones.values() if host in z.a]

        def mx_of(domain: str) -> list[str]:
            zone = self.zones.get(domain.lower())
            return [ip for _, host in (zone.mx if zone else ()) for ip in a_of(host)]

        message = copy.message
        mail_from = message.sender.rsplit("@", 1)[-1].lower()
        author = message.author.rsplit("@", 1)[-1].lower()
        zone = lower.get(mail_from)
        spf = sender_auth.spf(zone.spf if zone else None, mail_from, self.ips[client], a_of, mx_of)
        if copy.dkim_domain is None:
            dkim = "none"
        else:
            signer = lower.get(copy.dkim_domain)
            dkim = "fail" if copy.dkim_broken or signer is None or not signer.dkim else "pass"
        author_zone = lower.get(author)
        policy = sender_auth.Dmarc.parse(author_zone.dmarc if author_zone else None)
        return sender_auth.verdict(receiver, mail_from, author, spf, dkim, copy.dkim_domain, policy)

    def wait(self, seconds: float) -> Generator[simpy.Event, Any, None]:
        """Let ``seconds`` pass (``yield from world.wait(s)``). When no other event is due
        before then, nothing else can happen meanwhile, so the clock moves at once instead
        of through a SimPy event: the same times, draws and outcomes, a fraction of the
        cost. A session whose exchanges nobody interrupts runs as one stretch of code."""
        if self.fast_forward and self.env.skip(seconds):
            return
        yield self.env.timeout(seconds)

    def new_session_id(self) -> int:
        return next(self._sessions)

    # -- messages ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        scenario = self.scenario
        for i, spec in enumerate(scenario.messages):
            message = Message(
                id=spec.id or f"m{i + 1}",
                sender=spec.sender,
                recipients=tuple(scenario.addresses(spec.to)),
                size=int(spec.size),
                subject=spec.subject,
                created_at=spec.at,
                header_from=spec.header_from,
            )
            self._open += len(message.recipients)
            self.env.process(self._send_at(message))
        for g, traffic in enumerate(scenario.traffic):
            recipients = scenario.addresses(traffic.to)
            places = {address: i for i, address in enumerate(recipients)}
            senders = scenario.addresses(traffic.sender)
            # Ids name the sender by local part ("t1.alice.3"), or by local part and domain
            # where two of the generator's senders share one (alice@a, alice@b).
            locals_ = Counter(sender.split("@")[0] for sender in senders)
            for sender in senders:
                local, _, domain = sender.partition("@")
                name = local if locals_[local] == 1 else f"{local}.{domain}"
                self._generators += 1
                self.env.process(self._traffic(g, sender, recipients, places, name))
        for address, user in scenario.accounts.items():
            if user.mailbox:
                first = user.poll_start
                if first == "spread":  # a random moment of the first interval, per user
                    first = user.poll * uniform(self.seed, "poll-start", address)
                client = self.clients[user.client]
                readers = {"imap-idle": client.push, "webmail": client.browse}
                reader = readers.get(user.retrieval, client.poll)
                self.env.process(reader(address, user, first))
        for fault in scenario.faults:
            if isinstance(fault, CrashFault):
                self.env.process(self._crash(fault.node, fault.at, fault.at + fault.restart))

    def _send_at(self, message: Message) -> Generator[simpy.Event, Any, None]:
        if message.created_at > self.env.now:
            yield self.env.timeout(message.created_at - self.env.now)
        user = self.scenario.accounts[message.sender]
        yield from self.clients[user.client].submit(message, user)

    def _traffic(
        self, g: int, sender: str, recipients: list[str], places: dict[str, int], name: str
    ) -> Generator[simpy.Event, Any, None]:
        """Poisson arrivals (following the generator's hourly profile), each to one
        recipient picked uniformly, never the sender; ``name`` is the sender's part of
        the messages' ids. All senders share one list of recipients: picking among the
        others skips the sender's own place, so memory grows with senders + recipients,
        not senders × recipients."""
        spec = self.scenario.traffic[g]
        rng = stream(self.seed, "traffic", str(g), sender)
        stop = min(spec.stop if spec.stop is not None else np.inf, self.scenario.duration)
        own = places.get(sender, -1)
        if len(recipients) == 1:
            own = -1  # writing only to oneself: the one recipient it is
        choices = len(recipients) - (own >= 0)
        times = arrivals(rng, spec.rate, spec.start, stop, spec.profile, self._clock)
        for n, at in enumerate(times, start=1):
            pick = int(rng.integers(choices))
            rcpt = recipients[pick + (0 <= own <= pick)]
            yield self.env.timeout(at - self.env.now)
            message = Message(
                f"t{g + 1}.{name}.{n}", sender, (rcpt,), int(spec.size),
                spec.subject, at,
            )  # fmt: skip
            self._open += 1
            self.env.process(self._send_at(message))
        self._generators -= 1
        self._check_done()

    def _crash(self, node: str, at: float, restart_at: float) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(at)
        mta = self.mtas.get(node)
        if mta is not None:
            mta.crash(restart_at)

    def committed(self, copies: list[Copy], session: Session) -> list[Copy]:
        """What the next hop now holds: these copies, or, when the client stopped waiting
        before the server committed, second copies, while the client keeps the first
        ones and sends them again (RFC 5321 §6.1, §4.5.3.2.6)."""
        if session.client_gone:
            return [self.duplicate(copy, session.id) for copy in copies]
        return copies

    def duplicate(self, copy: Copy, session: int) -> Copy:
        """A second copy of ``copy`` where one hop committed it and the other never heard
        so (RFC 5321 §6.1): both go on, and the recipient may get the message twice."""
        second = Copy(
            copy.message,
            copy.recipient,
            submitted_at=copy.submitted_at,
            stamps=list(copy.stamps),
            hops=copy.hops,
            costs=dict(copy.costs),
            mark=copy.mark,
            duplicate_of=copy,
            duplicated_in=session,
            dkim_domain=copy.dkim_domain,
            dkim_broken=copy.dkim_broken,
        )
        self.duplicates.append(second)
        return second

    def send_report(self, mta: Mta, copy: Copy, failure: Failure, delayed: bool = False) -> None:
        """A delivery status notification (RFC 3464) from ``mta`` to the copy's sender,
        queued there like any message."""
        now = self.env.now
        original = copy.message
        report = Report(mta.host, original, (failure,), copy.submitted_at)
        message = bounce_message(f"{original.id}.dsn{next(self._reports)}", report, now, delayed)
        (dsn,) = self.new_copies(message)
        self._open += 1
        mta.enqueue([dsn])

    def new_copies(self, message: Message) -> list[Copy]:
        now = self.env.now
        copies = []
        for rcpt in message.recipients:
            copy = Copy(message, rcpt, submitted_at=now, mark=now, seq=next(self._seqs))
            copies.append(copy)
            self.copies[copy.seq] = copy
        return copies

    def arrive(
        self,
        copies: list[Copy],
        session: Session,
        server: Any,
        pre: dict[str, float],
        by: str,
        protocol: str,
        software: str,
    ) -> None:
        """Copies a server has just committed (250 to the end of DATA): book where their
        time went since the last hop, and stamp them with a Received header."""
        now = self.env.now
        costs = session.snapshot()
        for name, value in pre.items():
            costs[name] = costs.get(name, 0.0) + value
        for copy in copies:
            copy.account(now, costs, "retry" if copy.hops_failed else "queue")
            copy.hops_failed = 0
            copy.reason = ""  # it went on: earlier failures are in the hops table
            copy.stamps.append(
                Stamp(
                    helo=server.helo or session.client,
                    client_host=self.hosts[session.client],
                    client_ip=self.ips[session.client],
                    by=by,
                    protocol=protocol,
                    queue_id=server.queue_id,
                    recipient=copy.recipient,
                    time=now,
                    tls=server.tls_active,
                    software=software,
                    skew=self.scenario.nodes[session.server_node].clock_skew,
                )
            )

    def deliver(self, copy: Copy) -> None:
        copy.status = "delivered"
        copy.delivered_at = self.env.now

    def user(self, address: str) -> User | None:
        """The scenario's user with this address (domains and, in practice, local parts
        are compared without regard to case)."""
        return self._users.get(address.lower())

    def retrieve(
        self,
        copy: Copy,
        session: Session,
        tls: str | None,
        costs: dict[str, float],
        reply: Reply,
        retrieval: str = "pop3",
        since: float | None = None,
    ) -> None:
        """``copy`` has reached its reader's program by ``retrieval`` (pop3, imap,
        imap-idle or webmail), in the server's ``reply`` to the fetch (Dovecot's "+OK 20000
        octets", the hop's deciding reply). ``costs`` are its own parts of the session: the setup (or,
        pushed, the push and what followed it) and its own fetch. The time spent fetching
        the messages ahead of it in the same session is neither its network nor a busy
        server's queue: it is still waiting for the reader's program to get to it, as it
        waited for the poll (or, pushed, for the messages pushed with it). ``since``: when
        the round that fetched it began, on a connection that outlives its rounds (a
        web page's refresh), where the hop begins."""
        now = self.env.now
        protocol = READ_OVER.get(retrieval, "imap")
        if copy.retrieved_at is not None:
            # Downloaded again: the last session ended before QUIT, so the server kept it.
            again = Reply(reply.code, (*reply.lines, "(retrieved again)"))
            self.record_hop(copy, session, protocol, now, 2, again, tls, True, down=True)
            return
        # In the mailbox until the session began, or until it came, if it came during it
        # (pushed while the client idled): the hop begins then.
        begun = max(session.start if since is None else since, copy.mark)
        copy.account(begun, {}, "poll")
        copy.account(now, costs, "poll")
        copy.retrieved_at = now
        copy.retrieval = retrieval
        self.record_hop(copy, session, protocol, now, 1, reply, tls, True, begun, down=True)
        self.finish(copy, "retrieved", "")

    def finish(self, copy: Copy, status: str, reason: str) -> None:
        copy.status = status
        if reason:
            copy.reason = reason
        if status in ("refused", "bounced", "expired"):
            # The journey ends here: its last stretch was the failed attempt(s) and waits.
            copy.account(self.env.now, {}, "retry")
        if status in TERMINAL and not copy.is_duplicate:
            if self._retire:
                del self.copies[copy.seq]
                copy.row = self.recorder.finish(copy.seq, copy.outcome())
            self._open -= 1
            self._check_done()

    def _check_done(self) -> None:
        if self._open == 0 and self._generators == 0 and not self.done.triggered:
            self.done.succeed()

    def record_hop(
        self,
        copy: Copy,
        session: Session,
        protocol: str,
        end: float,
        attempts: int,
        reply: Reply | None,
        tls: str | None,
        auth: bool,
        start: float | None = None,
        down: bool = False,
    ) -> None:
        """One mail hop (or one failed attempt at it) of one copy, played as ``session``:
        it begins with the session (or at ``start``), ends at ``end``, and the client
        learns it when the deciding reply arrives. The mail goes from the client to the
        server, or, ``down`` (a retrieval: POP3, IMAP, a web page), the other way."""
        src, dst = session.client, session.server_node
        if down:
            src, dst = dst, src
        learned = end if reply is None or reply.local else session.arrival(reply, end)
        self.record_attempt(
            copy, src, dst, protocol, session.id, session.start if start is None else start, end,
            attempts, reply, tls, auth, max(learned, end),
        )  # fmt: skip

    def record_attempt(
        self,
        copy: Copy,
        src: str,
        dst: str,
        protocol: str,
        session: int,
        start: float,
        end: float,
        attempts: int,
        reply: Reply | None,
        tls: str | None = None,
        auth: bool = False,
        acknowledged: float | None = None,
    ) -> None:
        copy.hops += 1
        if copy.row >= 0:  # finished, and downloaded again: its kept row counts the hop
            self.recorder.finished_hops(copy.row, copy.hops)
        self.recorder.hop(
            copy.message.id, copy.recipient, copy.hops, src, dst, protocol, session,
            start, end, end if acknowledged is None else acknowledged, attempts,
            str(reply) if reply else "", _code(reply), tls or "", auth,
            copy.is_duplicate,
        )  # fmt: skip

    # -- running -----------------------------------------------------------------------------

    def finished(self, limit: float) -> bool:
        """Every message has ended and its sessions have closed, or time is up."""
        done = self.done.triggered and not self.open_sessions
        return done or self.env.peek() > limit

    def run(
        self, until: float | None = None, progress: Callable[[float, float], None] | None = None
    ) -> None:
        """Run until every message has ended, or the scenario's duration is over.
        ``progress(now, limit)`` is told the simulated time 100 times on the way (a run
        stopped and resumed processes the same events in the same order)."""
        limit = self.scenario.duration if until is None else until
        env = self.env
        stops = [limit] if progress is None else [limit * k / 100 for k in range(1, 101)]
        thresholds = gc.get_threshold()
        # A run makes millions of short-lived containers (steps, replies, events) and
        # keeps long-lived ones (its templates): collecting after every 700, Python's
        # default, a full-detail run of 10,000 messages spent 1.0 s of 13.7 in the
        # collector, mostly walking the templates again; after every 20,000, 0.46 s.
        if thresholds[0]:  # 0: the process collects nothing by itself, and still won't
            gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
        try:
            for stop in stops:
                if self.done.triggered:
                    break
                if stop > env.now:
                    env.run(until=env.any_of([self.done, env.timeout(stop - env.now)]))
                if progress is not None:
                    progress(env.now, limit)
            # Every message has ended: let the sessions under way close properly (QUIT).
            while self.open_sessions and env.peek() <= limit:
                env.step()
        finally:
            gc.set_threshold(*thresholds)


def _code(reply: Reply | None) -> str:
    """The reply code for the hop table; for a failure the client concluded itself (no
    server said anything), the enhanced status it logs, e.g. "4.4.1"."""
    if reply is None:
        return ""
    if reply.local:
        return enhanced_status(reply.text, "4.4.2")
    return reply.code
