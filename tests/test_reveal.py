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


def test_an_export_shows_every_answer_not_shown_yet_in_order():
    """show_all (run last by `mailsim export --run`): the buttons not pressed, in the
    order they were made; not one pressed already, not one whose widget was closed."""
    from mailsim import reveal as module

    module._waiting.clear()
    order: list[int] = []
    boxes = [reveal(lambda k=k: order.append(k)) for k in range(4)]
    boxes[1].children[0].click()  # the class pressed this one
    boxes[3].children[0].close()  # its cell was cleared
    assert module.show_all() == 2
    assert order == [1, 0, 2]
    assert module.show_all() == 0  # nothing left to show
    assert list(module._waiting) == []
