"""The quiz at the end of a lesson: a few questions, each answered with immediate feedback.

A teacher writes a quiz as YAML (``notebooks/quizzes/*.yaml``): multiple-choice questions,
where each wrong choice may say what misconception it reveals (``says``), and numeric
ones, with a tolerance (``within``), a unit the student may type or leave out, and the
wrong numbers a student is likely to give with what each misunderstands (``slips``). Every
question explains its answer (``why``). ``from`` holds a Python expression that the
lesson's tests evaluate in the lesson's kernel, so that an answer cannot drift away from
what the simulation shows; this module only keeps it.

In a notebook a quiz shows as widgets: pick or type an answer, press Check, read ✓ or ✗
and why. A wrong answer tells what is wrong with it; after two misses the answer is
shown, so no student stays stuck. Where no widget can run (an exported page) the quiz
shows as plain HTML, its answers folded away in ``<details>``.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mailsim import units
from mailsim.errors import InputError, Problem, ScenarioError, at_most_shown
from mailsim.model import _Model

MISSES_BEFORE_ANSWER = 2  # after the second wrong try the answer is shown, with why
CLASS = "mailsim-quiz"  # the static quiz's class: an exported page tells it by it (export.py)
_RIGHT, _WRONG = "#1a7f37", "#b3261e"  # GitHub's green, Material's red: readable on white


def _written(value: Any) -> Any:
    """A teacher's words, not empty. An unquoted ``No`` or ``4`` is read by YAML as a
    truth value or a number, which a choice could not show as written."""
    if isinstance(value, bool):
        raise ValueError("put the text in quotes: unquoted, YAML reads it as true or false")
    if isinstance(value, int | float):
        raise ValueError("put the text in quotes: unquoted, YAML reads it as a number")
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


Words = Annotated[str, BeforeValidator(_written)]


class _Text(_Model):
    model_config = ConfigDict(str_strip_whitespace=True)  # YAML's "ask: >" ends in a newline


class Choice(_Text):
    text: Words
    right: bool = False
    says: Words | None = Field(None, description="feedback for this wrong choice")


class Slip(_Text):
    """A wrong number a student is likely to give, and what it misunderstands."""

    number: float
    within: float = Field(0, ge=0)
    says: Words


class Question(_Text):
    """A multiple-choice question (``choices``) or a numeric one (``number``)."""

    ask: Words
    choices: list[Choice] | None = None
    number: float | None = None
    within: float = Field(0, ge=0, description="accepted distance from the number")
    unit: Words | None = Field(None, description="the number's unit; typing it is optional")
    why: Words
    source: str | None = Field(None, alias="from", description="the answer, computed")
    slips: list[Slip] = Field(
        default_factory=list, description="wrong numbers likely given, each with its feedback"
    )

    @field_validator("choices")
    @classmethod
    def _one_right(cls, choices: list[Choice] | None) -> list[Choice] | None:
        if choices is None:
            return None
        if len(choices) < 2:
            raise ValueError(f"give at least two choices, found {len(choices)}")
        right = sum(c.right for c in choices)
        if right != 1:
            raise ValueError(f"exactly one choice must be right, found {right}")
        texts = [c.text for c in choices]
        if len(set(texts)) < len(texts):
            raise ValueError("two choices say the same: a student could not tell them apart")
        return choices

    @model_validator(mode="after")
    def _one_kind(self) -> Question:
        if self.choices is not None and self.number is not None:
            raise ValueError("give either choices or number, not both")
        if self.choices is None and self.number is None:
            raise ValueError("give choices (multiple choice) or number (a numeric answer)")
        if self.choices is not None and self.model_fields_set & {"within", "unit", "slips"}:
            raise ValueError("within, unit and slips belong to a number question, not to choices")
        return self

    def shown(self) -> list[Choice]:
        """The choices in the order a student sees them: mixed by a hash of their words,
        the same on every run, so that the right one is not where its author put it
        (first, as often as not)."""

        def mixed(choice: Choice) -> bytes:
            return hashlib.sha256(f"{self.ask}\n{choice.text}".encode()).digest()

        return sorted(self.choices or [], key=mixed)

    @property
    def answer(self) -> str:
        """The right answer as a student would write it: the choice, or number and unit."""
        if self.choices is not None:
            return next(c.text for c in self.choices if c.right)
        return " ".join([_spelt(self.number or 0), *([self.unit] if self.unit else [])])


@dataclass(frozen=True)
class Feedback:
    """What a Check says: right or not, and the words shown to the student."""

    right: bool
    text: str


@dataclass
class Tally:
    """One student's tries: misses per question, and how each first try went."""

    misses: dict[int, int] = field(default_factory=dict)
    first: dict[int, bool] = field(default_factory=dict)

    def score(self, questions: int) -> str:
        return f"{sum(self.first.values())} of {questions} right at the first try"


class Quiz(_Text):
    """A quiz file's questions, and one student's tries at them (``check``)."""

    title: Words = "Check your understanding"
    questions: list[Question]
    _tally: Tally = PrivateAttr(default_factory=Tally)

    @field_validator("questions")
    @classmethod
    def _some(cls, questions: list[Question]) -> list[Question]:
        if not questions:
            raise ValueError("a quiz needs at least one question")
        return questions

    @classmethod
    def load(cls, path: str | Path) -> Quiz:
        """A quiz file, validated; an InputError naming every problem with its key."""
        from mailsim.files import read_text

        return cls.loads(read_text(path), str(path))

    @classmethod
    def loads(cls, text: str, name: str = "<quiz>") -> Quiz:
        from mailsim.problems import problem_of
        from mailsim.scenario import _Lines, _lines, _parse

        try:
            data, tree = _parse(text, name)
        except ScenarioError as exc:  # the YAML itself: same words as for a scenario
            raise InputError(exc.problems) from None
        if not isinstance(data, dict):
            raise InputError([Problem(name, "", "a quiz is a mapping: title and questions")])
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            lines = _Lines(lambda: _lines(tree))
            problems = [problem_of(err, name, lines, data, cls) for err in exc.errors()[:100]]
            raise InputError(at_most_shown(problems, exc.error_count(), name)) from None

    def check(self, index: int, answer: str | None) -> Feedback:
        """The feedback on ``answer`` (a choice's text, or a number as typed) to question
        ``index``, counted among this quiz's tries."""
        return judge(self.questions[index], index, answer, self._tally)

    def widget(self) -> Any:
        """The quiz as ipywidgets, with its own tally: per question the text, the
        choices (none picked) or a box for the number, a Check button and a line of
        feedback; the score at the bottom. All it shows is in the widgets' values."""
        import ipywidgets as w

        tally = Tally()
        score = w.HTML()
        parts: list[Any] = [w.HTML(f"<h4>{_inline(self.title)}</h4>")]
        for i, question in enumerate(self.questions):
            if question.choices is not None:
                options = [(_plain(c.text), c.text) for c in question.shown()]
                answer: Any = w.RadioButtons(
                    options=options, value=None, layout=w.Layout(width="auto")
                )
            else:
                unit = f" (in {question.unit})" if question.unit else ""
                answer = w.Text(placeholder=f"a number{unit}")
            press = w.Button(description="Check")
            said = w.HTML()

            def clicked(_: Any, i: int = i, answer: Any = answer, said: Any = said) -> None:
                feedback = judge(self.questions[i], i, answer.value, tally)
                said.value = _shown(feedback)
                if tally.first:
                    score.value = f"<b>{tally.score(len(self.questions))}</b>"

            press.on_click(clicked)
            ask = w.HTML(f"<p><b>{i + 1}.</b> {_inline(question.ask)}</p>")
            parts.append(w.VBox([ask, answer, w.HBox([press, said])]))
        return w.VBox([*parts, score])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """In a notebook: the widget, and the static HTML for a page without widgets."""
        bundle = {"text/plain": str(self), "text/html": self.html()}
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return bundle
        return {**self.widget()._repr_mimebundle_(), **bundle}

    def html(self) -> str:
        """The quiz as HTML without script: each answer and why inside ``<details>``."""
        items = []
        for question in self.questions:
            if question.choices is not None:
                asked = "".join(f"<li>{_inline(c.text)}</li>" for c in question.shown())
                asked = f'<ol type="a">{asked}</ol>'
            else:
                unit = f" {_inline(question.unit)}" if question.unit else ""
                asked = f"<p>Your answer: ____________{unit}</p>"  # room to write on a print
            items.append(
                f"<li><p>{_inline(question.ask)}</p>{asked}<details><summary>Answer</summary>"
                f"<p><b>{_inline(question.answer)}</b></p><p>{_inline(question.why)}</p>"
                "</details></li>"
            )
        title = f"<h4>{_inline(self.title)}</h4>"
        return f'<div class="{CLASS}">{title}<ol>{"".join(items)}</ol></div>'

    def __str__(self) -> str:
        lines = [self.title, ""]
        for n, question in enumerate(self.questions, 1):
            lines.append(f"{n}. {question.ask}")
            if question.choices is not None:
                lines += [f"   {chr(97 + k)}) {c.text}" for k, c in enumerate(question.shown())]
            else:
                lines.append("   (a number" + (f", in {question.unit})" if question.unit else ")"))
        return "\n".join(lines)

    def key(self) -> str:
        """The answer key as Markdown, for the teacher's guide."""
        parts = [f"### Answer key: {self.title}"]
        for n, question in enumerate(self.questions, 1):
            accepted = ""
            if question.within and question.number is not None:
                low, high = question.number - question.within, question.number + question.within
                accepted = f" (accepted: {_spelt(low)} to {_spelt(high)})"
            parts += [f"{n}. {question.ask}",
                      f"   **Answer:** {question.answer}{accepted}",
                      f"   {question.why}"]  # fmt: skip
        return "\n\n".join(parts) + "\n"


def judge(question: Question, index: int, answer: str | None, tally: Tally) -> Feedback:
    """The feedback on one try. No choice picked, or no number found in what was typed,
    asks again and counts no try."""
    if question.choices is not None:
        if answer is None:
            return Feedback(False, "Pick one of the answers first.")
        chosen = next((c for c in question.choices if c.text == answer), None)
        if chosen is None:
            raise ValueError(f"{answer!r} is not one of question {index}'s choices")
        right, wrong = chosen.right, chosen.says or "Look again."
    else:
        value = number_in(answer or "", question.unit)
        if value is None:
            unit = f" (in {question.unit})" if question.unit else ""
            return Feedback(False, f"Write your answer as a number{unit}, e.g. 12 or 2.5.")
        target = question.number or 0.0
        slack = question.within + 1e-9 * max(1.0, abs(target))  # 0.1 + 0.2 is 0.3 here
        right = abs(value - target) <= slack
        wrong = "That is too high." if value > target else "That is too low."
        slip = next((x for x in question.slips if abs(value - x.number) <= x.within + 1e-9), None)
        if slip is not None:
            wrong = slip.says
    tally.first.setdefault(index, right)
    if right:
        return Feedback(True, f"✓ Right. {question.why}")
    tally.misses[index] = tally.misses.get(index, 0) + 1
    text = f"✗ Not quite. {wrong}"
    if tally.misses[index] >= MISSES_BEFORE_ANSWER:
        text += f" The answer: {question.answer}. {question.why}"
    return Feedback(False, text)


_NUMBER = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(.*)")
# Units as a student spells them out: "5 minutes", "4 mins 50 secs".
_WORDS = {"millisecond": "ms", "second": "s", "sec": "s", "minute": "min", "min": "min",
          "hour": "h", "hr": "h", "day": "d"}  # fmt: skip
_WORD = re.compile(rf"(?<=[\d\s])({'|'.join(_WORDS)})s?\b", re.IGNORECASE)
_CONVERTED = (
    (units.DURATION_UNITS, units.parse_duration),
    (units.SIZE_UNITS, units.parse_size),
    (units.RATE_UNITS, units.parse_rate),
)


def number_in(text: str, unit: str | None) -> float | None:
    """The number a student typed, in ``unit``: "5", "5.0", "5,0" (a decimal comma),
    "5 min", "5min" or "5 minutes"; another unit of time, size or rate is converted ("300 s",
    "4 min 50 s" for min). None when there is no such number."""
    text = re.sub(r"(?<=\d),(?=\d)", ".", text.strip())
    text = _WORD.sub(lambda word: _WORDS[word[1].lower()], text)
    match = _NUMBER.fullmatch(text)
    value: float | None = None
    if match and (not match[2] or (unit and _same(match[2], unit))):
        value = float(match[1])
    elif unit and match:  # another unit than the question's, if one of the same kind
        for table, parse in _CONVERTED:
            if unit in table:
                try:
                    value = parse(text) / table[unit]
                except ValueError:
                    return None
    return value if value is not None and math.isfinite(value) else None


def _same(written: str, unit: str) -> bool:
    """Whether a student wrote the question's unit: case aside, and for a unit that is no
    unit of measure also in the singular or the plural ("hop", "HOPS" for hops)."""
    if written.casefold() == unit.casefold():
        return True
    if any(unit in table for table, _ in _CONVERTED):
        return False  # "m" is not "ms"
    return unit.casefold() in (f"{written}s".casefold(), written.casefold().removesuffix("s"))


def _spelt(number: float) -> str:
    """5.0 → "5", 0.25 → "0.25": as a person writes a number."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _inline(text: str) -> str:
    """Text as HTML, as Markdown writes it inline: `code` in backticks, *emphasis*."""
    coded = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
    return re.sub(r"\*([^*\s][^*]*)\*", r"<em>\1</em>", coded)


def _plain(text: str) -> str:
    """Text where no markup is shown (a radio button's label): without the marks."""
    return re.sub(r"\*([^*\s][^*]*)\*", r"\1", text.replace("`", ""))


def _shown(feedback: Feedback) -> str:
    colour = _RIGHT if feedback.right else _WRONG if feedback.text.startswith("✗") else "inherit"
    return f'<span style="color:{colour}">{_inline(feedback.text)}</span>'
