"""What is broken when: the scenario's faults, asked by time.

Agents and sessions ask here whether a server is up, how slow it is, whether a link
carries traffic; the answers depend only on the scenario and the simulated time.
"""

from __future__ import annotations

import itertools

from mailsim.scenario import (
    CrashFault,
    DnsFault,
    DownFault,
    GreylistFault,
    HangFault,
    LinkDownFault,
    LossFault,
    MailboxFullFault,
    OverloadFault,
    ResolverDownFault,
    Scenario,
    SlowFault,
    StripStarttlsFault,
    TlsFailFault,
)


class Faults:
    def __init__(self, scenario: Scenario) -> None:
        self.all = list(scenario.faults)
        self._crashes: dict[str, list[tuple[float, float]]] = {}
        for fault in self.all:
            if isinstance(fault, CrashFault):
                self._crashes.setdefault(fault.node, []).append(
                    (fault.at, fault.at + fault.restart)
                )
        # What the network must ask about at every flight (most worlds: nothing).
        self.links_can_fail = any(isinstance(f, LinkDownFault) for f in self.all)
        self.lossy = any(isinstance(f, LossFault) for f in self.all)

    def __bool__(self) -> bool:
        return bool(self.all)

    def crashed(self, node: str, t: float) -> bool:
        """Between a crash and its restart."""
        return any(a <= t < b for a, b in self._crashes.get(node, ()))

    def crash_between(self, node: str, t0: float, t1: float) -> float | None:
        """The moment ``node`` crashes within (t0, t1], if it does."""
        for at, _ in self._crashes.get(node, ()):
            if t0 < at <= t1:
                return at
        return None

    def _on(self, kind: type, node: str, t: float) -> bool:
        """A fault of ``kind`` on ``node`` is in force at ``t``."""
        return any(
            isinstance(f, kind) and getattr(f, "node", None) == node and f.active(t)
            for f in self.all
        )

    def refuses(self, node: str, t: float) -> bool:
        """Connection refused: the service is down (a crashed machine answers nothing)."""
        return self._on(DownFault, node, t)

    def tls_fails(self, node: str, t: float) -> bool:
        return self._on(TlsFailFault, node, t)

    def overloaded(self, node: str, t: float) -> bool:
        return self._on(OverloadFault, node, t)

    def hangs(self, node: str, t: float) -> bool:
        """The server answers nothing: it hangs, or its machine has crashed."""
        return self.crashed(node, t) or self._on(HangFault, node, t)

    def slowness(self, node: str, t: float) -> float:
        factor = 1.0
        for f in self.all:
            if isinstance(f, SlowFault) and f.node == node and f.active(t):
                factor *= f.factor
        return factor

    def dns_rcode(self, domain: str, t: float) -> str | None:
        """NXDOMAIN or SERVFAIL forced on ``domain`` (and names under it), or None."""
        domain = domain.lower()
        for f in self.all:
            if isinstance(f, DnsFault) and f.active(t):
                zone = f.domain.lower()
                if domain == zone or domain.endswith("." + zone):
                    return f.kind.upper()
        return None

    def resolver_down(self, node: str, t: float) -> bool:
        return self._on(ResolverDownFault, node, t)

    def links_down(self, t: float) -> frozenset[frozenset[str]]:
        return frozenset(
            frozenset(f.between) for f in self.all if isinstance(f, LinkDownFault) and f.active(t)
        )

    def loss(self, a: str, b: str, t: float) -> float:
        """Probability that a packet crossing link a–b is lost."""
        keep = 1.0
        for f in self.all:
            if isinstance(f, LossFault) and set(f.between) == {a, b} and f.active(t):
                keep *= 1 - f.rate
        return 1 - keep

    def greylist(self, node: str, t: float) -> GreylistFault | None:
        for f in self.all:
            if isinstance(f, GreylistFault) and f.node == node and f.active(t):
                return f
        return None

    def mailbox_full(self, user: str, t: float) -> int | None:
        for f in self.all:
            if isinstance(f, MailboxFullFault) and f.user == user and f.active(t):
                return f.code
        return None

    def strips_starttls(self, nodes: tuple[str, ...], t: float) -> bool:
        """A man in the middle on a link of this path deletes STARTTLS at ``t``."""
        links = {frozenset(pair) for pair in itertools.pairwise(nodes)}
        return any(
            isinstance(f, StripStarttlsFault) and frozenset(f.between) in links and f.active(t)
            for f in self.all
        )
