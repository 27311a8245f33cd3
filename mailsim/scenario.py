"""Scenario files: YAML read with ``safe_load`` rules, validated by pydantic, cross-checked.

This is the only module that opens scenario files. A scenario describes a small world:
nodes with a role, network links, DNS zones, users and their mail programs, messages and
traffic. Every problem found is reported at once, one line each, naming the file, the
line and the key path (see :mod:`mailsim.errors`), with "did you mean …" for misspelt
names, so a student fixes a file in one pass.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import re
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import networkx as nx
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from mailsim.errors import InputError, Problem, ScenarioError, key_path
from mailsim.groups import RANGE, expand, is_glob, resolve, resolve_all
from mailsim.overrides import apply as apply_overrides
from mailsim.overrides import error as override_error
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


class _Window(_Model):
    start: Duration = Field(0.0, ge=0, description="when the fault begins")
    end: Duration | None = Field(None, ge=0, description="when it ends (default: never)")

    def active(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


class DownFault(_Window):
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


class SlowFault(_Window):
    """The server works ``factor`` times slower (a loaded machine, a content filter)."""

    kind: Literal["slow"]
    node: str
    factor: float = Field(10, gt=0)


class OverloadFault(_Window):
    """The server greets with 421 and closes: too many connections."""

    kind: Literal["overload"]
    node: str


class HangFault(_Window):
    """The server accepts connections and commands but stops answering: clients wait for
    their per-command timeouts (RFC 5321 §4.5.3.2)."""

    kind: Literal["hang"]
    node: str


class DnsFault(_Window):
    """Look-ups of ``domain`` answer NXDOMAIN (the domain does not exist) or SERVFAIL (its
    name servers are broken)."""

    kind: Literal["nxdomain", "servfail"]
    domain: str


class ResolverDownFault(_Window):
    """The resolver does not answer: queries time out."""

    kind: Literal["resolver-down"]
    node: str


class LinkDownFault(_Window):
    """The link carries nothing; traffic takes another path if there is one."""

    kind: Literal["link-down"]
    between: tuple[str, str]


class LossFault(_Window):
    """Each packet on the link is lost with probability ``rate``; TCP retransmits it after
    its retransmission timeout (1 s initially, RFC 6298), doubling on each further loss."""

    kind: Literal["loss"]
    between: tuple[str, str]
    rate: float = Field(gt=0, lt=1)


class StripStarttlsFault(_Window):
    """A man in the middle on the link deletes STARTTLS (and POP3's STLS) from the
    server's capability list, as seen in the wild (the "STARTTLS stripping" of RFC 3207
    §6 and RFC 8314 §1): a client that only *may* use TLS goes on in plaintext."""

    kind: Literal["strip-starttls"]
    between: tuple[str, str]


class TlsFailFault(_Window):
    """The server's TLS handshakes fail (a broken or incompatible TLS setup): the client
    gets an alert instead of the server's answer. Postfix with ``may`` defers and sends
    in plaintext on the next attempt; with ``encrypt`` it keeps deferring (4.7.5)."""

    kind: Literal["tls-fail"]
    node: str


class GreylistFault(_Window):
    """postgrey on the server: a new (client, sender, recipient) triplet gets
    ``450 4.7.1`` until ``delay`` has passed since its first attempt (postgrey: 300 s)."""

    kind: Literal["greylist"]
    node: str
    delay: Duration = Field(300, ge=0)


class MailboxFullFault(_Window):
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


# --- loading ----------------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """safe_load's rules, plus an error for a key given twice (YAML would keep the last).
    libyaml's parser where PyYAML has it: ten times faster on large worlds."""


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise _DuplicateKey(
                None,
                None,
                f"{key!r} is given twice (first on line {seen[key] + 1}); names must be unique",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _lines(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Key path → 1-based line, for every key and list item of a composed YAML tree."""
    out: dict[tuple[Any, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            out.update(_lines(value_node, (*path, key)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*path, index)] = item.start_mark.line + 1
            out.update(_lines(item, (*path, index)))
    return out


def load(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, validate and cross-check a scenario file, after the ``KEY=VALUE`` changes
    of ``overrides`` (``--set``, see :mod:`mailsim.overrides`); raise ScenarioError
    listing all problems."""
    return loads(read(path), str(path), overrides)


def read(path: str | Path) -> str:
    """The text of a scenario file, or a ScenarioError saying why it cannot be read."""
    name = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(name, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(name, "", f"cannot read: {exc}")]) from None


def override_paths(text: str, name: str, keys: list[str]) -> dict[str, str]:
    """Where each ``--set`` key lands in the scenario, as error messages name it (a link
    by its ends becomes ``links.3.latency``); keys that do not resolve are left out."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return {}
    paths = {}
    for key in keys:
        try:
            (loc,) = apply_overrides(copy.deepcopy(data), [f"{key}="], lambda k, t: None)
        except (InputError, TypeError, AttributeError):
            continue
        paths[key] = key_path(loc)
    return paths


def loads(text: str, name: str = "<scenario>", overrides: Sequence[str] = ()) -> Scenario:
    """Validate scenario text; ``name`` is used in error messages."""
    try:
        loader = _Loader(text)
        try:  # one parse: the node tree gives the line numbers, then the data
            tree = loader.get_single_node()
            data = loader.construct_document(tree) if tree is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = (exc.problem or str(exc)).strip()
        if not isinstance(exc, _DuplicateKey):
            problem = f"YAML syntax: {problem}"
        raise ScenarioError([Problem(name, "", problem, line)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(name, "", f"YAML syntax: {exc}")]) from None
    if data is None:
        raise ScenarioError([Problem(name, "", "the file is empty; a scenario needs `nodes:`")])
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(name, "", f"a scenario is a mapping of keys, got {type(data).__name__}")]
        )
    lines = _lines(tree)
    if not overrides:
        return validate(data, name, lines)
    changed = [key_path(loc) for loc in apply_overrides(data, list(overrides), _override_value)]
    lines = {loc: n for loc, n in lines.items() if key_path(loc) not in changed}
    try:
        return validate(data, name, lines)
    except ScenarioError as exc:
        # A problem in a value set on the command line is reported as the option's.
        raise ScenarioError(
            [
                Problem("--set", p.key, p.message)
                if any(_within(p.key, k) or _within(k, p.key) for k in changed)
                else p
                for p in exc.problems
            ]
        ) from None


def _within(key: str, outer: str) -> bool:
    """``key`` is ``outer`` or a path inside it."""
    return key == outer or key.startswith((outer + ".", outer + "["))


def _override_value(key: str, text: str) -> Any:
    """A ``--set`` value, read as YAML like the file (``150ms``, ``3``, ``[a, b]``)."""
    if not text.strip():
        return None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        raise override_error(key, f"the value {text!r} is not valid YAML: {problem}") from None


def validate(
    data: dict[str, Any], name: str = "<scenario>", lines: dict[tuple[Any, ...], int] | None = None
) -> Scenario:
    """Validate already-parsed data (from a file, or a dict built in Python)."""
    lines = lines or {}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([_problem(err, name, lines, data) for err in exc.errors()]) from None
    problems = check_references(scenario, name, lines)
    if problems:
        raise ScenarioError(problems)
    return scenario


# Lists of tagged unions: (top-level key, tag field, tag values).
_TAGGED = {"nodes": ("role", ROLES), "faults": ("kind", FAULT_KINDS)}


def _tag_in(loc: tuple[Any, ...]) -> str | None:
    """The discriminator value pydantic put in the path (nodes.pc.client.ip), if any."""
    if len(loc) >= 3 and loc[0] in _TAGGED and loc[2] in _TAGGED[loc[0]][1]:
        return str(loc[2])
    return None


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*loc[:2], *loc[3:]) if _tag_in(loc) else loc


NODE_MODELS: dict[str, type[BaseModel]] = {
    "client": ClientNode,
    "smtp": SmtpNode,
    "dns": DnsNode,
    "pop": PopNode,
    "router": RouterNode,
}


def _fault_model(kind: str) -> type[BaseModel] | None:
    for model in get_args(get_args(Fault)[0]):
        if kind in get_args(model.model_fields["kind"].annotation):
            return model  # type: ignore[no-any-return]
    return None


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: tuple[Any, ...], role: str | None) -> type[BaseModel] | None:
    """The pydantic model that a key path points into (for "did you mean" on unknown keys)."""
    model: type[BaseModel] | None = Scenario
    skip_key = False
    for part in loc:
        if skip_key:
            skip_key = False
            continue
        if model is Scenario and part == "nodes":
            model, skip_key = NODE_MODELS.get(role or ""), True
        elif model is Scenario and part == "faults":
            model, skip_key = _fault_model(role or ""), True
        elif model is not None:
            by_alias = {(f.alias or n): f for n, f in model.model_fields.items()}
            field = by_alias.get(part)
            if field is None:
                return None
            model = _submodel(field.annotation)
            skip_key = get_origin(field.annotation) in (dict, list)
        if model is None:
            return None
    return model


def _raw(data: Any, loc: tuple[Any, ...]) -> Any:
    """The value as written in the file at ``loc`` (before unit parsing)."""
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _problem(err: Any, name: str, lines: dict[tuple[Any, ...], int], data: Any) -> Problem:
    loc = tuple(err["loc"])
    role = _tag_in(loc)
    loc = _clean_loc(loc)
    written = _raw(data, loc)
    key = key_path(loc)
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1], role)
        names = [
            field.alias or field_name
            for field_name, field in (parent.model_fields.items() if parent else [])
        ]
        hint = difflib.get_close_matches(str(loc[-1]), names, n=1)
        msg = "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else "")
        if names and not hint:
            msg += f" (allowed: {', '.join(names)})"
    elif kind in ("union_tag_not_found", "union_tag_invalid"):
        field, options = _TAGGED.get(loc[0], ("role", ROLES))
        if kind == "union_tag_not_found":
            msg = f"missing {field!r} (one of {', '.join(options)})"
        else:
            tag = err.get("ctx", {}).get("tag")
            hint = difflib.get_close_matches(str(tag), options, n=1)
            msg = f"unknown {field} {tag!r}" + (
                f"; did you mean {hint[0]!r}?" if hint else f" (one of {', '.join(options)})"
            )
            key = key if key.endswith(field) else f"{key}.{field}"
    elif kind == "missing":
        msg = "required key is missing"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        limit = err.get("ctx", {}).get("ge", err.get("ctx", {}).get("gt"))
        if kind == "greater_than_equal" and limit == 0:
            msg = "must not be negative"
        elif kind == "greater_than" and limit == 0:
            msg = "must be greater than zero"
        shown = written if written is not None else value
        if shown is not None and not isinstance(shown, dict | list) and repr(shown) not in msg:
            msg = f"{msg} (got {shown!r})"
    return Problem(name, key, msg, _line_of(lines, loc))


def _line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    """The line of ``loc`` in the file, or of the nearest key above it that has one."""
    for depth in range(len(loc), 0, -1):
        line = lines.get(loc[:depth])
        if line is not None:
            return line
    return None


def _a(role: str) -> str:
    return ("an " if role in ("smtp",) else "a ") + role


def _hint(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_references(
    scenario: Scenario, name: str = "<scenario>", lines: dict[tuple[Any, ...], int] | None = None
) -> list[Problem]:
    """Cross-checks that one field's validation cannot make: names that must exist, roles
    that must match, addresses that must have a mail program."""
    lines = lines or {}
    problems: list[Problem] = []
    nodes = list(scenario.nodes)

    def add(loc: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(name, key_path(loc), message, _line_of(lines, loc)))

    def node_ref(loc: tuple[Any, ...], ref: str | None, role: str | None) -> None:
        if ref is None:
            return
        if ref not in scenario.nodes:
            add(loc, f"unknown node {ref!r}{_hint(ref, nodes)}")
        elif role and scenario.nodes[ref].role != role:
            actual = scenario.nodes[ref].role
            add(loc, f"{ref!r} is {_a(actual)} node; it must be {_a(role)} node")

    seen_links: set[frozenset[str]] = set()
    for i, link in enumerate(scenario.links):
        for j, end in enumerate(link.between):
            node_ref(("links", i, "between", j), end, None)
        if link.between[0] == link.between[1]:
            add(
                ("links", i, "between"),
                f"a link joins two different nodes, not {link.between[0]!r} to itself",
            )
        pair = frozenset(link.between)
        if pair in seen_links and len(pair) == 2:
            add(("links", i, "between"), f"{' and '.join(link.between)} are already linked")
        seen_links.add(pair)

    dns_nodes = scenario.nodes_of("dns")
    ips: dict[str, str] = {}
    for node_name, node in scenario.nodes.items():
        if node.ip is not None:
            if node.ip in ips:
                add(("nodes", node_name, "ip"), f"{node.ip} is already {ips[node.ip]!r}'s address")
            ips[node.ip] = node_name
        if isinstance(node, SmtpNode):
            node_ref(("nodes", node_name, "relayhost"), node.relayhost, "smtp")
            node_ref(("nodes", node_name, "resolver"), node.resolver, "dns")
            for k, peer in enumerate(node.mynetworks):
                node_ref(("nodes", node_name, "mynetworks", k), peer, None)
            if node.resolver is None and node.relayhost is None and len(dns_nodes) != 1:
                what = "no dns node" if not dns_nodes else f"{len(dns_nodes)} dns nodes"
                add(("nodes", node_name, "resolver"), f"there are {what}; name the resolver")

    hosts: set[str] = set()
    for domain, zone in scenario.dns.zones.items():
        for host, target in zone.a.items():
            hosts.add(host.lower())
            try:
                ipaddress.IPv4Address(target)
            except ValueError:
                if target not in scenario.nodes:
                    add(
                        ("dns", "zones", domain, "a", host),
                        f"{target!r} is neither an IPv4 address nor a node{_hint(target, nodes)}",
                    )
    for domain, zone in scenario.dns.zones.items():
        for k, mx in enumerate(zone.mx):
            if mx.host.lower() not in hosts:
                add(
                    ("dns", "zones", domain, "mx", k, "host"),
                    f"MX host {mx.host!r} has no A record (RFC 5321 §5.1: it must resolve"
                    " to an address)",
                )

    graph = nx.Graph()
    graph.add_nodes_from(scenario.nodes)
    graph.add_edges_from(link.between for link in scenario.links if set(link.between) <= set(nodes))

    def connected(loc: tuple[Any, ...], a: str, b: str | None) -> None:
        if b is not None and a in graph and b in graph and not nx.has_path(graph, a, b):
            add(loc, f"no network path from {a!r} to {b!r}: add a link")

    declared: dict[str, str] = {}  # address → the users key that declares it
    for key in scenario.users:
        try:
            addresses = expand(key)
        except ValueError as exc:
            add(("users", key), str(exc))
            continue
        if not ADDRESS.match(addresses[0]):
            add(("users", key), f"{addresses[0]!r} is not an e-mail address (local-part@domain)")
        for address in addresses:
            if address.lower() in declared:
                add(
                    ("users", key),
                    f"{address!r} is already declared by {declared[address.lower()]!r}",
                )
                break
            declared[address.lower()] = key
    users = list(scenario.accounts)
    for address, user in scenario.users.items():
        loc = ("users", address)
        node_ref((*loc, "client"), user.client, "client")
        node_ref((*loc, "smtp"), user.smtp, "smtp")
        node_ref((*loc, "mailbox"), user.mailbox, "pop")
        connected((*loc, "smtp"), user.client, user.smtp)
        connected((*loc, "mailbox"), user.client, user.mailbox)
    for node_name, node in scenario.nodes.items():
        if isinstance(node, SmtpNode):
            resolver = node.resolver or (dns_nodes[0] if len(dns_nodes) == 1 else None)
            if node.relayhost is None:
                connected(("nodes", node_name, "resolver"), node_name, resolver)
            connected(("nodes", node_name, "relayhost"), node_name, node.relayhost)

    def address_ref(loc: tuple[Any, ...], item: str, sending: bool) -> None:
        """An address, a range or a glob; a range's faults are said once, for its first
        address, with how many more share them."""
        try:
            addresses = resolve(item, users)
        except ValueError as exc:
            add(loc, str(exc))
            return
        faults: dict[str, list[str]] = {}
        for address in addresses:
            if not ADDRESS.match(address):
                fault = "is not an e-mail address (local-part@domain)"
            elif not sending:
                continue
            elif (user := scenario.accounts.get(address)) is None:
                fault = "has no mail client: add it to users"
            elif user.smtp is None:
                where = key_path(("users", declared.get(address.lower(), address), "smtp"))
                fault = f"has no outgoing server: set {where}"
            else:
                continue
            faults.setdefault(fault, []).append(address)
        for fault, which in faults.items():
            more = f" (and {len(which) - 1} more)" if len(which) > 1 else ""
            hint = _hint(which[0], users) if fault.endswith("users") and not more else ""
            add(loc, f"{which[0]!r}{more} {fault}{hint}")

    ids: set[str] = set()
    for i, msg in enumerate(scenario.messages):
        if RANGE.search(msg.sender) or is_glob(msg.sender):
            add(("messages", i, "from"), "a message has one sender; for many, use traffic")
        else:
            address_ref(("messages", i, "from"), msg.sender, sending=True)
        if not msg.to:
            add(("messages", i, "to"), "a message needs at least one recipient")
        for k, rcpt in enumerate(msg.to):
            address_ref(("messages", i, "to", k), rcpt, sending=False)
        if msg.id is not None:
            if msg.id in ids:
                add(("messages", i, "id"), f"message id {msg.id!r} is used twice")
            ids.add(msg.id)
        if msg.at > scenario.duration:
            add(("messages", i, "at"), "is after the end of the run (see `duration`)")
    server_roles = {"down", "crash", "slow", "overload", "hang", "greylist", "tls-fail"}
    for i, fault in enumerate(scenario.faults):
        loc = ("faults", i)
        if fault.kind in server_roles:
            node = getattr(fault, "node")  # noqa: B009
            if node not in scenario.nodes:
                add((*loc, "node"), f"unknown node {node!r}{_hint(node, nodes)}")
            elif scenario.nodes[node].role not in ("smtp", "pop"):
                add(
                    (*loc, "node"),
                    f"{node!r} is {_a(scenario.nodes[node].role)} node; a {fault.kind} fault needs a server (smtp or pop)",
                )
        elif isinstance(fault, ResolverDownFault):
            node_ref((*loc, "node"), fault.node, "dns")
        elif isinstance(fault, LinkDownFault | LossFault | StripStarttlsFault):
            if frozenset(fault.between) not in seen_links:
                add(
                    (*loc, "between"),
                    f"there is no link between {fault.between[0]!r} and {fault.between[1]!r}",
                )
        elif isinstance(fault, DnsFault):
            zones = list(scenario.dns.zones)
            if fault.domain not in scenario.dns.zones:
                add(
                    (*loc, "domain"),
                    f"{fault.domain!r} is not a zone in dns.zones{_hint(fault.domain, zones)}",
                )
        elif isinstance(fault, MailboxFullFault):
            user = scenario.accounts.get(fault.user)
            if user is None or user.mailbox is None:
                add((*loc, "user"), f"{fault.user!r} has no mailbox{_hint(fault.user, users)}")
        window = fault if isinstance(fault, _Window) else None
        if window is not None and window.end is not None and window.end <= window.start:
            add((*loc, "end"), "must be after start")
    names: set[str] = set()
    for i, spy in enumerate(scenario.eavesdroppers):
        if frozenset(spy.between) not in seen_links:
            add(
                ("eavesdroppers", i, "between"),
                f"there is no link between {spy.between[0]!r} and {spy.between[1]!r}",
            )
        if spy.name in names:
            add(("eavesdroppers", i, "name"), f"{spy.name!r} is used twice: name each one")
        names.add(spy.name)
    for i, gen in enumerate(scenario.traffic):
        for k, sender in enumerate(gen.sender):
            address_ref(("traffic", i, "from", k), sender, sending=True)
        for k, rcpt in enumerate(gen.to):
            address_ref(("traffic", i, "to", k), rcpt, sending=False)
        if not gen.to:
            add(("traffic", i, "to"), "traffic needs at least one recipient")
    return problems


def dumps(data: dict[str, Any]) -> str:
    """Scenario data as YAML text, short lists in brackets as people write them (the
    replay of a real message's route writes its scenario this way)."""
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )


def json_schema() -> dict[str, Any]:
    """JSON Schema of a scenario file, for editors (``mailsim schema``)."""
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mailsim scenario"
    return schema
