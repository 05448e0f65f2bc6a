"""How floorflow installs: the wheel carries what an installed floorflow needs (schemas, workflows,
step entry points); the plain install validates, draws and runs without the extras, and each extra's
absence is one line naming it; the pre-commit hook runs validate; mypy covers engine/ and steps/.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from ruamel.yaml import YAML

from engine.extras import OPTIONAL, missing
from engine.outcome import StationError

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = ("simulate", "plots", "postgresql", "instruments", "labels", "screen", "cluster")


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
    """Every schema, every example recipe (base recipes included) and the operator screen's page is inside the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    page = {f"engine/web/static/{p.name}" for p in (ROOT / "engine/web/static").iterdir()}
    assert len(page) >= 3 and page - names == set()
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


# -- the plain install and its extras ---------------------------------------------------------------------


def _name(requirement: str) -> str:
    """The distribution a requirement names, normalized (``psycopg[binary]>=3.1`` -> ``psycopg``)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match[0]).lower()


def _floorflow_without(modules: tuple[str, ...], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``floorflow ARGS`` in a fresh process where ``modules`` cannot be imported, as if not installed."""
    wrapper = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    sys.modules[name] = None\n"
        "from engine.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


PLAIN_RECIPE = """\
recipe: plain-module
version: 1
product: {name: Plain Module, sku: PM-1}
lifecycle: [Blank, Complete]
stations:
  bench: {slots: 2}
images:
  os_recovery: {file: images/recovery-22.11, kind: recovery, platform: azure-sphere, type: retail}
  module_test: {file: images/test.imagepackage, kind: imagepackage, platform: azure-sphere, type: test, temporary: true}
stages:
  - {id: connect, step: device.connect, station: bench, with: {interface: ftdi, timeout_s: 30}}
  - {id: recover_os, step: device.recover, station: bench, with: {image: os_recovery, timeout_s: 600}}
  - {id: load_test_app, step: image.sideload, station: bench, with: {image: module_test}}
  - {id: functional, step: uart.functional, station: bench, with: {tests: [gpio_loopback, i2c_eeprom]}}
  - {id: remove_test_app, step: image.delete, station: bench, with: {image: module_test}}
  - {id: finalize, step: lifecycle.advance, station: bench, with: {to: Complete}, irreversible: true}
"""
"""A line with USB flashing and serial-console tests only: no instrument, no label, no simulation."""


def test_plain_install_validates_draws_and_runs_on_sqlite(tmp_path: Path) -> None:
    """With every optional package unimportable, validate, graph, run --sim (USB and console) and units list work."""
    plain = tuple(OPTIONAL)
    recipes = sorted(str(p) for p in (ROOT / "workflows").glob("*.yaml"))
    validated = _floorflow_without(plain, "validate", *recipes, cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    drawn = _floorflow_without(plain, "graph", recipes[0], cwd=tmp_path)
    assert drawn.returncode == 0 and drawn.stdout.startswith("stateDiagram"), drawn.stderr
    (tmp_path / "plain.yaml").write_text(PLAIN_RECIPE)
    run = ["run", "plain.yaml", "--sim", "--slots", "2", "--unit", "PM1", "--unit", "PM2", "--json-out", "records"]
    ran = _floorflow_without(plain, *run, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    listed = _floorflow_without(
        plain, "units", "list", "--status", "shipped", "--store", "sqlite:///records/floorflow.db", cwd=tmp_path
    )
    assert listed.returncode == 0 and "PM1" in listed.stdout and "PM2" in listed.stdout, listed.stderr


@pytest.mark.parametrize(
    ("absent", "args", "extra"),
    [
        (("simpy", "numpy"), ("simulate", "RECIPE", "--units", "10"), "simulate"),
        (("matplotlib",), ("simulate", "RECIPE", "--units", "10", "--plot", "plots"), "plots"),
        (("psycopg",), ("units", "list", "--store", "postgresql://nobody@127.0.0.1/nothing"), "postgresql"),
    ],
    ids=["simulate", "plot", "postgresql"],
)
def test_a_verb_without_its_extra_says_which_to_install(
    absent: tuple[str, ...], args: tuple[str, ...], extra: str, tmp_path: Path
) -> None:
    """A verb whose extra is not installed exits 2 with one line naming the extra: no traceback, nothing written."""
    recipe = str(ROOT / "workflows" / "sphere-module.yaml")
    result = _floorflow_without(absent, *(recipe if a == "RECIPE" else a for a in args), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"pip install 'floorflow[{extra}]'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_instrument_without_pyvisa_is_a_station_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture meter without the instruments extra stops its step with an ERROR naming the extra."""
    from steps.hardware.instruments import ScpiMeter

    monkeypatch.setitem(sys.modules, "pyvisa", None)
    meter = ScpiMeter("TCPIP0::127.0.0.1::9::SOCKET")
    with pytest.raises(StationError, match=r"fixture meter at TCPIP0::127.0.0.1::9::SOCKET needs pyvisa") as caught:
        meter.read(SimpleNamespace(meter_port=1), "standby_current_ma")
    assert "pip install 'floorflow[instruments]'" in str(caught.value)


def test_a_label_printer_without_the_labels_extra_prints_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A printer keeping previews, without python-barcode and Pillow, refuses before printing, naming the extra;
    one that keeps no previews prints as before."""
    from steps.hardware.printer import ZplPrinter
    from steps.sim.printer import SimPrinterServer

    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "barcode", None)
    with SimPrinterServer() as server:
        with pytest.raises(StationError, match=r"pip install 'floorflow\[labels\]'"):
            ZplPrinter(server.address, tmp_path).print_label("SN1", "^XA^FX unit SN1^FS^XZ", [("serial", "SN1")])
        assert server.labels() == [] and list(tmp_path.iterdir()) == []
        ZplPrinter(server.address).print_label("SN2", "^XA^FX unit SN2^FS^XZ", [("serial", "SN2")])
        assert len(server.wait_labels(1, "SN2")) == 1


def test_missing_names_every_absent_package_and_its_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """missing() is None when all import, else one line naming each absent package and each extra once."""
    assert missing("x", "json") is None
    monkeypatch.setitem(sys.modules, "pyvisa", None)
    monkeypatch.setitem(sys.modules, "pyvisa_py", None)
    monkeypatch.setitem(sys.modules, "PIL", None)
    message = missing("the line", "pyvisa", "pyvisa_py", "PIL")
    assert message == (
        "the line needs pyvisa and pyvisa-py and pillow, which the plain install leaves out: "
        "pip install 'floorflow[instruments,labels]'"
    )


def test_extras_table_agrees_with_pyproject() -> None:
    """Each optional package is in the extra engine.extras names and not in the plain install; each extra
    holds only optional packages; [all] installs every extra and [dev] installs [all]."""
    plain = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {name: {_name(r) for r in reqs} for name, reqs in PYPROJECT["project"]["optional-dependencies"].items()}
    for module, (distribution, extra) in OPTIONAL.items():
        assert extra in EXTRAS, module
        assert _name(distribution) in extras[extra], (module, extra)
        assert _name(distribution) not in plain, module
    optional = {_name(d) for d, _ in OPTIONAL.values()}
    for extra in EXTRAS:
        assert extras[extra] <= optional, extra
    assert PYPROJECT["project"]["optional-dependencies"]["all"] == [f"floorflow[{','.join(EXTRAS)}]"]
    assert "floorflow[all]" in PYPROJECT["project"]["optional-dependencies"]["dev"]


def _third_party_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level module, line, whether at module level outside ``if TYPE_CHECKING``) of each import."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, int, bool]] = []

    def walk(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.split(".")[0], child.lineno, top))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                walk(child, False)
            else:
                walk(child, top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    walk(tree, True)
    own = {"engine", "steps", "__future__"}
    return [(m, line, top) for m, line, top in found if m not in own and m not in sys.stdlib_module_names]


EXTRA_ROOMS = ("engine/simulate/", "engine/store/postgres.py", "engine/web/")
"""Modules loaded only once their extra is known to be there: engine.cli checks before it imports the
simulation or the operator screen, engine.store.open_store before the PostgreSQL backend."""


def test_every_package_imported_is_declared_and_optional_ones_load_late() -> None:
    """Each package engine/ and steps/ import is a plain dependency or an optional one of engine.extras; an
    optional one is imported inside the function using it, but in the modules of EXTRA_ROOMS."""
    plain = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    problems = []
    for path in sorted([*(ROOT / "engine").rglob("*.py"), *(ROOT / "steps").rglob("*.py")]):
        where = path.relative_to(ROOT).as_posix()
        for module, line, top in _third_party_imports(path):
            if module in OPTIONAL:
                if top and not where.startswith(EXTRA_ROOMS):
                    problems.append(f"{where}:{line}: {module} (an extra) is imported when the module loads")
            elif not {_name(d) for d in distributions.get(module, [])} & plain:
                problems.append(f"{where}:{line}: {module} is not among pyproject's dependencies")
    assert not problems, "\n".join(problems)


def test_wheel_requires_only_the_plain_packages(wheel: Path) -> None:
    """The wheel's metadata requires no optional package outside an extra."""
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    required = [
        line.split(":", 1)[1].strip()
        for line in archive.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert required and not {_name(r) for r in required} & {_name(d) for d, _ in OPTIONAL.values()}


# -- pre-commit, CI ---------------------------------------------------------------------------------------


def test_pre_commit_hook_validates_the_recipes_it_picks(tmp_path: Path) -> None:
    """The shipped hook's entry is a real floorflow verb; run as pre-commit would on the repository's own
    files it picks (recipes, not line profiles), it passes; the README's config names the hook."""
    (hook,) = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "floorflow-validate" and hook["language"] == "python" and "yaml" in hook["types"]
    command, *entry = hook["entry"].split()
    assert command in PYPROJECT["project"]["scripts"]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    picked = [
        name
        for name in tracked.splitlines()
        if re.search(hook["files"], name) and not re.search(hook["exclude"], name) and name.endswith((".yaml", ".yml"))
    ]
    assert "workflows/phone-wim.yaml" in picked and "workflows/base/phone.yaml" in picked
    assert not [name for name in picked if "profiles/" in name]
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", *entry, *picked], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = [b for b in re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S) if "repos:" in b]
    assert len(config) == 1
    (repo,) = YAML(typ="safe").load(config[0])["repos"]
    assert [h["id"] for h in repo["hooks"]] == [hook["id"]] and repo["rev"]


def test_ci_type_checks_engine_and_steps() -> None:
    """.ci/run runs mypy over engine/ and steps/, as the README says, and pyproject names both for mypy."""
    assert "\nmypy engine steps\n" in (ROOT / ".ci" / "run").read_text()
    assert "`mypy engine steps`" in (ROOT / "README.md").read_text()
    assert PYPROJECT["tool"]["mypy"]["files"] == ["engine", "steps"]
