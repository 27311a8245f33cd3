"""From a real message's route to a scenario that replays it: ``mailsim headers FILE
--scenario OUT.yaml``, then ``mailsim run OUT.yaml``.

The servers of the Received chain become nodes in a line, each hop a link; each server
passes the message to the next one as its relay host (the route is replayed as it was,
not re-decided by MX look-ups), and the last one delivers into a mailbox. A link's
latency is what the hop's delay implies: its seconds spread over the round trips of the
conversation (9.5 for a submission, 8.5 for a relay, 4.5 for LMTP), at least 0.5 ms.
Headers keep whole seconds, so a hop written in the same second as the one before gets
the floor: the replay shows the route's shape, not its exact timing.
"""

from __future__ import annotations

import re
from typing import Any

from mailsim.scenario import dumps
from mailsim.trace import Hop, Route

# Round trips of one conversation until the receiving server holds the message
# (README "How the time is computed"; TLS 1.3, pipelining, a 20 KB message).
ROUND_TRIPS = {"submission": 9.5, "relay": 8.5, "lmtp": 4.5}
FLOOR = 0.0005  # s, one way: a hop written in the same second


def _node(host: str, taken: set[str]) -> str:
    """A node name for a host: its first label ("mx" for mx.home.example), or the whole
    name when that is taken."""
    whole = re.sub(r"[^a-z0-9-]+", "-", host.lower()).strip("-")[:40] or "host"
    first = re.sub(r"[^a-z0-9-]+", "-", host.lower().split(".")[0]).strip("-")
    label = first if "." in host and not _is_ip(host) else whole
    name = label if label and label not in taken else whole
    base, n = name, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _is_ip(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", text))


def _domain(address: str | None, fallback: str) -> tuple[str, str]:
    match = re.search(r"([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)", address or "")
    return (match.group(0).lower(), match.group(2).lower()) if match else fallback.split("@")  # type: ignore[return-value]


def _latency(hop: Hop, kind: str) -> str:
    seconds = max(hop.delay or 0.0, 0.0) / (2 * ROUND_TRIPS[kind])
    return f"{max(seconds, FLOOR) * 1000:.1f}ms"


def scenario_of(route: Route, source: str = "the message") -> str:
    """A scenario (YAML text) that sends one message along ``route``'s servers."""
    hops = [hop for hop in route.hops if not hop.garbled and hop.by]
    if not hops:
        raise ValueError("no hop names the server that received it ('by'): nothing to replay")
    sender, sender_domain = _domain(route.sender, "sender@sender.example")
    last = hops[-1]
    recipient, rcpt_domain = _domain(last.recipient or route.recipient, "reader@reader.example")
    taken: set[str] = set()
    first = hops[0].from_host or hops[0].from_ip or "sender-pc"
    nodes: dict[str, Any] = {}
    client = _node(first, taken)
    nodes[client] = {"role": "client", "host": first if "." in first else None, "pos": [0, 0]}
    chain = [client]
    links: list[dict[str, Any]] = []
    lmtp_last = (last.protocol or "").startswith("LMTP")
    servers = hops[:-1] if lmtp_last and len(hops) > 1 else hops
    for i, hop in enumerate(servers):
        name = _node(hop.by or f"server{i}", taken)
        tls = hop.tls_version or ("1.3" if hop.tls else "none")
        nodes[name] = {"role": "smtp", "host": hop.by, "tls": tls, "pos": [i + 1, 0]}
        kind = "submission" if i == 0 else "relay"
        links.append({"between": [chain[-1], name], "latency": _latency(hop, kind)})
        if i > 0:
            nodes[chain[-1]]["relayhost"] = name
            nodes[name]["mynetworks"] = [chain[-1]]
        chain.append(name)
    mx = chain[-1]
    nodes[chain[1]].setdefault("domains", []).append(sender_domain)
    if rcpt_domain not in nodes[mx].get("domains", []):
        nodes[mx].setdefault("domains", []).append(rcpt_domain)
    if lmtp_last and len(hops) > 1:
        pop = _node(last.by or "mailbox", taken)
        nodes[pop] = {"role": "pop", "host": last.by, "pos": [len(chain), 0]}
        links.append({"between": [mx, pop], "latency": _latency(last, "lmtp")})
    else:
        pop = _node(f"pop.{rcpt_domain}", taken)
        nodes[pop] = {"role": "pop", "host": f"pop.{rcpt_domain}", "pos": [len(chain), 0]}
        links.append({"between": [mx, pop], "latency": "0.2ms"})
    reader = _node("reader-pc", taken)
    nodes[reader] = {"role": "client", "pos": [len(chain), 1]}
    links.append({"between": [pop, reader], "latency": "1ms"})
    dns = _node("dns", taken)
    nodes[dns] = {"role": "dns", "pos": [1, -1]}
    links.append({"between": [chain[1], dns], "latency": "1ms"})
    for node in nodes.values():
        if node.get("host") is None:
            node.pop("host", None)
    hosts = {nodes[n]["host"]: n for n in chain[1:] if nodes[n].get("host")}
    mx_record = [{"preference": 10, "host": nodes[mx]["host"]}]
    zones: dict[str, Any] = {rcpt_domain: {"mx": mx_record, "a": dict(hosts)}}
    if sender_domain != rcpt_domain:
        zones[sender_domain] = {"a": dict(hosts)}
    users = {
        sender: {"client": client, "smtp": chain[1], "password": "secret"},
        recipient: {"client": reader, "smtp": mx, "mailbox": pop, "poll": "5min"},
    }
    if sender == recipient:
        users = {sender: {**users[recipient], "client": client, "smtp": chain[1]}}
    data = {
        "name": "replayed-route",
        "duration": "1h",
        "nodes": nodes,
        "links": links,
        "dns": {"zones": zones},
        "users": users,
        "messages": [
            {
                "id": "m1",
                "at": 0,
                "from": sender,
                "to": recipient,
                "subject": route.subject or "Replayed",
            }
        ],
    }
    comment = (
        f"# The route of {source}, replayed: {len(hops)} hops read from its Received:"
        " headers.\n# Each server hands the message to the next as its relay host; link"
        " latencies are the hops' delays\n# spread over their round trips (whole seconds"
        " in the headers: a floor of 0.5 ms).\n# Run it: mailsim run THIS_FILE\n"
    )
    return comment + dumps(data)
