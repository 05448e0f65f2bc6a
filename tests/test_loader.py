"""The YAML loader and the recipe reader: positions, refusals and ${params.*} substitution."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.diagnostics import Pos, RecipeError, RecipeSyntaxError
from engine.recipe.load import load_recipe
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
    first_line_comment = load_text(f"# {many}\nc: [[1]]", "r.yaml")  # no final line break
    assert first_line_comment == {"c": [[1]]}


def test_a_plain_scalar_met_again_reads_as_it_did_the_first_time() -> None:
    """Plain scalars are resolved once and remembered: each reads the same every time it recurs."""
    text = "[1, 1, true, true, null, null, 1.5, 1.5, x, x, '1', '1', 0x1f, 0x1f]"
    for _ in range(2):
        assert load_text(text, "r.yaml") == [1, 1, True, True, None, None, 1.5, 1.5, "x", "x", "1", "1", 31, 31]


# -- core tags and the values they can hold -------------------------------------------------------

TAGGED_REFUSALS = [
    "!!bool maybe",
    "!!bool",
    "!!bool yes",
    "!!int x",
    "!!int",
    "!!int 0x",
    "!!int 1.5",
    "!!float y",
    "!!float .nanx",
    "!!float",
    "!!null z",
    "!!null 0",
]


@pytest.mark.parametrize("value", TAGGED_REFUSALS)
def test_core_tag_with_a_value_it_cannot_hold_is_refused_at_the_value(value: str) -> None:
    """`!!bool maybe`, `!!int x`, `!!null z` ...: one yaml-value problem at the value, no KeyError or IndexError."""
    pos, code, message = _refusal(f"recipe: demo\nversion: {value}\n")
    assert (pos, code) == (Pos("r.yaml", 2, 10), "yaml-value")
    assert "is not a value of type '!!" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("!!bool true", True), ("!!int 12", 12), ('!!int "12"', 12), ("!!float 1", 1.0), ("!!null ~", None)],
)
def test_core_tag_with_a_value_of_its_type_is_read(value: str, expected: object) -> None:
    """A core tag on text that reads as its type unquoted gives that value (``!!float 1`` is 1.0)."""
    data = load_text(f"v: {value}\n", "r.yaml")
    assert data["v"] == expected and type(data["v"]) is type(expected)


@pytest.mark.parametrize(
    "value", ["!!binary aGk=", "!!timestamp 2024-01-01", "!!set {a}", "!!omap [a: 1]", "!!str [1]"]
)
def test_other_core_tags_are_refused_by_name(value: str) -> None:
    """Tags that construct other objects (binary, timestamp, set, omap), or a scalar tag on a list, are yaml-tag."""
    pos, code, _message = _refusal(f"v: {value}\n")
    assert (pos.line, code) == (1, "yaml-tag")


def test_a_failing_value_constructor_is_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the YAML constructor raises for a value becomes a yaml-value problem at that value."""
    from ruamel.yaml.constructor import SafeConstructor

    def broken(self: object, node: object) -> object:
        raise KeyError("boom")

    monkeypatch.setattr(SafeConstructor, "construct_yaml_int", broken)
    monkeypatch.setitem(SafeConstructor.yaml_constructors, "tag:yaml.org,2002:int", broken)
    pos, code, _message = _refusal("a: 1\nb: 2\n")
    assert (pos, code) == (Pos("r.yaml", 1, 4), "yaml-value")


# -- characters YAML does not allow ---------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x9b", "\ufffe"])
def test_control_character_is_refused_at_its_line_and_column(char: str) -> None:
    """A raw control character is one yaml-character problem at its own line and column, not at 1:1."""
    pos, code, message = _refusal(f"recipe: demo\ndescription: 'ab{char}c'\n")
    assert (pos, code) == (Pos("r.yaml", 2, 17), "yaml-character")
    assert "\n" not in message and char not in message
    assert f"U+{ord(char):04X}" in message


def test_tab_and_line_breaks_are_yaml_text() -> None:
    """Tabs, CR LF line ends and non-ASCII letters are allowed where YAML allows them."""
    data = load_text("a: 'x\ty'\r\nb: ключ\r\n", "r.yaml")
    assert data == {"a": "x\ty", "b": "ключ"}


# -- numbers a recipe cannot use ------------------------------------------------------------------


@pytest.mark.parametrize("number", [".nan", ".NaN", ".inf", "-.inf", "+.INF", "1e400", "-1e400", "!!float .inf"])
def test_non_finite_number_is_refused_where_finite_numbers_are_asked_for(number: str) -> None:
    """With finite=True (recipes), .nan, .inf and 1e400 are non-finite-number at their position."""
    with pytest.raises(RecipeSyntaxError) as caught:
        load_text(f"limits:\n  min: {number}\n", "r.yaml", finite=True)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos("r.yaml", 2, 8), "non-finite-number")


def test_integer_beyond_64_bits_is_refused_where_finite_numbers_are_asked_for() -> None:
    """With finite=True, 1 followed by 400 zeros is number-range at its position; 2**63 - 1 is fine."""
    with pytest.raises(RecipeSyntaxError) as caught:
        load_text("p: 1" + "0" * 400 + "\n", "r.yaml", finite=True)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos("r.yaml", 1, 4), "number-range")
    assert len(diag.message) < 200
    assert load_text(f"p: {2**63 - 1}\nq: -{2**63 - 1}\n", "r.yaml", finite=True) == {"p": 2**63 - 1, "q": 1 - 2**63}


def test_other_files_may_hold_any_number() -> None:
    """Without finite=True (profiles, configs check their own numbers) .inf and large integers load."""
    data = load_text("a: .inf\nb: 1" + "0" * 30 + "\n", "r.yaml")
    assert data["a"] == float("inf") and data["b"] == 10**30


def test_recipe_with_a_non_finite_limit_is_refused(tmp_path: Path) -> None:
    """load_recipe reads with finite=True: limits {min: .nan, max: .inf} are refused at .nan."""
    path = _write(tmp_path, "recipe: d\nversion: 1\nparams:\n  p: {min: .nan, max: .inf}\nstages: []\n")
    with pytest.raises(RecipeSyntaxError) as caught:
        load_recipe(path)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos(str(path), 4, 12), "non-finite-number")


# -- files that are not regular -------------------------------------------------------------------


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """A FIFO is opened without blocking and refused as file-not-regular."""
    fifo = tmp_path / "r.yaml"
    os.mkfifo(fifo)
    with pytest.raises(RecipeSyntaxError) as caught:
        load_file(fifo)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos(str(fifo), 1, 1), "file-not-regular")


def test_unreadable_recipe_is_a_diagnostic_not_an_os_error(tmp_path: Path) -> None:
    """A recipe that cannot be opened (here: a directory entry that is a dangling link) is file-unreadable at 1:1."""
    path = tmp_path / "r.yaml"
    path.symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos(str(path), 1, 1), "file-unreadable")


def test_non_utf8_byte_is_refused_at_its_line(tmp_path: Path) -> None:
    """The first byte that is not UTF-8 is named by its line and column, not 1:1."""
    path = tmp_path / "r.yaml"
    path.write_bytes(b"recipe: demo\ndescription: caf\xe9\n")
    with pytest.raises(RecipeSyntaxError) as caught:
        load_file(path)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos(str(path), 2, 17), "yaml-encoding")


def test_non_utf8_byte_is_placed_in_characters_and_lines_as_the_parser_counts(tmp_path: Path) -> None:
    """Its column counts characters, not bytes (é is two), and a CR or U+2028 starts a line, as in the parser."""
    path = tmp_path / "r.yaml"
    path.write_bytes("recipe: demo\rdescription: café\u2028x: é".encode() + b"\xff")
    with pytest.raises(RecipeSyntaxError) as caught:
        load_file(path)
    (diag,) = caught.value.diagnostics
    assert (diag.pos, diag.code) == (Pos(str(path), 3, 5), "yaml-encoding")


# -- params coercion ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [10**400, float("nan"), float("inf"), -float("inf")])
def test_float_parameter_refuses_what_is_not_a_finite_float(value: object) -> None:
    """coerce to float: an integer too large for a float, .nan or ±.inf is a TypeError, never OverflowError."""
    from engine.recipe.params import coerce

    with pytest.raises(TypeError, match="expected a finite number"):
        coerce(value, float)
    assert coerce(16, float) == 16.0


@pytest.mark.parametrize("bound", [".nan", ".inf", "1" + "0" * 400])
def test_compiler_refuses_limits_it_cannot_compare_with(bound: str) -> None:
    """A recipe read without the loader's check (built in code) still gets bad-limits for .nan, .inf
    or an integer too large for a float, at the limits."""
    from engine.recipe.compile import compile_recipe
    from engine.recipe.load import LoadedRecipe
    from engine.registry import Registry

    text = (
        "recipe: d\nversion: 1\nstages:\n  - id: m\n    step: rf.measure\n    with: {band: wifi-2g4, channels: [1]}\n"
        f"    measurements:\n      p: {{limits: {{min: 1, max: {bound}}}}}\n"
    )
    recipe = LoadedRecipe(Path("r.yaml"), "r.yaml", load_text(text, "r.yaml"))
    _flow, problems = compile_recipe(recipe, Registry.discover())
    assert [(d.code, d.pos.line) for d in problems] == [("bad-limits", 8)]


def test_positions_count_line_breaks_as_the_parser_does() -> None:
    """A control character after lone CR line breaks is placed on the line the parser would name."""
    pos, code, _message = _refusal("a: 1\rb: 2\r\nc: 'x\x01'\n")
    assert (pos, code) == (Pos("r.yaml", 3, 6), "yaml-character")


def test_an_error_at_the_end_of_a_file_without_a_final_line_break_points_inside_it() -> None:
    """The parser names the line after the last for an unfinished file; the diagnostic names the last line's end."""
    pos, code, _message = _refusal("recipe: x\nstages:\n  - id: a\n  - {id: b\n  ste")
    assert code == "yaml-syntax"
    assert (pos.line, pos.col) == (5, 6)


@pytest.mark.parametrize("line_break", ["\n", "\r"])
def test_an_empty_value_at_the_end_of_a_file_without_a_final_line_break_is_placed_inside_it(line_break: str) -> None:
    """The parser marks an empty value ending the file a line past it; its node is placed at the last line's end."""
    text = line_break.join(["a:", "  b:", "    ? k"])
    data = load_text(text, "r.yaml")
    assert data["a"]["b"].where("k") == Pos("r.yaml", 3, 8)
