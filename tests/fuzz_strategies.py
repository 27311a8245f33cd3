"""Hostile input for the fuzz tests (hypothesis strategies): scenario documents written as
YAML text, the shipped scenarios with a few things changed, ``--set`` assignments and the
headers of real messages, damaged.

Random documents find the reader's and the loader's faults; a shipped scenario with one
value changed passes most of the validation and reaches the checks, the simulation and
the outputs behind it, where a random document never gets.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from hypothesis import strategies as st
from pydantic import BaseModel

from mailsim import scenario as model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
HEADERS = sorted((ROOT / "tests" / "data" / "headers").glob("*.[em][mb]*"))

# --- the words of a scenario --------------------------------------------------------------


def _field_names() -> list[str]:
    """Every key a scenario file may hold, from the models: random keys drawn from these
    are accepted often enough to reach the checks behind the schema."""
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in seen:
                return
            seen.add(annotation)
            for name, info in annotation.model_fields.items():
                names.add(info.alias or name)
                walk(info.annotation)
        for arg in get_args(annotation):
            walk(arg)

    walk(model.Scenario)
    return sorted(names)


KEYS = _field_names()


def _unwrap(annotation: Any, value: Any) -> Any:
    """The type under Annotated and Optional; of a tagged union (nodes by role, faults
    by kind), the member whose tag ``value`` holds."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            members = [m for m in get_args(annotation) if m is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            for member in models:
                for tag in ("role", "kind"):
                    field = member.model_fields.get(tag)
                    if field and isinstance(value, dict) and value.get(tag) in get_args(field.annotation):  # fmt: skip
                        return member
            annotation = models[0] if models else members[0]
        else:
            return annotation


def fields_at(data: Any, path: tuple[Any, ...]) -> list[str]:
    """The keys the scenario's schema allows in the mapping at ``path`` of ``data``
    (empty where it allows none or any)."""
    annotation: Any = model.Scenario
    for part in path:
        annotation = _unwrap(annotation, data)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            by_alias = {(f.alias or n): f for n, f in annotation.model_fields.items()}
            if part not in by_alias:
                return []
            annotation = by_alias[part].annotation
        elif get_origin(annotation) in (dict, list, tuple):
            annotation = get_args(annotation)[-1 if get_origin(annotation) is dict else 0]
        else:
            return []
        data = data[part]
    annotation = _unwrap(annotation, data)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sorted(f.alias or n for n, f in annotation.model_fields.items())
    return []


WORDS = [*KEYS, *model.ROLES, *model.FAULT_KINDS, "postfix", "rfc", "exim", "may", "encrypt",
         "required", "optional", "none", "spread", "working-day", "flat", "1.2", "1.3"]  # fmt: skip

# YAML scalars that are numbers, or nearly: the edges of float and int, and YAML 1.1's
# surprises (sexagesimal 1:30 is 90, 0o17 an octal, 1_000 a thousand).
NUMBERS = [
    "0", "-0", "-1", "1", "0.0", "-0.0", "0.5", "1e308", "-1e308", "1.8e308", "1e400",
    "-1e400", "1e-400", "5e-324", "2.5e-310", ".inf", "-.inf", "+.inf", ".Inf", ".nan",
    ".NaN", "99999999999999999999999999999999", "-99999999999999999999", "2147483648",
    "9223372036854775808", "18446744073709551616", "1_000_000", "0x7fffffffffffffff",
    "0o777", "0b101", "1:30", "190:20:30", "1e3", "12e",
]  # fmt: skip
# Values with units, as the schema reads them, at the same edges.
UNITS = [
    "20ms", "0ms", "-1s", "-0s", "1e400ms", "1e308d", "1e308h", "1e-300ms", "1e-320s",
    "99999999999999999999999d", "5min", "2h", "1h30min", "2d 12h", "1e308d 1e308d", "1ms1ms",
    "0.0001us", "1e308GB", "1e400MB", "0.0000001B", "1e400Mbps", "1e-300bps", "-5Mbps",
    "0bps", "10/h", "0/h", "1e308/s", "1e400/min", "1e-320/d", "99999999999999999999/s",
    "20 ms", "20MS", "20 parsecs", "ms", "1..2s",
]  # fmt: skip
DATES = [
    "2026-11-02T09:00:00+01:00", "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00", "1970-01-01", "2026-02-30",
    "2026-11-02 09:00:00", "2026-11-02T25:00:00", "2026-11-02T09:00:00Z", "2026-11-02",
]  # fmt: skip
# Text that has broken programs before: line breaks of every kind, NUL, terminal escapes,
# right-to-left marks, emoji, addresses and ranges at the limits, format strings.
TEXTS = [
    "", " ", "\t", "\x00", "a\x00b", "\r", "\n", "\r\n", "a\nb", "a\rb", "\x85", "\u2028",
    "\u2029", "\x0b", "\x0c", "\x1c", "\x1b[2J", "\x1b]0;pwned\x07", "\x7f", "\u202e",
    "\u202eelpmaxe.loohcs", "\u200b", "\ufeff", "\ufffd", "😀", "👩‍👩‍👧", "مرحبا", "שלום",
    "ü@ü.example", "alice@école.example", "a@b", "@", "a@", "@b.example", "a@b.example",
    "bob@home.example", "alice@school.example", "staff{1..100000}@office.example",
    "x{1..99999}@{1..9}.example", "u{0..0}@x.example", "{1..2}{1..2}@a.example", "{2..1}@a.example",
    "*", "*@*", "?@*", "*@school.example", "[a]", "a/b", "a.b", "..", "a..b", "-", "--",
    "../../etc/passwd", "CON", "nul", "%s%n", "{}", "${HOME}", "'", '"', "\\", "a" * 300,
    "mail.school.example", "msa-school", "mx-home", "dns", "pop-home", "alice-pc", "192.0.2.1",
    "999.1.1.1", "::1", "localhost", "[127.0.0.1]",
]  # fmt: skip

texts = st.one_of(st.sampled_from(TEXTS), st.sampled_from(WORDS), st.text(max_size=12))
huge_ints = st.sampled_from([2**31, 2**63, 2**64, 10**30, -(2**63) - 1, 10**300, 10**400])
numbers = st.one_of(
    st.integers(-(2**66), 2**66),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 0.0, -0.0, 1e308, 5e-324, float("inf"), -float("inf")]),
    st.sampled_from([float("nan")]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    texts,
    st.sampled_from(UNITS),
    st.sampled_from(DATES),
    st.sampled_from([dt.date(9999, 12, 31), dt.datetime(1, 1, 1), b"\x00\xff"]),
)

# --- YAML text, written by hand ------------------------------------------------------------
#
# PyYAML's dumper writes only what it can read back; a student's file can hold anything
# the grammar allows. A document is drawn as a tree of nodes and written out by
# :func:`emit`, anchors where the tree says, and aliases to any anchor already begun,
# so that an alias inside its own anchor's node (``&a [*a]``) is drawn as often as any.


@dataclass
class Scalar:
    text: str  # already YAML: plain, quoted or tagged


@dataclass
class Alias:
    """An alias to the ``pick``-th anchor begun so far (modulo their number), or with
    ``back``, to the ``back``-th last one; ``*nope`` when there is none."""

    pick: int = 0
    back: int | None = None


@dataclass
class Seq:
    items: list[Any]
    flow: bool = True
    anchor: bool = False
    tag: str | None = None


@dataclass
class Map:
    pairs: list[tuple[Any, Any]]
    flow: bool = True
    anchor: bool = False
    tag: str | None = None


@dataclass
class _Writer:
    anchors: list[str] = field(default_factory=list)

    def props(self, node: Seq | Map) -> str:
        out = []
        if node.anchor:
            name = f"a{len(self.anchors)}"
            self.anchors.append(name)
            out.append(f"&{name}")
        if node.tag:
            out.append(node.tag)
        return " ".join(out)

    def flow(self, node: Any) -> str:
        if isinstance(node, Scalar):
            return node.text
        if isinstance(node, Alias):
            if not self.anchors:
                return "*nope"
            if node.back is not None:
                return f"*{self.anchors[max(-node.back, -len(self.anchors))]}"
            return f"*{self.anchors[node.pick % len(self.anchors)]}"
        props = self.props(node)
        if isinstance(node, Seq):
            body = "[" + ", ".join(self.flow(item) for item in node.items) + "]"
        else:
            body = "{" + ", ".join(self.pair(k, v) for k, v in node.pairs) + "}"
        return f"{props} {body}" if props else body

    def pair(self, key: Any, value: Any) -> str:
        text = self.flow(key)
        if isinstance(key, Seq | Map):
            return f"? {text} : {self.flow(value)}"
        return f"{text} : {self.flow(value)}"

    def body(self, node: Seq | Map, indent: int) -> list[str]:
        """The lines of a block collection at ``indent`` (its anchor and tag are written
        by whoever holds it, on the line before)."""
        pad = " " * indent
        lines: list[str] = []
        if isinstance(node, Seq):
            for item in node.items:
                lines += self.entry(pad + "- ", item, indent + 2)
            return lines
        for key, value in node.pairs:
            if isinstance(key, Seq | Map):
                lines.append(f"{pad}? {self.flow(key)}")
                lines += self.entry(pad + ": ", value, indent + 2)
            else:
                lines += self.entry(f"{pad}{self.flow(key)} : ", value, indent + 2)
        return lines

    def entry(self, head: str, value: Any, indent: int) -> list[str]:
        if not _in_block(value):
            return [head + self.flow(value)]
        props = self.props(value)
        return [head.rstrip() + (f" {props}" if props else ""), *self.body(value, indent)]


def _in_block(node: Any) -> bool:
    return (
        isinstance(node, Seq | Map)
        and not node.flow
        and bool(node.items if isinstance(node, Seq) else node.pairs)
    )


def emit(node: Any, block: bool = True) -> str:
    """YAML text of a drawn document."""
    writer = _Writer()
    if block and _in_block(node):
        props = writer.props(node)
        head = [f"--- {props}"] if props else []
        return "\n".join([*head, *writer.body(node, 0)]) + "\n"
    return writer.flow(node) + "\n"


# What YAML lets stand in a quoted scalar; line breaks (NEL, LS, PS too) are escaped.
_PRINTABLE = re.compile("[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def quoted(text: str) -> str:
    """``text`` as a double-quoted YAML scalar, every character escaped that must be."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif not _PRINTABLE.match(char):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")  # fmt: skip
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


TAGS = [
    "!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!!set",
    "!!omap", "!!pairs", "!!seq", "!!map", "!!merge", "!!python/object:os.system",
    "!!python/name:os.system", "!!python/object/apply:os.system", "!!python/tuple", "!custom",
    "!", "!<tag:x>",
]  # fmt: skip
printable = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)
_plain_scalars = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(UNITS),
    st.sampled_from(DATES),
    st.sampled_from(WORDS),
    st.sampled_from(["~", "null", "true", "false", "yes", "no", "on", "off", "y", "n", "="]),
    st.sampled_from(TEXTS).map(quoted),
    st.text(max_size=8).map(quoted),
    printable.map(lambda t: "'" + t.replace("'", "''") + "'"),
    st.from_regex(r"[a-j0-9_][a-j0-9_.@/-]{0,9}", fullmatch=True),
)
_tagged = st.tuples(
    st.sampled_from(TAGS), st.sampled_from([*NUMBERS, *DATES, "aGVsbG8=", "x", ""])
).map(" ".join)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight says (``one_of`` draws each
    distinct strategy equally often, and counts one given twice only once)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


scalar_texts = weighted((30, _plain_scalars), (1, _tagged))
key_texts = weighted(
    (4, st.sampled_from(KEYS)),  # keys the schema knows, and now and then one twice
    (1, st.sampled_from(TEXTS).map(quoted)),
    (
        1,
        st.sampled_from(
            ["~", "null", "0", "1", "-1", ".nan", ".inf", "true", "no", "1.2", "2026-11-02"]
        ),
    ),
)


def _nodes(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = weighted(
        (24, key_texts.map(Scalar)), (1, st.builds(Alias, st.integers(0, 9))), (1, children)
    )
    pairs = st.lists(st.tuples(keys, children), max_size=5)
    aliases = st.builds(Alias, st.integers(0, 9))
    merge = st.tuples(
        st.just(Scalar("<<")),
        st.one_of(aliases, st.lists(aliases, max_size=3).map(Seq), children),
    )
    tag = st.sampled_from([None] * 36 + ["!!set", "!!omap", "!!seq", "!!map"])
    return st.one_of(
        st.builds(Seq, st.lists(children, max_size=5), st.booleans(), st.booleans(), tag),
        st.builds(
            Map,
            st.tuples(pairs, st.lists(merge, max_size=1), st.integers(0, 4)).map(
                lambda t: t[1] + t[0] if t[2] == 0 else t[0]  # a merge key, now and then
            ),
            st.booleans(),
            st.booleans(),
            tag,
        ),
    )


yaml_nodes = st.recursive(
    weighted((12, scalar_texts.map(Scalar)), (1, st.builds(Alias, st.integers(0, 9)))),
    _nodes,
    max_leaves=30,
)


def laughs(width: int, depth: int, leaf: str = "lol") -> Seq:
    """Billion laughs as one flow node: each list holds ``width`` aliases of the one
    before, so the last stands for ``width ** depth`` leaves in a few hundred bytes."""
    levels: list[Any] = [Seq([Scalar(leaf)] * width, anchor=True)]
    for _ in range(1, depth):
        levels.append(Seq([Alias(back=2)] * width, anchor=True))  # the level before
    return Seq(levels)


def loop(kind: str) -> Any:
    """A node that holds itself: ``&a [*a]``, ``&a {k: *a}``, ``&a {<<: *a}``."""
    if kind == "list":
        return Seq([Alias(back=1)], anchor=True)
    if kind == "map":
        return Map([(Scalar("k"), Alias(back=1))], anchor=True)
    return Map([(Scalar("<<"), Alias(back=1)), (Scalar("k"), Scalar("v"))], anchor=True)


bombs = st.one_of(
    st.builds(laughs, st.integers(2, 10), st.integers(2, 12)),
    st.sampled_from(["list", "map", "merge"]).map(loop),
)


def flow_text(node: Any) -> str:
    return emit(node, block=False).rstrip("\n")


# A YAML snippet for one value: anchors, aliases, tags, merge keys, bombs.
snippets = st.one_of(yaml_nodes, bombs).map(flow_text)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A scenario document as YAML text: a random tree, sometimes a bomb in it, written in
    block or flow style; now and then plain garbage for the reader."""
    kind = draw(st.sampled_from(["tree", "tree", "tree", "bomb", "garbage"]))
    if kind == "garbage":
        return draw(st.text(max_size=200))
    pairs = draw(st.lists(st.tuples(key_texts.map(Scalar), yaml_nodes), max_size=8))
    if kind == "bomb":
        at = draw(st.integers(0, len(pairs)))
        pairs.insert(at, (Scalar(draw(st.sampled_from(KEYS))), draw(bombs)))
    root = Map(pairs, flow=draw(st.booleans()))
    return emit(root, block=draw(st.booleans()))


# --- the shipped scenarios, changed ----------------------------------------------------------


def shipped_data() -> dict[Path, Any]:
    return {path: yaml.safe_load(path.read_text(encoding="utf-8")) for path in SHIPPED}


_SHIPPED_DATA = shipped_data()


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list item of ``data`` (a tree, as a shipped file parses), the root
    first."""
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += paths(value, (*prefix, index))
    return out


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def shared(width: int, depth: int) -> list[Any]:
    """Billion laughs made of Python lists: the dumper writes each shared list once, with
    an anchor, and aliases for the rest."""
    level: list[Any] = ["lol"] * width
    for _ in range(depth - 1):
        level = [level] * width
    return level


def itself(kind: str) -> Any:
    if kind == "list":
        box: list[Any] = []
        box.append(box)
        return box
    holder: dict[str, Any] = {}
    holder["k"] = holder
    return holder


SNIPPET = "SNIPPET_{}_"
values = st.deferred(
    lambda: weighted(
        (4, scalars),
        (1, st.lists(scalars, max_size=4)),
        (1, st.dictionaries(st.one_of(texts, st.sampled_from(KEYS)), scalars, max_size=4)),
        (1, st.builds(shared, st.integers(2, 10), st.integers(2, 10))),
        (1, st.sampled_from(["list", "map"]).map(itself)),
        (2, snippets.map(lambda text: ("snippet", text))),
    )
)


edges = st.one_of(
    st.sampled_from(UNITS),
    st.sampled_from(DATES),
    st.sampled_from(NUMBERS),
    numbers,
    st.sampled_from(TEXTS),
    st.booleans(),
)
_UNIT_LIKE = re.compile(r"^\s*[-+.0-9][-+.0-9eE_]*\s*[A-Za-zµ/]*")
BREAKS = ["\n", "\r", "\r\n", "\x00", "\x85", "\u2028", "\x1b[2J", "\u202e", "\t", "😀", " "]


def similar(old: Any) -> st.SearchStrategy[Any]:
    """A value of the kind that stands at a place (a number for a number, a duration
    for a duration, a name with a line break in it for a name): such a change passes
    the parts of the validation that look at the kind, and meets the ones behind."""
    if isinstance(old, bool):
        return st.one_of(st.booleans(), scalars)
    if isinstance(old, int | float):
        return st.one_of(numbers, st.sampled_from(UNITS), st.sampled_from(NUMBERS))
    if isinstance(old, str) and _UNIT_LIKE.match(old) and old[:1].isdigit():
        return st.one_of(
            st.sampled_from(UNITS), numbers, st.sampled_from(NUMBERS), st.sampled_from(DATES)
        )
    if isinstance(old, str):
        edited = st.tuples(st.integers(0, len(old)), st.sampled_from(BREAKS)).map(
            lambda cut: old[: cut[0]] + cut[1] + old[cut[0] :]
        )
        long = (old * 200)[:20_000]  # long, but never the product of several changes
        return st.one_of(edited, texts, st.just(long), st.just(old.upper()))
    return values


def _crowd(many: dict[str, Any] | list[Any], draw: st.DrawFn) -> None:
    """One entry of ``many`` (a user, a node, a link, a message) copied tens to thousands
    of times; a user's copies as ranges (``n3x{1..100000}@home.example``): a short file
    for a large world."""
    times = draw(st.sampled_from([10, 100, 1000]))
    if isinstance(many, list):
        first = many[draw(st.integers(0, len(many) - 1))]
        for i in range(times):
            item = copy.deepcopy(first)
            if isinstance(item, dict) and "id" in item:
                item["id"] = f"{item['id']}-{i}"
            many.append(item)
        return
    key = draw(st.sampled_from(sorted(many, key=str)))
    width = draw(st.sampled_from([1, 1000, 100_000]))
    for i in range(times):
        name = f"n{i}x{{1..{width}}}@{key.partition('@')[2]}" if "@" in str(key) else f"{key}-{i}"
        many[name] = copy.deepcopy(many[key])


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    """(name, YAML text) of a shipped scenario changed: half of them gently, one value
    replaced by one of its kind or one key added with an edge value (a scenario that
    still loads, and runs into the edge);
    the others with one to three changes of any sort: a value replaced, a key or item
    deleted, a key or item added, a key renamed."""
    path = draw(st.sampled_from(SHIPPED))
    data = copy.deepcopy(_SHIPPED_DATA[path])
    snippets_used: list[str] = []

    def value(old: Any = None) -> Any:
        drawn = draw(similar(old) if old is not None and draw(st.integers(0, 3)) else values)
        if isinstance(drawn, tuple) and drawn[:1] == ("snippet",):
            snippets_used.append(drawn[1])
            return SNIPPET.format(len(snippets_used) - 1)
        return drawn

    where = paths(data)[1:]  # of the file as shipped: a bomb put in is never walked
    leaves = [p for p in where if not isinstance(_at(data, p), dict | list)]
    if draw(st.booleans()):
        if draw(st.booleans()):
            target = draw(st.sampled_from(leaves))
            parent = _at(data, target[:-1])
            parent[target[-1]] = draw(similar(parent[target[-1]]))
        else:  # a key the file leaves out, set to an edge: `start: 9999-12-31…`
            mappings = [p for p in where if isinstance(_at(data, p), dict)]
            at = draw(st.sampled_from([(), *mappings])) if draw(st.booleans()) else ()
            key = draw(st.sampled_from(fields_at(data, at) or KEYS))
            _at(data, at)[key] = draw(
                st.sampled_from(DATES) if key == "start" and not at else edges
            )
        return path.name, yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "rename", "crowd"]))  # fmt: skip
        target = draw(st.sampled_from(leaves if op == "replace" and draw(st.booleans()) else where))  # fmt: skip
        try:
            parent = _at(data, target[:-1])
            last = target[-1]
            old = parent[last]  # still there after the changes before?
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, dict | list):  # a text replaced what held it
            continue
        if op == "replace":
            parent[last] = value(old)
        elif op == "delete":
            del parent[last]
        elif op == "add":
            if isinstance(old, dict):
                old[draw(st.one_of(st.sampled_from(KEYS), texts))] = value()
            elif isinstance(old, list):
                old.insert(draw(st.integers(0, len(old))), value(old[0] if old else None))
            else:
                parent[last] = value(old)
        elif op == "crowd" and isinstance(old, dict | list) and old:
            _crowd(old, draw)
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(similar(last), st.sampled_from(KEYS), st.sampled_from(list(parent))))  # fmt: skip
            parent[new] = parent.pop(last)
    text = yaml.safe_dump(
        data,
        sort_keys=False,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([False, None, True])),
        width=draw(st.sampled_from([80, 10**6])),
    )
    for i, snippet in enumerate(snippets_used):  # anchors of their own: &s1a0, *s1a0
        text = text.replace(SNIPPET.format(i), re.sub(r"([&*])a(\d+)\b", rf"\1s{i}a\2", snippet))
    return path.name, text


# --- --set assignments -----------------------------------------------------------------------


def _segment(part: Any, parent: Any, draw: st.DrawFn) -> str:
    """One part of a key path, in one of the ways a student may write it."""
    if isinstance(part, int):
        item = parent[part]
        ways = [str(part), str(part - len(parent)), f"[{part}]"]
        if isinstance(item, dict) and isinstance(item.get("between"), list):
            ways.append("/".join(map(str, item["between"])))
        if isinstance(item, dict) and "id" in item:
            ways.append(str(item["id"]))
        return draw(st.sampled_from(ways))
    text = str(part)
    return draw(st.sampled_from([text, f'["{text}"]', f"['{text}']", f"[{text}]"]))


JUNK_SEGMENTS = ["", ".", "..", "[", "]", "[]", '[""]', "['", '"', "=", "/", "a/b", "-1", "-999",
                 "999999999999999999999", "0", "x", "__class__", "[0]", "[-1]"]  # fmt: skip
junk_segments = st.one_of(
    st.sampled_from(JUNK_SEGMENTS),
    st.sampled_from(KEYS),
    st.sampled_from(TEXTS),
    st.text(max_size=6),
)


@st.composite
def assignments(draw: st.DrawFn) -> tuple[Path, list[str]]:
    """A shipped scenario and one or two ``--set KEY=VALUE`` strings for it: the key a
    real path, written in any accepted way, sometimes damaged; the value any YAML."""
    path = draw(st.sampled_from(SHIPPED))
    data = _SHIPPED_DATA[path]
    out = []
    for _ in range(draw(st.integers(1, 2))):
        target = draw(st.sampled_from(paths(data)[1:]))
        parts = []
        for i, part in enumerate(target):
            parts.append(_segment(part, _at(data, target[:i]), draw))
        key = ""
        for part in parts:
            key += part if part.startswith("[") and key else ("." if key else "") + part
        change = draw(st.sampled_from(["none", "none", "append", "replace", "cut", "deep"]))
        if change == "append":
            key += draw(st.sampled_from([".", ""])) + draw(junk_segments)
        elif change == "replace":
            cut = draw(st.integers(0, len(key)))
            key = key[:cut] + draw(junk_segments) + key[cut + draw(st.integers(0, 5)) :]
        elif change == "cut":
            key = key[: draw(st.integers(0, len(key)))]
        elif change == "deep":
            key += ".x" * draw(st.sampled_from([50, 1000, 100_000]))
        value = draw(
            st.one_of(
                scalar_texts,
                st.sampled_from(UNITS),
                snippets,
                st.text(max_size=20),
                st.just(""),
            )
        )
        sep = draw(st.sampled_from(["=", "=", "=", " = ", "==", ""]))
        out.append(f"{key}{sep}{value}")
    return path, out


# --- mail headers ----------------------------------------------------------------------------

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
ZONES = ["+0000", "-0000", "+0100", "+1400", "-1200", "+2359", "-2400", "+2400", "+9999",
         "-9999", "+99999999999999999999", "UTC", "GMT", "EST", "PDT", "Z", "XYZ", "(CET)", ""]  # fmt: skip
big = st.one_of(
    st.integers(0, 60),
    st.integers(-100, 10_000),
    st.sampled_from([10**6, 2**31, 2**63, 10**20, 10**400, 9999, 0, 99999]),
)


YEARS = ["0", "1", "69", "70", "99", "1900", "9999", "10000"]


@st.composite
def header_dates(draw: st.DrawFn) -> str:
    """A date as a Received line ends with it: a good one with up to three of its parts
    out of range, odd or gone."""
    parts = {"weekday": "Mon,", "day": "2", "month": "Nov", "year": "2026", "time": "09:00:00",
             "zone": "+0100", "comment": "(CET)"}  # fmt: skip
    odd = {
        "weekday": st.sampled_from(["", "Thu,", "Xyz,", "Mon", ","]),
        "day": big.map(str),
        "month": st.sampled_from([*MONTHS, "Foo", "13", "", "nov"]),
        "year": st.one_of(st.sampled_from(YEARS), big.map(str)),
        "time": st.lists(big.map(str), max_size=4).map(":".join),
        "zone": st.sampled_from(ZONES),
        "comment": st.sampled_from(["", "(", "(UTC", "((CET))", "(CEST)"]),
    }
    for name in draw(st.lists(st.sampled_from(list(parts)), max_size=3, unique=True)):
        parts[name] = draw(odd[name])
    return " ".join(part for part in parts.values() if part)


HOSTS = ["mx.example.net", "smtp.example.org", "[203.0.113.5]", "203.0.113.5",
         "[IPv6:2001:db8::1]", "localhost", "unknown", "-", "ü.example", "a" * 300,
         "host..example", ".", "x.", "mx.tls12.example"]  # fmt: skip
COMMENTS = ["(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)", "(using TLSv1.0)",
            "(using TLSv1.1)", "(version=TLS1_2)", "(SSLv3)", "(Postfix)", "((nested)",
            "(unclosed", ")", "(Authenticated sender: a@example.org)",
            "(envelope-from <a@example.org>)", "(qmail 123 invoked from network)"]  # fmt: skip
PROTOCOLS = ["ESMTPS", "ESMTPSA", "ESMTP", "SMTP", "LMTP", "LMTPS", "HTTPS", "UTF8SMTPSA", "",
             "tls TLS_AES_128", "x" * 50]  # fmt: skip
FOR = ["<b@example.net>", "<ü@ü.example>", "<>", "b", "<a@b"]
hosts = st.one_of(st.sampled_from(HOSTS), st.text(max_size=10))
comments = st.one_of(st.sampled_from(COMMENTS), st.text(max_size=10).map(lambda t: f"({t})"))


@st.composite
def received_lines(draw: st.DrawFn) -> str:
    """A Received header of clauses drawn in any order, any of them missing or odd."""
    clauses = {
        "from": f"from {draw(hosts)} {draw(comments) if draw(st.booleans()) else ''}",
        "by": f"by {draw(hosts)} {draw(comments) if draw(st.booleans()) else ''}",
        "with": "with " + draw(st.sampled_from(PROTOCOLS)),
        "id": f"id {draw(st.text(max_size=8))}",
        "for": "for " + draw(st.sampled_from(FOR)),
        "via": "via " + draw(hosts),
    }
    chosen = draw(st.lists(st.sampled_from(list(clauses)), max_size=7))
    body = " ".join(clauses[c] for c in chosen)
    if draw(st.booleans()):
        body += "; " + draw(header_dates())
    return "Received: " + body


def _fields(text: str) -> list[str]:
    """The header fields of a message, each with its continuation lines; the body after
    the blank line is dropped (the reader never looks at it)."""
    fields: list[str] = []
    for line in text.split("\n\n", 1)[0].splitlines():
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += "\n" + line
        else:
            fields.append(line)
    return fields


_HEADER_FIELDS = {path.name: _fields(path.read_text(encoding="utf-8")) for path in HEADERS}

JUNK = ["\x00", "\x1b[2J", "\ufffd", "\x85", "\u2028", "\r", "\n", "\n\n", "\t", ";", "(", ")",
        ":", "From ", "=?utf-8?b?w7w=?=", "=?x?q?", "\xff"]  # fmt: skip
junk = st.one_of(st.sampled_from(JUNK), st.text(max_size=8))


@st.composite
def headers(draw: st.DrawFn) -> str:
    """The headers of a real message from the corpus, damaged: Received lines replaced,
    dated anew, cut, folded, repeated, and junk put anywhere."""
    fields = list(draw(st.sampled_from(list(_HEADER_FIELDS.values()))))
    for _ in range(draw(st.integers(0, 5))):
        op = draw(st.sampled_from(["date", "date", "received", "cut", "fold", "junk", "repeat", "drop", "sender"]))  # fmt: skip
        if not fields:
            fields.append(draw(received_lines()))
            continue
        i = draw(st.integers(0, len(fields) - 1))
        if op == "date":
            head, _, _ = fields[i].rpartition(";")
            fields[i] = f"{head or fields[i]}; {draw(header_dates())}"
        elif op == "received":
            fields.insert(i, draw(received_lines()))
        elif op == "cut":
            fields[i] = fields[i][: draw(st.integers(0, len(fields[i])))]
        elif op == "fold":
            spaces = [m.start() for m in re.finditer(" ", fields[i])]
            if spaces:
                at = draw(st.sampled_from(spaces))
                fields[i] = fields[i][:at] + draw(st.sampled_from(["\n\t", "\n ", "\r\n ", "\n"])) + fields[i][at:]  # fmt: skip
        elif op == "junk":
            at = draw(st.integers(0, len(fields[i])))
            fields[i] = fields[i][:at] + draw(junk) + fields[i][at:]
        elif op == "repeat":
            # 20,000 Received lines: a mail loop (RFC 5321 §6.3 stops at 100), megabytes
            fields[i:i] = [fields[i]] * draw(st.sampled_from([2, 50, 20_000]))
        elif op == "drop":
            del fields[i]
        else:
            fields.insert(
                i,
                draw(st.sampled_from(["From: ", "To: ", "Subject: ", "Message-ID: ", "Date: "]))
                + draw(st.one_of(st.sampled_from(TEXTS), st.text(max_size=12), header_dates())),
            )
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return ("\n".join(fields) + "\n\nbody\n").replace("\n", end)
