"""``--set KEY=VALUE``: change one value of a scenario before it is validated.

KEY is a path into the scenario file, with the names a student sees in it:

* mapping keys joined by dots: ``nodes.mx-home.processing.command``; keys that hold dots
  (domains, addresses) may be written plainly — the longest key that exists wins — or
  quoted as in error messages: ``users["alice@school.example"].poll``;
* a link by its two ends, in either order: ``links.r-school/r-home.latency``;
* other list items by position (``faults.0.at``) or by their ``id``
  (``messages.m1.size``).

VALUE is read as YAML by :mod:`mailsim.scenario` (``150ms``, ``3``, ``true``, ``[a, b]``);
an empty VALUE is null. The changed scenario is then validated exactly like a file, so a
bad value gets the same message a bad file would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mailsim.errors import InputError, Problem, shown

# A key path is no deeper than a scenario may be nested (scenario.MAX_DEPTH); the longest
# a scenario needs is five parts (``nodes.mx-home.processing.command``).
MAX_PARTS = 50

_SEGMENT = re.compile(r"""\[\s*(?:"([^"]*)"|'([^']*)'|([^\]]*))\s*\]|([^.\[\]]+)""")


def split(assignment: str) -> tuple[str, str]:
    """``"links.a/b.latency=150ms"`` → (``"links.a/b.latency"``, ``"150ms"``)."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise _error(assignment, "expected KEY=VALUE, e.g. links.r-school/r-home.latency=150ms")
    return key, text


def segments(key: str) -> list[tuple[str, bool]]:
    """The parts of a key path: (text, quoted). A quoted part is one key, dots and all."""
    parts: list[tuple[str, bool]] = []
    position = 0
    while position < len(key):
        if key[position] == ".":
            position += 1
            continue
        match = _SEGMENT.match(key, position)
        if match is None:
            raise _error(key, f"cannot read the key path at {key[position:]!r}")
        quoted = next((g for g in match.groups()[:3] if g is not None), None)
        parts.append((quoted, True) if quoted is not None else (match.group(4), False))
        position = match.end()
        if len(parts) > MAX_PARTS:
            raise _error(
                key, f"the key path has more than {MAX_PARTS} parts; a scenario's deepest has five"
            )
    if not parts:
        raise _error(key, "the key path is empty")
    return parts


def apply(
    data: dict[str, Any], assignments: list[str], read: Callable[[str, str], Any]
) -> list[tuple[Any, ...]]:
    """Set each ``KEY=VALUE`` in ``data`` (the parsed file, changed in place), the value
    read by ``read(key, text)``; returns the location of each value set. Raises
    InputError listing every bad assignment."""
    problems: list[Problem] = []
    locations = []
    for assignment in assignments:
        try:
            key, text = split(assignment)
            value = read(key, text)
            parent, last, loc = _resolve(data, key)
        except InputError as exc:
            problems += exc.problems
            continue
        parent[last] = value
        locations.append(loc)
    if problems:
        raise InputError(problems)
    return locations


def lookup(data: dict[str, Any], key: str) -> Any:
    """The value at ``key`` in ``data`` (a scenario as ``model_dump`` gives it), found
    as ``--set`` finds it; raises InputError when there is no such key."""
    parent, last, loc = _resolve(data, key, fill=False)
    if isinstance(parent, dict) and last not in parent:
        raise _error(key, f"there is no {last!r} in {_dotted(list(loc[:-1]))}")
    return parent[last]


def _resolve(data: dict[str, Any], key: str, fill: bool = True) -> tuple[Any, Any, tuple[Any, ...]]:
    """Walk ``key`` through ``data``: the container holding the last part, that part
    (a mapping key or a list index) and the whole location, for error messages. A
    section the file leaves out is filled in on the way (``fill``), else it is an error."""
    parts = segments(key)
    node: Any = data
    loc: list[Any] = []
    step: str | int
    i = 0
    while True:
        text = parts[i][0]
        if isinstance(node, dict):
            step, i = _mapping_key(node, parts, i, key)
        elif isinstance(node, list):
            step = _list_index(node, text, loc, key)
            i += 1
        else:
            where = ".".join(str(p) for p in loc)
            raise _error(key, f"{where} is a single value ({shown(node)}), it has no {text!r}")
        loc.append(step)
        if i == len(parts):
            return node, step, tuple(loc)
        if isinstance(node, dict) and node.get(step) is None:
            if not fill:
                raise _error(key, f"there is no {step!r} in {_dotted(loc[:-1])}")
            node[step] = {}  # a section the file leaves out: fill it in
        node = node[step]


def _mapping_key(
    node: dict[str, Any], parts: list[tuple[str, bool]], i: int, key: str
) -> tuple[str, int]:
    """The key at ``parts[i]``: unquoted parts may join with dots into a key that holds
    dots (``alice@school.example``); the longest existing key wins."""
    text, quoted = parts[i]
    if not quoted:
        j = i
        joined = text
        best = (text, i + 1) if text in node else None
        while j + 1 < len(parts) and not parts[j + 1][1]:
            j += 1
            joined += "." + parts[j][0]
            if joined in node:
                best = (joined, j + 1)
        if best is not None:
            return best
        if i + 1 < len(parts) and any("." in str(k) for k in node):
            # A new key among keys that hold dots (an address, a domain): where it ends
            # cannot be told, so ask for the quoted form rather than guess.
            before = ".".join(p for p, _ in parts[:i])
            name = ".".join(p for p, _ in parts[i:-1])
            raise _error(key, f"there is no {name!r} in {before}; a new name that holds dots"
                              f' is written quoted: {before}["{name}"].{parts[-1][0]}')  # fmt: skip
    return text, i + 1


def _list_index(items: list[Any], text: str, loc: list[Any], key: str) -> int:
    if re.fullmatch(r"-?[0-9]+", text):
        index = int(text)
        if not -len(items) <= index < len(items):
            raise _error(key, f"{_dotted(loc)} has {len(items)} items, there is no item {index}")
        return index % len(items)
    if loc == ["links"] and "/" in text:
        a, _, b = text.partition("/")
        for index, link in enumerate(items):
            if isinstance(link, dict) and sorted(map(str, link.get("between") or ())) == sorted(
                (a.strip(), b.strip())
            ):
                return index
        ends = ", ".join(
            "/".join(map(str, link.get("between") or ()))
            for link in items
            if isinstance(link, dict)
        )
        raise _error(key, f"no link between {a} and {b} (links: {ends})")
    for index, item in enumerate(items):
        if isinstance(item, dict) and str(item.get("id")) == text:
            return index
    raise _error(
        key,
        f"{_dotted(loc)} is a list: name an item by its position (0, 1, …)"
        + (", or a link by its two ends (a/b)" if loc == ["links"] else ", or by its id"),
    )


def _dotted(loc: list[Any]) -> str:
    return ".".join(str(p) for p in loc) or "the scenario"


def error(key: str, message: str) -> InputError:
    """A bad ``--set``: reported as ``--set: KEY: message``."""
    return _error(key, message)


def _error(key: str, message: str) -> InputError:
    return InputError([Problem("--set", key, message)])
