"""Reading a scenario's YAML: what works (aliases, merge keys, dates as text), what is
refused with its line (values that cannot be built, keys that are not names), and how
problems are listed (one plain line each, at most a hundred)."""

from __future__ import annotations

import pytest

import mailsim
from mailsim.errors import MAX_PROBLEMS, InputError, Problem
from tests.conftest import SCENARIOS

CLASSROOM = (SCENARIOS / "classroom.yaml").read_text()
LINES = CLASSROOM.splitlines()
NAME_LINE = LINES.index("name: classroom") + 1  # after the file's opening comment
ADDED_LINE = LINES.index("duration: 1h") + 2  # a line added after the duration
ALICE = "  alice@school.example: {client: alice-pc, smtp: msa-school, password: wonderland}\n"


def problems_of(text: str, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(InputError) as caught:
        mailsim.loads(text, "s.yaml", overrides or [])
    return [str(p) for p in caught.value.problems]


def test_an_anchor_and_its_aliases_give_each_user_the_same_settings():
    text = CLASSROOM.replace(
        ALICE,
        "  alice@school.example: &pupil {client: alice-pc, smtp: msa-school, password: x}\n"
        "  carol@school.example: *pupil\n",
    )
    scenario = mailsim.loads(text, "s.yaml")
    assert scenario.users["carol@school.example"] == scenario.users["alice@school.example"]


def test_the_merge_key_takes_an_anchor_and_overrides_some_of_it():
    """``<<: *defaults`` (YAML's merge key, as PyYAML's safe_load reads it); a key given
    next to it wins, and is no duplicate."""
    text = CLASSROOM.replace(
        ALICE,
        "  alice@school.example: &pupil {client: alice-pc, smtp: msa-school, password: x}\n"
        "  carol@school.example: {<<: *pupil, password: y}\n",
    )
    carol = mailsim.loads(text, "s.yaml").users["carol@school.example"]
    assert (carol.client, carol.smtp, carol.password) == ("alice-pc", "msa-school", "y")


def test_a_key_given_twice_is_still_an_error_next_to_a_merge():
    text = CLASSROOM.replace(
        ALICE,
        "  alice@school.example: &pupil {client: alice-pc, smtp: msa-school}\n"
        "  carol@school.example: {<<: *pupil, password: y, password: z}\n",
    )
    line = CLASSROOM.index(ALICE)
    assert problems_of(text) == [
        f"s.yaml:{CLASSROOM[:line].count(chr(10)) + 2}: 'password' is given twice (first on"
        f" line {CLASSROOM[:line].count(chr(10)) + 2}); names must be unique"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!float x", "'x' cannot be read as a number"),
        ("!!int 1e5", "'1e5' cannot be read as a whole number (at most 4,300 digits)"),
        (
            "9" * 5000,
            "'9999999999999999999999999999999999999999…' cannot be read as a whole number",
        ),
        (
            "0x" + "f" * 5000,
            "description: Input should be a valid string (got a number of 20,000 bits)",
        ),
        ("!!timestamp 99999-01-01", "'99999-01-01' is not a real date; write it like"),
        ("!!timestamp 2026-13-01", "'2026-13-01' is not a real date (month must be in 1..12)"),
    ],
)
def test_a_value_that_cannot_be_built_is_named_at_its_line(value, message):
    text = CLASSROOM.replace("duration: 1h", f"duration: 1h\ndescription: {value}")
    (problem,) = problems_of(text)
    assert problem.startswith(f"s.yaml:{ADDED_LINE}: {message}")


def test_an_unquoted_date_is_text_and_a_wrong_one_names_its_key():
    ok = mailsim.loads(CLASSROOM.replace("duration: 1h", "duration: 1h\nstart: 2027-01-01"))
    assert ok.start == "2027-01-01"
    text = CLASSROOM.replace("duration: 1h", "duration: 1h\nstart: 2026-02-30T09:00:00+01:00")
    assert problems_of(text) == [
        f"s.yaml:{ADDED_LINE}: start: '2026-02-30T09:00:00+01:00' is not a date and time; write it like"
        " 2026-11-02T09:00:00+01:00"
    ]


def test_a_key_that_is_a_number_is_named_at_its_own_line():
    text = CLASSROOM.replace("  r-school:   {role", "  1:   {role")
    line = next(n for n, text in enumerate(LINES, 1) if text.startswith("  r-school:"))
    assert (
        problems_of(text)[0] == f"s.yaml:{line}: nodes.1: a name is text, not 1: put it in quotes"
    )


def test_a_lone_surrogate_is_named_at_its_line():
    """Python text (or a command line that is not UTF-8) can hold one; YAML cannot."""
    text = CLASSROOM.replace("name: classroom", "name: class\udcffroom")
    assert problems_of(text) == [
        f"s.yaml:{NAME_LINE}: the file holds a lone surrogate U+DCFF, which YAML does not allow:"
        " remove it"
    ]
    assert problems_of(CLASSROOM, ["name=a\udcffb"])[0].startswith(
        "--set: name: the value 'a\\udcffb' is not valid YAML"
    )


def test_more_than_a_hundred_problems_end_with_a_count():
    text = CLASSROOM + "".join(f"unknown{i}: 1\n" for i in range(250))
    problems = problems_of(text)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == "s.yaml: and 150 more problems: fix these first"


def test_more_than_a_hundred_wrong_references_end_with_a_count():
    links = "".join(f"  - {{between: [a{i}, b{i}], latency: 1ms}}\n" for i in range(100))
    problems = problems_of(CLASSROOM.replace("dns:\n  zones:", links + "dns:\n  zones:"))
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == "s.yaml: and 100 more problems: fix these first"


@pytest.mark.parametrize(
    ("problem", "line"),
    [
        (Problem("a\nb.yaml", "", "bad"), "a\\nb.yaml: bad"),
        (Problem("s.yaml", 'users["a\x1b[2Jb"]', "bad", 3), 's.yaml:3: users["a\\x1b[2Jb"]: bad'),
        (Problem("s.yaml", "name", "holds \u202eevil\u202c", 1), "s.yaml:1: name: holds \\u202eevil\\u202c"),
        (Problem("s.yaml", "subject", "שיעורי בית 📚 é", 2), "s.yaml:2: subject: שיעורי בית 📚 é"),
    ],
)  # fmt: skip
def test_a_problem_is_one_plain_line(problem, line):
    assert str(problem) == line
