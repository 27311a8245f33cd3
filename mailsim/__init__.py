"""mailsim: an educational simulation of how an e-mail travels.

>>> import mailsim
>>> result = mailsim.run(mailsim.load("scenarios/classroom.yaml"))
>>> result.messages[["id", "recipient", "status"]]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mailsim.budget import MAX_MESSAGES
from mailsim.errors import InputError, ScenarioError
from mailsim.sweep import sweep  # the function; its module imports pandas when it runs

if TYPE_CHECKING:
    from mailsim.activity import grade
    from mailsim.builder import Builder
    from mailsim.result import Result
    from mailsim.scenario import Scenario, load, loads
    from mailsim.stepper import Stepper

__version__ = "0.1.0"
__all__ = [
    "Builder",
    "InputError",
    "Result",
    "Scenario",
    "ScenarioError",
    "Stepper",
    "__version__",
    "grade",
    "load",
    "loads",
    "run",
    "sweep",
]

# Imported on first use: ``mailsim --help`` or ``mailsim validate`` need neither pandas
# nor SimPy, and a student waits for every command.
_LAZY = {
    "Builder": "mailsim.builder",
    "Result": "mailsim.result",
    "Scenario": "mailsim.scenario",
    "load": "mailsim.scenario",
    "loads": "mailsim.scenario",
    "Stepper": "mailsim.stepper",
    "grade": "mailsim.activity",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mailsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def run(
    scenario: Scenario | str | os.PathLike[str] | Mapping[str, Any],
    seed: int = 0,
    detail: str = "full",
    progress: Callable[[float, float], None] | bool | None = None,
    *,
    max_messages: int = MAX_MESSAGES,
) -> Result:
    """Simulate ``scenario`` with ``seed``: a pure function of the two. ``scenario`` is a
    :class:`Scenario`, a scenario file's path, or a mapping as a file would hold it.
    ``detail`` says what is kept: ``full`` (every protocol step), ``hops`` (one row per
    mail hop) or ``outcomes`` (one row per message and recipient); the timings are the
    same. ``progress(now, duration)`` follows the simulated time of a long run;
    ``progress=True`` shows it as a tqdm bar (a widget in a notebook).

    A run that would send more than ``max_messages`` messages, or not fit in half of this
    machine's memory, is refused before it starts (InputError with the estimate, see
    :mod:`mailsim.budget`)."""
    from mailsim import budget
    from mailsim.rng import check_seed
    from mailsim.world import World

    scenario = as_scenario(scenario)
    seed = check_seed(seed)
    if detail not in DETAILS:
        raise ValueError(f"detail is one of {', '.join(DETAILS)}, not {detail!r}")
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(
            "progress takes True (a bar), False or None (none), or a function"
            f" progress(now, duration); not {progress!r}"
        )
    budget.check(scenario, f"scenario {scenario.name!r}", detail, max_messages)
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


DETAILS = ("full", "hops", "outcomes")


def as_scenario(scenario: Scenario | str | os.PathLike[str] | Mapping[str, Any]) -> Scenario:
    """What a user passes as a scenario — a Scenario, a file's path, or a mapping as the
    file would hold it — as a validated Scenario (ScenarioError if it is not one)."""
    from mailsim.scenario import Scenario, load, validate

    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str | os.PathLike):
        return load(scenario)
    if isinstance(scenario, Mapping):
        return validate(dict(scenario), "<mapping>")
    raise TypeError(
        "a scenario is a Scenario (mailsim.load(path)), a scenario file's path, or a"
        f" mapping as the file would hold it; not {type(scenario).__name__}"
    )


def world_result(world: Any) -> Result:
    from mailsim.result import Result

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
