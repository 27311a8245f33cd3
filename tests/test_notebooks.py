"""The lessons of both tracks: each runs top to bottom in a fresh kernel within 30 s, once,
and in that run every number its text states is the simulation's, every hidden solution
runs and every quiz answer is the simulation's (mailsim.lessons). They are committed
without outputs; the school track's keep their code folded, their length to a period and
their words to a 15-year-old's; every lesson has a teacher's page whose word count and
timing are the lesson's."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from mailsim import lessons, notebooks
from mailsim.notebooks import has_outputs
from tests.conftest import ROOT

UNIVERSITY = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCHOOL = sorted((ROOT / "notebooks" / "school").glob("[0-9]*.ipynb"))  # not the glossary
NOTEBOOKS = UNIVERSITY + SCHOOL
GLOSSARY = ROOT / "notebooks" / "school" / "glossary.ipynb"
LESSONS = ["01-first-email", "02-dns-and-mx", "03-when-things-fail", "04-what-if-latency",
           "05-speed-and-load", "06-security", "07-read-a-real-email", "08-packets-on-the-wire"]  # fmt: skip
SCHOOL_LESSONS = ["01-first-email", "02-pop-imap-push", "03-dns", "04-failures", "05-security",
                  "06-spoofing"]  # fmt: skip
GUIDES = ROOT / "docs" / "teachers"
SCHOOL_WORDS, SCHOOL_MINUTES = 900, 45  # a lesson is one 45-minute period


def name(path: Path) -> str:
    return str(path.relative_to(ROOT / "notebooks").with_suffix(""))


def track(path: Path) -> str:
    return "school" if path.parent.name == "school" else "university"


def guide(path: Path) -> Path:
    return GUIDES / track(path) / f"{path.stem}.md"


def read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def test_every_lesson_is_there():
    assert [p.stem for p in UNIVERSITY] == LESSONS
    assert [p.stem for p in SCHOOL] == SCHOOL_LESSONS


@pytest.mark.parametrize("path", [*NOTEBOOKS, GLOSSARY], ids=name)
def test_committed_without_outputs(path):
    assert not has_outputs(path), f"{name(path)} has outputs: run `make strip-notebooks`"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_runs_within_30_seconds_and_its_numbers_are_the_simulations(path):
    """One run per lesson: a failing cell fails the test; the time counts the lesson's
    own cells as the kernel timed them (not the kernel's start, nor the checks' cells run
    in the same kernel); then what the checks found, one line per problem."""
    lesson = read(path)
    checked = lessons.instrumented(lesson, path.parent)
    # allow_errors: the checks' cells report their errors themselves
    notebooks.execute(checked, path.parent, timeout=60, allow_errors=True)
    took = _spent(checked, checks=False)
    failed = [
        (i, o)
        for i, cell in enumerate(checked.cells)
        if not {"probe", "solution"} & set(cell.metadata.get("tags", []))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not failed, (
        f"{name(path)}: cell {failed[0][0]} raised {failed[0][1]['ename']}: {failed[0][1]['evalue']}"
    )
    assert 0 < took <= 30, f"{name(path)} took {took:.1f} s"
    assert lessons.problems(name(path), lesson, checked, path.parent) == []


def _spent(executed, checks: bool) -> float:
    """Seconds the lesson's own cells took (or, with ``checks``, the cells the test added),
    from the kernel's timings: from a cell's start to its reply, neither the kernel's
    start nor the messages' way counted."""
    spent = 0.0
    for cell in executed.cells:
        if bool({"probe", "solution"} & set(cell.metadata.get("tags", []))) == checks:
            timing = cell.metadata.get("execution", {})
            start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
            if start and end:
                spent += (_when(end) - _when(start)).total_seconds()
    return spent


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.mark.timeout(60)
def test_a_notebook_runs_in_its_folder_on_unix_sockets_that_go_with_it(tmp_path: Path):
    """Over TCP, another process's kernel can take a port between its choice and its bind
    (a kernel died so in a parallel run); sockets in a folder of their own cannot collide."""
    import nbformat

    book = nbformat.v4.new_notebook()
    book.cells.append(nbformat.v4.new_code_cell(
        "import json, os\nfrom ipykernel.connect import get_connection_file\n"
        "said = json.load(open(get_connection_file()))\n"
        "print(json.dumps([said['transport'], said['ip'], os.getcwd(), os.environ['LESSON']]))"
    ))  # fmt: skip
    notebooks.execute(book, tmp_path, timeout=30, env={**os.environ, "LESSON": "one"})
    transport, ip, folder, lesson = json.loads(book.cells[0].outputs[0]["text"])
    assert (transport, folder, lesson) == ("ipc", str(tmp_path), "one")
    assert Path(ip).parent.name.startswith("mailsim-kernel-")
    assert not Path(ip).parent.exists()  # the sockets went with the kernel


def test_no_solution_runs_with_run_all():
    """Solutions are fenced code inside <details>: a code cell never holds one."""
    for path in NOTEBOOKS:
        for i, cell in enumerate(read(path).cells):
            if cell.cell_type == "code":
                assert not cell.source.lstrip().lower().startswith("# solution"), (
                    f"{name(path)}: cell {i} is a solution: put it in the <details> block"
                )


@pytest.mark.parametrize("path", SCHOOL, ids=name)
def test_a_school_lesson_folds_its_code_and_fits_a_period(path):
    lesson = read(path)
    for i, cell in enumerate(lesson.cells):
        if cell.cell_type == "code":
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, f"cell {i}"
            assert "hide-input" in cell.metadata.get("tags", []), f"cell {i}"
        else:
            found = re.search(r"\bRFC\s*\d+", lessons.MARK.sub("", cell.source))
            assert found is None, f"cell {i} cites {found[0]}: the school track cites no RFC"
    assert lessons.words(lesson, path.parent) <= SCHOOL_WORDS  # its quiz too
    assert "Quiz.load(" in lesson.cells[-1].source  # it ends with its quiz
    assert any("activity import" in c.source for c in lesson.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_its_teachers_page_states_its_words_and_its_time(path):
    page = guide(path)
    assert page.is_file(), f"{name(path)} has no teacher's page {page.relative_to(ROOT)}"
    text = page.read_text(encoding="utf-8")
    words = re.search(r"^\*\*Words:\*\* (\d[\d,]*)$", text, re.M)
    minutes = re.search(r"^\*\*Time:\*\* (\d+) min$", text, re.M)
    assert words, f"{page.name}: give a line **Words:** N"
    assert minutes, f"{page.name}: give a line **Time:** N min"
    stated, counted = int(words[1].replace(",", "")), lessons.words(read(path), path.parent)
    assert stated == counted, f"{page.name}: words"
    plan = re.search(r"^## Plan\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert plan, f"{page.name}: a ## Plan table, one row per part: | minutes | what |"
    parts = [int(m) for m in re.findall(r"^\| (\d+) \|", plan[1], re.M)]
    assert sum(parts) == int(minutes[1]), f"{page.name}: the plan adds up to {sum(parts)} min"
    if track(path) == "school":
        assert int(minutes[1]) <= SCHOOL_MINUTES
    index = (GUIDES / "README.md").read_text(encoding="utf-8")
    row = f"]({track(path)}/{path.stem}.md) | {minutes[1]} min | {words[1]} |"
    assert row in index, f"docs/teachers/README.md: its row for {name(path)} says otherwise"


def test_every_glossary_link_of_the_school_track_lands_on_a_word():
    """Links are to glossary.ipynb#word: a notebook, which Voilà shows (it refuses .md),
    opened in a new tab: going back would run the lesson again and lose its answers."""
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', read(GLOSSARY).cells[0].source))
    for path in SCHOOL:
        for cell in read(path).cells:
            assert not re.search(r"\]\((?:\.\./)?glossary", cell.source), (
                f"{name(path)}: a Markdown link to the glossary opens in the lesson's tab"
            )
            for target in re.findall(r'<a href="glossary\.ipynb#([\w-]+)" target="_blank">',
                                     cell.source):  # fmt: skip
                assert target in anchors, f"{name(path)}: #{target} is not in the glossary"
            assert "glossary.md" not in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_a_lessons_links_to_other_notebooks_land_on_one(path):
    """A link to the glossary or to another lesson names a notebook that is there (a
    link to a glossary.md that never existed once sent the lecturer nowhere)."""
    for cell in read(path).cells:
        if cell.cell_type != "markdown":
            continue
        for target in re.findall(r"""(?:href=["']|\]\()([^"')#]+\.(?:ipynb|md))""", cell.source):
            if not target.startswith("http"):
                assert (path.parent / target).is_file(), f"{name(path)}: {target} is not there"
