"""examples/floorflow-example-steps, the third-party step package docs/steps.md walks through, holds up
without being installed: its entry points name its classes, its types keep the contract, its recipe
validates and simulates with them. (.ci/run installs it, runs its own tests, and runs its recipe --sim.)
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from engine.recipe.check import check_recipe
from engine.registry import ENTRY_POINT_GROUP, Registry
from engine.simulate import load_profile, simulate
from engine.step import StepType
from engine.testing import check_contract

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "floorflow-example-steps"
RECIPE = EXAMPLE / "recipes" / "thermostat-final-check.yaml"


@pytest.fixture
def example_types(monkeypatch: pytest.MonkeyPatch) -> list[type[StepType]]:
    """The step types the example's pyproject.toml declares, imported from its folder."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    declared = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    types = []
    for name, target in declared.items():
        module, _, attr = target.partition(":")
        step_type = getattr(importlib.import_module(module), attr)
        assert step_type.name == name, f"entry point '{name}' loads a step type named '{step_type.name}'"
        types.append(step_type)
    return types


@pytest.fixture
def registry(example_types: list[type[StepType]]) -> Registry:
    """floorflow's installed step types and the example's, as an environment with both installed has them."""
    registry = Registry.discover()
    for step_type in example_types:
        if step_type.name not in registry:
            registry.register(step_type, origin="examples/floorflow-example-steps")
    return registry


def test_the_example_types_keep_the_contract(example_types: list[type[StepType]]) -> None:
    """Both example types hold to every rule of engine.testing's contract (but the installed one)."""
    assert [t.name for t in example_types] == ["example.cosmetic_grade", "example.device_id_check"]
    check_contract(example_types, installed=False)


def test_the_example_recipe_validates_and_simulates(registry: Registry) -> None:
    """The example recipe has no problem with the example types registered, and simulating it takes
    their typical figures: the graded stage keeps an operator busy."""
    flow, problems = check_recipe(RECIPE, registry)
    assert flow is not None and not problems, "\n".join(map(str, problems))
    profile = load_profile(None, flow, registry)
    assert "example.cosmetic_grade" in profile.manual_steps
    assert profile.time_of(flow.stages["id_check"]).mean == 4
    figures = simulate(flow, profile, units=300, seed=5).figures
    assert figures["shipped"] > 0 and figures["operators"]["visits"] > 0 and not figures["recipe_problems"]
