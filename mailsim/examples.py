"""The shipped scenarios and lessons, wherever mailsim is installed.

In the repository they live at the top, in ``scenarios/`` and ``notebooks/``; a wheel
carries the same files as ``mailsim/examples/`` (see ``pyproject.toml``). A teacher who
installed the wheel runs ``mailsim run classroom`` or copies them all with ``mailsim
examples copy DIR`` to start from.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from mailsim.errors import InputError, Problem

KINDS = ("scenarios", "notebooks")
LESSON_FILES = (".ipynb", ".yaml", ".md", ".eml")  # lessons, quizzes, glossary, samples
_PACKAGE = Path(__file__).resolve().parent


def folder(kind: str) -> Path | None:
    """Where the shipped ``kind`` (scenarios or notebooks) are: inside the installed
    package, or at the top of the repository this package runs from."""
    for place in (_PACKAGE / "examples" / kind, _PACKAGE.parent / kind):
        if place.is_dir():
            return place
    return None


@dataclass(frozen=True)
class Example:
    name: str
    path: Path
    about: str  # one line: what it teaches


def _about_scenario(path: Path) -> str:
    """The first paragraph of the comment a scenario file opens with."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if not text:
            if words:
                break
            continue
        words.append(text)
    return " ".join(words)


def _about_notebook(path: Path) -> str:
    """A lesson's title: the first heading of its first cell."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        first = "".join(cells[0]["source"]).splitlines()[0]
    except (ValueError, KeyError, IndexError):
        return ""
    return first.lstrip("# ").strip()


def listing(kind: str) -> list[Example]:
    """The shipped scenarios (``*.yaml``) or lessons (``*.ipynb``), by name."""
    place = folder(kind)
    if place is None:
        return []
    if kind == "scenarios":
        return [Example(p.stem, p, _about_scenario(p)) for p in sorted(place.glob("*.yaml"))]
    # Both tracks: the university lessons at the top, the school track's in school/.
    lessons = [*sorted(place.glob("*.ipynb")), *sorted(place.glob("school/*.ipynb"))]
    return [
        Example(p.relative_to(place).with_suffix("").as_posix(), p, _about_notebook(p))
        for p in lessons
    ]


def _lesson_files(place: Path) -> list[Path]:
    """Everything the lessons open beside themselves: both tracks, their quizzes, the
    glossary (no checkpoints, no files a lesson wrote while it ran)."""
    return sorted(
        p
        for p in place.rglob("*")
        if p.suffix in LESSON_FILES and p.is_file() and ".ipynb_checkpoints" not in p.parts
    )


def scenario(name: str) -> Path | None:
    """The shipped scenario called ``name`` (``classroom`` or ``classroom.yaml``), if
    ``name`` is a bare name, not a path."""
    if "/" in name or "\\" in name:
        return None
    stem = name.removesuffix(".yaml")
    place = folder("scenarios")
    path = place / f"{stem}.yaml" if place is not None else None
    return path if path is not None and path.is_file() else None


def resolve(argument: str) -> str:
    """A scenario argument of the command line: the file, if there is one; else the
    shipped scenario of that name; else the argument as given (its reader says what is
    wrong with it)."""
    if argument == "-" or Path(argument).exists():
        return argument
    shipped = scenario(argument)
    return str(shipped) if shipped is not None else argument


def copy(destination: Path, solutions: bool = True) -> list[Path]:
    """Copy the shipped scenarios and lessons into ``destination/scenarios`` and
    ``destination/notebooks`` (the lessons find the scenarios at ``../scenarios``, the
    school track's at ``../../scenarios``; their quizzes and glossary come along), and the
    activities into ``destination/scenarios/activities`` — with their solutions, unless
    ``solutions`` is false (a copy to hand out to students).
    Nothing is overwritten: a file that exists already is a problem to say, and then
    nothing is copied at all."""
    plan = [
        (example.path, destination / "scenarios" / example.path.name)
        for example in listing("scenarios")
    ]
    lessons = folder("notebooks")
    if lessons is not None:
        plan += [
            (path, destination / "notebooks" / path.relative_to(lessons))
            for path in _lesson_files(lessons)
        ]
    place = folder("scenarios")
    if place is not None:  # the activities, their starting points and solutions
        plan += [
            (path, destination / "scenarios" / path.relative_to(place))
            for path in sorted((place / "activities").rglob("*.yaml"))
            if solutions or path.parent.name != "solutions"
        ]
    taken = [target for _, target in plan if target.exists()]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise InputError(
            [
                Problem(
                    str(destination),
                    "examples copy",
                    f"{taken[0]} exists already{more}; copy into an empty folder",
                )
            ]
        )
    for source, target in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return [target for _, target in plan]
