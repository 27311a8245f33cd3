"""The recorder: every protocol step, mail hop and outcome, appended to columns.

Agents are handed one Recorder when the world is built and never keep records of their
own. Rows are appended to per-column lists of primitives; DataFrames are made only when
a Result is asked for them.
"""

from __future__ import annotations

from typing import Any

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
        self.events: dict[str, list[Any]] = {c: [] for c in EVENT_COLUMNS}
        self.hops: dict[str, list[Any]] = {c: [] for c in HOP_COLUMNS}
        self._event_cols = [self.events[c] for c in EVENT_COLUMNS]
        self._hop_cols = [self.hops[c] for c in HOP_COLUMNS]
        if detail != "full":
            self.event = self._skip  # type: ignore[method-assign]
        if detail == "outcomes":
            self.hop = self._skip  # type: ignore[method-assign]

    def _skip(self, *values: Any) -> None:
        """Not kept at this level of detail."""

    def event(self, *values: Any) -> None:
        """Append one protocol step; values in EVENT_COLUMNS order."""
        for column, value in zip(self._event_cols, values, strict=True):
            column.append(value)

    def hop(self, *values: Any) -> None:
        """Append one mail hop of one recipient's copy; values in HOP_COLUMNS order."""
        for column, value in zip(self._hop_cols, values, strict=True):
            column.append(value)

    @property
    def n_events(self) -> int:
        return len(self.events["time"])

    def event_row(self, i: int) -> dict[str, Any]:
        return {c: self.events[c][i] for c in EVENT_COLUMNS}

    def frame(self, table: str) -> pd.DataFrame:
        columns = self.events if table == "events" else self.hops
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
