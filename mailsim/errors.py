"""Errors for bad input, rendered one line per problem: ``file:line: key.path: message``.

Scenario files come from students: every problem is reported at once, each naming the
file and the key path, so that one run of ``mailsim validate`` lists all there is to fix.
A problem is always one line of plain text: a line break, a tab, an escape sequence or a
bidirectional control in a file name, a key or a quoted value is shown escaped, so that
it can neither break the line nor play tricks on the terminal.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Unicode's bidirectional controls (Unicode Standard Annex #9): they reorder what follows
# on the screen without being seen, so a message shows them as escapes.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = _cut(self.key, KEY_SHOWN)
        text = f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"
        return plain(text)


# A key path of a real scenario is under 80 characters; a longer one (a --set typed
# wrong, a name of 10,000 characters) is shown cut, so that the problem stays one line.
KEY_SHOWN = 200


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str) -> str:
    """``text`` with every character that is not printable on one line (control
    characters, line separators, bidirectional controls, lone surrogates) escaped as
    Python writes it (``\\n``, ``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char.isprintable() and char not in BIDI_CONTROLS:
        return char
    if unicodedata.category(char) in ("Zs", "Cf") and char not in BIDI_CONTROLS:
        return char  # other spaces, zero-width joiners of emoji: harmless on a line
    return repr(char)[1:-1]


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a problem quotes what was written,
    not a whole file."""
    try:
        text = repr(value)
    except ValueError:  # a whole number of more than 4,300 digits
        return f"a number of {value.bit_length():,} bits"  # type: ignore[attr-defined]
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


# Problems listed for one input: a student fixes the first ones first, and they often
# cause the rest; a hundred fill a screen twice. The rest are counted in one more line.
MAX_PROBLEMS = 100


def at_most_shown(problems: list[Problem], total: int, file: str) -> list[Problem]:
    """The first MAX_PROBLEMS of ``total`` problems, and a line saying how many more."""
    if total <= MAX_PROBLEMS:
        return problems
    more = total - MAX_PROBLEMS
    return [
        *problems[:MAX_PROBLEMS],
        Problem(file, "", f"and {more:,} more problems: fix these first"),
    ]


class InputError(Exception):
    """Bad input (scenario file, CLI option, mail file): exit code 2, never a traceback."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ScenarioError(InputError):
    """A scenario file that cannot be simulated, with every problem found in it."""
