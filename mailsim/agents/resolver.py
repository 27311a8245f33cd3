"""The caching DNS resolver: answers from the scenario's zones, one UDP exchange each."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from mailsim.protocols import dns
from mailsim.scenario import DnsNode

if TYPE_CHECKING:
    from mailsim.world import World


class Resolver:
    def __init__(self, world: World, name: str, spec: DnsNode) -> None:
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
        took = world.network.transfer_time(asker, self.name, size)
        yield env.timeout(took)
        world.recorder.event(
            start, env.now, message, session, asker, self.name, "dns", f"query {qtype}", "",
            f"{qtype}? {qname}", size,
        )  # fmt: skip
        answer = self.cache.get(qname, qtype, env.now)
        if answer is None:
            yield env.timeout(self.spec.recursion_time)
            answer = dns.lookup(world.zones, qname, qtype)
            self.cache.put(answer, env.now)
            how = "cache miss"
        else:
            yield env.timeout(self.spec.processing)
            how = "cache hit"
        sent = env.now
        size = answer.wire_size()
        yield env.timeout(world.network.transfer_time(self.name, asker, size))
        world.recorder.event(
            sent, env.now, message, session, self.name, asker, "dns", "answer", answer.rcode,
            f"{qname} {answer} ({how})", size,
        )  # fmt: skip
        return answer, env.now - start
