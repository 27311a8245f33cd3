"""From a real message's route to a scenario that replays it: ``mailsim headers FILE
--scenario OUT.yaml``, then ``mailsim run OUT.yaml``.

The servers of the Received chain become nodes in a line, each hop a link; each server
passes the message to the next one as its relay host (the route is replayed as it was,
not re-decided by MX look-ups), and the last one delivers into a mailbox. A link's
latency is what the hop's delay implies: its seconds spread over the round trips of the
conversation (9.5 for a submission, 8.5 for a relay, 4.5 for LMTP), at least 0.5 ms and
at most 1 s (a hop that took longer waited somewhere, and a link cannot replay a wait).
Headers keep whole seconds, so a hop written in the same second as the one before gets
the floor: the replay shows the route's shape, not its exact timing.

Everything taken from the message reaches the YAML as data, through the YAML writer, and
only in forms a scenario accepts: host names of RFC 1123 (a name in another script in its
IDNA form, ``xn--…``), node names of letters, digits and hyphens, plain ASCII addresses,
subjects without control characters. What had to change to get there is said in the
scenario's ``description``; the comment on top is fixed text.
"""

from __future__ import annotations

import re
from typing import Any

from mailsim.scenario import dumps
from mailsim.trace import Hop, Route, quoted, shown, too_long

# Round trips of one conversation until the receiving server holds the message
# (README "How the time is computed"; TLS 1.3, pipelining, a 20 KB message).
ROUND_TRIPS = {"submission": 9.5, "relay": 8.5, "lmtp": 4.5}
FLOOR = 0.0005  # s, one way: a hop written in the same second
# s, one way: a geostationary satellite is 0.27 s up and down; nothing on a wire is
# slower. A hop that took longer waited (in a queue, for a retry, for a server that was
# down), and a link cannot replay a wait.
CEILING = 1.0
# RFC 5322 §2.1.1: a line is at most 998 characters; "Subject: " takes 9 of them.
SUBJECT_CHARS = 989
NODE_CHARS = 40  # node names stay short enough to read in a table and a figure
# RFC 5321 §4.5.3.1.1: a local part is at most 64 octets. Only the plainest kind is
# kept: "*", "?" and "{1..3}" mean many users in a scenario (mailsim.groups).
_LOCAL_PART = re.compile(r"[a-z0-9+_-]+(?:\.[a-z0-9+_-]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)  # RFC 1123 §2.1
_NOT_IN_ADDRESS = frozenset(" \t<>()[],;:\"'@")
COMMENT = (
    "# A message's route, read from its Received: headers and replayed: {hops} (the\n"
    "# description says from which message). Each server hands the message to the next as\n"
    "# its relay host; link latencies are the hops' delays spread over their round trips\n"
    "# (whole seconds in the headers: a floor of 0.5 ms).\n"
    "# Run it: mailsim run THIS_FILE\n"
)


def refusal(route: Route) -> str | None:
    """Why ``route`` cannot be replayed, or None."""
    why = too_long(route, "replay")
    if why is not None:
        return why
    if not any(hop.by and not hop.garbled for hop in route.hops):
        return "no hop names the server that received it ('by'): nothing to replay"
    return None


def host_name(name: str | None) -> str | None:
    """``name`` as an RFC 1123 host name, a name in another script in its IDNA form
    ("bücher.example" → "xn--bcher-kva.example"); None for what is not one: an address
    literal, "unknown", a name with "_" or "$", a label longer than 63."""
    if not name or len(name) > 253:
        return None
    try:
        ascii_name = name.strip().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return None if labels[-1].isdigit() else ascii_name  # 192.0.2.1 is an address


def _node(host: str, taken: set[str]) -> str:
    """A node name for a host: its first label ("mx" for mx.home.example), or the whole
    name when that is taken; letters, digits and hyphens only."""

    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:NODE_CHARS].strip("-")

    whole = clean(host) or "host"
    first = clean(host.split(".")[0])
    label = first if "." in host and not _is_ip(host) else whole
    name = label if label and label not in taken else whole
    base, n = name, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _is_ip(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", text))


def _address(text: str | None, placeholder: str, role: str, where: str, notes: list[str]) -> str:
    """The first usable address in ``text`` (the ``where`` line: From:, To:, a "for"
    clause) as plain ASCII; ``placeholder`` (local@domain) stands in for the ``role``'s
    address or its local part when there is none, with a note."""
    if not text:
        notes.append(f"The message has no {where}: the {role} is written as {placeholder}.")
        return placeholder
    # Scanned around each "@", so that each character is looked at a bounded number of
    # times; a line of thousands of "@" is not an address list worth reading to the end.
    at, tries = text.find("@"), 100
    while at >= 0 and tries:
        tries -= 1
        left = at
        while left > 0 and text[left - 1] not in _NOT_IN_ADDRESS:
            left -= 1
        right = at + 1
        while right < len(text) and text[right] not in _NOT_IN_ADDRESS:
            right += 1
        local, domain = text[left:at], host_name(text[at + 1 : right])
        if domain is not None and "." in domain:
            domain = domain.lower()
            if len(local) <= 64 and _LOCAL_PART.fullmatch(local.lower()):
                return f"{local.lower()}@{domain}"
            stand_in = f"{placeholder.split('@')[0]}@{domain}"
            kind = "not ASCII" if not local.isascii() else "not a plain one"
            notes.append(
                f"In the {where}, the local part {quoted(local)} is {kind}: the {role} is"
                f" written as {stand_in}."
            )
            return stand_in
        at = text.find("@", right)
    notes.append(
        f"The {where} {quoted(text)} holds no address a scenario can use: the {role} is"
        f" written as {placeholder}."
    )
    return placeholder


def _latency(hop: Hop, kind: str, notes: list[str]) -> str:
    seconds = max(hop.delay or 0.0, 0.0) / (2 * ROUND_TRIPS[kind])
    if seconds > CEILING:
        notes.append(
            f"Hop {hop.index} took {hop.delay:,.0f} s, more than a network can: it waited"
            f" (in a queue, for a retry); its link is given {CEILING * 1000:.0f} ms, the"
            " wait is not replayed."
        )
        seconds = CEILING
    return f"{max(seconds, FLOOR) * 1000:.1f}ms"


def _tls(hop: Hop, notes: list[str]) -> str:
    """The TLS version a server offers in the replay: mailsim models TLS 1.2 and 1.3."""
    if not hop.tls:
        return "none"
    if hop.tls_version in ("1.0", "1.1"):
        notes.append(
            f"Hop {hop.index} was encrypted with TLS {hop.tls_version}. mailsim models TLS"
            " 1.2 and 1.3; a TLS 1.0 or 1.1 handshake takes the same two round trips as"
            " TLS 1.2, so the replay uses TLS 1.2."
        )
        return "1.2"
    return hop.tls_version or "1.3"


def _server_host(hop_host: str | None, node: str, notes: list[str]) -> str:
    host = host_name(hop_host)
    if host is None:
        host = f"{node}.replay.example"
        notes.append(
            f"{quoted(hop_host or '')} is not a host name (letters, digits and hyphens,"
            f" RFC 1123; not an address, not 'unknown'): the server is called {host}."
        )
    return host


def scenario_of(route: Route, source: str = "the message") -> str:
    """A scenario (YAML text) that sends one message along ``route``'s servers.
    ValueError, saying why, for a route that cannot be replayed (see :func:`refusal`)."""
    why = refusal(route)
    if why is not None:
        raise ValueError(why)
    hops = [hop for hop in route.hops if not hop.garbled and hop.by]
    notes: list[str] = []
    sender = _address(route.sender, "sender@sender.example", "sender", "From: line", notes)
    last = hops[-1]
    # The last hop's "for" names the mailbox the copy went to; else the To: line.
    to_for = bool(last.recipient and "@" in last.recipient)
    where = "last hop's 'for' clause" if to_for else "To: line"
    to = last.recipient if to_for else route.recipient
    recipient = _address(to, "reader@reader.example", "recipient", where, notes)
    sender_domain, rcpt_domain = sender.split("@")[1], recipient.split("@")[1]
    taken: set[str] = set()
    first = hops[0].from_host or hops[0].from_ip or "sender-pc"
    nodes: dict[str, Any] = {}
    client = _node(host_name(first) or first, taken)
    client_host = host_name(first) if "." in first else None
    nodes[client] = {"role": "client", "host": client_host, "pos": [0, 0]}
    chain = [client]
    links: list[dict[str, Any]] = []
    lmtp_last = (last.protocol or "").startswith("LMTP")
    servers = hops[:-1] if lmtp_last and len(hops) > 1 else hops
    for i, hop in enumerate(servers):
        name = _node(host_name(hop.by) or hop.by or f"server{i}", taken)
        host = _server_host(hop.by, name, notes)
        nodes[name] = {"role": "smtp", "host": host, "tls": _tls(hop, notes), "pos": [i + 1, 0]}
        kind = "submission" if i == 0 else "relay"
        links.append({"between": [chain[-1], name], "latency": _latency(hop, kind, notes)})
        if i > 0:
            nodes[chain[-1]]["relayhost"] = name
            nodes[name]["mynetworks"] = [chain[-1]]
        chain.append(name)
    mx = chain[-1]
    nodes[chain[1]].setdefault("domains", []).append(sender_domain)
    if rcpt_domain not in nodes[mx].get("domains", []):
        nodes[mx].setdefault("domains", []).append(rcpt_domain)
    if lmtp_last and len(hops) > 1:
        pop = _node(host_name(last.by) or last.by or "mailbox", taken)
        nodes[pop] = {"role": "pop", "host": _server_host(last.by, pop, notes),
                      "pos": [len(chain), 0]}  # fmt: skip
        links.append({"between": [mx, pop], "latency": _latency(last, "lmtp", notes)})
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
    hosts = {nodes[n]["host"]: n for n in chain[1:]}
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
    subject = shown(route.subject or "Replayed")
    if len(subject) > SUBJECT_CHARS:
        notes.append(f"The subject is cut to {SUBJECT_CHARS} characters, the most one line"
                     " of a header holds (RFC 5322 §2.1.1).")  # fmt: skip
        subject = subject[: SUBJECT_CHARS - 1] + "…"
    count = f"{len(hops)} hop" + ("s" if len(hops) != 1 else "")
    about = f"The route of {shown(source)}, replayed: {count} read from its Received: headers."
    data = {
        "name": "replayed-route",
        "description": "\n".join([about, *notes]),
        "duration": "1h",
        "nodes": nodes,
        "links": links,
        "dns": {"zones": zones},
        "users": users,
        "messages": [{"id": "m1", "at": 0, "from": sender, "to": recipient, "subject": subject}],
    }
    return COMMENT.format(hops=count) + dumps(data)
