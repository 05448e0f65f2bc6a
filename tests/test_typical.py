"""What a step type declares as typical is what ``floorflow simulate`` uses, and the engine names no step type.

A step type's ``typical`` (time, failure chance, operator) stands in the shipped default profile's
place for that type; a profile given still wins with its own ``steps:``, ``stages:`` and
``defaults:``. The step types here are the test's own, in a private registry.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.diagnostics import RecipeError
from engine.flow import Flow
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.simulate import load_profile, simulate
from engine.step import Duration, NoParams, StepType, Typical, param

ROOT = Path(__file__).resolve().parent.parent


class Soak(StepType):
    name = "acme.soak"
    summary = "Keep the unit powered for a while."
    Params = NoParams
    typical = Typical(Duration.fixed(1800), fail=0.25)


class Grade(StepType):
    name = "acme.grade"
    summary = "Have the operator grade the housing."
    Params = NoParams
    typical = Typical(Duration.triangular(20, 30, 70), fail=0.0, operator=True)


class Plain(StepType):
    name = "acme.plain"
    summary = "Declare nothing typical."
    Params = NoParams


@dataclass(frozen=True)
class BadParams:
    note: str = param("A note.", default="")


class Bad(StepType):
    name = "acme.bad"
    summary = "Declare a failure chance above one."
    Params = BadParams
    typical = Typical(Duration.fixed(5), fail=1.5)


def _registry() -> Registry:
    registry = Registry()
    for step_type in (Soak, Grade, Plain, Bad):
        registry.register(step_type, origin="tests/test_typical.py")
    return registry


REGISTRY = _registry()


def _flow(tmp_path: Path, steps: tuple[str, ...]) -> Flow:
    stages = "\n".join(f"  - {{id: s{i}, step: {step}, station: cell}}" for i, step in enumerate(steps))
    path = tmp_path / "recipe.yaml"
    path.write_text(f"recipe: typical\nversion: 1\nstations:\n  cell: {{slots: 1}}\nstages:\n{stages}\n")
    flow, problems = check_recipe(path, REGISTRY)
    assert flow is not None, "\n".join(map(str, problems))
    return flow


def test_shipped_profile_takes_each_types_typical_figures(tmp_path: Path) -> None:
    """Without a profile, a stage's time and failure chance are its step type's typical ones; a type
    that declares none gets the shipped defaults; a type declaring an operator needs one."""
    flow = _flow(tmp_path, ("acme.soak", "acme.grade", "acme.plain"))
    profile = load_profile(None, flow, REGISTRY)
    soak, grade, plain = (flow.stages[f"s{i}"] for i in range(3))
    assert (profile.time_of(soak).kind, profile.time_of(soak).mean, profile.fail_of(soak)) == ("fixed", 1800, 0.25)
    assert profile.time_of(grade).mean == pytest.approx(40.0) and profile.fail_of(grade) == 0.0
    assert profile.time_of(plain).kind == "triangular" and profile.fail_of(plain) == pytest.approx(0.002)
    assert profile.manual_steps == ("acme.grade",)
    figures = simulate(flow, profile, units=400, seed=3).figures
    assert figures["stages"]["s1"]["first_pass_yield"] == 1.0  # acme.grade never fails
    assert 0.6 < figures["stages"]["s0"]["first_pass_yield"] < 0.9  # acme.soak: 0.75, 400 units, > 5 sd


def test_a_profile_given_wins_over_the_typical_figures(tmp_path: Path) -> None:
    """A profile's steps: entry and its defaults: win over a type's typical figures; its operators:
    steps: replaces which types need an operator."""
    flow = _flow(tmp_path, ("acme.soak", "acme.grade"))
    path = tmp_path / "profile.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            profile: own
            defaults: {fail: 0.5}
            steps:
              acme.soak: {time: {fixed: 60}}
            operators: {steps: [acme.soak]}
            """
        )
    )
    profile = load_profile(path, flow, REGISTRY)
    soak, grade = flow.stages["s0"], flow.stages["s1"]
    assert profile.time_of(soak).mean == 60 and profile.fail_of(soak) == 0.5
    assert profile.time_of(grade).mean == pytest.approx(40.0) and profile.fail_of(grade) == 0.5
    assert profile.manual_steps == ("acme.soak",)


def test_unusable_typical_figures_are_an_error_at_the_stage(tmp_path: Path) -> None:
    """A step type whose typical figures cannot be drawn is reported at the stage that uses it."""
    flow = _flow(tmp_path, ("acme.soak", "acme.bad"))
    with pytest.raises(RecipeError) as caught:
        load_profile(None, flow, REGISTRY)
    message = str(caught.value)
    assert "recipe.yaml:7:20: error:" in message and "acme.bad" in message and "not 1.5" in message


@pytest.mark.parametrize(
    ("typical", "expected"),
    [
        (Typical(Duration.fixed(5), fail=0.01), None),
        (Typical(Duration.fixed(5), fail=-0.1), "a chance from 0 to 1"),
        (Typical(Duration.triangular(5, 3, 9), fail=0.0), "min <= mode <= max"),
        (Typical(Duration.exponential(float("nan")), fail=0.0), "finite figures"),
        (Typical(Duration.lognormal(0, 1), fail=0.0), "mean above 0"),
    ],
)
def test_typical_problem_names_what_is_wrong(typical: Typical, expected: str | None) -> None:
    """Typical.problem says what makes the figures unusable, and nothing for good ones."""
    problem = typical.problem()
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


def test_every_shipped_step_type_declares_typical_figures() -> None:
    """Each of floorflow's own step types says what one attempt typically costs, and it is usable."""
    shipped = [t for t in Registry.discover() if t.__module__.startswith("steps.")]
    assert len(shipped) >= 20
    for step_type in shipped:
        assert step_type.typical is not None, step_type.name
        assert step_type.typical.problem() is None, step_type.name


def test_the_engine_names_no_step_type() -> None:
    """No string in engine/ (code, docstring or message) is the name of an installed step type."""
    names = set(Registry.discover().names())
    assert names
    found = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n in node.value]
    assert not found, found
