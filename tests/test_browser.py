"""The lessons' widgets in a real browser: Voilà serves the notebook (its cells run in a
kernel, its widgets live), Debian's Chromium, driven by Playwright, clicks them and looks
at what is drawn — a figure the size of ours, not blank, at every click.

Chromium comes from the distribution (`apt-get install chromium`): `make test` installs it
as root; without it this test fails under CI and is skipped elsewhere, saying what to
install."""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

import mailsim
from tests.conftest import ROOT, chromium, free_port

# Flags for a closed network and a root user: no sandbox (root), no background fetches
# that would only be refused, a fresh profile.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
LOAD_SECONDS = 240  # Voilà runs every cell of the lesson before it shows the widgets

CHROMIUM = chromium()

if os.environ.get("CI"):
    import playwright.sync_api as playwright  # in CI a missing test extra fails the run
else:
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")


def _voila(notebook: str, folder: Path, out: IO[str]) -> tuple[subprocess.Popen, str]:
    """Voilà started and answering; its URL as it says it. The port asked for can be taken
    by another process before Voilà binds it: Voilà then takes the next one, and says so."""
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", notebook, "--no-browser", f"--port={free_port()}",
         "--Voila.ip=127.0.0.1", "--show_tracebacks=True",
         # Kernels on Unix sockets: no TCP port for another worker's kernel to take.
         "--KernelManager.transport=ipc"],
        cwd=folder, stdout=out, stderr=subprocess.STDOUT,
        env={**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
    )  # fmt: skip
    log = Path(out.name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        said = re.search(r"running at:\s*(http://127\.0\.0\.1:(\d+)/)", log.read_text("utf-8"))
        if said:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", int(said[2]))) == 0:
                    return server, said[1]
        time.sleep(0.2)
    server.terminate()
    server.wait(timeout=30)
    raise AssertionError(f"Voilà did not answer within 60 s:\n{log.read_text('utf-8')[-3000:]}")


@contextlib.contextmanager
def served(notebook: str, folder: Path = ROOT / "notebooks") -> Iterator[str]:
    """Voilà serving one lesson (or another notebook of ``folder``) on a free port; its
    URL while the test runs."""
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as out:
        server, url = _voila(notebook, folder, out)
        try:
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)
            said = Path(out.name).read_text("utf-8")
            if "Traceback" in said:  # a cell of the lesson failed in Voilà's kernel
                print(said[-3000:])


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def redrawn(page: object, picture: object, before: str | None, seconds: float) -> None:
    """Wait until the <img> shows another picture than ``before``, fully loaded."""
    page.wait_for_function(
        "([el, before]) => el.src !== before && el.naturalWidth > 0",
        arg=[picture.element_handle(), before],
        timeout=seconds * 1000,
    )


def opened(browser: object, url: str, button: str) -> tuple[object, object]:
    """The lesson's page, once Voilà has run its cells up to the widget with ``button``."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url, timeout=LOAD_SECONDS * 1000)
    found = page.get_by_role("button", name=button)
    found.wait_for(timeout=LOAD_SECONDS * 1000)
    return page, found


def drawn(image: object) -> tuple[int, int, float]:
    """(natural width, natural height, share of pixels that are not white) of an <img>."""
    from PIL import Image

    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    shot = Image.open(io.BytesIO(image.screenshot())).convert("L")
    histogram = shot.histogram()
    inked = 1 - sum(histogram[245:]) / max(sum(histogram), 1)
    return width, height, inked


def test_lesson_7_shows_the_route_at_every_click(browser):
    with served("07-read-a-real-email.ipynb") as url:
        page, button = opened(browser, url, "Show the route")
        picture = page.locator(".widget-image").last
        box = page.locator(".widget-textarea textarea").last
        samples = ["gmail", "postfix", "exim", "exchange", "dovecot-lmtp", "clock-skew"]
        sources = []
        for click, sample in enumerate(samples):
            # A student pastes one message's headers after another.
            box.fill((ROOT / "tests" / "data" / "headers" / f"{sample}.eml").read_text())
            before = picture.get_attribute("src")
            button.click()
            # The first click waits for the kernel to finish the lesson's later cells.
            redrawn(page, picture, before, LOAD_SECONDS if click == 0 else 30)
            width, height, inked = drawn(picture)
            assert (width, height) == (1280, 720)
            assert inked > 0.03, "the route came out blank"
            sources.append(picture.get_attribute("src"))
        assert len(set(sources)) == len(samples)  # a new drawing each click


def test_lesson_1_step_viewer_moves_and_redraws(browser):
    with served("01-first-email.ipynb") as url:
        page, forward = opened(browser, url, "Next ▶")
        picture = page.locator(".widget-image").first
        readout = page.locator(".widget-readout").first
        assert readout.inner_text().strip() == "1"
        for step in (2, 3, 4):
            before = picture.get_attribute("src")
            forward.click()
            redrawn(page, picture, before, LOAD_SECONDS if step == 2 else 30)
            assert readout.inner_text().strip() == str(step)  # the slider counts as the text
            width, height, inked = drawn(picture)
            assert (width, height) == (1280, 720)
            assert inked > 0.03
        # The picture is as wide as the notebook's column, not wider.
        box = picture.bounding_box()
        column = page.locator(".jp-OutputArea-output, .jp-Cell-outputArea").first.bounding_box()
        assert box is not None
        assert column is not None
        assert box["width"] <= column["width"] + 1
        # A protocol hidden with one click (no Ctrl-click): the slider has fewer steps.
        handle = page.locator(".widget-slider [aria-valuemax]").first
        steps = float(handle.get_attribute("aria-valuemax") or "nan")
        page.get_by_role("button", name="tcp", exact=True).click()
        page.wait_for_function(
            "([el, steps]) => Number(el.getAttribute('aria-valuemax')) < steps",
            arg=[handle.element_handle(), steps],
            timeout=30_000,
        )


def test_the_packet_player_and_the_event_list_in_a_browser(browser, tmp_path):
    """A notebook with the packets' player and the step viewer: ▶ moves the animation on
    a frame; choosing a flight in the player's list jumps the picture; choosing an event
    in the viewer's list shows that step's packet, layer by layer."""
    import nbformat

    cells = [
        "import mailsim\nfrom mailsim.player import Player\nfrom mailsim.widgets import StepViewer\n"
        f"result = mailsim.run(mailsim.load({str(ROOT / 'scenarios' / 'classroom.yaml')!r}))",
        "Player(result).widget()",
        "StepViewer(result).widget()",
    ]
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(book, tmp_path / "packets.ipynb")
    with served("packets.ipynb", tmp_path) as url:
        page, _ = opened(browser, url, "Next ▶")  # the last widget: both are there
        forward = page.get_by_role("button", name="▶", exact=True)
        picture = page.locator(".widget-image").first
        before = picture.get_attribute("src")
        forward.click()
        redrawn(page, picture, before, 60)
        width, height, inked = drawn(picture)
        assert (width, height) == (1280, 720)
        assert inked > 0.03
        # The player's list of flights: choose the relay's ServerHello, the picture jumps.
        flights = page.locator(".widget-select select").first
        # (ipywidgets writes the options' spaces as no-break spaces)
        label = next(t for t in flights.locator("option").all_inner_texts()
                     if "mx-home → msa-school  TLS" in t.replace("\xa0", " "))  # fmt: skip
        before = picture.get_attribute("src")
        flights.select_option(label=label)
        redrawn(page, picture, before, 60)
        # The step viewer's event list: the EHLO's packet, layer by layer.
        events = page.locator(".widget-select select").nth(1)
        ehlo = next(t for t in events.locator("option").all_inner_texts()
                    if "EHLO alice-pc" in t.replace("\xa0", " "))  # fmt: skip
        events.select_option(label=ehlo)
        # The packet's <pre> is made anew at each step: found by what it says.
        packet = page.locator(".widget-html pre", has_text="EHLO alice-pc.school.example")
        packet.wait_for(timeout=60_000)
        shown = packet.inner_text()
        for layer in ("Application · SMTP", "Transport · TCP", "Network · IPv4",
                      "Link · Ethernet", "45 48 4c 4f"):  # fmt: skip
            assert layer in shown


def test_the_builder_form_end_to_end(browser, tmp_path):
    """A student builds classroom in the builder's form — two sites, their link, two
    domains, two users, a message — the network redrawn at each click; Run shows the
    journey in the step viewer; Save writes a file that validates."""
    import re

    import nbformat

    cells = ["import mailsim\nb = mailsim.Builder('classroom')\nb.widget()"]
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}  # fmt: skip
    nbformat.write(book, tmp_path / "builder.ipynb")
    with served("builder.ipynb", tmp_path) as url:
        page, _ = opened(browser, url, "Add site")

        def field(kind: str, label: str) -> object:
            named = page.locator("label", has_text=re.compile(f"^{re.escape(label)}$"))
            return page.locator(f".widget-{kind}", has=named).first.locator(
                "input" if kind == "text" else "select"
            )

        def fill(**values: str) -> None:
            for label, value in values.items():
                field("text", label.replace("_", " ")).fill(value)

        picture = page.locator(".widget-image").first
        problems = page.locator(".widget-html", has_text="Problems").first

        def press(name: str, adds: str | None = None) -> None:
            """Click; wait for the network drawn again, or for ``adds`` to appear among
            the choices of the form's lists (what changes no drawing: a computer, a user)."""
            before = picture.get_attribute("src")
            page.get_by_role("button", name=name, exact=True).click()
            if adds is None:
                redrawn(page, picture, before, 60)
            else:
                page.locator("select option", has_text=adds).first.wait_for(
                    state="attached", timeout=60_000
                )

        for site in ("school", "home"):
            fill(site=site)
            press("Add site")
        field("dropdown", "at site").select_option("school")
        fill(computer="alice-pc")
        press("Add computer", adds="alice-pc")
        field("dropdown", "at site").select_option("home")
        fill(computer="bob-pc", latency="5ms", bandwidth="50Mbps")
        press("Add computer", adds="bob-pc")
        field("dropdown", "between").select_option("school")
        field("dropdown", "and").select_option("home")
        fill(one_way="45ms")
        press("Link sites")
        assert "is joined to no other site" not in problems.inner_text()
        field("dropdown", "site").select_option("school")
        fill(domain="school.example", submission="mail")
        press("Add domain")
        field("dropdown", "site").select_option("home")
        fill(domain="home.example", submission="", MX_hosts="mx", mailbox="pop")
        press("Add domain")
        fill(user="alice@school.example", password="wonderland")
        field("dropdown", "computer").select_option("alice-pc")
        press("Add user", adds="alice@school.example")
        fill(user="bob@home.example", password="builder", checks_every="5min")
        field("dropdown", "computer").select_option("bob-pc")
        press("Add user", adds="bob@home.example")
        field("dropdown", "from").select_option("alice@school.example")
        field("dropdown", "to").select_option("bob@home.example")
        fill(size="20KB")
        page.get_by_role("button", name="Add message", exact=True).click()
        page.get_by_text("No problems: press Run").wait_for(timeout=30_000)
        width, height, inked = drawn(picture)
        assert (width, height) == (1280, 720)
        assert inked > 0.02
        page.get_by_role("button", name="Run ▶", exact=True).click()
        page.get_by_role("button", name="Next ▶", exact=True).wait_for(timeout=120_000)
        viewer = page.locator(".widget-image").nth(1)
        viewer.wait_for(timeout=60_000)
        page.wait_for_function("el => el.naturalWidth > 0", arg=viewer.element_handle(),
                               timeout=60_000)  # fmt: skip
        width, height, inked = drawn(viewer)
        assert (width, height) == (1280, 720)
        assert inked > 0.03
        fill(file=str(tmp_path / "mine.yaml"))
        page.get_by_role("button", name="Save", exact=True).click()
        page.get_by_text(re.compile(r"saved .*mine\.yaml")).first.wait_for(timeout=30_000)
    import mailsim

    assert mailsim.load(tmp_path / "mine.yaml").users["bob@home.example"].poll == 300


def test_a_quiz_answers_each_try_in_the_browser(browser, tmp_path):
    """Lesson 1's quiz in Voilà: a wrong choice is told why it is wrong, the right one
    says so, a number is read as typed, and the score line counts the first tries."""
    import nbformat

    quiz = ROOT / "tests" / "data" / "quiz.yaml"
    cells = [f"from mailsim.quiz import Quiz\nQuiz.load({str(quiz)!r})"]
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}  # fmt: skip
    nbformat.write(book, tmp_path / "quiz.ipynb")
    with served("quiz.ipynb", tmp_path) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url, timeout=LOAD_SECONDS * 1000)
        check = page.get_by_role("button", name="Check").first  # the first question's
        check.wait_for(timeout=LOAD_SECONDS * 1000)
        page.get_by_role("radio", name="The message is in Bob's mailbox").check()
        check.click()
        said = page.locator(".widget-html", has_text="✗ Not quite.").first
        said.wait_for(timeout=30_000)
        assert said.inner_text().strip() == (
            "✗ Not quite. Not yet: the school's server still has to hand it to Bob's server."
        )
        score = page.get_by_text("0 of 4 right at the first try")
        score.wait_for(timeout=30_000)
        right = "The school's server has taken the message and will pass it on"
        page.get_by_role("radio", name=right).check()
        check.click()
        page.locator(".widget-html", has_text="✓ Right.").first.wait_for(timeout=30_000)
        # The static HTML beside the widget is not drawn: the answers stay folded away.
        assert page.locator("details").count() == 0
        shown = page.locator(".widget-html", has_text="✓ Right.").first.inner_text()
        assert shown.startswith("✓ Right. Accepted is not delivered is not read: with 250")
        # A number typed as a student would, with a decimal comma, right at the first try.
        page.get_by_placeholder("a number (in min)").fill("4,8")
        page.get_by_role("button", name="Check").nth(2).click()
        page.locator(".widget-html", has_text="✓ Right. 4 min 50 s").wait_for(timeout=30_000)
        page.get_by_text("1 of 4 right at the first try").wait_for(timeout=30_000)


def test_a_capture_link_saves_the_file_in_voila(browser, tmp_path):
    """Voilà serves no file from the lesson's folder but pictures: the school lesson's
    eve.pcap comes as a link that carries the file, and Chromium saves it whole."""
    import nbformat

    scenario = ROOT / "scenarios" / "free-vs-paid-provider.yaml"
    code = (f"import mailsim\nresult = mailsim.run(mailsim.load({str(scenario)!r}))\n"
            'result.pcap_download("eve.pcap", on="eve")')  # fmt: skip
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}  # fmt: skip
    nbformat.write(book, tmp_path / "capture.ipynb")
    expected = tmp_path / "expected.pcap"
    mailsim.run(mailsim.load(scenario)).to_pcap(expected, on="eve")
    with served("capture.ipynb", tmp_path) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.goto(url, timeout=LOAD_SECONDS * 1000)
        link = page.get_by_role("link", name="⬇ eve.pcap")
        link.wait_for(timeout=LOAD_SECONDS * 1000)
        with page.expect_download() as saving:
            link.click()
        saved = saving.value
        assert saved.suggested_filename == "eve.pcap"
        assert Path(saved.path()).read_bytes() == expected.read_bytes()


def test_a_glossary_word_opens_in_a_new_tab_and_the_lesson_keeps_its_answers(browser):
    """Voilà serving the school folder: a word of lesson 1 opens the glossary at that
    word in a new tab; the lesson's tab stays where it was, its revealed answer shown."""
    with served(".", ROOT / "notebooks" / "school") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "voila/render/01-first-email.ipynb", timeout=LOAD_SECONDS * 1000)
        shown = page.get_by_role("button", name="I have guessed: show me").first
        shown.wait_for(timeout=LOAD_SECONDS * 1000)
        shown.click()
        answer = page.locator(".widget-output img").first
        answer.wait_for(timeout=60_000)
        word = page.locator('a[href^="glossary.ipynb#"]').first
        anchor = word.get_attribute("href").split("#")[1]
        with page.context.expect_page() as opening:
            word.click()
        glossary = opening.value
        glossary.wait_for_load_state(timeout=LOAD_SECONDS * 1000)
        glossary.locator(f'[id="{anchor}"]').wait_for(state="attached", timeout=60_000)
        assert glossary.url.endswith(f"glossary.ipynb#{anchor}")
        assert page.url.endswith("01-first-email.ipynb")  # the lesson did not move
        assert answer.is_visible()  # and kept what it showed
