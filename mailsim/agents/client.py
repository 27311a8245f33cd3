"""A user's mail program (MUA): submits messages to its outgoing server on port 587 with
STARTTLS and AUTH, and reads its mailbox: over POP3 or IMAP every ``poll`` interval, or
told of new mail at once over IMAP IDLE (a phone's push); or a web browser, which sends
through its provider's webmail front end over HTTPS."""

from __future__ import annotations

from collections.abc import Generator, Hashable
from typing import TYPE_CHECKING, Any

import simpy

from mailsim.agents.keys import Pop3Resume, SmtpResume, check_key, transfer_key
from mailsim.message import Copy, Message
from mailsim.protocols import (
    Commands,
    Content,
    Idle,
    Reply,
    Request,
    Step,
    Transcript,
    http,
    imap,
    pop3,
    smtp,
)
from mailsim.scenario import User
from mailsim.session import Handover, Session

if TYPE_CHECKING:
    from mailsim.agents.context import WorldView
    from mailsim.agents.pop import MailboxServer
    from mailsim.compiled import Template


class MailClient:
    def __init__(self, world: WorldView, name: str) -> None:
        self.world = world
        self.name = name
        self.host = world.hosts[name]

    def submit(self, message: Message, user: User) -> Generator[simpy.Event, Any, None]:
        """Send ``message`` to the user's submission server (RFC 6409). A temporary
        failure leaves it in the mail program's Outbox, sent again every
        ``user.outbox_retry``; a permanent one is shown to the user, and it never leaves."""
        world = self.world
        copies = world.new_copies(message)
        once = self._webmail_once if user.program == "browser" else self._submit_once
        attempt = 0
        while copies:
            attempt += 1
            decided = yield from once(message, user, copies, attempt)
            waiting = []
            for copy in copies:
                reply = decided.get(copy.recipient)
                if reply is None:
                    continue  # accepted: the server has it
                if _temporary(reply):
                    copy.reason = str(reply)
                    copy.hops_failed += 1
                    waiting.append(copy)
                else:  # the program shows the error at once: no bounce is sent
                    world.finish(copy, "refused", str(reply))
            copies = waiting
            if copies:
                yield world.env.timeout(user.outbox_retry)

    def _submit_once(
        self, message: Message, user: User, copies: list[Copy], attempt: int
    ) -> Generator[simpy.Event, Any, dict[str, Reply | None]]:
        """One submission session; the reply for each copy not accepted (None if it was)."""
        world = self.world
        assert user.smtp is not None  # checked by the scenario loader
        msa = world.mtas[user.smtp]
        bot = user.spam_bot
        server, work = msa.server("relay" if bot else "submission", self.name)
        session = Session(world, self.name, msa.name, "smtp", message.id)
        if not bot:
            session.service = "submission"
        handed: dict[str, float] = {}
        by_rcpt = {copy.recipient: copy for copy in copies}

        def on_server(step: Step, replies: list[Reply], s: Session) -> None:
            if isinstance(step, Content) and replies[0].code.startswith("2"):
                taken = world.committed([by_rcpt[r] for r in server.last_recipients], s)
                if not s.client_gone:
                    handed.update((copy.recipient, world.env.now) for copy in taken)
                msa.receive(taken, s, server, {})

        security = _security(user, msa.spec.tls)
        password = user.typo if user.typo is not None else user.password
        config = smtp.ClientConfig(
            helo=self.host,
            port=smtp.SUBMISSIONS_PORT if security == "tls" else smtp.SUBMISSION_PORT,
            tls="none" if security == "none" else "encrypt",
            implicit=security == "tls",
            auth=(message.sender, password) if user.authentication == "password" else None,
            **smtp.PROFILES[user.program],
        )
        if bot:  # straight to port 25, no login: relay abuse
            config = smtp.ClientConfig(
                helo=self.host, port=smtp.RELAY_PORT, tls="may", **smtp.PROFILES[user.program]
            )
        envelope = smtp.Envelope(message.sender, tuple(by_rcpt), message.size)
        key = transfer_key(world, self.name, msa.name, config, envelope, server, work)
        transcript: Transcript = yield from session.play(
            smtp.client(config, envelope),
            server,
            work,
            msa.slot,
            on_server=on_server,
            key=key,
            resume=SmtpResume(server, config, envelope) if key else None,
        )
        decided: dict[str, Reply | None] = {}
        for copy in copies:
            reply = transcript.replies.get(copy.recipient, transcript.final)
            end = handed.get(copy.recipient, world.env.now)
            world.record_hop(
                copy, session, "smtp" if bot else "submission", end, attempt, reply, transcript.tls,
                transcript.authenticated,
            )  # fmt: skip
            decided[copy.recipient] = None if copy.recipient in handed else reply
        return decided

    def _webmail_once(
        self, message: Message, user: User, copies: list[Copy], attempt: int
    ) -> Generator[simpy.Event, Any, dict[str, Reply | None]]:
        """One HTTPS session with the webmail front end on the user's smtp node: the
        ``POST`` of the message, which the front end hands to its mail server when it
        answers 200 (as an MSA does at the 250 to DATA). No server slot is taken: the
        web server is not the mail server's smtpd processes."""
        world = self.world
        assert user.smtp is not None  # checked by the scenario loader
        msa = world.mtas[user.smtp]
        server, work = msa.front_end(self.name, user.http)
        session = Session(world, self.name, msa.name, "https", message.id)
        handed: dict[str, float] = {}

        def on_server(step: Step, replies: list[Reply], s: Session) -> None:
            if isinstance(step, Request) and replies[0].code.startswith("2"):
                taken = world.committed(copies, s)
                if not s.client_gone:
                    handed.update((copy.recipient, world.env.now) for copy in taken)
                msa.receive(taken, s, server, {}, http.STAMP)

        final: Reply = yield from session.play(
            http.browser(msa.host, message.size, user.http), server, work, on_server=on_server
        )
        decided: dict[str, Reply | None] = {}
        for copy in copies:
            end = handed.get(copy.recipient, world.env.now)
            world.record_hop(copy, session, "https", end, attempt, final, server.tls_active, True)
            decided[copy.recipient] = None if copy.recipient in handed else final
        return decided

    def poll(self, address: str, user: User, first: float) -> Generator[simpy.Event, Any, None]:
        """Check the mailbox at ``first``, then every ``user.poll`` seconds."""
        env = self.world.env
        due = first
        while True:
            if due > env.now:
                yield env.timeout(due - env.now)
            if user.retrieval == "imap":
                yield from self.check_imap(address, user)
            else:
                yield from self.check(address, user)
            due += user.poll

    def push(self, address: str, user: User, first: float) -> Generator[simpy.Event, Any, None]:
        """From ``first`` on, hold an IMAP connection in IDLE (RFC 2177); when it is lost
        (the network forgot it, the server went away) connect again at once and catch
        up; when it could not even log in, try again after ``user.poll``."""
        env = self.world.env
        if first > env.now:
            yield env.timeout(first - env.now)
        while True:
            fetching = yield from self.check_imap(address, user, idle=True)
            if not fetching.idles:
                yield env.timeout(user.poll)

    def check_imap(
        self, address: str, user: User, idle: bool = False
    ) -> Generator[simpy.Event, Any, imap.Fetching]:
        """One IMAP session: log in, SELECT INBOX, fetch each unseen message (it stays on
        the server, flagged \\Seen), and LOGOUT; with ``idle``, IDLE after the catch-up
        and fetch what is pushed, until the connection is lost."""
        world = self.world
        assert user.mailbox is not None
        pop = world.pops[user.mailbox]
        server, box = pop.imap_server(address, user.password)
        security = _security(user, pop.spec.tls)
        unseen = (c for n, c in enumerate(box, 1) if n not in server.seen)
        ids = " ".join(sorted({c.message.id for c in unseen}))
        session = Session(world, self.name, pop.name, "imap", ids)
        retrieval = "imap-idle" if idle else "imap"
        # A round: the catch-up after login, or the fetches after a push (its setup: the
        # push and DONE).
        shares = Shares(session.start)

        def on_client(step: Any, replies: list[Reply], s: Session) -> None:
            now = s.snapshot()
            if isinstance(step, Idle):
                shares.new_round(s.env.now)
            line = step.lines[0] if isinstance(step, Commands) else ""
            fetched = replies[0] if replies else None
            if " FETCH " in line and fetched is not None and fetched.payload:
                copy = box[int(line.split()[2]) - 1]
                world.retrieve(copy, s, server.tls_active, shares.own(now), fetched, retrieval)
            shares.last = now

        dialogue = imap.idle if idle else imap.client
        pop.attach(address, server, session)
        try:
            fetching: imap.Fetching = yield from session.play(
                dialogue(
                    address,
                    user.password,
                    tls="none" if security == "none" else "encrypt",
                    implicit=security == "tls",
                ),
                server,
                pop.work,
                pop.slot,
                on_client=on_client,
            )
        finally:
            pop.detach(address, server)
        return fetching

    def browse(self, address: str, user: User, first: float) -> Generator[simpy.Event, Any, None]:
        """An inbox page open in the browser from ``first`` on, refreshed every
        ``user.poll`` seconds on the clock (Roundcube's timer); while the refreshes come
        within the web server's keep-alive, one connection carries them all."""
        env = self.world.env
        due = first
        while True:
            if due > env.now:
                yield env.timeout(due - env.now)
            due = yield from self.check_webmail(address, user, due)

    def check_webmail(
        self, address: str, user: User, due: float
    ) -> Generator[simpy.Event, Any, float]:
        """One HTTPS connection to the webmail front end beside the user's mailbox
        server, refreshing the inbox page due at ``due`` and the ones after it while the
        connection is kept; returns when the next refresh is due."""
        world, env = self.world, self.world.env
        assert user.mailbox is not None
        pop = world.pops[user.mailbox]
        server, box, work = pop.webmail(address, user.http)

        def unseen() -> str:
            """The messages a refresh now will show: its steps serve them."""
            return " ".join(sorted({box[n - 1].message.id for n in server.new()}))

        session = Session(world, self.name, pop.name, "https", unseen())

        def pause() -> float | None:
            """Until the next refresh; None when nginx closes the connection now."""
            nonlocal due
            due = _after(due, user.poll, env.now)
            if env.now - session.start >= http.KEEPALIVE_TIME:
                return None
            return due - env.now

        # A round: one refresh (its setup: connect and TLS the first time, the inbox's GET).
        shares = Shares(session.start)

        def on_client(step: Any, replies: list[Reply], s: Session) -> None:
            now = s.snapshot()
            if isinstance(step, Idle):  # the next refresh begins
                shares.new_round(env.now)
                s.message = unseen()
            path = step.path if isinstance(step, Request) else ""
            if path.startswith(http.MESSAGE_PATH) and replies[0].code == "200":
                copy = box[int(path.removeprefix(http.MESSAGE_PATH)) - 1]
                own = shares.own(now)
                world.retrieve(copy, s, server.tls_active, own, replies[0], "webmail",
                               shares.began)  # fmt: skip
            shares.last = now

        yield from session.play(
            http.reader(pop.host, user.http, pause=pause), server, work, on_client=on_client
        )
        return _after(due, user.poll, env.now) if due <= env.now else due

    def check(self, address: str, user: User) -> Generator[simpy.Event, Any, None]:
        """One POP3 session: retrieve every message and delete it from the server."""
        world = self.world
        assert user.mailbox is not None
        pop = world.pops[user.mailbox]
        security = _security(user, pop.spec.tls)
        key: Hashable | None = None
        if not pop.holds(address):
            key = empty_mailbox(self.name, pop.name, address, user, security)
            template = world.templates.quiet(key)
            if template is not None:  # a quarter of a large world's sessions
                yield from self._empty_check(address, user, pop, security, template)
                return
        server, held = pop.pop3_server(address, user.password)
        ids = " ".join(sorted({c.message.id for c in held}))
        session = Session(world, self.name, pop.name, "pop3", ids)
        taken: list[Copy] = []
        shares = Shares(session.start)  # one round: connect, TLS, login, LIST, the RETRs
        tls: str | None = None  # as the dialogue learns it: a replay plays no server

        def on_client(step: Step, replies: list[Reply], s: Session) -> None:
            # A replay calls it only where it reads something (Pop3Resume.watches).
            nonlocal tls
            line = step.lines[0] if isinstance(step, Commands) else ""
            now = s.snapshot()
            if replies and replies[0].code == "TLS":  # after STLS, or on port 995
                tls = replies[0].text
            elif line.startswith("RETR ") and replies[0].code == "+OK":
                copy = held[int(line.split()[1]) - 1]
                taken.append(copy)
                world.retrieve(copy, s, tls, shares.own(now), replies[0])
            shares.last = now

        if held:
            key = check_key(world, self.name, pop, address, user.password, security, held)
        retrieval: pop3.Retrieval = yield from session.play(
            _pop3_client(address, user, security),
            server,
            pop.work,
            pop.slot,
            on_client=on_client if held else None,  # nothing to fetch, nothing to book
            key=key,
            resume=Pop3Resume(address, user.password, pop.host) if held and key else None,
        )
        if retrieval.committed:
            pop.remove(address, taken)

    def _empty_check(
        self, address: str, user: User, pop: MailboxServer, security: str, template: Template
    ) -> Generator[simpy.Event, Any, None]:
        """A POP3 session that finds the mailbox empty, replayed from its quiet template
        (:meth:`Session.replay_quietly`): no server, dialogue or callbacks are made unless
        every server slot is busy, and then real play goes on from there with a server
        over the maildrop as it was when the session began: empty."""
        world = self.world
        session = Session(world, self.name, pop.name, "pop3")
        done = yield from session.replay_quietly(template, pop.slot)
        if isinstance(done, Handover):
            server, _ = pop.pop3_server(address, user.password, empty=True)
            yield from session.play(
                _pop3_client(address, user, security), server, pop.work, pop.slot, handover=done
            )  # nothing found, nothing to remove


class Shares:
    """A reading session's costs split among the copies it fetches. A copy's own parts
    are its round's setup (connect, TLS, login and listing; or the push; or the page's
    refresh) and its own fetch; what the fetches ahead of it took is still its wait for
    the reader's program to get to it."""

    def __init__(self, start: float) -> None:
        self.last: dict[str, float] = {}  # the session's costs when the last step ended
        self.base: dict[str, float] = {}  # … when the current round began
        self.setup: dict[str, float] | None = None  # … before the round's first fetch
        self.began = start  # when the current round began

    def new_round(self, now: float) -> None:
        self.setup, self.base, self.began = None, self.last, now

    def own(self, costs: dict[str, float]) -> dict[str, float]:
        """The own parts of the copy whose fetch ended with the session's ``costs``."""
        if self.setup is None:
            self.setup = self.last
        setup, base, last = self.setup, self.base, self.last
        return {
            k: setup.get(k, 0.0) - base.get(k, 0.0) + v - last.get(k, 0.0) for k, v in costs.items()
        }


def empty_mailbox(
    client: str, mailbox: str, address: str, user: User, security: str
) -> tuple[str, ...]:
    """The key of a check that finds the mailbox empty: every such check by this program
    of this mailbox goes the same way (:mod:`mailsim.compiled`). The server's settings
    are the mailbox node's; the dialogue's are the address, password and security."""
    return ("empty mailbox", client, mailbox, address, user.password, security)


def _pop3_client(
    address: str, user: User, security: str
) -> Generator[Step, list[Reply], pop3.Retrieval]:
    """The user's program's POP3 dialogue, with the connection security it uses."""
    return pop3.client(
        address,
        user.password,
        tls="none" if security == "none" else "encrypt",
        implicit=security == "tls",
    )


def _after(due: float, interval: float, now: float) -> float:
    """The first refresh after ``now`` of a timer that fired at ``due`` and fires every
    ``interval`` (a refresh that outlasts the interval skips the ones it covers)."""
    due += interval
    while due <= now:
        due += interval
    return due


def _temporary(reply: Reply) -> bool:
    """Is a failed submission worth sending again later? SMTP's 4xx and a lost
    connection; HTTP's 5xx (its 4xx refuse the request itself, RFC 9110 §15.5)."""
    if isinstance(reply, http.Response):
        return reply.temporary
    return reply.code.startswith(("4", "-")) or reply.local


def _security(user: User, server_tls: str) -> str:
    """The connection security the mail program uses: as set, or for ``auto`` what
    account setup (Thunderbird's autoconfig) picks — STARTTLS when the server offers
    TLS, none when it does not."""
    if user.security != "auto":
        return user.security
    return "starttls" if server_tls != "none" else "none"
