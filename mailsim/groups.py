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
from fnmatch import fnmatchcase

RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
LIMIT = 100_000  # addresses from one pattern: a typo such as {1..5000000} fails at once


def expand(pattern: str) -> list[str]:
    """``a{1..3}@x.example`` → a1@, a2@, a3@x.example; several ranges multiply out.
    Raises ValueError, saying what to fix, for a range that counts down or is too large."""
    match = RANGE.search(pattern)
    if match is None:
        return [pattern]
    low, high = match.group(1), match.group(2)
    if int(high) < int(low):
        raise ValueError(f"{{{low}..{high}}} counts down: write the smaller number first")
    width = max(len(low), len(high)) if low.startswith("0") or high.startswith("0") else 0
    count = int(high) - int(low) + 1
    if count > LIMIT:
        raise ValueError(f"{{{low}..{high}}} is {count:,} addresses; at most {LIMIT:,}")
    rest = expand(pattern[match.end() :])
    if count * len(rest) > LIMIT:
        raise ValueError(f"{pattern!r} is {count * len(rest):,} addresses; at most {LIMIT:,}")
    head = pattern[: match.start()]
    return [f"{head}{n:0{width}d}{tail}" for n in range(int(low), int(high) + 1) for tail in rest]


def is_glob(item: str) -> bool:
    return "*" in item or "?" in item


def resolve(item: str, users: Sequence[str]) -> list[str]:
    """One entry of a ``from``/``to`` list: an address, a range, or a glob matched
    (ignoring case, as mail domains are) against the declared users."""
    if is_glob(item) and item not in users:
        wanted = item.lower()
        matches = [user for user in users if fnmatchcase(user.lower(), wanted)]
        if not matches:
            raise ValueError(f"{item!r} matches no user in users")
        return matches
    return expand(item)


def resolve_all(items: Iterable[str], users: Sequence[str]) -> list[str]:
    """Every entry resolved, in order, each address once."""
    return list(dict.fromkeys(address for item in items for address in resolve(item, users)))
