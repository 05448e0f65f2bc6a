"""jsonschema's errors for a document, walking only the parts on the way to what is wrong.

jsonschema-rs says where a document is wrong in milliseconds, but not in the words floorflow's
diagnostics are made from; jsonschema does, at about half a millisecond per stage. So jsonschema
walks the document as usual, except that in a list or mapping on the way to a place jsonschema-rs
found wrong it goes down only into the lists and mappings on that way (and into every scalar): the
thousands of stages beside a wrong one are valid, and walking them again would only take seconds.
Below a wrong place everything is walked, so each error and its explanation (anyOf branches,
unknown keys) is what a full walk gives.

This holds because every other keyword of the recipe and profile schemas that looks into an item
(if, anyOf, not) tests a key's presence or a scalar's value, never what is inside a list or mapping
skipped here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend

_ON_THE_WAY: ContextVar[dict[int, set[str | int]] | None] = ContextVar("_ON_THE_WAY", default=None)
"""For each list or mapping (by identity) on the way to a wrong place: the items on that way."""

_PLAIN = Draft202012Validator.VALIDATORS


def explain(
    checker: Draft202012Validator, data: Any, failing: list[list[str | int]] | None
) -> Iterator[ValidationError]:
    """jsonschema's errors for ``data`` as ``checker`` finds them, walking only the way to ``failing``
    (the instance paths jsonschema-rs reports); every part of ``data`` when ``failing`` is None."""
    if failing is None:
        yield from checker.iter_errors(data)
        return
    token = _ON_THE_WAY.set(_ways(data, failing))
    try:
        yield from _explainer(checker.schema).iter_errors(data)
    finally:
        _ON_THE_WAY.reset(token)


def _ways(data: Any, failing: list[list[str | int]]) -> dict[int, set[str | int]]:
    """The items to go down into, for each container above a wrong place (not inside one)."""
    paths = sorted({tuple(path) for path in failing}, key=len)
    wrong: set[tuple[str | int, ...]] = set()
    ways: dict[int, set[str | int]] = {}
    for path in paths:
        if any(path[:n] in wrong for n in range(len(path))):
            continue  # inside a wrong place: all of it is walked
        wrong.add(path)
        node = data
        for step in path:
            ways.setdefault(id(node), set()).add(step)
            try:
                node = node[step]
            except (LookupError, TypeError):
                break
    return ways


_EXPLAINERS: dict[int, tuple[Any, Any]] = {}
"""The validator per schema, by the schema's identity (kept, so the identity stays its own)."""


def _explainer(schema: Any) -> Any:
    """A jsonschema validator for ``schema`` whose items, properties and additionalProperties skip
    what ``_ON_THE_WAY`` leaves out; built once per schema."""
    known = _EXPLAINERS.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    keywords = {"items": _items, "properties": _properties, "additionalProperties": _additional_properties}
    validator = _skipping_class(tuple(keywords.items()))(schema)
    _EXPLAINERS[id(schema)] = (schema, validator)
    return validator


@functools.cache
def _skipping_class(keywords: tuple[tuple[str, Any], ...]) -> Any:
    return extend(Draft202012Validator, dict(keywords))  # type: ignore[no-untyped-call]


def _only(instance: Any) -> set[str | int] | None:
    ways = _ON_THE_WAY.get()
    return None if ways is None else ways.get(id(instance))


def _walked(item: Any, key: str | int, only: set[str | int]) -> bool:
    """Whether to go down into ``item``: a scalar always (an if: may test its value), a list or mapping
    only on the way to a wrong place."""
    return key in only or not isinstance(item, dict | list)


def _items(validator: Any, items: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    only = _only(instance)
    if only is None or items is False or not validator.is_type(instance, "array"):
        yield from _PLAIN["items"](validator, items, instance, schema)
        return
    for index in range(len(schema.get("prefixItems", [])), len(instance)):
        if _walked(instance[index], index, only):
            yield from validator.descend(instance=instance[index], schema=items, path=index)


def _properties(validator: Any, properties: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    only = _only(instance)
    if only is None or not validator.is_type(instance, "object"):
        yield from _PLAIN["properties"](validator, properties, instance, schema)
        return
    for name, subschema in properties.items():
        if name in instance and _walked(instance[name], name, only):
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    only = _only(instance)
    if only is None or not validator.is_type(extra, "object") or not validator.is_type(instance, "object"):
        yield from _PLAIN["additionalProperties"](validator, extra, instance, schema)
        return
    named = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    for name in instance:
        if _walked(instance[name], name, only) and name not in named and not any(re.search(p, name) for p in patterns):
            yield from validator.descend(instance[name], extra, path=name)
