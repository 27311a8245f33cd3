"""POP3 (RFC 1939) with CAPA (RFC 2449) and STLS (RFC 2595), as pure logic.

Reply texts follow Dovecot. A session goes AUTHORIZATION → TRANSACTION → UPDATE: messages
marked with DELE are removed only when QUIT is answered, so a session cut short keeps them.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from mailsim.protocols import Commands, Connect, Reply, Step, TlsHandshake

POP3_PORT = 110
POP3S_PORT = 995  # implicit TLS, RFC 8314


@dataclass
class Pop3Server:
    """The server side of one POP3 session over a snapshot of one maildrop.

    ``maildrop`` holds the sizes in bytes of the messages present when the session
    locked the maildrop (RFC 1939 §8: later arrivals are not seen in this session)."""

    host: str
    maildrop: Sequence[int]
    password: str
    tls: str | None = "1.3"
    tls_active: str | None = None
    user: str | None = None
    state: str = "AUTHORIZATION"
    deleted: set[int] = field(default_factory=set)

    def greeting(self) -> Reply:
        return Reply("+OK", ("Dovecot ready.",))

    def tls_started(self, version: str) -> None:
        self.tls_active = version

    def capabilities(self) -> list[str]:
        caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "USER"]
        if self.tls and not self.tls_active and self.state == "AUTHORIZATION":
            caps.append("STLS")
        return caps

    def handle(self, line: str) -> Reply:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "CAPA":
            return Reply("+OK", ("Capability list follows",), data=tuple(self.capabilities()))
        if verb == "QUIT":
            if self.state == "TRANSACTION":
                self.state = "UPDATE"
            return Reply("+OK", ("Logging out.",))
        if self.state == "AUTHORIZATION":
            return self._authorization(verb, arg)
        if self.state == "TRANSACTION":
            return self._transaction(verb, arg)
        return Reply("-ERR", ("Unknown command.",))

    def _authorization(self, verb: str, arg: str) -> Reply:
        if verb == "STLS":
            if not self.tls or self.tls_active:
                return Reply("-ERR", ("STLS not available.",))
            return Reply("+OK", ("Begin TLS negotiation now.",))
        if verb == "USER":
            self.user = arg
            return Reply("+OK", ("",))
        if verb == "PASS":
            if self.user is None:
                return Reply("-ERR", ("No username given.",))
            if arg != self.password:
                return Reply("-ERR", ("[AUTH] Authentication failed.",))
            self.state = "TRANSACTION"
            return Reply("+OK", ("Logged in.",))
        return Reply("-ERR", ("Unknown command.",))

    def _present(self) -> list[int]:
        return [i for i in range(1, len(self.maildrop) + 1) if i not in self.deleted]

    def _transaction(self, verb: str, arg: str) -> Reply:
        if verb == "STAT":
            present = self._present()
            octets = sum(self.maildrop[i - 1] for i in present)
            return Reply("+OK", (f"{len(present)} {octets}",))
        if verb == "LIST" and not arg:
            present = self._present()
            octets = sum(self.maildrop[i - 1] for i in present)
            listing = tuple(f"{i} {self.maildrop[i - 1]}" for i in present)
            return Reply("+OK", (f"{len(present)} messages ({octets} octets)",), data=listing)
        if verb in ("RETR", "DELE", "LIST"):
            number = int(arg) if arg.isdigit() else 0
            if number not in self._present():
                return Reply("-ERR", ("There's no message %s." % arg,))  # noqa: UP031
            if verb == "DELE":
                self.deleted.add(number)
                return Reply("+OK", ("Marked to be deleted.",))
            size = self.maildrop[number - 1]
            if verb == "LIST":
                return Reply("+OK", (f"{number} {size}",))
            return Reply("+OK", (f"{size} octets",), payload=size + 3)  # content, ".\r\n"
        if verb == "NOOP":
            return Reply("+OK", ("",))
        if verb == "RSET":
            self.deleted.clear()
            return Reply("+OK", ("",))
        return Reply("-ERR", ("Unknown command.",))


@dataclass
class Retrieval:
    """What a POP3 client got: the numbers it retrieved, and whether QUIT committed DELE."""

    retrieved: list[int] = field(default_factory=list)
    tls: str | None = None
    committed: bool = False
    error: Reply | None = None


def client(
    user: str, password: str, tls: str = "may", implicit: bool = False
) -> Generator[Step, list[Reply], Retrieval]:
    """A mail program checking its mailbox: CAPA, STLS, USER/PASS, STAT, LIST, then RETR
    and DELE each message (Thunderbird's default is not to leave mail on the server).
    ``tls``: ``may`` (STLS when offered), ``encrypt`` (give up without it, before the
    password is sent), ``none``; ``implicit``: TLS before the greeting, on 995."""
    out = Retrieval()
    if implicit:
        hello, greeting = yield Connect(POP3S_PORT, tls="1.3")
        out.tls = hello.text if hello.code == "TLS" else None
    else:
        (greeting,) = yield Connect(POP3_PORT)
    if greeting.code != "+OK":
        out.error = greeting
        return out
    (capa,) = yield Commands(("CAPA",))
    if tls != "none" and not out.tls and "STLS" in capa.data:
        (ready,) = yield Commands(("STLS",), cost="tls")
        if ready.code == "+OK":
            (hello,) = yield TlsHandshake("1.3")
            if hello.code != "TLS":  # the handshake failed; the connection is gone
                out.error = hello
                return out
            out.tls = hello.text
            yield Commands(("CAPA",), cost="tls")  # RFC 2595 §4: discard and ask again
    if tls == "encrypt" and not out.tls:
        out.error = Reply("-ERR", ("TLS is required, but the server does not offer STLS",),
                          local=True)  # fmt: skip
        yield Commands(("QUIT",))
        return out
    (reply,) = yield Commands((f"USER {user}",))
    (reply,) = yield Commands((f"PASS {password}",), shown=("PASS ********",))
    if reply.code != "+OK":
        out.error = reply
        yield Commands(("QUIT",))
        return out
    (stat,) = yield Commands(("STAT",))
    count = int(stat.text.split()[0]) if stat.code == "+OK" else 0
    if count:
        yield Commands(("LIST",))
        for number in range(1, count + 1):
            (retr,) = yield Commands((f"RETR {number}",))
            if retr.code == "+OK":
                out.retrieved.append(number)
                yield Commands((f"DELE {number}",))
    (bye,) = yield Commands(("QUIT",))
    out.committed = bye.code == "+OK"
    return out


# A mail program's patience: Thunderbird waits 100 s (mailnews.tcptimeout) for a reply.
CONNECT_TIMEOUT = 30.0
TIMEOUT = 100.0


def timeout(step: Step) -> float:
    return TIMEOUT


def lost(text: str, status: str = "") -> Reply:
    return Reply("-ERR", (text,), local=True)
