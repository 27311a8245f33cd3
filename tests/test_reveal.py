"""reveal: nothing of the answer before the button is pressed; all of it after."""

from __future__ import annotations

import matplotlib

from mailsim.reveal import reveal


def test_the_answer_appears_only_when_the_button_is_pressed():
    matplotlib.use("Agg")
    shown = []

    def show() -> str:
        shown.append("drawn")
        print("4 hops")
        return "a table"

    box = reveal(show)
    press, out = box.children
    assert (press.description, shown, out.outputs) == ("I have guessed: show me", [], ())
    press.click()
    assert shown == ["drawn"]
    assert press.disabled  # one answer, not one per click
