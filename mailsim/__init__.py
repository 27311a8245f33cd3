"""mailsim: an educational simulation of how an e-mail travels.

>>> import mailsim
>>> result = mailsim.run(mailsim.load("scenarios/classroom.yaml"))
>>> result.messages[["id", "recipient", "status"]]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailsim.errors import InputError, ScenarioError
from mailsim.result import Result
from mailsim.scenario import Scenario, load, loads
from mailsim.stepper import Stepper
from mailsim.sweep import sweep

__version__ = "0.1.0"
__all__ = [
    "InputError",
    "Result",
    "Scenario",
    "ScenarioError",
    "Stepper",
    "__version__",
    "load",
    "loads",
    "run",
    "sweep",
]


def run(
    scenario: Scenario,
    seed: int = 0,
    detail: str = "full",
    progress: Callable[[float, float], None] | bool | None = None,
) -> Result:
    """Simulate ``scenario`` with ``seed``: a pure function of the two. ``detail`` says
    what is kept: ``full`` (every protocol step), ``hops`` (one row per mail hop) or
    ``outcomes`` (one row per message and recipient); the timings are the same.
    ``progress(now, duration)`` follows the simulated time of a long run;
    ``progress=True`` shows it as a tqdm bar (a widget in a notebook)."""
    from mailsim.world import World

    world = World(scenario, seed, detail)
    if progress is True:
        from tqdm.auto import tqdm

        with tqdm(total=round(scenario.duration), desc="simulated s", unit="s") as bar:

            def follow(now: float, limit: float) -> None:
                bar.update(round(now) - bar.n)

            world.run(progress=follow)
            bar.update(bar.total - bar.n)  # done: every message ended before the limit
    else:
        world.run(progress=progress or None)
    return world_result(world)


def world_result(world: Any) -> Result:
    return Result(
        scenario=world.scenario,
        seed=world.seed,
        version=__version__,
        end_time=world.env.now,
        recorder=world.recorder,
        copies=list(world.copies.values()),
        duplicates=world.duplicates,
        epoch=world.epoch,
    )
