"""A mail server (MTA): takes messages in (submission on 587, relay on 25), queues them,
and delivers each copy to its next hop: the mailbox server over LMTP for its own domains,
a smart host if it has one, otherwise the recipient domain's MX found in DNS."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from mailsim.message import Copy, Stamp
from mailsim.protocols import Content, Reply, Step, Transcript, dns, smtp
from mailsim.retry import PostfixPolicy
from mailsim.scenario import SmtpNode
from mailsim.session import Session, Work

if TYPE_CHECKING:
    from mailsim.world import World


def stamp_protocol(tls: str | None, authenticated: bool, lmtp: bool = False) -> str:
    """``with`` keyword of a Received header (RFC 3848): ESMTP, ESMTPS, ESMTPSA, LMTP…"""
    base = "LMTP" if lmtp else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


class Mta:
    def __init__(self, world: World, name: str, spec: SmtpNode) -> None:
        self.world = world
        self.name = name
        self.spec = spec
        self.host = world.hosts[name]
        self.slot = simpy.Resource(world.env, capacity=spec.concurrency)
        self.serial = 0
        self.queue: list[Copy] = []
        self.policy = PostfixPolicy()
        self.domains = frozenset(d.lower() for d in spec.domains)

    # -- the server side -------------------------------------------------------------------

    def server(self, kind: smtp.Kind, client: str) -> tuple[smtp.SmtpServer, Work]:
        """A fresh server state machine for one incoming session from node ``client``."""
        spec = self.spec
        tls = None if spec.tls == "none" else spec.tls
        config = smtp.ServerConfig(
            host=self.host,
            kind=kind,
            tls=tls,
            auth=spec.auth if kind == "submission" else "none",
            pipelining=spec.pipelining,
            size_limit=int(spec.message_size_limit),
            local_domains=self.domains,
            relay_allowed=client in spec.mynetworks,
            credentials=self.world.credentials,
            local_users=self.world.mailbox_users,
        )
        self.serial += 1
        work = Work(spec.processing.command, spec.processing.data, spec.processing.tls, tls)
        return smtp.SmtpServer(config, smtp.queue_id(self.host, self.serial)), work

    def receive(
        self, copies: list[Copy], session: Session, server: smtp.SmtpServer, pre: dict[str, float]
    ) -> None:
        """Copies the server has just answered 250 for: they are ours now (RFC 5321 §6.1)."""
        now = self.world.env.now
        world = self.world
        costs = session.snapshot()
        for name, value in pre.items():
            costs[name] = costs.get(name, 0.0) + value
        protocol = stamp_protocol(server.tls_active, bool(server.authenticated))
        for copy in copies:
            copy.account(now, costs, "queue")
            copy.stamps.append(
                Stamp(
                    helo=server.helo or session.client,
                    client_host=world.hosts[session.client],
                    client_ip=world.ips[session.client],
                    by=self.host,
                    protocol=protocol,
                    queue_id=server.queue_id,
                    recipient=copy.recipient,
                    time=now,
                    tls=server.tls_active,
                )
            )
            self.queue.append(copy)
        world.env.process(self.deliver(copies, now))

    # -- the client side -------------------------------------------------------------------

    def next_hop(self, copy: Copy) -> tuple[str, str]:
        domain = copy.recipient.rsplit("@", 1)[-1].lower()
        if domain in self.domains:
            user = self.world.scenario.users.get(copy.recipient)
            return ("lmtp", user.mailbox if user and user.mailbox else "")
        if self.spec.relayhost:
            return ("relay", self.spec.relayhost)
        return ("mx", domain)

    def deliver(self, copies: list[Copy], arrived_at: float) -> Generator[simpy.Event, Any, None]:
        """Hand every copy to its next hop; copies with the same next hop share a session."""
        groups: dict[tuple[str, str], list[Copy]] = {}
        for copy in copies:
            groups.setdefault(self.next_hop(copy), []).append(copy)
        for (kind, target), group in groups.items():
            self.world.env.process(self._deliver_group(kind, target, group, arrived_at))
        yield self.world.env.timeout(0)

    def _deliver_group(
        self, kind: str, target: str, copies: list[Copy], arrived_at: float
    ) -> Generator[simpy.Event, Any, None]:
        world, env = self.world, self.world.env
        attempts = 0
        while copies:
            attempts += 1
            pre = {"dns": 0.0}
            if kind == "mx":
                candidates, failure = yield from self._mx_candidates(target, copies, pre)
            else:
                candidates, failure = [target], None
            decided: dict[str, Reply] = {}
            for candidate in candidates:
                if not world.network.reachable(self.name, candidate):
                    failure = Reply("451", (f"4.4.1 connect to {candidate}: No route to host",))
                    continue
                decided = yield from self._transfer(kind, candidate, copies, pre, attempts)
                if any(not r.code.startswith("4") for r in decided.values()):
                    break  # this MX decided (RFC 5321 §5.1: try the next only on failure)
            remaining = []
            for copy in copies:
                reply = decided.get(copy.recipient, failure or Reply("451", ("4.3.0 deferred",)))
                if reply.code.startswith("2"):
                    self.queue.remove(copy)
                elif reply.code.startswith("5"):
                    self.queue.remove(copy)
                    world.finish(copy, "bounced", str(reply))
                else:
                    remaining.append(copy)
                    copy.reason = str(reply)
            copies = remaining
            if not copies:
                return
            retry_at = self.policy.next_attempt(arrived_at, env.now)
            if retry_at is None:
                for copy in copies:
                    self.queue.remove(copy)
                    world.finish(copy, "expired", copy.reason)
                return
            yield env.timeout(retry_at - env.now)

    def _mx_candidates(
        self, domain: str, copies: list[Copy], pre: dict[str, float]
    ) -> Generator[simpy.Event, Any, tuple[list[str], Reply | None]]:
        """MX hosts of ``domain`` as nodes, best first (RFC 5321 §5.1), or the failure."""
        world = self.world
        resolver = world.resolver_for(self.name)
        message = copies[0].message.id
        answer, took = yield from resolver.query(self.name, domain, "MX", message)
        pre["dns"] += took
        if answer.rcode == "NXDOMAIN":
            return [], Reply(
                "550", (f"5.1.2 <{copies[0].recipient}>: Host or domain name not found",)
            )
        if answer.rcode != "NOERROR":
            return [], Reply("451", (f"4.4.3 Host or domain name lookup failed: {answer.rcode}",))
        hosts = dns.mx_hosts(answer, domain, world.mx_rng(self.name))
        nodes: list[str] = []
        for host in hosts:
            a, took = yield from resolver.query(self.name, host, "A", message)
            pre["dns"] += took
            for ip in a.records:
                node = world.node_by_ip.get(str(ip))
                if node is not None and node != self.name:
                    nodes.append(node)
        if not nodes:
            return [], Reply("550", (f"5.4.4 <{copies[0].recipient}>: MX host has no address",))
        return nodes, None

    def _transfer(
        self, kind: str, target: str, copies: list[Copy], pre: dict[str, float], attempt: int
    ) -> Generator[simpy.Event, Any, dict[str, Reply]]:
        """One SMTP or LMTP session to ``target`` carrying ``copies``."""
        world = self.world
        lmtp = kind == "lmtp"
        agent = world.pops[target] if lmtp else world.mtas[target]
        server, work = agent.server("lmtp" if lmtp else "relay", self.name)
        by_rcpt = {copy.recipient: copy for copy in copies}
        message = copies[0].message
        session = Session(world, self.name, target, "lmtp" if lmtp else "smtp", message.id)
        handed: dict[str, float] = {}

        def on_server(step: Step, replies: list[Reply], s: Session) -> None:
            if isinstance(step, Content):
                finals = replies if lmtp else replies * len(server.last_recipients)
                taken = [
                    by_rcpt[rcpt]
                    for rcpt, reply in zip(server.last_recipients, finals, strict=True)
                    if reply.code.startswith("2")
                ]
                for copy in taken:
                    handed[copy.recipient] = world.env.now
                agent.receive(taken, s, server, pre)

        config = smtp.ClientConfig(
            helo=self.host,
            port=smtp.LMTP_PORT if lmtp else smtp.RELAY_PORT,
            starttls=not lmtp,
            lmtp=lmtp,
        )
        envelope = smtp.Envelope(message.sender, tuple(by_rcpt), message.size)
        transcript: Transcript = yield from session.play(
            smtp.client(config, envelope), server, work, agent.slot, on_server=on_server
        )
        for copy in copies:
            reply = transcript.replies.get(copy.recipient, transcript.final)
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
