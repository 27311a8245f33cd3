"""Security as pictures a class reads: what the eavesdropper could read, session by
session, and the receiving server's verdict on each message's sender."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex

from mailsim.cli import main
from mailsim.plot.security import FATE, READ, SEALED, UNALIGNED, VERDICT, overheard, verdicts
from tests.conftest import SCENARIOS, shipped


def cells(ax) -> dict[str, tuple[str, str]]:
    """gid → (fill colour, text) of every cell drawn."""
    texts = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    return {
        p.get_gid(): (to_hex(p.get_facecolor()), texts.get(p.get_gid().replace("cell", "text")))
        for p in ax.patches
        if p.get_gid()
    }


def test_eve_reads_alices_password_and_message_and_only_records_of_daves():
    result = shipped(SCENARIOS / "free-vs-paid-provider.yaml")
    ax = overheard(result)
    try:
        drawn = cells(ax)
        sessions = {int(s) for s in result.overheard["session"]}
        assert {gid.split("-")[1] for gid in drawn} == {str(s) for s in sessions}
        hops = result.hops.set_index(["message", "protocol"])
        alice = int(hops.loc[("m1", "submission"), "session"])
        dave = int(hops.loc[("m2", "submission"), "session"])
        fill, text = drawn[f"cell-{alice}-password"]
        assert fill == READ[0].lower()
        assert text == "alice@freemail.example /\nwonderland (AUTH PLAIN)"  # how it leaked
        assert drawn[f"cell-{alice}-envelope"][1] == (
            "from alice@freemail.example\nto carol@college.example"
        )
        assert drawn[f"cell-{alice}-headers and body"] == (READ[0].lower(), "the whole message")
        # dave's submission is implicit TLS: nothing but records and the connection.
        assert [k for k in ("password", "envelope", "headers and body", "commands")
                if drawn[f"cell-{dave}-{k}"][0] != "#ffffff"] == []  # fmt: skip
        assert drawn[f"cell-{dave}-TLS records"][0] == SEALED[0].lower()
        secret = {s for s in sessions if any(
            drawn[f"cell-{s}-{k}"][0] == READ[0].lower() for k in ("password", "envelope"))}  # fmt: skip
        assert ax.get_title(loc="left").startswith(
            f"What eve could read on r-west ↔ r-east: {len(sessions)} sessions crossed the link,"
            f"\n{len(secret)} gave away secrets"
        )
        ax.figure.canvas.draw()
        smallest = min(t.get_window_extent().height for t in ax.texts if t.get_text().strip())
        assert smallest >= 14  # px at 100 dpi, the back row of a classroom
    finally:
        plt.close(ax.figure)


def test_the_forged_messages_cards_show_dmarc_and_where_they_landed():
    result = shipped(SCENARIOS / "spoofing.yaml")
    ax = verdicts(result)
    try:
        texts = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
        fills = {p.get_gid(): to_hex(p.get_facecolor()) for p in ax.patches}
        # SPF passed for mallory's own domain, not the From: line's: no help, not green.
        assert texts["spf-text-m2"] == "pass, but\nfor evil.example"
        assert fills["spf-m2"] == UNALIGNED[0].lower()
        assert texts["spf-text-m1"] == "pass\nfor school.example"
        assert fills["spf-m1"] == VERDICT["pass"][0].lower()
        assert texts["dmarc-text-m2"] == "fail\n(p=reject)"
        assert fills["dmarc-m2"] == READ[0].lower()
        assert texts["fate-m2"].startswith("bounced: 550 5.7.1 rejected by")
        assert texts["dmarc-text-m3"] == "fail\n(p=quarantine)"
        assert texts["fate-m3"] == "retrieved, in the spam folder"
        assert texts["dmarc-text-m4"] == "none"
        # m4's forgery reached the inbox: its card must not look like the real alice's.
        assert texts["fate-m4"] == "retrieved, in the inbox:\nthe forgery got through"
        assert fills["fate-box-m4"] == FATE["forged"][0].lower()
        assert texts["fate-m1"] == "retrieved, in the inbox"
        assert fills["fate-box-m1"] == FATE["genuine"][0].lower()
        assert fills["fate-box-m2"] == fills["fate-box-m3"] == FATE["stopped"][0].lower()
        assert texts["fate-m2"].endswith("DMARC policy for\nschool.example")  # reason kept
        assert texts["dmarc-text-m1"] == "pass\n(p=reject)"
        assert "m2.dsn1" not in {gid.split("-")[-1] for gid in texts}  # bounces get no card
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    ("scenario", "expected", "absent"),
    [
        ("free-vs-paid-provider", "overheard.png", "verdicts.png"),
        ("spoofing", "verdicts.png", "overheard.png"),
        ("classroom", None, "verdicts.png"),  # nothing published, nothing to judge
    ],
)
def test_plots_folder_gets_the_security_pictures_where_they_say_something(
    tmp_path, capsys, scenario, expected, absent
):
    assert main(["run", str(SCENARIOS / f"{scenario}.yaml"), "--plots", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert expected is None or expected in names
    assert absent not in names


def test_a_page_holds_six_cards_and_its_title_says_how_many_of_all(monkeypatch):
    from mailsim.plot import security

    monkeypatch.setattr(security, "CARDS", 2)
    ax = verdicts(shipped(SCENARIOS / "spoofing.yaml"))
    try:
        cards = {
            t.get_gid().split("-")[-1] for t in ax.texts if (t.get_gid() or "").startswith("fate-")
        }
        assert cards == {"m1", "m2"}
        assert ax.get_title(loc="left").startswith(
            "Who really sent it? The receiving server's checks, the first 2 of 4 messages"
        )
    finally:
        plt.close(ax.figure)


def test_every_word_of_what_eve_read_stays_inside_its_box():
    """The envelope's two addresses are the longest words a cell holds: they fit their
    coloured box at 1280 px, as every other cell does."""
    ax = overheard(shipped(SCENARIOS / "free-vs-paid-provider.yaml"))
    figure = ax.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for p in ax.patches]
    cells = [t for t in ax.texts if (t.get_gid() or "").startswith("text-")]
    checked = 0
    for text in cells:
        words = text.get_window_extent(renderer)
        middle = (words.x0 + words.width / 2, words.y0 + words.height / 2)
        for box in boxes:
            if box.contains(*middle):
                assert box.x0 <= words.x0, text.get_text()
                assert words.x1 <= box.x1, text.get_text()
                checked += 1
    assert checked >= 30  # passwords, envelopes, messages, commands, records, connections
    plt.close(figure)
