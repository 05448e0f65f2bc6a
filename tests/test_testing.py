"""engine.testing, the step author's kit: its fakes behave as the engine does, and each contract rule
catches the break it is for.

The step types here are the test's own and are not installed: the contract's entry-point rule is
checked on floorflow's installed types and on one that is not installed.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from engine.context import MeasurementRecord, StepContext
from engine.outcome import NotStarted, Outcome, StationError, StepFailed, Verdict
from engine.step import Duration, Effects, StepType, Typical, param
from engine.testing import (
    NEW_DEVICE,
    ContractError,
    FakeDevice,
    FakeLine,
    FakeOperator,
    check_contract,
    contract_cases,
    fake_context,
    installed_step_types,
    run_step,
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ProbeParams:
    image: str = param("Image the probe loads.", ref="image")
    ending: Literal["pass", "fail", "error", "crash", "skip", "not_started"] = param("How it ends.", default="pass")
    values: tuple[int, ...] = param("Values it measures as v.", default=())


class Probe(StepType):
    name = "lab.probe"
    summary = "Measure, ask, register a cleanup, then end as told."
    Params = ProbeParams
    example: ClassVar[dict[str, Any]] = {"image": "os"}
    typical = Typical(Duration.fixed(5), fail=0.01)
    cleaned: ClassVar[list[str]] = []

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(loads=(params.image,))

    def run(self, ctx: StepContext) -> Outcome | None:
        for value in ctx.params.values:
            ctx.measure("v", value)
        ctx.measure("device", ctx.device.device_id if ctx.device is not None else None)
        ctx.on_cleanup(lambda: Probe.cleaned.append("first"))
        ctx.on_cleanup(lambda: Probe.cleaned.append("second"))
        ending = ctx.params.ending
        if ending == "fail":
            raise StepFailed("the unit is bad")
        if ending == "error":
            raise StationError("the fixture is bad")
        if ending == "not_started":
            raise NotStarted("no identities left")
        if ending == "crash":
            raise KeyError("oops")
        return Outcome.SKIPPED if ending == "skip" else None


# -- the fakes -------------------------------------------------------------------------------------------


def test_fake_context_is_what_a_stage_of_the_type_gets() -> None:
    """The context holds the type's Params built from a with: mapping (lists as tuples), a stage named
    after the type with its effects, the unit, a fresh FakeDevice and a passing FakeOperator."""
    ctx = fake_context(Probe, {"image": "app", "values": [1, 2]}, serial="SN9", lifecycle="Blank", slot=3)
    assert ctx.params == ProbeParams(image="app", values=(1, 2))
    assert (ctx.stage.id, ctx.stage.step, ctx.stage.effects) == ("lab_probe", "lab.probe", Effects(loads=("app",)))
    assert (ctx.unit.serial, ctx.unit.lifecycle, ctx.slot, ctx.attempt) == ("SN9", "Blank", 3, 1)
    assert isinstance(ctx.device, FakeDevice) and (ctx.device.serial, ctx.device.slot) == ("SN9", 3)
    assert ctx.operator.ask("s", "c", "?").passed
    assert fake_context(Probe).params == ProbeParams(image="os")  # no params: the type's example
    assert fake_context(Probe, device=None).device is None and NEW_DEVICE is not None


def test_fake_context_records_without_judging_unless_given_a_judge() -> None:
    """Every value is recorded PASS by default; a judge given decides instead."""
    assert fake_context(Probe).measure("v", 99) is Verdict.PASS

    def strict(name: str, value: Any, units: str | None, tags: Any) -> MeasurementRecord:
        return MeasurementRecord(name, value, Verdict.FAIL if value == 7 else Verdict.PASS, units, tags=tags)

    run = run_step(Probe, {"image": "os", "values": [3, 7]}, judge=strict)
    assert (run.outcome, run.reason) == (Outcome.FAIL, "measurement 'v' = 7 is outside its limits")


@pytest.mark.parametrize(
    ("ending", "outcome", "reason"),
    [
        ("pass", Outcome.PASS, None),
        ("fail", Outcome.FAIL, "the unit is bad"),
        ("error", Outcome.ERROR, "the fixture is bad"),
        ("not_started", Outcome.ERROR, "no identities left"),
        ("crash", Outcome.ERROR, "KeyError: 'oops'"),
        ("skip", Outcome.SKIPPED, None),
    ],
)
def test_run_step_says_what_the_engine_would(ending: str, outcome: Outcome, reason: str | None) -> None:
    """StepFailed is a FAIL, StationError (NotStarted too) or any exception an ERROR, a returned Outcome
    stands; the cleanups run every time, last registered first."""
    Probe.cleaned.clear()
    run = run_step(Probe, {"image": "os", "ending": ending, "values": [4]})
    assert (run.outcome, run.reason) == (outcome, reason)
    assert run.measured == {"v": 4, "device": "dev-SN0001"}
    assert Probe.cleaned == ["second", "first"]
    assert run.ctx.not_started is (ending == "not_started")
    assert (run.error is None) is (ending in ("pass", "skip"))


def test_a_failing_cleanup_turns_a_pass_into_an_error() -> None:
    """A cleanup that raises makes a passing attempt an ERROR saying so; a FAIL keeps its own reason."""

    def stuck() -> None:
        raise OSError("clamp stuck")

    class Leaky(Probe):
        def run(self, ctx: StepContext) -> Outcome | None:
            ctx.on_cleanup(stuck)
            return super().run(ctx)

    run = run_step(Leaky)
    assert (run.outcome, run.reason) == (Outcome.ERROR, "cleanup failed: OSError: clamp stuck")
    assert run_step(Leaky, {"image": "os", "ending": "fail"}).reason == "the unit is bad"


def test_fake_operator_fails_the_checks_named_and_remembers_every_question() -> None:
    """The checks in `failing` fail with their comment; the others pass; each question is kept."""
    operator = FakeOperator({"dent": "left side"})
    assert operator.ask("look", "dent", "Any dent?").comment == "left side"
    assert not operator.ask("look", "dent", "Any dent?").passed and operator.ask("look", "ok", "?").passed
    assert operator.asked[0] == ("look", "dent", "Any dent?") and len(operator.asked) == 3


def test_fake_line_opens_a_device_per_unit_and_offers_its_resources() -> None:
    """open_unit opens a new device each time (the factory given), device_of finds the last for a serial."""
    line = FakeLine({"scale": 1})
    first, second = line.open_unit("A", 1), line.open_unit("A", 2)
    assert first is not second and line.device_of("A") is second and line.devices == [first, second]
    assert dict(line.resources()) == {"scale": 1}
    line.close()
    assert line.closed
    first.close()
    assert first.closed == 1


# -- the contract ----------------------------------------------------------------------------------------


def _broken(**changes: Any) -> type[StepType]:
    """Probe with class attributes replaced (its own summary kept: a type needs one of its own)."""
    return type("Broken", (Probe,), {"summary": Probe.summary, **changes})


def _params(**fields: tuple[Any, Any]) -> type:
    """A frozen Params dataclass of the fields given as (type, dataclasses.field)."""
    return dataclasses.make_dataclass("BrokenParams", [(n, t, f) for n, (t, f) in fields.items()], frozen=True)


BREAKS: dict[str, type[StepType]] = {
    "name": _broken(name="Probe"),
    "summary": _broken(summary="two\nlines"),
    "params-frozen": _broken(Params=dataclass(type("P", (), {}))),
    "params-documented": _broken(Params=_params(image=(str, dataclasses.field(metadata={"ref": "image"})))),
    "params-types": _broken(Params=_params(image=(list, param("Images.", ref="image")))),
    "params-defaults": _broken(Params=_params(image=(str, param("An image.", default=3)))),
    "params-refs": _broken(Params=_params(image=(int, param("An image.", ref="image")))),
    "example": _broken(example={"image": "os", "ending": "pass"}),
    "effects": _broken(effects=classmethod(lambda cls, p: Effects(loads=("elsewhere",)))),
    "typical": _broken(typical=Typical(Duration.triangular(9, 1, 5), fail=0.1)),
}


def test_a_sound_step_type_holds_to_every_rule() -> None:
    """Probe breaks no rule but the entry point's, which needs it installed."""
    check_contract([Probe], installed=False)
    with pytest.raises(ContractError, match=r"lab\.probe.*is the package installed"):
        check_contract([Probe])


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_rule_catches_its_break(rule: str) -> None:
    """A type broken in one way fails that rule, naming the type, and passes the others it can be checked on."""
    cases = {case.rule.name: case for case in contract_cases([BREAKS[rule]], installed=False)}
    assert set(cases) == set(BREAKS)
    with pytest.raises(AssertionError) as caught:
        cases[rule].check()
    assert "step type '" in str(caught.value)
    if rule in ("name", "summary", "example", "effects", "typical"):
        for other in set(cases) - {rule}:
            cases[other].check()


def test_cases_are_named_type_then_rule_and_installed_adds_the_entry_point_rule() -> None:
    """A case reads `type:rule` (pytest ids); installed=True checks the entry points as well."""
    assert [str(c) for c in contract_cases([Probe], installed=False)][:2] == ["lab.probe:name", "lab.probe:summary"]
    assert str(contract_cases([Probe])[-1]) == "lab.probe:entry-point"


def test_installed_step_types_by_distribution() -> None:
    """floorflow's own types are found by its distribution name, by name; an unknown one has none."""
    shipped = installed_step_types("floorflow")
    assert [t.name for t in shipped] == sorted(t.name for t in shipped)
    assert {t.name for t in shipped} >= {"flash.gang", "manual.checklist"} and len(shipped) >= 20
    assert installed_step_types("no-such-distribution") == []
    assert installed_step_types("FloorFlow") == shipped  # names compare as pip compares them
    check_contract(shipped[:3])


def test_engine_testing_imports_only_the_core_and_not_pytest() -> None:
    """Importing engine.testing pulls in no pytest and no engine room (recipe, run, store, ...)."""
    code = (
        "import sys, engine.testing\n"
        "rooms = ('recipe', 'run', 'store', 'report', 'simulate', 'cli')\n"
        "bad = [m for m in sys.modules if m == 'pytest' or m.split('.')[:1] == ['steps'] "
        "or (m.startswith('engine.') and m.split('.')[1] in rooms)]\n"
        "print(bad)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.strip() == "[]"
