"""Outputs of ``mailsim run``, ``plot`` and ``sweep``: checked before the run (exit 2, one
line, nothing simulated), written with one clear line on a real I/O failure (exit 1),
and never fewer files than the count printed."""

from __future__ import annotations

import os
import textwrap
from email import message_from_bytes
from pathlib import Path

import pytest

import mailsim
from tests.bounded import mailsim as command
from tests.bounded import refused, within
from tests.conftest import SCENARIOS

CLASSROOM = SCENARIOS / "classroom.yaml"


@pytest.fixture
def unwritable(tmp_path: Path) -> Path:
    """A folder nobody may write in: for root (who may write anywhere on a disk), a
    kernel file system; for anyone else, a folder without write permission."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("option", ["--out", "--plots", "--eml"])
def test_an_unwritable_output_folder_is_refused_before_the_run(unwritable, option):
    run = command("run", CLASSROOM, option, unwritable)
    refused(run, f"mailsim: {unwritable}: {option}: cannot write in it: ")
    assert run.out == ""  # nothing was simulated


@pytest.mark.parametrize("option", ["--out", "--plots", "--eml"])
def test_an_output_folder_that_is_a_file_is_refused(tmp_path, option):
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    refused(command("run", CLASSROOM, option, blocker), f"{option}: exists and is not a folder")


def test_a_folder_that_cannot_be_made_is_refused(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    refused(
        command("run", CLASSROOM, "--out", blocker / "inside"),
        f"{blocker / 'inside'}: --out: cannot create it: Not a directory",
    )


def test_plot_output_is_checked_before_the_run(tmp_path, unwritable):
    refused(
        command("plot", "route", CLASSROOM, "-o", tmp_path / "missing" / "r.png"),
        f"-o: the folder '{tmp_path / 'missing'}' does not exist",
    )
    refused(command("plot", "route", CLASSROOM, "-o", tmp_path), "-o: is a folder")
    refused(
        command("plot", "route", CLASSROOM, "-o", unwritable / "r.png"),
        "-o: cannot write in its folder",
    )


def test_a_full_device_is_one_line_and_exit_code_one():
    refused(
        command("plot", "route", CLASSROOM, "-o", "/dev/full"),
        "/dev/full: -o: unknown format",
    )
    with open("/dev/full", "wb") as full:
        run = command("run", CLASSROOM, stdout=full)
    refused(run, "mailsim: standard output: cannot write: No space left on device", code=1)


def test_sweep_output_folder_is_checked_before_the_runs(unwritable):
    refused(
        command(
            "sweep", CLASSROOM, "--vary", "links.r-school/r-home.latency=10ms,20ms",
            "--replications", "1", "--out", unwritable,
        ),
        f"{unwritable}: --out: cannot write in it",
    )  # fmt: skip


# -- .eml files: one file per delivered copy, whatever the ids ---------------------------------

IDS = textwrap.dedent(
    """\
    name: ids
    duration: 1h
    nodes:
      pc: {role: client}
      mx: {role: smtp, domains: [a.example]}
      pop: {role: pop}
      dns: {role: dns}
    links:
      - {between: [pc, mx], latency: 1ms}
      - {between: [mx, pop], latency: 1ms}
      - {between: [mx, dns], latency: 1ms}
      - {between: [pc, pop], latency: 1ms}
    dns:
      zones:
        a.example: {mx: [{preference: 10, host: mx.a.example}], a: {mx.a.example: mx}}
    users:
      u@a.example: {client: pc, smtp: mx, mailbox: pop, poll: 10min}
    messages:
    """
)


def test_ids_that_read_alike_as_file_names_get_a_file_each(tmp_path):
    """m/1, m_1 and m?1 are all "m_1" as a file name; M_1 is the same name on macOS."""
    ids = ["m/1", "m_1", "m?1", "M_1", "x" * 300]
    text = IDS + "".join(
        f"  - {{id: {i!r}, at: 1s, from: u@a.example, to: u@a.example}}\n" for i in ids
    )
    scenario = tmp_path / "ids.yaml"
    scenario.write_text(text)
    run = command("run", scenario, "--eml", tmp_path / "eml")
    assert run.code == 0, run.err
    written = sorted((tmp_path / "eml").iterdir())
    assert f"wrote {len(ids)} .eml files" in run.out
    assert len(written) == len(ids)
    assert len({p.name.lower() for p in written}) == len(ids)
    assert all(len(p.name) <= 120 for p in written)
    read = {message_from_bytes(p.read_bytes())["Message-ID"] for p in written}
    assert len(read) == len(ids)  # five different messages, not one written five times


def test_a_gigabyte_message_writes_a_bounded_eml(tmp_path):
    text = IDS + "  - {id: big, at: 1s, from: u@a.example, to: u@a.example, size: 1GB}\n"
    scenario = tmp_path / "big.yaml"
    text = text.replace("duration: 1h", "duration: 2h")
    scenario.write_text(
        text.replace("domains: [a.example]", "domains: [a.example], message_size_limit: 2GB")
    )
    run = command("run", scenario, "--eml", tmp_path / "eml")
    assert run.code == 0, run.err
    (eml,) = (tmp_path / "eml").iterdir()
    body = eml.read_bytes()
    assert 10_000_000 < len(body) < 10_500_000
    assert b"more bytes of the simulated message are left out of this file]" in body
    within(run)


# -- the library takes what a user passes ---------------------------------------------------


def test_run_takes_a_path_a_mapping_or_a_scenario(classroom):
    import yaml

    data = yaml.safe_load(CLASSROOM.read_text())
    results = [mailsim.run(s) for s in (classroom, str(CLASSROOM), CLASSROOM, data)]
    assert {r.messages["retrieved_at"].iloc[0] for r in results} == {
        results[0].messages["retrieved_at"].iloc[0]
    }
    with pytest.raises(TypeError, match="a scenario is a Scenario"):
        mailsim.run(42)  # type: ignore[arg-type]
    with pytest.raises(mailsim.ScenarioError, match="no such file"):
        mailsim.run("no-such-scenario.yaml")


@pytest.mark.parametrize(
    ("arguments", "error", "says"),
    [
        ({"seed": -1}, ValueError, "seed is a whole number, 0 or more; not -1"),
        ({"seed": 1.5}, TypeError, "seed is a whole number, 0 or more; not 1.5"),
        ({"seed": True}, TypeError, "not True"),
        ({"progress": 1}, TypeError, "progress takes True"),
        ({"detail": "all"}, ValueError, "detail is one of full, hops, outcomes, not 'all'"),
    ],
)
def test_run_says_what_its_arguments_take(classroom, arguments, error, says):
    with pytest.raises(error) as caught:
        mailsim.run(classroom, **arguments)
    assert says in str(caught.value)


def test_sweep_says_that_vary_takes_lists(classroom):
    with pytest.raises(TypeError) as caught:
        mailsim.sweep(CLASSROOM, {"duration": "1h"}, replications=1)  # type: ignore[dict-item]
    assert str(caught.value) == (
        "vary['duration'] is '1h': give a list of the values to try, e.g. {'duration': ['1h']}"
    )
    with pytest.raises(ValueError, match="seed is a whole number"):
        mailsim.sweep(CLASSROOM, {"duration": ["1h"]}, replications=1, seed=-1)


def test_sweep_takes_a_scenario_as_well_as_its_file(classroom):
    vary = {"links.r-school/r-home.latency": ["10ms", "30ms"]}
    from_file = mailsim.sweep(CLASSROOM, vary, replications=1, workers=1)
    from_model = mailsim.sweep(classroom, vary, replications=1, workers=1)
    columns = ["transfer_mean", "delay_mean"]
    assert from_model[columns].equals(from_file[columns])
