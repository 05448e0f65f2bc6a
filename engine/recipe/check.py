"""Everything `floorflow validate` checks, in order: YAML, schema, extends, compile, rules."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from engine.diagnostics import Diagnostic, Pos, RecipeError, quoted
from engine.flow import Flow
from engine.recipe.compile import compile_recipe
from engine.recipe.features import check_features
from engine.recipe.load import LoadedRecipe, load_recipe
from engine.recipe.rules import check_flow
from engine.registry import Registry


def check_recipe(
    path: Path, registry: Registry, shown_as: str | None = None, recipe_root: Path | None = None
) -> tuple[Flow | None, list[Diagnostic]]:
    """The compiled Flow (None when the recipe cannot be compiled) and every problem found.

    ``recipe_root``: the directory ``extends:`` may name recipes below (default: the recipe's own).
    A fault of floorflow's own while checking is an ``internal`` error at the top of the file, so
    that a run over many recipes goes on to the next.
    """
    try:
        with _no_cycle_collection():
            return _check(path, registry, shown_as, recipe_root)
    except Exception as exc:  # one recipe's fault must not stop the check of the next
        where = Pos(shown_as if shown_as is not None else str(path), 1, 1)
        message = f"floorflow could not check this recipe ({type(exc).__name__}: {exc}); please report it"
        return None, [Diagnostic(where, "error", "internal", message)]


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while a recipe is checked.

    Checking a large recipe makes about a million small objects that stay alive to the end and form
    no cycle to free; the collector, started every few hundred new objects, walked them all again
    each time: a third of the time a 1 MiB recipe took. What it would collect is collected after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check(
    path: Path, registry: Registry, shown_as: str | None, recipe_root: Path | None
) -> tuple[Flow | None, list[Diagnostic]]:
    try:
        recipe = load_recipe(path, shown_as, recipe_root)
    except RecipeError as exc:
        return None, exc.diagnostics
    flow, problems = compile_recipe(recipe, registry)
    problems = recipe.warnings + problems
    problems += check_features(flow)
    if not any(d.severity == "error" for d in problems):
        problems += check_flow(flow)
    problems = [_naming_the_route(d, recipe) for d in reported_once(problems)]
    problems.sort(key=lambda d: d.pos)
    if any(d.severity == "error" for d in problems):
        return None, problems
    return flow, problems


def reported_once(problems: list[Diagnostic]) -> list[Diagnostic]:
    """Each problem once: the same message at the same place and code is one problem, and so is a
    message that only adds how the place was reached (``... (through rework 'fix')``) to one already
    there. The first of each is kept, in the order found."""
    by_place: dict[tuple[Pos, str], list[str]] = {}
    for diag in problems:
        by_place.setdefault((diag.pos, diag.code), []).append(diag.message)
    kept: list[Diagnostic] = []
    seen: set[tuple[Pos, str, str]] = set()
    for diag in problems:
        key = (diag.pos, diag.code, diag.message)
        others = by_place[(diag.pos, diag.code)]
        if key in seen or any(diag.message.startswith(other + " (") for other in others):
            continue
        seen.add(key)
        kept.append(diag)
    return kept


def _naming_the_route(diag: Diagnostic, recipe: LoadedRecipe) -> Diagnostic:
    """A problem found in a recipe the checked one extends names the recipe whose route made it one:
    the base may be fine on its own, or in the route of another recipe."""
    if diag.pos.file == recipe.shown_as:
        return diag
    name = recipe.data.get("recipe")
    who = f"recipe {quoted(name)}, {recipe.shown_as}" if isinstance(name, str) else f"recipe {recipe.shown_as}"
    return replace(diag, message=f"{diag.message} (in the route of {who})")


def load_flow(path: Path, registry: Registry, recipe_root: Path | None = None) -> Flow:
    """The compiled Flow of a valid recipe; RecipeError listing the problems otherwise."""
    flow, problems = check_recipe(path, registry, recipe_root=recipe_root)
    if flow is None:
        raise RecipeError(problems)
    return flow
