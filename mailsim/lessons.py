"""What keeps a lesson honest: its numbers, its hidden solutions, its quiz and its length,
checked by running it.

A lesson states numbers the simulation gives ("in Bob's mailbox 1.043 s after Send").
Each such number is followed, in the Markdown, by an HTML comment holding the Python
expression that gives it — invisible when rendered::

    in Bob's mailbox **1.043 s**<!--= format_duration(copy.delivered_at - copy.submitted_at) -->

:func:`instrumented` copies a lesson and puts, after every Markdown cell with such marks,
a cell that evaluates them in the lesson's kernel at that point (every code cell before
it has run, none after); :func:`problems` then reads what they gave: ``str()`` of each
value must end the text before its mark, once the Markdown emphasis around it (``*``,
``_``, backticks) and spaces are taken out. The same run then plays every solution — kept
as fenced ``python`` code inside ``<details>`` blocks, so that "Run All" never runs them
and a student opens them on purpose — and evaluates every quiz question's ``from``
against its answer (:mod:`mailsim.quiz`).

:func:`words` counts what a student reads: the Markdown, folded answers included, without
marks, tags or code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARK = re.compile(r"<!--=\s*(.*?)\s*-->", re.S)
DETAILS = re.compile(r"<details>.*?</details>", re.S)
FENCED = re.compile(r"```python\n(.*?)```", re.S)
QUIZ = re.compile(r"""Quiz\.load\(\s*["']([^"']+)["']""")
PROBE = "[mailsim lesson check] "  # starts every line a probe cell prints


@dataclass(frozen=True)
class Mark:
    """A number the text states, and the expression that must give it."""

    cell: int  # the Markdown cell's index in the lesson
    stated: str  # the text before the mark, without Markdown's * and ` (nor a closing _)
    expression: str


def marks(notebook: Any) -> list[Mark]:
    """Every number marked in the lesson's Markdown, in order."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        text = cell.source
        for match in MARK.finditer(text):
            before = re.sub(r"[*`]", "", MARK.sub("", text[: match.start()])).rstrip("_ \n")
            found.append(Mark(index, before, match[1]))
    return found


def solutions(notebook: Any) -> list[str]:
    """The code of every solution: fenced ``python`` inside ``<details>``, in order."""
    return [
        code
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for block in DETAILS.findall(cell.source)
        for code in FENCED.findall(block)
    ]


def quizzes(notebook: Any, folder: Path) -> list[Path]:
    """The quiz files the lesson loads (``Quiz.load("…")``), from its folder."""
    return [
        folder / name
        for cell in notebook.cells
        if cell.cell_type == "code"
        for name in QUIZ.findall(cell.source)
    ]


def words(notebook: Any, folder: Path | None = None) -> int:
    """The words a student reads: the Markdown, folded answers included, without marks,
    HTML tags and fenced code; with the lesson's ``folder``, its quizzes' title,
    questions and choices too (not the feedback a check gives, as for an activity). A
    word is a run of non-space characters with a letter or a digit in it."""
    texts = [
        FENCED.sub("", MARK.sub("", cell.source))
        for cell in notebook.cells
        if cell.cell_type == "markdown"
    ]
    if folder is not None:
        from mailsim.quiz import Quiz

        for path in quizzes(notebook, folder):
            quiz = Quiz.load(path)
            texts.append(quiz.title)
            for question in quiz.questions:
                texts += [question.ask, *(c.text for c in question.shown())]
    return sum(
        1
        for text in texts
        for word in re.sub(r"<[^>]+>", " ", text).split()
        if re.search(r"[^\W_]", word)
    )


def _probe(kind: str, items: list[tuple[Any, str]]) -> str:
    """A cell that prints, as one JSON line, what each expression gives: its text and,
    where it is one, its number (or the error it raised)."""
    pairs = ", ".join(f"({json.dumps(key)}, {json.dumps(expr)})" for key, expr in items)
    return (
        "import json as _json\n"
        "_said = []\n"
        f"for _key, _expr in [{pairs}]:\n"
        "    try:\n"
        "        _value = eval(_expr)\n"
        "    except Exception as _error:\n"
        "        _said.append([_key, 'error', f'{type(_error).__name__}: {_error}', None])\n"
        "        continue\n"
        "    try:\n"
        "        _number = float(_value)\n"
        "    except (TypeError, ValueError):\n"
        "        _number = None\n"
        "    _said.append([_key, 'value', str(_value), _number])\n"
        f"print({PROBE!r} + _json.dumps([{kind!r}, _said]))\n"
    )


def _by_cell(notebook: Any) -> dict[int, list[Mark]]:
    """The lesson's marks, by the Markdown cell that holds them."""
    found: dict[int, list[Mark]] = {}
    for mark in marks(notebook):
        found.setdefault(mark.cell, []).append(mark)
    return found


def instrumented(notebook: Any, folder: Path) -> Any:
    """A copy of the lesson with probe cells: after each Markdown cell with marks, and at
    the end the quizzes' ``from`` expressions — before the solutions, which may rebind the
    names they read — then the solutions, each a cell of its own, tagged ``solution``. The
    lesson's own cells keep their order and their ids."""
    import copy

    import nbformat

    from mailsim.quiz import Quiz

    out = copy.deepcopy(notebook)
    cells = []
    by_cell = _by_cell(notebook)
    for index in range(len(notebook.cells)):
        cells.append(out.cells[index])
        if index in by_cell:
            items = [(i, m.expression) for i, m in enumerate(by_cell[index])]
            probe = nbformat.v4.new_code_cell(_probe(f"marks {index}", items))
            probe.metadata["tags"] = ["probe"]
            cells.append(probe)
    for path in quizzes(notebook, folder):
        items = [(i, q.source) for i, q in enumerate(Quiz.load(path).questions) if q.source]
        if items:
            probe = nbformat.v4.new_code_cell(_probe(f"quiz {path.name}", items))
            probe.metadata["tags"] = ["probe"]
            cells.append(probe)
    for number, code in enumerate(solutions(notebook)):
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["tags"] = ["solution", f"solution-{number + 1}"]
        cells.append(cell)
    out.cells = cells  # the added cells carry ids of their own (nbformat makes them)
    return out


def _said(executed: Any) -> dict[str, list[list[str]]]:
    """What the probes printed, by kind."""
    found: dict[str, list[list[str]]] = {}
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream":
                continue
            for line in output.get("text", "").split("\n"):
                if line.startswith(PROBE):
                    kind, said = json.loads(line[len(PROBE) :])
                    found[kind] = said
    return found


def problems(name: str, lesson: Any, executed: Any, folder: Path) -> list[str]:
    """What the run of :func:`instrumented` found wrong, one line each, naming the
    lesson and the cell or the quiz question."""
    from mailsim.quiz import Quiz

    said = _said(executed)
    out = []
    for index, cell_marks in _by_cell(lesson).items():
        got = said.get(f"marks {index}")
        if got is None:
            out.append(
                f"{name}: cell {index}: its marks were not evaluated (a cell before failed?)"
            )
            continue
        for (_, how, text, _number), mark in zip(got, cell_marks, strict=True):
            if how == "error":
                out.append(f"{name}: cell {index}: {mark.expression!r} failed: {text}")
            elif not mark.stated.endswith(text):
                tail = mark.stated[-40:].replace("\n", " ")
                out.append(
                    f"{name}: cell {index}: the text says “…{tail}” but {mark.expression!r}"
                    f" gives {text!r}"
                )
    for cell in executed.cells:
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                which = next(t for t in tags if t.startswith("solution-"))
                out.append(f"{name}: {which} raised {errors[0]['ename']}: {errors[0]['evalue']}")
    for path in quizzes(lesson, folder):
        questions = Quiz.load(path).questions
        for i, how, text, value in said.get(f"quiz {path.name}", []):
            question = questions[i]
            if how == "error" or value is None:
                why = text if how == "error" else f"{text!r} is not a number"
                out.append(f"{path.name}: questions.{i}.from failed in {name}: {why}")
                continue
            if question.number is None:
                out.append(f"{path.name}: questions.{i}: `from` belongs to a number question")
            elif abs(value - question.number) > question.within:
                out.append(
                    f"{path.name}: questions.{i}: the answer is {question.number:g} but"
                    f" {question.source!r} gives {value:g} in {name}"
                )
    return out
