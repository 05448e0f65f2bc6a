"""`floorflow validate` against recipes that each hold exactly one mistake, and against the examples.

Every file in ``tests/recipes/bad/`` marks its offending line with a trailing ``# expect: CODE``;
the tests read the expected line and diagnostic code from the file itself, run the real CLI in a
subprocess and check that it reports that one error there, with the message a user needs: the
phrase in ``PHRASES``, or the one the file gives in a comment line ``# says: PHRASE``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.diagnostics import Diagnostic, Pos

ROOT = Path(__file__).resolve().parent.parent
BAD_DIR = ROOT / "tests" / "recipes" / "bad"
BAD = sorted(p.relative_to(ROOT).as_posix() for p in BAD_DIR.glob("*.yaml"))
EXAMPLES = sorted(
    p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("workflows/*.yaml"), *ROOT.glob("workflows/base/*.yaml")]
)
EXPECT = re.compile(r"#\s*expect:\s*([a-z0-9-]+)\s*$")
SAYS = re.compile(r"^#\s*says:\s*(.+?)\s*$", re.MULTILINE)

PHRASES: dict[str, str] = {
    "check1_rework_no_then.yaml": "rework stage 'reseat_cable' has no then",
    "check1_unreachable_rework.yaml": "rework stage 'reseat_cable' is never entered",
    "check2_unbounded_loop.yaml": "loop through rework 'reseat_cable' has no bound",
    "check2_unbounded_loop_beside_bounded.yaml": "'reflash_fw'",
    "check2_unknown_on_fail.yaml": "unknown stage 'reseat_cabel' (did you mean 'reseat_cable'?)",
    "check3_irreversible_retry.yaml": "irreversible stage 'write_identities' has retry max 1",
    "check3_irreversible_twice.yaml": "irreversible stage 'write_identities' can be entered twice",
    "check3_irreversible_twice_across_groups.yaml": "'write_identities' can be entered twice",
    "check4_allowed_from_never.yaml": "only run when the unit is Assembly, and allowed_from Packed",
    "check4_lifecycle_backwards.yaml": "moves the lifecycle back: from DeviceComplete to Module1Complete",
    "check4_rf_after_lock.yaml": "stage 'rf_cal' can only run when the unit is Module1Complete",
    "check5_ram_image_not_rebooted.yaml": "image 'mmos_wim' (loaded by boot_mmos_wim) can still be on",
    "check5_temporary_image_final_advance.yaml": "at final lifecycle advance 'finalize'",
    "check5_temporary_image_left.yaml": "at ready-to-ship stage 'ready'",
    "check6_dumpsize_at_most_one.yaml": "found DUMPSIZE512MB, DUMPSIZE1G",
    "check6_exclusive_boot_keys.yaml": "ENABLE_BOOT_KEYS_TEST and ENABLE_BOOT_KEYS_RETAIL cannot both be set",
    "check6_test_only_in_retail.yaml": "MFGTSHELL can only be used in test-signed images",
    "check6_uefi_charging_exactly_one.yaml": "DISABLE_UEFI_CHARGING must be set, found none",
    "check6_uefi_charging_no_features.yaml": "DISABLE_UEFI_CHARGING must be set, found none",
    "check6_unsupported_in_mmos.yaml": "TESTINFRASTRUCTURE cannot be used in a mmos image",
    "check7_group_deadlock.yaml": "any_order group 'factory_ops' can never finish",
    "check7_group_requires_later.yaml": "requires 'load_test_app', which comes after it on the route",
    "limits_not_finite.yaml": "'.nan' is not a finite number",
    "param_integer_too_large.yaml": "is beyond the 64-bit integers a recipe may hold",
    "schema_unknown_top_key.yaml": "unknown key 'station' (did you mean 'stations'?)",
    "unknown_image.yaml": "unknown image 'factory_tset' (did you mean 'factory_test'?)",
    "unknown_param.yaml": "unknown parameter 'rf_regoin' in params (did you mean 'rf_region'?)",
    "unknown_requires.yaml": "requires unknown stage 'recover_so' (did you mean 'recover_os'?)",
    "unknown_station.yaml": "unknown station 'rf_tester'",
    "unknown_step_type.yaml": "unknown step type 'flash.gnag' (did you mean 'flash.gang'?)",
    "unknown_with_param.yaml": "unknown key 'verfiy' in stages[0].with (did you mean 'verify'?)",
    "yaml_duplicate_key.yaml": "duplicate key 'station' (first defined at line 19)",
    "yaml_python_tag.yaml": "python/object/apply:os.system' is not allowed",
    "yaml_bool_tag_maybe.yaml": "'maybe' is not a value of type '!!bool'",
    "yaml_control_character.yaml": "character U+001B ('\\x1b') is not allowed in YAML text",
}

PHRASES.update(
    {Path(p).name: found[1] for p in BAD if (found := SAYS.search((ROOT / p).read_text(encoding="utf-8")))}
)

ENGINE_BUGS: dict[str, str] = {}
"""Bad recipes the engine does not report yet: file name -> the bug (the test is a strict xfail)."""


def _bad_param(name: str) -> object:
    bug = ENGINE_BUGS.get(Path(name).name)
    marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
    return pytest.param(name, id=Path(name).stem, marks=marks)


def _expected(path: str) -> tuple[int, str]:
    """(line, code) of the one line of ``path`` that carries ``# expect: CODE``."""
    found = [
        (number, match.group(1))
        for number, line in enumerate((ROOT / path).read_text().splitlines(), start=1)
        if (match := EXPECT.search(line))
    ]
    assert len(found) == 1, f"{path} must mark exactly one line with '# expect: CODE'"
    return found[0]


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_bad_recipe_has_a_phrase() -> None:
    """The phrase table and the directory of bad recipes name the same files."""
    assert set(PHRASES) == {Path(p).name for p in BAD}


def test_the_flow_checks_and_loader_problems_are_all_covered() -> None:
    """Every flow check 1..7 of docs/recipes.md has at least one bad recipe."""
    checks = {name.split("_")[0] for name in PHRASES if name.startswith("check")}
    assert checks == {f"check{n}" for n in range(1, 8)}


@pytest.mark.parametrize("path", [_bad_param(p) for p in BAD])
def test_bad_recipe_reports_its_one_error_on_the_marked_line(path: str) -> None:
    """The CLI exits 1 and reports exactly one error, at the marked line, with its code and phrase."""
    line, code = _expected(path)
    result = _validate(path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [ln for ln in result.stdout.splitlines() if ": error: " in ln]
    assert len(errors) == 1, result.stdout
    (error,) = errors
    assert error.startswith(f"{path}:{line}:"), error
    assert "error:" in error and error.endswith(f"[{code}]"), error
    assert PHRASES[Path(path).name] in error


def test_json_format_gives_file_line_column_severity_code_message() -> None:
    """`--format json` prints a list of objects with the six keys and the marked line."""
    path = "tests/recipes/bad/check4_rf_after_lock.yaml"
    line, code = _expected(path)
    result = _validate("--format", "json", path)
    assert result.returncode == 1
    diagnostics = json.loads(result.stdout)
    assert isinstance(diagnostics, list) and len(diagnostics) == 1
    (diag,) = diagnostics
    assert set(diag) == {"file", "line", "column", "severity", "code", "message"}
    assert diag["file"] == path
    assert (diag["line"], diag["severity"], diag["code"]) == (line, "error", code)
    assert isinstance(diag["column"], int) and diag["column"] >= 1
    assert "can only run when the unit is Module1Complete" in diag["message"]


def test_json_format_over_all_bad_recipes_at_once() -> None:
    """Validating every bad recipe in one run reports, per file, its expected code on its marked line."""
    paths = [p for p in BAD if Path(p).name not in ENGINE_BUGS]
    result = _validate("--format", "json", *paths)
    assert result.returncode == 1
    found = {(d["file"], d["line"], d["code"]) for d in json.loads(result.stdout) if d["severity"] == "error"}
    assert found == {(p, *_expected(p)) for p in paths}


@pytest.mark.parametrize("path", EXAMPLES, ids=[Path(p).stem for p in EXAMPLES])
def test_example_workflow_validates_cleanly(path: str) -> None:
    """Each shipped workflow (bases included) validates with exit 0 and prints nothing on stdout."""
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


# -- every diagnostic is one line -----------------------------------------------------------------

LINE = re.compile(r"^[^\s:][^:]*:\d+:\d+: (error|warning): [^\n]* \[[a-z0-9-]+\]$")
"""`path:LINE:COL: severity: message [code]`, nothing else."""

HOSTILE = """\
recipe: hostile
version: 1
"new\\nline\\u001b[31m": 1
stations:
  "a\\rb": {slots: 1}
stages:
  - {id: "x\\u2028y", step: "dev\\u0007ice.connect", station: "q\\u009bz"}
  - {id: b, step: device.connect, with: {interface: "u\\nsb"}}
"""


def test_user_text_in_diagnostics_is_escaped_onto_one_line(tmp_path: Path) -> None:
    """Keys and values holding newlines, CR, ESC, BEL, U+2028 or CSI (written as YAML escapes) are
    echoed escaped: every line of output is one whole diagnostic, and no control character reaches it."""
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE)
    result = _validate(str(path))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == ""
    assert len(lines) > 2
    for line in lines[:-1]:
        assert LINE.match(line), repr(line)
        assert line.isprintable(), repr(line)
    assert "new\\nline\\x1b[31m" in result.stdout


def test_a_file_name_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    """The file name is escaped in each diagnostic too."""
    path = tmp_path / "two\nlines.yaml"
    path.write_text("recipe: Bad Id\nversion: 1\nstages: []\n")
    result = _validate(str(path))
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert "two\\nlines.yaml:1:9: error:" in line


def test_diagnostic_escapes_and_bounds_its_message() -> None:
    """A Diagnostic made with any message prints one printable line of bounded length."""
    diag = Diagnostic(Pos("a\rb.yaml", 1, 1), "error", "x", "one\ntwo\x1b[0m\u2028" + "z" * 5000)
    text = str(diag)
    assert text.isprintable() and "one\\ntwo\\x1b[0m\\u2028" in text
    assert len(text) < 1100
    assert diag.as_json()["file"] == "a\\rb.yaml"


def test_yaml_problems_of_every_kind_print_one_line(tmp_path: Path) -> None:
    """A syntax error, a tag, a duplicate key and an encoding error: each file one line, at its place."""
    files = {
        "syntax.yaml": b"recipe: x\nstages: [\n  {id: a\n",
        "tag.yaml": b"recipe: !!binary aGk=\n",
        "dup.yaml": b"recipe: x\nrecipe: y\n",
        "latin.yaml": b"recipe: caf\xe9\n",
        "nul.yaml": b"recipe: x\x00\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    result = _validate(*(str(tmp_path / name) for name in files))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(files)
    assert all(LINE.match(line) for line in lines), lines
    assert not any(":1:1:" in line for line in lines if "syntax.yaml" not in line), lines


def test_a_bad_file_does_not_stop_the_next(tmp_path: Path) -> None:
    """`!!bool maybe` in the first recipe of a validate run: its error, then the next file is still checked."""
    (tmp_path / "a.yaml").write_text("recipe: a\nversion: !!bool maybe\nstages: []\n")
    (tmp_path / "b.yaml").write_text("recipe: b\nversion: 1\nstages: [{id: c, step: devce.connect}]\n")
    result = _validate(str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [line.split(":")[0].endswith(("a.yaml", "b.yaml")) for line in result.stdout.splitlines()] == [True, True]
    assert "[yaml-value]" in result.stdout and "[unknown-step]" in result.stdout


def test_a_fault_of_floorflow_in_one_file_is_an_internal_error_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unexpected exception while checking one recipe is an `internal` error at its 1:1, and the
    other recipes of the run are checked as usual."""
    import engine.recipe.check
    from engine.cli import main

    real = engine.recipe.check.compile_recipe

    def compile_or_fail(recipe: Any, registry: Any) -> Any:
        if recipe.shown_as.endswith("boom.yaml"):
            raise KeyError("unexpected")
        return real(recipe, registry)

    monkeypatch.setattr(engine.recipe.check, "compile_recipe", compile_or_fail)
    for name in ("boom.yaml", "fine.yaml"):
        (tmp_path / name).write_text(f"recipe: {name[:4]}\nversion: 1\nstages: [{{id: c, step: device.connect}}]\n")
    code = main(["validate", str(tmp_path / "boom.yaml"), str(tmp_path / "fine.yaml")])
    out, err = capsys.readouterr()
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith(f"{tmp_path / 'boom.yaml'}:1:1: error: ") and line.endswith("[internal]")
    assert "KeyError" in line
    assert "1 recipe" not in err


def test_the_cycle_collector_pauses_while_a_recipe_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector is off while a recipe is checked (a large one makes a million objects it would walk
    again and again) and back on after, even when the check fails; left off if it was off before."""
    import gc

    import engine.recipe.check
    from engine.registry import Registry

    real = engine.recipe.check.compile_recipe
    seen: list[bool] = []

    def compile_noting_gc(recipe: Any, registry: Any) -> Any:
        seen.append(gc.isenabled())
        if recipe.shown_as.endswith("boom.yaml"):
            raise KeyError("unexpected")
        return real(recipe, registry)

    monkeypatch.setattr(engine.recipe.check, "compile_recipe", compile_noting_gc)
    text = "recipe: r\nversion: 1\nstages: [{id: c, step: device.connect}]\n"
    for name in ("fine.yaml", "boom.yaml"):
        (tmp_path / name).write_text(text)
    registry = Registry.discover()
    assert gc.isenabled()
    try:
        assert engine.recipe.check.check_recipe(tmp_path / "fine.yaml", registry)[0] is not None
        assert gc.isenabled()
        assert engine.recipe.check.check_recipe(tmp_path / "boom.yaml", registry)[1][0].code == "internal"
        assert gc.isenabled()
        gc.disable()
        engine.recipe.check.check_recipe(tmp_path / "fine.yaml", registry)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert seen == [False, False, False]


# -- checks that stay in proportion to the recipe -------------------------------------------------


def _flow_of(text: str, tmp_path: Path) -> tuple[Any, list[Diagnostic]]:
    from engine.recipe.check import check_recipe
    from engine.registry import Registry

    path = tmp_path / "r.yaml"
    path.write_text(text)
    return check_recipe(path, Registry.discover())


def test_a_wide_group_of_neutral_members_is_walked_once(tmp_path: Path) -> None:
    """3,000 members that change nothing the rules track, some requiring others, are one step of the
    walk, not one per member (which made a wide group cost the square of its width)."""
    from engine.recipe.routewalk import RouteWalk
    from engine.recipe.rules import _Problems

    members = "".join(f"        - {{id: s{i}, step: device.record_id, requires: [s{i - 1}]}}\n" for i in range(1, 3000))
    head = "recipe: w\nversion: 1\nstages:\n  - any_order:\n      id: g\n      stages:\n"
    text = head + "        - {id: s0, step: device.record_id}\n"
    flow, problems = _flow_of(text + members, tmp_path)
    assert flow is not None, problems
    walk = RouteWalk(flow, _Problems())
    walk.run()
    assert walk.work < 20_000


def test_irreversible_stages_no_route_comes_back_to_are_not_carried(tmp_path: Path) -> None:
    """2,000 irreversible stages after the last stage that fails into rework: no route comes back to
    them, so the walk's unit does not carry them (carrying each made the walk grow with their square)."""
    from engine.recipe.routewalk import RouteWalk, _Unit
    from engine.recipe.rules import _Problems

    stages = "".join(f"  - {{id: s{i}, step: device.record_id, irreversible: true}}\n" for i in range(2000))
    text = (
        "recipe: w\nversion: 1\nstages:\n  - {id: a, step: device.record_id}\n"
        "  - {id: b, step: manual.checklist, with: {checks: [x]}, on_fail: fix}\n"
        f"{stages}rework:\n  - {{id: fix, step: manual.checklist, with: {{checks: [y]}}, then: a, max_visits: 2}}\n"
    )
    flow, problems = _flow_of(text, tmp_path)
    assert flow is not None and problems == []
    carried = 0

    class Counted(RouteWalk):
        def _run(self, stage: Any, unit: _Unit) -> list[_Unit]:
            nonlocal carried
            carried = max(carried, len(unit.irreversible))
            return super()._run(stage, unit)

    Counted(flow, _Problems()).run()
    assert carried == 0


def test_an_irreversible_stage_reached_again_through_two_reworks_is_found(tmp_path: Path) -> None:
    """A failure after the stage leads into rework that resumes after it, whose own failure leads into
    rework that resumes before it: the stage can be entered twice, and that is reported."""
    text = (
        "recipe: w\nversion: 1\nstages:\n  - {id: a, step: device.record_id}\n"
        "  - {id: burn, step: device.record_id, irreversible: true}\n"
        "  - {id: c, step: device.record_id}\n"
        "  - {id: d, step: manual.checklist, with: {checks: [x]}, on_fail: near}\n"
        "rework:\n"
        "  - {id: near, step: manual.checklist, with: {checks: [y]}, then: c, max_visits: 2, on_fail: far}\n"
        "  - {id: far, step: manual.checklist, with: {checks: [z]}, then: a, max_visits: 2}\n"
    )
    _flow, problems = _flow_of(text, tmp_path)
    assert [(d.code, d.pos.line) for d in problems] == [("irreversible-twice", 5)]


def test_a_group_with_too_many_orders_is_refused_at_the_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An any_order group of members that each change the unit has 2**N states: past the walk's bound
    it is one route-too-complex error at the group, not a check that never ends."""
    import engine.recipe.routewalk

    monkeypatch.setattr(engine.recipe.routewalk, "MAX_WALK", 5_000)
    images = "".join(f"  i{i}: {{file: i{i}.wim, kind: wim}}\n" for i in range(14))
    members = "".join(f"        - {{id: s{i}, step: image.sideload, with: {{image: i{i}}}}}\n" for i in range(14))
    text = f"recipe: w\nversion: 1\nimages:\n{images}stages:\n  - any_order:\n      id: g\n      stages:\n{members}"
    flow, problems = _flow_of(text, tmp_path)
    assert flow is None
    assert [(d.code, d.pos.line) for d in problems] == [("route-too-complex", 19)]


def test_unknown_names_among_thousands_get_near_misses_without_comparing_each() -> None:
    """Beyond a few hundred names, a suggestion is a name one edit away, found by lookups: thousands of
    unknown references in a large recipe cost each a lookup, not a comparison with every name."""
    import difflib

    from engine.diagnostics import did_you_mean

    names = {f"stage_{i}": None for i in range(5000)}
    real = difflib.get_close_matches
    difflib.get_close_matches = lambda *a, **k: (_ for _ in ()).throw(AssertionError("compared each"))  # type: ignore[assignment]
    try:
        assert did_you_mean("stage_12x", names) == " (did you mean 'stage_12'?)"
        assert did_you_mean("stgae_77", names) == " (did you mean 'stage_77'?)"
        assert did_you_mean("nothing_like", names) == ""
    finally:
        difflib.get_close_matches = real
    assert did_you_mean("stgae_1", ["stage_1", "other"]) == " (did you mean 'stage_1'?)"


def test_the_largest_recipe_accepted_validates(tmp_path: Path) -> None:
    """bench/bigrecipe.py's largest recipe (just under 1 MiB) is valid; one byte more is refused, at 1:1."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bigrecipe import big_recipe, largest_recipe
    finally:
        sys.path.remove(str(ROOT / "bench"))
    text = largest_recipe()
    assert len(text.encode()) <= 1 << 20 < len(big_recipe(text.count("id: s") + 8).encode())
    flow, problems = _flow_of(text, tmp_path)
    assert flow is not None and problems == []
    (tmp_path / "big.yaml").write_text(text + "#" * ((1 << 20) - len(text.encode()) + 1))
    result = _validate(str(tmp_path / "big.yaml"))
    assert result.returncode == 1 and result.stdout.endswith(
        ":1:1: error: file is larger than 1048576 bytes [yaml-too-large]\n"
    )


def test_the_large_cases_bench_validate_times_end_as_it_expects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench/validate.py's large cases: the largest recipe and the extending child are valid, the
    largest with one misspelt key has exactly that error, at its line."""
    from engine.cli import main

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from validate import large_cases
    finally:
        sys.path.remove(str(ROOT / "bench"))
    cases = large_cases(["floorflow"], tmp_path)
    assert [case.name for case in cases] == ["largest_recipe", "largest_recipe_with_error", "largest_extends"]
    for case in cases:
        assert main(case.cmd[1:]) == case.exit_code, case.name
    out = capsys.readouterr().out.splitlines()
    (line,) = out
    wrong = (tmp_path / "largest-error.yaml").read_text().splitlines()
    number = next(i for i, text in enumerate(wrong, 1) if "statoin" in text)
    assert f"largest-error.yaml:{number}:" in line and line.endswith("[schema-unknown-key]")
