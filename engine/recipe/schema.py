"""Check a document against its JSON Schema: a recipe (``schemas/recipe.schema.json``) or a line profile.

The validators are built once per process. A document is first checked by jsonschema-rs, which
says in milliseconds whether it is valid (jsonschema takes about half a millisecond per stage:
seconds for a large recipe); only a document it refuses is walked by jsonschema, whose errors are
turned into diagnostics that point at the offending key or value, with "did you mean …?" for
misspelt keys. That walk goes down only the lists and mappings on the way to a place jsonschema-rs
found wrong: the thousands of stages beside a wrong one are not walked again (``_ExplainOnly``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from engine.diagnostics import Diagnostic, Pos, did_you_mean
from engine.recipe.params import NotAChoice
from engine.recipe.schemawalk import explain
from engine.recipe.schemawords import takes_hint
from engine.resources import schema_path
from engine.yamlload import YList, YMap


@functools.cache
def recipe_validator() -> Draft202012Validator:
    schema = json.loads(schema_path("recipe.schema.json").read_text())
    return Draft202012Validator(schema)


@functools.cache
def profile_validator() -> Draft202012Validator:
    schema = json.loads(schema_path("profile.schema.json").read_text())
    return Draft202012Validator(schema)


_FAST: dict[int, tuple[Any, Any]] = {}
"""jsonschema-rs's validator per schema, by the schema's identity (kept, so the identity stays its own)."""


def _fast_validator(schema: Any) -> Any:
    """jsonschema-rs's validator for ``schema``, built once; None without jsonschema-rs."""
    known = _FAST.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    try:
        import jsonschema_rs
    except ImportError:
        fast = None
    else:
        fast = jsonschema_rs.Draft202012Validator(schema)
    _FAST[id(schema)] = (schema, fast)
    return fast


def _failing_paths(checker: Draft202012Validator, data: Any) -> list[list[str | int]] | None:
    """Where jsonschema-rs finds ``data`` wrong: [] when valid, None when it cannot say."""
    fast = _fast_validator(checker.schema)
    if fast is None:
        return None
    try:
        if fast.is_valid(data):
            return []
        return [list(error.instance_path) for error in fast.iter_errors(data)]
    except Exception:  # a value it cannot take: jsonschema will say what is wrong, if anything
        return None


PlaceNamer = Callable[[Any, Sequence[Any]], str]
"""Names the place at a path of a document in a message (``stages[0].with`` unless told otherwise)."""


def validate_document(
    data: YMap, validator: Draft202012Validator | None = None, place: PlaceNamer | None = None
) -> list[Diagnostic]:
    """Every schema problem in one file (a recipe unless ``validator`` says otherwise), one diagnostic each.

    ``place`` names where a problem is (a recipe's loader names stages by id); the path by default."""
    checker = validator if validator is not None else recipe_validator()
    failing = _failing_paths(checker, data)
    if failing == []:
        return []
    out: dict[tuple[Pos, str], Diagnostic] = {}
    for error in explain(checker, data, failing):
        for diag in _diagnostics(error, data, checker.schema, place or (lambda _data, path: _dotted(list(path)))):
            out.setdefault((diag.pos, diag.message), diag)
    return sorted(out.values(), key=lambda d: d.pos)


def _locate(data: Any, path: Iterable[Any], *, key: bool = False) -> Pos:
    """Position of the value at ``path`` (or of its key, for a mapping entry)."""
    node = data
    pos: Pos = data.pos
    items = list(path)
    for i, step in enumerate(items):
        last = i == len(items) - 1
        if isinstance(node, YMap) and step in node:
            pos = node.where(step, of_key=key and last)
            node = node[step]
        elif isinstance(node, YList) and isinstance(step, int) and step < len(node):
            pos = node.where(step)
            node = node[step]
        else:
            break
    return pos


def _leaf_errors(error: ValidationError) -> list[ValidationError]:
    """The most specific errors: for anyOf/oneOf, the branch that best explains the problem."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        if all(e.validator == "required" for e in error.context):
            return [error]  # "give one of ..." reads better than one line per missing key
        # The branch whose error lies deepest in the value is the one the value was meant to follow.
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        return _leaf_errors(deepest)
    return [error]


def _diagnostics(error: ValidationError, data: YMap, root: Any, place: PlaceNamer) -> list[Diagnostic]:
    def at(path: list[Any]) -> str:
        return place(data, path)

    diags = []
    for leaf in _leaf_errors(error):
        path = list(leaf.absolute_path)
        instance = leaf.instance
        kind = str(leaf.validator)
        if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
            schema = leaf.schema if isinstance(leaf.schema, dict) else {}
            known = _known_keys(schema, root)
            for extra in sorted(set(instance) - known):
                diags.append(
                    Diagnostic(
                        _locate(data, [*path, extra], key=True),
                        "error",
                        "schema-unknown-key",
                        f"unknown key '{extra}'{_where(at(path))}{did_you_mean(extra, known)}",
                    )
                )
            continue
        if kind in ("anyOf", "oneOf"):
            required: list[Any] = [e.validator_value for e in leaf.context]
            choices = sorted({str(name) for names in required for name in names})
            diags.append(
                Diagnostic(
                    _locate(data, path),
                    "error",
                    "schema-required",
                    f"{_subject(at(path))}give {'exactly ' if kind == 'oneOf' else ''}one of {', '.join(choices)}",
                )
            )
            continue
        if kind == "required":
            diags.append(
                Diagnostic(
                    _locate(data, path),
                    "error",
                    "schema-required",
                    f"{leaf.message.replace('is a required property', 'is required')}{_where(at(path))}",
                )
            )
            continue
        message = _short(leaf)
        if kind == "enum" and isinstance(leaf.validator_value, list):
            values = tuple(str(value) for value in leaf.validator_value)
            named = path[-1] if path and isinstance(path[-1], str) else "value"
            message = NotAChoice(instance, values).explain(named)
        hint = takes_hint(leaf)
        said = f"{_subject(at(path[:-1]))}{hint}" if hint else f"{_subject(at(path))}{message}"  # a hint names its key
        diags.append(Diagnostic(_locate(data, path), "error", f"schema-{kind}", said))
    return diags


def _known_keys(schema: dict[str, Any], root: Any) -> set[str]:
    keys = set(schema.get("properties", {}))
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root["$defs"].get(ref.removeprefix("#/$defs/"), {})
        keys |= set(target.get("properties", {}))
    return keys


def _where(place: str) -> str:
    return f" in {place}" if place else ""


def _subject(place: str) -> str:
    return f"{place}: " if place else ""


def _dotted(path: list[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _short(error: ValidationError) -> str:
    message = error.message
    return message if len(message) <= 160 else message[:157] + "..."
