"""Playing a pure dialogue over the simulated network, as SimPy waits.

A client dialogue (from :mod:`mailsim.protocols`) yields steps; this module carries each
across the network, lets the server state machine answer, waits exactly as long as the
network and the server take, records each step, and sends the replies back into the
dialogue. Every wait is booked under one cost (network, tls, server, queue), so a
session's duration is fully explained by its parts.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from mailsim.network import TCP_ACK, TCP_SYN
from mailsim.protocols import Commands, Connect, Content, Reply, Step, TlsHandshake, tls

if TYPE_CHECKING:
    from mailsim.world import World


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


class Session:
    """One TCP connection from ``client`` to ``server_node`` playing one dialogue."""

    def __init__(
        self,
        world: World,
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
        self.message = message
        self.id = world.new_session_id()
        self.start = self.env.now
        self.costs: dict[str, float] = {"network": 0.0, "tls": 0.0, "server": 0.0, "queue": 0.0}
        self._pending = 0  # bytes owed to the next client flight (TLS 1.3 Finished)

    # -- waiting and recording -------------------------------------------------------------

    def _wait(self, seconds: float, cost: str) -> simpy.Timeout:
        self.costs[cost] += seconds
        return self.env.timeout(seconds)

    def _send(
        self, src: str, dst: str, nbytes: int, cost: str, bulk: bool = False
    ) -> Generator[simpy.Event, Any, tuple[float, float]]:
        net = self.world.network
        took = net.bulk_time(src, dst, nbytes) if bulk else net.transfer_time(src, dst, nbytes)
        sent = self.env.now
        yield self._wait(took, cost)
        return sent, self.env.now

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
    ) -> None:
        self.world.recorder.event(
            times[0], times[1], self.message, self.id, src, dst, protocol, step, code, detail,
            nbytes,
        )  # fmt: skip

    def snapshot(self) -> dict[str, float]:
        return dict(self.costs)

    # -- playing ---------------------------------------------------------------------------

    def play(
        self,
        dialogue: Generator[Step, list[Reply], Any],
        server: Server,
        work: Work,
        slot: simpy.Resource | None = None,
        on_server: Observer | None = None,
        on_client: Observer | None = None,
    ) -> Generator[simpy.Event, Any, Any]:
        """Run ``dialogue`` against ``server`` to its end; return the dialogue's result.

        ``on_server`` is called when the server has answered a step (before the reply
        travels back); ``on_client`` when the reply has reached the client."""
        request = None
        opened = self.world.open_sessions
        opened[self.id] = f"{self.client} → {self.server_node} ({self.protocol})"
        try:
            step = next(dialogue)
            while True:
                if isinstance(step, Connect):
                    request = slot.request() if slot is not None else None
                    replies = yield from self._connect(server, work, request)
                elif isinstance(step, Commands):
                    replies = yield from self._commands(step, server, work, on_server)
                elif isinstance(step, TlsHandshake):
                    replies = yield from self._handshake(step, server, work)
                else:
                    replies = yield from self._content(step, server, work, on_server)
                if on_client is not None:
                    on_client(step, replies, self)
                step = dialogue.send(replies)
        except StopIteration as stop:
            return stop.value
        finally:
            opened.pop(self.id, None)
            if request is not None:
                if request.triggered:
                    slot.release(request)  # type: ignore[union-attr]
                else:
                    request.cancel()

    def _connect(
        self, server: Server, work: Work, request: simpy.Event | None
    ) -> Generator[simpy.Event, Any, list[Reply]]:
        c, s = self.client, self.server_node
        times = yield from self._send(c, s, TCP_SYN, "network")
        self._record(times, c, s, "tcp", "SYN", "", "SYN", TCP_SYN)
        times = yield from self._send(s, c, TCP_SYN, "network")
        self._record(times, s, c, "tcp", "SYN-ACK", "", "SYN-ACK", TCP_SYN)
        times = yield from self._send(c, s, TCP_ACK, "network")
        self._record(times, c, s, "tcp", "ACK", "", "ACK", TCP_ACK)
        if request is not None:
            # All server processes busy: the connection waits in the listen queue.
            before = self.env.now
            yield request
            self.costs["queue"] += self.env.now - before
        yield self._wait(work.command, "server")
        greeting = server.greeting()
        times = yield from self._send(s, c, greeting.size, "network")
        self._record(
            times, s, c, self.protocol, greeting.code, greeting.code, str(greeting), greeting.size
        )
        return [greeting]

    def _commands(
        self, step: Commands, server: Server, work: Work, on_server: Observer | None
    ) -> Generator[simpy.Event, Any, list[Reply]]:
        c, s = self.client, self.server_node
        nbytes = step.size + self._pending
        self._pending = 0
        times = yield from self._send(c, s, nbytes, step.cost)
        shown = step.shown or step.lines
        for line, text in zip(step.lines, shown, strict=True):
            verb = line.split(" ", 1)[0].upper()
            self._record(times, c, s, self.protocol, verb, "", text, len(line) + 2)
        replies = [server.handle(line) for line in step.lines]
        yield self._wait(
            work.command * len(step.lines), "server" if step.cost == "network" else step.cost
        )
        if on_server is not None:
            on_server(step, replies, self)
        size = sum(r.size for r in replies)
        times = yield from self._send(s, c, size, step.cost, bulk=size > 1460)
        for reply in replies:
            self._record(times, s, c, self.protocol, reply.code, reply.code, str(reply), reply.size)
        return replies

    def _handshake(
        self, step: TlsHandshake, server: Server, work: Work
    ) -> Generator[simpy.Event, Any, list[Reply]]:
        c, s = self.client, self.server_node
        version = tls.negotiate(step.version, work.tls_version) or step.version
        for flight in tls.HANDSHAKES[version]:
            times = yield from self._send(c, s, flight.client_bytes, "tls")
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
            yield self._wait(work.tls, "tls")
            times = yield from self._send(s, c, flight.server_bytes, "tls")
            self._record(
                times,
                s,
                c,
                "tls",
                flight.server_label,
                "",
                flight.server_label,
                flight.server_bytes,
            )
        self._pending = tls.TRAILING_CLIENT_BYTES[version]
        server.tls_started(version)
        return [Reply("TLS", (version,))]

    def _content(
        self, step: Content, server: Server, work: Work, on_server: Observer | None
    ) -> Generator[simpy.Event, Any, list[Reply]]:
        c, s = self.client, self.server_node
        nbytes = step.size + 5 + self._pending  # the message, then <CRLF>.<CRLF>
        self._pending = 0
        times = yield from self._send(c, s, nbytes, step.cost, bulk=True)
        self._record(times, c, s, self.protocol, "message", "", f"({step.size} bytes) .", nbytes)
        yield self._wait(work.data, "server")
        replies = server.end_of_data()  # type: ignore[attr-defined]
        if on_server is not None:
            on_server(step, replies, self)
        size = sum(r.size for r in replies)
        times = yield from self._send(s, c, size, step.cost)
        for reply in replies:
            self._record(times, s, c, self.protocol, reply.code, reply.code, str(reply), reply.size)
        return list(replies)
