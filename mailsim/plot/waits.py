"""Connections that waited for a free session: every session of the server was busy, so
the connection sat in the listen queue after its handshake. The servers figure draws
these waits on the server's row, the timeline on the hop that waited."""

from __future__ import annotations

from collections.abc import Iterator

from mailsim.result import Result

WAIT_MIN = 0.01  # seconds: a greeting later than this after the handshake waited for a slot


def waiting(result: Result) -> Iterator[tuple[str, tuple[float, float]]]:
    """Connections that waited for a free session (every session busy): from the
    client's ACK reaching the server to the session's next step (the 220 greeting, or an
    implicit-TLS ClientHello), where that took longer than WAIT_MIN."""
    events = result.events
    if events.empty:
        return
    acks = events[(events["protocol"] == "tcp") & (events["step"] == "ACK")]
    acks = acks.drop_duplicates("session")
    later = events[events["protocol"] != "tcp"].groupby("session")["time"].min()
    table = acks.join(later.rename("next"), on="session", how="inner")
    table = table[table["next"] - table["arrive"] > WAIT_MIN]
    for node, start, end in zip(table["dst"], table["arrive"], table["next"], strict=True):
        yield str(node), (float(start), float(end))
