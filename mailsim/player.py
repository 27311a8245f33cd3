"""The packets' animation in a notebook, as a player: Play and Pause, a frame slider, ◀ and
▶ to step a frame, a speed, and the list of flights beside it. Choosing a flight in the
list jumps to the frame it leaves; playing moves the choice along with the picture.

Without a widget front end (a script, CI) the same object answers which frame a flight
starts at (``frame_of``), which flight a frame speaks of (``flight_at``) and draws any
frame as PNG bytes (``show``). The widgets need ipywidgets (``pip install
mailsim[notebooks]``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from mailsim.plot.animate import BUDGET, FPS, Scene, words
from mailsim.result import Result
from mailsim.widgets import png

SPEEDS = {"0.5×": 0.5, "1×": 1.0, "2×": 2.0, "4×": 4.0}


class Player:
    """The animation of one message (default: the first), frame by frame."""

    def __init__(self, result: Result, message: str | None = None, *, budget: int = BUDGET) -> None:
        self.scene = Scene(result, message, budget=budget)
        plt.close(self.scene.fig)  # drawn into an Image as PNG bytes, never by pyplot
        self.frame = 0
        self.controls: dict[str, Any] = {}

    @property
    def frames(self) -> int:
        return self.scene.timeline.frames

    def __len__(self) -> int:
        return len(self.scene.rows)

    def frame_of(self, flight: int) -> int:
        """The first frame ``flight`` is in the air."""
        return self.scene.timeline.start[flight]

    def flight_at(self, frame: int) -> int | None:
        """The flight the caption speaks of at ``frame`` (the list's choice)."""
        return self.scene.flight_at(frame)

    def row(self, flight: int) -> str:
        """A line of the list: "  10.0454 s  alice-pc → msa-school  SMTP  the message …"."""
        f = self.scene.rows[flight]
        return f"{float(f.time):10.4f} s  {f.src} → {f.dst}  {str(f.protocol).upper()}  {words(f)}"

    def show(self, frame: int) -> bytes:
        """``frame`` drawn, as PNG bytes at 1280×720."""
        self.frame = max(0, min(frame, self.frames - 1))
        self.scene.update(self.frame)
        return png(self.scene.fig)

    # -- the widgets -----------------------------------------------------------------------

    def widget(self) -> Any:
        """Play/Pause, the slider, ◀ ▶, the speed and the flights, around the picture."""
        try:
            import ipywidgets as w
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "the player's buttons need ipywidgets, in mailsim's notebooks extra:"
                " pip install 'mailsim[notebooks]'; without them, Player(result).show(frame)"
                " draws any frame as PNG bytes",
                name="ipywidgets",
            ) from None

        last = max(self.frames - 1, 0)
        slider = w.IntSlider(value=0, min=0, max=last, description="frame",
                             layout=w.Layout(width="50%"))  # fmt: skip
        play = w.Play(value=0, min=0, max=last, interval=round(1000 / FPS), description="Play")
        w.jslink((play, "value"), (slider, "value"))
        back, forward = (
            w.Button(description="◀", tooltip="a frame back"),
            w.Button(description="▶", tooltip="a frame on"),
        )
        speed = w.Dropdown(options=list(SPEEDS), value="1×", description="speed",
                           layout=w.Layout(width="140px"))  # fmt: skip
        flights = w.Select(options=[(self.row(k), k) for k in range(len(self))], rows=8,
                           layout=w.Layout(width="100%"))  # fmt: skip
        picture = w.Image(format="png", layout=w.Layout(width="100%", height="auto"))
        # Which way a change goes: the list follows the picture, or the picture jumps to
        # the list's choice; neither may echo back (the choice would snap playing back to
        # the first frame of its flight, or a choice to the flight sharing its frame).
        state = {"following": False, "jumping": False}

        def on_frame(change: dict[str, Any]) -> None:
            # The picture's bytes replaced in one message: nothing shows blank or half drawn.
            picture.value = self.show(int(change["new"]))
            if not state["jumping"]:
                state["following"] = True
                try:
                    flights.value = self.flight_at(self.frame)
                finally:
                    state["following"] = False

        def on_choice(change: dict[str, Any]) -> None:
            if change["new"] is None or state["following"]:
                return
            state["jumping"] = True
            try:
                slider.value = self.frame_of(int(change["new"]))
            finally:
                state["jumping"] = False

        def on_speed(change: dict[str, Any]) -> None:
            play.interval = round(1000 / FPS / SPEEDS[change["new"]])

        slider.observe(on_frame, names="value")
        flights.observe(on_choice, names="value")
        speed.observe(on_speed, names="value")
        back.on_click(lambda _: setattr(slider, "value", max(slider.value - 1, 0)))
        forward.on_click(lambda _: setattr(slider, "value", min(slider.value + 1, last)))
        picture.value = self.show(0)
        flights.value = self.flight_at(0)
        self.controls = {"play": play, "slider": slider, "back": back, "next": forward,
                         "speed": speed, "flights": flights, "picture": picture}  # fmt: skip
        return w.VBox([w.HBox([play, back, forward, slider, speed]), picture, flights])
