"""What a scenario is made of: pydantic models of nodes, links, zones, users, messages,
traffic, faults and eavesdroppers, each field with its unit, default and bounds.

A :class:`Scenario` is validated once and immutable; :func:`mailsim.run` simulates it.
Reading files and reporting problems live in :mod:`mailsim.scenario`; the checks across
fields (names that must exist, roles that must match) in :mod:`mailsim.references`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from mailsim.groups import expand, resolve_all
from mailsim.units import parse_duration, parse_rate, parse_size

# --- unit-bearing field types -------------------------------------------------------------

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"type": ["string", "number"], "description": 'a duration: "20ms", "5min", "2h"'}
    ),
]
Size = Annotated[
    float,
    BeforeValidator(parse_size),
    WithJsonSchema({"type": ["string", "number"], "description": 'a size: "20KB", "1MB"'}),
]
Bandwidth = Annotated[
    float,
    BeforeValidator(parse_rate),
    WithJsonSchema({"type": ["string", "number"], "description": 'a bandwidth: "50Mbps"'}),
]

_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*/\s*(s|sec|min|h|d)\s*$")


def _parse_per_second(value: Any) -> float:
    """Rates of events such as "10/h" or "2/min" → events per second."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _RATE.match(str(value))
    if not match:
        raise ValueError(f'{value!r} is not a rate; write it like "10/h" or "2/min"')
    return float(match.group(1)) / parse_duration("1" + match.group(2))


PerSecond = Annotated[
    float,
    BeforeValidator(_parse_per_second),
    WithJsonSchema({"type": ["string", "number"], "description": 'a rate: "10/h", "2/min"'}),
]


def _tls_version(value: Any) -> Any:
    """YAML reads ``tls: 1.2`` as a number; a version is meant."""
    if isinstance(value, float) and value in (1.2, 1.3):
        return str(value)
    return value


TlsVersion = Annotated[Literal["1.3", "1.2", "none"], BeforeValidator(_tls_version)]
ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- nodes ----------------------------------------------------------------------------------


class _NodeBase(_Model):
    host: str | None = Field(None, description="fully qualified host name (default: node name)")
    ip: str | None = Field(None, description="IPv4 address (default: assigned from TEST-NET)")
    pos: tuple[float, float] | None = Field(None, description="position in drawings")
    clock_skew: Duration = Field(
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
    retry schedule: ``postfix`` (backoff from time in queue), ``rfc`` (RFC 5321 §4.5.4.1's
    guidance: two attempts in the first hour, then every two hours) or ``exim`` (Exim's
    default rule F,2h,15m; G,16h,1h,1.5; F,4d,6h)."""

    policy: Literal["postfix", "rfc", "exim"] = "postfix"
    queue_run_delay: Duration = Field(300, gt=0)
    minimal_backoff_time: Duration = Field(300, ge=0)
    maximal_backoff_time: Duration = Field(4000, ge=0)
    maximal_queue_lifetime: Duration = Field(5 * 86400, ge=0)
    bounce_queue_lifetime: Duration = Field(5 * 86400, ge=0)
    delay_warning_time: Duration = Field(0, ge=0, description="0 = no delay warnings")


class SmtpNode(_NodeBase):
    """A mail server (MTA): submission (MSA) on 587, relay and MX on 25."""

    role: Literal["smtp"]
    domains: list[str] = Field(default_factory=list, description="final destination for")
    relay_domains: list[str] = Field(
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
    concurrency: int = Field(100, ge=1, description="parallel sessions (Postfix: 100)")
    processing: Processing = Field(default_factory=Processing)
    relayhost: str | None = Field(None, description="smart host for all non-local mail")
    mynetworks: list[str] = Field(default_factory=list, description="may relay without AUTH")
    dkim_sign: list[str] = Field(
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
        " look for; Postfix's default answers 554 5.7.1 Relay access denied)",
    )
    resolver: str | None = Field(None, description="DNS resolver node (default: the only one)")
    message_size_limit: Size = Field(10_240_000, gt=0, description="Postfix default")
    queue: QueueSettings = Field(default_factory=QueueSettings)


class DnsNode(_NodeBase):
    """A caching DNS resolver answering from the scenario's zones."""

    role: Literal["dns"]
    recursion_time: Duration = Field(
        0.08, ge=0, description="cost of a cache miss (dnslab: partial miss 30–80 ms)"
    )
    processing: Duration = Field(0.0001, ge=0, description="cost of a cache hit")


class PopNode(_NodeBase):
    """The mailbox server: LMTP in (from the MX), POP3 out (to the user's client)."""

    role: Literal["pop"]
    tls: TlsVersion = Field("1.3", description="STLS offered with this TLS version")
    concurrency: int = Field(100, ge=1)
    processing: Processing = Field(default_factory=Processing)


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


# --- DNS, users, traffic ----------------------------------------------------------------------


class MxRecord(_Model):
    preference: int = Field(ge=0, le=65535)
    host: str


class Zone(_Model):
    ttl: Duration = Field(3600, ge=0, description="record TTL (3600 s: the common default)")
    mx: list[MxRecord] = Field(default_factory=list)
    a: dict[str, str] = Field(default_factory=dict, description="host → IPv4 or node name")
    spf: str | None = Field(
        None, description='SPF TXT record, e.g. "v=spf1 a:mail.school.example -all" (RFC 7208)'
    )
    dkim: str | None = Field(
        None, description="DKIM selector whose public key the zone publishes (RFC 6376)"
    )
    dmarc: str | None = Field(
        None, description='DMARC record at _dmarc, e.g. "v=DMARC1; p=reject" (RFC 7489)'
    )


class Dns(_Model):
    zones: dict[str, Zone] = Field(default_factory=dict)


def _duration_or_spread(value: Any) -> Any:
    if value == "spread":
        return value
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError("must be 0 or more")
    return seconds


class User(_Model):
    client: str = Field(description="the node running this user's mail program")
    smtp: str | None = Field(None, description="outgoing (submission) server node")
    mailbox: str | None = Field(None, description="the pop node holding this user's mailbox")
    password: str = "secret"
    poll: Duration = Field(
        600, gt=0, description="POP3 check interval (Thunderbird's default: 10 min)"
    )
    poll_start: Annotated[float | Literal["spread"], BeforeValidator(_duration_or_spread)] = Field(
        0.0,
        description='time of the first poll; "spread": a group\'s users one after'
        " another over one poll interval",
    )
    outbox_retry: Duration = Field(
        300, gt=0, description="how soon the mail program resends after a temporary failure"
    )
    typo: str | None = Field(
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


def _listed(value: Any) -> Any:
    """One address may be written without a list around it."""
    return [value] if isinstance(value, str) else value


class MessageSpec(_Model):
    id: str | None = None
    at: Duration = Field(ge=0)
    sender: str = Field(alias="from")
    header_from: str | None = Field(
        None,
        description="the From: line the recipient sees, when the sender writes someone"
        " else's (a forgery); the envelope sender stays `from`",
    )
    to: list[str]
    size: Size = Field(20_000, gt=0)
    subject: str = "Hello"

    _one_or_many = field_validator("to", mode="before")(lambda value: _listed(value))


def _profile(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 24:
            raise ValueError(f"a profile has one weight per hour, 24 in all, not {len(value)}")
        if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in value):
            raise ValueError("hourly weights are numbers, 0 or more")
        if max(value) == 0:
            raise ValueError("at least one hour needs a weight above 0")
    return value


class Traffic(_Model):
    """Poisson traffic: each sender writes at ``rate`` to recipients picked uniformly;
    ``from`` and ``to`` take ranges (``staff{1..500}@office.example``) and globs
    (``*@office.example``) over the users."""

    sender: list[str] = Field(alias="from")
    to: list[str]
    rate: PerSecond = Field(
        gt=0, description='per sender, e.g. "10/h"; with a profile, at the busiest hour'
    )
    profile: Annotated[Literal["flat", "working-day"] | list[float], BeforeValidator(_profile)] = (
        Field(
            "flat",
            description='"working-day", or 24 hourly weights by local time (see `start`)',
        )
    )
    size: Size = Field(20_000, gt=0)
    start: Duration = Field(0.0, ge=0)
    stop: Duration | None = Field(None, ge=0)
    subject: str = "Traffic"

    _one_or_many = field_validator("to", "sender", mode="before")(lambda value: _listed(value))


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
    factor: float = Field(10, gt=0)


class OverloadFault(Window):
    """The server greets with 421 and closes: too many connections."""

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
    """postgrey on the server: a new (client, sender, recipient) triplet gets
    ``450 4.7.1`` until ``delay`` has passed since its first attempt (postgrey: 300 s)."""

    kind: Literal["greylist"]
    node: str
    delay: Duration = Field(300, ge=0)


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

    name: str = "eve"
    between: tuple[str, str]


def _iso(value: Any) -> Any:
    """YAML reads an unquoted 2026-11-02T09:00:00+01:00 as a date: the text is meant."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date and time; write it like 2026-11-02T09:00:00+01:00"
            ) from None
    return value


class Scenario(_Model):
    """A validated, immutable description of a world; :func:`mailsim.run` simulates it."""

    name: str = "scenario"
    description: str = ""
    start: Annotated[str, BeforeValidator(_iso)] = Field(
        "2026-11-02T09:00:00+01:00", description="wall-clock date of t = 0 in headers"
    )
    duration: Duration = Field(86400, gt=0, description="longest simulated time")
    nodes: dict[str, Node]
    links: list[Link] = Field(default_factory=list)
    dns: Dns = Field(default_factory=Dns)
    users: dict[str, User] = Field(default_factory=dict)
    messages: list[MessageSpec] = Field(default_factory=list)
    traffic: list[Traffic] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    eavesdroppers: list[Eavesdropper] = Field(default_factory=list)

    @cached_property
    def accounts(self) -> dict[str, User]:
        """Every mail user, groups written out (``staff{1..500}@…`` → 500 users); with
        ``poll_start: spread`` a group's users poll one after another, not all at once."""
        everyone: dict[str, User] = {}
        for key, user in self.users.items():
            try:
                addresses = expand(key)
            except ValueError:  # reported by check_references
                addresses = [key]
            for i, address in enumerate(addresses):
                if user.poll_start == "spread":
                    start = user.poll * i / len(addresses)
                    everyone[address] = user.model_copy(update={"poll_start": start})
                else:
                    everyone[address] = user
        return everyone

    def addresses(self, items: Sequence[str]) -> list[str]:
        """A ``from``/``to`` list with its ranges and globs resolved, each address once."""
        return resolve_all(items, list(self.accounts))

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
