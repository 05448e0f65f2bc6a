"""The built wheel carries what an installed floorflow needs: schemas, workflows, step entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("floorflow-*.whl")
    return built


def test_wheel_carries_schemas_and_workflows(wheel: Path) -> None:
    """Every schema and every example recipe (base recipes included) is inside the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"engine/schemas/{p.name}" for p in (ROOT / "schemas").iterdir() if p.is_file()}
    expected |= {f"engine/workflows/{p.relative_to(ROOT / 'workflows')}" for p in (ROOT / "workflows").rglob("*.yaml")}
    assert expected - names == set()


def test_wheel_declares_every_step_entry_point(wheel: Path) -> None:
    """The wheel's entry points name one step type per module in steps/."""
    archive = zipfile.ZipFile(wheel)
    (entry_file,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
    text = archive.read(entry_file).decode()
    section = text.split("[floorflow.steps]")[1].split("\n[")[0]
    modules = {line.split("= ")[1].split(":")[0] for line in section.splitlines() if "=" in line}
    shipped = {f"steps.{p.stem}" for p in (ROOT / "steps").glob("*.py") if p.stem != "__init__"}
    assert modules == shipped


def test_unpacked_wheel_validates_its_own_workflows(wheel: Path, tmp_path: Path) -> None:
    """Run from the wheel's files alone (no checkout beside them), validate finds the packaged schema."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert not (site / "schemas").exists()
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    recipes = sorted(str(p) for p in (site / "engine" / "workflows").glob("*.yaml"))
    probe = "import engine.resources as r; print(r.schema_path('recipe.schema.json'))"
    where = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", *recipes],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
