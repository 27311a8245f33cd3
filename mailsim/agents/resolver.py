"""The caching DNS resolver: answers from the scenario's zones, one UDP exchange each."""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from mailsim.network import NoRoute
from mailsim.protocols import dns
from mailsim.scenario import DnsNode

if TYPE_CHECKING:
    from mailsim.agents.context import WorldView

STUB_TIMEOUT = 5.0
STUB_ATTEMPTS = 2


class Resolver:
    def __init__(self, world: WorldView, name: str, spec: DnsNode) -> None:
        self.world = world
        self.name = name
        self.spec = spec
        self.cache = dns.Cache()

    def query(
        self, asker: str, qname: str, qtype: dns.QType, message: str = ""
    ) -> Generator[simpy.Event, Any, tuple[dns.Answer, float]]:
        """Ask this resolver from node ``asker``; return the answer and the time it took."""
        world, env = self.world, self.world.env
        start = env.now
        session = world.new_session_id()
        size = dns.query_size(qname)
        full = world.recorder.detail == "full"
        # The stub resolver asks, waits up to 5 s, asks again, waits 5 s more, and gives
        # up (glibc resolv.conf defaults: timeout 5 s, attempts 2).
        for attempt in range(STUB_ATTEMPTS):
            sent = start + attempt * STUB_TIMEOUT
            if sent > env.now:
                yield from world.wait(sent - env.now)
            try:
                took = world.network.transfer_time(asker, self.name, size, env.now)
            except NoRoute:
                took = math.inf
            if took >= STUB_TIMEOUT:
                continue  # lost on the way: nothing to draw, the stub waits
            yield from world.wait(took)
            if full:  # the steps' texts, made only where they are kept
                again = f" (again, after {STUB_TIMEOUT:.0f} s)" if attempt else ""
                world.recorder.event(
                    sent, env.now, message, session, asker, self.name, "dns", f"query {qtype}",
                    "", f"{qtype}? {qname}{again}", size,
                )  # fmt: skip
            if not world.faults.resolver_down(self.name, env.now):
                break
        else:
            yield from world.wait(start + STUB_TIMEOUT * STUB_ATTEMPTS - env.now)
            now = env.now
            # The stub resolver on the asking machine gives up: nothing travels.
            world.recorder.event(
                now, now, message, session, asker, asker, "dns", "timeout", "",
                f"{qtype}? {qname}: no answer from the resolver", 0,
            )  # fmt: skip
            return dns.Answer(qname, qtype, "SERVFAIL"), env.now - start
        answer = self.cache.get(qname, qtype, env.now)
        if answer is None:
            yield from world.wait(self.spec.recursion_time)
            forced = world.faults.dns_rcode(qname, env.now)
            if forced is not None:
                answer = dns.Answer(qname.lower(), qtype, forced)  # type: ignore[arg-type]
            else:
                answer = dns.lookup(world.zones, qname, qtype)
            self.cache.put(answer, env.now)
            how = "cache miss"
        else:
            yield from world.wait(self.spec.processing)
            how = "cache hit"
        sent = env.now
        size = answer.wire_size()
        try:
            back = world.network.transfer_time(self.name, asker, size, env.now)
        except NoRoute:  # the way back went down meanwhile: the stub resolver gives up
            yield from world.wait(max(0.0, start + STUB_TIMEOUT * STUB_ATTEMPTS - env.now))
            return dns.Answer(qname, qtype, "SERVFAIL"), env.now - start
        yield from world.wait(back)
        if full:
            world.recorder.event(
                sent, env.now, message, session, self.name, asker, "dns", "answer",
                answer.rcode, f"{qname} {answer} ({how})", size,
            )  # fmt: skip
        return answer, env.now - start
