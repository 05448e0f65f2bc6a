"""Schema problems in a recipe's words: a place named by its stage's id, and what a key takes.

A JSON Schema error knows where it is as a path (``stages[4].any_order.stages[1].retry``) and what
is wrong in the schema's terms (``1 is not of type 'object'``). An engineer writes stages by id and
keys by what they hold: ``stage 'rf_cal' in group 'bench_tests'``, ``retry takes {max: N}, not 1``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from jsonschema.exceptions import ValidationError

from engine.diagnostics import quoted

_PLACEHOLDERS = {
    "integer": "N",
    "number": "X",
    "string": "TEXT",
    "boolean": "true",
    "array": "[...]",
    "object": "{...}",
}
"""What a value of each JSON type is shown as in a hint."""
_SHOWN_KEYS = 3
"""Keys shown in a hint when the mapping requires none (the first ones of the schema)."""


def dotted(path: Sequence[Any]) -> str:
    """A path as a schema names it: ``stations.smt.slots``, ``stages[0].with``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def recipe_place(data: Any, path: Sequence[Any]) -> str:
    """The place at ``path`` in a recipe, its stage or group named by id:
    ``stage 'rf_cal' in group 'bench_tests', retry``; a path outside the stages as ``dotted`` gives it."""
    where, rest = _stage_words(data, list(path))
    if where is None:
        return dotted(path)
    return f"{where}, {dotted(rest)}" if rest else where


def _stage_words(data: Any, path: list[Any]) -> tuple[str | None, list[Any]]:
    """(the stage or group the path goes into, in words; the rest of the path below it)."""
    if len(path) < 2 or path[0] not in ("stages", "rework") or not isinstance(path[1], int):
        return None, path
    entry = _item(_item(data, path[0]), path[1])
    if path[0] == "rework":
        sid = _id_of(entry)
        return (f"rework stage {quoted(sid)}", path[2:]) if sid else (None, path)
    group = _item(entry, "any_order")
    if not isinstance(group, dict):
        sid = _id_of(entry)
        return (f"stage {quoted(sid)}", path[2:]) if sid else (None, path)
    gid = _id_of(group)
    in_group = path[2:3] == ["any_order"] and path[3:4] == ["stages"] and len(path) > 4 and isinstance(path[4], int)
    mid = _id_of(_item(_item(group, "stages"), path[4])) if in_group else None
    if mid is not None:  # stage ids are unique in a recipe: a group without an id need not be named
        return (f"stage {quoted(mid)} in group {quoted(gid)}" if gid else f"stage {quoted(mid)}"), path[5:]
    if gid is None:
        return None, path
    return f"group {quoted(gid)}", path[3:] if path[2:3] == ["any_order"] else path[2:]


def _item(container: Any, key: Any) -> Any:
    if isinstance(container, dict) and isinstance(key, str):
        return container.get(key)
    if isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container):
        return container[key]
    return None


def _id_of(entry: Any) -> str | None:
    sid = entry.get("id") if isinstance(entry, dict) else None
    return sid if isinstance(sid, str) else None


def takes_hint(error: ValidationError) -> str | None:
    """``retry takes {max: N}, not 1``: for a key given a value of another type where it takes a mapping,
    what the mapping holds, from its schema (an example when it gives one, else its keys); None otherwise."""
    path = error.absolute_path
    key, schema, value = path[-1] if path else None, error.schema, error.instance
    if error.validator != "type" or not isinstance(key, str) or not isinstance(schema, dict):
        return None
    types = schema.get("type")
    if "object" not in (types if isinstance(types, list) else [types]):
        return None
    return f"{key} takes {_shape(schema)}, not {_shown(value)}"


def _shape(schema: dict[str, Any]) -> str:
    """A mapping the schema accepts, written as YAML's flow style: ``{max: N}``."""
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], dict):
        return _flow(examples[0])
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        required = [name for name in schema.get("required", []) if name in properties]
        names = required or list(properties)[:_SHOWN_KEYS]
        more = ", ..." if len(names) < len(properties) and not required else ""
        return "{" + ", ".join(f"{name}: {_placeholder(properties[name])}" for name in names) + more + "}"
    description = schema.get("description")
    what = f" ({description.rstrip('.')})" if isinstance(description, str) and description else ""
    return f"a mapping of NAME: VALUE{what}"


def _placeholder(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "..."
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _flow(schema["enum"][0])
    types = schema.get("type")
    first = types[0] if isinstance(types, list) and types else types
    return _PLACEHOLDERS.get(first, "...") if isinstance(first, str) else "..."


def _flow(value: Any) -> str:
    """A value written as YAML's flow style, for a hint."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def _shown(value: Any) -> str:
    """What the recipe gave, as a message names it."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return quoted(value)
    return json.dumps(value) if value is None or isinstance(value, bool | int | float) else quoted(value)
