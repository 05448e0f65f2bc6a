"""Everything `floorflow validate` checks, in order: YAML, schema, extends, compile, rules."""

from __future__ import annotations

from pathlib import Path

from engine.compile import compile_recipe
from engine.diagnostics import Diagnostic, RecipeError
from engine.features import check_features
from engine.flow import Flow
from engine.recipe import load_recipe
from engine.registry import Registry
from engine.rules import check_flow


def check_recipe(path: Path, registry: Registry, shown_as: str | None = None) -> tuple[Flow | None, list[Diagnostic]]:
    """The compiled Flow (None when the recipe cannot be compiled) and every problem found."""
    try:
        recipe = load_recipe(path, shown_as)
    except RecipeError as exc:
        return None, exc.diagnostics
    flow, problems = compile_recipe(recipe, registry)
    problems = recipe.warnings + problems
    problems += check_features(flow)
    if not any(d.severity == "error" for d in problems):
        problems += check_flow(flow)
    problems.sort(key=lambda d: d.pos)
    if any(d.severity == "error" for d in problems):
        return None, problems
    return flow, problems


def load_flow(path: Path, registry: Registry) -> Flow:
    """The compiled Flow of a valid recipe; RecipeError listing the problems otherwise."""
    flow, problems = check_recipe(path, registry)
    if flow is None:
        raise RecipeError(problems)
    return flow
