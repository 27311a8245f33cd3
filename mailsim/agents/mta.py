"""A mail server (MTA): takes messages in (submission on 587, relay on 25), queues them,
and delivers each copy to its next hop: the mailbox server over LMTP for its own domains,
a smart host if it has one, otherwise the recipient domain's MX found in DNS.

Its queue manager follows Postfix: a message is tried as soon as it arrives; a 4xx reply
or a failed connection defers it and it is tried again on the chosen retry schedule
(:mod:`mailsim.retry`), the MX hosts in order of preference within each attempt; a 5xx
reply, or a message that outlives the queue lifetime, is returned to its sender with a
delivery status notification — unless it is itself a bounce (RFC 5321 §4.5.5)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import simpy

from mailsim.agents.keys import SmtpResume, transfer_key
from mailsim.message import Copy, Failure, enhanced_status
from mailsim.protocols import (
    Content,
    Reply,
    Step,
    Transcript,
    dns,
    http,
    policy,
    sender_auth,
    smtp,
)
from mailsim.retry import Schedule
from mailsim.rng import stream
from mailsim.scenario import SmtpNode
from mailsim.session import Session, Work
from mailsim.slots import Slots

NO_WORK = Work(0.0, 0.0, 0.0, None)  # a machine without a mail server: it never answers
DEFERRED = Reply("451", ("4.3.0 deferred",))  # for a copy no host of the attempt decided

if TYPE_CHECKING:
    from mailsim.agents.context import WorldView


def stamp_protocol(tls: str | None, authenticated: bool, lmtp: bool = False) -> str:
    """``with`` keyword of a Received header (RFC 3848): ESMTP, ESMTPS, ESMTPSA, LMTP…"""
    base = "LMTP" if lmtp else "ESMTP"
    # Interned: every copy's Received stamp keeps one of these few words.
    return sys.intern(base + ("S" if tls else "") + ("A" if authenticated else ""))


class SenderCheck:
    """SPF, DKIM and DMARC at the end of DATA: the verdict goes on the copies
    (Authentication-Results, spam folder), a DMARC reject is the reply. The verdict comes
    from the scenario's records and the copies as they arrived, so it is known before the
    session plays: a compiled session's key reads it (:meth:`refusal`)."""

    def __init__(self, world: WorldView, host: str, client: str, mine: list[Copy]) -> None:
        self.world, self.host, self.client, self.mine = world, host, client, mine
        self._verdict: sender_auth.Verdict | None = None

    def verdict(self) -> sender_auth.Verdict:
        if self._verdict is None:
            self._verdict = self.world.authenticate(self.host, self.client, self.mine[0])
        return self._verdict

    def refusal(self) -> tuple[str, str] | None:
        """The reply a DMARC reject gives (it names the From: domain), or None."""
        return self.verdict().reply

    def __call__(self) -> Reply | None:
        verdict = self.verdict()
        for copy in self.mine:
            copy.authentication = sys.intern(verdict.header)  # the same for many copies
            copy.folder = "spam" if verdict.action == "spam folder" else "inbox"
        refusal = verdict.reply
        return Reply(refusal[0], (refusal[1],)) if refusal else None


class Mta:
    def __init__(self, world: WorldView, name: str, spec: SmtpNode) -> None:
        self.world = world
        self.name = name
        self.spec = spec
        self.host = world.hosts[name]
        self.slot = Slots(world.env, spec.concurrency)
        self.serial = 0
        self.queue: list[Copy] = []
        self.domains = frozenset(d.lower() for d in spec.domains)
        self.greylist = policy.Greylist()
        # Ordered (a dict, not a set): crash interrupts must reach processes in a fixed
        # order, or the same seed could give different results.
        self.deliveries: dict[simpy.Process, None] = {}
        self.in_hand: set[Copy] = set()  # answered 250 by the next hop, reply not yet read
        self._cut: dict[Copy, int] = {}  # copy → the session a crash cut
        self._acknowledged: set[Copy] = set()  # 250 read before a crash cut the session
        self.up_at = 0.0  # when it is back after a crash
        self._client_configs: dict[tuple[bool, str], smtp.ClientConfig] = {}
        proc, tls = spec.processing, None if spec.tls == "none" else spec.tls
        self.work = Work(proc.command, proc.data, proc.tls, tls)
        # Server settings for a kind of session from a client, without per-session checks.
        self._configs: dict[tuple[str, str], smtp.ServerConfig] = {}

    @functools.cached_property
    def schedule(self) -> Schedule:
        """The retry schedule, made when a first message is deferred. Its queue scans (or
        Exim's queue runs) keep their own phase: pinned by the scenario, or drawn from
        this server's own stream — it started at some moment before the run, and no
        other component's draws move."""
        q = self.spec.queue
        schedule = Schedule(
            q.policy,
            q.queue_run_delay,
            q.minimal_backoff_time,
            q.maximal_backoff_time,
            q.maximal_queue_lifetime,
            q.bounce_queue_lifetime,
            q.queue_runner_interval,
        )
        phase, every = q.scan_phase, schedule.scan_interval
        if phase is None and every is not None:
            phase = float(stream(self.world.seed, "queue-scan", self.name).uniform(0.0, every))
        return replace(schedule, scan_phase=phase or 0.0)

    # -- the server side -------------------------------------------------------------------

    def server(
        self, kind: smtp.Kind, client: str, incoming: list[Copy] | None = None
    ) -> tuple[smtp.SmtpServer, Work]:
        """A fresh server state machine for one incoming session from node ``client``
        (carrying ``incoming``: the copies the sender will offer, for the sender checks)."""
        rcpt_check = self._greylist_check(client) if kind == "relay" else None
        end_check = self._sender_check(client, incoming) if kind == "relay" else None
        config = self._configs.get((kind, client)) if rcpt_check is end_check is None else None
        if config is None:
            config = self._config(kind, client, rcpt_check, end_check)
            if rcpt_check is end_check is None:  # the rest is fixed for the run: made once
                self._configs[(kind, client)] = config
        self.serial += 1
        return smtp.SmtpServer(config, smtp.queue_id(self.host, self.serial)), self.work

    def _config(
        self,
        kind: smtp.Kind,
        client: str,
        rcpt_check: smtp.RcptCheck | None,
        end_check: SenderCheck | None,
    ) -> smtp.ServerConfig:
        spec = self.spec
        return smtp.ServerConfig(
            host=self.host,
            kind=kind,
            tls=self.work.tls_version,
            auth=spec.auth if kind == "submission" else "none",
            pipelining=spec.pipelining,
            size_limit=int(spec.message_size_limit),
            local_domains=self.domains,
            relay_domains=frozenset(d.lower() for d in spec.relay_domains),
            relay_allowed=spec.open_relay or client in spec.mynetworks,
            credentials=self.world.credentials,
            local_users=self.world.mailbox_users,
            rcpt_check=rcpt_check,
            end_check=end_check,
        )

    def front_end(self, client: str, version: http.Version) -> tuple[http.FrontEnd, Work]:
        """The webmail front end on this machine, for one browser connection from node
        ``client``. It speaks TLS 1.3 whatever the mail server's own TLS settings (every
        browser and web server does), and works as this server does: a command's time on
        each request, the message's time on a message, the handshake's on TLS."""
        spec = self.spec
        self.serial += 1
        front = http.FrontEnd(
            smtp.queue_id(self.host, self.serial), int(spec.message_size_limit), version
        )
        # A browser says no HELO: the line names the client as its address resolves.
        front.helo = self.world.hosts[client]
        work = Work(spec.processing.command, spec.processing.data, spec.processing.tls, "1.3")
        return front, work

    def _greylist_check(self, client: str) -> smtp.RcptCheck | None:
        world = self.world
        if not world.faults.greylist(self.name, world.env.now):
            return None
        ip = world.ips[client]

        def check(sender: str, rcpt: str) -> Reply | None:
            now = world.env.now
            fault = world.faults.greylist(self.name, now)
            if fault is None:
                return None
            return self.greylist.check(ip, sender, rcpt, now, fault.delay, fault.status)

        return check

    def _sender_check(self, client: str, incoming: list[Copy] | None) -> SenderCheck | None:
        """At the end of DATA, for mail to our own domains: SPF, DKIM, DMARC (see
        :class:`SenderCheck`)."""
        mine = [
            c for c in incoming or ()
            if c.recipient.rsplit("@", 1)[-1].lower() in self.domains and not c.message.is_bounce
        ]  # fmt: skip
        if not self.spec.sender_checks or not mine:
            return None
        return SenderCheck(self.world, self.host, client, mine)

    def receive(
        self,
        copies: list[Copy],
        session: Session,
        server: smtp.SmtpServer | http.FrontEnd,
        pre: dict[str, float],
        protocol: str | None = None,
    ) -> None:
        """Copies the server has just answered 250 for: they are ours now (RFC 5321 §6.1).
        A server that adds a footer breaks the DKIM signatures already on them; one that
        signs for the From domain signs what its own users submit. ``protocol`` is the
        Received line's ``with`` word when it is not SMTP's (webmail: HTTPS)."""
        signs = {d.lower() for d in self.spec.dkim_sign}
        for copy in copies:
            if self.spec.modifies_body and copy.dkim_domain is not None:
                copy.dkim_broken = True
            domain = copy.message.author.rsplit("@", 1)[-1].lower()
            if copy.dkim_domain is None and domain in signs and server.authenticated:
                copy.dkim_domain = domain
        software = "webmail" if protocol else "Postfix"
        protocol = protocol or stamp_protocol(server.tls_active, bool(server.authenticated))
        self.world.arrive(copies, session, server, pre, self.host, protocol, software)
        self.enqueue(copies)

    def enqueue(self, copies: list[Copy]) -> None:
        """Put copies in the queue and start delivering them; copies with the same next
        hop share a session."""
        self.queue.extend(copies)
        env = self.world.env
        groups: dict[tuple[str, str], list[Copy]] = {}
        for copy in copies:
            groups.setdefault(self.next_hop(copy), []).append(copy)
        for (kind, target), group in groups.items():
            process = env.process(self._deliver_group(kind, target, group, env.now))
            self.deliveries[process] = None

    # -- the client side -------------------------------------------------------------------

    def next_hop(self, copy: Copy) -> tuple[str, str]:
        domain = copy.recipient.rsplit("@", 1)[-1].lower()
        if domain in self.domains:
            user = self.world.user(copy.recipient)
            return ("lmtp", user.mailbox if user and user.mailbox else "")
        if self.spec.relayhost:
            return ("relay", self.spec.relayhost)
        return ("mx", domain)

    def crash(self, restart_at: float) -> None:
        """The machine dies: every delivery under way stops where it is. What is in the
        queue is on disk and is delivered after the restart."""
        self.up_at = max(self.up_at, restart_at)
        for process in list(self.deliveries):
            if process.is_alive:
                process.interrupt("crash")

    def _sleep_until(self, t: float) -> Generator[simpy.Event, Any, None]:
        """Wait until ``t`` and until the machine is up; a crash meanwhile only makes
        the wait longer."""
        env = self.world.env
        while True:
            try:
                yield env.timeout(max(0.0, max(t, self.up_at) - env.now))
                return
            except simpy.Interrupt:
                continue

    def _deliver_group(
        self, kind: str, target: str, copies: list[Copy], arrived_at: float
    ) -> Generator[simpy.Event, Any, None]:
        _world, env = self.world, self.world.env
        failures: list[float] = []
        warning = self.spec.queue.delay_warning_time
        try:
            while copies:
                copies = self._drop_loops(copies, target)
                if not copies:
                    return
                try:
                    decided = yield from self._attempt(kind, target, copies, len(failures) + 1)
                except simpy.Interrupt:
                    # Crashed mid-attempt: after the restart, try again at once. A copy the
                    # next hop had accepted before this side read its 250 is there now,
                    # and a second one stays here (RFC 5321 §6.1).
                    for copy in copies:
                        if copy in self._acknowledged and copy in self.queue:
                            self.queue.remove(copy)  # its 250 was read: it is delivered
                    copies = [c for c in copies if c not in self._acknowledged]
                    copies = [self._stay(c) if c in self.in_hand else c for c in copies]
                    self._cut.clear()
                    self._acknowledged.clear()
                    yield from self._sleep_until(self.up_at)
                    continue
                remaining = []
                for copy in copies:
                    reply = decided[copy.recipient]
                    if reply.code.startswith("2"):
                        if copy in self.queue:  # gone already if its 250 was read
                            self.queue.remove(copy)
                    elif reply.code.startswith("5"):
                        self.queue.remove(copy)
                        code = enhanced_status(str(reply), "5.0.0")
                        self._return(copy, "bounced", str(reply), code, str(reply), target)
                    else:
                        remaining.append(copy)
                        copy.reason = str(reply)
                        copy.hops_failed += 1
                copies = remaining
                if not copies:
                    return
                failures.append(env.now)
                bounce = copies[0].message.is_bounce
                retry_at = self.schedule.next_attempt(arrived_at, failures, bounce)
                if retry_at is None:
                    for copy in copies:
                        self.queue.remove(copy)
                        why = f"delivery time expired; last reply: {copy.reason}"
                        self._return(copy, "expired", why, "4.4.7", copy.reason, target)
                    return
                if warning and not bounce and env.now - arrived_at >= warning:
                    self._warn([c for c in copies if not (c.warned or c.is_duplicate)])
                yield from self._sleep_until(retry_at)
        finally:
            self.deliveries.pop(env.active_process, None)  # type: ignore[arg-type]

    def _attempt(
        self, kind: str, target: str, copies: list[Copy], attempt: int
    ) -> Generator[simpy.Event, Any, dict[str, Reply]]:
        """One delivery attempt: DNS, then each MX host in turn until one decides."""
        world = self.world
        pre = {"dns": 0.0}
        failure: Reply | None = None
        if kind == "mx":
            start = world.env.now
            candidates, failure = yield from self._mx_candidates(target, copies, pre)
            if not candidates:
                # The attempt ended in DNS: a failed attempt of the hop to the domain's
                # mail server, for a reason DNS gave — the resolver refused nothing.
                for copy in copies:
                    world.record_attempt(
                        copy, self.name, target, "smtp", 0, start, world.env.now, attempt,
                        failure,
                    )  # fmt: skip
        elif kind == "lmtp" and not target:
            candidates = []
            failure = policy.unknown_local_user()
        else:
            candidates = [target]
        decided: dict[str, Reply] = {}
        for candidate in candidates:
            decided = yield from self._transfer(kind, candidate, copies, pre, attempt)
            if any(not r.code.startswith("4") for r in decided.values()):
                break  # this host decided (RFC 5321 §5.1: try the next only on failure)
            failure = next(iter(decided.values()), failure)
        fallback = failure or DEFERRED
        return {c.recipient: decided.get(c.recipient, fallback) for c in copies}

    def _stay(self, copy: Copy) -> Copy:
        """The copy went ahead, but this side never read the 250: it keeps a second one."""
        second = self.world.duplicate(copy, self._cut.get(copy, 0))
        self.queue.remove(copy)
        self.queue.append(second)
        self.in_hand.discard(copy)
        return second

    def _return(
        self, copy: Copy, status: str, reason: str, code: str, diagnostic: str, target: str
    ) -> None:
        """Give a copy up and tell its sender (never for a bounce: RFC 5321 §4.5.5)."""
        world = self.world
        if not (copy.message.is_bounce or copy.is_duplicate):
            remote = world.hosts.get(target)
            failure = Failure(copy.recipient, "failed", code, diagnostic, remote)
            world.send_report(self, copy, failure)
        world.finish(copy, status, reason)

    def _drop_loops(self, copies: list[Copy], target: str) -> list[Copy]:
        """Copies that have passed too many servers (RFC 5321 §6.3; Postfix's
        hopcount_limit is 50) are in a loop: they are returned, not sent on."""
        fine = []
        for copy in copies:
            if len(copy.stamps) < policy.HOPCOUNT_LIMIT:
                fine.append(copy)
                continue
            self.queue.remove(copy)
            why = str(policy.too_many_hops())
            self._return(copy, "bounced", why, "5.4.6", why, target)
        return fine

    def _warn(self, copies: list[Copy]) -> None:
        """delay_warning_time passed: tell the sender the mail is still being retried."""
        for copy in copies:
            copy.warned = True
            code = enhanced_status(copy.reason, "4.0.0")
            failure = Failure(copy.recipient, "delayed", code, copy.reason)
            self.world.send_report(self, copy, failure, delayed=True)

    def _mx_candidates(
        self, domain: str, copies: list[Copy], pre: dict[str, float]
    ) -> Generator[simpy.Event, Any, tuple[list[str], Reply | None]]:
        """MX hosts of ``domain`` as nodes, best first (RFC 5321 §5.1), or the failure."""
        world = self.world
        resolver = world.resolver_for(self.name)
        message = copies[0].message.id
        answer, took = yield from resolver.query(self.name, domain, "MX", message)
        pre["dns"] += took
        rcpt = copies[0].recipient
        if answer.rcode != "NOERROR":
            return [], policy.lookup_failed(answer.rcode, domain, rcpt)
        hosts = dns.mx_hosts(answer, domain, world.mx_rng(self.name), own_host=self.host)
        nodes: list[str] = []
        failure: Reply | None = None
        for host in hosts:
            a, took = yield from resolver.query(self.name, host, "A", message)
            pre["dns"] += took
            if a.rcode not in ("NOERROR", "NXDOMAIN"):
                failure = policy.lookup_failed(a.rcode, host, rcpt, "A")
            for ip in a.records:
                node = world.node_by_ip.get(str(ip))
                if node is not None and node != self.name:
                    nodes.append(node)
        if not nodes and failure is None:
            best = min((pref for pref, _ in answer.records), default=None)  # type: ignore[misc]
            own = [pref for pref, host in answer.records if host.lower() == self.host.lower()]  # type: ignore[misc]
            looped = best is not None and own and min(own) == best
            failure = policy.loops_back(domain) if looped else policy.no_usable_mx(rcpt)
        return nodes, failure

    def _tls_policy(self, copies: list[Copy]) -> smtp.TlsPolicy:
        """Postfix's opportunistic TLS: after a failed handshake, the next attempt goes
        in plaintext rather than never (TLS_README, "client_tls_may")."""
        policy = self.spec.outgoing_tls
        if policy == "may" and any(copy.tls_fallback for copy in copies):
            return "none"
        return policy

    def _client_config(self, lmtp: bool, tls: smtp.TlsPolicy) -> smtp.ClientConfig:
        """This MTA's client settings for LMTP or SMTP with a TLS policy: made once each
        (a long run opens a session for every copy)."""
        config = self._client_configs.get((lmtp, tls))
        if config is None:
            config = self._client_configs[lmtp, tls] = smtp.ClientConfig(
                helo=self.host,
                port=smtp.LMTP_PORT if lmtp else smtp.RELAY_PORT,
                tls=tls,
                lmtp=lmtp,
                **smtp.PROFILES["postfix"],
            )
        return config

    def _transfer(
        self, kind: str, target: str, copies: list[Copy], pre: dict[str, float], attempt: int
    ) -> Generator[simpy.Event, Any, dict[str, Reply]]:
        """One SMTP or LMTP session to ``target`` carrying ``copies``."""
        world = self.world
        lmtp = kind == "lmtp"
        agent = world.pops[target] if lmtp else world.mtas.get(target)
        message = copies[0].message
        session = Session(world, self.name, target, "lmtp" if lmtp else "smtp", message.id)
        if agent is None:
            # DNS sends the mail to a machine that runs no mail server (an A record
            # naming the wrong host): nothing listens on port 25, the SYN gets an RST.
            session.closed = True
            server, work = smtp.SmtpServer(smtp.ServerConfig(host=world.hosts[target])), NO_WORK
        else:
            server, work = (
                agent.server("lmtp", self.name)
                if lmtp
                else agent.server("relay", self.name, copies)
            )
        by_rcpt = {copy.recipient: copy for copy in copies}
        handed: dict[str, float] = {}

        def on_server(step: Step, replies: list[Reply], s: Session) -> None:
            if isinstance(step, Content):
                finals = replies if lmtp else replies * len(server.last_recipients)
                taken = [
                    by_rcpt[rcpt]
                    for rcpt, reply in zip(server.last_recipients, finals, strict=True)
                    if reply.code.startswith("2")
                ]
                taken = world.committed(taken, s)
                if not s.client_gone:
                    for copy in taken:
                        handed[copy.recipient] = world.env.now
                        self.in_hand.add(copy)
                agent.receive(taken, s, server, pre)  # type: ignore[union-attr]

        def on_client(step: Step, replies: list[Reply], s: Session) -> None:
            if isinstance(step, Content):
                # This side has read the 250: the copy is the next hop's now, even if
                # this machine crashes before QUIT.
                taken = [c for c in copies if c in self.in_hand]
                acknowledged.update(taken)
                self.in_hand.difference_update(copies)
                for copy in taken:
                    self.queue.remove(copy)  # Postfix deletes the queue file now

        acknowledged: set[Copy] = set()
        config = self._client_config(lmtp, "none" if lmtp else self._tls_policy(copies))
        envelope = smtp.Envelope(message.sender, tuple(by_rcpt), message.size)
        key = None
        if agent is not None:
            sure = not lmtp or agent.spec.quota is None  # type: ignore[union-attr]
            key = transfer_key(world, self.name, target, config, envelope, server, work, sure)
        try:
            transcript: Transcript = yield from session.play(
                smtp.client(config, envelope), server, work, agent.slot if agent else None,
                on_server=on_server, on_client=on_client, key=key,
                resume=SmtpResume(server, config, envelope) if key else None,
            )  # fmt: skip
        except simpy.Interrupt:
            cut = smtp.lost(f"session cut short: {self.host} crashed")
            ok = Reply("250", ("2.0.0 Ok (accepted before the crash)",))
            for copy in copies:
                end = handed.get(copy.recipient, world.env.now)
                if copy in acknowledged:
                    self._acknowledged.add(copy)
                    world.record_hop(copy, session, session.protocol, end, attempt, ok, None, False)
                    continue
                self._cut[copy] = session.id
                copy.hops_failed += 1
                world.record_hop(copy, session, session.protocol, end, attempt, cut, None, False)
            raise
        for copy in copies:
            self.in_hand.discard(copy)
            reply = transcript.replies.get(copy.recipient, transcript.final)
            if reply is not None and "Cannot start TLS" in reply.text:
                copy.tls_fallback = True
            world.record_hop(
                copy,
                session,
                "lmtp" if lmtp else "smtp",
                handed.get(copy.recipient, world.env.now),
                attempt,
                reply,
                transcript.tls,
                transcript.authenticated,
            )
        return dict(transcript.replies)
