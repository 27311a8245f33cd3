"""What the agents and sessions need of the world they live in, and nothing more.

The mail programs, servers, resolver and sessions are built by :class:`mailsim.world.World`
but depend only on this narrow interface: the clock, the recorder, the network and its
faults, the scenario's names and addresses, and the few services the world gives (a new
session number, a copy's journey booked, a report sent). ``World`` is checked against
it by the tests (every member here exists there), so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import simpy

    from mailsim.agents.mta import Mta
    from mailsim.agents.pop import MailboxServer
    from mailsim.agents.resolver import Resolver
    from mailsim.clock import Clock
    from mailsim.compiled import Templates
    from mailsim.eavesdrop import Tap
    from mailsim.faults import Faults
    from mailsim.message import Copy, Failure, Message
    from mailsim.network import Topology
    from mailsim.protocols import Reply, sender_auth
    from mailsim.protocols.dns import ZoneData
    from mailsim.record import Recorder
    from mailsim.scenario import User
    from mailsim.session import Session


class WorldView(Protocol):
    """The world as the agents see it."""

    env: Clock
    seed: int
    fast_forward: bool
    templates: Templates
    swift: bool
    recorder: Recorder
    network: Topology
    faults: Faults
    taps: list[Tap]
    zones: dict[str, ZoneData]
    hosts: dict[str, str]
    ips: dict[str, str]
    node_by_ip: dict[str, str]
    credentials: dict[str, str]
    mailbox_users: frozenset[str]
    mtas: dict[str, Mta]
    pops: dict[str, MailboxServer]
    open_sessions: dict[int, Session]
    idle_sessions: dict[int, Session]

    def wait(self, seconds: float) -> Generator[simpy.Event, Any, None]: ...
    def new_session_id(self) -> int: ...
    def resolver_for(self, node: str) -> Resolver: ...
    def mx_rng(self, node: str) -> np.random.Generator: ...
    def user(self, address: str) -> User | None: ...
    def authenticate(self, receiver: str, client: str, copy: Copy) -> sender_auth.Verdict: ...
    def new_copies(self, message: Message) -> list[Copy]: ...
    def committed(self, copies: list[Copy], session: Session) -> list[Copy]: ...
    def duplicate(self, copy: Copy, session: int) -> Copy: ...
    def arrive(self, copies: list[Copy], session: Session, server: Any, pre: dict[str, float],
               by: str, protocol: str, software: str) -> None: ...  # fmt: skip
    def deliver(self, copy: Copy) -> None: ...
    def retrieve(
        self, copy: Copy, session: Session, tls: str | None, costs: dict[str, float],
        reply: Reply, retrieval: str = "pop3", since: float | None = None,
    ) -> None: ...  # fmt: skip
    def finish(self, copy: Copy, status: str, reason: str) -> None: ...
    def send_report(
        self, mta: Mta, copy: Copy, failure: Failure, delayed: bool = False
    ) -> None: ...
    def record_hop(self, copy: Copy, session: Session, protocol: str, end: float,
                   attempts: int, reply: Reply | None, tls: str | None, auth: bool,
                   start: float | None = None, down: bool = False) -> None: ...  # fmt: skip
    def record_attempt(self, copy: Copy, src: str, dst: str, protocol: str, session: int,
                       start: float, end: float, attempts: int, reply: Reply | None,
                       tls: str | None = None, auth: bool = False,
                       acknowledged: float | None = None) -> None: ...  # fmt: skip
