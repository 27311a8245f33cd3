"""The builder (mailsim.builder): classroom built call by call, and by its form's
buttons, equals classroom.yaml; the problems are validate's, as they are made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

import mailsim
from mailsim.builder import Builder
from mailsim.cli import main
from tests.conftest import SCENARIOS

CLASSROOM = mailsim.load(SCENARIOS / "classroom.yaml")


def _problems(b: Builder) -> list[str]:
    return [f"{p.key}: {p.message}" for p in b.problems()]


def test_classroom_built_call_by_call_is_classroom():
    b = mailsim.Builder("classroom")
    assert _problems(b) == [
        "sites: add a site: a place with a router (a school, a home)",
        "domains: add a domain with its servers (submission, mx, mailbox)",
    ]
    b.add_site("school").add_computer("school", "alice-pc")
    b.add_computer("home", "bob-pc", host="bob-laptop", latency="5ms", bandwidth="50Mbps")
    b.add_domain("school.example", site="school", submission="mail")
    assert _problems(b) == [
        "sites.school: is joined to no other site: add it to between",
        "sites.home: is joined to no other site: add it to between",
    ]
    b.link_sites("school", "home", latency="45ms")
    b.add_domain("home.example", site="home", mx=["mx"], mailbox="pop")
    b.add_user("alice@school.example", client="alice-pc", password="wonderland")
    b.add_user("bob@home.example", client="bob-pc", password="builder", poll="5min")
    b.add_message("alice@school.example", "bob@home.example", at="10s", id="m1", size="20KB",
                  subject="Homework for Monday")  # fmt: skip
    assert b.problems() == []
    built = b.scenario()
    assert built == CLASSROOM
    assert list(built.nodes) == list(CLASSROOM.nodes)
    assert mailsim.loads(b.yaml()) == CLASSROOM  # what Save writes reads back the same


def test_a_bad_value_is_a_problem_named_by_its_key():
    b = Builder()
    b.add_site("a").add_computer("a", "pc", latency="soon")
    b.add_domain("a.example", site="a", submission={"host": "mail", "tls": "1.1"})
    assert _problems(b) == [
        "sites.a.computers.pc.latency: 'soon' is not a duration; write it like \"20ms\","
        ' "5min" or "2h"',
    ]
    b.add_computer("a", "pc", latency="1ms")  # the servers' settings are checked next
    assert _problems(b) == [
        "domains[\"a.example\"].submission.tls: Input should be '1.3', '1.2' or 'none' (got '1.1')",
    ]


def test_saved_worlds_run_from_the_command_line(tmp_path: Path, capsys: Any):
    b = Builder("two-rooms")
    b.add_computer("office", "pcs").add_domain(
        "office.example", site="office", submission="mail", mailbox="pop"
    )
    b.add_user("ann@office.example", client="pcs", password="a", poll="1min")
    b.add_user("ben@office.example", client="pcs", password="b", poll="1min")
    b.add_message("ann@office.example", "ben@office.example", at="5s")
    path = b.save(tmp_path / "two-rooms.yaml")
    assert main(["run", str(path), "--quiet"]) == 0
    assert "ann@office.example → ben@office.example" in capsys.readouterr().out


def test_the_drawing_names_every_machine_and_a_long_link(tmp_path: Path):
    b = Builder("classroom")
    for site in ("school", "home"):
        b.add_site(site)
    b.add_computer("school", "alice-pc").link_sites("school", "home", "45ms")
    b.add_domain("school.example", site="school", submission="mail")
    b.add_domain("home.example", site="home", mx=["mx"], mailbox="pop")
    ax = b.draw()
    words = [t.get_text() for t in ax.texts]
    assert "45 ms" in words
    assert "msa-school\nmail.school.example" in words
    assert {"r-school", "r-home", "dns"} <= set(words)
    assert min(t.get_fontsize() for t in ax.texts) * 100 / 72 >= 14  # px at 100 dpi
    plt.close(ax.figure)


def _find(box: Any, kind: str, label: str) -> Any:
    """The widget of ``kind`` whose description is ``label``, anywhere in the form."""
    for child in getattr(box, "children", ()):
        if type(child).__name__ == kind and child.description == label:
            return child
        found = _find(child, kind, label)
        if found is not None:
            return found
    return None


def test_the_form_builds_classroom_with_its_buttons():
    b = Builder("classroom")
    form = b.widget()

    def fill(**values: str) -> None:
        for label, value in values.items():
            field = _find(form, "Text", label.replace("_", " "))
            field.value = value

    def choose(label: str, value: str) -> None:
        _find(form, "Dropdown", label).value = value

    def press(label: str) -> None:
        _find(form, "Button", label).click()

    for site in ("school", "home"):
        fill(site=site)
        press("Add site")
    choose("at site", "school")
    fill(computer="alice-pc")
    press("Add computer")
    choose("at site", "home")
    fill(computer="bob-pc", latency="5ms", bandwidth="50Mbps")
    press("Add computer")
    choose("between", "school")
    choose("and", "home")
    fill(one_way="45ms")
    press("Link sites")
    assert len(b.data["between"]) == 1
    choose("site", "school")
    fill(domain="school.example", submission="mail", MX_hosts="", mailbox="")
    press("Add domain")
    choose("site", "home")
    fill(domain="home.example", submission="", MX_hosts="mx", mailbox="pop")
    press("Add domain")
    fill(user="alice@school.example", password="wonderland", checks_every="")
    choose("computer", "alice-pc")
    press("Add user")
    fill(user="bob@home.example", password="builder", checks_every="5min")
    choose("computer", "bob-pc")
    choose("reads with", "imap-idle")
    press("Add user")
    assert b.data["users"]["bob@home.example"]["retrieval"] == "imap-idle"
    choose("reads with", "webmail")
    press("Add user")  # a browser: sends and reads through the webmail
    assert b.data["users"]["bob@home.example"]["program"] == "browser"
    assert b.scenario().accounts["bob@home.example"].retrieval == "webmail"
    choose("reads with", "pop3")
    press("Add user")  # added again: the same address, read with POP3 as in classroom
    choose("from", "alice@school.example")
    choose("to", "bob@home.example")
    fill(at="10s", size="20KB")
    press("Add message")
    assert b.problems() == []
    built = b.scenario()
    # the form gives every server its settings (here the defaults) and a message no id
    # or subject: the same world as classroom, machine for machine and link for link
    assert built.nodes == CLASSROOM.nodes | {
        "bob-pc": CLASSROOM.nodes["bob-pc"].model_copy(update={"host": "bob-pc.home.example"})
    }
    assert built.links == CLASSROOM.links
    assert built.users == CLASSROOM.users
    assert "No problems" in _find_html(form)


def _find_html(box: Any) -> str:
    return " ".join(child.value for child in box.children if type(child).__name__ == "HTML")
