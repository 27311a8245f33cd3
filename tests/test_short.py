"""The short form (mailsim.short): sites and domains in, the full scenario out."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import mailsim
from mailsim.cli import main
from mailsim.errors import ScenarioError
from mailsim.scenario import loads
from tests.conftest import SCENARIOS

SHORT = SCENARIOS / "classroom-short.yaml"


def _lines_of_data(path: Path) -> int:
    lines = path.read_text().splitlines()
    return sum(1 for line in lines if line and not line.lstrip().startswith("#"))


def test_classroom_in_the_short_form_is_classroom_machine_for_machine():
    short, full = mailsim.load(SHORT), mailsim.load(SCENARIOS / "classroom.yaml")
    assert short == full
    # the order too: addresses are handed out in the nodes' order, paths tie-break on links'
    assert list(short.nodes) == list(full.nodes)
    assert [link.between for link in short.links] == [link.between for link in full.links]
    assert (_lines_of_data(SHORT), _lines_of_data(SCENARIOS / "classroom.yaml")) == (16, 35)


def test_the_short_classroom_runs_to_the_same_bytes(capsys):
    assert main(["run", str(SHORT), "--json"]) == 0
    short = capsys.readouterr().out
    assert main(["run", str(SCENARIOS / "classroom.yaml"), "--json"]) == 0
    assert short == capsys.readouterr().out


def test_expand_prints_the_full_form_in_the_units_people_write(capsys):
    assert main(["expand", "classroom-short"]) == 0
    text = capsys.readouterr().out
    assert "- between: [r-school, r-home]\n  latency: 45ms\n  bandwidth: 1Gbps\n" in text
    assert "- between: [mx-home, pop-home]\n  latency: 0.5ms\n" in text
    assert "bob@home.example: {client: bob-pc, smtp: mx-home, mailbox: pop-home," in text
    assert loads(text, "expanded") == mailsim.load(SCENARIOS / "classroom.yaml")


def test_expand_applies_set_before_deriving(capsys):
    assert main(["expand", str(SHORT), "--set", "between.0.latency=80ms"]) == 0
    full = loads(capsys.readouterr().out)
    assert full.links[3].between == ("r-school", "r-home")
    assert full.links[3].latency == pytest.approx(0.080)


def _short(text: str) -> mailsim.Scenario:
    return loads(textwrap.dedent(text), "world.yaml")


def test_a_backup_mx_relays_for_its_domain_and_a_home_network_hangs_off_its_router():
    world = _short("""\
        sites:
          provider: {}
          home: {computers: {bob-pc: {latency: 8ms, bandwidth: 20Mbps}}}
        between: [{sites: [provider, home], latency: 12ms}]
        domains:
          home.example:
            site: home
            mx: [mx, {host: backup, preference: 50, concurrency: 2}]
            mailbox: {host: pop, tls: "1.2"}
          provider.example: {site: provider, submission: {host: smtp, auth: optional}}
        users:
          bob@home.example: {client: bob-pc, password: builder}
        """)
    assert list(world.nodes) == ["msa-provider", "dns", "r-provider", "r-home", "mx-home",
                                 "mx2-home", "pop-home", "bob-pc"]  # fmt: skip
    primary, backup = world.nodes["mx-home"], world.nodes["mx2-home"]
    assert (primary.domains, primary.relay_domains) == (["home.example"], [])
    assert (backup.domains, backup.relay_domains, backup.concurrency) == ([], ["home.example"], 2)
    assert world.nodes["pop-home"].tls == "1.2"
    assert world.nodes["msa-provider"].auth == "optional"
    zone = world.dns.zones["home.example"]
    assert [(mx.preference, mx.host) for mx in zone.mx] == [
        (10, "mx.home.example"), (50, "backup.home.example")]  # fmt: skip
    assert zone.a == {"mx.home.example": "mx-home", "backup.home.example": "mx2-home",
                      "pop.home.example": "pop-home"}  # fmt: skip
    links = {link.between: (link.latency, link.bandwidth) for link in world.links}
    assert links[("r-home", "bob-pc")] == (0.008, 20e6)  # no submission server at home
    assert links[("mx-home", "pop-home")] == (0.0005, 1e9)
    assert links[("msa-provider", "dns")] == (0.001, 1e9)  # the resolver: first site's LAN
    bob = world.users["bob@home.example"]
    assert (bob.smtp, bob.mailbox) == ("mx-home", "pop-home")  # no submission: the MX
    assert world.nodes["bob-pc"].host == "bob-pc.home.example"


def test_a_user_may_name_their_servers_and_a_world_may_have_one_site():
    world = _short("""\
        sites: {office: {computers: {pcs: {}}}}
        domains:
          office.example: {site: office, submission: mail, mx: [mail], mailbox: imap}
        users:
          "staff{1..3}@office.example": {client: pcs, password: s, poll: 1min}
        messages: [{at: 0s, from: staff1@office.example, to: [staff2@office.example]}]
        """)
    # one machine sends and receives: named for its MX, the computers on its LAN
    assert list(world.nodes) == ["pcs", "mx-office", "dns", "pop-office", "r-office"]
    assert world.nodes["mx-office"].domains == ["office.example"]
    assert {link.between for link in world.links} == {
        ("pcs", "mx-office"), ("mx-office", "dns"), ("mx-office", "r-office"),
        ("mx-office", "pop-office")}  # fmt: skip
    result = mailsim.run(world)
    assert [c.status for c in result.copies] == ["retrieved"]


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            """\
            sites:
              school: {computers: {alice-pc: {latency: fast}}}
            domains:
              school.example: {site: school, submission: mail, colour: red}
            """,
            [
                "world.yaml:2: sites.school.computers.alice-pc.latency: 'fast' is not a"
                ' duration; write it like "20ms", "5min" or "2h"',
                'world.yaml:4: domains["school.example"].colour: unknown key (allowed: site,'
                " submission, mx, mailbox, resolver, zone)",
            ],
        ),
        (
            """\
            sites:
              school: {computers: {alice-pc: {}}}
              home: {}
            domains:
              school.example: {site: schol, submission: mail}
            users:
              alice@school.example: {client: alice-laptop, password: x}
              bob@home.example: {client: alice-pc, password: y}
            """,
            [
                "world.yaml:5: domains[\"school.example\"].site: no site 'schol'; did you"
                " mean 'school'?",
                "world.yaml:2: sites.school: is joined to no other site: add it to between",
                "world.yaml:3: sites.home: is joined to no other site: add it to between",
                'world.yaml:7: users["alice@school.example"].client: no computer'
                " 'alice-laptop'; did you mean 'alice-pc'?",
                "world.yaml:8: users[\"bob@home.example\"]: no domain 'home.example' in"
                " domains: name its smtp",
            ],
        ),
        (
            """\
            sites: {school: {computers: {pc: {}}}}
            domains:
              school.example:
                site: school
                submission: {host: mail, tls: "1.1", concurency: 3}
                zone: {spf: 42}
            users:
              alice@school.example: {client: pc, password: x, pol: 5min}
            """,
            [
                'world.yaml:5: domains["school.example"].submission.tls: Input should be'
                " '1.3', '1.2' or 'none' (got '1.1')",
                'world.yaml:5: domains["school.example"].submission.concurency: unknown key;'
                " did you mean 'concurrency'?",
                'world.yaml:6: domains["school.example"].zone.spf: Input should be a valid'
                " string (got 42)",
                'world.yaml:8: users["alice@school.example"].pol: unknown key; did you mean'
                " 'poll'?",
            ],
        ),
        (
            """\
            sites: {school: {computers: {pc: {}}}}
            domains:
              school.example: {site: school, submission: mail}
            links:
              - {between: [pc, r-school], latency: 1ms}
            """,
            [
                "world.yaml:4: links: the short form makes the machines and links from sites"
                " and between: write them there, or write the whole scenario in the full form"
                " (mailsim expand prints it)",
            ],
        ),
    ],
)
def test_problems_are_named_by_the_short_files_keys(text: str, problems: list[str]):
    with pytest.raises(ScenarioError) as caught:
        _short(text)
    assert [str(p) for p in caught.value.problems] == problems


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("users: hello", "users: Input should be a valid dictionary (got 'hello')"),
        ("users: [a, b]", "users: Input should be a valid dictionary"),
        ("dns: [1, 2]", "dns: Input should be a valid dictionary or instance of Dns"),
        ("dns: {zones: [1]}", "dns.zones: Input should be a valid dictionary"),
    ],
)
def test_a_full_form_key_of_the_wrong_kind_is_named_not_a_crash(written: str, problem: str):
    """Found by the fuzz test: users or dns that are not mappings crashed the expansion."""
    text = "sites: {school: {computers: {pc: {}}}}\ndomains:\n"
    text += "  school.example: {site: school, submission: mail}\n" + written + "\n"
    with pytest.raises(ScenarioError) as caught:
        loads(text, "world.yaml")
    assert [str(p) for p in caught.value.problems] == [f"world.yaml:4: {problem}"]


def test_a_bad_short_file_exits_2_with_one_line_per_problem(tmp_path: Path, capsys: Any):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: {a: {}}\ndomains: {a.example: {site: b, mx: [mx]}}\n")
    assert main(["expand", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"mailsim: {bad}:2: domains[\"a.example\"].site: no site 'b' (sites: a)\n"
    )


def test_zones_written_in_dns_join_the_derived_ones():
    """A zone of a domain the world does not run as a mail domain (here an alias whose MX
    is the school's server) is kept beside the derived zones; one written for a domain
    it runs replaces the derived one."""
    text = textwrap.dedent(
        """\
        sites: {school: {computers: {pc: {}}}}
        domains:
          school.example: {site: school, submission: mail}
        dns:
          zones:
            school.org: {ttl: 1h, mx: [{preference: 10, host: mail.school.example}]}
        """
    )
    zones = loads(text, "world.yaml").dns.zones
    assert sorted(zones) == ["school.example", "school.org"]
    assert [r.host for r in zones["school.org"].mx] == ["mail.school.example"]
    assert zones["school.example"].a == {"mail.school.example": "msa-school"}
    own = text.replace(
        "school.org: {ttl: 1h,",
        "school.example: {ttl: 5min, a: {mail.school.example: msa-school},",
    )
    zone = loads(own, "world.yaml").dns.zones["school.example"]
    assert zone.ttl == 300  # the zone as written, not the derived one (1 h)
