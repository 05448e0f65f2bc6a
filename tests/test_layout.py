"""The house's plan, checked from the source: imports run one way, modules and functions stay small, the
engine names no step type, and docs/architecture.md names every module.

Each failure names the file and line that break the rule. docs/architecture.md describes the rooms and
the directions these tests hold.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
STEPS = ROOT / "steps"

CORE = "core"
ROOMS = ("recipe", "run", "store", "report", "simulate", "web", "linebus", "cli")
ALLOWED: dict[str, frozenset[str]] = {
    "steps": frozenset({CORE, "steps"}),
    CORE: frozenset({CORE}),
    "recipe": frozenset({CORE, "recipe"}),
    "store": frozenset({CORE, "store"}),
    "report": frozenset({CORE, "store", "report"}),
    "run": frozenset({CORE, "recipe", "store", "report", "linebus", "run"}),
    "simulate": frozenset({CORE, "recipe", "run", "simulate"}),
    "web": frozenset({CORE, "recipe", "store", "report", "linebus", "run", "web"}),
    "linebus": frozenset({CORE, "store", "linebus"}),
    "cli": frozenset({CORE, *ROOMS, "steps"}),
}
"""The parts each part may import (besides the standard library and third-party packages)."""

CLI_DISPATCH = frozenset({"engine.cli", "engine.cli.__main__", "engine.cli.commands"})
"""The cli modules that hand argv to a verb; a verb module imports only ``engine.cli.shared`` of its room."""

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Module:
    name: str
    """Dotted: ``engine.run.runner``."""
    shown: str
    """Its path from the repository's root: ``engine/run/runner.py``."""
    text: str

    @property
    def package(self) -> bool:
        return self.shown.endswith("__init__.py")

    @property
    def tree(self) -> ast.Module:
        return ast.parse(self.text, self.shown)


def _modules(top: Path) -> list[Module]:
    found = []
    for path in sorted(top.rglob("*.py")):
        shown = path.relative_to(ROOT)
        parts = list(shown.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append(Module(".".join(parts), str(shown), path.read_text()))
    return found


def part_of(name: str) -> str | None:
    """The part a dotted module name belongs to: a room, the core (a top-level engine module), steps;
    None for anything else (the standard library, third-party packages)."""
    parts = name.split(".")
    if parts[0] == "steps":
        return "steps"
    if parts[0] != "engine":
        return None
    if len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return CORE


def imports(module: Module) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything the module imports, anywhere in it (inside functions too),
    including ``importlib.import_module("…")`` with a literal name. ``from A import B`` yields ``A.B``
    when B is a module or package, else ``A``."""
    package = module.name if module.package else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if _is_module(full) else base
        elif isinstance(node, ast.Call) and _names_import_module(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _names_import_module(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("import_module", "__import__")


def wrong_imports(modules: list[Module]) -> list[str]:
    """Every import that runs against the allowed directions, as ``file:line: …``."""
    wrong = []
    for module in modules:
        here = part_of(module.name)
        assert here is not None
        for line, target in imports(module):
            there = part_of(target)
            if there is None or target == module.name:
                continue
            where = f"{module.shown}:{line}: {module.name} ({here}) imports {target} ({there})"
            if there == "cli" and here != "cli":
                wrong.append(f"{where}: nothing outside engine.cli imports it")
            elif there not in ALLOWED[here]:
                wrong.append(f"{where}: {here} may import only {', '.join(sorted(ALLOWED[here]))}")
            elif here == "cli" == there and module.name not in CLI_DISPATCH and target != "engine.cli.shared":
                wrong.append(f"{where}: a verb imports no other verb; shared pieces live in engine.cli.shared")
    return wrong


def too_long(modules: list[Module]) -> list[str]:
    """Modules over MAX_MODULE_LINES lines and functions over MAX_FUNCTION_LINES (``def`` to last line)."""
    long = []
    for module in modules:
        lines = len(module.text.splitlines())
        if lines > MAX_MODULE_LINES:
            long.append(f"{module.shown}:1: {lines} lines (at most {MAX_MODULE_LINES} a module)")
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(
                        f"{module.shown}:{node.lineno}: {node.name} is {length} lines (at most {MAX_FUNCTION_LINES})"
                    )
    return long


def step_type_names() -> set[str]:
    """The step types the project registers (pyproject's ``floorflow.steps`` entry points)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(project["project"]["entry-points"]["floorflow.steps"])


def named_step_types(modules: list[Module], names: set[str]) -> list[str]:
    """Every string literal in the engine that is a registered step type's name."""
    named = []
    for module in modules:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                named.append(f"{module.shown}:{node.lineno}: names the step type {node.value!r}")
    return named


def _report(problems: list[str]) -> str:
    return "\n" + "\n".join(problems)


# -- the rules, over the tree ------------------------------------------------------------------------------


def test_imports_run_one_way() -> None:
    """steps → core; recipe, store → core; report → core, store; run → core, recipe, store, report;
    simulate → core, recipe, run; web → run and what run may import; linebus → core, store; cli → anything;
    nothing imports cli;
    a verb imports no other verb."""
    problems = wrong_imports(_modules(ENGINE) + _modules(STEPS))
    assert not problems, _report(problems)


def test_modules_and_functions_stay_small() -> None:
    """No module in engine/ or steps/ is over 400 lines, and no function over 60."""
    problems = too_long(_modules(ENGINE) + _modules(STEPS))
    assert not problems, _report(problems)


def test_the_engine_names_no_step_type() -> None:
    """No registered step type's name appears as a string literal in engine/: the engine reads what a
    step type declares, never which one it is."""
    names = step_type_names()
    assert "flash.gang" in names  # the names are read, or this test checks nothing
    problems = named_step_types(_modules(ENGINE), names)
    assert not problems, _report(problems)


def test_architecture_names_every_engine_module() -> None:
    """docs/architecture.md names every module and room of engine/ by its dotted name (``engine.run.runner``,
    ``engine.run``), whole: ``engine.run`` inside ``engine.run.runner`` does not count."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [m.shown for m in _modules(ENGINE) if not re.search(rf"{re.escape(m.name)}(?!\w|\.\w)", text)]
    assert not missing, "docs/architecture.md does not name:" + _report(missing)


def test_architecture_names_only_what_there_is() -> None:
    """Every ``engine.…`` name in docs/architecture.md is a module there is, or a name one defines."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    stale = sorted({name for name in re.findall(r"\bengine(?:\.\w+)+", text) if not _defined(name)})
    assert not stale, "docs/architecture.md names what is not there:" + _report(stale)


def _defined(dotted: str) -> bool:
    """``engine.run.runner`` (a module) or ``engine.run.runner.StationRunner`` (a name it defines)."""
    if _is_module(dotted):
        return True
    module, _, name = dotted.rpartition(".")
    if not _is_module(module):
        return False
    path = ROOT.joinpath(*module.split("."))
    source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
    tree = ast.parse(source.read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    defined |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    return name in defined


def test_every_room_has_its_import_directions() -> None:
    """Every room of engine/ is one the import rules know (a new room gets its directions first)."""
    rooms = {p.name for p in ENGINE.iterdir() if (p / "__init__.py").is_file()}
    assert rooms <= set(ROOMS), f"rooms the import rules do not know: {sorted(rooms - set(ROOMS))}"


# -- the checks catch what they are for --------------------------------------------------------------------


def _fake(name: str, source: str) -> Module:
    """A module of that name holding ``source`` instead of what it holds."""
    return Module(name, name.replace(".", "/") + ".py", source)


@pytest.mark.parametrize(
    ("name", "source", "said"),
    [
        ("engine.recipe.check", "from engine.run.runner import StationRunner\n", ":1: engine.recipe.check (recipe)"),
        ("engine.store.sqlstore", "\n\ndef f():\n    import engine.report.export\n", ":4: engine.store.sqlstore"),
        ("engine.flow", "from engine.recipe import compile\n", "core may import only core"),
        ("engine.run.runner", "from engine.cli.run import read_units\n", "nothing outside engine.cli imports it"),
        ("engine.simulate.line", "from engine.store import open_store\n", "simulate may import only"),
        ("engine.report.html", "from engine.run import runner\n", "imports engine.run.runner (run)"),
        ("steps.flash_gang", "from engine.run.console import progress_for\n", "steps may import only core, steps"),
        ("engine.run.runner", "from steps.sim import SimLine\n", "run may import only"),
        ("engine.cli.run", "from engine.cli.records import open_existing\n", "a verb imports no other verb"),
        ("engine.cli.simulate", "from engine.cli import main\n", "a verb imports no other verb"),
        ("engine.recipe.graph", "import importlib\nimportlib.import_module('engine.run.machine')\n", ":2:"),
        ("engine.recipe.graph", "from ..run import machine\n", "imports engine.run.machine (run)"),
        ("engine.recipe.check", "from . import compile\nfrom .. import outcome\nfrom ..store import rows\n", ":3:"),
    ],
)
def test_a_wrong_import_is_named_at_its_line(name: str, source: str, said: str) -> None:
    """An import against the directions (at the top, inside a function, relative, or by import_module)
    fails, naming the file and line; the allowed imports beside it do not."""
    problems = wrong_imports([_fake(name, source)])
    assert len(problems) == 1 and said in problems[0], problems
    assert problems[0].startswith(_fake(name, source).shown + ":"), problems


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("engine.run.runner", "from engine.report.text import left_the_line\nimport json\nimport rich\n"),
        ("engine.cli.commands", "def f():\n    from engine.cli.run import run_station\n"),
        ("engine.cli.run", "from engine.cli.shared import ExitCode\nfrom engine.simulate import simulate\n"),
        ("steps.flash_gang", "from engine.step import StepType\nfrom steps.common import images\n"),
        ("engine.simulate.line", "from engine.run.guards import Guards\nfrom engine.recipe.routewalk import walk\n"),
    ],
)
def test_a_right_import_passes(name: str, source: str) -> None:
    """Imports along the allowed directions, and the dispatcher's of its verbs, are not reported."""
    assert wrong_imports([_fake(name, source)]) == []


def test_a_long_function_and_a_long_module_are_named() -> None:
    """A function of 61 lines and a module of 401 are reported with their file and line; 60 and 400 pass."""
    body = "    x = 1\n" * 59
    assert too_long([_fake("engine.fits", "def fine():\n" + body + "\n" * (400 - 60))]) == []
    over = _fake("engine.over", "\n\ndef long():\n" + body + "    x = 2\n" + "\n" * (401 - 63))
    assert too_long([over]) == [
        "engine/over.py:1: 401 lines (at most 400 a module)",
        "engine/over.py:3: long is 61 lines (at most 60)",
    ]


def test_a_step_type_named_in_the_engine_is_found() -> None:
    """A step type's name as a string literal in an engine module is reported at its line; the same
    words inside a longer text are not."""
    source = '"""Mentions flash.gang in passing."""\n\nDEFAULTS = {\n    "flash.gang": 30.0,\n}\n'
    problems = named_step_types([_fake("engine.simulate.profile", source)], {"flash.gang"})
    assert problems == ["engine/simulate/profile.py:4: names the step type 'flash.gang'"]
