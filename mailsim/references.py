"""Checks across a scenario's fields, which one field's validation cannot make: names
that must exist, roles that must match, addresses that must have a mail program, nodes
that must be connected, clocks that must read a date a mail header can carry.

Every check is linear in the scenario: the network's connected parts are found once,
each ``from``/``to`` entry is resolved once however often it is named, and "did you
mean …" looks among at most :data:`HINT_CANDIDATES` names.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Mapping
from typing import Any

from mailsim.errors import MAX_PROBLEMS, Problem, at_most_shown, key_path, shown
from mailsim.fields import EARLIEST_HEADER_DATE, clock
from mailsim.groups import RANGE, count, expand, is_glob, resolve
from mailsim.model import (
    DnsFault,
    LinkDownFault,
    LossFault,
    MailboxFullFault,
    ResolverDownFault,
    Scenario,
    SmtpNode,
    StripStarttlsFault,
    User,
    Window,
)
from mailsim.names import address_error
from mailsim.problems import line_of

# "Did you mean …" compares a misspelt name with every candidate (difflib, a few µs
# each): among a class's tens of names it finds the one meant, among 100,000 users it
# would cost seconds per problem and find a neighbour by chance.
HINT_CANDIDATES = 1000
# Addresses that the from and to lists make the checks visit, each distinct entry once
# (a range's addresses, the users a glob is matched against): a lesson names its groups
# a few times (the busy office: 500 staff in three lists); a million is ten times all
# the users a scenario may declare, and takes a second to check.
MAX_NAMED = 1_000_000
_SERVER_FAULTS = {"down", "crash", "slow", "overload", "hang", "greylist", "tls-fail"}


def check_references(
    scenario: Scenario,
    name: str = "<scenario>",
    lines: Mapping[tuple[Any, ...], int] | None = None,
) -> list[Problem]:
    """Cross-checks that one field's validation cannot make: names that must exist, roles
    that must match, addresses that must have a mail program."""
    check = _Checks(scenario, name, {} if lines is None else lines)
    check.links()
    check.nodes()
    check.zones()
    check.clocks()
    check.users()
    check.paths()
    check.messages()
    check.faults()
    check.eavesdroppers()
    check.traffic()
    return at_most_shown(check.problems, len(check.problems) + check.more, name)


def _a(role: str) -> str:
    return ("an " if role in ("smtp",) else "a ") + role


def _parts(nodes: list[str], links: list[tuple[str, str]]) -> dict[str, str]:
    """Each node's connected part of the network, named by one of its nodes
    (union-find with path halving: linear in nodes and links)."""
    parent = {node: node for node in nodes}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in links:
        if a in parent and b in parent:
            parent[root(a)] = root(b)
    return {node: root(node) for node in nodes}


class _Checks:
    """One pass over a scenario, collecting its problems in file order by section."""

    def __init__(self, scenario: Scenario, name: str, lines: Mapping[tuple[Any, ...], int]):
        self.scenario = scenario
        self.name = name
        self.lines = lines
        self.problems: list[Problem] = []
        self.more = 0  # problems past MAX_PROBLEMS, only counted
        self.node_names = list(scenario.nodes)
        self.links_seen: set[frozenset[str]] = set()
        self.dns_nodes = scenario.nodes_of("dns")
        self.declared: dict[str, str] = {}  # address in lower case → the users key
        self.owners: dict[str, User] = {}  # address → its user (accounts, without copies)
        self.resolved: dict[tuple[str, bool], list[tuple[tuple[Any, ...] | None, str]]] = {}
        self.named = 0
        self._users: list[str] | None = None  # the declared addresses, once users() ran
        self._lowered: list[str] | None = None

    def add(self, loc: tuple[Any, ...], message: str) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.more += 1
            return
        self.problems.append(Problem(self.name, key_path(loc), message, line_of(self.lines, loc)))

    def hint(self, name: str, candidates: list[str]) -> str:
        if len(candidates) > HINT_CANDIDATES or len(self.problems) >= MAX_PROBLEMS:
            return ""
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        return f"; did you mean {close[0]!r}?" if close else ""

    def node_ref(self, loc: tuple[Any, ...], ref: str | None, role: str | None) -> None:
        if ref is None:
            return
        nodes = self.scenario.nodes
        if ref not in nodes:
            self.add(loc, f"unknown node {shown(ref)}{self.hint(ref, self.node_names)}")
        elif role and nodes[ref].role != role:
            self.add(loc, f"{ref!r} is {_a(nodes[ref].role)} node; it must be {_a(role)} node")

    # -- the network ---------------------------------------------------------------------

    def links(self) -> None:
        for i, link in enumerate(self.scenario.links):
            for j, end in enumerate(link.between):
                self.node_ref(("links", i, "between", j), end, None)
            if link.between[0] == link.between[1]:
                self.add(
                    ("links", i, "between"),
                    f"a link joins two different nodes, not {shown(link.between[0])} to itself",
                )
            pair = frozenset(link.between)
            if pair in self.links_seen and len(pair) == 2:
                self.add(
                    ("links", i, "between"), f"{' and '.join(link.between)} are already linked"
                )
            self.links_seen.add(pair)

    def nodes(self) -> None:
        ips: dict[str, str] = {}
        dns_nodes = self.dns_nodes
        for node_name, node in self.scenario.nodes.items():
            loc = ("nodes", node_name)
            if node.ip is not None:
                if node.ip in ips:
                    self.add((*loc, "ip"), f"{node.ip} is already {ips[node.ip]!r}'s address")
                ips[node.ip] = node_name
            if isinstance(node, SmtpNode):
                self.node_ref((*loc, "relayhost"), node.relayhost, "smtp")
                self.node_ref((*loc, "resolver"), node.resolver, "dns")
                for k, peer in enumerate(node.mynetworks):
                    self.node_ref((*loc, "mynetworks", k), peer, None)
                if node.resolver is None and node.relayhost is None and len(dns_nodes) != 1:
                    what = (
                        "there is no dns node: add one, or"
                        if not dns_nodes
                        else f"there are {len(dns_nodes)} dns nodes:"
                    )
                    self.add((*loc, "resolver"), f"{what} name the resolver")

    def zones(self) -> None:
        hosts: set[str] = set()
        zones = self.scenario.dns.zones
        for domain, zone in zones.items():
            for host, target in zone.a.items():
                hosts.add(host.lower())
                try:
                    ipaddress.IPv4Address(target)
                except ValueError:
                    if target not in self.scenario.nodes:
                        self.add(
                            ("dns", "zones", domain, "a", host),
                            f"{shown(target)} is neither an IPv4 address nor a node"
                            f"{self.hint(target, self.node_names)}",
                        )
        for domain, zone in zones.items():
            for k, mx in enumerate(zone.mx):
                if mx.host.lower() not in hosts:
                    self.add(
                        ("dns", "zones", domain, "mx", k, "host"),
                        f"MX host {mx.host!r} has no A record (RFC 5321 §5.1: it must"
                        " resolve to an address)",
                    )

    def clocks(self) -> None:
        """Every machine's clock reads a date a mail header can carry (RFC 5322 §3.3:
        1900 or later) from the start of the run; the latest date is bounded by the
        start's year, the duration and the skew's bound."""
        for node_name, node in self.scenario.nodes.items():
            if node.clock_skew >= 0:
                continue
            moment = clock(self.scenario.start, node.clock_skew)
            if moment < EARLIEST_HEADER_DATE:
                self.add(
                    ("nodes", node_name, "clock_skew"),
                    f"puts this machine's clock at {moment:%Y-%m-%d} when the run starts;"
                    " the date in a mail header is 1900 or later (RFC 5322 §3.3)",
                )

    # -- users and who can reach what ------------------------------------------------------

    def users(self) -> None:
        declared = self.declared
        for key, user in self.scenario.users.items():
            loc = ("users", key)
            try:
                addresses = expand(key)
            except ValueError as exc:
                self.add(loc, str(exc))
                continue
            # A range only puts digits into its pattern: its first and last addresses
            # are as valid as all the others.
            for address in dict.fromkeys((addresses[0], addresses[-1])):
                why = address_error(address)
                if why is not None:
                    self.add(loc, f"{shown(address)} {why}")
                    break
            for address in addresses:
                lower = address.lower()
                if lower in declared:
                    self.add(loc, f"{address!r} is already declared by {declared[lower]!r}")
                    break
                declared[lower] = key
            for address in addresses:
                self.owners[address] = user
            self.node_ref((*loc, "client"), user.client, "client")
            self.node_ref((*loc, "smtp"), user.smtp, "smtp")
            self.node_ref((*loc, "mailbox"), user.mailbox, "pop")
            if user.program == "browser":
                self._browser(loc, user)
            elif user.retrieval == "webmail":
                self.add((*loc, "retrieval"), "webmail is read in a browser: set program:"
                         " browser, or read with pop3, imap or imap-idle")  # fmt: skip

    def _browser(self, loc: tuple[Any, ...], user: Any) -> None:
        """A browser speaks only HTTPS: it sends through the webmail front end on its
        smtp node and reads through the one beside its mailbox server."""
        if user.smtp is None:
            self.add((*loc, "smtp"), "a browser sends through the webmail front end on its"
                     " provider's server: set smtp to that node")  # fmt: skip
        if user.retrieval != "webmail":
            self.add((*loc, "retrieval"), f"a browser reads no {user.retrieval}: it reads"
                     " in the webmail (retrieval: webmail)")  # fmt: skip
        if user.spam_bot:
            self.add((*loc, "spam_bot"), "a spam bot speaks SMTP on port 25, not a browser")

    def paths(self) -> None:
        scenario = self.scenario
        part = _parts(self.node_names, [link.between for link in scenario.links])

        def connected(loc: tuple[Any, ...], a: str, b: str | None) -> None:
            if b is not None and a in part and b in part and part[a] != part[b]:
                self.add(loc, f"no network path from {a!r} to {b!r}: add a link")

        for key, user in scenario.users.items():
            connected(("users", key, "smtp"), user.client, user.smtp)
            connected(("users", key, "mailbox"), user.client, user.mailbox)
        only_dns = self.dns_nodes[0] if len(self.dns_nodes) == 1 else None
        for node_name, node in scenario.nodes.items():
            if isinstance(node, SmtpNode):
                if node.relayhost is None:
                    connected(
                        ("nodes", node_name, "resolver"), node_name, node.resolver or only_dns
                    )
                connected(("nodes", node_name, "relayhost"), node_name, node.relayhost)

    def address(self, loc: tuple[Any, ...], item: str, sending: bool) -> None:
        """An address, a range or a glob of a from/to list. Each distinct entry is
        checked once; a range's faults are said once, for its first address, with how
        many more share them."""
        key = (item, sending)
        if key not in self.resolved:
            self.resolved[key] = self._faults(item, sending)
        for where, message in self.resolved[key]:
            self.add(where or loc, message)

    def _faults(self, item: str, sending: bool) -> list[tuple[tuple[Any, ...] | None, str]]:
        if self._users is None:
            self._users = list(self.owners)
        users = self._users
        try:
            cost = len(users) if is_glob(item) else count(item)
        except ValueError as exc:
            return [(None, str(exc))]
        self.named += cost
        if self.named > MAX_NAMED:
            if self.named - cost > MAX_NAMED:
                return []  # said once, at the entry that passed the bound
            return [
                (
                    None,
                    f"the from and to lists name more than {MAX_NAMED:,} addresses to check"
                    " (each range and glob counted once); name groups with fewer ranges",
                )
            ]
        if is_glob(item) and self._lowered is None:
            self._lowered = [user.lower() for user in users]
        try:
            addresses = resolve(item, users, self._lowered)
        except ValueError as exc:
            return [(None, str(exc))]
        if not is_glob(item):  # a glob finds declared users, whose addresses were checked
            # A range only puts digits into its pattern: its first and last addresses
            # are as valid as all the others.
            for address in dict.fromkeys((addresses[0], addresses[-1])):
                why = address_error(address)
                if why is not None:
                    more = f" (and {len(addresses) - 1:,} more)" if len(addresses) > 1 else ""
                    return [(None, f"{shown(addresses[0])}{more} {why}")]
        if not sending:
            return []
        faults: dict[str, list[str]] = {}
        owners = self.owners
        for address in addresses:
            user = owners.get(address)
            if user is not None and user.smtp is not None:
                continue
            if user is None:
                fault = "has no mail client: add it to users"
            else:
                where = key_path(("users", self.declared.get(address.lower(), address), "smtp"))
                fault = f"has no outgoing server: set {where}"
            faults.setdefault(fault, []).append(address)
        out: list[tuple[tuple[Any, ...] | None, str]] = []
        for fault, which in faults.items():
            more = f" (and {len(which) - 1:,} more)" if len(which) > 1 else ""
            hint = self.hint(which[0], users) if fault.endswith("users") and not more else ""
            out.append((None, f"{shown(which[0])}{more} {fault}{hint}"))
        return out

    # -- what happens in the run -----------------------------------------------------------

    def messages(self) -> None:
        ids: set[str] = set()
        duration = self.scenario.duration
        for i, msg in enumerate(self.scenario.messages):
            loc = ("messages", i)
            if RANGE.search(msg.sender) or is_glob(msg.sender):
                self.add((*loc, "from"), "a message has one sender; for many, use traffic")
            else:
                self.address((*loc, "from"), msg.sender, sending=True)
            if not msg.to:
                self.add((*loc, "to"), "a message needs at least one recipient")
            for k, rcpt in enumerate(msg.to):
                self.address((*loc, "to", k), rcpt, sending=False)
            if msg.id is not None:
                if msg.id in ids:
                    self.add((*loc, "id"), f"message id {msg.id!r} is used twice")
                ids.add(msg.id)
            if msg.at > duration:
                self.add((*loc, "at"), "is after the end of the run (see `duration`)")

    def faults(self) -> None:
        scenario = self.scenario
        for i, fault in enumerate(scenario.faults):
            loc = ("faults", i)
            if fault.kind in _SERVER_FAULTS:
                node = getattr(fault, "node")  # noqa: B009
                if node not in scenario.nodes:
                    self.add(
                        (*loc, "node"),
                        f"unknown node {shown(node)}{self.hint(node, self.node_names)}",
                    )
                elif scenario.nodes[node].role not in ("smtp", "pop"):
                    self.add(
                        (*loc, "node"),
                        f"{node!r} is {_a(scenario.nodes[node].role)} node; a {fault.kind}"
                        " fault needs a server (smtp or pop)",
                    )
            elif isinstance(fault, ResolverDownFault):
                self.node_ref((*loc, "node"), fault.node, "dns")
            elif isinstance(fault, LinkDownFault | LossFault | StripStarttlsFault):
                if frozenset(fault.between) not in self.links_seen:
                    a, b = fault.between
                    self.add(
                        (*loc, "between"),
                        f"there is no link between {shown(a)} and {shown(b)}",
                    )
            elif isinstance(fault, DnsFault):
                if fault.domain not in scenario.dns.zones:
                    zones = list(scenario.dns.zones)
                    self.add(
                        (*loc, "domain"),
                        f"{shown(fault.domain)} is not a zone in dns.zones"
                        f"{self.hint(fault.domain, zones)}",
                    )
            elif isinstance(fault, MailboxFullFault):
                user = self.owners.get(fault.user)
                if user is None or user.mailbox is None:
                    hint = self.hint(fault.user, list(self.owners))
                    self.add((*loc, "user"), f"{shown(fault.user)} has no mailbox{hint}")
            window = fault if isinstance(fault, Window) else None
            if window is not None and window.end is not None and window.end <= window.start:
                self.add((*loc, "end"), "must be after start")

    def eavesdroppers(self) -> None:
        names: set[str] = set()
        for i, spy in enumerate(self.scenario.eavesdroppers):
            loc = ("eavesdroppers", i)
            if frozenset(spy.between) not in self.links_seen:
                a, b = spy.between
                self.add((*loc, "between"), f"there is no link between {shown(a)} and {shown(b)}")
            if spy.name in names:
                self.add((*loc, "name"), f"{spy.name!r} is used twice: name each one")
            names.add(spy.name)

    def traffic(self) -> None:
        for i, gen in enumerate(self.scenario.traffic):
            loc = ("traffic", i)
            for k, sender in enumerate(gen.sender):
                self.address((*loc, "from", k), sender, sending=True)
            for k, rcpt in enumerate(gen.to):
                self.address((*loc, "to", k), rcpt, sending=False)
            if not gen.to:
                self.add((*loc, "to"), "traffic needs at least one recipient")
