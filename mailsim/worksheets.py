"""The lessons' worksheets, one printable A4 page each, built from the teachers' guides.

A guide (``docs/teachers/<track>/<lesson>.md``) ends its ``## Worksheet`` section with the
sheet itself, quoted (``> …``): the questions of the lesson with room to write. This
module takes that quote out of every guide, lays it out as a page (Markdown through
mistune, Jupyter's Markdown reader) and prints it to PDF with Chromium, the browser the
lessons' tests already drive — so the sheets are never edited twice, nor committed:

    python -m mailsim.worksheets docs/teachers out/worksheets    # or: make worksheets
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

# Large enough to write in by hand; a sheet that no longer fits one A4 page fails a test.
PAGE_CSS = """
@page { size: A4; margin: 18mm 18mm 16mm 18mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11.5pt; line-height: 1.5; }
h1 { font-size: 15pt; margin: 0 0 2mm 0; }
p.lesson { color: #555; margin: 0 0 5mm 0; font-size: 10pt; }
p { margin: 2mm 0; }
li { margin: 0 0 9mm 0; }  /* room to write under each question */
ol, ul { padding-left: 7mm; }
table { border-collapse: collapse; width: 100%; margin: 3mm 0; }
th, td { border: 1px solid #888; padding: 2mm 2.5mm; text-align: left; height: 11mm; }
th { height: auto; background: #eee; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 10pt; }
"""


@dataclass(frozen=True)
class Worksheet:
    """One lesson's sheet: where it comes from and its Markdown."""

    guide: Path
    title: str  # the guide's first heading, without "— teacher's guide …"
    text: str  # the quoted sheet, unquoted


def of(guide: Path) -> Worksheet | None:
    """The worksheet of one guide, or None when the guide has no ``## Worksheet`` quote."""
    text = guide.read_text(encoding="utf-8")
    heading = re.search(r"^# (.+)$", text, re.M)
    section = re.search(r"^## Worksheet\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if heading is None or section is None:
        return None
    quoted = [
        line[1:].removeprefix(" ") for line in section[1].splitlines() if line.startswith(">")
    ]
    if not quoted:
        return None
    title = heading[1].split(" — ")[0].strip()
    return Worksheet(guide, title, "\n".join(quoted).strip() + "\n")


def page(sheet: Worksheet, track: str) -> str:
    """The sheet as one HTML page: its first line (the title and a line for the name) as
    the heading, the rest as Markdown."""
    import mistune

    first, _, rest = sheet.text.partition("\n")
    heading = re.sub(r"\*\*", "", first).strip()
    body = mistune.create_markdown(plugins=["table"])(rest)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(sheet.title)}"
        f"</title><style>{PAGE_CSS}</style></head><body><h1>{html.escape(heading)}</h1>"
        f"<p class='lesson'>mailsim · {track} track · worksheet</p>{body}</body></html>"
    )


def guides(folder: Path) -> list[tuple[str, Worksheet]]:
    """(track, sheet) of every guide under ``folder`` (``school/``, ``university/``)."""
    found = []
    for path in sorted(folder.glob("*/*.md")):
        sheet = of(path)
        if sheet is not None:
            found.append((path.parent.name, sheet))
    return found


def build(folder: Path, out: Path, chromium: str | None = None) -> list[Path]:
    """Print every guide's worksheet under ``folder`` to ``out/<track>/<lesson>.pdf``."""
    from playwright.sync_api import sync_playwright

    browser_path = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise RuntimeError("printing the worksheets needs Chromium: apt-get install chromium")
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=flags, headless=True)
        try:
            tab = browser.new_page()
            for track, sheet in guides(folder):
                target = out / track / f"{sheet.guide.stem}.pdf"
                target.parent.mkdir(parents=True, exist_ok=True)
                tab.set_content(page(sheet, track), wait_until="load")
                tab.pdf(path=str(target), format="A4", prefer_css_page_size=True)
                written.append(target)
        finally:
            browser.close()
    return written


def pages(pdf: Path) -> int:
    """How many pages a PDF has (its page objects: Chromium writes them uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    folder, out = Path(argv[0]), Path(argv[1])
    if not folder.is_dir():
        print(f"{folder}: no such folder of teachers' guides", file=sys.stderr)
        return 2
    for path in build(folder, out):
        count = pages(path)
        print(f"{path}  ({count} page{'s' if count != 1 else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
