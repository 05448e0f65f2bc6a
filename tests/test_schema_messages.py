"""Schema problems read as a person would put them, at the right place."""

from __future__ import annotations

from typing import Any

import pytest

from engine.schema import validate_document
from engine.yamlload import load_text

HEAD = "recipe: t\nversion: 1\nstages:\n"


def _problems(stages: str) -> list[tuple[int, int, str]]:
    data = load_text(HEAD + stages, "r.yaml")
    return [(d.pos.line, d.pos.col, d.message) for d in validate_document(data)]


def test_wrong_item_in_a_list_is_named_not_the_other_branch() -> None:
    """A list parameter with one bad item points at that item, not at 'not a ${params} string'."""
    found = _problems("  - {id: m, step: rf.measure, with: {band: x, channels: [1, '2']}}\n")
    assert found == [(4, 61, "stages[0].with.channels[1]: '2' is not of type 'integer'")]


def test_sampling_without_rate_or_aql_says_to_give_one() -> None:
    """sampling with neither rate nor aql asks for exactly one of them, in one line."""
    found = _problems("  - {id: s, step: sample.inspect, with: {tests: [a]}, sampling: {lot_size: 5}}\n")
    assert len(found) == 1
    assert found[0][2] == "stages[0].sampling: give exactly one of aql, rate"


def test_a_valid_document_is_not_walked_by_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    """jsonschema-rs accepts a valid recipe at once: jsonschema's slow walk is only for explaining errors."""
    from engine import schema

    data = load_text(HEAD + "  - {id: c, step: device.connect}\n", "r.yaml")
    checker = schema.recipe_validator()

    def walked(*args: object, **kwargs: object) -> object:
        raise AssertionError("jsonschema walked a valid document")

    monkeypatch.setattr(type(checker), "iter_errors", walked)
    assert validate_document(data) == []


def test_without_jsonschema_rs_the_same_problems_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """With jsonschema-rs missing (or unable to take a value), jsonschema alone finds the same problems."""
    import builtins

    from engine import schema

    stages = "  - {id: m, step: rf.measure, with: {band: x, channels: [1, '2']}}\n  - {id: ok, step: device.connect}\n"
    with_rs = _problems(stages)
    real_import = builtins.__import__

    def no_rs(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "jsonschema_rs":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rs)
    monkeypatch.setattr(schema, "_FAST", {})
    assert _problems(stages) == with_rs
    assert validate_document(load_text(HEAD + "  - {id: c, step: device.connect}\n", "r.yaml")) == []


def test_a_value_jsonschema_rs_cannot_take_is_left_to_jsonschema() -> None:
    """A value that is no JSON type (built in code) does not stop the check: jsonschema reports it."""
    data = load_text(HEAD + "  - {id: c, step: device.connect}\n", "r.yaml")
    data["description"] = object()
    (problem,) = validate_document(data)
    assert problem.code == "schema-type"
