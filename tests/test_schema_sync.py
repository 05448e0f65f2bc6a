"""schemas/recipe.schema.json: in step with the step types, valid, documented, and referenced.

The ``$defs`` that ``engine.recipe.schemagen`` generates from each step type's ``Params`` dataclass must be
exactly those in the file, so the editor help and the checker never disagree with the code. When
they differ, ``python -m engine.recipe.schemagen`` rewrites the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.recipe.schemagen import step_defs
from engine.registry import Registry
from engine.step import NoParams, StepType, param
from engine.testing import installed_step_types

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "schemas" / "recipe.schema.json"
WORKFLOW_FILES = sorted((ROOT / "workflows").rglob("*.yaml"))
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")
REGENERATE = "run `python -m engine.recipe.schemagen` to regenerate schemas/recipe.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def _shipped() -> Registry:
    """floorflow's own step types: the shipped schema describes them, not a third-party package's."""
    shipped = Registry()
    for step_type in installed_step_types("floorflow"):
        shipped.register(step_type, origin="floorflow")
    return shipped


@pytest.fixture(scope="module")
def registry() -> Registry:
    return _shipped()


def drift(generated: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """JSON paths under $defs where the generated entries and the schema file disagree."""
    defs = schema.get("$defs", {})
    out = []
    for name, value in generated.items():
        if name == "step_params" and isinstance(defs.get(name), dict):
            written = defs[name]
            out += [
                f"#/$defs/step_params/{step}"
                for step in sorted(set(value) | set(written))
                if value.get(step) != written.get(step)
            ]
        elif defs.get(name) != value:
            out.append(f"#/$defs/{name}")
    return out


# -- the step types and the file agree ------------------------------------------------------------


def test_generated_defs_match_the_schema_file(registry: Registry, schema: dict[str, Any]) -> None:
    """Every $defs entry generated from the step types' Params equals the one in the file."""
    stale = drift(step_defs(registry), schema)
    assert not stale, f"schema out of date at {', '.join(stale)}: {REGENERATE}"


@dataclass(frozen=True)
class _ProbeParams:
    target: str = param("What the probe step aims at.", default="unit")


class _ProbeStep(StepType):
    name = "probe.only_in_this_test"
    summary = "A step type that exists only in this test module."
    Params = _ProbeParams


def _with_extra_field(step_type: type[StepType]) -> type[StepType]:
    """A subclass of ``step_type`` whose Params gains one optional field."""

    @dataclass(frozen=True)
    class Params(step_type.Params):  # type: ignore[name-defined,misc]
        added_by_test: int = param("A field the schema file does not know.", default=0)

    return type(f"{step_type.__name__}Grown", (step_type,), {"Params": Params})


def _registry_with(replaced: dict[str, type[StepType]], added: list[type[StepType]]) -> Registry:
    throwaway = Registry()
    for step_type in _shipped():
        throwaway.register(replaced.get(step_type.name, step_type), origin="test")
    for step_type in added:
        throwaway.register(step_type, origin="test")
    return throwaway


def test_a_params_field_added_in_code_is_caught(registry: Registry, schema: dict[str, Any]) -> None:
    """Giving one step type's Params a new field makes its generated $defs differ from the file."""
    target = registry.get("manual.checklist")
    grown = _registry_with({target.name: _with_extra_field(target)}, [])
    generated = step_defs(grown)
    assert "added_by_test" in generated["step_params"][target.name]["properties"]
    assert drift(generated, schema) == [f"#/$defs/step_params/{target.name}"]


def test_a_step_type_added_in_code_is_caught(schema: dict[str, Any]) -> None:
    """Registering a step type the file does not know changes step_name, step_params and dispatch."""
    generated = step_defs(_registry_with({}, [_ProbeStep]))
    assert drift(generated, schema) == [
        "#/$defs/step_name",
        f"#/$defs/step_params/{_ProbeStep.name}",
        "#/$defs/step_params_by_type",
    ]


def test_a_step_type_without_params_generates_an_empty_object() -> None:
    """A NoParams step type gets a closed object schema with no properties."""

    class Bare(StepType):
        name = "probe.bare"
        summary = "No parameters."
        Params = NoParams

    throwaway = Registry()
    throwaway.register(Bare)
    bare = step_defs(throwaway)["step_params"]["probe.bare"]
    assert (bare["properties"], bare["additionalProperties"]) == ({}, False)


# -- the file is a sound, documented schema -------------------------------------------------------


def test_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    """The file declares Draft 2020-12 and passes that metaschema."""
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _refs(node: Any, path: str = "#") -> list[tuple[str, str]]:
    """(JSON path, target) of every $ref below ``node``."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append((path, node["$ref"]))
        for key, value in node.items():
            found += _refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _refs(value, f"{path}/{index}")
    return found


def _resolve(schema: dict[str, Any], pointer: str) -> Any:
    node: Any = schema
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_local_ref_resolves(schema: dict[str, Any]) -> None:
    """Every $ref in the schema points at a definition that exists in the file."""
    broken = []
    for path, ref in _refs(schema):
        try:
            _resolve(schema, ref)
        except (KeyError, TypeError):
            broken.append(f"{path} -> {ref}")
    assert not broken


# Subschemas that only refine keys declared (and described) elsewhere: an ``if`` tests a value,
# and step_params_by_type's ``then`` narrows the stage's ``with`` to one step type's parameters.
_CONDITIONAL = ("if", "then", "else", "not")


def undescribed(node: Any, path: str = "#") -> list[str]:
    """JSON paths of every declared property whose schema has no (or an empty) description."""
    missing = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _CONDITIONAL:
                continue
            if key == "properties" and isinstance(value, dict):
                for name, prop in value.items():
                    here = f"{path}/properties/{name}"
                    if not (isinstance(prop, dict) and str(prop.get("description", "")).strip()):
                        missing.append(here)
                    missing += undescribed(prop, here)
            else:
                missing += undescribed(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            missing += undescribed(value, f"{path}/{index}")
    return missing


def test_undescribed_finds_a_property_without_description() -> None:
    """The walk reports a nested property (inside $defs and items) that lacks a description."""
    sample = {
        "properties": {"a": {"description": "A.", "items": {"properties": {"b": {}}}}},
        "$defs": {"d": {"properties": {"c": {"description": " "}}}},
    }
    assert undescribed(sample) == ["#/properties/a/items/properties/b", "#/$defs/d/properties/c"]


def test_every_property_has_a_description(schema: dict[str, Any]) -> None:
    """Every key an editor can complete in a recipe comes with help text."""
    assert undescribed(schema) == []


# -- the workflows point editors at the schema ----------------------------------------------------


def test_workflows_exist() -> None:
    """The modeline test below has workflows to look at (base recipes included)."""
    assert len(WORKFLOW_FILES) >= 5
    assert any(p.parent.name == "base" for p in WORKFLOW_FILES)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_modeline_points_at_the_schema(path: Path) -> None:
    """The file's first line is the yaml-language-server modeline naming its schema: a line profile's
    (under workflows/profiles) or the recipe schema."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    modeline = MODELINE.match(first)
    assert modeline, f"{path.name}: first line is not a `# yaml-language-server: $schema=` modeline"
    schema = SCHEMA_PATH.with_name("profile.schema.json") if path.parent.name == "profiles" else SCHEMA_PATH
    assert (path.parent / modeline.group(1)).resolve() == schema.resolve(), modeline.group(1)
