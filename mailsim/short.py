"""The short form of a scenario: sites and domains; the machines, links and DNS derived.

A student describes a mail world the way one talks about it — the school and the home,
45 ms apart; school.example has a submission server called mail, home.example an MX and
a mailbox server; alice at the school, bob at home — and :func:`expand` writes the full
scenario the engine runs (the one model it knows), by these rules:

* each site has a router ``r-SITE``; sites are linked router to router as ``between`` says;
* a domain's servers are named by their job and the domain's first label: ``msa-school``
  (submission), ``mx-home`` (the first MX; ``mx2-home``… the others, which relay for the
  domain as backup MXs do), ``pop-home`` (the mailbox server); a domain without an MX
  receives on its submission server, as a small school's one server does;
* servers hang off their site's router (1 ms, 1 Gbps), the mailbox server off its MX
  (0.5 ms: Dovecot beside Postfix); a site's computers off its first submission server
  (one LAN) or, where it has none, off the router (a home network);
* one caching resolver, ``dns``, on the first site's LAN (1 ms);
* each domain's zone: its MX records (preference 10, 20, … in the order given) and an A
  record per server; each user's ``smtp`` is the domain's submission server (else its MX)
  and ``mailbox`` its mailbox server, unless the user names them.

The first site is drawn left of its router, the others right of theirs. Everything else —
``messages``, ``traffic``, ``faults``, ``eavesdroppers``, a user's settings — is written as
in the full form, with the derived names (``mailsim expand FILE`` shows them).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError

from mailsim.errors import Problem, ScenarioError, at_most_shown, key_path
from mailsim.fields import Bandwidth, Duration, HostName, NodeName
from mailsim.model import _Model
from mailsim.problems import problem_of

SHORT = ("sites", "domains", "between")  # keys only the short form has
# Written as in the full form, in its units. A computer's link: classroom's school LAN.
LAN = ("2ms", "100Mbps")
SERVER_LINK = ("1ms", "1Gbps")  # a server in its site's machine room
MAILBOX_LINK = "0.5ms"  # the mailbox server beside its MX
BETWEEN_SITES = "1Gbps"


def is_short(data: Any) -> bool:
    """Is this parsed scenario written in the short form (sites and domains, no nodes)?"""
    return isinstance(data, Mapping) and "nodes" not in data and any(k in data for k in SHORT)


class Computer(_Model):
    """A computer where users run their mail programs."""

    host: HostName | None = Field(
        None, description="its host name, or its first label (default: its name)"
    )
    latency: Duration = Field(0.002, ge=0, description="of its link to the site's network")
    bandwidth: Bandwidth = Field(100e6, gt=0)


class Site(_Model):
    """A place with a router: a school, a home, a provider's data centre."""

    computers: dict[NodeName, Computer] = Field(default_factory=dict)


class Between(_Model):
    """The link between two sites' routers."""

    sites: tuple[str, str]
    latency: Duration = Field(ge=0)
    jitter: Duration = Field(0.0, ge=0)
    bandwidth: Bandwidth = Field(1e9, gt=0)


def _named(value: Any) -> Any:
    return {"host": value} if isinstance(value, str) else value


class Server(_Model):
    """One of a domain's servers: its host's first label, and any setting of its node in
    the full form (``tls``, ``concurrency``, ``processing``…)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    host: str
    preference: int | None = Field(None, ge=0, le=65535, description="MX only")


# A server is its host's first label alone, or that and its node's settings.
ServerSpec = Annotated[Server, BeforeValidator(_named, json_schema_input_type=str | Server)]


class Domain(_Model):
    """A mail domain, its site and its servers."""

    site: str
    submission: ServerSpec | None = Field(None, description="the MSA users send through")
    mx: list[ServerSpec] = Field(default_factory=list, description="best first")
    mailbox: ServerSpec | None = Field(None, description="where its users' mail waits")
    resolver: str | None = Field(None, description="the resolver's first label (first domain)")
    zone: dict[str, Any] = Field(
        default_factory=dict, description="more of its DNS zone: ttl, spf, dkim, dmarc"
    )


class ShortScenario(_Model):
    """The short form's own keys; the rest is the full form's and is checked there."""

    model_config = ConfigDict(extra="allow", frozen=True)
    sites: dict[str, Site]
    between: list[Between] = Field(default_factory=list)
    domains: dict[HostName, Domain]


def expand(data: Mapping[str, Any], name: str = "<scenario>", lines: Any = None) -> dict[str, Any]:
    """The full scenario a short one stands for (as data); ScenarioError names each
    problem by its key in the short file."""
    lines = lines or {}
    try:
        short = ShortScenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [problem_of(err, name, lines, data, ShortScenario) for err in errors[:100]]
        raise ScenarioError(at_most_shown(problems, exc.error_count(), name)) from None
    problems = _references(short, data, name, lines)
    if problems:
        raise ScenarioError(problems)
    return _Expansion(short, data).full()


def where(data: Mapping[str, Any], problem: Problem, lines: Any = None) -> Problem:
    """A problem the full scenario showed, named by its key in the short file: a derived
    server's setting is its domain's ``submission``/``mx``/``mailbox``, a zone's record
    its domain's ``zone``."""
    short = ShortScenario.model_validate(data)
    places: dict[str, tuple[Any, ...]] = {}
    for domain, spec in short.domains.items():
        label = domain.split(".")[0].lower()
        for k in range(len(spec.mx)):
            places[key_path(("nodes", f"mx-{label}" if k == 0 else f"mx{k + 1}-{label}"))] = (
                "domains", domain, "mx", k)  # fmt: skip
        if spec.submission is not None:
            places[key_path(("nodes", f"msa-{label}"))] = ("domains", domain, "submission")
        if spec.mailbox is not None:
            places[key_path(("nodes", f"pop-{label}"))] = ("domains", domain, "mailbox")
        places[key_path(("dns", "zones", domain))] = ("domains", domain, "zone")
    for prefix, loc in places.items():
        if problem.key == prefix or problem.key.startswith((prefix + ".", prefix + "[")):
            key = key_path(loc) + problem.key[len(prefix) :]
            line = (lines or {}).get(loc, problem.line)
            return Problem(problem.file, key, problem.message, line)
    return problem


def _references(
    short: ShortScenario, data: Mapping[str, Any], name: str, lines: Any
) -> list[Problem]:
    """Names that must exist: a domain's site, the sites a link joins, users' computers."""
    problems: list[Problem] = []

    def problem(loc: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(name, key_path(loc), message, lines.get(loc)))

    for key in ("nodes", "links"):  # the short form derives them: one written would be lost
        if key in data:
            problem((key,), "the short form makes the machines and links from sites and"
                    " between: write them there, or write the whole scenario in the full"
                    " form (mailsim expand prints it)")  # fmt: skip
    sites = list(short.sites)
    if not sites:
        problem(("sites",), "add a site: a place with a router (a school, a home)")
    if not short.domains:
        problem(("domains",), "add a domain with its servers (submission, mx, mailbox)")
    for domain, spec in short.domains.items():
        if spec.site not in short.sites:
            problem(("domains", domain, "site"), _no("site", spec.site, sites))
        if spec.submission is None and not spec.mx and spec.mailbox is None:
            problem(("domains", domain), "has no servers: give it submission, mx or mailbox")
        if spec.mailbox is not None and not spec.mx and spec.submission is None:
            problem(("domains", domain), "a mailbox needs an MX (or submission) to receive mail")
    for i, link in enumerate(short.between):
        for end in link.sites:
            if end not in short.sites:
                problem(("between", i, "sites"), _no("site", end, sites))
    joined = {end for link in short.between for end in link.sites}
    if len(sites) > 1:
        for site in sites:
            if site not in joined:
                problem(("sites", site), "is joined to no other site: add it to between")
    computers = {c for site in short.sites.values() for c in site.computers}
    for address, user in _mapping(data.get("users")).items():
        client = user.get("client") if isinstance(user, Mapping) else None
        if client is not None and client not in computers:
            problem(("users", address, "client"), _no("computer", client, computers))
        domain = str(address).rpartition("@")[2].lower()
        known = {d.lower() for d in short.domains}
        if domain not in known and isinstance(user, Mapping) and "smtp" not in user:
            problem(("users", address), f"no domain {domain!r} in domains: name its smtp")
    return problems


def _mapping(value: Any) -> Mapping[Any, Any]:
    """A part of the file that should be a mapping, or none: the full form's checks name
    what else it is (a string, a list) once the scenario is expanded."""
    return value if isinstance(value, Mapping) else {}


def _listed(names: Any) -> str:
    return ", ".join(sorted(names)) or "none"


def _no(what: str, name: str, names: Any) -> str:
    """``no site 'schol'; did you mean 'school'?`` or the names there are."""
    hint = difflib.get_close_matches(name, list(names), n=1)
    if hint:
        return f"no {what} {name!r}; did you mean {hint[0]!r}?"
    return f"no {what} {name!r} ({what}s: {_listed(names)})"


class _Expansion:
    """Writes the full form, machine by machine, in drawing order (left to right)."""

    def __init__(self, short: ShortScenario, data: Mapping[str, Any]) -> None:
        self.short = short
        self.data = data
        self.nodes: dict[str, dict[str, Any]] = {}
        self.links: list[dict[str, Any]] = []
        self.zones: dict[str, dict[str, Any]] = {}
        self.smtp: dict[str, str] = {}  # domain → the node its users send through
        self.mailbox: dict[str, str] = {}  # domain → its mailbox node
        self.x = 0

    def full(self) -> dict[str, Any]:
        short = self.short
        sites = list(short.sites)
        first = next(iter(short.domains))
        resolver = next((d.resolver for d in short.domains.values() if d.resolver), "resolver")
        for i, site in enumerate(sites):
            domains = [d for d, spec in short.domains.items() if spec.site == site]
            servers = [s for d in domains for s in self._servers(d)]
            hub = next((s["node"] for s in servers if s["job"] == "msa"), f"r-{site}")
            computers = list(short.sites[site].computers)
            if i == 0:
                for computer in computers:
                    self._computer(site, computer, hub, (self._next(), 0))
                self._place_servers(servers, site, resolver_host=f"{resolver}.{first}", hub=hub)
                self._node(f"r-{site}", {"role": "router"}, (self._next(), 0))
                for link in self.data.get("between") or []:
                    a, b = link["sites"]
                    self.links.append(_link(f"r-{a}", f"r-{b}", link["latency"],
                                            link.get("bandwidth", BETWEEN_SITES),
                                            link.get("jitter")))  # fmt: skip
            else:
                self._node(f"r-{site}", {"role": "router"}, (self._next(), 0))
                self._place_servers(servers, site)
                x = self.x - 1
                for row, computer in enumerate(computers, start=1):
                    self._computer(site, computer, hub, (x, row))
        out = {k: v for k, v in self.data.items() if k not in SHORT}
        out["nodes"] = self.nodes
        out["links"] = self.links
        written = self.data.get("dns") or {}
        zones = written.get("zones") or {} if isinstance(written, Mapping) else None
        if isinstance(zones, Mapping):  # else left as written, for the full form to name
            out["dns"] = {**written, "zones": {**self.zones, **zones}}
        users = self.data.get("users")
        out["users"] = self._users() if isinstance(users, Mapping) or users is None else users
        placed = {name: i for i, name in enumerate(self.nodes)}
        for link in self.links:  # written left to right, as drawn
            link["between"].sort(key=placed.__getitem__)
        return _ordered(out)

    def _next(self) -> int:
        self.x += 1
        return self.x - 1

    def _node(self, name: str, spec: dict[str, Any], pos: tuple[int, int]) -> None:
        self.nodes[name] = {**spec, "pos": list(pos)}

    def _servers(self, domain: str) -> list[dict[str, Any]]:
        """The domain's machines, their jobs, names and settings; its zone."""
        spec = self.short.domains[domain]
        label = domain.split(".")[0].lower()
        machines: dict[str, dict[str, Any]] = {}  # by host
        zone: dict[str, Any] = {"mx": [], "a": {}}
        mxs = spec.mx or ([spec.submission] if spec.submission else [])
        for k, mx in enumerate(mxs):
            node = f"mx-{label}" if k == 0 else f"mx{k + 1}-{label}"
            if spec.submission is not None and not spec.mx:
                node = f"msa-{label}"  # one server: it sends and receives
            host = f"{mx.host}.{domain}"
            found = machines.setdefault(host, {"node": node, "job": "mx", "role": "smtp",
                                               "settings": {}})  # fmt: skip
            found["settings"].update(mx.model_extra or {})
            found["settings"][("domains" if k == 0 else "relay_domains")] = [domain]
            pref = mx.preference if mx.preference is not None else 10 * (k + 1)
            zone["mx"].append({"preference": pref, "host": host})
        if spec.submission is not None:
            host = f"{spec.submission.host}.{domain}"
            found = machines.setdefault(host, {"node": f"msa-{label}", "job": "msa",
                                               "role": "smtp", "settings": {}})  # fmt: skip
            found["job"] = "msa"
            found["settings"].update(spec.submission.model_extra or {})
            self.smtp[domain.lower()] = found["node"]
        elif machines:
            self.smtp[domain.lower()] = next(iter(machines.values()))["node"]
        if spec.mailbox is not None:
            host = f"{spec.mailbox.host}.{domain}"
            machines[host] = {"node": f"pop-{label}", "job": "pop", "role": "pop",
                              "settings": dict(spec.mailbox.model_extra or {})}  # fmt: skip
            self.mailbox[domain.lower()] = f"pop-{label}"
        for host, machine in machines.items():
            machine["host"] = host
            machine["domain"] = domain
            zone["a"][host] = machine["node"]
        self.zones[domain] = {**zone, **spec.zone}
        return list(machines.values())

    def _place_servers(
        self, servers: list[dict[str, Any]], site: str, resolver_host: str = "", hub: str = ""
    ) -> None:
        """A site's servers as a rack: the mail servers in one column, the hub first,
        the others under it, each mailbox server beside its domain's MX (at the first
        site, whose router is to the right, a row lower: off the MX's link); the
        resolver above the hub."""
        router = f"r-{site}"
        column = self.x
        lower = 1 if resolver_host else 0  # the first site
        row: dict[str, int] = {}  # a mail server's row, for its domain's mailbox server
        for server in sorted(servers, key=lambda s: s["node"] != hub):
            node = {"role": server["role"], "host": server["host"], **server["settings"]}
            if server["job"] == "pop":
                mx = next(s["node"] for s in servers
                          if s["domain"] == server["domain"] and s["job"] != "pop")  # fmt: skip
                place = (column + 1, row[mx] - lower)
                self.links.append(_link(server["node"], mx, MAILBOX_LINK, SERVER_LINK[1]))
            else:
                row[server["node"]] = -len(row)
                place = (column, row[server["node"]])
                self.links.append(_link(server["node"], router, *SERVER_LINK))
            self._node(server["node"], node, place)
            self.x = max(self.x, place[0] + 1)
            if resolver_host and server["node"] == hub:
                self._node("dns", {"role": "dns", "host": resolver_host}, (place[0], 1))
                self.links.insert(len(self.links) - 1, _link(hub, "dns", *SERVER_LINK))
        if resolver_host and "dns" not in self.nodes:
            self._node("dns", {"role": "dns", "host": resolver_host}, (self.x, 1))
            self.links.append(_link(router, "dns", *SERVER_LINK))

    def _computer(self, site: str, name: str, hub: str, pos: tuple[int, int]) -> None:
        spec = self.data["sites"][site]["computers"][name] or {}
        host = spec.get("host") or name
        if "." not in host:
            host = f"{host}.{self._domain_of(name)}"
        self._node(name, {"role": "client", "host": host}, pos)
        self.links.append(_link(name, hub, spec.get("latency", LAN[0]),
                                spec.get("bandwidth", LAN[1])))  # fmt: skip

    def _domain_of(self, computer: str) -> str:
        """The domain of the first user at ``computer`` (for its host name)."""
        for address, user in _mapping(self.data.get("users")).items():
            if isinstance(user, Mapping) and user.get("client") == computer:
                return str(address).rpartition("@")[2]
        return next(iter(self.short.domains))

    def _users(self) -> dict[str, Any]:
        out = {}
        for address, user in _mapping(self.data.get("users")).items():
            if not isinstance(user, Mapping):
                out[address] = user
                continue
            domain = str(address).rpartition("@")[2].lower()
            derived = {}
            if domain in self.smtp:
                derived["smtp"] = self.smtp[domain]
            if domain in self.mailbox:
                derived["mailbox"] = self.mailbox[domain]
            out[address] = {"client": user.get("client"), **derived, **user}
        return out


def _link(a: str, b: str, latency: Any, bandwidth: Any, jitter: Any = None) -> dict[str, Any]:
    link: dict[str, Any] = {"between": [a, b], "latency": latency, "bandwidth": bandwidth}
    if jitter:
        link["jitter"] = jitter
    return link


def _ordered(full: dict[str, Any]) -> dict[str, Any]:
    """The keys in the order the full form is written (name first, messages last)."""
    order = ("name", "description", "start", "duration", "nodes", "links", "dns", "users",
             "messages", "traffic", "faults", "eavesdroppers")  # fmt: skip
    return {k: full[k] for k in order if k in full} | {
        k: v for k, v in full.items() if k not in order
    }
