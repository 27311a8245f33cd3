"""Webmail: a browser's HTTPS dialogue with its provider's webmail front end.

The browser opens TCP to port 443 and does the TLS 1.3 handshake first (ALPN, RFC 7301,
picks HTTP/2 inside the ClientHello: no round trip of its own). The client speaks first
(no greeting), and sends the message in one request: ``POST`` with ``Content-Type:
message/rfc822`` and the message as it is, which is how Gmail's API takes a raw message
(users.messages.send, media upload; the recipients are the message's To/Cc/Bcc). The
front end answers ``200`` with a little JSON naming the message. A submission is three
round trips: TCP, TLS, the request, against SMTP submission's greeting, EHLO, STARTTLS,
handshake, EHLO, AUTH, MAIL, RCPT, DATA and the message.

Octets are counted exactly for one encoding of each version: HTTP/1.1's text (RFC 9112)
and HTTP/2's frames (RFC 9113 §4.1: a nine-octet header each; the client's connection
preface, SETTINGS and WINDOW_UPDATE travel with its first request, §3.4) with HPACK
header blocks (RFC 7541) that use the static table and literals without Huffman coding.
A browser's Huffman coding would save about a quarter of the header octets, a few dozen
bytes. As after SMTP's STARTTLS, the TLS records' own overhead is left to the captures
(:mod:`mailsim.wire`).

Not modelled: HTTP/2 flow control. A body over the initial window of 65,535 octets
(RFC 9113 §6.9.2) goes on at once here, paced by TCP's slow start alone, as it does when
the server's SETTINGS and WINDOW_UPDATE, which widen the window, come with its handshake
flight (TLS 1.3 lets a server send data there); their octets are counted with the
response. A server that waits for the request before widening it costs a large message
one more round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mailsim.protocols import Connect, Idle, Reply, Request, Step

Version = Literal["2", "1.1"]

HTTPS_PORT = 443  # RFC 9110 §4.2.2
SEND_PATH = "/mail/send"
INBOX_PATH = "/mail/inbox"  # the list of new messages the inbox page asks for
MESSAGE_PATH = "/mail/messages/"  # + the message's number: one message, as it is
JSON, RFC822 = "application/json", "message/rfc822"
# Roundcube's refresh_interval (config/defaults.inc.php: 60 s, also its minimum): how often
# an open inbox page asks the server for new mail.
REFRESH = 60.0
# nginx's keepalive_timeout (75 s by default, ngx_http_core_module): how long the web
# server keeps an idle connection open. Firefox keeps one 115 s
# (network.http.keep-alive.timeout): the shorter wins, so a page that refreshes within
# 75 s asks on the connection it has, and one that refreshes less often connects anew.
KEEPALIVE = 75.0
# nginx's keepalive_time (1 h by default since 1.19.10): a kept connection is closed after
# the first request that ends past its first hour; the page's next refresh connects anew.
# (Its keepalive_requests, 1,000, would take a page refreshed every minute 16 h.)
KEEPALIVE_TIME = 3600.0
# A current browser's identification (Firefox 128 on Linux), sent with every request.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
COOKIE = "SID=" + "7f3a9c41e2d85b60" * 2  # the login session: 32 hex digits
# Firefox's network.http.connection-timeout (90 s) and network.http.response.timeout
# (300 s): how long the browser waits to connect, and for a response.
CONNECT_TIMEOUT = 90.0
RESPONSE_TIMEOUT = 300.0

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4
FRAME_HEADER = 9  # RFC 9113 §4.1
MAX_FRAME = 16_384  # SETTINGS_MAX_FRAME_SIZE's initial value (RFC 9113 §6.5.2)
DATA, HEADERS, SETTINGS, WINDOW_UPDATE = 0x0, 0x1, 0x4, 0x8  # frame types (§6)
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
# What a browser announces (RFC 9113 §6.5.2): HEADER_TABLE_SIZE 65,536, ENABLE_PUSH 0,
# INITIAL_WINDOW_SIZE 131,072, MAX_FRAME_SIZE 16,384; and a server: MAX_CONCURRENT_STREAMS
# 128, INITIAL_WINDOW_SIZE 65,536, MAX_FRAME_SIZE 16,777,215 (nginx's defaults).
CLIENT_SETTINGS = ((0x1, 65_536), (0x2, 0), (0x4, 131_072), (0x5, 16_384))
SERVER_SETTINGS = ((0x3, 128), (0x4, 65_536), (0x5, 16_777_215))
CONNECTION_WINDOW = 12_517_377  # the browser's first WINDOW_UPDATE on the connection

# The HPACK static table entries used here (RFC 7541 Appendix A): name → index, and the
# (name, value) pairs that are whole entries.
STATIC_NAMES = {":authority": 1, ":path": 4, ":status": 8, "accept": 19, "content-length": 28,
                "content-type": 31, "cookie": 32, "user-agent": 58}  # fmt: skip
STATIC_PAIRS = {(":method", "GET"): 2, (":method", "POST"): 3, (":scheme", "https"): 7,
                (":status", "200"): 8}  # fmt: skip

# The Received line's ``with`` word for a web submission. RFC 3848 added ESMTPS, ESMTPA
# and ESMTPSA (and LMTP's like words) to the registry of these words (IANA's Mail
# Transmission Types); HTTP is not in it, yet providers write it: Gmail stamps its web
# submissions ``by … with HTTP`` (its API's ``with HTTPREST``), others ``via HTTP``
# (Gmail Help, "Reading full email headers"). The S says the browser's hop was encrypted,
# as ESMTPS says it of SMTP.
STAMP = "HTTPS"

# RFC 9110 §15
REASONS = {"200": "OK", "404": "Not Found", "413": "Content Too Large",
           "503": "Service Unavailable"}  # fmt: skip
# The dynamic table's size (RFC 7541 §4.2): 4,096 octets, the initial size, each way. The
# server may use up to the 65,536 the browser announces only after saying so with a size
# update in a header block (§6.3); nginx does not. An entry counts its name, its value
# and 32 (§4.1).
TABLE = 4_096
ENTRY_OVERHEAD = 32


@dataclass(frozen=True)
class Response(Reply):
    """An HTTP response: its status code and reason, and every octet it took (status
    line or HEADERS frame, headers, body; under HTTP/2 the server's SETTINGS too)."""

    octets: int = 0

    @property
    def size(self) -> int:
        return self.octets

    def wire(self) -> str:
        return f"{self.code} {self.text}\r\n"

    @property
    def temporary(self) -> bool:
        """Worth sending again later: a server error (5xx), or no response at all; a 4xx
        means the request itself was refused (RFC 9110 §15.5)."""
        return self.local or self.code.startswith("5")


# -- octets ----------------------------------------------------------------------------------


def integer(value: int, prefix: int, flags: int = 0) -> bytes:
    """An HPACK integer with an ``prefix``-bit prefix (RFC 7541 §5.1)."""
    top = (1 << prefix) - 1
    if value < top:
        return bytes([flags | value])
    out = [flags | top]
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


@dataclass
class Hpack:
    """One direction's HPACK encoder on one connection. A field in the static table, or
    sent before on this connection and still in the dynamic table, is one index (§6.1);
    any other is a literal with incremental indexing and the name from the static table
    (§6.2.1), its value a plain string (§5.2, no Huffman), and enters the dynamic table,
    which drops its oldest entries to stay within ``size`` octets (§4.4). So a page's
    second request sends its cookie and user agent as one octet each."""

    size: int = TABLE
    table: list[tuple[str, str]] = field(default_factory=list)  # newest first
    used: int = 0  # the entries' octets (§4.1)

    def encode(self, headers: list[tuple[str, str]]) -> bytes:
        out = bytearray()
        for name, value in headers:
            if (name, value) in STATIC_PAIRS:
                out += integer(STATIC_PAIRS[name, value], 7, 0x80)
            elif (name, value) in self.table:  # dynamic indexes follow the static 61 (§2.3.3)
                out += integer(62 + self.table.index((name, value)), 7, 0x80)
            else:
                raw = value.encode()
                out += integer(STATIC_NAMES[name], 6, 0x40) + integer(len(raw), 7) + raw
                self._add(name, value)
        return bytes(out)

    def _add(self, name: str, value: str) -> None:
        self.table.insert(0, (name, value))
        self.used += _entry(name, value)
        while self.used > self.size:
            self.used -= _entry(*self.table.pop())


def _entry(name: str, value: str) -> int:
    return len(name.encode()) + len(value.encode()) + ENTRY_OVERHEAD


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """One HTTP/2 frame (RFC 9113 §4.1)."""
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


def _settings(pairs: tuple[tuple[int, int], ...]) -> bytes:
    body = b"".join(key.to_bytes(2, "big") + value.to_bytes(4, "big") for key, value in pairs)
    return frame(SETTINGS, 0, 0, body)


def _data_frames(body: bytes) -> bytes:
    """The body in DATA frames of at most MAX_FRAME octets, the last ending the stream."""
    chunks = [body[i : i + MAX_FRAME] for i in range(0, len(body), MAX_FRAME)] or [b""]
    last = len(chunks) - 1
    return b"".join(frame(DATA, END_STREAM if i == last else 0, 1, c) for i, c in enumerate(chunks))


def _framing(length: int) -> int:
    """The DATA frames' own octets around a body of ``length``."""
    return FRAME_HEADER * max(1, -(-length // MAX_FRAME))


def request_head(host: str, path: str, length: int, version: Version = "2") -> bytes:
    """Everything the browser sends before the body of a ``POST`` of ``length`` octets:
    the request line and header fields, or the HTTP/2 preface, SETTINGS, WINDOW_UPDATE
    and HEADERS frames."""
    if version == "1.1":
        return (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Content-Type: message/rfc822\r\nContent-Length: {length}\r\n"
            f"Cookie: {COOKIE}\r\n\r\n"
        ).encode()
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", host), (":path", path),
              ("content-type", "message/rfc822"), ("content-length", str(length)),
              ("user-agent", USER_AGENT), ("cookie", COOKIE)]  # fmt: skip
    return Connection().headers(fields, 0)


def request_bytes(host: str, path: str, body: bytes, version: Version = "2") -> bytes:
    """The whole request as sent (what the tests parse back)."""
    head = request_head(host, path, len(body), version)
    return head + (body if version == "1.1" else _data_frames(body))


def request_size(host: str, path: str, length: int, version: Version = "2") -> int:
    """``len(request_bytes(...))``, counted without building the body."""
    framing = 0 if version == "1.1" else _framing(length)
    return len(request_head(host, path, length, version)) + length + framing


def response_bytes(code: str, body: str, version: Version = "2") -> bytes:
    """A response with a JSON body; under HTTP/2 after the server's SETTINGS and its
    acknowledgement of the browser's."""
    data = body.encode()
    head = Answers(version).head(code, JSON, len(data))
    return head + (data if version == "1.1" else _data_frames(data))


def respond(code: str, body: str, version: Version = "2") -> Response:
    octets = len(response_bytes(code, body, version))
    return Response(code, (REASONS[code],), octets=octets)


# -- the dialogue ----------------------------------------------------------------------------


def send(host: str, size: int, version: Version = "2") -> Request:
    """The ``POST`` of a message of ``size`` octets to the front end at ``host``."""
    octets = request_size(host, SEND_PATH, size, version)
    return Request("POST", SEND_PATH, octets, body=size, version=version)


def browser(
    host: str, size: int, version: Version = "2", tls: str = "1.3"
) -> Generator[Step, list[Reply], Reply]:
    """Send one message through the webmail front end at ``host``: connect on 443, TLS
    first, then the ``POST``. Returns the response, or why the connection failed."""
    replies = yield Connect(HTTPS_PORT, tls=tls, greeting=False)
    if replies[-1].code != "TLS":
        return replies[-1]
    (response,) = yield send(host, size, version)
    return response


class WebServer:
    """What every HTTP front end answers the engine's generic calls with: a web client
    speaks first and sends requests, not command lines; TLS is on from the start."""

    tls_active: str | None = None

    def greeting(self) -> Reply:
        raise RuntimeError("an HTTP client speaks first: a front end sends no greeting")

    def handle(self, line: str) -> Reply:
        raise RuntimeError(f"an HTTP front end takes requests, not command lines: {line!r}")

    def tls_started(self, version: str) -> None:
        self.tls_active = version


class FrontEnd(WebServer):
    """The webmail front end on the provider's server, for one connection: it takes a
    message ``POST``-ed by a logged-in browser (its session cookie says who) and hands
    it to the mail server on the same machine."""

    def __init__(self, queue_id: str, size_limit: int, version: Version = "2") -> None:
        self.queue_id = queue_id
        self.size_limit = size_limit
        self.version = version
        self.authenticated = True  # the session cookie: logged in before
        self.helo: str | None = None  # a browser says no HELO; the agent names the client

    def respond(self, request: Request) -> Response:
        """The response to ``request``: 200 and the message's id when it is taken, 413
        when it is over the size limit (Postfix's message_size_limit, as for SMTP)."""
        if request.body > self.size_limit:
            body = '{"error":{"code":413,"message":"Message too large"}}'
            return respond("413", body, self.version)
        return respond("200", f'{{"id":"{self.queue_id}","labelIds":["SENT"]}}', self.version)


def timeout(step: Step) -> float:
    """How long the browser waits: to connect (and shake hands), then for the response."""
    return CONNECT_TIMEOUT if isinstance(step, Connect) else RESPONSE_TIMEOUT


def lost(text: str, status: str = "4.4.2") -> Reply:
    """What the browser concludes when the connection fails (the page shows an error and
    the webmail keeps the message to send again, as Gmail's Outbox does offline)."""
    return Reply("421", (f"{text} ({status})",), local=True)


# -- reading in the browser ------------------------------------------------------------------
#
# The inbox page asks its front end for the new messages every REFRESH seconds (a GET of
# INBOX_PATH, answered with a little JSON) and opens each new one (a GET of its
# MESSAGE_PATH, answered with the message): the front end flags it \\Seen in the store the
# mailbox server's IMAP keeps, as Roundcube does through IMAP. The message comes as it is
# (``message/rfc822``); Gmail's API sends it base64url-encoded inside JSON (a third
# larger), Roundcube as an HTML page of about its size. The page keeps its connection
# while it refreshes within KEEPALIVE: only its first refresh pays TCP and TLS.


@dataclass
class Connection:
    """One side's state of one HTTP connection: its HPACK table, whether its opening
    (the preface and SETTINGS) has gone, and the next stream (a client's are odd,
    RFC 9113 §5.1.1)."""

    version: Version = "2"
    table: Hpack = field(default_factory=Hpack)
    opened: bool = False
    stream: int = 1

    def headers(self, fields: list[tuple[str, str]], flags: int) -> bytes:
        """The next stream's HEADERS frame: on a new connection after the opening; on
        the request after the first, after the acknowledgement of the server's SETTINGS,
        which came with the first response (RFC 9113 §6.5.3)."""
        ahead = b"" if self.opened else self.opening()
        if self.stream == 3:
            ahead = frame(SETTINGS, ACK, 0, b"")
        block = frame(HEADERS, END_HEADERS | flags, self.stream, self.table.encode(fields))
        self.opened = True
        self.stream += 2
        return ahead + block

    def opening(self) -> bytes:
        """The client's preface, SETTINGS and WINDOW_UPDATE (RFC 9113 §3.4)."""
        return (
            PREFACE
            + _settings(CLIENT_SETTINGS)
            + frame(WINDOW_UPDATE, 0, 0, CONNECTION_WINDOW.to_bytes(4, "big"))
        )


def get_bytes(conn: Connection, host: str, path: str, accept: str) -> bytes:
    """A ``GET`` as the browser sends it on ``conn``."""
    if conn.version == "1.1":
        return (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Accept: {accept}\r\nCookie: {COOKIE}\r\n\r\n"
        ).encode()
    fields = [(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", path),
              ("accept", accept), ("user-agent", USER_AGENT), ("cookie", COOKIE)]  # fmt: skip
    return conn.headers(fields, END_STREAM)


def get(conn: Connection, host: str, path: str, accept: str) -> Request:
    return Request("GET", path, len(get_bytes(conn, host, path, accept)), version=conn.version)


class Answers:
    """The server's side of one connection: its HPACK table, its SETTINGS with its first
    response, and the streams it answers in order."""

    def __init__(self, version: Version) -> None:
        self.version = version
        self.table = Hpack(TABLE)
        self.opened = False
        self.stream = 1

    def head(self, code: str, kind: str, length: int) -> bytes:
        """Everything before the body of a response of ``length`` octets."""
        if self.version == "1.1":
            return (
                f"HTTP/1.1 {code} {REASONS[code]}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {length}\r\n\r\n"
            ).encode()
        fields = [(":status", code), ("content-type", kind), ("content-length", str(length))]
        opening = b"" if self.opened else _settings(SERVER_SETTINGS) + frame(SETTINGS, ACK, 0, b"")
        block = frame(HEADERS, END_HEADERS, self.stream, self.table.encode(fields))
        self.opened = True
        self.stream += 2
        return opening + block

    def octets(self, code: str, kind: str, length: int) -> int:
        framing = 0 if self.version == "1.1" else _framing(length)
        return len(self.head(code, kind, length)) + length + framing


def listing(numbers: list[int], sizes: list[int]) -> str:
    """The inbox's JSON: each new message's number and size."""
    items = ",".join(f'{{"uid":{n},"size":{s}}}' for n, s in zip(numbers, sizes, strict=True))
    return f'{{"messages":[{items}]}}'


class Webmail(WebServer):
    """The webmail front end beside a mailbox server, for one browser connection: it
    lists the INBOX's new messages and sends one when the page opens it, flagging it
    \\Seen. ``mailbox`` and ``seen`` are the store the mailbox server's IMAP keeps (sizes,
    message n at ``mailbox[n-1]``; the numbers read), shared, not copied."""

    def __init__(self, mailbox: Sequence[int], seen: set[int], version: Version = "2") -> None:
        self.mailbox = mailbox
        self.seen = seen
        self.answers = Answers(version)

    def new(self) -> list[int]:
        """The numbers of the messages not yet opened: what a refresh lists."""
        return [n for n in range(1, len(self.mailbox) + 1) if n not in self.seen]

    def news(self) -> Reply | None:
        """A web page is told nothing between its requests (no push): it asks again."""
        return None

    def respond(self, request: Request) -> Response:
        """The inbox's new messages (their numbers as the response's data), or a message
        (its octets as the payload), or 404 for what is not there."""
        answers = self.answers
        if request.path == INBOX_PATH:
            new = self.new()
            body = listing(new, [self.mailbox[n - 1] for n in new])
            octets = answers.octets("200", JSON, len(body.encode()))
            return Response("200", ("OK",), data=tuple(map(str, new)), octets=octets)
        number = request.path.removeprefix(MESSAGE_PATH)
        if number.isdigit() and 1 <= int(number) <= len(self.mailbox):
            size = self.mailbox[int(number) - 1]
            self.seen.add(int(number))
            octets = answers.octets("200", RFC822, size)
            return Response("200", ("OK",), payload=size, octets=octets)
        body = '{"error":{"code":404,"message":"Not Found"}}'
        return Response("404", ("Not Found",), octets=answers.octets("404", JSON, len(body)))


def reader(
    host: str,
    version: Version = "2",
    tls: str = "1.3",
    pause: Callable[[], float | None] = lambda: None,
) -> Generator[Step | Idle, list[Reply], Reply | None]:
    """An open inbox page: connect on 443 (TLS first), ask for the new mail, open each
    new message; then ``pause()`` says how long until the next refresh (None: the
    connection is to close) and, when that is within KEEPALIVE, the page waits on its
    connection and refreshes on it; else the connection is closed and the next refresh
    connects anew. Returns the reply that ended it early, None when it closed of its own."""
    replies = yield Connect(HTTPS_PORT, tls=tls, greeting=False)
    if replies[-1].code != "TLS":
        return replies[-1]
    conn = Connection(version)
    while True:
        (listed,) = yield get(conn, host, INBOX_PATH, JSON)
        if listed.code != "200":
            return listed
        for number in listed.data:
            (opened,) = yield get(conn, host, MESSAGE_PATH + number, RFC822)
            if opened.code != "200":
                return opened
        wait = pause()
        if wait is None or wait > KEEPALIVE:
            return None
        yield Idle(wait)
