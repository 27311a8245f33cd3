"""The mailbox server: receives copies over LMTP from the MX and serves them over POP3
(downloaded and deleted) and IMAP (they stay; ``\\Seen`` marks what was read), pushes
news to an IMAP client that idles (RFC 2177), and has a webmail front end beside it that
shows the same INBOX to a browser."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

from mailsim.message import Copy
from mailsim.protocols import Reply, http, imap, policy, pop3, smtp
from mailsim.scenario import PopNode
from mailsim.session import Session, Work
from mailsim.slots import Slots

if TYPE_CHECKING:
    from mailsim.agents.context import WorldView


@dataclass
class ImapState:
    """What IMAP keeps of one user's INBOX between sessions (Dovecot's index): the numbers
    flagged ``\\Seen`` and how many messages a session was told of."""

    seen: set[int] = field(default_factory=set)
    announced: int = 0


class Sizes(Sequence[int]):
    """The sizes of the messages in a live INBOX, as a front end reads them: mail that
    arrives while a web page keeps its connection is there at its next refresh."""

    def __init__(self, box: list[Copy]) -> None:
        self.box = box

    def __len__(self) -> int:
        return len(self.box)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> list[int]: ...
    def __getitem__(self, index: int | slice) -> int | list[int]:
        if isinstance(index, slice):
            return [c.message.size for c in self.box[index]]
        return self.box[index].message.size


class MailboxServer:
    def __init__(self, world: WorldView, name: str, spec: PopNode) -> None:
        self.world = world
        self.name = name
        self.spec = spec
        self.host = world.hosts[name]
        self.slot = Slots(world.env, spec.concurrency)
        self.mailboxes: dict[str, list[Copy]] = {}
        self.imap: dict[str, ImapState] = {}
        # The IMAP session open for a user, with the session that carries its pushes.
        self.open: dict[str, tuple[imap.ImapServer, Session]] = {}
        self.serial = 0
        self.tls = None if spec.tls == "none" else spec.tls
        proc = spec.processing
        self.work = Work(proc.command, proc.data, proc.tls, self.tls)

    def server(self, kind: str, client: str) -> tuple[smtp.SmtpServer, Work]:
        """An LMTP server (RFC 2033) for one delivery session from the MX."""
        self.serial += 1
        config = smtp.ServerConfig(
            host=self.host,
            kind="lmtp",
            tls=None,
            local_users=self.world.mailbox_users,
            rcpt_check=self._quota,
        )
        return smtp.SmtpServer(config, smtp.dovecot_id(self.host, self.serial)), self.work

    def _quota(self, sender: str, rcpt: str) -> Reply | None:
        """Dovecot's quota check at RCPT (lmtp_rcpt_check_quota = yes): a full mailbox
        refuses new mail — one the scenario fills (a fault), or one whose messages kept
        on the server reach its quota. Over the quota Dovecot fails for good (552 5.2.2,
        quota_full_tempfail = no)."""
        code = self.world.faults.mailbox_full(rcpt, self.world.env.now)
        if code is None and self.spec.quota is not None:
            held = sum(c.message.size for c in self.mailboxes.get(rcpt.lower(), []))
            code = 552 if held >= self.spec.quota else None
        return None if code is None else policy.quota_exceeded(rcpt, code)

    def receive(
        self, copies: list[Copy], session: Session, server: smtp.SmtpServer, pre: dict[str, float]
    ) -> None:
        """Final delivery: the copy is in the mailbox (status ``delivered``)."""
        world = self.world
        world.arrive(copies, session, server, pre, self.host, "LMTP", "Dovecot")
        for copy in copies:
            user = copy.recipient.lower()
            self.mailboxes.setdefault(user, []).append(copy)
            world.deliver(copy)
            self._tell(user, copy)

    def _tell(self, user: str, copy: Copy) -> None:
        """An IMAP session open for ``user`` learns of the new message; one that idles
        is sent ``* n EXISTS`` at once (RFC 2177)."""
        if user not in self.open:
            return
        server, session = self.open[user]
        news = server.deliver(copy.message.size)
        if news is not None:  # from now on the session's steps serve this message too
            session.message = " ".join(sorted({*session.message.split(), copy.message.id}))
            session.push(news)

    def holds(self, user: str) -> bool:
        """Is there mail in ``user``'s maildrop?"""
        return bool(self.mailboxes.get(user.lower()))

    def pop3_server(
        self, user: str, password: str, empty: bool = False
    ) -> tuple[pop3.Pop3Server, list[Copy]]:
        """A POP3 server over a snapshot of ``user``'s maildrop, and the copies it holds;
        ``empty``: over the empty maildrop a session found when it began, whatever has
        come since."""
        held = [] if empty else list(self.mailboxes.get(user.lower(), []))
        server = pop3.Pop3Server(
            self.host, [c.message.size for c in held], password=password, tls=self.tls
        )
        return server, held

    def imap_server(self, user: str, password: str) -> tuple[imap.ImapServer, list[Copy]]:
        """An IMAP server over ``user``'s INBOX, and the list of its copies (message n is
        the n-th; nothing is expunged, so the list only grows). The flags persist."""
        box = self.mailboxes.setdefault(user.lower(), [])
        state = self.imap.setdefault(user.lower(), ImapState())
        server = imap.ImapServer(
            self.host, [c.message.size for c in box], password=password, tls=self.tls,
            seen=state.seen, announced=state.announced,
        )  # fmt: skip
        return server, box

    def webmail(self, user: str, version: http.Version) -> tuple[http.Webmail, list[Copy], Work]:
        """The webmail front end beside this server, for one browser connection to
        ``user``'s INBOX: it reads the store IMAP keeps (mail stays; opening a message
        flags it \\Seen). A web server, not Dovecot's processes: it takes no IMAP or POP3
        slot, speaks TLS 1.3 whatever this server's TLS, and works as this server does."""
        box = self.mailboxes.setdefault(user.lower(), [])
        state = self.imap.setdefault(user.lower(), ImapState())
        front = http.Webmail(Sizes(box), state.seen, version)
        proc = self.spec.processing
        return front, box, Work(proc.command, proc.data, proc.tls, "1.3")

    def attach(self, user: str, server: imap.ImapServer, session: Session) -> None:
        """``session`` carries ``server``'s dialogue: deliveries reach it from now on."""
        self.open[user.lower()] = (server, session)

    def detach(self, user: str, server: imap.ImapServer) -> None:
        """The session has ended: keep what it told the client for the next one."""
        self.open.pop(user.lower(), None)
        self.imap[user.lower()].announced = server.announced

    def remove(self, user: str, copies: list[Copy]) -> None:
        """POP3 UPDATE state: DELE-marked messages go when QUIT is answered."""
        box = self.mailboxes.get(user.lower(), [])
        for copy in copies:
            box.remove(copy)
