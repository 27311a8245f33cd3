"""The recorder: every protocol step, mail hop and outcome, kept compactly as it comes.

Agents are handed one Recorder when the world is built and never keep records of their
own. Each protocol step is packed into one growing buffer, 56 bytes a step: its times as
doubles, its session and size as 4-byte integers (8-byte for every step once a message
over 2 GiB is sent), every text (node, protocol, verb, code, the line itself) as a 4-byte
code into one shared vocabulary, since the same texts recur. One packing call a step
costs a third of appending to a typed array per column.
At ``outcomes`` a copy that has finished its journey is kept the same way, as its row of
the messages table, instead of as the copy itself. DataFrames are made only when a Result
is asked for them.
"""

from __future__ import annotations

import math
import struct
from array import array
from typing import TYPE_CHECKING, Any

from mailsim.message import COSTS

if TYPE_CHECKING:  # pandas and numpy are imported when a table is asked for
    import pandas as pd

EVENT_COLUMNS = (
    "time",  # when the step left its sender (s)
    "arrive",  # when it reached its receiver (s)
    "message",  # message id, or "" for steps that serve no one message (an empty poll)
    "session",  # session id: one TCP connection or one DNS exchange
    "src",
    "dst",
    "protocol",  # tcp, tls, dns, smtp, lmtp, pop3, imap
    "step",  # command verb, reply code, TCP or TLS message
    "code",  # reply code for replies, "" otherwise
    "detail",  # the line as it would appear in a transcript
    "bytes",
)
HOP_COLUMNS = (
    "message",
    "recipient",
    "index",
    "src",
    "dst",
    "protocol",  # submission, smtp, lmtp, pop3, imap
    "session",
    "start",
    "end",  # the next server holds the message (its 250 is being sent) or the attempt failed
    "acknowledged",  # the client learns it: the deciding reply has reached it
    "attempts",
    "outcome",  # the deciding reply, e.g. "250 2.0.0 Ok: queued as 1A2B3C4D5E"
    "code",
    "tls",  # "1.3", "1.2" or "" (plaintext)
    "auth",
    "duplicate",  # a hop of a second copy made by a lost 250
)


# One row per message and recipient (``Result.messages``); ``{part}_time`` is the share
# of the delay each part of COSTS took.
MESSAGE_COLUMNS = (
    "id", "kind", "sender", "recipient", "subject", "size", "status", "submitted_at",
    "delivered_at", "retrieved_at", "delay", "hops", "reason", "duplicates", "folder",
    "authentication", "retrieval", *(f"{name}_time" for name in COSTS),
)  # fmt: skip
# How a finished copy's row is kept (``Copy.outcome`` order, after its id): "d" doubles
# (NaN for "not yet"), "q"/"i" integers, "w" a code into the vocabulary (-1 for None).
_FINISHED_TYPES = (
    ("sender", "w"), ("recipient", "w"), ("subject", "w"), ("size", "q"), ("status", "w"),
    ("submitted_at", "d"), ("delivered_at", "d"), ("retrieved_at", "d"), ("delay", "d"),
    ("hops", "i"), ("reason", "w"), ("folder", "w"), ("authentication", "w"),
    ("retrieval", "w"), *((f"{name}_time", "d") for name in COSTS),
)  # fmt: skip

_FINISHED_HOPS = [name for name, _ in _FINISHED_TYPES].index("hops")


# What an eavesdropper read of one step (see :mod:`mailsim.eavesdrop`); kept at every level
# of detail: it is an outcome of the scenario, like a message's fate.
OVERHEARD_COLUMNS = ("eavesdropper", "time", "session", "message", "src", "dst", "protocol",
                     "what", "detail", "bytes")  # fmt: skip


# A step as packed (little-endian, no padding): the columns of EVENT_COLUMNS, then the
# text it put on the wire; times as doubles, session and size as 4-byte integers, every
# text as a 4-byte code into the recorder's vocabulary (-1 for no wire text): 56 bytes.
# A size beyond 4 bytes (a message over 2 GiB) widens every step to WIDE's 64 bytes.
_EVENT_TYPES = {"time": "d", "arrive": "d", "session": "i", "bytes": "i"}
_PACKED = (*EVENT_COLUMNS, "wire")


def _layout(numbers: dict[str, str]) -> struct.Struct:
    return struct.Struct("<" + "".join(numbers.get(c, "i") for c in _PACKED))


NARROW = _layout(_EVENT_TYPES)
WIDE = _layout({**_EVENT_TYPES, "session": "q", "bytes": "q"})

# What is kept: every protocol step, one row per mail hop, or only each copy's outcome
# (the messages table: made from the copies, or at ``outcomes`` from the finished copies'
# rows and the copies still on their way).
DETAILS = ("full", "hops", "outcomes")


class Recorder:
    """Columnar store of events and hops for one run, at a chosen level of detail. The
    level changes only what is kept, never what is simulated: timings are the same."""

    def __init__(self, detail: str = "full") -> None:
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
        self.detail = detail
        # Events: each step packed (NARROW, or WIDE), its texts as codes into ``words``;
        # among them the exact text it put on the wire where that is not its ``detail``
        # and CRLF (a multi-line reply, a secret the transcript hides: :meth:`wire_texts`).
        self.packed = bytearray()
        self.layout = NARROW  # until a number does not fit: then WIDE (_widen)
        self._pack = NARROW.pack
        self.words: list[str] = []
        self._code_of: dict[str, int] = {}
        self.hops: list[tuple[Any, ...]] = []  # one tuple a hop, in HOP_COLUMNS order
        self.heard: list[tuple[Any, ...]] = []
        # Finished copies, at ``outcomes``: their rows, in place of the copies themselves
        # (each with its Received stamps, delay parts and message: 2 KB against 0.2 KB).
        self.finished_seq = array("q")
        self.finished_ids: list[str] = []
        self.finished: list[array[Any]] = [
            array("i" if kind == "w" else kind) for _, kind in _FINISHED_TYPES
        ]
        self._finished_words = [kind == "w" for _, kind in _FINISHED_TYPES]
        if detail != "full":
            self.event = self.step = self._skip  # type: ignore[method-assign]
        if detail == "outcomes":
            self.hop = self._skip  # type: ignore[method-assign]

    def _skip(self, *values: Any) -> None:
        """Not kept at this level of detail."""

    def event(
        self,
        time: float,
        arrive: float,
        message: str,
        session: int,
        src: str,
        dst: str,
        protocol: str,
        step: str,
        code: str,
        detail: str,
        nbytes: int,
        wire: str | None = None,
    ) -> None:
        """Append one protocol step (the columns of EVENT_COLUMNS, in order, then the
        text it put on the wire when that is not ``detail`` and CRLF)."""
        self.step(time, arrive, message, session, (src, dst), (protocol, step, code, detail,
                  nbytes, wire))  # fmt: skip

    def step(
        self,
        time: float,
        arrive: float,
        message: str,
        session: int,
        ends: tuple[str, str],
        row: tuple[Any, ...],
    ) -> None:
        """:meth:`event`, with its two ends and its columns after them (protocol, step,
        code, detail, bytes, wire) as two tuples: a compiled session's replay keeps
        them so and writes a million steps a run."""
        codes = self._code_of
        src, dst = ends
        protocol, verb, code, detail, nbytes, wire = row
        try:  # the texts' codes, looked up in place: this runs for every step
            packed = self._pack(
                time, arrive, codes[message], session, codes[src], codes[dst], codes[protocol],
                codes[verb], codes[code], codes[detail], nbytes,
                -1 if wire is None else codes[wire],
            )  # fmt: skip
        except (KeyError, struct.error):  # a text not seen before, a number too large
            word = self._word
            values = (time, arrive, word(message), session, word(src), word(dst),
                      word(protocol), word(verb), word(code), word(detail), nbytes,
                      -1 if wire is None else word(wire))  # fmt: skip
            try:
                packed = self._pack(*values)
            except struct.error:
                if self.layout is WIDE:
                    raise
                packed = WIDE.pack(*values)  # or no layout takes it: raised, nothing changed
                self._widen()
        self.packed += packed

    def __getstate__(self) -> dict[str, Any]:
        """For pickling and copying: the layout by name (a Struct does not pickle)."""
        state = dict(self.__dict__)
        state["layout"], state["_pack"] = self.layout is WIDE, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.layout = WIDE if state["layout"] else NARROW
        self._pack = self.layout.pack

    def _widen(self) -> None:
        """Store sessions and sizes as 8-byte integers from now on, the steps so far too."""
        import numpy as np

        steps = self._steps()
        wide = np.empty(len(steps), dtype=_dtype(WIDE))
        for name in _PACKED:
            wide[name] = steps[name]
        self.packed = bytearray(wide.tobytes())
        self.layout, self._pack = WIDE, WIDE.pack

    def _word(self, text: str) -> int:
        code = self._code_of.get(text)
        if code is None:
            code = self._code_of[text] = len(self.words)
            self.words.append(text)
        return code

    def hop(self, *values: Any) -> None:
        """Append one mail hop of one recipient's copy; values in HOP_COLUMNS order."""
        assert len(values) == len(HOP_COLUMNS)
        self.hops.append(values)

    def finish(self, seq: int, outcome: tuple[Any, ...]) -> int:
        """Keep a finished copy's row (:meth:`Copy.outcome`, made ``seq``-th); its number."""
        self.finished_seq.append(seq)
        self.finished_ids.append(outcome[0])
        word = self._word
        for column, is_word, value in zip(
            self.finished, self._finished_words, outcome[1:], strict=True
        ):
            if is_word:
                column.append(-1 if value is None else word(value))
            else:
                column.append(math.nan if value is None else value)
        return len(self.finished_ids) - 1

    def finished_hops(self, row: int, hops: int) -> None:
        """A finished copy made one more hop (downloaded again)."""
        self.finished[_FINISHED_HOPS][row] = hops

    def finished_rows(self) -> list[tuple[int, tuple[Any, ...]]]:
        """The finished copies' rows as :meth:`Copy.outcome` gave them, with their seq."""
        words = self.words
        columns = [
            [None if code < 0 else words[code] for code in column]
            if is_word
            else [None if value != value else value for value in column]  # NaN: None
            if column.typecode == "d"
            else column.tolist()
            for column, is_word in zip(self.finished, self._finished_words, strict=True)
        ]
        return list(
            zip(self.finished_seq, zip(self.finished_ids, *columns, strict=True), strict=True)
        )

    def overheard(self, *values: Any) -> None:
        """Append what one eavesdropper read of one step; values in OVERHEARD_COLUMNS order."""
        self.heard.append(values)

    @property
    def n_events(self) -> int:
        return len(self.packed) // self.layout.size

    def event_row(self, i: int) -> dict[str, Any]:
        words = self.words
        values = self.layout.unpack_from(self.packed, i * self.layout.size)
        return {
            c: value if c in _EVENT_TYPES else words[value]
            for c, value in zip(EVENT_COLUMNS, values, strict=False)  # without the wire
        }

    def column(self, name: str) -> Any:
        """One column of the events as recorded, in the order the steps arrived (a
        NumPy array: numbers, or texts' codes into ``words``)."""
        return self._steps()[name]

    def _steps(self) -> Any:
        """The packed steps as a NumPy record array, over a copy of the buffer: the run
        may go on (a stepper) and the buffer grow."""
        import numpy as np

        return np.frombuffer(bytes(self.packed), dtype=_dtype(self.layout))

    def _sending_order(self, times: Any) -> Any:
        """The events' rows in order of sending (stable: steps sent together keep theirs)."""
        import numpy as np

        return np.argsort(times, kind="stable")

    def wire_texts(self) -> list[str]:
        """Each step's application text exactly as sent (commands and replies with their
        CRLFs, multi-line replies whole, secrets unmasked), in the rows of the events
        table; the content after DATA or RETR is not part of it."""
        steps = self._steps()
        words, details, wire = self.words, steps["detail"].tolist(), steps["wire"].tolist()
        return [
            words[details[i]] + "\r\n" if wire[i] < 0 else words[wire[i]]
            for i in self._sending_order(steps["time"]).tolist()
        ]

    def frame(self, table: str) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        if table == "overheard":
            return pd.DataFrame(self.heard, columns=list(OVERHEARD_COLUMNS))
        if table == "events":
            words = np.array(self.words, dtype=object)
            steps = self._steps()
            columns: dict[str, Any] = {
                c: steps[c].astype(np.float64 if c in ("time", "arrive") else np.int64)
                if c in _EVENT_TYPES
                else words[steps[c].astype(np.int64)]
                for c in EVENT_COLUMNS
            }
        else:
            columns = dict(zip(HOP_COLUMNS, map(list, zip(*self.hops, strict=True)), strict=False))
            columns = columns or {c: [] for c in HOP_COLUMNS}
        frame = pd.DataFrame(columns)
        if table == "events":
            # Rows are appended when a step arrives; the table reads in order of sending.
            frame = frame.iloc[self._sending_order(steps["time"])].reset_index(drop=True)
        else:
            # A hop is recorded when its session ends; number them in journey order.
            keys = ["message", "recipient", "duplicate"]
            frame = frame.sort_values([*keys, "start"], kind="stable")
            frame["index"] = frame.groupby(keys).cumcount() + 1
            frame = frame.reset_index(drop=True)
        for name in ("protocol", "src", "dst", "step", "code", "tls"):
            if name in frame:
                frame[name] = frame[name].astype("category")
        return frame


def _dtype(layout: struct.Struct) -> Any:
    """The NumPy dtype of steps packed as ``layout``: one field a column, no padding."""
    import numpy as np

    return np.dtype(list(zip(_PACKED, ("<" + c for c in layout.format[1:]), strict=True)))
