"""The recipe README.md shows under "A recipe in short" is one a line can run.

The example is read out of README.md itself, so the page and the test cannot drift apart: it must
validate, and a unit run through it on the simulated hardware must ship.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from engine.yamlload import load_text

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## A recipe in short"
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def readme_recipe() -> str:
    """The first yaml block after the README's recipe heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no '{SECTION}' section"
    found = YAML_BLOCK.search(text.split(SECTION, 1)[1])
    assert found is not None, f"README.md has no yaml block under '{SECTION}'"
    return found.group(1)


def _write_recipe(tmp_path: Path) -> Path:
    """The README's recipe in ``tmp_path``, with a file for each image it declares."""
    text = readme_recipe()
    recipe = tmp_path / "demo.yaml"
    recipe.write_text(text, encoding="utf-8")
    for image in (load_text(text, str(recipe)).get("images") or {}).values():
        path = tmp_path / image["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"image " + image["file"].encode())
    return recipe


def _floorflow(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_recipe_validates(tmp_path: Path) -> None:
    """`floorflow validate` passes the README's recipe with nothing to say."""
    recipe = _write_recipe(tmp_path)
    result = _floorflow(tmp_path, "validate", recipe.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_a_unit_run_through_the_readme_recipe_on_the_simulated_line_ships(tmp_path: Path) -> None:
    """`floorflow run … --sim --unit SN1` exits 0, and the unit's record says it shipped, finalized."""
    recipe = _write_recipe(tmp_path)
    result = _floorflow(tmp_path, "run", recipe.name, "--sim", "--unit", "SN1", "--json-out", "out")
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((tmp_path / "out" / "SN1.json").read_text(encoding="utf-8"))
    assert record["status"] == "shipped", record.get("reason")
    assert record["lifecycle"] == "Complete"
