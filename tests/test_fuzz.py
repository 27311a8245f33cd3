"""Fuzzing what a class feeds mailsim (hypothesis): scenario documents, the shipped
scenarios changed, ``--set`` assignments and the headers of real messages, damaged.

Whatever comes in, mailsim does its work or refuses it with clear lines (InputError, one
line per problem); it never raises anything else, and no example takes more than a few
seconds of CPU or a few hundred MB. Each example runs in a child process (:class:`Worker`)
whose address space is capped and whose CPU time and peak memory are measured, so that a
YAML bomb or a run that never ends is a failing example, not a laptop that swaps in
front of a class.

Two sizes: the default runs in CI, derandomized, in under a minute; ``MAILSIM_FUZZ=large``
(``make fuzz``) tries thousands of fresh examples per property. A failure in the child
comes back as a class of its own per kind and place, so that hypothesis shrinks and
reports each distinct failure, not only the first.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import multiprocessing
import os
import re
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import (
    HealthCheck,
    Phase,
    currently_in_test_context,
    event,
    given,
    settings,
    target,
)
from hypothesis import strategies as st

import mailsim
from mailsim.errors import InputError, Problem
from tests.bounded import MEMORY_MB
from tests.fuzz_strategies import (
    ROOT,
    assignments,
    documents,
    headers,
    mutated,
)


def _runnable(scenario: mailsim.Scenario, detail: str) -> bool:
    """Small enough to simulate within an example's bounds, by the work the run itself
    estimates before it starts (mailsim.budget): a tenth of the CPU an example may take,
    so that an estimate ten times too low is still caught as over its bounds."""
    from mailsim import budget

    budget.check(scenario, "<fuzz>", detail)  # what cannot finish or fit is refused
    work = budget.estimate(scenario, detail)
    return work.seconds <= CPU_SECONDS / 10 and work.memory <= EXAMPLE_MB * 2**20 / 2


# --- sizes and bounds ---------------------------------------------------------------------------

# A failing header can be megabytes: hypothesis warns that showing it is costly, and the
# warning (an error under the project's settings) would hide the failure itself.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SIZE = os.environ.get("MAILSIM_FUZZ", "ci")
if SIZE not in ("ci", "large"):
    raise ValueError(f"MAILSIM_FUZZ={SIZE!r}: use ci or large")
CPU_SECONDS = 5.0  # per example, in the child: the slowest good example takes 0.2 s
WALL_SECONDS = 60.0  # the child is stopped: stuck where the CPU budget cannot reach it
EXAMPLE_MB = MEMORY_MB - 100  # memory an example may add: the command's bound, less its start
ADDRESS_SPACE = 3 * 2**29  # 1.5 GiB more: a bomb fails fast in the child, the machine stays up
RESTART_MB = 300  # a child that keeps this much more than at its start is replaced


def fuzz(ci: int, large: int) -> settings:
    """Settings of one property: ``ci`` examples, the same on every run, or ``large``
    fresh ones. The bounds are the child's, so there is no deadline; nothing is stored.
    The code under test runs in the child: explaining a failure by the parent's coverage
    would find nothing, so there is no explain phase. The large size searches toward the
    slowest and largest examples (the target phase); CI does not, as that follows
    timings and would change the examples from run to run."""
    phases = [Phase.explicit, Phase.generate, Phase.shrink]
    sized: dict[str, Any] = {"max_examples": ci, "derandomize": True, "phases": phases}
    if SIZE == "large":
        phases = [Phase.explicit, Phase.generate, Phase.target, Phase.shrink]
        sized = {"max_examples": large, "derandomize": False, "phases": phases, "print_blob": True}  # fmt: skip
    return settings(
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
        **sized,
    )


details = st.sampled_from(["full", "hops", "outcomes"])
# Each example is bounded in the child; a property's whole run is as long as its examples
# and, while something fails, hypothesis's shrinking of each distinct failure.
long_run = pytest.mark.timeout(1800 if SIZE == "ci" else 0)

# --- the properties, as the child checks them ---------------------------------------------------


class Broken(Exception):
    """A property does not hold (as opposed to an exception mailsim raised): what, in a
    few words that stay the same for the same fault, and the example's details."""

    def __init__(self, what: str, details: str) -> None:
        super().__init__(what, details)
        self.what = what
        self.details = details


def _shape(message: str) -> str:
    """A message or key path without its particulars (names of nodes, users and zones,
    quoted values, numbers), to tell faults apart."""
    message = re.sub(r"^(nodes|users|dns\.zones)(\.[^.\[]+|\[[^\]]*\])", r"\1.X", message)
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "Q", message)
    return re.sub(r"#x[0-9a-fA-F]+|[0-9]+", "N", message)[:60]


def _stage(name: str) -> None:
    _STAGE[0] = name


_STAGE = ["start"]
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(problems: list[Problem]) -> None:
    """Each problem is one line on the terminal: no line break of any kind, and no other
    control character (an escape sequence from a file could rewrite the screen)."""
    for problem in problems:
        line = str(problem)
        if _CONTROL.search(line):
            kind = "a line break" if len(line.splitlines()) > 1 else "a control character"
            where = (
                "key path"
                if _CONTROL.search(problem.key)
                else _shape(problem.message).split(":")[0]
            )
            source = "--set" if problem.file == "--set" else "file"
            raise Broken(f"a problem's line holds {kind} ({source}, {where})", repr(line))


def _finite(value: Any, path: tuple[str, ...] = ()) -> None:
    """Every number in an accepted scenario is a real one: .inf and .nan are no size,
    rate or duration (an infinite delay is a run that never ends)."""
    if isinstance(value, dict):
        named = path in (("nodes",), ("users",), ("dns", "zones"))  # names, not fields
        for key, item in value.items():
            _finite(item, (*path, "X" if named else str(key)))
    elif isinstance(value, list | tuple):
        for item in value:
            _finite(item, (*path, "N"))
    elif isinstance(value, float) and not math.isfinite(value):
        raise Broken(f"accepted {value} in {'.'.join(path)}", f"{value} at {'.'.join(path)}")


def _simulate(scenario: mailsim.Scenario, detail: str) -> str:
    """Check what was accepted; run it, if small enough, and make every output a user
    can ask for."""
    from mailsim import report

    _stage("accepted")
    _finite(scenario.model_dump())
    try:
        if not _runnable(scenario, detail):
            return "accepted, too big to run here"
    except InputError as exc:
        _one_line(exc.problems)
        return "refused: too much work"
    _stage("run")
    result = mailsim.run(scenario, seed=0, detail=detail)
    _stage("report")
    report.text(result)
    _stage("json")
    json.dumps(result.to_dict(), allow_nan=False)
    _stage("eml")
    for mail in result.copies:
        if mail.delivered_at is not None:
            mail.to_email(result.epoch).as_bytes()
    return "ran"


def check_document(text: str, detail: str) -> str:
    """``mailsim.loads`` gives a Scenario or an InputError; a Scenario runs."""
    _stage("load")
    try:
        scenario = mailsim.loads(text)
    except InputError as exc:
        _one_line(exc.problems)
        return "refused: YAML" if "YAML syntax" in str(exc) else "refused"
    return _simulate(scenario, detail)


def _in_file(data: Any, key: str) -> bool:
    """Whether the place an error message names (``users["a@x.example"].smtp``) is in
    the file's ``data``, or could be: its parent is there (a key that is missing or
    unknown is named inside the mapping that should hold it). True when the path cannot
    be read back."""
    from mailsim.overrides import segments

    try:
        parts = [text for text, _ in segments(key)]
    except InputError:
        return True
    for text in parts[:-1]:
        if isinstance(data, dict) and text in data:
            data = data[text]
        elif isinstance(data, list) and re.fullmatch(r"[0-9]+", text) and int(text) < len(data):
            data = data[int(text)]
        else:
            return False
    return True


def check_assignments(path: str, sets: list[str], detail: str) -> str:
    """``--set`` on a shipped (valid) scenario: a Scenario or an InputError; a problem
    in what only the option made (a user it added) is the option's, not the file's."""
    _stage("load")
    try:
        scenario = mailsim.load(path, sets)
    except InputError as exc:
        _one_line(exc.problems)
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        blamed = [p for p in exc.problems if p.file == path and not _in_file(data, p.key)]
        if blamed:
            raise Broken(
                f"blamed on the file, made by --set: {_shape(blamed[0].message)}",
                f"--set {sets}: {blamed[0]}",
            ) from None
        return "refused"
    return _simulate(scenario, detail)


def check_headers(text: str, detail: str) -> str:
    """Reading headers never raises; the table and JSON are made; a route replays as a
    scenario that loads (and runs), or is refused clearly (a route that names no server
    that received it cannot be replayed)."""
    from mailsim import replay, trace

    _stage("parse")
    route = trace.parse(text)
    _stage("table")
    trace.table(route)
    _stage("json")
    json.dumps(route.to_dict(), allow_nan=False, ensure_ascii=False).encode("utf-8")
    if not route.hops:  # what `mailsim headers --scenario` refuses before replaying
        return "read, no hops"
    _stage("replay")
    if replay.refusal(route) is not None:  # what `mailsim headers --scenario` says instead
        return "replay refused"
    try:
        written = replay.scenario_of(route, "x.eml")
    except InputError as exc:
        _one_line(exc.problems)
        return "replay refused"
    _stage("replay load")
    try:
        scenario = mailsim.loads(written, "x.yaml")
    except InputError as exc:
        first = exc.problems[0]
        raise Broken(
            "the replay wrote a scenario that does not load:"
            f" {_shape(first.key)}: {_shape(first.message)}",
            f"{exc}\n\n{written}",
        ) from None
    return "replayed, " + _simulate(scenario, detail)


def probe(what: str) -> str:
    """What the bounds are there for, done on purpose (the harness's own test)."""
    if what == "memory":  # in steps, each written: resident, and looked at in between
        # Fresh pages from the kernel (mmap), not the heap: a child forked from a test
        # process that ran for a while inherits megabytes of free but resident heap,
        # which an allocation would reuse without its resident size growing.
        held = []
        for _ in range((EXAMPLE_MB + 100) >> 4):
            block = mmap.mmap(-1, 2**24)
            block.write(b"x" * 2**24)
            held.append(block)
        return f"held {len(held) * 16} MB"
    if what == "address space":
        return str(len(b"x" * 2 * ADDRESS_SPACE))
    if what == "cpu":
        while True:
            pass
    if what == "swallow":  # as a SimPy process hands its exception to a waiter
        try:
            while True:
                pass
        except BaseException:
            return "caught"
    if what == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if what == "stuck":
        time.sleep(3600)
    return "nothing"


CHECKS: dict[str, Callable[..., str]] = {
    "document": check_document,
    "assignments": check_assignments,
    "headers": check_headers,
    "probe": probe,
}

# --- the child ------------------------------------------------------------------------------------


class OverBudget(BaseException):
    """The example went over its CPU time or memory (a BaseException: no ``except
    Exception`` in the code under test may swallow it)."""


_BOUNDS: dict[str, Any] = {"cpu": 0.0, "until": 0.0, "resting": 0.0, "armed": False, "met": ""}
TICK = 0.05  # s of CPU between two looks at the example's time and memory


def _look(signum: int, frame: Any) -> None:
    """Every TICK of CPU while an example runs: stop it where it is if it is over a
    bound, again at every tick if the code under test swallows the exception (SimPy
    hands a process's exception to whoever waits for it)."""
    if not _BOUNDS["armed"]:
        return
    if _cpu() > _BOUNDS["until"]:
        _BOUNDS["met"] = _BOUNDS["met"] or f"more than {_BOUNDS['cpu']:g} s of CPU"
    elif _status("VmRSS") - _BOUNDS["resting"] > EXAMPLE_MB:
        _BOUNDS["met"] = _BOUNDS["met"] or f"more than {EXAMPLE_MB} MB of memory"
    if _BOUNDS["met"]:
        raise OverBudget(_BOUNDS["met"])


def _status(field: str) -> float:
    """A memory figure of this process from /proc (MB), 0 where there is none."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # Linux: the peak (VmHWM) starts again from what is resident now


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _where(tb: Any) -> tuple[str, str]:
    """The deepest frame in mailsim (the code at fault, most often) and the deepest frame
    of all, as ``path:line function``."""
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if f"{os.sep}mailsim{os.sep}" in f.filename]

    def name(frame: traceback.FrameSummary) -> str:
        short = re.sub(r".*?((mailsim|site-packages|lib/python[0-9.]+)/)", "", frame.filename)
        return f"{short}:{frame.lineno} {frame.name}"

    return (name(ours[-1]) if ours else "-", name(frames[-1]) if frames else "-")


def play(kind: str, args: tuple[Any, ...], budget: float = CPU_SECONDS) -> dict[str, Any]:
    """One example in this process, within ``budget`` seconds of CPU and EXAMPLE_MB
    above what the process held before: what came of it, or the failure with its
    signature (what, where) and traceback."""
    _BOUNDS.update(cpu=budget, until=_cpu() + budget, resting=_status("VmRSS"), armed=True, met="")
    _reset_peak()
    before = _cpu()
    _STAGE[0] = "start"
    failure = None
    outcome = ""
    signal.setitimer(signal.ITIMER_PROF, TICK, TICK)
    try:
        try:
            outcome = CHECKS[kind](*args)
        finally:
            _BOUNDS["armed"] = False
    except (OverBudget, MemoryError) as exc:
        # Time or memory, and where the bound is met, may change with the machine's
        # speed: one failure, its place in the details.
        ours, _ = _where(exc.__traceback__)
        failure = ("over its bounds", f"{exc!r} in {_STAGE[0]}, {ours}\n\n{traceback.format_exc()}")  # fmt: skip
    except Broken as exc:
        failure = (f"{exc.what} (in {_STAGE[0]})", exc.details)
    except BaseException as exc:  # everything else is a finding
        ours, deepest = _where(exc.__traceback__)
        failure = (
            f"{type(exc).__name__} in {_STAGE[0]} at {ours} ({deepest})",
            traceback.format_exc(),
        )
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    added = max(_status("VmHWM") - _BOUNDS["resting"], 0.0)
    if failure is None and _BOUNDS["met"]:  # stopped, and the stop swallowed
        failure = ("over its bounds", f"{_BOUNDS['met']}, in {_STAGE[0]} (the stop was caught)")
    if failure is None and added > EXAMPLE_MB:  # between two looks
        failure = ("over its bounds", f"{added:.0f} MB more than before, in {_STAGE[0]}")
    return {
        "outcome": outcome,
        "failure": failure,
        "cpu": _cpu() - before,
        "added_mb": added,
        "rss_mb": _status("VmRSS"),
        "stage": _STAGE[0],
    }


def serve(jobs: Connection, theirs: Connection, log: str) -> None:
    """The child's loop (forked from the test process): a job from the parent, its
    result back. Its address space is capped a little above what it holds; what it
    prints, and faulthandler's tracebacks of a crash or a hang, go to ``log``. The
    parent's end of the pipe, inherited by the fork, is closed: when the parent dies
    (killed, interrupted), the child reads the end of the pipe and ends too."""
    theirs.close()
    import faulthandler
    import threading
    import warnings

    sys.settrace(None)  # forked while hypothesis traced the parent: not here, it costs
    threading.settrace(None)
    held = int(_status("VmSize") * 2**20) or 2**31
    resource.setrlimit(resource.RLIMIT_AS, (held + ADDRESS_SPACE, held + ADDRESS_SPACE))
    warnings.simplefilter("error")  # as the test suite runs (filterwarnings = error)
    out = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.stdout = sys.stderr = open(out, "w", buffering=1, closefd=False)  # noqa: SIM115
    faulthandler.enable(sys.stderr)  # a crash in C code leaves its Python traceback
    faulthandler.register(signal.SIGUSR1, sys.stderr)  # the parent asks where it is stuck
    signal.signal(signal.SIGPROF, _look)
    while True:
        try:
            kind, args, budget = jobs.recv()
        except EOFError:
            return
        jobs.send(play(kind, args, budget))


# --- the parent's side ----------------------------------------------------------------------------


class Finding(AssertionError):
    """A failing example; each distinct kind and place gets a subclass (see finding())."""


_FINDINGS: dict[str, type[Finding]] = {}


def finding(signature: str) -> type[Finding]:
    """The Finding subclass of ``signature``: hypothesis tells failures apart by their
    type and place, and every failure is raised from the same line here."""
    if signature not in _FINDINGS:
        name = re.sub(r"\W+", "_", signature).strip("_")[:80] or "finding"
        _FINDINGS[signature] = type(name, (Finding,), {"__module__": __name__})
    return _FINDINGS[signature]


@dataclass
class Worker:
    """A forked child that plays examples one at a time, replaced when it dies, hangs,
    fails or keeps too much memory. Forked, it starts at once with mailsim imported."""

    log: Path
    budget: float = CPU_SECONDS
    wall: float = WALL_SECONDS
    process: Any = None
    jobs: Connection | None = None
    born_mb: float | None = None

    def __repr__(self) -> str:
        return "Worker()"  # what hypothesis shows of the fixture next to a failing example

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        self.jobs, child = context.Pipe()
        self.log.touch()
        self.process = context.Process(
            target=serve, args=(child, self.jobs, str(self.log)), daemon=True
        )
        self.process.start()
        child.close()

    def stop(self) -> None:
        if self.process is None:
            return
        assert self.jobs is not None
        self.jobs.close()
        self.process.kill()
        self.process.join()
        self.process.close()
        self.process = self.jobs = self.born_mb = None

    def _log_since(self, offset: int) -> str:
        with open(self.log, "rb") as log:
            log.seek(offset)
            return log.read(6000).decode("utf-8", "replace")  # faulthandler: newest first

    def play(self, kind: str, *args: Any) -> dict[str, Any]:
        if self.process is None:
            self.start()
        assert self.process is not None
        assert self.jobs is not None
        offset = self.log.stat().st_size
        self.jobs.send((kind, args, self.budget))
        if not self.jobs.poll(self.wall):
            os.kill(self.process.pid, signal.SIGUSR1)  # where is it stuck? (in the log)
            time.sleep(0.5)
            self.stop()
            where = self._log_since(offset)
            return {"outcome": "", "failure": (f"no answer in {self.wall:.0f} s", where)}
        try:
            answer: dict[str, Any] = self.jobs.recv()
        except (EOFError, OSError):
            self.process.join()
            code = self.process.exitcode
            self.stop()
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            return {"outcome": "", "failure": (f"the child died ({how})", self._log_since(offset))}  # fmt: skip
        if self.born_mb is None:
            self.born_mb = answer["rss_mb"]
        if answer["failure"] or answer["rss_mb"] > self.born_mb + RESTART_MB:
            self.stop()  # a fresh child: nothing left over from a failure
        return answer


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    playing = Worker(tmp_path_factory.mktemp("fuzz") / "child-output.txt")
    yield playing
    playing.stop()


def expect(answer: dict[str, Any]) -> None:
    """Fail, with a class of its own per signature, unless the example went well and
    within the bounds; tell hypothesis's statistics what came of it."""
    failure = answer["failure"]
    if failure is not None:
        signature, details = failure
        if currently_in_test_context():
            event(f"failed: {signature}")
        raise finding(signature)(f"{signature}\n\n{details}")
    if currently_in_test_context():
        event(answer["outcome"])
        target(answer["cpu"], label="CPU seconds")
        target(answer["added_mb"], label="MB added")


# --- the properties ---------------------------------------------------------------------------


@long_run
@fuzz(ci=100, large=3000)
@given(text=documents(), detail=details)
def test_any_document_loads_or_is_refused_clearly(worker: Worker, text: str, detail: str) -> None:
    expect(worker.play("document", text, detail))


@long_run
@fuzz(ci=150, large=5000)
@given(changed=mutated(), detail=details)
def test_a_shipped_scenario_changed_loads_and_runs_or_is_refused(
    worker: Worker, changed: tuple[str, str], detail: str
) -> None:
    _, text = changed
    expect(worker.play("document", text, detail))


@long_run
@fuzz(ci=100, large=3000)
@given(case=assignments(), detail=details)
def test_set_assignments_load_and_run_or_are_refused(
    worker: Worker, case: tuple[Path, list[str]], detail: str
) -> None:
    path, sets = case
    expect(worker.play("assignments", str(path.relative_to(ROOT)), sets, detail))


@long_run
@fuzz(ci=100, large=3000)
@given(text=headers(), detail=details)
def test_headers_are_read_and_replayed_or_refused(worker: Worker, text: str, detail: str) -> None:
    expect(worker.play("headers", text, detail))


# --- the harness itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "signature"),
    [
        ("memory", "over its bounds"),
        ("address space", "over its bounds"),
        ("cpu", "over its bounds"),
        ("swallow", "over its bounds"),
        ("crash", "the child died (signal 11)"),
        ("stuck", "no answer in 2 s"),
    ],
)
def test_what_would_take_the_machine_down_is_a_finding(
    tmp_path: Path, what: str, signature: str | None
) -> None:
    budget = 1 if what in ("cpu", "swallow") else 20
    own = Worker(tmp_path / "output.txt", budget=budget, wall=2 if what == "stuck" else 60)
    try:
        assert own.play("document", "nodes: {}\n", "full")["failure"] is None
        answer = own.play("probe", what)
        assert answer["failure"] is not None, answer
        assert answer["failure"][0] == signature, answer["failure"]
        with pytest.raises(Finding, match=re.escape(signature)):
            expect(answer)
        if what in ("crash", "stuck"):  # faulthandler's traceback: where it was
            assert "in probe" in answer["failure"][1], answer["failure"][1]
        assert own.play("document", "nodes: {}\n", "full")["failure"] is None  # replaced
    finally:
        own.stop()
