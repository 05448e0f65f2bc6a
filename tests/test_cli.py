"""The `floorflow` command as a user runs it: exit codes, messages, verbs and several files at once.

Exit codes (engine/cli/commands.py): 0 ok, 1 a recipe has errors, 2 usage error. A user mistake gets a
message, never a traceback.
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
