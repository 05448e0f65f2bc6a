"""The YAML loader and the recipe reader: positions, refusals and ${params.*} substitution."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.diagnostics import Pos, RecipeError, RecipeSyntaxError
from engine.recipe import load_recipe
from engine.yamlload import MAX_BYTES, MAX_DEPTH, YList, YMap, load_file, load_text

ROOT = Path(__file__).resolve().parent.parent


def _refusal(text: str) -> tuple[Pos, str, str]:
    """(position, code, message) of the one problem ``load_text`` refuses ``text`` for."""
    with pytest.raises(RecipeSyntaxError) as caught:
        load_text(text, "r.yaml")
    (diag,) = caught.value.diagnostics
    return diag.pos, diag.code, diag.message


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


# -- positions ------------------------------------------------------------------------------------


def test_positions_of_keys_and_values_are_one_based() -> None:
    """A mapping records the 1-based line and column of each key and of each value."""
    data = load_text("recipe: demo\nproduct:\n  name: X1\n", "r.yaml")
    assert isinstance(data, YMap)
    assert data.where("recipe", of_key=True) == Pos("r.yaml", 1, 1)
    assert data.where("recipe") == Pos("r.yaml", 1, 9)
    product = data["product"]
    assert product.where("name", of_key=True) == Pos("r.yaml", 3, 3)
    assert product.where("name") == Pos("r.yaml", 3, 9)


def test_positions_of_list_items_are_one_based() -> None:
    """A sequence records where each item starts, block and flow style alike."""
    data = load_text("stages:\n  - id: a\n  - id: b\nlifecycle: [Blank, Done]\n", "r.yaml")
    stages = data["stages"]
    assert isinstance(stages, YList)
    assert [stages.where(0), stages.where(1)] == [Pos("r.yaml", 2, 5), Pos("r.yaml", 3, 5)]
    assert stages[1].where("id") == Pos("r.yaml", 3, 9)
    assert data["lifecycle"].where(1) == Pos("r.yaml", 4, 20)


# -- refusals -------------------------------------------------------------------------------------


def test_duplicate_key_is_refused_naming_the_first_line() -> None:
    """A key written twice is refused at the second one, and the message names the first line."""
    pos, code, message = _refusal("stages:\n  - id: a\n    station: rf\n    step: x.y\n    station: fixture\n")
    assert (pos.line, pos.col, code) == (5, 5, "yaml-duplicate-key")
    assert "duplicate key 'station' (first defined at line 3)" in message


@pytest.mark.parametrize(
    "text",
    [
        'a: !!python/object/apply:os.system ["echo pwned"]\n',
        "a: !!python/name:os.system\n",
        "a: !custom value\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!set {x, y}\n",
    ],
    ids=["python-apply", "python-name", "custom", "binary", "set"],
)
def test_object_tags_are_refused(text: str) -> None:
    """A tag other than the plain str/int/float/bool/null/seq/map ones is refused at its value."""
    pos, code, message = _refusal(text)
    assert (pos.line, pos.col, code) == (1, 4, "yaml-tag")
    assert "is not allowed in a recipe" in message


def test_merge_key_is_refused() -> None:
    """A `<<` merge key is refused at its own position."""
    pos, code, message = _refusal("base: &b {slots: 1}\nstations:\n  rf:\n    <<: *b\n")
    assert (pos.line, pos.col, code) == (4, 5, "yaml-merge")
    assert "merge keys" in message


def test_alias_bomb_is_refused_quickly() -> None:
    """A billion-laughs document (10**9 values through aliases) is refused as too large within seconds."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    start = time.monotonic()
    _pos, code, _message = _refusal("\n".join(lines) + "\n")
    assert code == "yaml-too-large"
    assert time.monotonic() - start < 5


def test_deep_nesting_is_refused() -> None:
    """A document nested deeper than MAX_DEPTH is refused as yaml-too-deep, with a position."""
    depth = MAX_DEPTH * 3
    pos, code, _message = _refusal("a: " + "[" * depth + "]" * depth + "\n")
    assert code == "yaml-too-deep"
    assert pos.line == 1


def test_very_deep_nesting_is_refused_without_crashing(tmp_path: Path) -> None:
    """A 100 KB recipe nested 50,000 deep is refused with exit 1 and yaml-too-deep, not a crash."""
    depth = 50_000
    path = _write(tmp_path, "recipe: deep\nversion: 1\ndescription: " + "[" * depth + "]" * depth + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, f"exit {result.returncode}"
    assert "[yaml-too-deep]" in result.stdout
    assert "Traceback" not in result.stderr


def test_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    """A file of more than MAX_BYTES bytes is refused before it is parsed."""
    path = tmp_path / "big.yaml"
    path.write_bytes(b"description: '" + b"x" * MAX_BYTES + b"'\n")
    with pytest.raises(RecipeSyntaxError) as caught:
        load_file(path)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos(str(path), 1, 1), "yaml-too-large")


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    """A file that is not UTF-8 (here Latin-1) is refused as yaml-encoding."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("description: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(RecipeSyntaxError) as caught:
        load_file(path)
    (diag,) = caught.value.diagnostics
    assert diag.code == "yaml-encoding"
    assert "not UTF-8" in diag.message


def test_syntax_error_gives_its_line() -> None:
    """Broken YAML is a yaml-syntax problem on the line where the parser gave up."""
    pos, code, _message = _refusal("recipe: demo\nversion: 1\n  stages: []\n")
    assert code == "yaml-syntax"
    assert pos.line == 3


def test_huge_integer_is_a_diagnostic_not_a_crash() -> None:
    """An integer too long for Python to convert is refused as a recipe problem."""
    with pytest.raises(RecipeError):
        load_text("version: 1" + "0" * 5000 + "\n", "r.yaml")


# -- params ---------------------------------------------------------------------------------------


RECIPE_WITH_PARAMS = """\
recipe: demo
version: 1
params:
  tx_power_dbm: {min: 14.0, max: 18.0}
  target_power_dbm: 16.5
  rf_region: EU
  os_version: "22.11"
stages:
  - id: rf_verify
    step: rf.verify_config
    with:
      region: "${params.rf_region}"
      target_power_dbm: "${params.target_power_dbm}"
    measurements:
      tx_power_dbm: {limits: "${params.tx_power_dbm}", units: dBm}
  - id: ready
    step: qa.ready_to_ship
    with:
      os_versions: ["OS ${params.os_version} (${params.rf_region})"]
      images: []
"""


def test_whole_value_param_keeps_its_type(tmp_path: Path) -> None:
    """A value that is exactly ${params.X} becomes the param itself, a mapping or a number alike."""
    stages = load_recipe(_write(tmp_path, RECIPE_WITH_PARAMS)).data["stages"]
    limits = stages[0]["measurements"]["tx_power_dbm"]["limits"]
    assert dict(limits) == {"min": 14.0, "max": 18.0}
    assert stages[0]["with"]["target_power_dbm"] == 16.5
    assert isinstance(stages[0]["with"]["target_power_dbm"], float)


def test_partial_param_is_substituted_in_the_string(tmp_path: Path) -> None:
    """${params.X} inside longer text is replaced in place and the result stays a string."""
    stages = load_recipe(_write(tmp_path, RECIPE_WITH_PARAMS)).data["stages"]
    assert list(stages[1]["with"]["os_versions"]) == ["OS 22.11 (EU)"]


def test_unknown_param_gets_did_you_mean(tmp_path: Path) -> None:
    """A misspelt ${params.X} is an unknown-param error at the value, suggesting the right name."""
    text = RECIPE_WITH_PARAMS.replace('${params.rf_region}"\n', '${params.rf_regoin}"\n')
    path = _write(tmp_path, text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos(str(path), 12, 15), "unknown-param")
    assert "unknown parameter 'rf_regoin' in params (did you mean 'rf_region'?)" in diag.message


def test_unknown_nested_param_names_where_it_looked(tmp_path: Path) -> None:
    """A misspelt key under a mapping param is reported with its path and a did-you-mean."""
    text = RECIPE_WITH_PARAMS.replace(
        "tx_power_dbm: {min: 14.0, max: 18.0}", "wifi: {tx_power_dbm: {min: 14.0, max: 18.0}}"
    ).replace("${params.tx_power_dbm}", "${params.wifi.tx_powr_dbm}")
    with pytest.raises(RecipeError) as caught:
        load_recipe(_write(tmp_path, text))
    (diag,) = caught.value.diagnostics
    assert diag.code == "unknown-param"
    assert "unknown parameter 'tx_powr_dbm' in params.wifi (did you mean 'tx_power_dbm'?)" in diag.message


def test_load_recipe_refuses_an_object_tag_as_a_syntax_error(tmp_path: Path) -> None:
    """load_recipe passes the loader's refusal on as RecipeSyntaxError with the file's position."""
    path = _write(tmp_path, "recipe: demo\nversion: 1\ndescription: !!python/object/apply:os.system [id]\n")
    with pytest.raises(RecipeSyntaxError) as caught:
        load_recipe(path)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos(str(path), 3, 14), "yaml-tag")


def test_unquoted_date_is_refused_with_advice() -> None:
    """A value YAML reads as a date is refused with the advice to quote it, not a tag name."""
    pos, code, message = _refusal("recipe: demo\ndescription: 2024-01-01\n")
    assert (code, pos.line) == ("yaml-tag", 2)
    assert "quote it" in message


def test_brackets_in_quotes_and_comments_do_not_count_as_nesting() -> None:
    """Brackets inside quoted text or comments are text: a recipe full of them still loads."""
    many = "[" * (MAX_DEPTH * 2)
    data = load_text(f"a: '{many}'\nb: \"{many}\"  # {many}\nc: [[1]]\n", "r.yaml")
    assert data["a"] == many and data["b"] == many and data["c"] == [[1]]
