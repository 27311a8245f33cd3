"""Where each node is drawn: positions from the scenario (``pos:``), or one layout
computed with a fixed seed, so that every figure of a run puts each server in the same
place."""

from __future__ import annotations

import networkx as nx

from mailsim.result import Result
from mailsim.scenario import Scenario


def graph(scenario: Scenario) -> nx.Graph:
    g = nx.Graph()
    for name, node in scenario.nodes.items():
        g.add_node(name, role=node.role)
    for link in scenario.links:
        g.add_edge(*link.between, latency=link.latency)
    return g


def positions(result: Result) -> dict[str, tuple[float, float]]:
    scenario = result.scenario
    given = {n: node.pos for n, node in scenario.nodes.items() if node.pos is not None}
    if len(given) == len(scenario.nodes):
        return {n: (float(p[0]), float(p[1])) for n, p in given.items()}  # type: ignore[index]
    layout = nx.spring_layout(graph(scenario), seed=0, pos=given or None, fixed=list(given) or None)
    return {n: (float(x), float(y)) for n, (x, y) in layout.items()}


def domain_of(scenario: Scenario, name: str) -> str | None:
    """The mail domain a node belongs to: the zone its host name is in (whoever runs the
    machine: a provider's servers are the provider's, whichever domains' mail they hold,
    so that its mail and POP3 servers share one box), else the first domain it serves,
    else its users' domain."""
    node = scenario.nodes[name]
    host = (node.host or "").lower()
    for domain in sorted(scenario.dns.zones, key=len, reverse=True):
        if host == domain.lower() or host.endswith("." + domain.lower()):
            return domain.lower()
    served = getattr(node, "domains", None) or getattr(node, "relay_domains", None)
    if served:
        return str(served[0]).lower()
    for address, user in scenario.users.items():
        if name in (user.client, user.mailbox):
            return address.rsplit("@", 1)[-1].lower()
    return None
