"""Errors for bad input, rendered one line per problem: ``file:line: key.path: message``.

Scenario files come from students: every problem is reported at once, each naming the
file and the key path, so that one run of ``mailsim validate`` lists all there is to fix.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


def key_path(loc: tuple[object, ...]) -> str:
    """``("users", "a@x.example", "smtp")`` → ``users["a@x.example"].smtp``: keys that hold
    dots (domains, addresses) are quoted so that the path stays unambiguous."""
    out = ""
    for part in loc:
        if isinstance(part, str) and "." in part:
            out += f'["{part}"]'
        else:
            out += ("." if out else "") + str(part)
    return out


class InputError(Exception):
    """Bad input (scenario file, CLI option, mail file): exit code 2, never a traceback."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ScenarioError(InputError):
    """A scenario file that cannot be simulated, with every problem found in it."""
