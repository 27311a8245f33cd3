"""Step through a message's journey in a notebook, as in Packet Tracer's simulation mode:
Next, Back, Play and a slider over the exchanges, a filter by protocol, an event list to
jump from, and for each step the route and the ladder with the step highlighted, what it
means in words, and its packet layer by layer with its bytes (the PDU view).

Without a widget front end (a script, CI) the same object draws any step as a figure:
``StepViewer(result).draw(5)``. The widgets need ipywidgets (``pip install
mailsim[notebooks]``).
"""

from __future__ import annotations

import html
import io
import re
import textwrap
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from mailsim import endpoints
from mailsim.pdu import Pdu, Pdus
from mailsim.plot import style
from mailsim.plot.route import Wire, route
from mailsim.plot.sequence import exchanges, sequence
from mailsim.plot.topology import positions
from mailsim.protocols import meaning
from mailsim.result import Result
from mailsim.units import format_duration

WINDOW = 6  # exchanges shown before and after the current one: room for 14 px words

# The simple viewer's words, for a school class, where the reference words of
# :data:`mailsim.protocols.MEANINGS` speak a standard's language.
PLAIN: dict[str, str] = {
    "SYN": "the computer that calls asks to open a connection",
    "SYN-ACK": "the other side agrees",
    "ACK": "the caller confirms: the connection is open",
    "220": "the server is ready: it greets the computer that called (or is ready for encryption)",
    "221": "goodbye: the server closes the connection",
    "235": "the password is right: logged in",
    "250": "OK, done",
    "354": "go ahead: send the message, and end it with a line holding only a dot",
    "EHLO": "hello: the computer says its name and asks what the server can do",
    "LHLO": "hello, from one mail server to the mailbox server",
    "STARTTLS": "let us switch to encryption",
    "AUTH": "logging in: name and password",
    "MAIL": "who the message is from (bounces go back there)",
    "RCPT": "who the message is for",
    "DATA": "the message comes next",
    "message": "the message itself",
    "QUIT": "goodbye",
    "ClientHello": "encryption starts: the two sides agree on a secret key",
    "ServerHello": "encryption starts: the two sides agree on a secret key",
    "+OK": "OK",
    "-ERR": "no: something is wrong",
    "RETR": "send me this message",
    "DELE": "delete this message from the server",
    "USER": "my user name is…",
    "PASS": "my password is…",
    "query MX": "asks DNS, the internet's address book: which server takes mail for this name?",
    "query A": "asks DNS, the internet's address book: what is this machine's address?",
    "NOERROR": "DNS answers: here is what it knows about the name",
    "NXDOMAIN": "DNS answers: there is no such name",
}


class StepViewer:
    """The exchanges of one message (default: the first), one step at a time."""

    def __init__(
        self,
        result: Result,
        message: str | None = None,
        protocols: tuple[str, ...] | None = None,
        simple: bool = False,
    ) -> None:
        """``simple``, for a school class: each step in words — who says what to whom, what
        it means, how long it takes — without addresses, ports, bytes or the event list."""
        self.result = result
        self.simple = simple
        self.message = message or result.copies[0].message.id
        self._all = exchanges(result, self.message)
        self.protocols = protocols
        self.step = 0
        self._wire: Wire | None = None  # the network's paths, found on the first drawing
        self._ends: pd.DataFrame | None = None  # the sessions' addresses and ports, by id
        self._pdus: Pdus | None = None  # the packets, made when a PDU is first asked for

    @property
    def shown(self) -> pd.DataFrame:
        """The ladder's rows: all, or those of the chosen protocols, notes included."""
        if not self.protocols:
            return self._all
        return self._all[self._all["protocol"].isin(self.protocols)]

    @property
    def rows(self) -> pd.DataFrame:
        """The steps: the exchanges shown. A note ("+ 57 other messages fetched in this
        session") is drawn with the exchanges around it but moves nothing: not a step."""
        shown = self.shown
        return shown[shown["step"] != "note"]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def conversations(self) -> list[int]:
        """The step each conversation starts at (a TCP connection with what is said over
        it, or one DNS query), in order: a journey of 80 steps is six of them."""
        first: dict[int, int] = {}
        for k, session in enumerate(self.rows["session"].tolist()):
            first.setdefault(session, k)
        return sorted(first.values())

    @property
    def turns(self) -> list[int]:
        """The steps where the talk turns to another conversation: each one's start, and
        where one goes on after another came in between (the school's server asks DNS
        while its 250 is on the way to Alice): the conversation jumps stop at each, so
        that no step of one is jumped over."""
        sessions = self.rows["session"].tolist()
        return [k for k in range(len(sessions)) if k == 0 or sessions[k] != sessions[k - 1]]

    def conversation(self, step: int) -> int:
        """Which conversation ``step`` belongs to, counted from 0."""
        sessions = self.rows["session"]
        start = int((sessions == sessions.iloc[step]).to_numpy().argmax())
        return self.conversations.index(start)

    def next_conversation(self, step: int) -> int:
        """The first step after ``step`` where the talk turns (or ``step``, at the end)."""
        return next((k for k in self.turns if k > step), step)

    def previous_conversation(self, step: int) -> int:
        """Where the talk of ``step`` turned to its conversation, or the turn before if
        ``step`` is one."""
        turns = self.turns
        began = max(k for k in turns if k <= step)
        return began if began < step else max((k for k in turns if k < step), default=0)

    def detail(self, step: int) -> str:
        """What happens at ``step``, in words: who sends what to whom, and what it means."""
        row = self.rows.iloc[step]
        took = row["arrive"] - row["time"]
        talk = f"conversation {self.conversation(step) + 1} of {len(self.conversations)}"
        if self.simple:
            lines = [
                f"Step {step + 1} of {len(self)} · {row['protocol'].upper()} · {talk}",
                f"{row['src']} → {row['dst']}: {row['label']}",
                f"it takes {format_duration(took)} to arrive" if took > 0 else "",
            ]
        else:
            lines = [
                f"Step {step + 1} of {len(self)} · t = {row['time']:.6f} s ·"
                f" {row['protocol'].upper()} · {talk}",
                f"{row['src']} → {row['dst']}: {row['label']}",
                self._wire_line(row),
                f"arrives {took * 1000:.3f} ms later" if took > 0 else "",
            ]
        # A pipelined group carries several commands or replies: explain each once.
        seen = []
        for one_step, code in zip(row["steps"], row["codes"], strict=True):
            what = (
                _in_plain_words(str(one_step), code, str(row["protocol"]))
                if self.simple
                else meaning(one_step, code)
            )
            label = code or one_step
            if what and (label, what) not in seen:
                seen.append((label, what))
        for label, what in seen:
            prefix = f"{label}: " if len(seen) > 1 else ""
            lines.append(f"meaning: {prefix}{what}")
        return "\n".join(line for line in lines if line)

    def pdu(self, step: int) -> Pdu | None:
        """The packet of ``step``, layer by layer, with its bytes (None: no packet, as for
        a client's own timeout)."""
        if self._pdus is None:
            self._pdus = Pdus(self.result)
        row = self.rows.iloc[step]
        return self._pdus.of(int(row["session"]), str(row["src"]), float(row["time"]))

    def event_list(self) -> list[str]:
        """The steps as Packet Tracer's event list shows them: time, from, to, protocol,
        what (one line each, in step order)."""
        return [
            f"{row.time:>12.6f} s  {row.src} → {row.dst}  {str(row.protocol).upper():<5}"
            f"  {textwrap.shorten(str(row.label), 70, placeholder=' …')}"
            for row in self.rows.itertuples()
        ]

    def _wire_line(self, row: pd.Series) -> str:
        """Where the packet goes as a capture names it: addresses, ports, the service."""
        if self._ends is None:
            self._ends = self.result.sessions.set_index("session")
        if row["session"] not in self._ends.index or row["src"] == row["dst"]:
            return ""  # a note or a client's own timeout: no packet
        return endpoints.wire_words(self._ends.loc[row["session"]], str(row["src"]))

    def draw(self, step: int, fig: Figure | None = None) -> Figure:
        """The route with the current exchange, the ladder around it, and the words."""
        if fig is None:
            fig = plt.figure(figsize=(12.8, 7.2), layout="constrained")
        fig.clear()
        rows = self.rows
        step = max(0, min(step, len(rows) - 1))
        grid = fig.add_gridspec(2, 2, height_ratios=[5, 1], width_ratios=[1.35, 1])
        ax_route, ax_ladder = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        ax_text = fig.add_subplot(grid[1, :])
        # The ladder and the words first: the route places its labels against its
        # panel's final size, which the other panels' contents decide.
        if len(rows):
            current = rows.iloc[step]
            # The simple viewer shows what has happened so far, not what comes next.
            ahead = 1 if self.simple else WINDOW + 1
            steps = rows.iloc[max(0, step - WINDOW) : step + ahead]
            # The notes between the first and the last step drawn go with them.
            window = self.shown.loc[steps.index[0] : steps.index[-1]]
            # Every lifeline of the whole journey, in its order: stepping or filtering
            # never moves a machine to another column.
            lanes = list(dict.fromkeys([*self._all["src"], *self._all["dst"]]))
            sequence(self.result, self.message, ax=ax_ladder, rows=window,
                     highlight=rows.index[step], lanes=lanes, panel=True)  # fmt: skip
            ax_ladder.set_title(f"exchanges around step {step + 1}", loc="left", fontsize=11)
            ax_ladder.get_legend().remove()
        ax_text.set_axis_off()
        ax_text.text(0.0, 1.0, self.detail(step) if len(rows) else "no exchange", va="top",
                     family="monospace", fontsize=12, transform=ax_text.transAxes)  # fmt: skip
        # A class steps through before it is told how long the message took.
        route(self.result, self.message, ax=ax_route, key=False, words=False,
              outcome=not self.simple)  # fmt: skip
        title = " ".join(ax_route.get_title(loc="left").split())  # wrapped to the panel
        ax_route.set_title(textwrap.fill(title, 64), loc="left", fontsize=11)
        if len(rows):
            pos = positions(self.result)
            # Along the links the packets took (through the routers), as the route draws
            # its hops: the last link carries the arrowhead.
            if self._wire is None:
                self._wire = Wire(self.result)
            path = self._wire.path(str(current["src"]), str(current["dst"]), float(current["time"]))
            points = [pos[node] for node in path]
            if len(points) > 2:
                xs, ys = zip(*points[:-1], strict=True)
                ax_route.plot(xs, ys, color=style.OKABE_ITO["yellow"], lw=6, alpha=0.9, zorder=2,
                              solid_capstyle="round", gid="current-path")  # fmt: skip
            arrow = FancyArrowPatch(
                points[-2], points[-1], arrowstyle="-|>,head_length=0.9,head_width=0.5",
                color=style.OKABE_ITO["yellow"], lw=6, alpha=0.9, zorder=2,
                shrinkA=12 if len(points) == 2 else 0, shrinkB=12,
            )  # fmt: skip
            arrow.set_gid("current")
            ax_route.add_patch(arrow)
        self.step = step
        return fig

    # -- the widgets -----------------------------------------------------------------------

    def widget(self) -> Any:
        """Next, Back, the conversation jumps, Play, a slider and a protocol filter,
        redrawing the step, with the event list and the packet's layers and bytes (not in
        the simple viewer)."""
        try:
            import ipywidgets as w
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "the step viewer's buttons need ipywidgets, in mailsim's notebooks extra:"
                " pip install 'mailsim[notebooks]' (in the repository: make lab, or"
                " .venv/bin/pip install -e '.[notebooks]'); without them,"
                " StepViewer(result).draw(step) draws any step as a figure",
                name="ipywidgets",
            ) from None

        count = max(len(self), 1)
        # The slider counts as the text does: "step 1" is "Step 1 of N".
        slider = w.IntSlider(value=1, min=1, max=count, description="step")
        play = w.Play(value=1, min=1, max=count, interval=800, description="Play")
        w.jslink((play, "value"), (slider, "value"))
        back, forward = w.Button(description="◀ Back"), w.Button(description="Next ▶")
        # A journey is a few conversations of many steps: jump from one to the next.
        wide = w.Layout(width="auto")
        earlier = w.Button(
            description="◀◀ Previous conversation",
            layout=wide,
            tooltip="back to where the talk turned to this conversation, or the turn before",
        )
        later = w.Button(description="Next conversation ▶▶", layout=wide,
                         tooltip="on to where the talk turns to another conversation")  # fmt: skip
        # One toggle per protocol, in the order they first appear: a click shows or hides
        # it (a multiple-choice list would need Ctrl-click, which nobody guesses).
        choices = list(dict.fromkeys(self._all["protocol"]))
        toggles = {
            name: w.ToggleButton(value=True, description=name, tooltip=f"show {name}",
                                 layout=w.Layout(width="auto"))
            for name in choices
        }  # fmt: skip
        picture = w.Image(format="png", layout=w.Layout(width="100%", height="auto"))
        events = w.Select(options=self._choices(), value=1, rows=8, description="events",
                          layout=w.Layout(width="100%"))  # fmt: skip
        packet = w.HTML()
        fig = plt.figure(figsize=(12.8, 7.2), layout="constrained")
        plt.close(fig)  # drawn into the Image below, not by pyplot's own display

        def show(step: int) -> None:
            # The picture's bytes are replaced in one message to the front end: no output
            # area to clear and fill again, so nothing can show blank or half drawn.
            self.draw(step - 1, fig)
            picture.value = png(fig)
            if len(self) and events.value != step:
                events.value = step
            if self.simple:
                return
            pdu = self.pdu(step - 1) if len(self) else None
            packet.value = (
                f"<pre style='font-size:14px'>{html.escape(str(pdu))}</pre>"
                if pdu is not None
                else "<p>no packet: the client gave up on its own</p>"
            )

        def on_pick(change: dict[str, Any]) -> None:
            if change["new"] is not None and change["new"] != slider.value:
                slider.value = int(change["new"])

        def on_slide(change: dict[str, Any]) -> None:
            show(int(change["new"]))

        def on_filter(_change: dict[str, Any]) -> None:
            shown = tuple(name for name, toggle in toggles.items() if toggle.value)
            self.protocols = shown or None
            slider.max = play.max = max(len(self), 1)
            slider.value = min(slider.value, slider.max)
            events.options = self._choices()
            show(slider.value)

        slider.observe(on_slide, names="value")
        events.observe(on_pick, names="value")
        for toggle in toggles.values():
            toggle.observe(on_filter, names="value")
        back.on_click(lambda _: setattr(slider, "value", max(slider.value - 1, 1)))
        forward.on_click(lambda _: setattr(slider, "value", min(slider.value + 1, slider.max)))
        earlier.on_click(
            lambda _: setattr(slider, "value", self.previous_conversation(slider.value - 1) + 1)
        )
        later.on_click(
            lambda _: setattr(slider, "value", self.next_conversation(slider.value - 1) + 1)
        )
        show(1)
        self._controls = {
            "slider": slider,
            "play": play,
            "back": back,
            "next": forward,
            "previous conversation": earlier,
            "next conversation": later,
            "protocols": toggles,
            "picture": picture,
            "events": events,
            "packet": packet,
        }
        buttons = w.HBox([back, forward, earlier, later, play, slider],
                         layout=w.Layout(flex_flow="row wrap"))  # fmt: skip
        if self.simple:
            return w.VBox([buttons, picture])
        return w.VBox(
            [buttons, w.HBox(list(toggles.values())), events, picture, packet]
        )  # fmt: skip

    def _choices(self) -> list[tuple[str, int]]:
        """The event list's rows, each with its step number (counted from 1)."""
        return [(line, k + 1) for k, line in enumerate(self.event_list())]


def _in_plain_words(step: str, code: str, protocol: str) -> str:
    """A step's meaning for a school class: :data:`PLAIN`'s words, else the reference's
    without RFC numbers or the protocol's name the step's first line already says."""
    plain = PLAIN.get(code) or PLAIN.get(step) or PLAIN.get(step.split(" ", 1)[0].removesuffix(","))
    if plain:
        return plain
    what = re.sub(r" \(RFC [^)]*\)", "", meaning(step, code))
    return what.removeprefix(f"{protocol.upper()}: ")


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes at 100 dpi (1280×720 for the project's figures)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def headers_reader(text: str = "") -> Any:
    """A box to paste a message's headers into, a button, and the route's table and
    drawing below it. The drawing is an Image whose bytes the click replaces, as in the
    step viewer: a figure shown through an output area that is cleared and filled again
    could come out blank or partial when clicks came quickly."""

    import ipywidgets as w

    from mailsim import trace
    from mailsim.plot.received import received

    box = w.Textarea(value=text, placeholder="paste headers here",
                     layout=w.Layout(width="100%", height="200px"))  # fmt: skip
    button = w.Button(description="Show the route", button_style="primary")
    table = w.HTML()
    picture = w.Image(format="png", layout=w.Layout(width="100%", height="auto"))

    def on_click(_: Any) -> None:
        route = trace.parse(box.value)
        table.value = f"<pre>{html.escape(trace.table(route))}</pre>"
        if not route.hops:
            picture.value = b""
            return
        try:
            ax = received(route)
        except ValueError as exc:  # a loop of hundreds of hops: said, not drawn
            table.value += f"<p>{html.escape(str(exc))}</p>"
            picture.value = b""
            return
        picture.value = png(ax.figure)
        plt.close(ax.figure)

    button.on_click(on_click)
    reader = w.VBox([box, button, table, picture])
    reader.controls = {"box": box, "button": button, "table": table, "picture": picture}
    return reader
