"""The worksheets: taken out of the teachers' guides, one printed A4 page each.

Printing needs Chromium from the distribution (`apt-get install chromium`): `make test`
installs it as root; without it this test fails under CI and is skipped elsewhere."""

from __future__ import annotations

from pathlib import Path

from mailsim import worksheets
from tests.conftest import ROOT, chromium

GUIDES = ROOT / "docs" / "teachers"


def test_every_guide_has_a_worksheet_with_its_lesson_title():
    found = worksheets.guides(GUIDES)
    pages = sorted(GUIDES.glob("*/*.md"))
    assert [sheet.guide for _, sheet in found] == pages
    for track, sheet in found:
        assert track in ("school", "university")
        first = sheet.text.splitlines()[0]
        assert first.startswith(f"**{sheet.title.split(' · ')[0]} · ")  # "**Lesson 2 · …"
        assert "Name:" in first


def test_the_sheet_is_the_quote_of_its_section(tmp_path: Path):
    guide = tmp_path / "01-x.md"
    guide.write_text(
        "# Lesson 1 · X — teacher's guide\n\n## Plan\n\n> not this\n\n## Worksheet\n\n"
        "Print it.\n\n> **Lesson 1 · X** Name: ____\n>\n> 1. Guess: ____\n\n## After\n\n> nor this\n"
    )
    sheet = worksheets.of(guide)
    assert sheet is not None
    assert (sheet.title, sheet.text) == (
        "Lesson 1 · X",
        "**Lesson 1 · X** Name: ____\n\n1. Guess: ____\n",
    )
    html = worksheets.page(sheet, "school")
    assert "<h1>Lesson 1 · X Name: ____</h1>" in html
    assert "<li>Guess: ____</li>" in html
    assert "<script" not in html
    (tmp_path / "02-y.md").write_text("# Lesson 2 · Y\n\n## Plan\n")
    assert worksheets.of(tmp_path / "02-y.md") is None


def test_each_worksheet_prints_on_one_page(tmp_path: Path):
    written = worksheets.build(GUIDES, tmp_path, chromium())
    assert [p.relative_to(tmp_path).with_suffix(".md") for p in written] == [
        p.relative_to(GUIDES) for p in sorted(GUIDES.glob("*/*.md"))
    ]
    for pdf in written:
        assert pdf.read_bytes().startswith(b"%PDF-")
        assert worksheets.pages(pdf) == 1, f"{pdf.name} runs over one page"
