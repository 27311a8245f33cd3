"""The clock's look-ahead (mailsim.clock): it moves at once only where SimPy, stepping
through the same waits as timeouts, would process no other event meanwhile."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailsim.clock import Clock


def test_a_run_stops_before_the_wait_an_event_falls_in_ties_included():
    env = Clock(initial_time=10.0)
    env.timeout(0.5)  # due at 10.5: the third wait ends there, a tie
    times: list[float] = []
    assert env.skip_run((0.25, 0.125, 0.125, 1.0), 0, times) == 2
    assert times == [10.25, 10.375]
    assert env.now == 10.375
    env.timeout(0.125)  # the caller's timeout for the wait at index 2, due at 10.5 too
    env.step()
    env.step()
    assert env.now == 10.5
    assert env.skip_run((0.25, 0.125, 0.125, 1.0), 3, times) == 4
    assert times == [10.25, 10.375, 11.5]
    assert env.now == 11.5


def test_a_run_with_nothing_else_due_goes_to_its_end():
    env = Clock()
    times: list[float] = []
    assert env.skip_run((0.1, 0.2, 0.3), 0, times) == 3
    assert times == [0.1, 0.1 + 0.2, 0.1 + 0.2 + 0.3]  # the play's additions, in order
    assert env.now == times[-1]
    assert env.skip_run((0.1,), 1, times) == 1  # nothing left: nothing moves
    assert env.now == times[-1]


@given(
    waits=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]) | st.floats(0.0, 1.0), min_size=1,
                   max_size=20),
    others=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5]) | st.floats(0.0, 5.0), max_size=5),
)  # fmt: skip
def test_a_run_reaches_the_times_its_timeouts_would_in_the_same_order(waits, others):
    """A run that skips where it can and yields a timeout where it cannot reaches the
    times of a process that yields a timeout for every wait, bit for bit, and in the
    same order with the other events, ties included (round numbers make them)."""

    def log(env: Clock, skipping: bool) -> list[tuple[str, float]]:
        seen: list[tuple[str, float]] = []
        for k, at in enumerate(others):
            env.timeout(at).callbacks.append(lambda _, k=k: seen.append((f"other {k}", env.now)))

        def skipped(first: int) -> int:  # the positions passed at once, logged
            if not skipping:
                return first
            times: list[float] = []
            i = env.skip_run(tuple(waits), first, times)
            seen.extend(("wait", t) for t in times)
            return i

        def session():
            i = skipped(0)
            while i < len(waits):
                yield env.timeout(waits[i])
                seen.append(("wait", env.now))
                i = skipped(i + 1)

        env.process(session())
        env.run()
        return seen

    assert log(Clock(), skipping=True) == log(Clock(), skipping=False)
