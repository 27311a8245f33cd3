"""IMAP (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1) with STARTTLS and IDLE (RFC 2177), as
pure logic.

Reply texts follow Dovecot 2.3, which speaks IMAP4rev1 (clients written for either
revision read it the same way here), without the timing Dovecot puts before the final
period of a tagged reply after login ("Select completed (0.002 + 0.000 secs).").
Unlike POP3, mail stays on the server: a message is new until it is flagged ``\\Seen``.
A session goes NOT AUTHENTICATED → AUTHENTICATED → SELECTED → LOGOUT (RFC 9051 §3).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Generator
from dataclasses import dataclass, field

from mailsim.protocols import Commands, Connect, Idle, Reply, Step, TlsHandshake

IMAP_PORT = 143
IMAPS_PORT = 993  # implicit TLS, RFC 8314
# RFC 2177 §3: a client re-issues IDLE at least every 29 minutes, before servers' 30-minute
# inactivity timers (RFC 9051 §5.4) log it out.
IDLE_RENEWAL = 29 * 60.0

# Dovecot 2.3.19's capabilities before login (STARTTLS and LOGINDISABLED or AUTH=PLAIN are
# added by TLS state) and after login, in its order.
PRE_LOGIN = ("IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+")
POST_LOGIN = (
    "IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "SORT",
    "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=REFS", "THREAD=ORDEREDSUBJECT",
    "MULTIAPPEND", "URL-PARTIAL", "CATENATE", "UNSELECT", "CHILDREN", "NAMESPACE",
    "UIDPLUS", "LIST-EXTENDED", "I18NLEVEL=1", "CONDSTORE", "QRESYNC", "ESEARCH",
    "ESORT", "SEARCHRES", "WITHIN", "CONTEXT=SEARCH", "LIST-STATUS", "BINARY", "MOVE",
    "SNIPPET=FUZZY", "PREVIEW=FUZZY", "PREVIEW", "STATUS=SIZE", "SAVEDATE", "LITERAL+",
    "NOTIFY",
)  # fmt: skip
FLAGS = "(\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
# Dovecot takes a mailbox's UIDVALIDITY from the clock when it creates the mailbox; any
# fixed ten-digit number has the same size on the wire.
UIDVALIDITY = 1_700_000_000
# Dovecot's imap-login refuses commands other than the pre-login ones with this text.
PRE_LOGIN_ERROR = "Error in IMAP command received by server."
PLAINTEXT_ALERT = (
    "BAD [ALERT] Plaintext authentication not allowed without SSL/TLS, but your client did"
    " it anyway. If anyone was listening, the password was exposed."
)


def tagged(tag: str, code: str, text: str, data: tuple[str, ...] = (), payload: int = 0) -> Reply:
    """A tagged reply ``tag code text`` after the untagged ``* …`` lines ``data``."""
    return Reply(code, (text,), data=data, payload=payload, tag=tag)


@dataclass
class ImapServer:
    """The server side of one IMAP session on one user's INBOX.

    ``mailbox`` holds the sizes in bytes of the messages (message n is ``mailbox[n-1]``;
    nothing is expunged, so a message's UID is its number). ``seen`` holds the numbers
    flagged ``\\Seen`` and ``announced`` how many messages an earlier session was told of
    (the others are ``\\Recent`` to this one, RFC 3501 §2.3.2): the engine keeps both with
    the mailbox between sessions; :meth:`deliver` appends to ``mailbox``. ``quota`` caps the
    bytes the mailbox may hold (None: no limit)."""

    host: str
    mailbox: list[int]
    password: str
    tls: str | None = "1.3"
    quota: int | None = None
    seen: set[int] = field(default_factory=set)
    announced: int = 0
    tls_active: str | None = None
    state: str = "NOT AUTHENTICATED"
    idling: str | None = None  # the IDLE command's tag while the session idles
    told: int = 0  # the message count the client was last told (EXISTS)
    recent: set[int] = field(default_factory=set)
    # Dovecot lists its post-login capabilities untagged once a client has asked for
    # CAPABILITY (such a client evidently ignores the [CAPABILITY] code), else in the code
    # of the reply to LOGIN; asking again after STARTTLS is required, so it does not count.
    asked: bool = False
    starttls: bool = False
    sasl: str | None = None  # the tag of an AUTHENTICATE waiting for its response

    def greeting(self) -> Reply:
        caps = " ".join(self.capabilities())
        return tagged("*", "OK", f"[CAPABILITY {caps}] Dovecot ready.")

    def tls_started(self, version: str) -> None:
        self.tls_active = version

    def capabilities(self) -> list[str]:
        if self.state != "NOT AUTHENTICATED":
            return list(POST_LOGIN)
        caps = list(PRE_LOGIN)
        if not self.plaintext_allowed():
            return [*caps, "STARTTLS", "LOGINDISABLED"]
        return [*caps, "AUTH=PLAIN"]

    def plaintext_allowed(self) -> bool:
        """Dovecot's default (disable_plaintext_auth): no password before TLS, where TLS
        can be had; a server without TLS takes it in the clear."""
        return not self.tls or self.tls_active is not None

    def fits(self, size: int) -> bool:
        """Whether a message of ``size`` bytes fits under the quota (the engine's LMTP
        delivery refuses one that does not, as Dovecot's does with 552 5.2.2)."""
        return self.quota is None or sum(self.mailbox) + size <= self.quota

    def deliver(self, size: int) -> Reply | None:
        """A message arrives (from the engine's LMTP delivery). While the session idles,
        the ``* n EXISTS`` the server pushes at once; otherwise None (the client hears of
        it at its next NOOP). Nothing is stored, and None returned, over the quota."""
        if not self.fits(size):
            return None
        self.mailbox.append(size)
        return self.news() if self.idling is not None else None

    def news(self) -> Reply | None:
        """The untagged ``* n EXISTS`` and ``* r RECENT`` for mail the selected session has
        not been told of, as Dovecot sends them (None if there is none)."""
        if self.state != "SELECTED" or len(self.mailbox) <= self.told:
            return None
        self.recent.update(range(max(self.told, self.announced) + 1, len(self.mailbox) + 1))
        self.told = self.announced = len(self.mailbox)
        return Reply("*", data=self._counts(), tag="")

    def handle(self, line: str) -> Reply:
        if self.idling is not None:
            return self._done(line)
        if self.sasl is not None:
            tag, self.sasl = self.sasl, None
            return self._plain(tag, line)
        tag, _, rest = line.partition(" ")
        verb, _, arg = rest.partition(" ")
        verb = verb.upper()
        if not verb:
            why = PRE_LOGIN_ERROR if self.state == "NOT AUTHENTICATED" else (
                "Error in IMAP command: Invalid command name.")  # fmt: skip
            return tagged(tag, "BAD", why)
        if verb == "LOGOUT":
            self.state = "LOGOUT"
            return tagged(tag, "OK", "Logout completed.", data=("BYE Logging out",))
        if verb == "NOOP":
            news = self.news()
            return tagged(tag, "OK", "NOOP completed.", data=news.data if news else ())
        if self.state == "NOT AUTHENTICATED":
            return self._not_authenticated(tag, verb, arg)
        return self._authenticated(tag, verb, arg)

    def _done(self, line: str) -> Reply:
        """RFC 2177 §3: DONE ends the IDLE, whose tag the reply bears."""
        tag, self.idling = self.idling or "", None
        if line.strip().upper() != "DONE":
            return tagged(tag, "BAD", "Expected DONE.")
        return tagged(tag, "OK", "Idle completed.")

    def _not_authenticated(self, tag: str, verb: str, arg: str) -> Reply:
        if verb == "CAPABILITY":
            self.asked = self.asked or not self.starttls
            caps = "CAPABILITY " + " ".join(self.capabilities())
            text = "Pre-login capabilities listed, post-login capabilities have more."
            return tagged(tag, "OK", text, data=(caps,))
        if verb == "STARTTLS":
            if not self.tls:
                return tagged(tag, "BAD", "TLS support isn't enabled.")
            if self.tls_active:
                return tagged(tag, "BAD", "TLS is already active.")
            self.starttls = True
            return tagged(tag, "OK", "Begin TLS negotiation now.")
        if verb == "LOGIN":
            password = arg.partition(" ")[2]
            if not self.plaintext_allowed():
                text = "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure"
                return tagged(tag, "NO", text + " (SSL/TLS) connections.",
                              data=(PLAINTEXT_ALERT,))  # fmt: skip
            return self._login(tag, _unquote(password))
        if verb == "AUTHENTICATE":
            mechanism, _, response = arg.partition(" ")
            if mechanism.upper() != "PLAIN":
                return tagged(tag, "NO", "Unsupported authentication mechanism.")
            if not self.plaintext_allowed():
                return tagged(tag, "NO", "[PRIVACYREQUIRED] Plaintext authentication disabled.")
            if not response:  # no initial response (RFC 4959): ask for it
                self.sasl = tag
                return Reply("+", ("",))
            return self._plain(tag, response)
        return tagged(tag, "BAD", PRE_LOGIN_ERROR)

    def _plain(self, tag: str, response: str) -> Reply:
        """SASL PLAIN (RFC 4616): base64 of ``authzid NUL authcid NUL password``."""
        try:
            parts = base64.b64decode(response, validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            parts = []
        password = parts[2].decode(errors="replace") if len(parts) == 3 else None
        return self._login(tag, password)

    def _login(self, tag: str, password: str | None) -> Reply:
        if password != self.password:
            # Dovecot answers only after auth_failure_delay (2 s), against guessing.
            return tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed.")
        self.state = "AUTHENTICATED"
        caps = " ".join(self.capabilities())
        if self.asked:
            return tagged(tag, "OK", "Logged in", data=(f"CAPABILITY {caps}",))
        return tagged(tag, "OK", f"[CAPABILITY {caps}] Logged in")

    def _authenticated(self, tag: str, verb: str, arg: str) -> Reply:
        if verb == "CAPABILITY":
            caps = "CAPABILITY " + " ".join(self.capabilities())
            return tagged(tag, "OK", "Capability completed.", data=(caps,))
        if verb == "SELECT":
            return self._select(tag, arg)
        if verb == "IDLE":
            self.idling = tag
            return Reply("+", ("idling",))
        if verb in ("SEARCH", "FETCH", "STORE", "UID"):
            if self.state != "SELECTED":
                return tagged(tag, "BAD", "No mailbox selected.")
            if verb == "SEARCH":
                return self._search(tag, arg)
            if verb == "STORE":
                return self._store(tag, arg)
            uid, _, arg = arg.partition(" ") if verb == "UID" else ("", "", arg)
            if verb == "UID" and uid.upper() != "FETCH":
                return tagged(tag, "BAD", f"Error in IMAP command UID {uid}: Unknown command.")
            return self._fetch(tag, arg, by_uid=verb == "UID")
        return tagged(tag, "BAD", f"Error in IMAP command {verb}: Unknown command.")

    def _counts(self) -> tuple[str, str]:
        return (f"{len(self.mailbox)} EXISTS", f"{len(self.recent)} RECENT")

    def _select(self, tag: str, name: str) -> Reply:
        if _unquote(name).upper() != "INBOX":
            self.state = "AUTHENTICATED"  # a failed SELECT leaves no mailbox selected
            return tagged(tag, "NO", f"Mailbox doesn't exist: {_unquote(name)}.")
        self.state = "SELECTED"
        self.recent = set(range(self.announced + 1, len(self.mailbox) + 1))
        self.told = self.announced = len(self.mailbox)
        unseen = [n for n in self._numbers() if n not in self.seen]
        data = (
            f"FLAGS {FLAGS}",
            f"OK [PERMANENTFLAGS {FLAGS[:-1]} \\*)] Flags permitted.",
            *self._counts(),
            *((f"OK [UNSEEN {unseen[0]}] First unseen.",) if unseen else ()),
            f"OK [UIDVALIDITY {UIDVALIDITY}] UIDs valid",
            f"OK [UIDNEXT {len(self.mailbox) + 1}] Predicted next UID",
        )
        return tagged(tag, "OK", "[READ-WRITE] Select completed.", data=data)

    def _numbers(self) -> range:
        return range(1, self.told + 1)

    def _search(self, tag: str, key: str) -> Reply:
        key = key.upper()
        if key not in ("ALL", "SEEN", "UNSEEN"):
            return tagged(tag, "BAD", f"Error in IMAP command SEARCH: Unknown argument {key}.")
        found = [n for n in self._numbers() if key == "ALL" or (n in self.seen) == (key == "SEEN")]
        return tagged(tag, "OK", "Search completed.", data=("SEARCH" + _list(found),))

    def _flags(self, number: int) -> str:
        flags = ["\\Seen"] * (number in self.seen) + ["\\Recent"] * (number in self.recent)
        return "FLAGS (" + " ".join(flags) + ")"

    def _fetch(self, tag: str, arg: str, by_uid: bool) -> Reply:
        which, _, items = arg.partition(" ")
        number = int(which) if which.isdigit() else 0
        if number not in self._numbers():
            if by_uid and number:  # RFC 9051 §6.4.9: a UID that is gone is no error
                return tagged(tag, "OK", "Fetch completed.")
            return tagged(tag, "BAD", "Error in IMAP command FETCH: Invalid messageset.")
        wanted = items.strip("()").upper().split()
        body = "BODY[]" in wanted
        if body:  # RFC 9051 §6.4.5: BODY[] sets \Seen, BODY.PEEK[] does not
            self.seen.add(number)
        parts = [f"UID {number}"] if by_uid or "UID" in wanted else []
        if "FLAGS" in wanted or (body and "FLAGS" not in wanted):
            parts.append(self._flags(number))
        if "RFC822.SIZE" in wanted:
            parts.append(f"RFC822.SIZE {self.mailbox[number - 1]}")
        size = self.mailbox[number - 1]
        if body or "BODY.PEEK[]" in wanted:
            # The message travels as a literal {size}, then ")" ends the FETCH line.
            line = f"{number} FETCH ({' '.join([*parts, f'BODY[] {{{size}}}'])}"
            return tagged(tag, "OK", "Fetch completed.", data=(line,), payload=size + 3)
        line = f"{number} FETCH ({' '.join(parts)})"
        return tagged(tag, "OK", "Fetch completed.", data=(line,))

    def _store(self, tag: str, arg: str) -> Reply:
        which, _, rest = arg.partition(" ")
        action, _, flags = rest.partition(" ")
        number = int(which) if which.isdigit() else 0
        if number not in self._numbers():
            return tagged(tag, "BAD", "Error in IMAP command STORE: Invalid messageset.")
        if "\\SEEN" in flags.upper():
            if action.upper().startswith("+FLAGS"):
                self.seen.add(number)
            elif action.upper().startswith("-FLAGS"):
                self.seen.discard(number)
        silent = action.upper().endswith(".SILENT")
        data = () if silent else (f"{number} FETCH ({self._flags(number)})",)
        return tagged(tag, "OK", "Store completed.", data=data)


def _list(numbers: list[int]) -> str:
    return "".join(f" {n}" for n in numbers)


def _unquote(text: str) -> str:
    """An IMAP astring as sent: an atom, or a quoted string with \\-escapes."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def astring(text: str) -> str:
    """``text`` as an IMAP astring (RFC 9051 §4.3): quoted unless it is a plain atom."""
    if text and all(c.isascii() and c.isprintable() and c not in ' (){%*"\\]' for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Fetching:
    """What an IMAP client did: the messages it fetched (and flagged \\Seen), the TLS
    version, how many IDLE commands it issued and how many pushes woke it."""

    fetched: list[int] = field(default_factory=list)
    tls: str | None = None
    authenticated: bool = False
    idles: int = 0
    pushes: int = 0
    logged_out: bool = False
    error: Reply | None = None


ImapStep = Step | Idle
Dialogue = Generator[ImapStep, list[Reply], Fetching]


class _Tags:
    """The client's tags a1, a2…: each command gets a new one (RFC 9051 §2.2.1)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, command: str) -> str:
        self.count += 1
        return f"a{self.count} {command}"


def client(user: str, password: str, tls: str = "may", implicit: bool = False) -> Dialogue:
    """A mail program checking its INBOX: the greeting's capabilities (or CAPABILITY),
    STARTTLS, LOGIN, SELECT INBOX, SEARCH UNSEEN, then each new message fetched with
    BODY.PEEK[] and flagged \\Seen by STORE once it has arrived whole (BODY[] would flag it
    as the FETCH begins, RFC 9051 §6.4.5, and a connection lost during the transfer would
    leave a message marked read that never arrived); LOGOUT. Mail stays on the server.
    ``tls``: ``may`` (STARTTLS when offered), ``encrypt`` (give up without it, before the
    password is sent), ``none``; ``implicit``: TLS before the greeting, on 993."""
    out, tag = Fetching(), _Tags()
    if (yield from _caught_up(user, password, tls, implicit, out, tag)) is None:
        return out
    return (yield from _log_out(out, tag))


def _caught_up(
    user: str, password: str, tls: str, implicit: bool, out: Fetching, tag: _Tags
) -> Generator[ImapStep, list[Reply], int | None]:
    """Log in, select INBOX and fetch what is new: the messages INBOX holds (None when
    the login failed)."""
    count = yield from _log_in(user, password, tls, implicit, out, tag)
    if count is None:
        return None
    (search,) = yield Commands((tag("SEARCH UNSEEN"),))
    yield from _fetch(_found(search), out, tag)
    return count


def idle(
    user: str,
    password: str,
    tls: str = "may",
    implicit: bool = False,
    idles: int | None = None,
    renewal: float = IDLE_RENEWAL,
) -> Dialogue:
    """A mail program told of new mail at once (RFC 2177): it logs in and fetches what is
    new as :func:`client` does, then IDLEs; when the server pushes ``* n EXISTS`` it sends
    DONE and fetches the new messages; after ``renewal`` seconds without news it sends
    DONE and IDLE again. It logs out after ``idles`` IDLE commands (None: never)."""
    out, tag = Fetching(), _Tags()
    count = yield from _caught_up(user, password, tls, implicit, out, tag)
    if count is None:
        return out
    while idles is None or out.idles < idles:
        (go_on,) = yield Commands((tag("IDLE"),))
        if go_on.code != "+":
            out.error = go_on
            break
        out.idles += 1
        pushed = yield Idle(renewal)
        (done,) = yield Commands(("DONE",))
        exists = _exists([*pushed, done], count)
        if exists > count:
            out.pushes += 1
            yield from _fetch(list(range(count + 1, exists + 1)), out, tag)
            count = exists
    return (yield from _log_out(out, tag))


def _log_in(
    user: str, password: str, tls: str, implicit: bool, out: Fetching, tag: _Tags
) -> Generator[ImapStep, list[Reply], int | None]:
    """Greeting, STARTTLS, login and SELECT INBOX: the message count, or None (logged out
    or the connection gone, with ``out.error`` saying why)."""
    if implicit:
        hello, greeting = yield Connect(IMAPS_PORT, tls="1.3")
        out.tls = hello.text if hello.code == "TLS" else None
    else:
        (greeting,) = yield Connect(IMAP_PORT)
    if greeting.code != "OK":
        out.error = greeting
        return None
    caps = _capabilities(greeting.text)
    if caps is None:  # the greeting did not list them (RFC 9051 §7.1: it may)
        (reply,) = yield Commands((tag("CAPABILITY"),))
        caps = _listed(reply)
    if tls != "none" and not out.tls and "STARTTLS" in caps:
        (ready,) = yield Commands((tag("STARTTLS"),), cost="tls")
        if ready.code == "OK":
            (hello,) = yield TlsHandshake("1.3")
            if hello.code != "TLS":  # the handshake failed; the connection is gone
                out.error = hello
                return None
            out.tls = hello.text
            # RFC 9051 §6.2.1: discard what was learnt before TLS and ask again.
            (reply,) = yield Commands((tag("CAPABILITY"),), cost="tls")
            caps = _listed(reply)
    if tls == "encrypt" and not out.tls:
        out.error = Reply("NO", ("TLS is required, but the server does not offer STARTTLS",),
                          local=True)  # fmt: skip
        yield from _log_out(out, tag)
        return None
    reply = yield from _authenticate(user, password, caps, out, tag)
    if reply.code != "OK":
        out.error = reply
        yield from _log_out(out, tag)
        return None
    out.authenticated = True
    (selected,) = yield Commands((tag("SELECT INBOX"),))
    if selected.code != "OK":
        out.error = selected
        yield from _log_out(out, tag)
        return None
    return _exists([selected], 0)


def _authenticate(
    user: str, password: str, caps: list[str], out: Fetching, tag: _Tags
) -> Generator[ImapStep, list[Reply], Reply]:
    """LOGIN, or AUTHENTICATE PLAIN in one line (SASL-IR, RFC 4959) where the server
    disables LOGIN (RFC 9051 §6.2.3: a client must not send it then)."""
    if "LOGINDISABLED" not in caps:
        command, secret = tag(f"LOGIN {astring(user)} "), astring(password)
    elif "AUTH=PLAIN" in caps:
        command = tag("AUTHENTICATE PLAIN ")
        secret = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    else:
        return Reply("NO", ("the server disables LOGIN and offers no AUTH=PLAIN",), local=True)
    (reply,) = yield Commands((command + secret,), shown=(command + "********",))
    return reply


def _fetch(numbers: list[int], out: Fetching, tag: _Tags) -> Generator[ImapStep, list[Reply], None]:
    for number in numbers:
        (fetched,) = yield Commands((tag(f"FETCH {number} (BODY.PEEK[] FLAGS)"),))
        if fetched.code == "OK" and fetched.payload:
            yield Commands((tag(f"STORE {number} +FLAGS (\\Seen)"),))
            out.fetched.append(number)


def _log_out(out: Fetching, tag: _Tags) -> Generator[ImapStep, list[Reply], Fetching]:
    (bye,) = yield Commands((tag("LOGOUT"),))
    out.logged_out = bye.code == "OK"
    return out


def _capabilities(text: str) -> list[str] | None:
    """The capabilities a ``[CAPABILITY …]`` response code lists (None without one)."""
    if not text.upper().startswith("[CAPABILITY "):
        return None
    return text[len("[CAPABILITY ") :].split("]", 1)[0].split()


def _listed(reply: Reply) -> list[str]:
    for line in reply.data:
        if line.upper().startswith("CAPABILITY "):
            return line.split()[1:]
    return _capabilities(reply.text) or []


def _found(search: Reply) -> list[int]:
    """The numbers a ``* SEARCH 1 2`` line lists."""
    for line in search.data if search.code == "OK" else ():
        if line.upper().startswith("SEARCH"):
            return [int(n) for n in line.split()[1:]]
    return []


def _exists(replies: list[Reply], count: int) -> int:
    """The last ``* n EXISTS`` among the replies' untagged lines (``count`` if none)."""
    for reply in replies:
        for line in reply.data:
            number, _, word = line.partition(" ")
            if word.upper() == "EXISTS" and number.isdigit():
                count = int(number)
    return count


# A mail program's patience: Thunderbird waits 100 s (mailnews.tcptimeout) for a reply.
CONNECT_TIMEOUT = 30.0
TIMEOUT = 100.0


def timeout(step: ImapStep) -> float:
    return step.timeout if isinstance(step, Idle) else TIMEOUT


def lost(text: str, status: str = "") -> Reply:
    return Reply("NO", (text,), local=True)
