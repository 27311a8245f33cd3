"""The packets of a run, without a capture reader: order, progress, refusals."""

from __future__ import annotations

import pytest

import mailsim
from mailsim import segments
from tests.conftest import ROOT


def test_packets_leave_in_order_and_every_session_opens_and_closes(classroom_result):
    packets = classroom_result.packets
    times = [p.time for p in packets]
    assert times == sorted(times)
    assert list(segments.stream(classroom_result)) == packets
    tcp = classroom_result.sessions[classroom_result.sessions["transport"] == "tcp"]
    for session in tcp["session"]:
        flags = [p.flags for p in packets if p.session == session]
        assert flags[:3] == ["S", "SA", "A"]
        assert flags[-3:] == ["FA", "FA", "A"]  # the server closes first, after QUIT


def test_writing_a_capture_says_how_far_it_got(tmp_path):
    result = mailsim.run(ROOT / "scenarios" / "slow-server.yaml")
    told: list[tuple[float, float]] = []
    count = result.to_pcap(tmp_path / "s.pcap", progress=lambda d, t: told.append((d, t)))
    assert count == len(result.packets)
    assert len(told) == count // 4096 + 1
    done = [d for d, _ in told]
    assert done == sorted(done)
    assert told[-1] == (result.end_time, result.end_time)


def test_a_capture_needs_every_step_and_a_known_place(tmp_path):
    outcomes = mailsim.run(ROOT / "scenarios" / "classroom.yaml", detail="hops")
    with pytest.raises(ValueError, match="a capture needs every protocol step: run with"
                       " detail='full', not 'hops'"):  # fmt: skip
        outcomes.to_pcap(tmp_path / "x.pcap")
    full = mailsim.run(ROOT / "scenarios" / "classroom.yaml")
    with pytest.raises(ValueError, match=r"no link or eavesdropper 'r-school,r-nowhere'; links:"):
        full.to_pcap(tmp_path / "x.pcap", on="r-school,r-nowhere")
    assert not (tmp_path / "x.pcap").exists()
