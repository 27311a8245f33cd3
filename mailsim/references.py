"""Checks across a scenario's fields, which one field's validation cannot make: names
that must exist, roles that must match, addresses that must have a mail program, nodes
that must be connected."""

from __future__ import annotations

import difflib
import ipaddress
from typing import Any

import networkx as nx

from mailsim.errors import Problem, key_path
from mailsim.groups import RANGE, expand, is_glob, resolve
from mailsim.model import (
    ADDRESS,
    DnsFault,
    LinkDownFault,
    LossFault,
    MailboxFullFault,
    ResolverDownFault,
    Scenario,
    SmtpNode,
    StripStarttlsFault,
    Window,
)
from mailsim.problems import line_of


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
        problems.append(Problem(name, key_path(loc), message, line_of(lines, loc)))

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
        window = fault if isinstance(fault, Window) else None
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
