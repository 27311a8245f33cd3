"""Build a mail world in a few calls or a few clicks, as a short-form scenario.

``Builder`` keeps the short form (:mod:`mailsim.short`) a student is writing: sites and the
latency between them, domains and their servers, users, messages. Every change is a plain
call (``b.add_domain("home.example", site="home", mx=["mx"], mailbox="pop")``), so the
form in a notebook (:meth:`Builder.widget`) and a test do the same thing; after each one
the problems are those ``mailsim validate`` gives, and the network is drawn again.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from mailsim.errors import InputError, Problem
from mailsim.plot import style
from mailsim.scenario import Scenario, dumps, validate

FILE = "<builder>"  # how problems name the world being built
SMALL = 10.5  # points: 14.6 px at 100 dpi, the least any word of a figure gets


class Builder:
    """A short-form scenario under construction."""

    def __init__(self, name: str = "my-world", duration: str = "1h") -> None:
        self.data: dict[str, Any] = {
            "name": name, "duration": duration, "sites": {}, "between": [], "domains": {},
            "users": {}, "messages": [],
        }  # fmt: skip

    # -- building --------------------------------------------------------------------------

    def add_site(self, name: str) -> Builder:
        """A place with a router: a school, a home, a provider's data centre."""
        self.data["sites"].setdefault(name, {"computers": {}})
        return self

    def add_computer(
        self, site: str, name: str, *, host: str | None = None, latency: str | None = None,
        bandwidth: str | None = None,
    ) -> Builder:  # fmt: skip
        """A computer at ``site`` (on its LAN: 2 ms, 100 Mbit/s unless said)."""
        spec = _given(host=host, latency=latency, bandwidth=bandwidth)
        self.add_site(site)
        self.data["sites"][site]["computers"][name] = spec
        return self

    def link_sites(self, a: str, b: str, latency: str, bandwidth: str | None = None) -> Builder:
        """The link between two sites' routers (one-way latency)."""
        link = {"sites": [a, b], "latency": latency, **_given(bandwidth=bandwidth)}
        self.data["between"] = [
            old for old in self.data["between"] if sorted(old["sites"]) != sorted([a, b])
        ] + [link]
        return self

    def add_domain(
        self, name: str, *, site: str, submission: str | dict[str, Any] | None = None,
        mx: list[str | dict[str, Any]] | None = None, mailbox: str | dict[str, Any] | None = None,
        **zone: Any,
    ) -> Builder:  # fmt: skip
        """A mail domain at ``site``: the first label of its submission server, its MX
        hosts (best first), its mailbox server; each may be a mapping with the server's
        settings (``{"host": "mx", "tls": "1.2", "pipelining": False}``); ``zone``: more
        of its DNS zone (``spf=…``, ``dmarc=…``)."""
        spec: dict[str, Any] = {"site": site}
        spec.update(_given(submission=submission, mailbox=mailbox))
        if mx:
            spec["mx"] = list(mx)
        if zone:
            spec["zone"] = zone
        self.data["domains"][name] = spec
        return self

    def add_user(self, address: str, *, client: str, password: str, **settings: Any) -> Builder:
        """A user at ``client`` (a computer); ``settings`` as in a scenario file
        (``poll="5min"``, ``security="tls"``…)."""
        self.data["users"][address] = {"client": client, "password": password, **settings}
        return self

    def add_message(self, sender: str, to: str | list[str], *, at: str = "10s",
                    **fields: Any) -> Builder:  # fmt: skip
        """A message ``at`` a moment of the run (``size="20KB"``, ``subject=…``, ``id=…``)."""
        recipients = [to] if isinstance(to, str) else list(to)
        self.data["messages"].append({"at": at, "from": sender, "to": recipients, **fields})
        return self

    def remove(self, section: str, name: str | int) -> Builder:
        """Take out a site, domain, user (by name) or message (by position)."""
        del self.data[section][name]
        return self

    # -- what it makes ---------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        """What ``mailsim validate`` would say of the world as it stands (none: it runs)."""
        try:
            self.scenario()
        except InputError as exc:
            return list(exc.problems)
        return []

    def scenario(self) -> Scenario:
        """The full scenario the short form stands for; ScenarioError if it has problems."""
        data = copy.deepcopy(self.data)
        if not data["between"]:
            del data["between"]
        return validate(data, FILE)

    def yaml(self) -> str:
        """The short form as a scenario file."""
        data = {k: v for k, v in self.data.items() if v or k in ("sites", "domains")}
        return dumps(data)

    def save(self, path: str | Path) -> Path:
        """Write the short form to ``path`` (``mailsim run PATH`` plays it)."""
        path = Path(path)
        path.write_text(self.yaml())
        return path

    def run(self, seed: int = 0) -> Any:
        """Play the world: a Result (``mailsim.run``)."""
        import mailsim

        return mailsim.run(self.scenario(), seed=seed)

    def draw(self, ax: Axes | None = None) -> Axes:
        """The network as it stands: machines by role, named, links with their latency."""
        if ax is None:
            _, ax = plt.subplots(figsize=(12.8, 7.2), layout="constrained")
        ax.set_axis_off()
        try:
            scenario = self.scenario()
        except InputError as exc:
            ax.text(0.5, 0.5, f"{len(exc.problems)} problem(s) to fix before it can be drawn",
                    ha="center", va="center", fontsize=SMALL + 4, transform=ax.transAxes)  # fmt: skip
            return ax
        pos = {n: (float(node.pos[0]), float(node.pos[1]))  # type: ignore[index]
               for n, node in scenario.nodes.items()}  # fmt: skip
        for link in scenario.links:
            (x0, y0), (x1, y1) = pos[link.between[0]], pos[link.between[1]]
            ax.plot([x0, x1], [y0, y1], color="#999999", lw=1.5, zorder=1)
            if link.latency >= 0.01:
                ax.annotate(f"{link.latency * 1000:g} ms", ((x0 + x1) / 2, (y0 + y1) / 2),
                            xytext=(0, 8), textcoords="offset points", ha="center",
                            fontsize=SMALL, color="#555555")  # fmt: skip
        for name, node in scenario.nodes.items():
            marker, colour, size = style.ROLE[node.role]
            ax.scatter(*pos[name], marker=marker, s=size, color=colour, zorder=3)
            label = name if node.role in ("router", "dns") else f"{name}\n{node.host or ''}"
            ax.annotate(label, pos[name], xytext=(0, -16), textcoords="offset points",
                        ha="center", va="top", fontsize=SMALL)  # fmt: skip
        xs, ys = zip(*pos.values(), strict=True)
        ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
        ax.set_ylim(min(ys) - 0.9, max(ys) + 0.5)
        return ax

    def widget(self) -> Any:
        """The form (ipywidgets): see :mod:`mailsim.builder_form`."""
        from mailsim.builder_form import form

        return form(self)


def _given(**values: Any) -> dict[str, Any]:
    """The values that were given (None: the short form's default)."""
    return {k: v for k, v in values.items() if v is not None}


def png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
