"""Keep the step-parameter part of the recipe schema in step with the step types.

Each step type's ``Params`` dataclass is turned into a JSON Schema; the recipe schema holds them
under ``$defs/step_params`` so editors complete and explain ``with:`` keys. ``python -m
engine.recipe.schemagen`` rewrites that part of ``schemas/recipe.schema.json``; a test fails when the file
and the dataclasses disagree.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from engine.registry import Registry
from engine.resources import schema_path
from engine.step import StepType

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
}
PARAM_REF = {"$ref": "#/$defs/param_ref"}


class UnsupportedParamType(TypeError):
    pass


def type_schema(hint: Any) -> dict[str, Any]:
    """JSON Schema of one parameter type (the types step parameters may use).

    A closed set of values (a ``Literal`` or an ``Enum``) is an ``enum``: an editor completes it.
    """
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": type_schema(args[0])}
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return {"anyOf": [type_schema(rest[0]), {"type": "null"}]}
    raise UnsupportedParamType(f"unsupported parameter type {hint!r}")


def params_schema(step_type: type[StepType]) -> dict[str, Any]:
    """JSON Schema of a step type's ``with:`` mapping."""
    hints = typing.get_type_hints(step_type.Params)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(step_type.Params):
        prop = {
            "description": f.metadata.get("doc", ""),
            "anyOf": [type_schema(hints[f.name]), PARAM_REF],
        }
        if f.default is not dataclasses.MISSING:
            prop["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
        else:
            required.append(f.name)
        properties[f.name] = prop
    schema: dict[str, Any] = {
        "description": f"{step_type.name}: {step_type.summary}",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        schema["required"] = required
    return schema


def step_defs(registry: Registry) -> dict[str, Any]:
    """The generated ``$defs`` entries: step names, their parameters, and the dispatch by type."""
    names = registry.names()
    return {
        "step_name": {
            "description": "A step type: one shipped with floorflow or added by an installed package.",
            "anyOf": [
                {"enum": names},
                {"type": "string", "pattern": "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$"},
            ],
        },
        "step_params": {t.name: params_schema(t) for t in registry},
        "step_params_by_type": {
            "allOf": [
                {
                    "if": {"required": ["step"], "properties": {"step": {"const": name}}},
                    "then": {"properties": {"with": {"$ref": f"#/$defs/step_params/{name}"}}},
                }
                for name in names
            ]
        },
    }


def rewrite(path: Path, registry: Registry) -> bool:
    """Write the generated part into the schema file; True when it changed."""
    schema = json.loads(path.read_text())
    before = json.dumps(schema, indent=2)
    schema["$defs"].update(step_defs(registry))
    after = json.dumps(schema, indent=2)
    if after != before:
        path.write_text(after + "\n")
    return after != before


def main() -> int:
    path = schema_path("recipe.schema.json")
    changed = rewrite(path, Registry.discover())
    print(f"{path}: {'rewritten' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
