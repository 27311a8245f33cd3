"""Activities that grade themselves: a starting scenario, what the student may change, and
goals checked on the result of the student's scenario.

A teacher writes goals as a few words of YAML, not Python — five kinds, each about what a
class looks at in a result or in the student's scenario:

* ``arrive``: every copy that matches (``message``, ``from``, ``to``; addresses may use
  the scenario's globs) reaches its reader (``reach: mailbox``: its mailbox), and, with
  ``within``, that fast (counted from when it was sent);
* ``outcome``: every copy that matches ``ends`` as one of those said: ``inbox`` or
  ``spam`` (the folder it reached), ``bounced``, ``refused`` or ``expired``, or
  ``in_flight`` (still on its way when the run ended);
* ``encrypted``: every hop that carries a password (``carrying: password``, the hops that
  log in) or the message itself (``carrying: message``) travels inside TLS (``protocols``
  to look at some hops only: ``[submission, smtp, pop3]``);
* ``unread``: an eavesdropper (``by: eve``) reads nothing of ``what`` (default: passwords,
  envelopes, headers and bodies);
* ``setting``: a number of the student's scenario (``key``, as ``--set`` names it in the
  scenario's full form: ``nodes.…``, ``links.…``, also for a file written by sites) stays
  ``at_least`` and/or ``at_most`` a bound (a number, or a duration, bandwidth or size as
  a scenario writes them: ``1min``, ``1Gbps``), so that the answer is the right amount,
  not as much as possible: the fewest sessions that keep up, no bandwidth bought for
  nothing.

``mailsim check ACTIVITY [SCENARIO]`` plays the student's scenario (the activity's own,
unchanged, without one), says for each goal whether it is met with the value measured,
and whether the scenario changes only what the activity allows; exit 0 when everything
is met, 1 when not.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from mailsim.errors import InputError, Problem, ScenarioError, at_most_shown, key_path
from mailsim.errors import shown as quoted
from mailsim.fields import Duration
from mailsim.model import Scenario, _Model
from mailsim.overrides import lookup
from mailsim.units import format_duration, parse_duration, parse_rate, parse_size

KINDS = ("arrive", "outcome", "encrypted", "unread", "setting")
ENDS = ("inbox", "spam", "bounced", "refused", "expired", "in_flight")
SECRETS = ("password", "envelope", "headers and body")


class _Copies(_Model):
    """Which copies a goal is about (all, when nothing is said)."""

    message: str | None = Field(None, description="a message id")
    sender: str | None = Field(None, alias="from", description="an address or glob")
    to: str | None = Field(None, description="an address or glob")
    say: str | None = Field(None, description="the goal in the teacher's words")

    def pick(self, messages: pd.DataFrame) -> pd.DataFrame:
        rows = messages[messages["kind"] == "message"]  # not the bounces it caused
        if self.message is not None:
            rows = rows[rows["id"] == self.message]
        for column, pattern in (("sender", self.sender), ("recipient", self.to)):
            if pattern is not None:
                rows = rows[[_matches(str(a), pattern) for a in rows[column]]]
        return rows

    def whose(self) -> str:
        said = []
        if self.message:
            said.append(self.message)
        if self.sender:
            said.append(f"from {self.sender}")
        if self.to:
            said.append(f"to {self.to}")
        return " ".join(said) or "every message"


class Arrive(_Copies):
    within: Duration | None = Field(None, gt=0, description="from sending, at most")
    reach: Literal["reader", "mailbox"] = "reader"


class Outcome(_Copies):
    ends: Annotated[list[Literal[ENDS]], Field(min_length=1)]  # type: ignore[valid-type]


class Encrypted(_Model):
    carrying: Literal["password", "message"]
    protocols: list[str] | None = Field(None, description="the hops' protocols to look at")
    say: str | None = None


class Unread(_Model):
    by: str = Field(description="the eavesdropper's name")
    what: list[Literal[SECRETS]] = Field(default_factory=lambda: list(SECRETS))  # type: ignore[valid-type]
    say: str | None = None


class Setting(_Model):
    """A value of the student's scenario and the bounds it must keep."""

    key: str = Field(description="a key path of the scenario, as --set writes it")
    at_least: float | str | None = Field(None, description="a number, duration, size or bandwidth")
    at_most: float | str | None = Field(None, description="a number, duration, size or bandwidth")
    say: str | None = None

    @field_validator("at_least", "at_most")
    @classmethod
    def _bound(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, str):
            _quantity(value)  # raises ValueError saying what to write
        return value

    @model_validator(mode="after")
    def _bounded(self) -> Setting:
        if self.at_least is None and self.at_most is None:
            raise ValueError("give at_least, at_most or both")
        if self.at_least is not None and self.at_most is not None:
            (low, one), (high, other) = _quantity(self.at_least), _quantity(self.at_most)
            if one != other:
                raise ValueError(f"at_least is a {one} and at_most a {other}: give both alike")
            if low > high:
                raise ValueError("at_least is above at_most: no value could meet the goal")
        return self

    def bounds(self) -> tuple[float, float]:
        low = -math.inf if self.at_least is None else _quantity(self.at_least)[0]
        high = math.inf if self.at_most is None else _quantity(self.at_most)[0]
        return low, high

    def shown(self, value: Any) -> str:
        """A value as its bounds are written: "5 min", "1 Gbps", "20 KB", or a number."""
        kind = _quantity(self.at_least if self.at_least is not None else self.at_most)[1]  # type: ignore[arg-type]
        if kind == "number":
            return f"{value:g}" if isinstance(value, float) else str(value)
        return _as_written(float(value), QUANTITIES[kind][1])


# What a bound may be written as: its reader, and the units it is shown in, largest first.
QUANTITIES: dict[str, tuple[Any, tuple[tuple[str, float], ...]]] = {
    "duration": (parse_duration, (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))),
    "bandwidth": (parse_rate, (("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3), ("bps", 1))),
    "size": (parse_size, (("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1))),
}


def _quantity(bound: float | str) -> tuple[float, str]:
    """A bound's value and its kind: a number, or a duration, bandwidth or size."""
    if not isinstance(bound, str):
        return float(bound), "number"
    try:
        return float(bound), "number"  # "4", quoted
    except ValueError:
        pass
    for kind, (read, _) in QUANTITIES.items():
        try:
            return read(bound), kind
        except ValueError:
            continue
    raise ValueError(
        f"{bound!r} is not a number, a duration, a bandwidth or a size; write it like"
        ' "1min", "1Gbps" or "20KB"'
    )


def _as_written(value: float, units: tuple[tuple[str, float], ...]) -> str:
    """A value as a scenario writes it when it is a whole number of one unit ("30 s",
    "5 min", "1 Gbps"); a duration that is not, as reports write it."""
    for unit, size in units:
        if value >= size and (value / size).is_integer():
            return f"{value / size:.0f} {unit}"
    if units[-1][0] == "s":
        return format_duration(value)
    unit, size = next(((u, z) for u, z in units if value >= z), units[-1])
    return f"{value / size:g} {unit}"


class Goal(_Model):
    """One goal: exactly one of its kinds."""

    arrive: Arrive | None = None
    outcome: Outcome | None = None
    encrypted: Encrypted | None = None
    unread: Unread | None = None
    setting: Setting | None = None

    def kind(self) -> Arrive | Outcome | Encrypted | Unread | Setting:
        given = (self.arrive, self.outcome, self.encrypted, self.unread, self.setting)
        (found,) = [v for v in given if v]
        return found


class Activity(_Model):
    """An activity file: the task, where it starts, what may change, the goals."""

    title: str
    task: str = Field("", description="what the student reads")
    scenario: str = Field(description="the starting scenario: a path from this file or a name")
    change: list[str] = Field(
        default_factory=list,
        description='key paths the student may change, as --set writes them ("*": any one'
        " key); a path allows everything inside it",
    )
    goals: Annotated[list[Goal], Field(min_length=1)]


@dataclass(frozen=True)
class Verdict:
    """One goal, checked: met or not, what was measured, in words."""

    goal: str
    met: bool
    measured: str


@dataclass(frozen=True)
class Grade:
    """An activity checked against one scenario."""

    activity: Activity
    verdicts: list[Verdict]
    changed: list[str]  # key paths that differ from the starting scenario
    forbidden: list[str]  # of those, the ones the activity does not allow

    @property
    def passed(self) -> bool:
        return not self.forbidden and all(v.met for v in self.verdicts)

    def lines(self) -> Iterator[str]:
        yield f"Activity: {self.activity.title}"
        if self.changed:
            allowed = [c for c in self.changed if c not in self.forbidden]
            if allowed:
                yield f"  changed: {', '.join(allowed)}"
            for key in self.forbidden:
                yield f"  ✗ {key} may not be changed in this activity"
        else:
            yield "  changed: nothing yet (the starting scenario)"
        for v in self.verdicts:
            yield f"  {'✓' if v.met else '✗'} {v.goal} — {v.measured}"
        met = sum(v.met for v in self.verdicts)
        yield _count(met, len(self.verdicts)) + (
            "" if not self.forbidden else f"; {_plural(len(self.forbidden), 'change')} not allowed"
        )

    def _repr_html_(self) -> str:
        """In a notebook: the same, as a table with ✓ and ✗."""
        rows = "".join(
            f"<tr><td>{'✓' if v.met else '✗'}</td><td>{_html(v.goal)}</td>"
            f"<td>{_html(v.measured)}</td></tr>"
            for v in self.verdicts
        )
        # A header and ruled cells: the goal and what was measured must not read as one line.
        head = "<tr><th></th><th>goal</th><th>measured</th></tr>"
        style = "<style>.mailsim-grade td, .mailsim-grade th {border: 1px solid #bbb;" \
            " padding: 2px 8px; text-align: left}</style>"  # fmt: skip
        met = sum(v.met for v in self.verdicts)
        extra = "".join(f"<p>✗ {_html(k)} may not be changed</p>" for k in self.forbidden)
        return (
            f"{style}<h4>{_html(self.activity.title)}</h4>{extra}"
            f"<table class='mailsim-grade'>{head}{rows}</table>"
            f"<p><b>{_count(met, len(self.verdicts))}</b></p>"
        )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _count(met: int, goals: int) -> str:
    """Says "1 of 1 goal met" or "2 of 3 goals met", as the total reads."""
    return f"{met} of {_plural(goals, 'goal')} met"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def load(path: str | Path) -> tuple[Activity, Path]:
    """An activity file, validated, and its starting scenario's path."""
    from mailsim import examples
    from mailsim.scenario import _Lines, _lines, _parse, read

    name = str(path)
    data, tree = _parse(read(path), name)
    if not isinstance(data, dict):
        raise ScenarioError([Problem(name, "", "an activity is a mapping: title, scenario, goals")])
    if "goals" not in data and ("nodes" in data or "sites" in data):
        raise ScenarioError([Problem(name, "", "this is a scenario, not an activity: give the"
                                     " activity first, then the scenario (mailsim check"
                                     " ACTIVITY SCENARIO)")])  # fmt: skip
    try:
        activity = Activity.model_validate(data)
    except ValidationError as exc:
        from mailsim.problems import problem_of

        lines = _Lines(lambda: _lines(tree))
        problems = [problem_of(err, name, lines, data, Activity) for err in exc.errors()[:100]]
        raise ScenarioError(at_most_shown(problems, exc.error_count(), name)) from None
    problems = []
    for i, goal in enumerate(activity.goals):
        given = [k for k in KINDS if getattr(goal, k)]
        if len(given) != 1:
            problems.append(Problem(name, key_path(("goals", i)),
                                    f"give exactly one of {', '.join(KINDS)}"))  # fmt: skip
    if problems:
        raise ScenarioError(problems)
    start = Path(path).parent / activity.scenario
    if not start.is_file():
        shipped = examples.scenario(activity.scenario)
        if shipped is None:
            raise ScenarioError([Problem(name, "scenario", f"no scenario {activity.scenario!r}")])
        start = shipped
    settings = [(i, g.setting) for i, g in enumerate(activity.goals) if g.setting is not None]
    if settings:  # a key the starting scenario does not have is a slip of the teacher's
        import mailsim

        data = mailsim.load(start).model_dump(by_alias=True)
        for i, setting in settings:
            where = key_path(("goals", i, "setting", "key"))
            try:
                value = lookup(data, setting.key)
            except InputError as exc:
                problems += [Problem(name, where, f"{p.message} of {start.name}")
                             for p in exc.problems]  # fmt: skip
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(Problem(name, where, f"{setting.key} of {start.name} is"
                                        f" {quoted(value)}, not a number a bound can hold"))  # fmt: skip
        if problems:
            raise ScenarioError(problems)
    return activity, start


def grade(activity_file: str | Path, scenario: Scenario | str | Path | None = None,
          seed: int = 0) -> Grade:  # fmt: skip
    """``mailsim.grade("faster-mail.yaml", "mine.yaml")``: the activity's goals checked on
    a scenario (a file or a loaded one; the activity's own without one). In a notebook
    the grade shows as a table of ✓ and ✗."""
    import mailsim

    activity, start_path = load(activity_file)
    start = mailsim.load(start_path)
    if scenario is None:
        scenario = start
    elif not isinstance(scenario, Scenario):
        scenario = mailsim.load(scenario)
    return check(activity, start, scenario, seed)


def checker(activity_file: str | Path, scenario: str = "") -> Any:
    """In a notebook: the student's scenario file, a Check button, and the grade as a
    table after each click (what ``mailsim check`` prints)."""
    import ipywidgets as w

    mine = w.Text(value=scenario, placeholder="my-world.yaml (empty: the starting one)",
                  description="scenario", layout=w.Layout(width="420px"))  # fmt: skip
    press = w.Button(description="Check")
    shown = w.HTML()

    def clicked(_: Any) -> None:
        try:
            shown.value = grade(activity_file, mine.value.strip() or None)._repr_html_()
        except InputError as exc:
            shown.value = "<br>".join(_html(str(p)) for p in exc.problems)

    press.on_click(clicked)
    return w.VBox([w.HBox([mine, press]), shown])


def chooser(activity_file: str | Path, key: str, options: dict[str, str], label: str) -> Any:
    """In a notebook, for a class that edits no files: a menu of values for one key
    (``options``: what the menu says → the value, as ``--set`` writes it), a Check button,
    and the grade of the starting scenario with that value."""
    import ipywidgets as w

    changes = {shown: [f"{key}={value}"] for shown, value in options.items()}
    grade_of = _grader(activity_file, changes)
    menu = w.Dropdown(options=list(options), description=label, layout=w.Layout(width="auto"),
                      style={"description_width": "initial"})  # fmt: skip
    press = w.Button(description="Check")
    shown = w.HTML()

    def clicked(_: Any) -> None:
        shown.value = grade_of(changes[menu.value])._repr_html_()

    press.on_click(clicked)
    return w.VBox([w.HBox([menu, press]), shown])


def switches(activity_file: str | Path, changes: dict[str, str]) -> Any:
    """In a notebook: a box to tick for each change (``changes``: what the box says → the
    change, as ``--set`` writes it), a Check button, and the grade of the starting
    scenario with the ticked changes — for activities that need several at once."""
    import ipywidgets as w

    grade_of = _grader(activity_file, {shown: [change] for shown, change in changes.items()})
    boxes = [w.Checkbox(value=False, description=shown, indent=False,
                        layout=w.Layout(width="auto")) for shown in changes]  # fmt: skip
    press = w.Button(description="Check")
    shown = w.HTML()

    def clicked(_: Any) -> None:
        ticked = [changes[box.description] for box in boxes if box.value]
        shown.value = grade_of(ticked)._repr_html_()

    press.on_click(clicked)
    return w.VBox([*boxes, press, shown])


def _grader(activity_file: str | Path, offered: dict[str, list[str]]) -> Any:
    """What a widget's Check does: grade the starting scenario with some ``--set``
    changes. Each change ``offered`` (by what the widget says) is tried at once: a
    widget may not offer a change the activity would refuse."""
    import mailsim

    activity, start_path = load(activity_file)
    start = mailsim.load(start_path)
    for shown, changes in offered.items():
        changed = differences(start, mailsim.load(start_path, changes))
        forbidden = [key for key in changed if not _allowed(key, activity.change)]
        if forbidden:
            raise ValueError(f"{activity_file}: {shown!r} changes {', '.join(forbidden)},"
                             " which the activity does not let change")  # fmt: skip

    def grade_of(changes: list[str]) -> Grade:
        return check(activity, start, mailsim.load(start_path, changes))

    return grade_of


def check(activity: Activity, start: Scenario, scenario: Scenario, seed: int = 0) -> Grade:
    """Play ``scenario`` and check the activity's goals on its result."""
    import mailsim

    changed = differences(start, scenario)
    forbidden = [key for key in changed if not _allowed(key, activity.change)]
    result = mailsim.run(scenario, seed=seed)
    verdicts = [
        _setting(goal.setting, scenario) if goal.setting else _verdict(goal.kind(), result)
        for goal in activity.goals
    ]
    return Grade(activity, verdicts, changed, forbidden)


def _setting(goal: Setting, scenario: Scenario) -> Verdict:
    low, high = goal.bounds()
    said = [f"at least {goal.shown(low)}"] if goal.at_least is not None else []
    said += [f"at most {goal.shown(high)}"] if goal.at_most is not None else []
    words = goal.say or f"{goal.key} is {' and '.join(said)}"
    value = lookup(scenario.model_dump(by_alias=True), goal.key)
    if value is None:
        return Verdict(words, False, "not set")
    return Verdict(words, bool(low <= float(value) <= high), goal.shown(value))


def _verdict(goal: Any, result: Any) -> Verdict:
    if isinstance(goal, Arrive):
        return _arrive(goal, result.messages)
    if isinstance(goal, Outcome):
        return _outcome(goal, result.messages)
    if isinstance(goal, Encrypted):
        return _encrypted(goal, result.hops)
    return _unread(goal, result.overheard)


def _arrive(goal: Arrive, messages: pd.DataFrame) -> Verdict:
    rows = goal.pick(messages)
    place = "reader" if goal.reach == "reader" else "mailbox"
    words = goal.say or (
        f"{goal.whose()} reaches its {place}"
        + (f" within {format_duration(goal.within)}" if goal.within else "")
    )
    if rows.empty:
        return Verdict(words, False, "no such message was sent")
    done = ("retrieved",) if goal.reach == "reader" else ("retrieved", "delivered")
    missing = rows[~rows["status"].isin(done)]
    if not missing.empty:
        first = missing.iloc[0]
        status = str(first["status"]).replace("_", " ")  # "in flight": still on its way
        return Verdict(words, False, f"{first['id']} to {first['recipient']}: {status}"
                                     + (f" ({first['reason']})" if first["reason"] else ""))  # fmt: skip
    column = "delay" if goal.reach == "reader" else "to_mailbox"
    slowest = rows[column].max()
    met = goal.within is None or bool(slowest <= goal.within)
    return Verdict(words, met, f"{'slowest ' if len(rows) > 1 else ''}{format_duration(slowest)}")


def _outcome(goal: Outcome, messages: pd.DataFrame) -> Verdict:
    rows = goal.pick(messages)
    words = goal.say or f"{goal.whose()} ends {' or '.join(goal.ends)}"
    if rows.empty:
        return Verdict(words, False, "no such message was sent")
    ends = [
        (row["folder"] or "inbox") if row["status"] in ("retrieved", "delivered") else row["status"]
        for _, row in rows.iterrows()
    ]
    said = ", ".join(
        f"{i} to {r}: {e}" for i, r, e in zip(rows["id"], rows["recipient"], ends, strict=True)
    )
    return Verdict(words, all(end in goal.ends for end in ends), said)


def _encrypted(goal: Encrypted, hops: pd.DataFrame) -> Verdict:
    rows = hops if goal.protocols is None else hops[hops["protocol"].isin(goal.protocols)]
    if goal.carrying == "password":
        rows = rows[rows["auth"].astype(bool)]  # the hops that logged in
    else:  # the hops that handed the message on (a refused try carried nothing)
        rows = rows[rows["code"].astype(str).str.startswith(("2", "+"))]
    words = (
        goal.say
        or f"every hop carrying {'a password' if goal.carrying == 'password' else 'the message'} is encrypted"
    )
    plain = rows[rows["tls"].fillna("") == ""]
    if plain.empty:
        return Verdict(words, True, f"{_plural(len(rows), 'hop')}, all inside TLS")
    first = plain.iloc[0]
    return Verdict(
        words,
        False,
        f"{len(plain)} in plaintext, e.g. {first['src']} → {first['dst']} ({first['protocol']})",
    )


def _unread(goal: Unread, overheard: pd.DataFrame) -> Verdict:
    rows = overheard[(overheard["eavesdropper"] == goal.by) & overheard["what"].isin(goal.what)]
    words = goal.say or f"{goal.by} reads no {', '.join(goal.what)}"
    if rows.empty:
        return Verdict(words, True, "nothing read")
    counts = rows["what"].value_counts()
    return Verdict(words, False, ", ".join(f"{n} × {what}" for what, n in counts.items()))


def differences(start: Scenario, scenario: Scenario) -> list[str]:
    """The key paths where ``scenario`` differs from ``start`` (as --set names them)."""
    out: list[str] = []
    _diff(start.model_dump(by_alias=True), scenario.model_dump(by_alias=True), (), out)
    return out


def _diff(a: Any, b: Any, loc: tuple[Any, ...], out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            _diff(a.get(key), b.get(key), (*loc, key), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, (*loc, i), out)
    elif a != b:
        out.append(key_path(loc))


def _allowed(key: str, patterns: list[str]) -> bool:
    """Is ``key`` inside one of ``patterns`` (``*`` standing for any one key)?"""
    for pattern in patterns:
        regex = "".join(r"[^.\[]+" if part == "*" else re.escape(part)
                        for part in re.split(r"(\*)", pattern))  # fmt: skip
        if re.fullmatch(regex + r"(?:[.\[].*)?", key):
            return True
    return False


def _matches(address: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(address.lower(), pattern.lower())
