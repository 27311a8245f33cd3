"""What a scenario is made of: pydantic models of nodes, links, zones, users, messages,
traffic, faults and eavesdroppers, each field with its unit, default and bounds.

A :class:`Scenario` is validated once and immutable; :func:`mailsim.run` simulates it.
Reading files and reporting problems live in :mod:`mailsim.scenario`; the checks across
fields (names that must exist, roles that must match) in :mod:`mailsim.references`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mailsim.errors import shown
from mailsim.fields import (
    Address,
    Bandwidth,
    Duration,
    HostName,
    Label,
    MessageId,
    MessageSize,
    NodeName,
    Password,
    PerSecond,
    PollStart,
    Position,
    Profile,
    Record,
    SizeLimit,
    Skew,
    Slowdown,
    Start,
    Subject,
    TlsVersion,
    at_most,
)
from mailsim.groups import MAX_USERS, count, expand, resolve
from mailsim.protocols.http import REFRESH
from mailsim.units import format_duration

# Counts: a class's world has tens of nodes, a replayed route at most a hundred hops;
# 10,000 nodes and twice as many links leave room for generated worlds and keep every
# path search in milliseconds. Explicit messages are written one by one: a lesson has a
# handful, and traffic draws thousands (the busy office: 17,000 a day).
MAX_NODES = 10_000
MAX_LINKS = 20_000
MAX_MESSAGES = 10_000
# Sessions a server serves at once: Postfix's default_process_limit is 100, and a big
# server runs a few thousand; the bound keeps the number one that JSON can write.
MAX_CONCURRENCY = 100_000


class _Model(BaseModel):
    # allow_inf_nan: .inf and .nan are no numbers a world can hold (they crash or run
    # forever later); unit-bearing fields check the same in mailsim.units.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


# --- nodes ----------------------------------------------------------------------------------


class _NodeBase(_Model):
    host: HostName | None = Field(
        None, description="fully qualified host name (default: node name)"
    )
    ip: str | None = Field(None, description="IPv4 address (default: assigned from TEST-NET)")
    pos: Position | None = Field(None, description="position in drawings")
    clock_skew: Skew = Field(
        0.0,
        description='how far this machine\'s clock is off ("-90s": behind): the times it'
        " writes in Received: lines lie by this much, as real clocks do",
    )

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.IPv4Address(value)
        return value


class ClientNode(_NodeBase):
    """A user's mail program (MUA): submits on 587, polls POP3."""

    role: Literal["client"]


class Processing(_Model):
    """Server work per step. Order of magnitude of a Postfix/Dovecot server on a small
    machine: sub-millisecond per command, a few ms to write and fsync a queue file before
    answering 250 to the end of DATA (RFC 5321 §6.1 requires the message to be safe)."""

    command: Duration = Field(0.0005, ge=0, description="per SMTP/POP3 command")
    data: Duration = Field(0.005, ge=0, description="end of DATA: queue file written, fsync")
    tls: Duration = Field(0.001, ge=0, description="server's TLS handshake computation")


class QueueSettings(_Model):
    """The deferred queue (Postfix names and defaults, postconf(5)); ``policy`` picks the
    retry schedule: ``postfix`` (backoff from time in queue, at the next deferred-queue
    scan), ``rfc`` (RFC 5321 §4.5.4.1's guidance: two attempts in the first hour, then
    every two hours) or ``exim`` (Exim's default rule F,2h,15m; G,16h,1h,1.5; F,4d,6h,
    tried at the next queue run). Postfix refuses times under 1 s for the first three
    (qmgr.c's time_table), and so do we."""

    policy: Literal["postfix", "rfc", "exim"] = "postfix"
    queue_run_delay: Duration = Field(
        300, ge=1, description="postfix: time between scans of the deferred queue"
    )
    minimal_backoff_time: Duration = Field(
        300, ge=1, description="postfix: the shortest pause before a deferred message is tried"
    )
    maximal_backoff_time: Duration = Field(
        4000, ge=1, description="postfix: the longest pause before a deferred message is tried"
    )
    maximal_queue_lifetime: Duration = Field(5 * 86400, ge=0)
    bounce_queue_lifetime: Duration = Field(5 * 86400, ge=0)
    delay_warning_time: Duration = Field(0, ge=0, description="0 = no delay warnings")
    queue_runner_interval: Duration = Field(
        1800,
        ge=1,
        description="exim: how often the daemon starts a queue runner, the only moments a"
        " deferred message is tried again (Debian's exim4 runs exim4 -bd -q30m:"
        " QUEUEINTERVAL='30m')",
    )
    scan_phase: Duration | None = Field(
        None,
        ge=0,
        description="when the first deferred-queue scan (postfix) or queue run (exim) comes"
        " after the start, from 0 to less than queue_run_delay (queue_runner_interval); the"
        " next ones follow at that interval. Default: drawn from the seed, uniformly, as for"
        ' a server started at any moment before; "0s" pins the scans to round numbers, for'
        " a lesson that needs exact times",
    )

    @field_validator("scan_phase")
    @classmethod
    def _within_one_interval(cls, phase: float | None, info: ValidationInfo) -> float | None:
        """A phase is a moment within one interval: one past it is the same scans."""
        if phase is None:
            return phase
        exim = info.data.get("policy") == "exim"
        name = "queue_runner_interval" if exim else "queue_run_delay"
        every = info.data.get(name)
        if every is not None and phase >= every:
            raise ValueError(f"less than {name} ({format_duration(every)}), the time between scans")
        return phase


class SmtpNode(_NodeBase):
    """A mail server (MTA): submission (MSA) on 587, relay and MX on 25."""

    role: Literal["smtp"]
    domains: list[HostName] = Field(default_factory=list, description="final destination for")
    relay_domains: list[HostName] = Field(
        default_factory=list, description="accepted from anyone and relayed on (backup MX)"
    )
    tls: TlsVersion = Field("1.3", description="STARTTLS offered with this TLS version")
    outgoing_tls: Literal["may", "encrypt", "none"] = Field(
        "may",
        description="TLS when relaying (Postfix smtp_tls_security_level; may: STARTTLS when"
        " offered, as Debian and most distributions set it; encrypt: defer without it)",
    )
    auth: Literal["required", "optional", "none"] = Field(
        "required", description="AUTH on submission (RFC 6409 §4.3 requires it)"
    )
    pipelining: bool = Field(True, description="advertise PIPELINING (RFC 2920)")
    concurrency: int = Field(
        100, ge=1, le=MAX_CONCURRENCY, description="parallel sessions (Postfix: 100)"
    )
    processing: Processing = Field(default_factory=Processing)
    relayhost: str | None = Field(None, description="smart host for all non-local mail")
    mynetworks: list[str] = Field(default_factory=list, description="may relay without AUTH")
    dkim_sign: list[HostName] = Field(
        default_factory=list,
        description="domains whose mail this server signs with DKIM (OpenDKIM's SigningTable)",
    )
    modifies_body: bool = Field(
        False, description="adds a footer to every message it passes on (breaks DKIM)"
    )
    sender_checks: bool = Field(
        True, description="checks SPF, DKIM and DMARC on mail for its own domains"
    )
    open_relay: bool = Field(
        False,
        description="relays for anyone on port 25, no AUTH asked (a misconfiguration spammers"
        " look for); otherwise relaying is refused with 554 5.7.1 Relay access denied, as"
        " Postfix's reject_unauth_destination does (its default since 2.10,"
        " defer_unauth_destination, says 454 4.7.1)",
    )
    resolver: str | None = Field(None, description="DNS resolver node (default: the only one)")
    message_size_limit: SizeLimit = Field(10_240_000, gt=0, description="Postfix default")
    queue: QueueSettings = Field(default_factory=QueueSettings)


class DnsNode(_NodeBase):
    """A caching DNS resolver answering from the scenario's zones."""

    role: Literal["dns"]
    recursion_time: Duration = Field(
        0.08, ge=0, description="cost of a cache miss (dnslab: partial miss 30–80 ms)"
    )
    processing: Duration = Field(0.0001, ge=0, description="cost of a cache hit")


class PopNode(_NodeBase):
    """The mailbox server: LMTP in (from the MX), POP3 and IMAP out (to the user's client),
    as Dovecot offers both."""

    role: Literal["pop"]
    tls: TlsVersion = Field(
        "1.3", description="STLS and IMAP's STARTTLS offered with this TLS version"
    )
    concurrency: int = Field(100, ge=1, le=MAX_CONCURRENCY)
    processing: Processing = Field(default_factory=Processing)
    quota: SizeLimit | None = Field(
        None,
        gt=0,
        description="each mailbox's quota (Dovecot's quota_rule = *:storage=…): what stays"
        " on the server counts — mail read over IMAP stays, POP3 deletes it; once a mailbox"
        " holds this much, new mail is refused at RCPT with 552 5.2.2",
    )


class RouterNode(_NodeBase):
    """A plain router: the network between mail nodes."""

    role: Literal["router"]


ROLES = ("client", "smtp", "dns", "pop", "router")
Node = Annotated[
    ClientNode | SmtpNode | DnsNode | PopNode | RouterNode, Field(discriminator="role")
]


class Link(_Model):
    """A network link. ``latency`` is one-way propagation delay, so RTT = 2 × latency."""

    between: tuple[str, str]
    latency: Duration = Field(ge=0)
    jitter: Duration = Field(0.0, ge=0, description="extra delay, uniform in [0, jitter]")
    bandwidth: Bandwidth = Field(1e9, gt=0)
    idle_timeout: Duration | None = Field(
        None,
        gt=0,
        description="a NAT or mobile network on this link forgets a TCP connection idle"
        " this long: an IMAP IDLE connection then hears no push, and its client learns it"
        " only when its next renewal goes unanswered (RFC 5382 REQ-5 asks NATs for at least"
        " 2 h 4 min; carriers' NATs measured by Wang et al., SIGCOMM 2011, forget idle"
        " connections far sooner); none: never",
    )


# --- DNS, users, traffic ----------------------------------------------------------------------


class MxRecord(_Model):
    preference: int = Field(ge=0, le=65535)
    host: HostName


class Zone(_Model):
    ttl: Duration = Field(3600, ge=0, description="record TTL (3600 s: the common default)")
    mx: list[MxRecord] = Field(default_factory=list)
    a: dict[HostName, str] = Field(default_factory=dict, description="host → IPv4 or node name")
    spf: Record | None = Field(
        None, description='SPF TXT record, e.g. "v=spf1 a:mail.school.example -all" (RFC 7208)'
    )
    dkim: HostName | None = Field(
        None, description="DKIM selector whose public key the zone publishes (RFC 6376)"
    )
    dmarc: Record | None = Field(
        None, description='DMARC record at _dmarc, e.g. "v=DMARC1; p=reject" (RFC 7489)'
    )

    @field_validator("spf")
    @classmethod
    def _ip4_networks(cls, record: str | None) -> str | None:
        """An ``ip4:`` term names an address or a network, or the check of every message
        would fail on it (a real checker answers permerror; we say so before the run)."""
        for term in (record or "").split()[1:]:
            mechanism = term[1:] if term[0] in "+-~?" else term
            kind, _, argument = mechanism.partition(":")
            if kind.lower() != "ip4":
                continue
            try:
                ipaddress.IPv4Network(argument, strict=False)
            except ValueError:
                raise ValueError(
                    f"{shown(term)} names no IPv4 address or network; write it like"
                    " ip4:192.0.2.0/24 or ip4:192.0.2.10"
                ) from None
        return record


class Dns(_Model):
    zones: dict[HostName, Zone] = Field(default_factory=dict)


def _version_as_written(value: Any) -> Any:
    """YAML reads ``http: 1.1`` and ``http: 2`` as numbers: take them as written."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


HttpVersion = Annotated[
    Literal["2", "1.1"],
    BeforeValidator(_version_as_written, json_schema_input_type=Literal["2", "1.1"] | float),
]


class User(_Model):
    client: str = Field(description="the node running this user's mail program")
    smtp: str | None = Field(None, description="outgoing (submission) server node")
    mailbox: str | None = Field(None, description="the pop node holding this user's mailbox")
    password: Password = "secret"
    retrieval: Literal["pop3", "imap", "imap-idle", "webmail"] = Field(
        "pop3",
        description="how the mail program reads mail: pop3 (download and delete, every"
        " `poll`), imap (mail stays on the server; new messages fetched every `poll`),"
        " imap-idle (a phone's push: IMAP IDLE, RFC 2177, told of new mail at once) or"
        " webmail (a browser's inbox page, refreshed over HTTPS every `poll`: a browser"
        " user's only way, and its default)",
    )
    poll: Duration = Field(
        600,
        gt=0,
        description="check interval for pop3 and imap (Thunderbird's default: 10 min) and"
        " webmail (a browser's default: Roundcube's refresh_interval, 1 min); for"
        " imap-idle, how long it waits before trying again when it cannot log in",
    )
    poll_start: PollStart = Field(
        0.0,
        description='time of the first poll; "spread": each user\'s first poll at a'
        " random moment of the first poll interval, drawn from the run's seed (mail"
        " programs start when their users arrive, not all at once)",
    )
    outbox_retry: Duration = Field(
        300, gt=0, description="how soon the mail program resends after a temporary failure"
    )
    typo: Password | None = Field(
        None, description="a wrong password the mail program sends: the server says 535 5.7.8"
    )
    spam_bot: bool = Field(
        False,
        description="sends through its smtp server on port 25 without logging in, as spam"
        " bots do: only an open relay passes it on",
    )
    security: Literal["auto", "starttls", "tls", "none"] = Field(
        "auto",
        description="the mail program's connection security (Thunderbird's words):"
        " STARTTLS required on 587 and 110, implicit TLS on 465 and 995 (RFC 8314), or"
        " none; auto: what account setup picks, STARTTLS if the server offers it, else none",
    )
    authentication: Literal["password", "none"] = Field(
        "password",
        description="how the mail program logs in to its outgoing server (Thunderbird's"
        ' "Authentication method"): password (AUTH PLAIN, when the server offers AUTH,'
        " RFC 4954 §4) or none (MAIL FROM right after EHLO)",
    )
    program: Literal["thunderbird", "msmtp", "minimal", "phone", "browser"] = Field(
        "thunderbird",
        description="the mail program, for how it groups SMTP commands: thunderbird (each"
        " command waits for its reply), msmtp (MAIL, RCPT and DATA pipelined), minimal"
        " (RFC 5321 alone) or phone (Thunderbird for Android: MAIL and RCPT pipelined, DATA"
        " after; it reads with imap-idle unless `retrieval` says otherwise); see"
        " mailsim/protocols/smtp.py. browser: webmail, no SMTP and no POP3: the browser"
        " sends over HTTPS (port 443, TLS 1.3) to the webmail front end that runs on the"
        " user's smtp node, which hands the message to that server; see"
        " mailsim/protocols/http.py",
    )
    http: HttpVersion = Field(
        "2",
        description="for a browser: the HTTP version it speaks to the webmail front end"
        " (HTTP/2, as browsers do with every large webmail; 1.1 to compare)",
    )

    @model_validator(mode="before")
    @classmethod
    def _reads_as_its_program(cls, data: Any) -> Any:
        """A phone pushes (IMAP IDLE), as mail apps do out of the box; a browser reads in
        its inbox page, refreshed every minute (Roundcube's refresh_interval,
        mailsim.protocols.http.REFRESH); the desktop programs read as their account was
        set up in the first lessons: POP3."""
        if not isinstance(data, dict):
            return data
        program = data.get("program")
        if program == "phone" and "retrieval" not in data:
            return {**data, "retrieval": "imap-idle"}
        if program == "browser":
            return {"retrieval": "webmail", "poll": REFRESH, **data}
        return data


def _listed(value: Any) -> Any:
    """One address may be written without a list around it."""
    return [value] if isinstance(value, str) else value


# Addresses as people write them: one, or a list (``_listed`` makes a list of one); the
# schema an editor checks a file with says both.
Addresses = Annotated[list[str], BeforeValidator(_listed, json_schema_input_type=str | list[str])]


class MessageSpec(_Model):
    id: MessageId | None = None
    at: Duration = Field(ge=0)
    sender: str = Field(alias="from")
    header_from: Address | None = Field(
        None,
        description="the From: line the recipient sees, when the sender writes someone"
        " else's (a forgery); the envelope sender stays `from`",
    )
    to: Addresses
    size: MessageSize = Field(20_000, gt=0)
    subject: Subject = "Hello"


class Traffic(_Model):
    """Poisson traffic: each sender writes at ``rate`` to recipients picked uniformly;
    ``from`` and ``to`` take ranges (``staff{1..500}@office.example``) and globs
    (``*@office.example``) over the users."""

    sender: Addresses = Field(alias="from")
    to: Addresses
    rate: PerSecond = Field(
        gt=0, description='per sender, e.g. "10/h"; with a profile, at the busiest hour'
    )
    profile: Profile = Field(
        "flat", description='"working-day", or 24 hourly weights by local time (see `start`)'
    )
    size: MessageSize = Field(20_000, gt=0)
    start: Duration = Field(0.0, ge=0)
    stop: Duration | None = Field(None, ge=0)
    subject: Subject = "Traffic"


class Window(_Model):
    start: Duration = Field(0.0, ge=0, description="when the fault begins")
    end: Duration | None = Field(None, ge=0, description="when it ends (default: never)")

    def active(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


class DownFault(Window):
    """The server refuses connections (TCP RST): ``Connection refused``."""

    kind: Literal["down"]
    node: str


class CrashFault(_Model):
    """The server machine dies at ``at``: sessions in flight get no more replies; it comes
    back after ``restart``. What it had answered 250 for is on disk and survives."""

    kind: Literal["crash"]
    node: str
    at: Duration = Field(ge=0)
    restart: Duration = Field(600, gt=0, description="time until it is up again")


class SlowFault(Window):
    """The server works ``factor`` times slower (a loaded machine, a content filter)."""

    kind: Literal["slow"]
    node: str
    factor: Slowdown = Field(10, gt=0)


class OverloadFault(Window):
    """The server turns new connections away (SMTP 421, POP3 -ERR [SYS/TEMP], IMAP
    * BYE [UNAVAILABLE]) and closes them: too many connections."""

    kind: Literal["overload"]
    node: str


class HangFault(Window):
    """The server accepts connections and commands but stops answering: clients wait for
    their per-command timeouts (RFC 5321 §4.5.3.2)."""

    kind: Literal["hang"]
    node: str


class DnsFault(Window):
    """Look-ups of ``domain`` answer NXDOMAIN (the domain does not exist) or SERVFAIL (its
    name servers are broken)."""

    kind: Literal["nxdomain", "servfail"]
    domain: str


class ResolverDownFault(Window):
    """The resolver does not answer: queries time out."""

    kind: Literal["resolver-down"]
    node: str


class LinkDownFault(Window):
    """The link carries nothing; traffic takes another path if there is one."""

    kind: Literal["link-down"]
    between: tuple[str, str]


class LossFault(Window):
    """Each packet on the link is lost with probability ``rate``; TCP retransmits it after
    its retransmission timeout (1 s initially, RFC 6298), doubling on each further loss."""

    kind: Literal["loss"]
    between: tuple[str, str]
    rate: float = Field(gt=0, lt=1)


class StripStarttlsFault(Window):
    """A man in the middle on the link deletes STARTTLS (and POP3's STLS) from the
    server's capability list, as seen in the wild (the "STARTTLS stripping" of RFC 3207
    §6 and RFC 8314 §1): a client that only *may* use TLS goes on in plaintext."""

    kind: Literal["strip-starttls"]
    between: tuple[str, str]


class TlsFailFault(Window):
    """The server's TLS handshakes fail (a broken or incompatible TLS setup): the client
    gets an alert instead of the server's answer. Postfix with ``may`` defers and sends
    in plaintext on the next attempt; with ``encrypt`` it keeps deferring (4.7.5)."""

    kind: Literal["tls-fail"]
    node: str


class GreylistFault(Window):
    """postgrey on the server: a new (client /24 network, sender, recipient) triplet is
    refused at RCPT with ``450 <status> <rcpt>: Recipient address rejected: Greylisted,
    see http://postgrey.schweikert.ch/help/<domain>.html`` until ``delay`` has passed
    since its first attempt (postgrey's --delay, 300 s)."""

    kind: Literal["greylist"]
    node: str
    delay: Duration = Field(300, ge=0, description="postgrey --delay (300 s)")
    status: Literal["4.2.0", "4.7.1"] = Field(
        "4.2.0",
        description="enhanced status code of the refusal: postgrey writes 4.2.0 when its"
        " client sends etrn_domain (Postfix 2.3 and later); otherwise Postfix's default for"
        " DEFER_IF_PERMIT, 4.7.1, stays",
    )


class MailboxFullFault(Window):
    """The user's mailbox is over quota: 452 (temporary) or 552 (permanent) at RCPT."""

    kind: Literal["mailbox-full"]
    user: str
    code: Literal[452, 552] = 552


Fault = Annotated[
    DownFault
    | CrashFault
    | SlowFault
    | OverloadFault
    | HangFault
    | DnsFault
    | ResolverDownFault
    | LinkDownFault
    | LossFault
    | GreylistFault
    | MailboxFullFault
    | StripStarttlsFault
    | TlsFailFault,
    Field(discriminator="kind"),
]
FAULT_KINDS = (
    "down", "crash", "slow", "overload", "hang", "nxdomain", "servfail", "resolver-down",
    "link-down", "loss", "greylist", "mailbox-full", "strip-starttls", "tls-fail",
)  # fmt: skip


class Eavesdropper(_Model):
    """Someone who reads everything that crosses one link (a tapped cable, a hostile
    Wi-Fi, a router of a provider one does not trust)."""

    name: Label = "eve"
    between: tuple[str, str]


def _few_enough_users(users: dict[str, User]) -> dict[str, User]:
    """At most MAX_USERS addresses in all, counted without writing them out."""
    total = 0
    for key in users:
        try:
            total += count(key)
        except ValueError:
            continue  # reported with its key by the cross-checks
    if total > MAX_USERS:
        raise ValueError(
            f"the users declare {total:,} addresses in all; at most {MAX_USERS:,} in one scenario"
        )
    return users


class Scenario(_Model):
    """A validated, immutable description of a world; :func:`mailsim.run` simulates it."""

    name: Label = "scenario"
    description: str = ""
    start: Start = Field(
        "2026-11-02T09:00:00+01:00", description="wall-clock date of t = 0 in headers"
    )
    duration: Duration = Field(86400, gt=0, description="longest simulated time")
    nodes: Annotated[dict[NodeName, Node], at_most(MAX_NODES, "nodes")]
    links: Annotated[list[Link], at_most(MAX_LINKS, "links")] = Field(default_factory=list)
    dns: Dns = Field(default_factory=Dns)
    users: Annotated[dict[str, User], AfterValidator(_few_enough_users)] = Field(
        default_factory=dict
    )
    messages: Annotated[
        list[MessageSpec], at_most(MAX_MESSAGES, "messages", "for many, use traffic")
    ] = Field(default_factory=list)
    traffic: list[Traffic] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    eavesdroppers: list[Eavesdropper] = Field(default_factory=list)

    @cached_property
    def accounts(self) -> dict[str, User]:
        """Every mail user, groups written out (``staff{1..500}@…`` → 500 users, all
        sharing their entry's settings; ``poll_start: spread`` is drawn per user when the
        run starts, from its seed)."""
        everyone: dict[str, User] = {}
        for key, user in self.users.items():
            try:
                addresses = expand(key)
            except ValueError:  # reported by check_references
                addresses = [key]
            for address in addresses:
                everyone[address] = user
        return everyone

    def addresses(self, items: Sequence[str]) -> list[str]:
        """A ``from``/``to`` list with its ranges and globs resolved, each address once.
        Each entry is resolved once per scenario, however many messages name it: a glob
        over 100,000 users named by 10,000 messages is matched once, not 10,000 times."""
        found: dict[str, None] = {}
        for item in items:
            if item not in self._resolved:
                self._resolved[item] = resolve(item, self._users, self._lowered_users)
            found.update(dict.fromkeys(self._resolved[item]))
        return list(found)

    @cached_property
    def _users(self) -> list[str]:
        return list(self.accounts)

    @cached_property
    def _lowered_users(self) -> list[str]:
        return [user.lower() for user in self._users]

    @cached_property
    def _resolved(self) -> dict[str, list[str]]:
        return {}

    def nodes_of(self, role: str) -> list[str]:
        return [name for name, node in self.nodes.items() if node.role == role]


NODE_MODELS: dict[str, type[BaseModel]] = {
    "client": ClientNode,
    "smtp": SmtpNode,
    "dns": DnsNode,
    "pop": PopNode,
    "router": RouterNode,
}


def fault_model(kind: str) -> type[BaseModel] | None:
    for model in get_args(get_args(Fault)[0]):
        if kind in get_args(model.model_fields["kind"].annotation):
            return model  # type: ignore[no-any-return]
    return None
