"""The ``mailsim`` command: exit codes, one-line errors naming file and key, outputs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

import mailsim
from mailsim import cli
from mailsim.cli import main
from mailsim.errors import InputError
from tests.conftest import SCENARIOS

GOOD = textwrap.dedent(
    """\
    nodes:
      pc: {role: client}
      msa: {role: smtp, domains: [a.example]}
      pop: {role: pop}
      dns: {role: dns}
    links:
      - {between: [pc, msa], latency: 5ms}
      - {between: [msa, pop], latency: 1ms}
      - {between: [msa, dns], latency: 1ms}
      - {between: [pc, pop], latency: 5ms}
    users:
      u@a.example: {client: pc, smtp: msa, mailbox: pop}
    messages:
      - {at: 1s, from: u@a.example, to: u@a.example}
    """
)


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(capsys, argv: list[str]) -> list[str]:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err.strip().splitlines()


BAD = [
    # (what, edit of GOOD, expected line fragment)
    ("yaml syntax", lambda s: s.replace("{role: dns}", "{role: dns"), ":6: YAML syntax"),
    ("empty", lambda s: "", "the file is empty"),
    ("unknown key", lambda s: s.replace("{role: pop}", "{role: pop, concurency: 3}"),
     ":4: nodes.pop.concurency: unknown key; did you mean 'concurrency'?"),
    ("wrong type", lambda s: s.replace("{role: pop}", "{role: pop, concurrency: many}"),
     ":4: nodes.pop.concurrency: Input should be a valid integer"),
    ("bad unit", lambda s: s.replace("latency: 5ms}\n  - {between: [msa, pop]", "latency: 5 lightyears}\n  - {between: [msa, pop]"),
     ":7: links.0.latency: unknown unit 'lightyears'"),
    ("negative latency", lambda s: s.replace("latency: 1ms}\n  - {between: [msa, dns]", "latency: -1ms}\n  - {between: [msa, dns]"),
     ":8: links.1.latency: must not be negative (got '-1ms')"),
    ("duplicate node", lambda s: s.replace("  dns: {role: dns}", "  dns: {role: dns}\n  pop: {role: pop}"),
     ":6: 'pop' is given twice (first on line 4)"),
    ("link to unknown node", lambda s: s.replace("[msa, dns]", "[msa, dnss]"),
     ":9: links.2.between.1: unknown node 'dnss'; did you mean 'dns'?"),
    ("mailbox on a non-pop node", lambda s: s.replace("mailbox: pop}", "mailbox: msa}"),
     """:12: users["u@a.example"].mailbox: 'msa' is an smtp node; it must be a pop node"""),
    ("sender without client", lambda s: s.replace("from: u@a.example", "from: v@a.example"),
     """:14: messages.0.from: 'v@a.example' has no mail client: add it to users"""),
    ("misspelt sender", lambda s: s.replace("from: u@a.example", "from: uu@a.example"),
     "did you mean 'u@a.example'?"),
    ("unknown role", lambda s: s.replace("{role: dns}", "{role: dnss}"),
     ":5: nodes.dns.role: unknown role 'dnss'; did you mean 'dns'?"),
    ("missing role", lambda s: s.replace("{role: dns}", "{host: d.example}"),
     ":5: nodes.dns: missing 'role' (one of client, smtp, dns, pop, router)"),
    ("missing required key", lambda s: s.replace("{at: 1s, ", "{"),
     ":14: messages.0.at: required key is missing"),
    ("not a mapping", lambda s: "- just\n- a list\n", "a scenario is a mapping of keys"),
    ("no path", lambda s: s.replace("  - {between: [pc, msa], latency: 5ms}\n", "").replace("  - {between: [pc, pop], latency: 5ms}\n", ""),
     """users["u@a.example"].smtp: no network path from 'pc' to 'msa': add a link"""),
]  # fmt: skip


@pytest.mark.parametrize(("what", "edit", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_scenario_exits_2_with_one_line_naming_file_and_key(
    tmp_path, capsys, what, edit, fragment
):
    path = write(tmp_path, edit(GOOD))
    for command in ("run", "validate"):
        lines = errors_of(capsys, [command, str(path)])
        assert any(fragment in line for line in lines), lines
        assert all(line.startswith(f"mailsim: {path}") for line in lines), lines


def test_good_scenario_is_valid(tmp_path, capsys):
    assert main(["validate", str(write(tmp_path, GOOD))]) == 0
    assert "ok (4 nodes, 4 links, 1 user, 1 message)" in " ".join(capsys.readouterr().out.split())


def test_every_problem_is_listed_at_once(tmp_path, capsys):
    text = GOOD.replace("[msa, dns]", "[msa, dnss]").replace("mailbox: pop}", "mailbox: msa}")
    lines = errors_of(capsys, ["validate", str(write(tmp_path, text))])
    assert [line.split(": ")[2] for line in lines] == [
        "links.2.between.1",
        'users["u@a.example"].mailbox',
        "nodes.msa.resolver",  # the misspelt link leaves msa without a path to dns
    ]


def test_missing_file(capsys, tmp_path):
    lines = errors_of(capsys, ["run", str(tmp_path / "nope.yaml")])
    assert lines == [f"mailsim: {tmp_path / 'nope.yaml'}: no such file"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "x.yaml", "--seed", "abc"], "--seed takes a whole number, not 'abc'"),
        (["run", "x.yaml", "--seed", "-1"], "--seed must be 0 or more"),
        (["run"], "the following arguments are required: scenario"),
        (["fly"], "invalid choice: 'fly'"),
        (["step", "x.yaml", "--filter", "ftp"], "invalid choice: 'ftp'"),
    ],
)
def test_bad_options_exit_2(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert fragment in capsys.readouterr().err


def test_out_must_be_a_directory(tmp_path, capsys):
    blocker = write(tmp_path, "x", "file.txt")
    lines = errors_of(capsys, ["run", str(SCENARIOS / "classroom.yaml"), "--out", str(blocker)])
    assert lines == [f"mailsim: {blocker}: --out: exists and is not a folder"]


def test_eml_files_need_the_copies_that_outcomes_does_not_keep(tmp_path, capsys):
    argv = [
        "run",
        str(SCENARIOS / "classroom.yaml"),
        "--detail",
        "outcomes",
        "--eml",
        str(tmp_path),
    ]
    lines = errors_of(capsys, argv)
    assert lines == [
        f"mailsim: {tmp_path}: --eml: needs --detail full or hops (outcomes keeps no copies)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_same_seed_gives_byte_identical_json(capsys):
    outputs = []
    for _ in range(2):
        assert main(["run", str(SCENARIOS / "classroom.yaml"), "--json", "--seed", "7"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["seed"] == 7


def test_json_contract(capsys):
    main(["run", str(SCENARIOS / "classroom.yaml"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    message = doc["messages"][0]
    assert set(message) >= {"id", "sender", "recipient", "status", "submitted_at",
                            "delivered_at", "retrieved_at", "hops"}  # fmt: skip
    for hop in message["hops"]:
        assert set(hop) >= {"index", "src", "dst", "protocol", "start", "end", "attempts",
                            "outcome", "tls", "acknowledged"}  # fmt: skip
        assert hop["acknowledged"] >= hop["end"]
    assert message["to_mailbox"] + message["to_reader"] == pytest.approx(
        message["retrieved_at"] - message["submitted_at"], abs=1e-6
    )
    assert [h["index"] for h in message["hops"]] == [1, 2, 3, 4]
    assert message["submitted_at"] == 10.0
    assert doc["summary"] == {"sent": 1, "retrieved": 1, "delivered": 0, "refused": 0,
                              "bounced": 0,
                              "expired": 0, "in_flight": 0, "duplicates": 0,
                              "bounces_sent": 0, "bounces_retrieved": 0,
                              "bounces_delivered": 0, "bounces_in_flight": 0,
                              "bounces_undeliverable": 0}  # fmt: skip


def test_text_report_shows_hops_delay_parts_and_conservation(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["run", str(SCENARIOS / "classroom.yaml")]) == 0
    out = capsys.readouterr().out
    assert "  1 alice-pc   msa-school submission  10.000s    57.0 ms 1.3 yes  250 2.0.0 Ok:" in out
    assert "waiting for the POP poll" in out
    assert (
        "sent 1 = retrieved 1 + delivered 0 + refused 0 + bounced 0 + expired 0 + in flight 0"
        " (duplicates 0)" in out
    )
    assert "bounces sent back" not in out


def test_out_writes_four_tables(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(SCENARIOS / "classroom.yaml"), "--out", str(out)]) == 0
    hops = pd.read_csv(out / "hops.csv")
    assert list(hops["protocol"]) == ["submission", "smtp", "lmtp", "pop3"]
    messages = pd.read_csv(out / "messages.csv")
    assert list(messages["status"]) == ["retrieved"]
    events = pd.read_csv(out / "events.csv")
    assert {"SYN", "EHLO", "STARTTLS", "RETR"} <= set(events["step"])
    sessions = pd.read_csv(out / "sessions.csv")
    assert list(sessions["server_port"]) == [110, 587, 53, 53, 25, 24, 110]
    ehlo = events[events["step"] == "EHLO"].iloc[0]
    assert (ehlo["src_ip"], ehlo["dst_port"]) == ("192.0.2.1", 587)  # alice-pc → submission
    assert "wrote events.csv, sessions.csv, hops.csv, messages.csv to" in capsys.readouterr().out


def test_examples_copy_without_solutions_hands_out_the_activities_alone(tmp_path, capsys):
    assert main(["examples", "copy", str(tmp_path / "class"), "--no-solutions"]) == 0
    assert "the activities without their solutions" in capsys.readouterr().out
    activities = tmp_path / "class" / "scenarios" / "activities"
    assert (activities / "push-to-phone.yaml").is_file()
    assert (activities / "phone-checks.yaml").is_file()  # its starting scenario
    assert not (activities / "solutions").exists()
    assert main(["examples", "copy", str(tmp_path / "teacher")]) == 0
    solutions = tmp_path / "teacher" / "scenarios" / "activities" / "solutions"
    assert sorted(p.stem for p in solutions.glob("*.yaml")) == sorted(
        p.stem for p in activities.glob("*.yaml") if "title:" in p.read_text()
    )


def test_schema_is_json_schema_for_both_forms(capsys):
    """What an editor checks a file with: every shipped scenario, in either form, is
    valid under it, and a misspelt key or a mix of the two forms is not."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "mailsim scenario"
    full, short = schema["oneOf"]
    assert (full["title"], full["required"]) == ("full form", ["nodes"])
    assert (short["title"], short["required"]) == ("short form", ["sites", "domains"])
    assert schema["$defs"]["Link"]["properties"]["latency"]["type"] == ["string", "number"]
    jsonschema.Draft202012Validator.check_schema(schema)
    check = jsonschema.Draft202012Validator(schema)
    files = [f for f in sorted(SCENARIOS.rglob("*.yaml")) if "goals" not in f.read_text()]
    assert any("activities" in f.parts for f in files)  # starts and solutions too
    assert any("sites" in yaml.safe_load(f.read_text()) for f in files)
    for path in files:
        assert not list(check.iter_errors(yaml.safe_load(path.read_text()))), path.name
    # What the loader takes as people write it, the schema takes too.
    classroom = yaml.safe_load((SCENARIOS / "classroom.yaml").read_text())
    bob = classroom["users"]["bob@home.example"]
    written = {**classroom, "users": {**classroom["users"], "bob@home.example": {
        **bob, "poll_start": "5min"}}, "nodes": {**classroom["nodes"], "pop-home": {
        **classroom["nodes"]["pop-home"], "tls": 1.2}}}  # fmt: skip
    assert mailsim.scenario.validate(written)  # the loader takes it
    assert not list(check.iter_errors(written))
    assert list(check.iter_errors({**written, "duration": [1]}))
    short_file = yaml.safe_load((SCENARIOS / "classroom-short.yaml").read_text())
    assert list(check.iter_errors({**short_file, "sitse": {}}))  # a typo
    assert list(check.iter_errors({**short_file, "nodes": {}}))  # both forms at once


def step(argv: list[str], keys: str) -> list[str]:
    args = cli.build_parser().parse_args(["step", *argv])
    out = io.StringIO()
    assert cli._step(args, io.StringIO(keys), out) == 0
    return out.getvalue().splitlines()


def test_step_starts_at_the_first_message_and_says_what_each_step_means():
    lines = step([str(SCENARIOS / "classroom.yaml")], "\nq\n")
    assert lines[1:] == [
        "following m1 from its first event at 10.000 s; times are counted from there",
        "#20   +0.0 ms → +2.0 ms  alice-pc → msa-school  tcp  SYN",
        "        TCP: the client asks to open a connection",
        "        open: alice-pc → msa-school (submission)",  # said once, while it holds
        "#21   +2.0 ms → +4.0 ms  msa-school → alice-pc  tcp  SYN-ACK",
        "        TCP: the server agrees",
    ]


def test_step_filters_the_submission_and_a_typo_does_not_move_on():
    lines = step([str(SCENARIOS / "classroom.yaml")], "f smpt\nf submission\n\nq\n")
    assert lines[5] == (
        "no protocol 'smpt': use tcp, tls, dns, smtp, lmtp, pop3, imap, https, submission"
        " (f alone: all)"
    )
    events = [line for line in lines if line.startswith("#")]
    assert events[1].startswith("#23   +6.5 ms → +8.5 ms  msa-school → alice-pc  smtp [220]")
    assert events[2].startswith("#24 ")
    assert events[2].endswith("smtp  EHLO")  # the rest wraps onto the next line
    assert len(events) == 3


def test_step_follows_the_message_asked_for(tmp_path):
    lines = step([str(SCENARIOS / "free-vs-paid-provider.yaml"), "--message", "m3"], "q\n")
    assert lines[1] == (
        "following m3 from its first event at 360.000 s; times are counted from there"
    )
    assert "  carol-pc → mx-college  tcp  SYN" in lines[2]
    args = cli.build_parser().parse_args(
        ["step", str(SCENARIOS / "classroom.yaml"), "--message", "m9"]
    )
    with pytest.raises(InputError, match="--message: no message 'm9'"):
        cli._step(args, io.StringIO("q\n"), io.StringIO())


def test_step_to_the_end_without_input():
    args = cli.build_parser().parse_args(
        ["step", str(SCENARIOS / "same-domain.yaml"), "--filter", "lmtp"]
    )
    out = io.StringIO()
    assert cli._step(args, io.StringIO(""), out) == 0
    text = out.getvalue()
    assert "LHLO" in text
    assert "sent 1 = retrieved 1" in text


def test_python_m_mailsim_is_the_command():
    done = subprocess.run(
        [sys.executable, "-m", "mailsim", "validate", str(SCENARIOS / "classroom.yaml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_output_into_a_closed_pipe_ends_quietly():
    done = subprocess.run(
        # `step` without input runs to the end: far more than a pipe's buffer.
        f"{sys.executable} -m mailsim step {SCENARIOS / 'mx-down.yaml'} < /dev/null | head -1",
        shell=True, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.stdout.startswith("Enter: next event")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["validate", str(SCENARIOS / "classroom.yaml")],
        ["run", str(SCENARIOS / "classroom.yaml")],
        ["run", str(SCENARIOS / "classroom.yaml"), "--json"],
    ],
)
def test_quick_commands_import_neither_pandas_nor_matplotlib(argv):
    """A student waits for every command: pandas and matplotlib cost most of a second
    (benchmarks/startup.py)."""
    code = (
        "import sys, contextlib, io\n"
        "from mailsim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
        "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_report_fits_an_80_column_terminal(path, monkeypatch):
    """Long outcomes wrap inside their cell, long names end in "…"."""
    from mailsim import report
    from tests.conftest import shipped

    text = report.text(shipped(path), limit=5, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80


def test_long_node_names_are_shortened_with_a_mark(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    long = "a-mail-server-with-a-very-long-name"
    text = (SCENARIOS / "classroom.yaml").read_text().replace("msa-school", long)
    path = tmp_path / "long-names.yaml"
    path.write_text(text)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  1 alice-pc       a-mail-server… submission  10.000s    57.0 ms 1.3 yes\n" in out
    assert "      250 2.0.0 Ok: queued as 2576400001\n" in out
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize("command", sorted(cli.EXAMPLES))
def test_every_help_ends_with_examples_that_work(command, capsys):
    """Each example parses, names a shipped scenario, and its --set or --vary key exists
    in that scenario."""
    import shlex

    import mailsim

    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    # On an 80-column terminal every line fits; a long example goes on with a shell
    # continuation, so that it runs as copied.
    assert max(len(line) for line in help_text.splitlines()) <= 80
    assert help_text.replace(" \\\n      ", " ").rstrip().endswith(cli.EXAMPLES[command][-1])
    for example in cli.EXAMPLES[command]:
        words = shlex.split(example)
        words = [w for i, w in enumerate(words) if w not in "<>" and words[i - 1] not in "<>"]
        args = cli.build_parser().parse_args(words[1:])
        path = getattr(args, "scenario", None)
        if isinstance(path, list):
            path = path[0]
        if not str(path).startswith("scenarios/"):
            continue
        changes = list(getattr(args, "overrides", []))
        changes += [f"{v.partition('=')[0]}={v.partition('=')[2].split(',')[0]}" for v in getattr(args, "vary", None) or []]  # fmt: skip
        mailsim.load(SCENARIOS.parent / path, changes)


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "mailsim", "--version"], capture_output=True, text=True
    )
    assert done.stdout.strip() == "mailsim 0.1.0"


def test_validate_says_what_is_declared_and_what_the_traffic_will_make(capsys):
    assert main(["validate", str(SCENARIOS / "busy-office.yaml")]) == 0
    out = capsys.readouterr().out
    assert " ".join(out.split()) == (
        f"{SCENARIOS / 'busy-office.yaml'}: ok (9 nodes, 10 links, 540 users (in 2 entries),"
        " 0 messages and traffic of about 17,000 more)"
    )
    assert max(len(line) for line in out.splitlines()) <= 80


def test_step_shows_the_packet_of_an_event_layer_by_layer():
    """p: the current event's PDU — the SYN that opens alice's submission: her port to
    587, the SYN flag, 60 bytes of IP, and the frame's bytes — then on with Enter."""
    lines = step([str(SCENARIOS / "classroom.yaml")], "p\n\nq\n")
    assert (
        lines[0]
        == "Enter: next event · p: its packet · f PROTOCOL: only that protocol (f: all) · q: quit"
    )
    at = lines.index("        Application · none (TCP's own control segment)")
    shown = [line.strip() for line in lines[at:]]
    assert shown[1] == "SYN — TCP: the client asks to open a connection"
    assert shown[3].startswith("192.0.2.1:")
    assert shown[3].endswith(" → 192.0.2.2:587 · TCP, submission")
    assert shown[4:6] == ["flags SYN", "seq 0 (counted from each end's SYN, as Wireshark does)"]
    assert shown[8:10] == ["192.0.2.1 → 192.0.2.2 (alice-pc → msa-school)",
                           "TTL 64 · 60 bytes with the IP header · don't fragment"]  # fmt: skip
    assert shown[12:14] == ["alice-pc – msa-school: 2.0 ms one way, 100 Mbit/s", "Bytes (74)"]
    assert shown[14].startswith("0000  02 00 c0 00 02 02 02 00 c0 00 02 01 08 00 45 00")
    assert any(line.startswith("#21 ") for line in lines[at:])  # Enter moved on
