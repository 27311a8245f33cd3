"""mailsim.lessons on small notebooks made here: a number the text states and the value
its mark gives, solutions that run or raise, a quiz's answer against its `from`, and the
words a student reads."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mailsim import lessons, notebooks


def lesson(*cells: tuple[str, str]):
    nb = nbformat.v4.new_notebook()
    for kind, text in cells:
        new = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(new(text))
    return nb


def checked(nb, folder: Path) -> list[str]:
    run = lessons.instrumented(nb, folder)
    notebooks.execute(run, folder, timeout=30, allow_errors=True)
    return lessons.problems("x", nb, run, folder)


def test_marks_take_the_text_before_them_without_its_emphasis():
    nb = lesson(("md", "It took **1.2 s**<!--= f'{t:.1f} s' --> and `4`<!--=n--> hops."))
    assert [(m.cell, m.stated[-13:], m.expression) for m in lessons.marks(nb)] == [
        (0, "It took 1.2 s", "f'{t:.1f} s'"),
        (0, "k 1.2 s and 4", "n"),
    ]


@pytest.mark.timeout(60)
def test_a_number_the_text_states_must_be_the_value_at_that_point(tmp_path: Path):
    nb = lesson(
        ("code", "t = 1.234\nn = 4"),
        ("md", "It took **1.2 s**<!--= f'{t:.1f} s' --> over **4**<!--= n --> hops."),
        ("code", "n = 5  # later cells do not count for the text above"),
        ("md", "Now **6**<!--= n --> hops, and <!--= missing --> a name that is not there."),
    )
    assert checked(nb, tmp_path) == [
        "x: cell 3: the text says “…Now 6” but 'n' gives '5'",
        "x: cell 3: 'missing' failed: NameError: name 'missing' is not defined",
    ]


@pytest.mark.timeout(60)
def test_solutions_run_after_the_lesson_and_one_that_raises_is_named(tmp_path: Path):
    nb = lesson(
        ("code", "value = 3"),
        ("md", "<details><summary>Solutions</summary>\n\n```python\nprint(value * 2)\n```\n\n"
               "```python\n1 / 0\n```\n</details>\n\n```python\nnot a solution: outside details\n```"),
    )  # fmt: skip
    assert lessons.solutions(nb) == ["print(value * 2)\n", "1 / 0\n"]
    assert checked(nb, tmp_path) == ["x: solution-2 raised ZeroDivisionError: division by zero"]


@pytest.mark.timeout(60)
def test_a_quiz_answer_is_checked_against_its_from(tmp_path: Path):
    """As the lesson leaves its names: before the solutions, which may rebind them."""
    (tmp_path / "q.yaml").write_text(
        "questions:\n"
        "  - {ask: a, number: 4, from: 'hops', why: w}\n"
        "  - {ask: b, number: 2.5, within: 0.05, from: 'round(t, 1)', why: w}\n"
        "  - {ask: c, number: 7, from: 'hops + 1', why: w}\n"
        "  - {ask: d, number: 1, from: 'name', why: w}\n"
        "  - {ask: e, number: 1, why: w}\n"
    )
    nb = lesson(
        ("code", "hops, t, name = 4, 2.46, 'four'"),
        ("md", "<details>\n\n```python\nhops = 99  # a solution's own names\n```\n</details>"),
        ("code", "from mailsim.quiz import Quiz\n\nQuiz.load('q.yaml')"),
    )
    assert lessons.quizzes(nb, tmp_path) == [tmp_path / "q.yaml"]
    assert checked(nb, tmp_path) == [
        "q.yaml: questions.2: the answer is 7 but 'hops + 1' gives 5 in x",
        "q.yaml: questions.3.from failed in x: 'four' is not a number",
    ]


def test_words_count_what_a_student_reads():
    nb = lesson(
        ("md", "# Lesson 1 · Mail\n\nIt took **1.2 s**<!--= t --> — see `EHLO`.\n\n"
               "<details><summary>Solutions</summary>\n\nsix words a student may open\n"
               "</details>\n\n```python\nx = 1\n```"),
        ("code", "print('code is not read')"),
        ("md", "Two: 250 … *queued*."),
    )  # fmt: skip
    # Lesson, 1, Mail, It, took, 1.2, s, see, EHLO / Solutions, six, words, a, student, may,
    # open / Two, 250, queued: "#", "·", "—", "…", tags, marks and fenced code are not words
    assert lessons.words(nb) == 19


def test_a_lessons_words_include_its_quiz_questions_and_choices(tmp_path):
    """What every student reads of a quiz: its title, the questions and the choices;
    not the feedback that one answer or another brings."""
    (tmp_path / "q.yaml").write_text(
        "title: Check it\nquestions:\n"
        "- ask: Who speaks first?\n  choices:\n"
        "  - {text: The server, right: true}\n  - {text: The client, says: It waits.}\n"
        "  why: The server greets with 220.\n"
        "- {ask: How many hops?, number: 4, why: Four hand-overs.}\n"
    )
    nb = lesson(("md", "Two words."), ("code", "Quiz.load('q.yaml')"))
    assert lessons.words(nb) == 2
    # Check it / Who speaks first? / The server / The client / How many hops?
    assert lessons.words(nb, tmp_path) == 2 + 2 + 3 + 2 + 2 + 3
