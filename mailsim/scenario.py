"""Scenario files: YAML read with ``safe_load`` rules, validated by pydantic, cross-checked.

This is the only module that opens scenario files. A scenario describes a small world:
nodes with a role, network links, DNS zones, users and their mail programs, messages and
traffic. Every problem found is reported at once, one line each, naming the file, the
line and the key path (see :mod:`mailsim.errors`), with "did you mean …" for misspelt
names, so a student fixes a file in one pass.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mailsim.errors import InputError, Problem, ScenarioError, key_path
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

# --- loading ----------------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """safe_load's rules, plus an error for a key given twice (YAML would keep the last).
    libyaml's parser where PyYAML has it: ten times faster on large worlds."""


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise _DuplicateKey(
                None,
                None,
                f"{key!r} is given twice (first on line {seen[key] + 1}); names must be unique",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _lines(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Key path → 1-based line, for every key and list item of a composed YAML tree."""
    out: dict[tuple[Any, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            out.update(_lines(value_node, (*path, key)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*path, index)] = item.start_mark.line + 1
            out.update(_lines(item, (*path, index)))
    return out


def load(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, validate and cross-check a scenario file, after the ``KEY=VALUE`` changes
    of ``overrides`` (``--set``, see :mod:`mailsim.overrides`); raise ScenarioError
    listing all problems."""
    return loads(read(path), str(path), overrides)


def read(path: str | Path) -> str:
    """The text of a scenario file, or a ScenarioError saying why it cannot be read."""
    name = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(name, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(name, "", f"cannot read: {exc}")]) from None


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


def loads(text: str, name: str = "<scenario>", overrides: Sequence[str] = ()) -> Scenario:
    """Validate scenario text; ``name`` is used in error messages."""
    try:
        loader = _Loader(text)
        try:  # one parse: the node tree gives the line numbers, then the data
            tree = loader.get_single_node()
            data = loader.construct_document(tree) if tree is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = (exc.problem or str(exc)).strip()
        if not isinstance(exc, _DuplicateKey):
            problem = f"YAML syntax: {problem}"
        raise ScenarioError([Problem(name, "", problem, line)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(name, "", f"YAML syntax: {exc}")]) from None
    if data is None:
        raise ScenarioError([Problem(name, "", "the file is empty; a scenario needs `nodes:`")])
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(name, "", f"a scenario is a mapping of keys, got {type(data).__name__}")]
        )
    lines = _lines(tree)
    if not overrides:
        return validate(data, name, lines)
    changed = [key_path(loc) for loc in apply_overrides(data, list(overrides), _override_value)]
    lines = {loc: n for loc, n in lines.items() if key_path(loc) not in changed}
    try:
        return validate(data, name, lines)
    except ScenarioError as exc:
        # A problem in a value set on the command line is reported as the option's.
        raise ScenarioError(
            [
                Problem("--set", p.key, p.message)
                if any(_within(p.key, k) or _within(k, p.key) for k in changed)
                else p
                for p in exc.problems
            ]
        ) from None


def _within(key: str, outer: str) -> bool:
    """``key`` is ``outer`` or a path inside it."""
    return key == outer or key.startswith((outer + ".", outer + "["))


def _override_value(key: str, text: str) -> Any:
    """A ``--set`` value, read as YAML like the file (``150ms``, ``3``, ``[a, b]``)."""
    if not text.strip():
        return None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        raise override_error(key, f"the value {text!r} is not valid YAML: {problem}") from None


def validate(
    data: dict[str, Any], name: str = "<scenario>", lines: dict[tuple[Any, ...], int] | None = None
) -> Scenario:
    """Validate already-parsed data (from a file, or a dict built in Python)."""
    lines = lines or {}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([problem_of(err, name, lines, data) for err in exc.errors()]) from None
    problems = check_references(scenario, name, lines)
    if problems:
        raise ScenarioError(problems)
    return scenario


def dumps(data: dict[str, Any]) -> str:
    """Scenario data as YAML text, short lists in brackets as people write them (the
    replay of a real message's route writes its scenario this way)."""
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )


def json_schema() -> dict[str, Any]:
    """JSON Schema of a scenario file, for editors (``mailsim schema``)."""
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mailsim scenario"
    return schema
