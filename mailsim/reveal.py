"""The answer behind a button, so that a class guesses before it sees.

A lesson asks "how long will it take?" and the next cell shows how long it took. Where
every cell has run before anyone reads (Voilà, *Run All*), the answer sits on the screen
right under the question. ``reveal(show)`` puts a button there instead: what ``show``
prints or draws appears when it is pressed, not before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CLASS = "mailsim-reveal"  # the box's class: an exported page folds its answer (export.py)
# The buttons not pressed yet, in the order they were made (a dict keeps it; the widgets
# keep them alive until they are closed).
_waiting: dict[Any, None] = {}


def reveal(show: Callable[[], Any], label: str = "I have guessed: show me") -> Any:
    """A button and, once pressed, whatever ``show`` prints, draws or returns."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    press = w.Button(description=label, button_style="info", layout=w.Layout(width="auto"))
    out = w.Output()

    def clicked(_: Any) -> None:
        if press.disabled:  # shown already
            return
        _waiting.pop(press, None)
        press.disabled = True
        with out:
            shown = show()
            if shown is not None and not hasattr(shown, "figure"):  # an Axes draws itself
                display(shown)
            plt.show()

    press.on_click(clicked)
    _waiting[press] = None
    box = w.VBox([press, out])
    box.add_class(CLASS)
    return box


def show_all() -> int:
    """Press every button not pressed yet, in the order they were made; how many. An
    exported lesson runs this last, in its own kernel, so that its page holds each
    answer, folded under its button's words. A button whose widget was closed (its cell
    cleared) is let go."""
    pressed = 0
    for press in list(_waiting):
        if press.comm is None:  # closed: nobody sees it any more
            _waiting.pop(press, None)
            continue
        press.click()
        pressed += 1
    return pressed
