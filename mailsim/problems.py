"""pydantic's validation errors told as a student's problems: the key path as written
in the file, its line, and "did you mean …" for a misspelt key or role."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from datetime import date
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from mailsim.errors import Problem, key_path, shown
from mailsim.model import FAULT_KINDS, NODE_MODELS, ROLES, Scenario, fault_model

# Lists of tagged unions: (top-level key, tag field, tag values).
_TAGGED = {"nodes": ("role", ROLES), "faults": ("kind", FAULT_KINDS)}


def _tag_in(loc: tuple[Any, ...]) -> str | None:
    """The discriminator value pydantic put in the path (nodes.pc.client.ip), if any."""
    if len(loc) >= 3 and loc[0] in _TAGGED and loc[2] in _TAGGED[loc[0]][1]:
        return str(loc[2])
    return None


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*loc[:2], *loc[3:]) if _tag_in(loc) else loc


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _model_at(
    loc: tuple[Any, ...], role: str | None, root: type[BaseModel] = Scenario
) -> type[BaseModel] | None:
    """The pydantic model that a key path points into (for "did you mean" on unknown keys)."""
    model: type[BaseModel] | None = root
    skip_key = False
    for part in loc:
        if skip_key:
            skip_key = False
            continue
        if model is Scenario and part == "nodes":
            model, skip_key = NODE_MODELS.get(role or ""), True
        elif model is Scenario and part == "faults":
            model, skip_key = fault_model(role or ""), True
        elif model is not None:
            by_alias = {(f.alias or n): f for n, f in model.model_fields.items()}
            field = by_alias.get(part)
            if field is None:
                return None
            model = _submodel(field.annotation)
            skip_key = get_origin(field.annotation) in (dict, list)
        if model is None:
            return None
    return model


def _raw(data: Any, loc: tuple[Any, ...]) -> Any:
    """The value as written in the file at ``loc`` (before unit parsing)."""
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _spelt(value: Any) -> str:
    """A value as a problem quotes it: YAML's spelling of infinity and not-a-number,
    a long text cut short."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, date):  # YAML reads an unquoted date as one
        return value.isoformat()
    return shown(value)


def problem_of(
    err: Any,
    name: str,
    lines: Mapping[tuple[Any, ...], int],
    data: Any,
    root: type[BaseModel] = Scenario,
) -> Problem:
    loc = tuple(err["loc"])
    role = _tag_in(loc)
    loc = _clean_loc(loc)
    is_key = bool(loc) and loc[-1] == "[key]"  # a mapping's key failed, not its value
    if is_key:
        loc = loc[:-1]
    written = None if is_key else _raw(data, loc)
    key = key_path(loc)
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1], role, root)
        names = [
            field.alias or field_name
            for field_name, field in (parent.model_fields.items() if parent else [])
        ]
        hint = difflib.get_close_matches(str(loc[-1]), names, n=1)
        msg = "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else "")
        if names and not hint:
            msg += f" (allowed: {', '.join(names)})"
    elif kind in ("union_tag_not_found", "union_tag_invalid"):
        field, options = _TAGGED.get(loc[0], ("role", ROLES))
        if kind == "union_tag_not_found":
            msg = f"missing {field!r} (one of {', '.join(options)})"
        else:
            tag = err.get("ctx", {}).get("tag")
            hint = difflib.get_close_matches(str(tag), options, n=1)
            msg = f"unknown {field} {tag!r}" + (
                f"; did you mean {hint[0]!r}?" if hint else f" (one of {', '.join(options)})"
            )
            key = key if key.endswith(field) else f"{key}.{field}"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "finite_number":
        msg = f"must be a finite number, not {_spelt(value)}"
    elif kind == "string_type" and is_key:
        msg = f"a name is text, not {_spelt(value)}: put it in quotes"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        limit = err.get("ctx", {}).get("ge", err.get("ctx", {}).get("gt"))
        if kind == "greater_than_equal" and limit == 0:
            msg = "must not be negative"
        elif kind == "greater_than" and limit == 0:
            msg = "must be greater than zero"
        got = written if written is not None else value
        quoted = got is not None and not is_key and not isinstance(got, dict | list)
        if quoted and (text := _spelt(got)) not in msg:
            msg = f"{msg} (got {text})"
    return Problem(name, key, msg, line_of(lines, loc))


def line_of(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    """The line of ``loc`` in the file, or of the nearest key above it that has one."""
    for depth in range(len(loc), 0, -1):
        line = lines.get(loc[:depth])
        if line is not None:
            return line
    return None
