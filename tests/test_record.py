"""The recorder: packed steps with one vocabulary, decoded exactly into DataFrames."""

from __future__ import annotations

import struct

import pytest

from mailsim.record import NARROW, WIDE, Recorder


def test_rows_come_back_exactly_and_huge_sizes_widen_every_step():
    recorder = Recorder("full")
    recorder.event(1.0, 1.5, "m1", 7, "a", "b", "smtp", "EHLO", "", "EHLO a", 20)
    recorder.event(2.0, 2.5, "m1", 7, "b", "a", "smtp", "250", "250", "250 ok", 10,
                   "250-a\r\n250 ok\r\n")  # fmt: skip
    assert (recorder.layout, len(recorder.packed)) == (NARROW, 2 * 56)
    recorder.event(3.0, 9.0, "m1", 2**33, "a", "b", "smtp", "message", "", "(5 GB) .", 5 * 10**9)
    recorder.event(0.5, 9.5, "", 8, "c", "d", "dns", "query", "", "MX b.example", 33)
    assert (recorder.layout, len(recorder.packed)) == (WIDE, 4 * 64)
    frame = recorder.frame("events")  # in order of sending
    assert list(frame["time"]) == [0.5, 1.0, 2.0, 3.0]
    assert list(frame["arrive"]) == [9.5, 1.5, 2.5, 9.0]
    assert list(frame["bytes"]) == [33, 20, 10, 5 * 10**9]
    assert list(frame["session"]) == [8, 7, 7, 2**33]
    assert list(frame["src"].astype(str)) == ["c", "a", "b", "a"]
    assert list(frame["detail"]) == ["MX b.example", "EHLO a", "250 ok", "(5 GB) ."]
    assert recorder.wire_texts() == [
        "MX b.example\r\n", "EHLO a\r\n", "250-a\r\n250 ok\r\n", "(5 GB) .\r\n"
    ]  # fmt: skip
    assert recorder.event_row(2) == {
        "time": 3.0, "arrive": 9.0, "message": "m1", "session": 2**33, "src": "a",
        "dst": "b", "protocol": "smtp", "step": "message", "code": "", "detail": "(5 GB) .",
        "bytes": 5 * 10**9,
    }  # fmt: skip
    assert recorder.column("arrive").tolist() == [1.5, 2.5, 9.0, 9.5]  # as they arrived
    assert recorder.n_events == 4
    assert len(recorder.words) == len(set(recorder.words))  # each text stored once


def test_a_frame_taken_mid_run_does_not_stop_the_recording():
    recorder = Recorder("full")
    recorder.event(1.0, 1.5, "m1", 1, "a", "b", "tcp", "SYN", "", "SYN", 40)
    assert len(recorder.frame("events")) == 1
    recorder.event(2.0, 2.5, "m1", 1, "b", "a", "tcp", "SYN-ACK", "", "SYN-ACK", 40)
    assert len(recorder.frame("events")) == 2


def test_the_world_gives_the_agents_all_they_may_use(classroom):
    """Agents and sessions see the world through ``WorldView``: every member it names is
    the world's, so the narrow interface and the world cannot drift apart."""
    from mailsim.agents.context import WorldView
    from mailsim.world import World

    world = World(classroom, 0)
    attributes = set(WorldView.__annotations__)
    methods = {name for name, value in vars(WorldView).items()
               if callable(value) and not name.startswith("_")}  # fmt: skip
    members = attributes | methods
    assert (len(attributes), len(methods)) == (19, 16)
    missing = sorted(name for name in members if not hasattr(world, name))
    assert missing == []


def test_a_recorder_pickles_and_copies_whatever_its_layout():
    """A Result goes between processes and is copied: its recorder too, narrow or wide."""
    import copy
    import pickle

    recorder = Recorder("full")
    recorder.event(1.0, 1.5, "m1", 7, "a", "b", "smtp", "EHLO", "", "EHLO a", 20)
    for layout in (NARROW, WIDE):
        assert recorder.layout is layout
        for again in (pickle.loads(pickle.dumps(recorder)), copy.deepcopy(recorder)):
            assert again.layout is layout
            again.event(2.0, 2.5, "m1", 7, "b", "a", "smtp", "250", "250", "250 ok", 10)
            assert again.n_events == recorder.n_events + 1
            assert again.event_row(0) == recorder.event_row(0)
        recorder.event(3.0, 9.0, "m1", 8, "a", "b", "smtp", "message", "", "(5 GB) .", 5 * 10**9)


def test_a_size_no_layout_takes_is_refused_without_changing_the_steps():
    recorder = Recorder("full")
    recorder.event(1.0, 1.5, "m1", 7, "a", "b", "smtp", "EHLO", "", "EHLO a", 20)
    with pytest.raises(struct.error):
        recorder.event(2.0, 2.5, "m1", 7, "b", "a", "smtp", "250", "250", "250 ok", 8.0)
    with pytest.raises(struct.error):
        recorder.event(2.0, 2.5, "m1", 7, "b", "a", "smtp", "250", "250", "250 ok", 2**64)
    assert (recorder.layout, recorder.n_events) == (NARROW, 1)
