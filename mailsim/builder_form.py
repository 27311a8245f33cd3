"""The builder's form in a notebook (ipywidgets): one row per kind of thing to add, the
network drawn again after each, the problems as they are made, Run and Save.

Each button calls one :class:`mailsim.builder.Builder` method, so what the form does is
what a test does in Python.
"""

from __future__ import annotations

import html
from typing import Any

import matplotlib.pyplot as plt

from mailsim.builder import Builder, png
from mailsim.errors import InputError

TLS = ("1.3", "1.2", "none")
AUTH = ("required", "optional", "none")
SECURITY = ("auto", "starttls", "tls", "none")
# How the user reads: the retrieval of a mail program, or webmail: a browser, which also
# sends through the webmail (program: browser).
RETRIEVAL = ("pop3", "imap", "imap-idle", "webmail")


def form(builder: Builder) -> Any:
    """The form, bound to ``builder``."""
    try:
        import ipywidgets as w
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the builder's form needs ipywidgets, in mailsim's notebooks extra: pip install"
            " 'mailsim[notebooks]'; without them, Builder's methods do the same in Python",
            name="ipywidgets",
        ) from None

    whole = {"description_width": "initial"}  # labels in full, not cut to "per comm…"

    def text(label: str, value: str = "", placeholder: str = "", width: str = "220px") -> Any:
        return w.Text(value=value, placeholder=placeholder, description=label, style=whole,
                      layout=w.Layout(width=width))  # fmt: skip

    def button(label: str) -> Any:
        return w.Button(description=label, layout=w.Layout(width="auto"))

    site = text("site", placeholder="school")
    add_site = button("Add site")
    pc_site = w.Dropdown(description="at site", style=whole, layout=w.Layout(width="220px"))
    pc_name = text("computer", placeholder="alice-pc")
    pc_latency = text("latency", placeholder="2ms", width="160px")
    pc_bandwidth = text("bandwidth", placeholder="100Mbps", width="180px")
    add_pc = button("Add computer")
    site_a = w.Dropdown(description="between", style=whole, layout=w.Layout(width="220px"))
    site_b = w.Dropdown(description="and", style=whole, layout=w.Layout(width="220px"))
    far = text("one way", placeholder="45ms", width="160px")
    add_link = button("Link sites")
    domain = text("domain", placeholder="school.example")
    domain_site = w.Dropdown(description="site", style=whole, layout=w.Layout(width="220px"))
    submission = text("submission", placeholder="mail", width="200px")
    mx = text("MX hosts", placeholder="mx, backup", width="200px")
    mailbox = text("mailbox", placeholder="pop", width="200px")
    tls = w.Dropdown(options=TLS, description="TLS", style=whole, layout=w.Layout(width="160px"))
    auth = w.Dropdown(options=AUTH, description="AUTH", style=whole, layout=w.Layout(width="200px"))
    pipelining = w.Checkbox(value=True, description="pipelining", indent=False)
    work = text("per command", placeholder="0.5ms", width="200px")
    add_domain = button("Add domain")
    address = text("user", placeholder="alice@school.example", width="280px")
    user_pc = w.Dropdown(description="computer", style=whole, layout=w.Layout(width="220px"))
    password = text("password", placeholder="wonderland")
    poll = text("checks every", placeholder="5min", width="200px")
    security = w.Dropdown(options=SECURITY, description="security", style=whole,
                          layout=w.Layout(width="200px"))  # fmt: skip
    reads = w.Dropdown(options=RETRIEVAL, description="reads with", style=whole,
                       layout=w.Layout(width="200px"))  # fmt: skip
    add_user = button("Add user")
    sender = w.Dropdown(description="from", style=whole, layout=w.Layout(width="280px"))
    recipient = w.Dropdown(description="to", style=whole, layout=w.Layout(width="280px"))
    at = text("at", value="10s", width="140px")
    size = text("size", placeholder="20KB", width="160px")
    add_message = button("Add message")
    picture = w.Image(format="png", layout=w.Layout(width="100%", height="auto"))
    problems = w.HTML()
    run = button("Run ▶")
    file_name = text("file", value=f"{builder.data['name']}.yaml", width="260px")
    save = button("Save")
    said = w.HTML()
    journey = w.Output()

    def refresh() -> None:
        sites = list(builder.data["sites"])
        computers = [c for s in builder.data["sites"].values() for c in s["computers"]]
        users = list(builder.data["users"])
        for dropdown, options in ((pc_site, sites), (site_a, sites), (site_b, sites),
                                  (domain_site, sites), (user_pc, computers),
                                  (sender, users), (recipient, users)):  # fmt: skip
            chosen = dropdown.value
            dropdown.options = options
            # what was chosen stays chosen; else the newest, what one adds things to
            dropdown.value = chosen if chosen in options else (options[-1] if options else None)
        found = builder.problems()
        items = "".join(f"<li>{html.escape(f'{p.key}: {p.message}')}</li>" for p in found)
        problems.value = (
            f"<b>Problems</b><ul>{items}</ul>" if found else "<b>No problems: press Run</b>"
        )
        fig = plt.figure(figsize=(12.8, 7.2), layout="constrained")
        builder.draw(fig.add_subplot())
        picture.value = png(fig)
        plt.close(fig)

    def act(change: Any) -> Any:
        """A button's action, then the form redrawn; a value the form cannot take is said."""

        def clicked(_: Any) -> None:
            try:
                change()
                said.value = ""
            except (InputError, ValueError, KeyError) as exc:
                said.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
            refresh()

        return clicked

    def settings(host: str, smtp: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"host": host.strip(), "tls": tls.value}
        if smtp:
            out.update(auth=auth.value, pipelining=pipelining.value)
        if work.value.strip():
            out["processing"] = {"command": work.value.strip()}
        return out

    def new_domain() -> None:
        hosts = [h for h in mx.value.replace(",", " ").split() if h]
        builder.add_domain(
            domain.value.strip(), site=domain_site.value,
            submission=settings(submission.value, True) if submission.value.strip() else None,
            mx=[settings(h, True) for h in hosts] or None,
            mailbox=settings(mailbox.value, False) if mailbox.value.strip() else None,
        )  # fmt: skip

    def new_user() -> None:
        extra = {"security": security.value} if security.value != "auto" else {}
        if reads.value == "webmail":
            extra["program"] = "browser"
        elif reads.value != "pop3":
            extra["retrieval"] = reads.value
        if poll.value.strip():
            extra["poll"] = poll.value.strip()
        builder.add_user(address.value.strip(), client=user_pc.value,
                         password=password.value, **extra)  # fmt: skip

    def new_message() -> None:
        extra = {"size": size.value.strip()} if size.value.strip() else {}
        builder.add_message(sender.value, recipient.value, at=at.value.strip(), **extra)

    def played(_: Any) -> None:
        from mailsim.widgets import StepViewer

        journey.clear_output()
        with journey:
            try:
                result = builder.run()
            except InputError as exc:
                said.value = html.escape("; ".join(str(p) for p in exc.problems))
                return
            from IPython.display import display

            display(StepViewer(result).widget())

    def saved(_: Any) -> None:
        path = builder.save(file_name.value.strip())
        said.value = f"saved {html.escape(str(path))}: mailsim run {html.escape(str(path))}"

    add_site.on_click(act(lambda: builder.add_site(site.value.strip())))
    add_pc.on_click(act(lambda: builder.add_computer(
        pc_site.value, pc_name.value.strip(), latency=pc_latency.value.strip() or None,
        bandwidth=pc_bandwidth.value.strip() or None)))  # fmt: skip
    add_link.on_click(act(lambda: builder.link_sites(site_a.value, site_b.value,
                                                     far.value.strip())))  # fmt: skip
    add_domain.on_click(act(new_domain))
    add_user.on_click(act(new_user))
    add_message.on_click(act(new_message))
    run.on_click(played)
    save.on_click(saved)
    refresh()
    row = w.HBox
    return w.VBox([
        row([site, add_site]),
        row([pc_site, pc_name, pc_latency, pc_bandwidth, add_pc]),
        row([site_a, site_b, far, add_link]),
        row([domain, domain_site, submission, mx, mailbox]),
        row([tls, auth, pipelining, work, add_domain]),
        row([address, user_pc, password]),
        row([reads, poll, security, add_user]),
        row([sender, recipient, at, size, add_message]),
        picture, problems, said,
        row([run, file_name, save]),
        journey,
    ])  # fmt: skip
