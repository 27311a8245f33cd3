"""What-if studies: a scenario run over a grid of ``--set`` values × replications.

Replication ``r`` runs with the same seed at every grid point (common random numbers:
every component draws from its own stream keyed by its name, see :mod:`mailsim.rng`), so
that the difference between two grid points comes from the parameter, not from noise.
The seeds come from ``numpy.random.SeedSequence(seed).spawn(replications)``.

Each run is summarised by a few numbers (its delays, delivery ratio, bounces, retries);
each grid point by their mean over the replications with a 95 % confidence interval
(Student's t), the way OMNeT++'s parameter studies report them.
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: `import mailsim` stays quick
    import numpy as np
    import pandas as pd

# Per run: what a what-if question asks about. "transfer" is submission to delivery into
# the recipient's mailbox (no poll wait): the part latency and server speed act on;
# "queue" is the part of it spent waiting for a busy server (listen queue, queue manager).
METRICS = (
    "delay_mean", "delay_median", "delay_p95", "transfer_mean", "queue_mean",
    "delivery_ratio", "bounces", "retries",
)  # fmt: skip

# Student's t, 97.5th percentile (two-sided 95 %), by degrees of freedom: NIST/SEMATECH
# e-Handbook of Statistical Methods, table 1.3.6.7.2. Between rows, the next lower row
# (a slightly wider, conservative interval); beyond the table, its last row (the normal
# distribution's 1.960 is the limit).
T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
    17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
    25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 50: 2.009,
    60: 2.000, 80: 1.990, 100: 1.984, 120: 1.980,
}  # fmt: skip


def seeds(seed: int, replications: int) -> list[int]:
    """One run seed per replication, the same at every grid point."""
    import numpy as np

    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(child.generate_state(1)[0]) for child in children]


def grid(vary: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every combination of the varied values, the first key varying slowest."""
    keys = list(vary)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*vary.values())]


Task = tuple[str, str, tuple[str, ...], dict[str, str], int, str, int]


def run_once(task: Task) -> dict[str, Any]:
    """One run of the study: the scenario text with the overrides, simulated, summed up.
    The text travels with the task: a file edited during a long sweep changes nothing."""
    import mailsim

    text, name, fixed, point, seed, detail, max_messages = task
    overrides = [*fixed, *(f"{key}={value}" for key, value in point.items())]
    scenario = mailsim.loads(text, name, overrides)
    result = mailsim.run(scenario, seed=seed, detail=detail, max_messages=max_messages)
    return {**point, "seed": seed, **summarise(result)}


def summarise(result: Any) -> dict[str, float]:
    """The numbers of one run (see METRICS); delays in seconds, over retrieved copies.
    Failed attempts are counted from the hop table: NaN when the run kept outcomes only."""
    import numpy as np

    messages = result.messages
    sent = messages[messages["kind"] == "message"]
    retrieved = sent[sent["retrieved_at"].notna()]
    delivered = sent[sent["delivered_at"].notna()]
    hops = result.hops
    failed = hops[~hops["code"].astype(str).str.startswith(("2", "+"))]
    retries = math.nan if result.recorder.detail == "outcomes" else float(len(failed))
    delays = retrieved["delay"].to_numpy(dtype=float)
    transfer = (delivered["delivered_at"] - delivered["submitted_at"]).to_numpy(dtype=float)
    return {
        "delay_mean": float(delays.mean()) if len(delays) else math.nan,
        "delay_median": float(np.median(delays)) if len(delays) else math.nan,
        "delay_p95": float(np.percentile(delays, 95)) if len(delays) else math.nan,
        "transfer_mean": float(transfer.mean()) if len(transfer) else math.nan,
        "queue_mean": float(sent["queue_time"].mean()) if len(sent) else math.nan,
        "delivery_ratio": len(delivered) / len(sent) if len(sent) else math.nan,
        "bounces": float((sent["status"] == "bounced").sum()),
        "retries": retries,
    }


def confidence(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and its 95 % confidence interval (Student's t) of independent replications."""
    import numpy as np

    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if n == 1:
        return mean, math.nan, math.nan
    df = n - 1
    t = T975[max(k for k in T975 if k <= df)]
    half = t * float(values.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def table(runs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per grid point: each metric's mean over the replications, with ``_lo``
    and ``_hi`` columns for its 95 % confidence interval, and ``runs``."""
    import pandas as pd

    rows = []
    for point, group in runs.groupby(list(keys), sort=False):
        point = point if isinstance(point, tuple) else (point,)
        row: dict[str, Any] = dict(zip(keys, point, strict=True))
        row["runs"] = len(group)
        for metric in METRICS:
            mean, lo, hi = confidence(group[metric].to_numpy(dtype=float))
            row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = mean, lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


def sweep(
    scenario: str | Path | Any,
    vary: Mapping[str, Sequence[str]],
    replications: int = 10,
    seed: int = 0,
    *,
    overrides: Sequence[str] = (),
    workers: int | None = None,
    client: Any = None,
    detail: str = "hops",
    progress: Callable[[int, int], None] | bool | None = None,
    runs: list[dict[str, Any]] | None = None,
    max_messages: int | None = None,
) -> pd.DataFrame:
    """Run ``scenario`` (a scenario file's path, a Scenario or a mapping) at every point of
    the ``vary`` grid (KEY → list of values, as for ``--set``), ``replications`` times
    each; return one row per grid point.

    ``workers`` processes run the runs (default: all cores; 1 runs them here), or the
    workers of ``client``, a ``dask.distributed.Client``, when one is given (the same
    seeds give the same table either way); ``progress=True`` shows a tqdm bar (in a
    notebook, a widget), a callable ``progress(done, total)`` is called after each run;
    ``runs``, if given, receives one dict per run (its seed and numbers).
    ``detail="outcomes"`` is fastest but cannot count failed attempts (``retries`` is
    NaN). A study that cannot finish (see :mod:`mailsim.budget`: ``max_messages`` per
    run, ten times that in all) is refused before the first run."""
    import pandas as pd

    from mailsim.rng import check_seed

    seed = check_seed(seed)
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(
            f"progress takes True, False, None or a function progress(done, total); not {progress!r}"
        )
    from mailsim.budget import MAX_MESSAGES

    if isinstance(overrides, str):
        overrides = [overrides]
    text, points = check(scenario, vary, replications, overrides, detail, max_messages)
    workers = check_workers(workers, len(points) * replications) if client is None else None
    name = _name(scenario)
    limit = MAX_MESSAGES if max_messages is None else max_messages
    tasks: list[Task] = [
        (text, name, tuple(overrides), point, s, detail, limit)
        for point in points
        for s in seeds(seed, replications)
    ]
    if client is None and workers > 1 and len(tasks) > 1:
        _refuse_unguarded_script()
    done: list[dict[str, Any]] = []
    results = _on_dask(client, tasks) if client is not None else _execute(tasks, workers)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc="runs", unit="run")
    try:
        for row in results:
            done.append(row)
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(len(done), len(tasks))
    finally:
        if bar is not None:
            bar.close()
    if runs is not None:
        runs.extend(done)
    return table(pd.DataFrame(done), list(vary))


def _name(scenario: Any) -> str:
    """How a study's scenario is named in messages and in run.json."""
    if isinstance(scenario, str | Path):
        return str(scenario)
    return f"<scenario {getattr(scenario, 'name', None) or 'mapping'}>"


def _text(scenario: Any) -> str:
    """The scenario as text (its file's, or written out from a Scenario or a mapping):
    every grid point changes it with ``--set`` and loads it again."""
    from mailsim.scenario import Scenario, dumps, read

    if isinstance(scenario, str | Path):
        return read(scenario)
    if isinstance(scenario, Scenario):
        return dumps(scenario.model_dump(mode="json", by_alias=True, exclude_unset=True))
    if isinstance(scenario, Mapping):
        return dumps(dict(scenario))
    raise TypeError(
        "a sweep's scenario is a scenario file's path, a Scenario or a mapping as the file"
        f" would hold it; not {type(scenario).__name__}"
    )


def _check_vary(vary: Any) -> None:
    """``vary`` maps each key to a list of values; say so plainly when it does not."""
    if not isinstance(vary, Mapping):
        raise TypeError(
            "vary maps each key to the values to try, e.g. {'duration': ['1h', '2h']};"
            f" not {vary!r}"
        )
    for key, values in vary.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence | set):
            raise TypeError(
                f"vary[{key!r}] is {values!r}: give a list of the values to try, e.g."
                f" {{{key!r}: [{values!r}]}}"
            )
    if not vary or not all(vary.values()):
        raise ValueError("vary needs at least one key with at least one value")


def check(
    scenario: str | Path | Any,
    vary: Mapping[str, Sequence[str]],
    replications: int = 1,
    overrides: Sequence[str] = (),
    detail: str = "hops",
    max_messages: int | None = None,
) -> tuple[str, list[dict[str, str]]]:
    """Before any run starts, every grid point must load, and the study must be one that
    can finish: a typo fails at once, naming it (``--vary`` for a varied key, ``--set``
    for a fixed one), and so does a study too large to run. Returns the scenario's text
    and the grid."""
    import mailsim
    from mailsim import budget
    from mailsim.errors import InputError, Problem
    from mailsim.scenario import override_paths

    if isinstance(replications, bool) or not isinstance(replications, int):
        raise TypeError(f"replications is a whole number, 1 or more; not {replications!r}")
    if replications < 1:
        raise ValueError("replications must be at least 1")
    if isinstance(overrides, str):
        overrides = [overrides]
    _check_vary(vary)
    limit = budget.MAX_MESSAGES if max_messages is None else max_messages
    name = _name(scenario)
    points_count = math.prod(len(values) for values in vary.values())
    if points_count > budget.MAX_GRID_POINTS:
        raise InputError(
            [
                Problem(
                    "--vary",
                    ", ".join(vary),
                    f"{points_count:,} grid points (the values multiply out); at most"
                    f" {budget.MAX_GRID_POINTS:,}: vary fewer values at a time",
                )
            ]
        )
    if points_count * replications > budget.MAX_RUNS:
        raise InputError(
            [
                Problem(
                    "--replications",
                    str(replications),
                    f"{points_count:,} grid points × {replications:,} replications is"
                    f" {points_count * replications:,} runs; at most {budget.MAX_RUNS:,}",
                )
            ]
        )
    problems = [
        Problem("--vary", key, f"{value!r} is listed twice: each grid point is run once")
        for key, values in vary.items()
        for value in sorted({str(v) for v in values if list(values).count(v) > 1})
    ]
    if problems:
        raise InputError(problems)
    text = _text(scenario)
    fixed = [o.partition("=")[0].strip() for o in overrides]
    where = override_paths(text, name, [*vary, *fixed])
    problems += _same_value_twice(list(vary), fixed, where)
    if problems:
        raise InputError(problems)
    varied = {where[key] for key in vary if key in where}
    points = grid(vary)
    seen: set[str] = set()
    messages = 0.0
    for point in points:
        try:
            loaded = mailsim.loads(
                text, name, [*overrides, *(f"{k}={v}" for k, v in point.items())]
            )
            messages += budget.check(loaded, name, detail, limit).messages * replications
        except InputError as exc:
            for problem in exc.problems:
                if problem.file == "--set" and (problem.key in varied or problem.key in point):
                    problem = Problem("--vary", problem.key, problem.message)
                if str(problem) not in seen:
                    seen.add(str(problem))
                    problems.append(problem)
    if problems:
        raise InputError(problems)
    if messages > budget.SWEEP_FACTOR * limit:
        raise InputError(
            [
                Problem(
                    name,
                    "",
                    f"this study would send about {budget.rounded(messages)} messages in"
                    f" {len(points) * replications:,} runs, more than"
                    f" {budget.SWEEP_FACTOR * limit:,} in all: fewer replications or grid"
                    " points, or allow more with --max-messages (per run)",
                )
            ]
        )
    return text, points


def _same_value_twice(vary: list[str], fixed: list[str], where: Mapping[str, str]) -> list[Any]:
    """One scenario value under two spellings (``links.0.latency`` and
    ``links.a/b.latency``): varied twice, the grid would pit one against the other;
    varied and set, one silently wins."""
    from mailsim.errors import Problem

    problems = []
    first: dict[str, str] = {}
    for key in vary:
        path = where.get(key)
        if path is None:
            continue
        if path in first:
            problems.append(
                Problem("--vary", key, f"is {path}, already varied as {first[path]}: vary it once")
            )
        else:
            first[path] = key
    for key in fixed:
        path = where.get(key)
        if path in first:
            problems.append(
                Problem("--set", key, f"is {path}, also varied as {first[path]}: drop one")
            )
    return problems


def _on_dask(client: Any, tasks: list[Task]) -> Iterable[dict[str, Any]]:
    """Results in task order from a Dask cluster (``pip install mailsim[dask]``)."""
    from distributed import as_completed

    futures = client.map(run_once, tasks, pure=False)
    index = {future.key: i for i, future in enumerate(futures)}
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    ready = 0
    for future in as_completed(futures):
        results[index[future.key]] = future.result()
        # Hand results on in task order, as soon as the next one in line is there.
        while ready < len(results) and results[ready] is not None:
            yield results[ready]  # type: ignore[misc]
            ready += 1


def _refuse_unguarded_script() -> None:
    """Worker processes start by importing the main script again (Python's forkserver and
    spawn do): a script that calls sweep() at its top level would run again in every
    worker, and the pool would break. Say so at once, in one line, with the fix."""
    import ast
    import inspect
    import multiprocessing

    import __main__

    path = getattr(__main__, "__file__", None)
    if multiprocessing.parent_process() is not None or not path or not path.endswith(".py"):
        return  # a worker, a notebook, the interactive prompt
    frame = inspect.currentframe()
    while frame is not None and not (
        frame.f_globals is vars(__main__) and frame.f_code.co_name == "<module>"
    ):
        frame = frame.f_back
    if frame is None:
        return
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and "__name__" in ast.unparse(node.test)
            and "__main__" in ast.unparse(node.test)
            and node.lineno <= line <= (node.end_lineno or line)
        ):
            return
    raise SystemExit(
        f"mailsim: {path}:{line}: mailsim.sweep() runs in worker processes, which import"
        ' this script again: put the code that calls it under `if __name__ == "__main__":`'
        " (or pass workers=1)"
    )


def check_workers(workers: int | None, runs: int) -> int:
    """How many processes run a study's ``runs``: ``workers``, or every core; never more
    than there are runs, and at most four a core — each process holds a whole run in
    memory, and more processes than cores only take turns."""
    import os

    from mailsim import budget
    from mailsim.errors import InputError, Problem

    cores = os.cpu_count() or 1
    if workers is None:
        return max(1, min(cores, runs))
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers is a whole number, 1 or more; not {workers!r}")
    if workers < 1:
        raise ValueError(f"workers is a whole number, 1 or more; not {workers}")
    if workers > budget.WORKERS_PER_CORE * cores:
        raise InputError(
            [
                Problem(
                    "--workers",
                    str(workers),
                    f"this machine has {cores} cores: at most"
                    f" {budget.WORKERS_PER_CORE * cores} processes (more only take turns"
                    " and each holds a run in memory)",
                )
            ]
        )
    return min(workers, runs)


def _execute(tasks: list[Any], workers: int | None) -> Iterable[dict[str, Any]]:
    """Results in task order, from this process or a pool of ``workers`` processes."""
    if workers == 1 or len(tasks) == 1:
        yield from map(run_once, tasks)
        return
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(run_once, tasks, chunksize=1)


class TerminalProgress:
    """A rich progress bar on standard error (runs done, elapsed, time left), for the
    command line; use as a context manager and pass the object as ``progress``. With
    ``count=False`` it shows a percentage instead of "done/total" (simulated time). It
    appears only once the work has lasted ``delay`` seconds: a quick run prints nothing."""

    def __init__(self, what: str = "runs", count: bool = True, delay: float = 1.0) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        done = MofNCompleteColumn() if count else TaskProgressColumn()
        self._bar = Progress(
            what, BarColumn(), done, TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=not count,
        )  # fmt: skip
        self._task: Any = None
        self._delay = delay
        self._since = 0.0
        self._shown = False

    def __enter__(self) -> TerminalProgress:
        import time

        self._since = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shown:
            self._bar.stop()

    def __call__(self, done: float, total: float) -> None:
        import time

        if self._task is None:
            self._task = self._bar.add_task("", total=total)
        self._bar.update(self._task, completed=done)
        if not self._shown and time.monotonic() - self._since >= self._delay:
            self._bar.start()
            self._shown = True


def save(
    table: pd.DataFrame,
    runs: list[dict[str, Any]],
    out: Path,
    scenario: str | Path,
    text: str,
    vary: Mapping[str, Sequence[str]],
    args: Any,
    command: Sequence[str],
) -> list[Path]:
    """sweep.parquet (with pyarrow) or sweep.csv, runs.csv, sweep.png and run.json: the
    last has all it takes to reproduce every number (the seeds, the overrides, versions)."""
    import json
    import platform
    from importlib import metadata

    import pandas as pd

    from mailsim.files import WriteError, write_text
    from mailsim.plot.files import save_curve

    written = []
    try:
        try:
            import pyarrow  # noqa: F401

            path = out / "sweep.parquet"
            table.to_parquet(path, index=False)
        except ImportError:
            path = out / "sweep.csv"
            table.to_csv(path, index=False)
        written.append(path)
        path = out / "runs.csv"
        pd.DataFrame(runs).to_csv(path, index=False)
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from None
    written.append(path)
    written.append(save_curve(table, list(vary), out / "sweep.png"))
    versions = {"python": platform.python_version()}
    for package in ("mailsim", "simpy", "numpy", "pandas", "networkx", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    record = {
        "scenario": str(scenario),
        "scenario_text": text,
        "set": list(args.overrides),
        "vary": {key: list(values) for key, values in vary.items()},
        "replications": args.replications,
        "seed": args.seed,
        "seeds": seeds(args.seed, args.replications),
        "detail": args.detail,
        "versions": versions,
        "command": shlex.join(["mailsim", *command]),
    }
    write_text(out / "run.json", json.dumps(record, indent=2) + "\n")
    written.append(out / "run.json")
    return written


def describe(table: pd.DataFrame, keys: Sequence[str]) -> str:
    """The table as text for the terminal: one row per grid point, each mean with the
    half-width of its 95 % confidence interval, fitted to the terminal's width."""
    from rich.table import Table

    from mailsim.report import render, terminal_width
    from mailsim.units import format_duration

    def span(row: Any, metric: str) -> str:
        mean, hi = row[metric], row[f"{metric}_hi"]
        if math.isnan(mean):
            return "-"
        if math.isnan(hi):
            return format_duration(mean)
        return f"{format_duration(mean)} ±{format_duration(hi - mean)}"

    out = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    for key in keys:
        out.add_column(_broken(key), overflow="fold")
    for title in ("to the mailbox", "end to end", "delivered", "bounces"):
        out.add_column(title, overflow="fold")
    for _, row in table.iterrows():
        out.add_row(
            *(str(row[k]) for k in keys),
            span(row, "transfer_mean"),
            span(row, "delay_mean"),
            f"{row['delivery_ratio']:.0%}" if not math.isnan(row["delivery_ratio"]) else "-",
            f"{row['bounces']:.1f}",
        )
    runs = ", ".join(sorted({str(int(n)) for n in table["runs"]}))
    return "\n".join(
        [
            *render(out, terminal_width()),
            f"(means of {runs} runs each, ± half their 95 % confidence interval;",
            " to the mailbox: from submission to delivery; end to end: until read)",
        ]
    )


def _broken(key: str, width: int = 20) -> str:
    """A long key path as a column title of several lines, broken after its dots and
    slashes (``links.r-london/`` ``r-newyork.latency``), never inside a name."""
    parts = re.split(r"(?<=[./])", key)
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])
