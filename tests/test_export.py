"""mailsim export: a lesson as one page that opens without a network — no script, no
remote stylesheet — its widgets drawn as they were last seen: the menu's choice, the
answer ticked, the feedback given."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from mailsim.cli import main
from mailsim.export import UNSAVED, static
from tests.conftest import ROOT, chromium


def _widget(model_id: str, name: str, **state) -> tuple[str, dict]:
    return model_id, {"model_name": name, "model_module": "@jupyter-widgets/controls",
                      "model_module_version": "2.0.0", "state": state}  # fmt: skip


def test_saved_widgets_are_drawn_as_they_were():
    states = dict([
        _widget("box", "VBoxModel", children=["IPY_MODEL_row", "IPY_MODEL_said", "IPY_MODEL_gone"]),
        _widget("row", "HBoxModel", children=["IPY_MODEL_menu", "IPY_MODEL_press", "IPY_MODEL_tick"]),
        _widget("menu", "DropdownModel", description="checks every", index=1,
                _options_labels=["5 minutes", "30 seconds"]),
        _widget("press", "ButtonModel", description="Check"),
        _widget("tick", "CheckboxModel", description="TLS", value=True),
        _widget("said", "HTMLModel", value="<b>1 of 1 goal met</b>"),
        _widget("pick", "RadioButtonsModel", index=0, _options_labels=["yes", "no"]),
    ])  # fmt: skip
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("box")
    view = "application/vnd.jupyter.widget-view+json"
    cell.outputs = [
        nbformat.v4.new_output("display_data", {view: {"model_id": "box"}, "text/plain": "VBox"}),
        nbformat.v4.new_output("display_data", {view: {"model_id": "pick"}}),
        nbformat.v4.new_output("display_data", {view: {"model_id": "lost"}, "text/html": "<p>as first shown</p>"}),
    ]  # fmt: skip
    nb.cells.append(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": states}}
    drawn = [o["data"] for o in static(nb).cells[0].outputs]
    assert drawn[0] == {"text/html": (
        "<div class='w-column'><div class='w-row'><span class='w-label'>checks every</span> "
        "<span class='w-field'>30 seconds ▾</span><span class='w-button'>Check</span>"
        "<div class='w-check'>☑ TLS</div></div><div class='w-html'><b>1 of 1 goal met</b>"
        f"</div>{UNSAVED}</div>"
    )}  # fmt: skip
    assert drawn[1] == {"text/html": "<div class='w-choices'><div>◉ yes</div><div>○ no</div></div>"}
    assert drawn[2] == {"text/html": "<p>as first shown</p>"}  # no state kept: its fallback
    assert "widgets" not in static(nb).metadata


@pytest.mark.timeout(180)
def test_a_lesson_exported_after_a_class_used_it_shows_what_they_did(tmp_path: Path, capsys):
    """A lesson of the school track's widgets, used (a value picked and checked, a quiz
    answered), then exported with its state: the page shows the grade and the feedback,
    loads nothing from anywhere, and keeps its folded code out."""
    lesson = tmp_path / "lesson.ipynb"
    nb = nbformat.v4.new_notebook()
    code = [
        "import mailsim\nfrom mailsim.activity import chooser\nfrom mailsim.quiz import Quiz",
        f"box = chooser({str(ROOT / 'scenarios/activities/faster-mail.yaml')!r}, "
        "'users[\"bob@home.example\"].poll', {'5 minutes': '5min', '30 seconds': '30s'}, 'every')\nbox",
        f"quiz = Quiz.load({str(ROOT / 'notebooks/quizzes/school-01-first-email.yaml')!r}).widget()\nquiz",
        "box.children[0].children[0].value = '30 seconds'\nbox.children[0].children[1].click()\n"
        "first = quiz.children[1]\nfirst.children[1].value = 'Her school\\'s mail server has accepted it and will pass it on'\n"
        "first.children[2].children[0].click()",
    ]
    for text in code:
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata = {"jupyter": {"source_hidden": True}, "tags": ["hide-input"]}
        nb.cells.append(cell)
    nbformat.write(nb, lesson)
    out = tmp_path / "page.html"
    assert main(["export", str(lesson), "-o", str(out), "--run"]) == 0
    assert (
        capsys.readouterr().out
        == f"wrote {out}: opens without a network; its widgets as they were saved\n"
    )
    page = out.read_text()
    # (nbconvert writes the drawn HTML back with double quotes and plain apostrophes)
    assert '<span class="w-field">30 seconds ▾</span>' in page
    assert "<td>✓</td><td>Bob has Alice's message within 60 s of her pressing Send</td>" \
        "<td>20.163 s</td>" in page  # fmt: skip
    assert "◉ Her school's mail server has accepted it and will pass it on" in page  # as picked
    assert "✓ Right. Accepted is not delivered is not read" in page
    assert "<script" not in page
    assert not re.search(r"(?:src|href)=[\"']https?://", page)
    assert "faster-mail.yaml" not in page  # the folded code stays out
    browser_path = chromium()  # and the page in a real browser: it asks for nothing
    from playwright.sync_api import sync_playwright

    asked = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=browser_path, args=["--no-sandbox"], headless=True
        )
        page_in = browser.new_page()
        page_in.on("request", lambda request: asked.append(request.url))
        page_in.goto(out.as_uri())
        shown = page_in.inner_text("body")
        browser.close()
    assert [url for url in asked if not url.startswith(("file:", "data:"))] == []
    assert "1 of 1 goal met" in shown


def test_export_names_a_missing_or_broken_lesson(tmp_path: Path, capsys):
    assert main(["export", str(tmp_path / "none.ipynb")]) == 2
    assert (
        capsys.readouterr().err
        == f"mailsim: {tmp_path / 'none.ipynb'}: no such lesson (a .ipynb file)\n"
    )
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert main(["export", str(broken)]) == 2
    assert capsys.readouterr().err.startswith(f"mailsim: {broken}: not a notebook: ")
    lesson = tmp_path / "x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), lesson)
    assert main(["export", str(lesson), "-o", str(lesson)]) == 2
    assert "is the lesson itself; give another name" in capsys.readouterr().err


def test_an_answer_behind_a_button_is_folded_under_its_words():
    """reveal's box: shown when the lesson ran, its output folded under the button's
    words; never shown, the button alone."""
    states = dict([
        _widget("box", "VBoxModel", children=["IPY_MODEL_press", "IPY_MODEL_out"],
                _dom_classes=["mailsim-reveal"]),
        _widget("press", "ButtonModel", description="I have guessed: show me"),
        _widget("out", "OutputModel", outputs=[{"output_type": "stream", "name": "stdout",
                                                "text": "4 hops\n"}]),
        _widget("idle", "VBoxModel", children=["IPY_MODEL_press", "IPY_MODEL_none"],
                _dom_classes=["mailsim-reveal"]),
        _widget("none", "OutputModel", outputs=[]),
    ])  # fmt: skip
    from mailsim.export import _Drawing

    drawing = _Drawing(states)
    assert drawing.draw("IPY_MODEL_box") == (
        "<details class='w-reveal'><summary>I have guessed: show me</summary>"
        "<pre>4 hops\n</pre></details>"
    )
    assert drawing.draw("IPY_MODEL_idle") == "<span class='w-button'>I have guessed: show me</span>"


@pytest.mark.timeout(180)
def test_an_exported_lesson_keeps_every_answer_folded(tmp_path: Path):
    """The page of a lesson run for export: a folded Markdown answer stays inside its
    <details> (nbconvert's image embedding used to close it before its text), a glossary
    link keeps its word and points to the glossary's page, an answer behind a button is
    folded under its words, and a quiz nobody answered shows its questions with each
    answer folded; in a real browser, none of the answers shows until opened."""
    (tmp_path / "quizzes").mkdir()
    (tmp_path / "quizzes" / "q.yaml").write_text(
        "title: Check\nquestions:\n- {ask: How many hops?, number: 4, why: Four hand-overs.}\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            'How many <a href="glossary.ipynb#hop" target="_blank">hops</a>? Guess.\n\n'
            "<details><summary><b>The answer</b></summary>\n\nThe message made **four**"
            " hops.\n\n</details>"
        ),
        nbformat.v4.new_code_cell(
            "from mailsim.reveal import reveal\nreveal(lambda: print('Bob read it at 290 s'))"
        ),
        nbformat.v4.new_code_cell("from mailsim.quiz import Quiz\nQuiz.load('quizzes/q.yaml')"),
    ]
    for cell in nb.cells[1:]:
        cell.metadata = {"jupyter": {"source_hidden": True}, "tags": ["hide-input"]}
    lesson = tmp_path / "lesson.ipynb"
    nbformat.write(nb, lesson)
    out = tmp_path / "lesson.html"
    assert main(["export", str(lesson), "-o", str(out), "--run"]) == 0
    page = out.read_text()
    assert re.search(
        r"<details><summary><b>The answer</b></summary>\s*<p>The message made <strong>four"
        r"</strong> hops.</p>\s*</details>",
        page,
    )
    assert '<a href="glossary.html#hop" target="_blank">hops</a>' in page
    assert re.search(
        r"<details class=\"w-reveal\"><summary>I have guessed: show me</summary>"
        r"<pre>Bob read it at 290 s\s*</pre></details>",
        page,
    )
    assert '<div class="mailsim-quiz">' in page
    assert "<details><summary>Answer</summary><p><b>4</b></p><p>Four hand-overs.</p>" in page
    assert "show_all" not in page  # the cell that pressed the buttons is not on the page
    browser_path = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=browser_path, args=["--no-sandbox"], headless=True
        )
        shown = browser.new_page()
        shown.goto(out.as_uri())
        hidden = ["The message made", "Bob read it at 290 s", "Four hand-overs."]
        assert [shown.get_by_text(words).is_visible() for words in hidden] == [False] * 3
        shown.locator("details.w-reveal > summary").click()
        assert shown.get_by_text("Bob read it at 290 s").is_visible()
        browser.close()


def test_no_lesson_holds_a_picture_in_its_text():
    """The export does not embed pictures of the Markdown (see mailsim.export): every
    picture of a lesson is an output, which the page holds whole."""
    lessons = sorted((ROOT / "notebooks").glob("**/*.ipynb"))
    assert len(lessons) >= 15
    pictured = [
        path.name
        for path in lessons
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "markdown" and re.search(r"!\[|<img\b", cell.source)
    ]
    assert pictured == []


def test_a_quiz_shows_its_folded_key_until_someone_answers_it():
    """A quiz's widgets with an empty score line: nobody checked an answer, and the page
    shows the quiz's own HTML, each answer folded; with a score, the widgets as left."""
    view = "application/vnd.jupyter.widget-view+json"
    fallback = '<div class="mailsim-quiz"><h4>Check</h4>…</div>'

    def exported(score: str) -> str:
        states = dict([
            _widget("quiz", "VBoxModel", children=["IPY_MODEL_title", "IPY_MODEL_score"]),
            _widget("title", "HTMLModel", value="<h4>Check</h4>"),
            _widget("score", "HTMLModel", value=score),
        ])  # fmt: skip
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("Quiz.load('q.yaml')")
        cell.outputs = [nbformat.v4.new_output(
            "display_data", {view: {"model_id": "quiz"}, "text/html": fallback}
        )]  # fmt: skip
        nb.cells.append(cell)
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": states}}
        return static(nb).cells[0].outputs[0]["data"]["text/html"]

    assert exported("") == fallback
    assert exported("<b>1 of 1 right</b>") == (
        "<div class='w-column'><div class='w-html'><h4>Check</h4></div>"
        "<div class='w-html'><b>1 of 1 right</b></div></div>"
    )


@pytest.mark.parametrize(
    ("link", "page"),
    [
        ('href="glossary.ipynb#hop"', 'href="glossary.html#hop"'),
        ("href='school/glossary.ipynb'", "href='school/glossary.html'"),
        ('href="../02-dns.ipynb"', 'href="../02-dns.html"'),
        # Not a lesson beside this one: left as it is.
        ('href="https://example.org/a.ipynb"', None),
        ('href="HTTPS://example.org/a.ipynb"', None),
        ('href="//cdn.example/a.ipynb"', None),
        ('href="file:///srv/a.ipynb"', None),
        ('href="mailto:a.ipynb"', None),
    ],
)
def test_only_links_to_notebooks_beside_the_lesson_point_to_their_pages(link, page):
    from mailsim.export import LESSON_LINK

    assert LESSON_LINK.sub(r"\1\2.html\3", link) == (page or link)
