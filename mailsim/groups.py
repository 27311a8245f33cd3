"""Many users in one line: ``staff{001..500}@office.example`` and ``*@office.example``.

A busy office has hundreds of mailboxes that differ only in their number. A scenario
declares them once, as a range written the way a shell writes it (bash's brace
expansion: ``{1..500}``; a leading zero, ``{001..500}``, keeps every number that wide),
and a traffic generator names them again with the same range or with a glob over the
declared users (``*@office.example``: everyone in the office).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fnmatch import translate

RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
# Addresses from one pattern, and from all the users of a scenario together: a typo
# such as {1..5000000} fails at once, and ten patterns cannot declare a million users
# (each costs a mailbox and a poll at every run).
LIMIT = 100_000
MAX_USERS = 100_000
# A range's numbers: nine digits count to a billion, far past LIMIT; longer ones are typos.
MAX_DIGITS = 9


def count(pattern: str) -> int:
    """How many addresses ``pattern`` stands for, without writing them out (ranges
    multiply). Raises ValueError, saying what to fix, for a range that counts down."""
    total = 1
    for low, high in RANGE.findall(pattern):
        if max(len(low), len(high)) > MAX_DIGITS:
            raise ValueError(
                f"a range counts with numbers of at most {MAX_DIGITS} digits, as {{1..500}}"
            )
        if int(high) < int(low):
            raise ValueError(f"{{{low}..{high}}} counts down: write the smaller number first")
        total *= int(high) - int(low) + 1
    return total


def expand(pattern: str) -> list[str]:
    """``a{1..3}@x.example`` → a1@, a2@, a3@x.example; several ranges multiply out.
    Raises ValueError, saying what to fix, for a range that counts down or is too large."""
    total = count(pattern)
    if total > LIMIT:
        for low, high in RANGE.findall(pattern):
            if int(high) - int(low) + 1 > LIMIT:
                size = int(high) - int(low) + 1
                raise ValueError(f"{{{low}..{high}}} is {size:,} addresses; at most {LIMIT:,}")
        raise ValueError(f"{pattern!r} is {total:,} addresses; at most {LIMIT:,}")
    expanded = [""]
    position = 0
    for match in RANGE.finditer(pattern):
        low, high = match.group(1), match.group(2)
        width = max(len(low), len(high)) if low.startswith("0") or high.startswith("0") else 0
        text = pattern[position : match.start()]
        numbers = [f"{n:0{width}d}" for n in range(int(low), int(high) + 1)]
        expanded = [f"{head}{text}{n}" for head in expanded for n in numbers]
        position = match.end()
    tail = pattern[position:]
    return [head + tail for head in expanded]


def is_glob(item: str) -> bool:
    return "*" in item or "?" in item


def matcher(item: str) -> re.Pattern[str]:
    """A glob as a regular expression over lower-case addresses, compiled once for
    all the users it is matched against."""
    return re.compile(translate(item.lower()))


def resolve(item: str, users: Sequence[str], lowered: Sequence[str] | None = None) -> list[str]:
    """One entry of a ``from``/``to`` list: an address, a range, or a glob matched
    (ignoring case, as mail domains are) against the declared users; ``lowered``, the
    users in lower case, saves lowering them again for each glob."""
    if is_glob(item) and item not in users:
        lowered = lowered if lowered is not None else [user.lower() for user in users]
        match = matcher(item).match
        matches = [user for user, low in zip(users, lowered, strict=True) if match(low)]
        if not matches:
            raise ValueError(f"{item!r} matches no user in users")
        return matches
    return expand(item)


def resolve_all(items: Iterable[str], users: Sequence[str]) -> list[str]:
    """Every entry resolved, in order, each address once."""
    items = list(items)
    lowered = [user.lower() for user in users] if any(map(is_glob, items)) else None
    return list(
        dict.fromkeys(address for item in items for address in resolve(item, users, lowered))
    )
