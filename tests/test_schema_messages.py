"""Schema problems read as a person would put them, at the right place."""

from __future__ import annotations

from typing import Any

import pytest

from engine.recipe.schema import validate_document
from engine.yamlload import load_text

HEAD = "recipe: t\nversion: 1\nstages:\n"


def _problems(stages: str) -> list[tuple[int, int, str]]:
    data = load_text(HEAD + stages, "r.yaml")
    return [(d.pos.line, d.pos.col, d.message) for d in validate_document(data)]


def test_wrong_item_in_a_list_is_named_not_the_other_branch() -> None:
    """A list parameter with one bad item points at that item, not at 'not a ${params} string'."""
    found = _problems("  - {id: m, step: rf.measure, with: {band: wifi-2g4, channels: [1, '2']}}\n")
    assert found == [(4, 68, "stages[0].with.channels[1]: '2' is not of type 'integer'")]


def test_sampling_without_rate_or_aql_says_to_give_one() -> None:
    """sampling with neither rate nor aql asks for exactly one of them, in one line."""
    found = _problems("  - {id: s, step: sample.inspect, with: {tests: [a]}, sampling: {lot_size: 5}}\n")
    assert len(found) == 1
    assert found[0][2] == "stages[0].sampling: give exactly one of aql, rate"


def test_a_valid_document_is_not_walked_by_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    """jsonschema-rs accepts a valid recipe at once: jsonschema's slow walk is only for explaining errors."""
    from engine.recipe import schema, schemawalk

    data = load_text(HEAD + "  - {id: c, step: device.connect}\n", "r.yaml")
    checker = schema.recipe_validator()

    def walked(*args: object, **kwargs: object) -> object:
        raise AssertionError("jsonschema walked a valid document")

    monkeypatch.setattr(type(checker), "iter_errors", walked)
    monkeypatch.setattr(type(schemawalk._explainer(checker.schema)), "iter_errors", walked)
    assert validate_document(data) == []


def test_without_jsonschema_rs_the_same_problems_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """With jsonschema-rs missing (or unable to take a value), jsonschema alone finds the same problems."""
    stages = (
        "  - {id: m, step: rf.measure, with: {band: wifi-2g4, channels: [1, '2']}}\n"
        "  - {id: ok, step: device.connect}\n"
    )
    with_rs = _problems(stages)
    _without_jsonschema_rs(monkeypatch)
    assert _problems(stages) == with_rs
    assert validate_document(load_text(HEAD + "  - {id: c, step: device.connect}\n", "r.yaml")) == []


def test_a_value_jsonschema_rs_cannot_take_is_left_to_jsonschema() -> None:
    """A value that is no JSON type (built in code) does not stop the check: jsonschema reports it."""
    data = load_text(HEAD + "  - {id: c, step: device.connect}\n", "r.yaml")
    data["description"] = object()
    (problem,) = validate_document(data)
    assert problem.code == "schema-type"


def _without_jsonschema_rs(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from engine.recipe import schema

    real_import = builtins.__import__

    def no_rs(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "jsonschema_rs":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rs)
    monkeypatch.setattr(schema, "_FAST", {})


def test_jsonschema_walks_only_the_way_to_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    """In 2,000 stages with two wrong ones, jsonschema goes down into those two (and the scalars beside
    them), not into every stage; the problems are word for word those a walk of everything finds."""
    import sys
    from pathlib import Path

    from engine.recipe import schema, schemawalk

    bench = str(Path(__file__).resolve().parent.parent / "bench")
    sys.path.insert(0, bench)
    try:
        from bigrecipe import big_recipe, with_schema_error
    finally:
        sys.path.remove(bench)
    text = with_schema_error(big_recipe(2000)).replace("[1, 6]}, measurements: {p21:", "[1, '6']}, measurements: {p21:")
    explainer = type(schemawalk._explainer(schema.recipe_validator().schema))
    descended = 0
    real_descend = explainer.descend

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal descended
        descended += 1
        return real_descend(self, *args, **kwargs)

    monkeypatch.setattr(explainer, "descend", counted)
    data = load_text(text, "big.yaml")
    found = validate_document(data)
    last = len(data["stages"]) - 2  # the last generated stage, before finish
    assert [d.message for d in found] == [
        "stages[20].with.channels[1]: '6' is not of type 'integer'",
        f"unknown key 'statoin' in stages[{last}] (did you mean 'station'?)",
    ]
    assert descended < 2_000
    _without_jsonschema_rs(monkeypatch)
    assert validate_document(load_text(text, "big.yaml")) == found
