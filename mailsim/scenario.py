"""Scenario files: YAML read with ``safe_load`` rules within bounds, validated by pydantic,
cross-checked.

This is the only module that opens scenario files. A scenario describes a small world:
nodes with a role, network links, DNS zones, users and their mail programs, messages and
traffic (the models: :mod:`mailsim.model`; the checks across them:
:mod:`mailsim.references`). Every problem found is reported at once, one line each,
naming the file, the line and the key path (see :mod:`mailsim.errors`), with "did you
mean …" for misspelt names, so a student fixes a file in one pass. No file, however
small or strange, takes more than a few seconds and a few hundred MB to read or to
refuse: its bytes, its values (aliases included) and its depth are bounded.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mailsim.errors import (
    MAX_PROBLEMS,
    InputError,
    Problem,
    ScenarioError,
    at_most_shown,
    key_path,
    shown,
)
from mailsim.files import STDIN, read_text
from mailsim.model import (
    FAULT_KINDS,
    NODE_MODELS,
    ROLES,
    ClientNode,
    CrashFault,
    Dns,
    DnsFault,
    DnsNode,
    DownFault,
    Eavesdropper,
    Fault,
    GreylistFault,
    HangFault,
    Link,
    LinkDownFault,
    LossFault,
    MailboxFullFault,
    MessageSpec,
    MxRecord,
    Node,
    OverloadFault,
    PopNode,
    Processing,
    QueueSettings,
    ResolverDownFault,
    RouterNode,
    Scenario,
    SlowFault,
    SmtpNode,
    StripStarttlsFault,
    TlsFailFault,
    Traffic,
    User,
    Zone,
)
from mailsim.overrides import apply as apply_overrides
from mailsim.overrides import error as override_error
from mailsim.problems import problem_of
from mailsim.references import check_references

__all__ = [
    "FAULT_KINDS",
    "MAX_DEPTH",
    "MAX_SCENARIO_BYTES",
    "MAX_VALUES",
    "NODE_MODELS",
    "ROLES",
    "ClientNode",
    "CrashFault",
    "Dns",
    "DnsFault",
    "DnsNode",
    "DownFault",
    "Eavesdropper",
    "Fault",
    "GreylistFault",
    "HangFault",
    "Link",
    "LinkDownFault",
    "LossFault",
    "MailboxFullFault",
    "MessageSpec",
    "MxRecord",
    "Node",
    "OverloadFault",
    "PopNode",
    "Processing",
    "QueueSettings",
    "ResolverDownFault",
    "RouterNode",
    "Scenario",
    "SlowFault",
    "SmtpNode",
    "StripStarttlsFault",
    "TlsFailFault",
    "Traffic",
    "User",
    "Zone",
    "check_references",
    "dumps",
    "json_schema",
    "load",
    "loads",
    "override_paths",
    "read",
    "validate",
]

# --- reading YAML within bounds ------------------------------------------------------------------

# Scenario files are written by hand: the largest shipped one is 9 KB, and a world of
# 10,000 nodes in a line is 1.3 MB. 8 MiB is far beyond any of them and is read,
# checked and refused in well under a second.
MAX_SCENARIO_BYTES = 8 * 2**20
# Values in one file: every key, item and scalar, counting again what each alias repeats.
# Validation costs about 10 µs per value (reading, checking, cross-checking), so 250,000
# values take a few seconds at most, whatever aliases hide: a "billion laughs" of 3 KB
# stands for 3.5 × 10⁹ values and is refused at the alias that passes the bound. The
# largest world the count limits allow (10,000 nodes and their links) holds 150,000.
MAX_VALUES = 250_000
# The deepest key path of a scenario is six levels (dns.zones.home.example.mx.0.host);
# fifty leaves room and keeps far from Python's recursion limit, which libyaml's own
# limit of 1,000 levels does not.
MAX_DEPTH = 50

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_STR_TAG = "tag:yaml.org,2002:str"


class _Refused(yaml.MarkedYAMLError):
    """A problem we report in our own words (not "YAML syntax"), at a line."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """safe_load's rules with libyaml's parser where PyYAML has it, plus bounds.

    The node tree is composed by PyYAML's own composer, which this class extends to
    count values as they come, aliases with all that they repeat: each anchored node's
    size is known when it closes, so the count is linear in the file, a recursive alias
    is seen when it names a node still open, and nothing is built past the bounds. Keys
    must be scalars; a key given twice is an error (YAML would keep the last); a value
    that cannot be built (a date of month 13, a number of 5,000 digits) is an error at
    its line. The merge key ``<<`` works as in PyYAML's ``safe_load``.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.anchors: dict[str, yaml.Node] = {}
        self._values = 0
        self._depth = 0
        self._sizes: dict[str, int] = {}  # anchor → values it stands for, once closed

    get_single_node = yaml.composer.Composer.get_single_node
    compose_document = yaml.composer.Composer.compose_document

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """PyYAML's composer, counting as it goes (path resolvers left out: none is set)."""
        event = self.get_event()
        anchor = event.anchor
        if isinstance(event, yaml.AliasEvent):
            if anchor not in self.anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {anchor!r}", event.start_mark
                )
            size = self._sizes.get(anchor)
            if size is None:
                raise _Refused(
                    f"the alias *{anchor} stands inside what &{anchor} names, so it would"
                    " repeat itself forever: an alias can only name something written"
                    " before it",
                    event.start_mark,
                )
            self._count(size, event)
            return self.anchors[anchor]
        if anchor is not None and anchor in self.anchors:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )
        self._count(1, event)
        before = self._values - 1
        tag = event.tag
        node: yaml.Node
        if isinstance(event, yaml.ScalarEvent):
            if tag is None or tag == "!":
                tag = self.resolve(yaml.ScalarNode, event.value, event.implicit)
            node = yaml.ScalarNode(
                tag, event.value, event.start_mark, event.end_mark, style=event.style
            )
            if anchor is not None:
                self.anchors[anchor] = node
                self._sizes[anchor] = 1
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(
                f"values nested more than {MAX_DEPTH} levels deep; a scenario needs six at most",
                event.start_mark,
            )
        if isinstance(event, yaml.SequenceStartEvent):
            if tag is None or tag == "!":
                tag = self.resolve(yaml.SequenceNode, None, event.implicit)
            node = yaml.SequenceNode(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if anchor is not None:
                self.anchors[anchor] = node
            items = node.value
            while not self.check_event(yaml.SequenceEndEvent):
                items.append(self.compose_node(node, len(items)))
        else:
            if tag is None or tag == "!":
                tag = self.resolve(yaml.MappingNode, None, event.implicit)
            node = yaml.MappingNode(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if anchor is not None:
                self.anchors[anchor] = node
            pairs = node.value
            while not self.check_event(yaml.MappingEndEvent):
                key = self.compose_node(node, None)
                if not isinstance(key, yaml.ScalarNode):
                    raise _Refused(
                        "a key is a name or a number, not a list or a mapping", key.start_mark
                    )
                pairs.append((key, self.compose_node(node, key)))
        node.end_mark = self.get_event().end_mark
        self._depth -= 1
        if anchor is not None:
            self._sizes[anchor] = self._values - before
        return node

    def _count(self, values: int, event: yaml.Event) -> None:
        self._values += values
        if self._values <= MAX_VALUES:
            return
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                f"the alias *{event.anchor} brings the file to more than {MAX_VALUES:,}"
                " values (each alias repeats all that its anchor holds): use fewer aliases",
                event.start_mark,
            )
        raise _Refused(
            f"more than {MAX_VALUES:,} values (keys, names, numbers, items) in one file: a"
            " scenario is smaller; for many messages use traffic, for many users a range"
            " such as staff{1..500}@office.example",
            event.start_mark,
        )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise _Refused(_unreadable(node, exc), node.start_mark) from None


def _unreadable(node: yaml.Node, exc: Exception) -> str:
    """Why a scalar could not be built, in words (PyYAML says "month must be in 1..12"
    or "Exceeds the limit (4300 digits) for integer string conversion")."""
    value = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    shown = repr(value if len(value) <= 40 else value[:40] + "…")
    kind = node.tag.rpartition(":")[2]
    if kind == "timestamp":
        why = f" ({exc})" if isinstance(exc, ValueError) else ""
        return f"{shown} is not a real date{why}; write it like 2026-11-02T09:00:00+01:00"
    if kind == "int":
        return f"{shown} cannot be read as a whole number (at most 4,300 digits)"
    if kind == "float":
        return f"{shown} cannot be read as a number"
    return f"{shown} cannot be read as {kind}: {exc}"


class _DuplicateKey(_Refused):
    pass


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # merged keys may be overridden: that is what << is for
        key = loader.construct_object(key_node)
        if key in seen:
            raise _DuplicateKey(
                f"{key!r} is given twice (first on line {seen[key] + 1}); names must be unique",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)  # type: ignore[no-any-return]


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
# An unquoted 2026-11-02T09:00:00+01:00 stays text: `start` is read by the model, which
# says which key holds a date that does not exist (YAML would fail without naming it).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _lines(tree: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """Key path → 1-based line, for every key and list item of a composed YAML tree
    (at most MAX_VALUES entries: the tree was counted, aliases included). A key is
    spelt as the data has it: ``1:`` is the number 1, as pydantic names it."""
    out: dict[tuple[Any, ...], int] = {}
    scalars = yaml.constructor.SafeConstructor()
    stack: list[tuple[yaml.Node | None, tuple[Any, ...]]] = [(tree, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                if key_node.tag != _STR_TAG:
                    try:
                        key = scalars.construct_object(key_node)
                        hash(key)
                    except (yaml.YAMLError, ValueError, TypeError):  # built once already
                        key = key_node.value
                loc = (*path, key)
                out[loc] = key_node.start_mark.line + 1
                stack.append((value_node, loc))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                loc = (*path, index)
                out[loc] = item.start_mark.line + 1
                stack.append((item, loc))
    return out


def _parse(text: str, name: str) -> tuple[Any, yaml.Node | None]:
    """The data of a YAML text and its node tree (for line numbers), or a ScenarioError
    with one line saying what is wrong and where."""
    try:
        loader = _Loader(text)
        try:  # one parse: the node tree gives the line numbers, then the data
            tree = loader.get_single_node()
            data = loader.construct_document(tree) if tree is not None else None
        finally:
            loader.dispose()
    except _Refused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ScenarioError([Problem(name, "", str(exc.problem), line)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = (exc.problem or str(exc)).strip()
        raise ScenarioError([Problem(name, "", f"YAML syntax: {problem}", line)]) from None
    except yaml.reader.ReaderError as exc:
        raise ScenarioError([_bad_character(text, name, exc.position, exc.character)]) from None
    except UnicodeEncodeError as exc:  # a lone surrogate, from Python or a command line
        raise ScenarioError([_bad_character(text, name, exc.start, None)]) from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise ScenarioError([Problem(name, "", f"YAML syntax: {problem}")]) from None
    return data, tree


def _bad_character(text: str, name: str, offset: int, code: int | None) -> Problem:
    """A character YAML does not allow, with its line: libyaml gives the offset in
    UTF-8 bytes, Python's encoder in characters (``code`` None)."""
    if code is None:
        code = ord(text[offset])
        line = text.count("\n", 0, offset) + 1
    else:
        line = text.encode("utf-8", "surrogatepass")[:offset].count(b"\n") + 1
    char = chr(code)
    what = "a control character"
    advice = "remove it"
    if code == 0:
        what, advice = "a NUL character", "is it a text file?"
    elif 0xD800 <= code <= 0xDFFF:
        what = "a lone surrogate"
    elif char.isprintable() or code in (0xFFFE, 0xFFFF):
        what = "the non-character"
    return Problem(
        name, "", f"the file holds {what} U+{code:04X}, which YAML does not allow: {advice}", line
    )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector, paused while a file is read and validated.
    Hundreds of thousands of nodes and models that all stay alive make it walk the
    growing heap again and again: reading 700,000 values took 8 s with it, 2.5 s
    without. Nothing read here forms a cycle that must be freed meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- loading ----------------------------------------------------------------------------------


def load(path: str | Path, overrides: Sequence[str] | str = ()) -> Scenario:
    """Read, validate and cross-check a scenario file, after the ``KEY=VALUE`` changes
    of ``overrides`` (``--set``, see :mod:`mailsim.overrides`; one string is one change);
    raise ScenarioError listing all problems."""
    name = "<stdin>" if str(path) == STDIN else str(path)
    return loads(read(path), name, overrides)


def expanded(path: str | Path, overrides: Sequence[str] | str = ()) -> str:
    """A scenario file in the full form, as YAML (``mailsim expand``): a short one
    expanded, a full one as validated, after the ``--set`` changes."""
    name = "<stdin>" if str(path) == STDIN else str(path)
    full: dict[str, Any] = {}
    loads(read(path), name, overrides, keep=full)
    return dumps(full)


def read(path: str | Path) -> str:
    """The text of a scenario file (``-``: standard input), at most MAX_SCENARIO_BYTES,
    or a ScenarioError saying why it cannot be read."""
    name = str(path)
    if name != STDIN:
        try:
            info = os.stat(name)
        except (OSError, ValueError):
            info = None  # read_text says why: no such file, permission denied, …
        if info is not None and stat.S_ISREG(info.st_mode) and info.st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError([_too_large(name, info.st_size)])
    try:
        text = read_text(path)
    except InputError as exc:
        raise ScenarioError(exc.problems) from None
    except ValueError:  # a NUL in the name, from Python
        raise ScenarioError([Problem(repr(name), "", "is not a file name")]) from None
    size = len(text.encode("utf-8"))
    if size > MAX_SCENARIO_BYTES:  # standard input, or a file that grew
        raise ScenarioError([_too_large("<stdin>" if name == STDIN else name, size)])
    return text


def _too_large(name: str, size: int) -> Problem:
    tenths = math.ceil(size * 10 / 2**20)  # rounded up: a byte over the limit is over it
    return Problem(
        name,
        "",
        f"is {tenths / 10:,.1f} MiB; a scenario file is at most {MAX_SCENARIO_BYTES // 2**20} MiB"
        " (one written by hand is a few KB)",
    )


def override_paths(text: str, name: str, keys: list[str]) -> dict[str, str]:
    """Where each ``--set`` key lands in the scenario, as error messages name it (a link
    by its ends becomes ``links.3.latency``); keys that do not resolve are left out."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return {}
    paths = {}
    for key in keys:
        try:
            (loc,) = apply_overrides(copy.deepcopy(data), [f"{key}="], lambda k, t: None)
        except (InputError, TypeError, AttributeError):
            continue
        paths[key] = key_path(loc)
    return paths


def loads(
    text: str,
    name: str = "<scenario>",
    overrides: Sequence[str] | str = (),
    keep: dict[str, Any] | None = None,
) -> Scenario:
    """Validate scenario text; ``name`` is used in error messages. A short-form scenario
    (:mod:`mailsim.short`) is expanded first; ``keep`` receives the full form's data."""
    if isinstance(overrides, str):
        overrides = [overrides]
    with _collector_paused():
        data, tree = _parse(text, name)
        if data is None:
            raise ScenarioError([Problem(name, "", "the file is empty; a scenario needs `nodes:`")])
        if not isinstance(data, dict):
            raise ScenarioError(
                [Problem(name, "", f"a scenario is a mapping of keys, got {type(data).__name__}")]
            )
        if not overrides:
            return _validate(data, name, _Lines(lambda: _lines(tree)), keep)
        locations = apply_overrides(data, list(overrides), _override_value)
        in_file = _Lines(lambda: _lines(tree))

        def outside_set() -> dict[tuple[Any, ...], int]:
            made = [_made(loc, in_file) for loc in locations]
            return {
                loc: n for loc, n in in_file.items() if not any(loc[: len(m)] == m for m in made)
            }

        try:
            return _validate(data, name, _Lines(outside_set), keep)
        except ScenarioError as exc:
            # A problem in a value set on the command line, or in a section the setting
            # made, is reported as the option's.
            made = [key_path(_made(loc, in_file)) for loc in locations]
            raise ScenarioError(
                [
                    Problem("--set", p.key, p.message)
                    if any(_within(p.key, k) or _within(k, p.key) for k in made)
                    else p
                    for p in exc.problems
                ]
            ) from None


def _made(loc: tuple[Any, ...], in_file: Mapping[tuple[Any, ...], int]) -> tuple[Any, ...]:
    """What a ``--set`` at ``loc`` made: its first key that the file lacks (a section
    filled in for it, as ``users["new"]`` for ``users["new"].client``), or ``loc``."""
    for depth in range(1, len(loc)):
        if loc[:depth] not in in_file:
            return loc[:depth]
    return loc


def _within(key: str, outer: str) -> bool:
    """``key`` is ``outer`` or a path inside it."""
    return key == outer or key.startswith((outer + ".", outer + "["))


def _override_value(key: str, text: str) -> Any:
    """A ``--set`` value, read as YAML like the file (``150ms``, ``3``, ``[a, b]``)."""
    if not text.strip():
        return None
    try:
        data, _ = _parse(text, "--set")
    except ScenarioError as exc:
        (problem,) = exc.problems
        why = problem.message.removeprefix("YAML syntax: ")
        raise override_error(key, f"the value {shown(text)} is not valid YAML: {why}") from None
    return data


def validate(
    data: Mapping[str, Any],
    name: str = "<scenario>",
    lines: dict[tuple[Any, ...], int] | None = None,
) -> Scenario:
    """Validate already-parsed data (from a file, or a mapping built in Python)."""
    if not isinstance(data, Mapping):
        raise ScenarioError(
            [Problem(name, "", f"a scenario is a mapping of keys, got {type(data).__name__}")]
        )
    with _collector_paused():
        return _validate(data, name, lines or {})


def _validate(
    data: Mapping[str, Any],
    name: str,
    lines: Mapping[tuple[Any, ...], int],
    keep: dict[str, Any] | None = None,
) -> Scenario:
    from mailsim import short

    if short.is_short(data):
        full = short.expand(data, name, lines)
        if keep is not None:
            keep.update(full)
        try:
            return _validate(full, name, lines)
        except ScenarioError as exc:  # named by the short file's keys
            raise ScenarioError([short.where(data, p, lines) for p in exc.problems]) from None
    if keep is not None:
        keep.update(data)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()[:MAX_PROBLEMS]
        problems = [problem_of(err, name, lines, data) for err in errors]
        raise ScenarioError(at_most_shown(problems, exc.error_count(), name)) from None
    problems = check_references(scenario, name, lines)
    if problems:
        raise ScenarioError(problems)
    return scenario


class _Lines(Mapping[tuple[Any, ...], int]):
    """Key path → line, found when first asked: only a file with problems needs them,
    and finding them costs a tenth of the reading."""

    def __init__(self, find: Callable[[], dict[tuple[Any, ...], int]]) -> None:
        self._find = find
        self._found: dict[tuple[Any, ...], int] | None = None

    @property
    def _lines(self) -> dict[tuple[Any, ...], int]:
        if self._found is None:
            self._found = self._find()
        return self._found

    def __getitem__(self, loc: tuple[Any, ...]) -> int:
        return self._lines[loc]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


def dumps(data: dict[str, Any]) -> str:
    """Scenario data as YAML text, short lists in brackets as people write them (the
    replay of a real message's route writes its scenario this way)."""
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )


def json_schema() -> dict[str, Any]:
    """JSON Schema of a scenario file, for editors (``mailsim schema``): the full form
    (``nodes``, ``links``, ``dns``) or the short one (``sites``, ``between``,
    ``domains``), whose other keys are the full form's."""
    from mailsim.short import ShortScenario

    full = Scenario.model_json_schema(by_alias=True)
    short = ShortScenario.model_json_schema(by_alias=True)
    defs = full.pop("$defs")
    clash = set(defs) & set(short.get("$defs", {}))
    assert not clash, f"the two forms name different things alike: {clash}"
    defs.update(short.pop("$defs", {}))
    derived = ("nodes", "links", "dns")  # what the short form derives
    shared = {k: v for k, v in full["properties"].items() if k not in derived}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mailsim scenario",
        "oneOf": [
            {**full, "title": "full form"},
            {
                "title": "short form",
                "type": "object",
                "properties": {**shared, **short["properties"]},
                "required": short["required"],
                "additionalProperties": False,
            },
        ],
        "$defs": defs,
    }
