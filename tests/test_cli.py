"""The `floorflow` command as a user runs it: exit codes, messages, verbs and several files at once.

Exit codes (engine.cli.shared.ExitCode, one meaning under every verb): 0 ok, 1 a recipe has errors,
2 usage error, 3 aborted, 4 station error, 5 a unit failed. A user mistake gets a message, never a
traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VALID = "workflows/sphere-thermostat.yaml"
BAD_LOCK = "tests/recipes/bad/check4_rf_after_lock.yaml"
BAD_STEP = "tests/recipes/bad/unknown_step_type.yaml"


def _floorflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_valid_recipe_exits_0() -> None:
    """A valid recipe exits 0, prints nothing on stdout and says so on stderr."""
    result = _floorflow("validate", VALID)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "1 recipe valid" in result.stderr


def test_recipe_with_errors_exits_1() -> None:
    """A recipe with an error exits 1 and prints the diagnostic on stdout."""
    result = _floorflow("validate", BAD_LOCK)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{BAD_LOCK}:")
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2_naming_it() -> None:
    """A recipe path that does not exist is a usage error (2) naming the file, without a traceback."""
    result = _floorflow("validate", "workflows/no-such-recipe.yaml")
    assert result.returncode == 2
    assert "workflows/no-such-recipe.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_among_valid_ones_exits_2() -> None:
    """One unreadable path among good ones still makes the run a usage error."""
    result = _floorflow("validate", VALID, "workflows/no-such-recipe.yaml")
    assert result.returncode == 2
    assert "no-such-recipe.yaml" in result.stderr


def test_directory_as_recipe_exits_2() -> None:
    """A directory given where a recipe file is expected is a usage error (2)."""
    result = _floorflow("validate", "workflows")
    assert result.returncode == 2
    assert "workflows" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        [],
        ["validate"],
        ["validate", "--format", "xml", VALID],
        ["validate", "--no-such-option", VALID],
    ],
    ids=["unknown-verb", "no-verb", "no-recipe", "bad-format", "unknown-option"],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    """Arguments the parser refuses are a usage error (2) with a usage line and no traceback."""
    result = _floorflow(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_steps_lists_the_shipped_step_types() -> None:
    """`floorflow steps` lists flash.gang with its summary and its parameters."""
    result = _floorflow("steps")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any(line.startswith("flash.gang: ") for line in lines)
    start = next(i for i, line in enumerate(lines) if line.startswith("flash.gang: "))
    assert lines[start + 1].strip().startswith("image")


def test_several_files_report_the_problems_of_each() -> None:
    """Validating several files at once reports every file's problems and exits 1."""
    result = _floorflow("validate", BAD_LOCK, VALID, BAD_STEP)
    assert result.returncode == 1
    reported = {line.split(":", 1)[0] for line in result.stdout.splitlines() if ": error: " in line}
    assert reported == {BAD_LOCK, BAD_STEP}


def test_several_valid_files_exit_0() -> None:
    """Validating several valid files at once exits 0 and counts them."""
    result = _floorflow("validate", VALID, "workflows/phone-wim.yaml", "workflows/phone-reflash.yaml")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "3 recipes valid" in result.stderr


def test_json_format_of_a_valid_recipe_is_an_empty_list() -> None:
    """`--format json` on a valid recipe prints an empty JSON list and exits 0."""
    result = _floorflow("validate", "--format", "json", VALID)
    assert result.returncode == 0
    assert result.stdout.strip() == "[]"


def test_version_exits_0() -> None:
    """`floorflow --version` prints the version and exits 0."""
    result = _floorflow("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("floorflow ")


def test_validate_does_not_import_the_station_runner() -> None:
    """A cold validate (pre-commit, CI) loads neither the runner, rich, transitions nor stdnum: start-up stays small."""
    import subprocess
    import sys
    from pathlib import Path

    recipe = Path(__file__).resolve().parent.parent / "workflows" / "phone-wim.yaml"
    probe = (
        "import sys, contextlib, io\n"
        "from engine.cli import main\n"
        f"with contextlib.redirect_stderr(io.StringIO()): code = main(['validate', {str(recipe)!r}])\n"
        "heavy = [m for m in ('engine.run.runner', 'rich', 'transitions', 'stdnum') if m in sys.modules]\n"
        "print(code, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0 []"


# -- one exit code per meaning, under every verb -----------------------------------------------------------


@pytest.mark.parametrize(
    "verb",
    [
        ["validate"],
        ["graph"],
        ["run", "--sim", "--unit", "SN1"],
        ["simulate", "--units", "10"],
        ["recipe", "release", "--by", "qa"],
    ],
    ids=lambda verb: verb[0] if verb[0] != "recipe" else "recipe-release",
)
def test_a_recipe_with_errors_exits_1_under_every_verb(
    verb: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every verb that reads a recipe exits 1 when it has errors, with the diagnostics, and runs nothing."""
    from engine.cli import main

    store = ["--store", f"sqlite:///{tmp_path / 'line.db'}"] if verb[0] in ("run", "recipe") else []
    code = main([*verb, str(ROOT / BAD_STEP), *store])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "unknown step type 'flash.gnag'" in out + err and "Traceback" not in err
    assert not (tmp_path / "line.db").exists()


@pytest.mark.parametrize("verb", [[], ["run"], ["units", "show"]], ids=["floorflow", "run", "units-show"])
def test_help_ends_with_every_exit_code_and_its_meaning(verb: list[str]) -> None:
    """`floorflow --help`, and each verb's, ends with every exit code and the one meaning it has."""
    from engine.cli.shared import ExitCode

    result = _floorflow(*verb, "--help")
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split("exit codes:")[1].split())
    for code in ExitCode:
        assert f"{code.value} {code.meaning}" in help_text


def _exit_code_table(path: Path) -> dict[int, str]:
    """The rows of the table under the heading ``Exit codes`` in a Markdown file: code to meaning."""
    section = path.read_text().split("# Exit codes\n", 1)[1].split("\n#", 1)[0]
    rows = [line.strip("|").split("|", 1) for line in section.splitlines() if line.startswith("| ")]
    return {int(code.strip()): meaning.strip().replace("\\|", "|") for code, meaning in rows if code.strip().isdigit()}


@pytest.mark.parametrize("doc", ["README.md", "docs/architecture.md"])
def test_the_docs_give_the_exit_codes_the_command_uses(doc: str) -> None:
    """README.md and docs/architecture.md list exactly the exit codes there are, each with its meaning."""
    from engine.cli.shared import ExitCode

    assert _exit_code_table(ROOT / doc) == {code.value: code.meaning for code in ExitCode}


def test_a_run_exits_with_the_worst_of_its_units() -> None:
    """A run's exit code: aborted before station error before a unit failed (scrapped or refused) before ok."""
    from engine.cli.run import exit_code
    from engine.outcome import UnitStatus
    from engine.run.runner import UnitResult

    def code(*statuses: UnitStatus) -> int:
        return exit_code([UnitResult(f"SN{n}", status, "") for n, status in enumerate(statuses)])

    assert code(UnitStatus.SHIPPED, UnitStatus.IN_ROUTE) == 0
    assert code(UnitStatus.SHIPPED, UnitStatus.SCRAPPED) == code(UnitStatus.REFUSED) == 5
    assert code(UnitStatus.SCRAPPED, UnitStatus.ERROR) == 4
    assert code(UnitStatus.ERROR, UnitStatus.ABORTED, UnitStatus.REFUSED) == 3


def test_no_verb_returns_a_bare_number() -> None:
    """The cli's functions return ExitCode members, never a number of their own."""
    import ast

    bare = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / "engine" / "cli").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and type(node.value.value) is int
    ]
    assert not bare, bare
