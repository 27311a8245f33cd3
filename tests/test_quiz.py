"""The lessons' quizzes: the file format and its problems, the feedback on each try, the
widget's callbacks (no front end needed to run them), the static HTML and the answer key."""

from __future__ import annotations

import sys
import textwrap

import pytest

from mailsim.errors import InputError
from mailsim.quiz import Feedback, Quiz, number_in
from tests.conftest import ROOT

EXAMPLE = ROOT / "tests" / "data" / "quiz.yaml"
RIGHT_1 = "The school's server has taken the message and will pass it on"
WHY_1 = (
    "Accepted is not delivered is not read: with `250` the school's server takes"
    " responsibility for the message. It reaches Bob's mailbox about a second later, and"
    " Bob can read it only once his mail program has fetched it."
)
WHY_3 = (
    "4 min 50 s: the message is in Bob's mailbox about a second after Alice sends it, then"
    " waits there for his program's next check (every 5 minutes: `poll: 5min`). The"
    " servers push the message; Bob's program pulls it."
)


@pytest.fixture
def quiz() -> Quiz:
    return Quiz.load(EXAMPLE)


def problems(text: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        Quiz.loads(textwrap.dedent(text), "quizzes/x.yaml")
    return [str(p) for p in caught.value.problems]


# --- the file ---------------------------------------------------------------------------


def test_the_example_quiz_loads(quiz):
    assert quiz.title == "Check your understanding"
    assert [q.choices is not None for q in quiz.questions] == [True, False, False, True]
    assert [q.answer for q in quiz.questions] == [
        RIGHT_1,
        "4 hops",
        "5 min",
        "Which server takes mail for home.example, and that server's address",
    ]
    assert quiz.questions[0].why == WHY_1  # a folded text, without its final line break
    assert (quiz.questions[2].within, quiz.questions[2].unit) == (0.5, "min")
    assert quiz.questions[2].source == "round((copy.retrieved_at - copy.submitted_at) / 60)"


def test_the_example_numbers_are_those_of_the_lessons_run(classroom, classroom_result, quiz):
    """Each ``from``, evaluated with the names of lesson 1's cells, gives the answer."""
    names = {"scenario": classroom, "result": classroom_result,
             "copy": classroom_result.copy("m1")}  # fmt: skip
    computed = [eval(q.source, {}, names) for q in quiz.questions if q.source]
    assert computed == [4, 5]
    assert [q.number for q in quiz.questions if q.source] == [4, 5]


CHOICES = """\
    - text: x
      right: true
    - text: y
"""


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("questions:\n- ask: a?\n  choices:\n  - text: x\n  - text: y\n  why: w\n",
         ["quizzes/x.yaml:3: questions.0.choices: exactly one choice must be right, found 0"]),
        ("questions:\n- ask: a?\n  choices:\n  - {text: x, right: true}\n"
         "  - {text: y, right: true}\n  why: w\n",
         ["quizzes/x.yaml:3: questions.0.choices: exactly one choice must be right, found 2"]),
        (f"questions:\n- ask: a?\n  number: 3\n  choices:\n{CHOICES}  why: w\n",
         ["quizzes/x.yaml:2: questions.0: give either choices or number, not both"]),
        ("questions:\n- ask: a?\n  why: w\n",
         ["quizzes/x.yaml:2: questions.0: give choices (multiple choice) or number"
          " (a numeric answer)"]),
        ("title: t\nquestions:\n- ask: a?\n  number: 3\n  wihtin: 1\n  why: w\n",
         ["quizzes/x.yaml:5: questions.0.wihtin: unknown key; did you mean 'within'?"]),
        ("titel: t\nquestions:\n- {ask: a?, number: 3, why: w, hint: h}\n",
         ["quizzes/x.yaml:3: questions.0.hint: unknown key; did you mean 'within'?",
          "quizzes/x.yaml:1: titel: unknown key; did you mean 'title'?"]),
        ("questions:\n- {ask: a?, number: 3, why: w, zzz: h}\n",
         ["quizzes/x.yaml:2: questions.0.zzz: unknown key (allowed: ask, choices, number,"
          " within, unit, why, from, slips)"]),
        ("questions:\n- ask: a?\n  choices:\n  - {text: Yes, right: true}\n  - text: 4\n"
         "  why: w\n",
         ["quizzes/x.yaml:4: questions.0.choices.0.text: put the text in quotes: unquoted,"
          " YAML reads it as true or false (got True)",
          "quizzes/x.yaml:5: questions.0.choices.1.text: put the text in quotes: unquoted,"
          " YAML reads it as a number (got 4)"]),
        ("questions:\n- ask: [a\n", ["quizzes/x.yaml:3: YAML syntax: did not find expected ',' or ']'"]),
        ("- a\n- b\n", ["quizzes/x.yaml: a quiz is a mapping: title and questions"]),
        ("", ["quizzes/x.yaml: a quiz is a mapping: title and questions"]),
        ("questions: []\n", ["quizzes/x.yaml:1: questions: a quiz needs at least one question"]),
        ("questions:\n- {ask: a?, choices: [{text: x, right: true}], why: w}\n",
         ["quizzes/x.yaml:2: questions.0.choices: give at least two choices, found 1"]),
        ("questions:\n- {ask: a?, choices: [{text: x, right: true}, {text: x}], why: w}\n",
         ["quizzes/x.yaml:2: questions.0.choices: two choices say the same: a student could"
          " not tell them apart"]),
        (f"questions:\n- ask: a?\n  unit: s\n  choices:\n{CHOICES}  why: w\n",
         ["quizzes/x.yaml:2: questions.0: within, unit and slips belong to a number question,"
          " not to choices"]),
        ("questions:\n- {ask: a?, number: 2, within: -1, why: w}\n",
         ["quizzes/x.yaml:2: questions.0.within: must not be negative (got -1)"]),
        ("questions:\n- {ask: a?, number: 2}\n- {ask: '', number: 2, why: w}\n",
         ["quizzes/x.yaml:2: questions.0.why: required key is missing",
          "quizzes/x.yaml:3: questions.1.ask: must not be empty (got '')"]),
    ],
)  # fmt: skip
def test_every_problem_names_the_file_the_line_and_the_key(text, said):
    assert problems(text) == said


def test_a_missing_file_is_one_problem(tmp_path):
    with pytest.raises(InputError) as caught:
        Quiz.load(tmp_path / "nothing.yaml")
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].file == str(tmp_path / "nothing.yaml")


# --- feedback ---------------------------------------------------------------------------


def test_a_right_choice_says_why(quiz):
    assert quiz.check(0, RIGHT_1) == Feedback(True, f"✓ Right. {WHY_1}")


def test_a_wrong_choice_says_its_own_words_then_reveals_the_answer(quiz):
    assert quiz.check(0, "Bob has read her message") == Feedback(
        False,
        "✗ Not quite. No: 250 comes from her own school's server. Bob's program has not"
        " even fetched it yet.",
    )
    assert quiz.check(0, None) == Feedback(False, "Pick one of the answers first.")  # no try
    assert quiz.check(0, "The message is in Bob's mailbox") == Feedback(
        False,
        "✗ Not quite. Not yet: the school's server still has to hand it to Bob's server."
        f" The answer: {RIGHT_1}. {WHY_1}",
    )


def test_a_wrong_choice_without_words_says_look_again():
    quiz = Quiz.loads(
        "questions:\n- {ask: a?, choices: [{text: x, right: true}, {text: y}], why: w}"
    )
    assert quiz.check(0, "y") == Feedback(False, "✗ Not quite. Look again.")
    assert quiz.check(0, "y") == Feedback(False, "✗ Not quite. Look again. The answer: x. w")
    with pytest.raises(ValueError, match="'z' is not one of question 0's choices"):
        quiz.check(0, "z")


def test_a_likely_wrong_number_says_what_it_misunderstands():
    """A slip: 110 s counts from Send where the question counts from the start."""
    quiz = Quiz.loads(textwrap.dedent("""\
        questions:
        - ask: When, from the start?
          number: 120
          within: 1
          unit: s
          slips: [{number: 110, within: 1, says: That counts from Send.}]
          why: w
        """))  # fmt: skip
    assert quiz.check(0, "110") == Feedback(False, "✗ Not quite. That counts from Send.")
    assert quiz.check(0, "100").text == "✗ Not quite. That is too low. The answer: 120 s. w"
    with pytest.raises(InputError, match="slips belong to a number question"):
        Quiz.loads("questions:\n- {ask: a?, choices: [{text: x, right: true}, {text: y}],"
                   " slips: [{number: 1, says: s}], why: w}")  # fmt: skip


@pytest.mark.parametrize(
    "typed",
    ["5", "5.0", "5,0", "5 min", "5min", " 5 MIN ", "5 minutes", "4.5", "5,5", "300 s",
     "4 min 50 s", "4 minutes 50 seconds", "0.08h"],
)  # fmt: skip
def test_a_number_is_right_in_every_form_within_its_tolerance(quiz, typed):
    assert quiz.check(2, typed) == Feedback(True, f"✓ Right. {WHY_3}")


@pytest.mark.parametrize(
    ("typed", "verdict"),
    [("4.4", "too low"), ("5.6", "too high"), ("4 min", "too low"), ("1 h", "too high"),
     ("-5", "too low"), ("290 ms", "too low")],
)  # fmt: skip
def test_a_wrong_number_says_too_high_or_too_low(quiz, typed, verdict):
    assert quiz.check(2, typed) == Feedback(False, f"✗ Not quite. That is {verdict}.")


def test_an_exact_number_takes_no_other(quiz):
    assert quiz.check(1, "4 hops").right
    assert quiz.check(1, "4hop").right
    assert quiz.check(1, "4.01") == Feedback(False, "✗ Not quite. That is too high.")


@pytest.mark.parametrize("typed", ["", "five", "5 km", "5 min later", "1e400", "5 s s", "–5"])
def test_what_is_no_number_asks_again_and_counts_no_try(quiz, typed):
    asked = Feedback(False, "Write your answer as a number (in min), e.g. 12 or 2.5.")
    assert quiz.check(2, typed) == asked
    assert quiz.check(2, "7") == Feedback(False, "✗ Not quite. That is too high.")
    assert quiz.check(2, typed) == asked
    assert quiz.check(2, "1").text == f"✗ Not quite. That is too low. The answer: 5 min. {WHY_3}"


def test_the_second_miss_of_a_number_reveals_it_and_a_right_try_stays_right(quiz):
    assert quiz.check(1, "3").text == "✗ Not quite. That is too low."
    assert quiz.check(1, "5").text == (
        "✗ Not quite. That is too high. The answer: 4 hops. Alice's program → the school's"
        " server (submission), the school's server → Bob's MX (SMTP), the MX → Bob's mailbox"
        " server (LMTP), and Bob's program fetching it (POP3)."
    )
    assert quiz.check(1, "4").right


@pytest.mark.parametrize(
    ("typed", "unit", "value"),
    [("12", None, 12.0), ("-2,5", None, -2.5), (".5", None, 0.5), ("12 ms", None, None),
     ("2 s", "ms", 2000.0), ("1.5MB", "KB", 1500.0), ("2 Mbps", "kbps", 2000.0),
     ("3 hops", "hops", 3.0), ("1 hop", "hops", 1.0), ("3 Steps", "step", 3.0),
     ("5 m", "ms", None), ("5 ms", "s", 0.005), ("1,000", None, 1.0)],
)  # fmt: skip
def test_numbers_as_students_type_them(typed, unit, value):
    assert number_in(typed, unit) == value


# --- the widget ---------------------------------------------------------------------------


def parts(widget):
    """(title, [(ask, answer, button, feedback)], score) of a quiz's widget."""
    title, *questions, score = widget.children
    rows = []
    for question in questions:
        ask, answer, line = question.children
        button, feedback = line.children
        rows.append((ask, answer, button, feedback))
    return title, rows, score


def test_the_widget_checks_each_question_and_keeps_the_score(quiz):
    import ipywidgets as w

    title, rows, score = parts(quiz.widget())
    assert title.value == "<h4>Check your understanding</h4>"
    assert [type(r[1]) for r in rows] == [w.RadioButtons, w.Text, w.Text, w.RadioButtons]
    ask, choices, button, feedback = rows[0]
    assert ask.value == (
        "<p><b>1.</b> The school&#x27;s server answered <code>250 2.0.0 Ok: queued as …</code>."
        " What does that tell Alice?</p>"
    )
    assert choices.value is None  # nothing picked for the student
    # Shown mixed by a hash of their words, the same on every run: not as written.
    assert [label for label, _ in choices.options] == [
        "Bob has read her message",
        "The message is in Bob's mailbox",
        RIGHT_1,
    ]
    assert rows[2][1].placeholder == "a number (in min)"
    assert score.value == ""
    button.click()
    assert feedback.value == '<span style="color:inherit">Pick one of the answers first.</span>'
    assert score.value == ""  # no try yet
    choices.value = "The message is in Bob's mailbox"
    button.click()
    assert feedback.value == (
        '<span style="color:#b3261e">✗ Not quite. Not yet: the school&#x27;s server still has'
        " to hand it to Bob&#x27;s server.</span>"
    )
    assert score.value == "<b>0 of 4 right at the first try</b>"
    choices.value = RIGHT_1
    button.click()
    assert feedback.value.startswith('<span style="color:#1a7f37">✓ Right. Accepted is not')
    assert "with <code>250</code> the school" in feedback.value
    _, number, press, said = rows[2]
    number.value = "4 min 50 s"
    press.click()
    assert said.value.startswith('<span style="color:#1a7f37">✓ Right. 4 min 50 s: the')
    rows[3][1].value = "Which server takes mail for home.example, and that server's address"
    rows[3][2].click()
    assert score.value == "<b>2 of 4 right at the first try</b>"
    assert quiz.check(1, "4").right  # the widget keeps its own tally, apart from check()
    assert score.value == "<b>2 of 4 right at the first try</b>"


def test_a_second_widget_starts_afresh(quiz):
    _, first, _ = parts(quiz.widget())
    first[1][1].value = "9"
    first[1][2].click()
    first[1][2].click()
    assert "The answer: 4 hops." in first[1][3].value
    _, second, score = parts(quiz.widget())
    second[1][1].value = "9"
    second[1][2].click()
    assert second[1][3].value == '<span style="color:#b3261e">✗ Not quite. That is too high.</span>'
    assert score.value == "<b>0 of 4 right at the first try</b>"


def test_in_a_notebook_the_quiz_is_the_widget_with_html_for_a_page_without_it(quiz):
    bundle = quiz._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "application/vnd.jupyter.widget-view+json"}
    assert bundle["text/html"] == quiz.html()
    assert bundle["text/plain"] == str(quiz)


def test_without_ipywidgets_the_quiz_is_its_html(quiz, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    assert quiz._repr_mimebundle_() == {"text/plain": str(quiz), "text/html": quiz.html()}


# --- static forms -----------------------------------------------------------------------


def test_the_html_shows_every_question_and_folds_each_answer_away(quiz):
    page = quiz.html()
    assert "<script" not in page
    assert page.count("<details><summary>Answer</summary>") == 4
    for question in quiz.questions:
        assert question.ask.replace("'", "&#x27;").split("`")[0] in page
    assert (
        "<li><p>How many mail hops (handovers of the message from one computer to the next)"
        " take Alice&#x27;s message to Bob&#x27;s mail program?</p><p>Your answer: ____________ hops"
        "</p><details><summary>Answer</summary><p><b>4 hops</b></p>"
    ) in page
    assert '<ol type="a"><li>Bob has read her message</li>' in page


def test_the_html_escapes_what_the_teacher_wrote():
    quiz = Quiz.loads(
        "title: <b>\nquestions:\n- {ask: 'Is 1 < 2?', choices: [{text: '<yes>', right: true},"
        " {text: 'no'}], why: '&'}"
    )
    page = quiz.html()
    assert "<b>" not in page.replace("<b>&lt;yes&gt;</b>", "")
    assert "<h4>&lt;b&gt;</h4>" in page
    assert "<p>Is 1 &lt; 2?</p>" in page
    assert "<p>&amp;</p>" in page


def test_the_plain_text_for_a_terminal(quiz):
    assert str(quiz).splitlines()[:7] == [
        "Check your understanding",
        "",
        "1. The school's server answered `250 2.0.0 Ok: queued as …`. What does that tell Alice?",
        "   a) Bob has read her message",
        "   b) The message is in Bob's mailbox",
        f"   c) {RIGHT_1}",
        "2. How many mail hops (handovers of the message from one computer to the next) take"
        " Alice's message to Bob's mail program?",
    ]
    assert str(quiz).splitlines()[7:10] == [
        "   (a number, in hops)",
        "3. About how many minutes pass between Alice pressing Send and Bob's mail program"
        " fetching the message?",
        "   (a number, in min)",
    ]
    assert not any(q.why in str(quiz) for q in quiz.questions)  # a student's sheet: no answers


def test_the_answer_key_in_markdown(quiz):
    assert quiz.key() == textwrap.dedent(f"""\
        ### Answer key: Check your understanding

        1. The school's server answered `250 2.0.0 Ok: queued as …`. What does that tell Alice?

           **Answer:** {RIGHT_1}

           {WHY_1}

        2. How many mail hops (handovers of the message from one computer to the next) take Alice's message to Bob's mail program?

           **Answer:** 4 hops

           Alice's program → the school's server (submission), the school's server → Bob's MX (SMTP), the MX → Bob's mailbox server (LMTP), and Bob's program fetching it (POP3).

        3. About how many minutes pass between Alice pressing Send and Bob's mail program fetching the message?

           **Answer:** 5 min (accepted: 4.5 to 5.5)

           {WHY_3}

        4. Before relaying, the school's server asks DNS about `home.example`. What does it want to know?

           **Answer:** Which server takes mail for home.example, and that server's address

           The school's server knows nothing about home.example: the domain's MX record names the server that takes its mail (mx.home.example), and an A record gives that server's address.
        """)


def test_a_question_written_with_emphasis_shows_it_in_html_and_bare_on_a_button():
    quiz = Quiz.loads(
        "questions:\n"
        '  - ask: "Alice\'s phone says *Sent*. What has happened?"\n'
        "    choices:\n"
        '      - {text: "It is *accepted*", right: true}\n'
        '      - {text: "It is `read`"}\n'
        '    why: "*Sent* means `250`."\n',
        "q.yaml",
    )
    assert "says <em>Sent</em>. What" in quiz.html()
    assert "<em>Sent</em> means <code>250</code>." in quiz.html()
    radio = quiz.widget().children[1].children[1]
    assert radio.options == (("It is read", "It is `read`"), ("It is accepted", "It is *accepted*"))
    assert quiz.check(0, "It is *accepted*").right
