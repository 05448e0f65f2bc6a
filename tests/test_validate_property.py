"""What `validate` passes, the line runs: the shipped recipes, changed at random, against the simulated line.

Each example is a shipped recipe (``workflows/``) with one to three well-formed changes to its route:
a stage moved, removed or duplicated, or moved into or out of an ``any_order`` group. Whenever
``floorflow validate`` passes the changed recipe, ``floorflow run --sim`` takes a healthy simulated
unit through it, and the unit must ship, or fail only for a reason in ``UNIT_ONLY``: what only a
unit can know (a measurement out of its limits). A recipe ``validate`` refuses is not run.

``FLOORFLOW_PROPERTY_EXAMPLES`` sets the examples drawn per shipped recipe (default 6, so the suite
stays quick); the figures of a longer run are printed with ``-s``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from engine.cli import main
from engine.store import open_store

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted(p.name for p in (ROOT / "workflows").glob("*.yaml"))
EXAMPLES = int(os.environ.get("FLOORFLOW_PROPERTY_EXAMPLES", "6"))
UNIT_ONLY = ("is outside its limits", "outside the limits", "out of its limits")
"""Phrases of the reasons only a unit can give: a measurement out of its limits."""
CHANGES = ("move", "remove", "duplicate", "into_group", "out_of_group")
TALLY: Counter[str] = Counter()
SERIALS = itertools.count(1)


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _groups(stages: list[Any]) -> list[list[Any]]:
    return [item["any_order"]["stages"] for item in stages if "any_order" in item]


def _plain(stages: list[Any]) -> list[int]:
    return [i for i, item in enumerate(stages) if "any_order" not in item]


def _change(data: st.DataObject, stages: list[Any], kind: str) -> str | None:
    """Apply one change of ``kind`` to the route; what was done, or None when it cannot apply here."""
    draw = data.draw
    if kind == "move" and len(stages) > 1:
        i, j = draw(st.integers(0, len(stages) - 1)), draw(st.integers(0, len(stages) - 1))
        stages.insert(j, stages.pop(i))
        return f"move {i} to {j}"
    if kind == "remove" and len(stages) > 1:
        i = draw(st.integers(0, len(stages) - 1))
        stages.pop(i)
        return f"remove {i}"
    plain, groups = _plain(stages), _groups(stages)
    if kind == "duplicate" and plain:
        i = draw(st.sampled_from(plain))
        twin = copy.deepcopy(stages[i])
        twin["id"] = f"{twin['id']}_again"
        stages.insert(draw(st.integers(0, len(stages))), twin)
        return f"duplicate {i}"
    if kind == "into_group" and plain and groups:
        i, group = draw(st.sampled_from(plain)), draw(st.sampled_from(groups))
        group.insert(draw(st.integers(0, len(group))), stages.pop(i))
        return f"stage {i} into a group"
    if kind == "out_of_group" and groups:
        group = draw(st.sampled_from(groups))
        if len(group) > 1:
            member = group.pop(draw(st.integers(0, len(group) - 1)))
            stages.insert(draw(st.integers(0, len(stages))), member)
            return "a member out of its group"
    return None


def _quiet(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(argv))


def _shipped_or_why(recipe: Path, store: Path) -> str | None:
    """Run one healthy simulated unit through the recipe: None when it ships, else its status and reason. Each
    run's unit is new (the simulated line keeps its units for the process: a serial run before is not healthy)."""
    serial = f"PT{next(SERIALS):05d}"
    _quiet("run", str(recipe), "--sim", "--unit", serial, "--store", f"sqlite:///{store}")
    with open_store(f"sqlite:///{store}") as opened:
        unit = opened.unit(serial)
    return None if unit.status == "shipped" else f"{unit.status}: {unit.reason}"


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped recipes (bases and profiles too), to write changed recipes beside."""
    where = tmp_path_factory.mktemp("line") / "workflows"
    shutil.copytree(ROOT / "workflows", where)
    return where


@pytest.mark.parametrize("name", RECIPES)
def test_a_recipe_validate_passes_ships_under_sim(name: str, line: Path) -> None:
    original = _yaml().load((line / name).read_text(encoding="utf-8"))
    seen = Counter[str]()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(st.data())
    def changed_recipe_ships(data: st.DataObject) -> None:
        recipe = copy.deepcopy(original)
        kinds = data.draw(st.lists(st.sampled_from(CHANGES), min_size=1, max_size=3), label="changes")
        done = [said for kind in kinds if (said := _change(data, recipe["stages"], kind)) is not None]
        path = line / f"changed-{name}"
        with path.open("w", encoding="utf-8") as out:
            _yaml().dump(recipe, out)
        if _quiet("validate", str(path)) != 0:
            seen["refused by validate"] += 1
            return
        store = path.with_suffix(".db")
        store.unlink(missing_ok=True)
        why = _shipped_or_why(path, store)
        if why is None:
            seen["validated and shipped"] += 1
            return
        seen["validated, failed for a unit's reason"] += 1
        assert any(phrase in why for phrase in UNIT_ONLY), f"{name} after {done}: validate passed, the unit {why}"

    changed_recipe_ships()
    TALLY.update({f"{name}: {k}": v for k, v in seen.items()})
    print(f"\n{name}: {dict(seen)}")
