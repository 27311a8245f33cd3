"""The mailbox server: receives copies over LMTP from the MX and serves them over POP3."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsim.message import Copy
from mailsim.protocols import Reply, policy, pop3, smtp
from mailsim.scenario import PopNode
from mailsim.session import Session, Work
from mailsim.slots import Slots

if TYPE_CHECKING:
    from mailsim.agents.context import WorldView


class MailboxServer:
    def __init__(self, world: WorldView, name: str, spec: PopNode) -> None:
        self.world = world
        self.name = name
        self.spec = spec
        self.host = world.hosts[name]
        self.slot = Slots(world.env, spec.concurrency)
        self.mailboxes: dict[str, list[Copy]] = {}
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
        return smtp.SmtpServer(config, smtp.queue_id(self.host, self.serial)), self.work

    def _quota(self, sender: str, rcpt: str) -> Reply | None:
        """Dovecot's quota check at RCPT: a full mailbox refuses new mail."""
        code = self.world.faults.mailbox_full(rcpt, self.world.env.now)
        return None if code is None else policy.quota_exceeded(rcpt, code)

    def receive(
        self, copies: list[Copy], session: Session, server: smtp.SmtpServer, pre: dict[str, float]
    ) -> None:
        """Final delivery: the copy is in the mailbox (status ``delivered``)."""
        world = self.world
        world.arrive(copies, session, server, pre, self.host, "LMTP", "Dovecot")
        for copy in copies:
            self.mailboxes.setdefault(copy.recipient.lower(), []).append(copy)
            world.deliver(copy)

    def pop3_server(self, user: str, password: str) -> tuple[pop3.Pop3Server, list[Copy]]:
        """A POP3 server over a snapshot of ``user``'s maildrop, and the copies it holds."""
        held = list(self.mailboxes.get(user.lower(), []))
        server = pop3.Pop3Server(
            self.host, [c.message.size for c in held], password=password, tls=self.tls
        )
        return server, held

    def remove(self, user: str, copies: list[Copy]) -> None:
        """POP3 UPDATE state: DELE-marked messages go when QUIT is answered."""
        box = self.mailboxes.get(user.lower(), [])
        for copy in copies:
            box.remove(copy)
