"""`floorflow validate` says what is wrong in a recipe's words: indentation, what a key takes, stages
by id, each problem once, and the recipe whose route made an inherited stage wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.diagnostics import Diagnostic, Pos, RecipeSyntaxError
from engine.recipe.check import check_recipe, reported_once
from engine.recipe.schemawords import recipe_place
from engine.registry import Registry
from engine.yamlload import load_text


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover()


def _syntax_error(text: str) -> Diagnostic:
    with pytest.raises(RecipeSyntaxError) as caught:
        load_text(text, "r.yaml")
    (diag,) = caught.value.diagnostics
    return diag


def _errors(tmp_path: Path, text: str, registry: Registry) -> list[Diagnostic]:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return [d for d in check_recipe(path, registry)[1] if d.severity == "error"]


def test_a_key_as_far_from_two_keys_names_both() -> None:
    """A key indented between a mapping's keys and its parent's, as far from each, names both."""
    diag = _syntax_error("stations:\n  smt:\n    slots: 1\n   rf: {slots: 1}\n")
    assert diag.message == (
        "this line is indented between 'smt' at line 2, column 3 and 'slots' at line 3, column 5: "
        "line it up with one of them"
    )
    assert (diag.pos.line, diag.pos.col) == (4, 4)


def test_a_key_at_the_dash_of_a_list_item_is_less_than_the_item_s_keys() -> None:
    """A key written under the '-' of a list item belongs beside the item's keys, after the '- '."""
    diag = _syntax_error("stages:\n  - id: a\n  step: x\n")
    assert "indented less than the key it belongs beside ('id' at line 2, column 5, after the '- ')" in diag.message


def test_a_list_item_among_keys_says_so() -> None:
    """A '-' where a mapping's keys go is a list item where a key is expected."""
    diag = _syntax_error("stations:\n  smt:\n    slots: 1\n  - rf\n")
    assert diag.message.startswith("a list item where a key is expected (like 'smt' at line 2, column 3)")


def test_a_plain_value_holding_colon_space_is_told_to_be_quoted() -> None:
    """`description: note: x` is no indentation mistake: the value must be quoted."""
    diag = _syntax_error("recipe: a\ndescription: note: x\n")
    assert diag.message.startswith("a value that holds ': ' must be quoted")


def test_other_syntax_errors_keep_the_parser_s_words() -> None:
    """A block list's '-' inside a [...] list and an unclosed {...} are no indentation mistakes: the
    parser's words stay."""
    assert "did not find expected node content" in _syntax_error("recipe: x\nstages: [a,\n   - b]\n").message
    assert "did not find expected ',' or '}'" in _syntax_error("recipe: x\nstages: [\n  {id: a\n").message


def test_stages_are_named_by_id_wherever_they_are() -> None:
    """A top-level stage, a member of a group with or without an id, a group and a rework stage."""
    data = load_text(
        "stages:\n  - {id: a}\n  - any_order: {id: g, stages: [{id: m}]}\n  - any_order: {stages: [{id: n}]}\n"
        "rework:\n  - {id: fix}\n",
        "r.yaml",
    )
    assert recipe_place(data, ["stages", 0, "retry"]) == "stage 'a', retry"
    assert recipe_place(data, ["stages", 1, "any_order", "stages", 0, "with", "x"]) == "stage 'm' in group 'g', with.x"
    assert recipe_place(data, ["stages", 1, "any_order"]) == "group 'g'"
    assert recipe_place(data, ["stages", 2, "any_order", "stages", 0]) == "stage 'n'"
    assert recipe_place(data, ["stages", 2, "any_order"]) == "stages[2].any_order"
    assert recipe_place(data, ["rework", 0, "then"]) == "rework stage 'fix', then"
    assert recipe_place(data, ["stations", "smt", "slots"]) == "stations.smt.slots"


def test_a_mapping_key_given_a_number_says_what_it_takes(tmp_path: Path, registry: Registry) -> None:
    """The hint comes from the schema of any key that takes a mapping: a station given a number."""
    (diag,) = _errors(tmp_path, "recipe: r\nversion: 1\nstations: {smt: 1}\nstages: []\n", registry)
    assert diag.message == "stations: smt takes {slots: N, description: TEXT}, not 1"


def test_a_problem_found_twice_at_one_place_is_reported_once(tmp_path: Path, registry: Registry) -> None:
    """An unknown image named twice in one list is one error."""
    text = (
        "recipe: r\nversion: 1\nstages:\n  - id: ship\n    step: qa.ready_to_ship\n"
        "    with: {os_versions: ['1'], images: [nope, nope]}\n"
    )
    assert [(d.code, d.pos.line) for d in _errors(tmp_path, text, registry)] == [("unknown-image", 6)]


def test_how_a_place_was_reached_does_not_make_a_second_problem() -> None:
    """The same problem, once as such and once with how it was reached, is kept once, as such; a
    problem only reached one way keeps its how."""
    at = Pos("r.yaml", 3, 5)
    plain = Diagnostic(at, "error", "lifecycle-backwards", "stage 'b' moves the lifecycle back")
    reached = Diagnostic(at, "error", "lifecycle-backwards", "stage 'b' moves the lifecycle back (through rework 'f')")
    other = Diagnostic(
        Pos("r.yaml", 4, 5), "error", "lifecycle-backwards", "stage 'c' moves it back (through rework 'f')"
    )
    assert reported_once([reached, plain, other, plain]) == [plain, other]


BASE = """\
recipe: base
version: 1
abstract: true
stages:
  - id: connect
    step: device.connect
    station: smt
"""
CHILD = """\
recipe: sphere-thermostat
version: 1
extends: base.yaml
stations:
  bench: {slots: 1}
stages: []
"""


def test_an_inherited_stage_wrong_in_a_child_names_the_child(tmp_path: Path, registry: Registry) -> None:
    """The base alone is fine; in the child's route its stage names an unknown station: the error
    points at the base's line and names the recipe whose route made it one."""
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "child.yaml").write_text(CHILD)
    assert _errors(tmp_path, BASE, registry) == []
    flow, problems = check_recipe(tmp_path / "child.yaml", registry, shown_as="workflows/sphere-thermostat.yaml")
    assert flow is None
    (diag,) = problems
    assert (diag.pos.file, diag.pos.line, diag.code) == ("workflows/base.yaml", 7, "unknown-station")
    assert diag.message.endswith(" (in the route of recipe 'sphere-thermostat', workflows/sphere-thermostat.yaml)")


def test_a_problem_in_the_checked_file_names_no_route(tmp_path: Path, registry: Registry) -> None:
    """A problem in the recipe checked itself is not told whose route it is in."""
    (tmp_path / "base.yaml").write_text(BASE.replace("station: smt", "station: bench"))
    stage = "stages:\n  - {id: x, step: device.connect, station: rf}"
    (tmp_path / "child.yaml").write_text(CHILD.replace("stages: []", stage))
    (diag,) = check_recipe(tmp_path / "child.yaml", registry)[1]
    assert diag.code == "unknown-station" and "in the route of" not in diag.message
