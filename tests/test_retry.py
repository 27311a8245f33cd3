"""Retry schedules as the real queue managers compute them: Postfix's deferred-queue scans
with their phase, Exim's retry rule played at its queue runs. Pure arithmetic first,
then the same numbers in runs of the shipped scenarios."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mailsim
from mailsim.retry import (
    Schedule,
    exim_due,
    exim_next_try,
    next_scan,
    postfix_due,
)
from mailsim.scenario import validate
from tests.conftest import SCENARIOS

DAY = 86400


def load(name: str, *overrides: str) -> dict[str, Any]:
    scenario = mailsim.load(SCENARIOS / f"{name}.yaml", list(overrides))
    return scenario.model_dump(by_alias=True, exclude_none=True)


def attempts_until_given_up(schedule: Schedule, arrived: float, first_failure: float):
    """Every attempt of a message whose every attempt fails (a destination that never
    comes back), and when it is given up."""
    failures = [first_failure]
    while (later := schedule.next_attempt(arrived, failures)) is not None:
        failures.append(later)
    return failures


# -- Postfix: backoff, then the next scan of the deferred queue ------------------------------


def test_postfix_takes_a_deferred_message_from_one_second_before_its_time_stamp():
    # Refused at 10.86 s (qmgr's clock: second 10), queued at 10.05 s: 300 s of backoff
    # stamp the file for second 310; a scan at second 309 takes it (qmgr_active.c).
    assert postfix_due(10.05, 10.86, 300, 4000) == 309
    # Older messages back off for their age, clamped to 4000 s.
    assert postfix_due(10.05, 600.3, 300, 4000) == 600 + 590 - 1
    assert postfix_due(10.05, 4800.3, 300, 4000) == 4800 + 4000 - 1


def test_scans_come_every_interval_from_their_phase():
    assert next_scan(309, 300, 0.0) == 600
    assert next_scan(309, 300, 9.0) == 309  # a scan at the very second
    assert next_scan(309, 300, 8.5) == 608.5  # half a second too early: the next one
    assert next_scan(600, 300, 0.0) == 600
    # Never the scan that has just found the message: the next one.
    assert next_scan(0, 300, 100.0, after=100.0) == 400


def test_postfix_first_retry_at_pinned_phases():
    arrived, refused = 10.05, 10.86
    assert Schedule(scan_phase=0.0).next_attempt(arrived, [refused]) == 600.0
    assert Schedule(scan_phase=9.0).next_attempt(arrived, [refused]) == 309.0
    assert Schedule(scan_phase=299.5).next_attempt(arrived, [refused]) == 599.5


@given(phase=st.floats(0, 300, exclude_max=True), refused=st.floats(0.001, 86400))
def test_postfix_first_retry_is_299_to_599_s_after_the_failure(phase, refused):
    """queue_run_delay 300 s, minimal_backoff_time 300 s: due one second before
    second(refusal) + 300, taken by the first scan from then on, whatever the phase."""
    retry = Schedule(scan_phase=phase).next_attempt(refused, [refused])
    second = math.floor(refused)
    assert second + 299 <= retry < second + 599
    assert (retry - phase) / 300 == pytest.approx(round((retry - phase) / 300), abs=1e-9)
    assert retry - 300 < second + 299  # the scan before was too early


def test_postfix_backoff_doubles_then_stops_at_4000_s():
    schedule = Schedule(scan_phase=0.0, maximal_queue_lifetime=3 * 3600)
    tries = attempts_until_given_up(schedule, 10.05, 10.3)
    assert tries == [10.3, 600, 1200, 2400, 4800, 9000, 13200]  # then 3 h are up
    assert [b - a for a, b in itertools.pairwise(tries[3:])] == [2400, 4200, 4200]


# -- Exim: the retry rule, and queue runs ------------------------------------------------------


def test_exim_rule_f_2h_15m_still_applies_at_exactly_two_hours():
    """retry.c picks the first rule with failing_interval <= cutoff: a failure exactly
    7200 s after the first is still under F,2h,15m (next try +15 min); a second later it
    is under G,16h,1h,1.5 (at least +1 h)."""
    earlier = [10.2, 1800.3, 3600.3, 5400.3]
    assert exim_next_try([*earlier, 7210.9]) == 7210 + 900
    assert exim_next_try([*earlier, 7211.0]) == 7211 + 3600


def test_exim_g_rule_grows_from_the_gap_it_had_predicted():
    # G: the last gap is the smaller of the predicted and the real one, × 1.5.
    failures = [10.0, 9000.0]  # the 15-min rule had predicted 900 s: 1 h, the minimum
    assert exim_next_try(failures) == 9000 + 3600
    assert exim_next_try([*failures, 12600.0]) == 12600 + 5400
    assert exim_next_try([*failures, 12600.0, 18000.0]) == 18000 + 8100
    # A try later than predicted still grows from the prediction (8100, not 9000).
    assert exim_next_try([*failures, 12600.0, 18000.0, 27000.0]) == 27000 + 12150


def test_exim_times_out_an_address_failing_for_more_than_4_days():
    assert exim_next_try([10.0, 10.0 + 4 * DAY]) == 10 + 4 * DAY + 6 * 3600
    assert exim_next_try([10.0, 11.0 + 4 * DAY]) is None
    # A message older than 4 days is tried at the next queue run, whatever its retry time.
    assert exim_due(10.0, [10.0, 340200.0]) == 10 + 4 * DAY + 1


# The arithmetic of Exim's default rule at -q30m, queue runs at 0, 1800, 3600 … s, for a
# message that arrives at 10 s and whose every attempt fails (first failure: second 10).
# Each failure is judged by the rule whose cutoff the failing time has not passed:
#   F,2h,15m      retry 15 min later, but only a queue run tries: 10 (on arrival), 1800,
#                 3600, 5400, 7200 (failing 7190 s <= 2 h: still F)              5 tries
#   G,16h,1h,1.5  9000 (+1 h → 12600), 12600 (+1.5 h → 18000), 18000 (+2.25 h → 26100:
#                 the run at 27000), 27000 (+12150 s → 39150: 39600), 39600 (+18225 s
#                 → 57825: 59400)                                                5 tries
#   F,4d,6h       59400 (failing 16.5 h), then every 6 h — a multiple of 30 min — up to
#                 340200                                                        14 tries
#   then, 4 days after its arrival, the run at 347400 tries the message although its
#   retry time is 6 h away (the "ultimate address timeout"); the address has been
#   failing for 347390 s > 4 d, and the message is returned: 5 + 5 + 14 + 1 = 25
#   attempts, the last at 4.02 d.
EXIM_Q30M = [10.3, 1800, 3600, 5400, 7200, 9000, 12600, 18000, 27000, 39600, 59400]
EXIM_Q30M += [59400 + 6 * 3600 * k for k in range(1, 14)] + [347400]


def test_exim_at_q30m_tries_25_times_and_returns_the_message_after_4_02_days():
    schedule = Schedule(policy="exim", scan_phase=0.0)
    tries = attempts_until_given_up(schedule, 10.05, 10.3)
    assert tries == EXIM_Q30M
    assert len(tries) == 25
    assert tries[-1] / DAY == pytest.approx(4.0208, abs=1e-4)


@given(phase=st.floats(0, 1800, exclude_max=True))
def test_exim_at_q30m_gives_up_after_24_or_25_attempts_at_its_queue_runs(phase):
    tries = attempts_until_given_up(Schedule(policy="exim", scan_phase=phase), 10.05, 10.3)
    assert len(tries) in (24, 25)
    for t in tries[1:]:  # every retry is a queue run
        assert (t - phase) / 1800 == pytest.approx(round((t - phase) / 1800), abs=1e-9)
    # Given up at the first run after 4 days in the queue (or the one that finds it
    # failing for longer than that).
    assert 10 + 4 * DAY < tries[-1] <= 10 + 4 * DAY + 1801


def test_exim_without_its_queue_runs_would_try_29_times():
    """The count a retry at each computed retry time gives (a queue run every second):
    9 failures under F,2h,15m (0, 15 … 120 min after the first: <= 2 h), 6 under G, 13
    every 6 h, and the one as soon as the message is 4 days old — 29, returned at 4.00 d.
    At -q30m the queue runs swallow four of them."""
    schedule = Schedule(policy="exim", queue_runner_interval=1.0, scan_phase=0.0)
    tries = attempts_until_given_up(schedule, 10.0, 10.0)
    assert len(tries) == 29
    assert tries[-1] == 10 + 4 * DAY + 1


# -- in the shipped scenarios --------------------------------------------------------------


def query_times(result: mailsim.Result, message: str) -> list[float]:
    """When each delivery attempt of ``message`` by its sender's server began."""
    events = result.events
    return list(events[(events["message"] == message) & (events["step"] == "query MX")]["time"])


def test_greylisting_first_retries_spread_over_the_scan_interval_across_seeds():
    """postgrey refuses the first try (ends at 10.87 s, Postfix's second 10); the retry
    comes at the first scan from second 309 on: 309–609 s into the run, 299–599 s after
    the refusal, wherever the seed puts the scans; every seed is let through."""
    scenario = mailsim.load(SCENARIOS / "greylisting.yaml")
    retries = []
    for seed in range(200):
        result = mailsim.run(scenario, seed=seed, detail="full")
        relay = result.hops.query("message == 'm1' and src == 'msa-school'")
        assert list(relay["code"]) == ["450", "250"], seed
        assert relay["end"].iloc[0] == pytest.approx(10.866, abs=1e-3)
        retries.append(query_times(result, "m1")[1])
    assert all(309 <= t < 609 for t in retries)
    # They fill the range: every 30 s of it has some, and both ends are reached.
    assert {int((t - 309) // 30) for t in retries} == set(range(10))
    assert min(retries) < 312
    assert max(retries) > 606


@pytest.mark.parametrize(
    ("phase", "retries", "codes"),
    [
        ("0s", [600.0], ["450", "250"]),
        ("8.5s", [608.5], ["450", "250"]),
        # A scan at second 309 takes the message 298 s after the refusal: postgrey counts
        # whole seconds too, 309 - 10 = 299 < 300, and refuses it again.
        ("9s", [309.0, 609.0], ["450", "450", "250"]),
    ],
)
def test_greylisting_retry_is_exact_when_the_scan_phase_is_pinned(phase, retries, codes):
    data = load("greylisting", f"nodes.msa-school.queue.scan_phase={phase}")
    result = mailsim.run(validate(data), seed=7)
    assert query_times(result, "m1")[1:] == pytest.approx(retries, abs=1e-9)
    relay = result.hops.query("message == 'm1' and src == 'msa-school'")
    assert list(relay["code"]) == codes


def test_exim_at_q30m_tries_5_times_in_a_two_hour_outage():
    result = mailsim.run(mailsim.load(SCENARIOS / "retry-policies.yaml"), seed=0)
    assert query_times(result, "exim") == pytest.approx([10.05, 1800, 3600, 5400, 7200], abs=0.01)
    relay = result.hops.query("message == 'exim' and dst == 'mx-home'")
    assert list(relay["code"]) == ["4.4.1"] * 4 + ["250"]


def test_exim_q30m_in_a_two_hour_outage_over_phases():
    """With the phase drawn, the run at 15–30 min after the failure finds the retry time
    passed or not: 5 or 6 attempts, each at a queue run, never 9."""
    data = load("retry-policies")
    del data["nodes"]["mta-exim"]["queue"]["scan_phase"]
    counts = set()
    for seed in range(40):
        times = query_times(mailsim.run(validate(data), seed=seed, detail="full"), "exim")
        counts.add(len(times))
        runs = [(t - times[1]) / 1800 for t in times[1:]]  # every retry is a queue run
        assert runs == pytest.approx([round(r) for r in runs], abs=1e-9)
        assert times[1] - times[0] >= 899  # and none before the 15-minute retry time
    assert counts == {5, 6}


def test_exim_at_q30m_returns_the_message_after_25_attempts_in_a_week_long_outage():
    data = load(
        "mx-down",
        "nodes.msa-school.queue.policy=exim",
        "nodes.msa-school.queue.scan_phase=0s",
        "faults.0.end=7d",
        "duration=5d",
    )
    result = mailsim.run(validate(data), seed=0)
    relay = result.hops.query("message == 'm1' and src == 'msa-school'")
    assert len(relay) == 25
    assert query_times(result, "m1")[1:] == pytest.approx(EXIM_Q30M[1:], abs=1e-9)
    copy = result.copy("m1")
    assert copy.status == "expired"
    assert result.summary()["bounces_sent"] == 1


def test_a_servers_scan_phase_is_its_own_draw():
    """The phase comes from the server's own stream: changing another server's policy,
    or removing a message, moves no one else's retries."""
    data = load("retry-policies")
    for name in ("mta-postfix", "mta-exim"):
        del data["nodes"][name]["queue"]["scan_phase"]
    before = mailsim.run(validate(data), seed=3)
    data["nodes"]["mta-rfc"]["queue"]["policy"] = "exim"
    data["messages"] = [m for m in data["messages"] if m["id"] != "exim"]
    after = mailsim.run(validate(data), seed=3)
    assert query_times(after, "postfix") == query_times(before, "postfix")
    # …while another seed draws another phase.
    other = mailsim.run(validate(data), seed=4)
    assert query_times(other, "postfix")[1] != pytest.approx(query_times(after, "postfix")[1])


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "problem"),
    [
        ({"scan_phase": "300s"}, "scan_phase: less than queue_run_delay (5 min 0 s)"),
        ({"policy": "exim", "scan_phase": "30min"}, "less than queue_runner_interval (30 min 0 s)"),
        ({"queue_run_delay": "100s", "scan_phase": "2min"}, "less than queue_run_delay (1 min 40"),
        ({"scan_phase": "-1s"}, "scan_phase: must not be negative"),
        ({"queue_run_delay": "0.5s"}, "queue_run_delay: Input should be greater than or equal to 1"),
        ({"queue_runner_interval": 0}, "queue_runner_interval: Input should be greater than"),
    ],
)  # fmt: skip
def test_queue_settings_out_of_bounds_are_refused(queue, problem):
    data = load("mx-down")
    data["nodes"]["msa-school"]["queue"] = queue
    with pytest.raises(mailsim.errors.InputError) as caught:
        validate(data)
    assert any(problem in str(p) for p in caught.value.problems), caught.value.problems


def test_queue_settings_within_bounds_are_kept():
    data = load("mx-down")
    data["nodes"]["msa-school"]["queue"] = {"policy": "exim", "scan_phase": "1799s"}
    queue = validate(data).nodes["msa-school"].queue  # type: ignore[union-attr]
    assert (queue.scan_phase, queue.queue_runner_interval) == (1799.0, 1800.0)
