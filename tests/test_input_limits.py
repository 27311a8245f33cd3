"""Scenario files that once crashed or ran away, run as a student runs them
(``mailsim validate FILE``): each ends in exit code 2 and one line naming the file and
the line, within 10 s and 500 MB; and the largest files the limits accept validate
within the same bounds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mailsim.model import MAX_LINKS, MAX_MESSAGES, MAX_NODES
from mailsim.references import MAX_NAMED
from mailsim.scenario import MAX_DEPTH, MAX_SCENARIO_BYTES, MAX_VALUES
from tests.bounded import mailsim, refused, within
from tests.conftest import SCENARIOS

CLASSROOM = (SCENARIOS / "classroom.yaml").read_text()
CLASSROOM_LINES = CLASSROOM.count("\n")


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def laughs(levels: int = 9, indent: str = "  ") -> str:
    """The "billion laughs": each level an anchor holding nine aliases of the one
    before; level 9 stands for 9⁹ × 9 ≈ 3.5 × 10⁹ values in 3 KB."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "".join(f"{indent}{line}\n" for line in lines)


# --- aliases ----------------------------------------------------------------------------------

# The first alias past the bound: a0…a4 stand for 10 + 91 + 820 + 7,381 + 66,430
# values; with the classroom's and the keys, the third *a4 inside a5 passes 250,000.
BOMB_LINE = CLASSROOM_LINES + 7


@pytest.mark.parametrize(
    "placement",
    [
        pytest.param(lambda bomb: "extra:\n" + bomb, id="under an unknown key"),
        pytest.param(lambda bomb: "description:\n" + bomb, id="under a known key"),
    ],
)
def test_an_alias_bomb_is_refused_at_the_alias_that_overflows(tmp_path, placement):
    path = write(tmp_path, CLASSROOM + placement(laughs()))
    run = mailsim("validate", path)
    refused(
        run,
        f"mailsim: {path}:{BOMB_LINE}: the alias *a4 brings the file to more than"
        f" {MAX_VALUES:,} values (each alias repeats all that its anchor holds): use"
        " fewer aliases",
    )


def test_a_recursive_alias_is_refused_at_its_line(tmp_path):
    path = write(tmp_path, CLASSROOM + "bomb: &a [x, [y, *a]]\n")
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:{CLASSROOM_LINES + 1}: the alias *a stands inside what &a names,"
        " so it would repeat itself forever: an alias can only name something written"
        " before it",
    )


def test_a_recursive_mapping_alias_is_refused(tmp_path):
    path = write(tmp_path, CLASSROOM + "bomb: &m\n  again: *m\n")
    refused(mailsim("validate", path), f"{path}:{CLASSROOM_LINES + 2}: the alias *m stands inside")


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_nesting_deeper_than_a_scenario_needs_is_refused(tmp_path, opener):
    closer = "]" if opener == "[" else "}"
    depth = 900  # under libyaml's own limit of 1000, over Python's recursion
    path = write(tmp_path, CLASSROOM + "deep: " + opener * depth + "1" + closer * depth + "\n")
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:{CLASSROOM_LINES + 1}: values nested more than {MAX_DEPTH} levels"
        " deep; a scenario needs six at most",
    )


# --- characters and keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "named"),
    [
        ("\x00", "a NUL character U+0000, which YAML does not allow: is it a text file?"),
        ("\x07", "a control character U+0007, which YAML does not allow: remove it"),
        ("\ufffe", "the non-character U+FFFE, which YAML does not allow: remove it"),
    ],
)
def test_a_character_yaml_refuses_is_one_line_with_its_line_number(tmp_path, char, named):
    text = "# a comment: é, ü\n" + CLASSROOM.replace("name: classroom", f"name: class{char}room")
    path = write(tmp_path, text)
    line = text.split("name: class")[0].count("\n") + 1
    refused(mailsim("validate", path), f"mailsim: {path}:{line}: the file holds {named}")


@pytest.mark.parametrize("key", ["[a, b]", "{a: 1}"])
def test_a_key_that_is_a_list_or_a_mapping_is_refused_at_its_line(tmp_path, key):
    path = write(tmp_path, CLASSROOM.replace("users:\n", f"users:\n  ? {key}\n  : 1\n"))
    line = CLASSROOM.split("users:\n")[0].count("\n") + 2
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:{line}: a key is a name or a number, not a list or a mapping",
    )


# --- the size of a file ------------------------------------------------------------------------


def test_a_scenario_file_over_the_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("w") as out:
        out.write(CLASSROOM)
        out.truncate(MAX_SCENARIO_BYTES + 1)  # a sparse file: nothing to write
    refused(
        mailsim("validate", path),
        f"mailsim: {path}: is 8.1 MiB; a scenario file is at most 8 MiB (one written by hand"
        " is a few KB)",
    )


def test_a_scenario_on_standard_input_over_the_limit_is_refused():
    run = mailsim("validate", "-", stdin=b"#" * (MAX_SCENARIO_BYTES + 1))
    refused(run, "mailsim: <stdin>: is 8.1 MiB; a scenario file is at most 8 MiB")


def test_a_scenario_on_standard_input_is_read():
    run = mailsim("validate", "-", stdin=CLASSROOM.encode())
    assert run.code == 0, run.err
    assert run.out == "<stdin>: ok (8 nodes, 7 links, 2 users, 1 message)\n"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [("/dev/zero", "is not a regular file"), ("/", "is a folder, not a file")],
)
def test_a_scenario_that_is_not_a_file_is_refused(path, fragment):
    refused(mailsim("validate", path), f"mailsim: {path}: {fragment}")


def test_too_many_values_are_refused_while_reading(tmp_path):
    """Half a million tiny values in 1 MB: refused when the bound is passed, before
    the rest is even read into nodes."""
    path = write(tmp_path, CLASSROOM + "many: [" + "1," * 500_000 + "1]\n")
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:{CLASSROOM_LINES + 1}: more than {MAX_VALUES:,} values (keys,"
        " names, numbers, items) in one file: a scenario is smaller; for many messages"
        " use traffic, for many users a range such as staff{1..500}@office.example",
    )


# --- the largest files accepted -----------------------------------------------------------------


def chain(hops: int) -> str:
    """The world a replayed route of ``hops`` mail servers writes: nodes in a line, each
    relaying to the next."""
    lines = ["nodes:", "  pc: {role: client}", "  dns: {role: dns}", "  pop: {role: pop}"]
    lines += [
        f"  h{i}: {{role: smtp, host: h{i}.relay.example, relayhost: h{i + 1}}}"
        for i in range(hops - 1)
    ]
    lines += [f"  h{hops - 1}: {{role: smtp, host: mx.b.example, domains: [b.example]}}"]
    lines += ["links:", "  - {between: [pc, h0], latency: 1ms}", "  - {between: [h0, dns], latency: 1ms}"]  # fmt: skip
    lines += [f"  - {{between: [h{i}, h{i + 1}], latency: 1ms}}" for i in range(hops - 1)]
    lines += [f"  - {{between: [h{hops - 1}, pop], latency: 1ms}}"]
    lines += [
        "users:",
        "  a@a.example: {client: pc, smtp: h0}",
        "  b@b.example: {client: pc, smtp: h0, mailbox: pop}",
        "messages:",
        "  - {at: 1s, from: a@a.example, to: b@b.example}",
    ]
    return "\n".join(lines) + "\n"


def test_a_replayed_chain_of_100000_hops_is_refused_at_once(tmp_path):
    """11 MB: it once ran for minutes; now its size is enough to refuse it."""
    path = write(tmp_path, chain(100_000))
    refused(
        mailsim("validate", path),
        f"mailsim: {path}: is 11.1 MiB; a scenario file is at most 8 MiB",
    )


def test_more_nodes_than_allowed_are_refused(tmp_path):
    path = write(tmp_path, chain(MAX_NODES - 2))
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:1: nodes: {MAX_NODES + 1:,} nodes; at most {MAX_NODES:,} in one scenario",
    )


def test_the_largest_world_the_limits_allow_validates_in_time(tmp_path):
    """As many nodes as allowed, each linked to the next, the most users a scenario may
    declare and the most explicit messages: within 10 s and 500 MB."""
    text = chain(MAX_NODES - 3)
    users = textwrap.dedent(
        """\
        staff{1..50000}@a.example: {client: pc, smtp: h0}
        pupil{1..49998}@b.example: {client: pc, smtp: h0, mailbox: pop, poll_start: spread}
        """
    )
    text = text.replace("users:\n", "users:\n" + textwrap.indent(users, "  "))
    text += "".join(
        f"  - {{id: m{i}, at: {i}ms, from: staff{i + 1}@a.example, to: pupil{i + 1}@b.example}}\n"
        for i in range(MAX_MESSAGES - 1)
    )
    path = write(tmp_path, text)
    assert path.stat().st_size <= MAX_SCENARIO_BYTES
    run = mailsim("validate", path)
    assert run.code == 0, run.err[:2000]
    counts = (
        f"{MAX_NODES:,} nodes, {MAX_NODES - 1:,} links, 100,000 users (in 4 entries),"
        f" {MAX_MESSAGES:,} messages"
    )
    assert " ".join(run.out.split()) == f"{path}: ok ({counts})"
    within(run)


def test_a_file_full_of_explicit_messages_is_refused_in_time(tmp_path):
    """The bytes limit read with the densest realistic content: about 60,000 messages
    in 8 MB; the file holds too many values, counted before they fill the memory."""
    base = CLASSROOM.split("messages:")[0] + "messages:\n"
    line = "  - {id: m%d, at: 1s, from: alice@school.example, to: bob@home.example, size: 20KB}\n"
    count = (MAX_SCENARIO_BYTES - len(base)) // len(line % 99999)
    path = write(tmp_path, base + "".join(line % i for i in range(count)))
    refused(mailsim("validate", path), f"more than {MAX_VALUES:,} values")


def test_more_explicit_messages_than_allowed_are_refused(tmp_path):
    line = "  - {at: 1s, from: alice@school.example, to: bob@home.example}\n"
    path = write(tmp_path, CLASSROOM + line * MAX_MESSAGES)
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:{CLASSROOM_LINES - 2}: messages: {MAX_MESSAGES + 1:,} messages; at"
        f" most {MAX_MESSAGES:,} in one scenario: for many, use traffic",
    )


def test_more_links_than_allowed_are_refused(tmp_path):
    link = "  - {between: [r-home, bob-pc], latency: 5ms}\n"
    text = CLASSROOM.replace("dns:\n  zones:", link * MAX_LINKS + "dns:\n  zones:")
    path = write(tmp_path, text)
    line = CLASSROOM.split("links:")[0].count("\n") + 1
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:{line}: links: {MAX_LINKS + 7:,} links; at most {MAX_LINKS:,} in one"
        " scenario",
    )


def test_users_declared_by_many_patterns_are_limited_in_all(tmp_path):
    """Each pattern may declare 100,000 users, and all of them together as many: ten
    patterns once declared a million, and a run held them all."""
    patterns = "".join(
        f"  group{g}x{{1..100000}}@school.example: {{client: alice-pc}}\n" for g in range(10)
    )
    path = write(tmp_path, CLASSROOM.replace("users:\n", "users:\n" + patterns))
    line = CLASSROOM.split("users:")[0].count("\n") + 1
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:{line}: users: the users declare 1,000,002 addresses in all; at most"
        " 100,000 in one scenario",
    )


def test_many_messages_naming_one_glob_over_many_users_validate_in_time(tmp_path):
    """A glob is matched against the users once, however many messages name it, and a
    range is written out once: 100,000 users and 9,000 messages to all of them."""
    users = "  pupil{1..99998}@school.example: {client: alice-pc, smtp: msa-school}\n"
    text = CLASSROOM.replace("users:\n", "users:\n" + users)
    text += "  - {at: 1s, from: alice@school.example, to: '*@school.example'}\n" * 4500
    text += (
        "  - {at: 1s, from: alice@school.example, to: 'pupil{1..99998}@school.example'}\n" * 4500
    )
    path = write(tmp_path, text)
    run = mailsim("validate", path)
    said = " ".join(run.out.split())
    assert said.startswith(f"{path}: ok (8 nodes, 7 links, "), run.err
    assert said.endswith(" users (in 3 entries), 9,001 messages)"), run.out
    within(run)


def test_from_and_to_lists_that_name_too_many_addresses_are_refused(tmp_path):
    """Each distinct range is written out to be checked: nine thousand different ranges
    of up to 100,000 addresses would be checked for minutes."""
    users = "  pupil{1..99998}@school.example: {client: alice-pc, smtp: msa-school}\n"
    text = CLASSROOM.replace("users:\n", "users:\n" + users)
    line = "  - {at: 1s, from: alice@school.example, to: 'pupil{%d..99998}@school.example'}\n"
    text += "".join(line % (i + 1) for i in range(9_000))
    path = write(tmp_path, text)
    first = CLASSROOM_LINES + 12  # messages.11, the eleventh range, passes a million
    refused(
        mailsim("validate", path),
        f"mailsim: {path}:{first}: messages.11.to.0: the from and to lists name more than"
        f" {MAX_NAMED:,} addresses to check (each range and glob counted once); name groups"
        " with fewer ranges",
    )
