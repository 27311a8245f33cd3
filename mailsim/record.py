"""The recorder: every protocol step, mail hop and outcome, appended to columns.

Agents are handed one Recorder when the world is built and never keep records of their
own. Protocol steps go into typed arrays — times as doubles, sessions and sizes as
4-byte integers, every text (node, protocol, verb, code, the line itself) as a 4-byte code into
one shared vocabulary, since the same few hundred strings recur — about 52 bytes a step;
DataFrames are made only when a Result is asked for them.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np
import pandas as pd

EVENT_COLUMNS = (
    "time",  # when the step left its sender (s)
    "arrive",  # when it reached its receiver (s)
    "message",  # message id, or "" for steps that serve no one message (an empty poll)
    "session",  # session id: one TCP connection or one DNS exchange
    "src",
    "dst",
    "protocol",  # tcp, tls, dns, smtp, lmtp, pop3
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
    "protocol",  # submission, smtp, lmtp, pop3
    "session",
    "start",
    "end",
    "attempts",
    "outcome",  # the deciding reply, e.g. "250 2.0.0 Ok: queued as 1A2B3C4D5E"
    "code",
    "tls",  # "1.3", "1.2" or "" (plaintext)
    "auth",
    "duplicate",  # a hop of a second copy made by a lost 250
)


# What an eavesdropper read of one step (see :mod:`mailsim.eavesdrop`); kept at every level
# of detail: it is an outcome of the scenario, like a message's fate.
OVERHEARD_COLUMNS = ("eavesdropper", "time", "session", "message", "src", "dst", "protocol",
                     "what", "detail", "bytes")  # fmt: skip


# Typed array codes of the numeric event columns; every other column is text, stored as
# an "i" (4-byte) code into the recorder's vocabulary.
_EVENT_TYPES = {"time": "d", "arrive": "d", "session": "i", "bytes": "i"}

# What is kept: every protocol step, one row per mail hop, or only each copy's outcome
# (the messages table, which is built from the copies themselves).
DETAILS = ("full", "hops", "outcomes")


class Recorder:
    """Columnar store of events and hops for one run, at a chosen level of detail. The
    level changes only what is kept, never what is simulated: timings are the same."""

    def __init__(self, detail: str = "full") -> None:
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
        self.detail = detail
        # Events: one typed array per column; text columns hold codes into ``words``.
        self.events: dict[str, array[Any]] = {
            c: array(_EVENT_TYPES.get(c, "i")) for c in EVENT_COLUMNS
        }
        self.words: list[str] = []
        self._code_of: dict[str, int] = {}
        self.hops: dict[str, list[Any]] = {c: [] for c in HOP_COLUMNS}
        self.heard: list[tuple[Any, ...]] = []
        self._hop_cols = [self.hops[c] for c in HOP_COLUMNS]
        if detail != "full":
            self.event = self._skip  # type: ignore[method-assign]
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
    ) -> None:
        """Append one protocol step (the columns of EVENT_COLUMNS, in order)."""
        e, word = self.events, self._word
        e["time"].append(time)
        e["arrive"].append(arrive)
        e["message"].append(word(message))
        try:
            e["session"].append(session)
            e["bytes"].append(nbytes)
        except OverflowError:  # beyond 4-byte integers (a message over 2 GiB): widen
            rows = len(e["time"]) - 1  # the complete rows before this one
            for name in ("session", "bytes"):
                e[name] = array("q", e[name][:rows])
            e["session"].append(session)
            e["bytes"].append(nbytes)
        e["src"].append(word(src))
        e["dst"].append(word(dst))
        e["protocol"].append(word(protocol))
        e["step"].append(word(step))
        e["code"].append(word(code))
        e["detail"].append(word(detail))

    def _word(self, text: str) -> int:
        code = self._code_of.get(text)
        if code is None:
            code = self._code_of[text] = len(self.words)
            self.words.append(text)
        return code

    def hop(self, *values: Any) -> None:
        """Append one mail hop of one recipient's copy; values in HOP_COLUMNS order."""
        for column, value in zip(self._hop_cols, values, strict=True):
            column.append(value)

    def overheard(self, *values: Any) -> None:
        """Append what one eavesdropper read of one step; values in OVERHEARD_COLUMNS order."""
        self.heard.append(values)

    @property
    def n_events(self) -> int:
        return len(self.events["time"])

    def event_row(self, i: int) -> dict[str, Any]:
        words = self.words
        return {
            c: self.events[c][i] if c in _EVENT_TYPES else words[self.events[c][i]]
            for c in EVENT_COLUMNS
        }

    def frame(self, table: str) -> pd.DataFrame:
        if table == "overheard":
            return pd.DataFrame(self.heard, columns=list(OVERHEARD_COLUMNS))
        if table == "events":
            words = np.array(self.words, dtype=object)
            # Copies (np.array reads each array's own item type): the run may go on (a
            # stepper) and the arrays grow.
            columns: dict[str, Any] = {
                c: np.array(
                    self.events[c], dtype=np.float64 if c in ("time", "arrive") else np.int64
                )
                if c in _EVENT_TYPES
                else words[np.array(self.events[c], dtype=np.int64)]
                for c in EVENT_COLUMNS
            }
        else:
            columns = self.hops
        frame = pd.DataFrame(columns)
        if table == "events":
            # Rows are appended when a step arrives; the table reads in order of sending.
            frame = frame.sort_values("time", kind="stable", ignore_index=True)
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
