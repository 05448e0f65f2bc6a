"""The storage rules read effects alone: flows built in code, with effects no shipped step type has.

The bad recipes in tests/recipes/bad/ (storage_*, image_*) hold the rules to the shipped step types;
these hold them to what the effects say, whoever declares them.
"""

from __future__ import annotations

from pathlib import Path

from engine.diagnostics import Diagnostic, Pos
from engine.flow import Flow, Group, Image, Stage
from engine.recipe.check import check_recipe
from engine.recipe.routewalk import RouteWalk
from engine.recipe.rules import _Problems
from engine.recipe.storagewalk import os_after
from engine.registry import Registry
from engine.step import Effects

INSTALL_OS = Effects(replaces_storage=True, installs_os=True)
WIPE = Effects(replaces_storage=True)
SIDELOAD = Effects(loads=("app",), needs_os=True)


def _walk(*entries: Stage | tuple[Stage, ...], images: dict[str, Image] | None = None) -> list[Diagnostic]:
    """The problems of a flow whose route is ``entries`` (a tuple is an any_order group)."""
    stages: dict[str, Stage] = {}
    route: list[str | Group] = []
    for n, entry in enumerate(entries):
        members = entry if isinstance(entry, tuple) else (entry,)
        for line, stage in enumerate(members, start=len(stages) + 1):
            stages[stage.id] = Stage(**{**stage.__dict__, "pos": Pos("r.yaml", line, 1)})
        route.append(Group(f"g{n}", tuple(s.id for s in members)) if isinstance(entry, tuple) else entry.id)
    problems = _Problems()
    RouteWalk(Flow("r", 1, stages, tuple(route), images=images or {}), problems).run()
    return problems.items


def _codes(problems: list[Diagnostic]) -> list[tuple[str, int]]:
    return [(d.code, d.pos.line) for d in problems]


def test_an_os_survives_what_does_not_rewrite_the_storage_and_is_gone_after_what_does() -> None:
    """os_after: installing puts one there; rewriting the storage without installing one wipes it."""
    assert os_after(INSTALL_OS, False) is True
    assert os_after(Effects(), True) is True
    assert os_after(SIDELOAD, True) is True
    assert os_after(WIPE, True) is False
    assert os_after(Effects(), False) is False


def test_a_stage_wiping_the_storage_between_the_install_and_the_sideload_is_refused() -> None:
    """OS installed, storage rewritten without one, then a sideload: needs-os at the sideload."""
    problems = _walk(
        Stage("os", "x", effects=INSTALL_OS), Stage("wipe", "x", effects=WIPE), Stage("load", "x", effects=SIDELOAD)
    )
    assert _codes(problems) == [("needs-os", 3)]
    assert "(os installs one)" in problems[0].message


def test_a_sideload_after_the_os_passes() -> None:
    """OS installed, then a sideload: nothing to report."""
    assert _walk(Stage("os", "x", effects=INSTALL_OS), Stage("load", "x", effects=SIDELOAD)) == []


def test_an_unordered_group_is_refused_and_requires_makes_it_pass() -> None:
    """In a group the sideload may run before the OS install; requiring the install first fixes it."""
    install, load = Stage("os", "x", effects=INSTALL_OS), Stage("load", "x", effects=SIDELOAD)
    assert _codes(_walk((install, load))) == [("needs-os", 2)]
    assert _walk((install, Stage("load", "x", effects=SIDELOAD, requires=("os",)))) == []


def test_a_unit_running_from_ram_comes_up_without_an_os_until_rebooted() -> None:
    """boots after a RAM boot passes; a reboot first (clears_volatile) leaves only the storage: refused."""
    ram = Stage("ram", "x", effects=Effects(loads_volatile=("mmos",)))
    assert _walk(ram, Stage("up", "x", effects=Effects(boots=True))) == []
    reboot = Stage("up", "x", effects=Effects(boots=True, clears_volatile=True))
    assert _codes(_walk(ram, reboot)) == [("nothing-to-boot", 2)]


def test_the_images_expected_are_compared_with_storage_and_ram() -> None:
    """An image in RAM counts among those the unit holds; naming it makes the check pass."""
    ram = Stage("ram", "x", effects=Effects(loads_volatile=("mmos",)))
    images = {"mmos": Image("mmos", file="m.wim")}
    check = Stage("check", "x", effects=Effects(expects_images=()))
    assert _codes(_walk(ram, check, images=images)) == [("images-expected", 2)]
    named = Stage("check", "x", effects=Effects(expects_images=("mmos",)))
    assert _walk(ram, named, images=images) == []


def test_an_image_of_the_type_needed_in_ram_answers() -> None:
    """needs_image_type is met by an image of that type in RAM, not by one of another type."""
    images = {"t": Image("t", file="t.wim", type="test"), "r": Image("r", file="r.wim", type="retail")}
    need = Stage("need", "x", effects=Effects(needs_image_type="test"))
    assert _walk(Stage("ram", "x", effects=Effects(loads_volatile=("t",))), need, images=images) == []
    problems = _walk(Stage("ram", "x", effects=Effects(loads_volatile=("r",))), need, images=images)
    assert _codes(problems) == [("image-type-missing", 2)]
    assert "r (type: retail)" in problems[0].message


def test_an_abstract_recipe_is_not_held_to_the_storage_rules(tmp_path: Path) -> None:
    """A ready check naming an image no stage of an abstract base loads is left to the recipes extending it."""
    text = (
        "recipe: base\nversion: 1\nabstract: true\nimages:\n  app: {file: app.ipkg}\nstages:\n"
        "  - {id: ready, step: qa.ready_to_ship, with: {os_versions: ['1'], images: [app]}}\n"
    )
    (tmp_path / "base.yaml").write_text(text)
    flow, problems = check_recipe(tmp_path / "base.yaml", Registry.discover())
    assert flow is not None and problems == []
    (tmp_path / "concrete.yaml").write_text(text.replace("abstract: true\n", ""))
    _flow, problems = check_recipe(tmp_path / "concrete.yaml", Registry.discover())
    assert _codes(problems) == [("images-expected", 6)]
