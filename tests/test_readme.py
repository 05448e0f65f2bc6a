"""What the README shows works as shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_recipe_is_valid(tmp_path: Path) -> None:
    """The walk-through recipe in the README passes `floorflow validate`."""
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README, re.S) if "\nrecipe:" in b]
    recipe = tmp_path / "demo.yaml"
    recipe.write_text(block)
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(recipe)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_commands() -> None:
    """.ci/run installs and tests with the same commands the README's set-up gives."""
    setup = README.split("## Set-up")[1].split("```sh\n")[1].split("```")[0].splitlines()
    install, test = setup[0], setup[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[dev]'" in install and "pip install -e '.[dev]'" in ci
    assert test == "python -m pytest" and "\npython -m pytest" in ci
    assert "floorflow validate" in install and "floorflow validate" in ci
