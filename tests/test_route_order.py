"""The order rules on every route: connect first, finalize last, capabilities a lifecycle state locks;
and `validate --strict`, which fails on warnings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from steplab import Advance, Bench, Measure, direct_flow, runner, stage

from engine.cli import main
from engine.diagnostics import Diagnostic
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.run.runner import UnitSpec
from engine.step import Effects

HEAD = "recipe: r\nversion: 1\n"
SPHERE = "lifecycle:\n  states: [Blank, Module1Complete, DeviceComplete]\n  locks: {rf-test-mode: Module1Complete}\n"
RF = "step: rf.measure, with: {band: wifi-2g4, channels: [1]}"


def _problems(text: str, tmp_path: Path) -> list[Diagnostic]:
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + text)
    return check_recipe(path, Registry.discover())[1]


def _found(text: str, tmp_path: Path) -> list[tuple[str, int]]:
    return [(d.code, d.pos.line) for d in _problems(text, tmp_path)]


def test_a_recipe_without_a_connecting_stage_reaches_the_unit_its_own_way(tmp_path: Path) -> None:
    """No stage connects (a phone enumerates on USB when it boots): connect first asks nothing."""
    assert _found(f"stages:\n  - {{id: a, step: device.record_id}}\n  - {{id: rf, {RF}}}\n", tmp_path) == []


def test_a_member_requiring_the_connect_of_its_group_is_connected(tmp_path: Path) -> None:
    """Inside a group, a member that requires the connecting member (through another) always runs connected."""
    text = (
        "stages:\n  - any_order:\n      id: g\n      stages:\n"
        "        - {id: c, step: device.connect}\n"
        "        - {id: a, step: device.record_id, requires: [c]}\n"
        "        - {id: b, step: device.record_id, requires: [a]}\n"
        "        - {id: look, step: manual.checklist, with: {checks: [x]}}\n"
    )
    assert _found(text, tmp_path) == []


def test_a_rework_entered_when_the_connect_fails_is_not_connected(tmp_path: Path) -> None:
    """A failed connect sends the unit to rework unconnected: a rework stage talking to it is refused,
    one that the operator does alone is not."""
    text = (
        "stages:\n  - {id: c, step: device.connect, on_fail: fix}\n  - {id: a, step: device.record_id}\n"
        "rework:\n  - {id: fix, step: device.record_id, then: c, max_visits: 2}\n"
    )
    assert _found(text, tmp_path) == [("connect-first", 7)]
    assert (
        _found(
            text.replace("id: fix, step: device.record_id", "id: fix, step: manual.checklist, with: {checks: [cable]}"),
            tmp_path,
        )
        == []
    )


def test_a_rework_that_resumes_past_the_connect_is_named(tmp_path: Path) -> None:
    """A failure before the connect, whose rework resumes after it: the unit reaches the next stage
    unconnected, and the message names the rework."""
    text = (
        "stages:\n  - {id: look, step: manual.checklist, with: {checks: [x]}, on_fail: fix}\n"
        "  - {id: c, step: device.connect}\n  - {id: a, step: device.record_id}\n"
        "rework:\n  - {id: fix, step: manual.checklist, with: {checks: [y]}, then: a, max_visits: 1}\n"
    )
    (problem,) = _problems(text, tmp_path)
    assert (problem.code, problem.pos.line) == ("connect-first", 6)
    assert "on a route through rework 'fix'" in problem.message


def test_a_stage_a_rework_brings_back_after_the_lock_is_refused_with_the_route(tmp_path: Path) -> None:
    """An RF stage before the lock, which a failure after the lock leads back to through rework: the
    unit can reach it locked, and the message names the rework."""
    text = SPHERE + (
        f"stages:\n  - {{id: c, step: device.connect}}\n  - {{id: rf, {RF}}}\n"
        "  - {id: lock, step: lifecycle.advance, with: {to: Module1Complete}}\n"
        "  - {id: late, step: device.record_id, on_fail: fix}\n"
        "rework:\n  - {id: fix, step: manual.checklist, with: {checks: [x]}, then: rf, max_visits: 1}\n"
    )
    locked = [d for d in _problems(text, tmp_path) if d.code == "capability-locked"]
    assert [d.pos.line for d in locked] == [8]
    assert "on a route through rework 'fix'" in locked[0].message


def test_a_lock_in_the_same_group_is_refused_unless_it_runs_after(tmp_path: Path) -> None:
    """A member that locks RF test mode may run before an RF member of its group; not when it requires it."""
    text = SPHERE + (
        "stages:\n  - {id: c, step: device.connect}\n  - any_order:\n      id: g\n      stages:\n"
        f"        - {{id: rf, {RF}}}\n"
        "        - {id: lock, step: lifecycle.advance, with: {to: Module1Complete}}\n"
    )
    assert _found(text, tmp_path) == [("capability-locked", 11)]
    assert _found(text.replace("to: Module1Complete}}", "to: Module1Complete}, requires: [rf]}"), tmp_path) == []


def test_a_final_advance_that_requires_every_other_member_runs_last(tmp_path: Path) -> None:
    """A final advance in a group that requires every other member of it runs last: no error."""
    text = (
        "lifecycle: [Open, Done]\nstages:\n  - {id: c, step: device.connect}\n  - any_order:\n      id: g\n"
        "      stages:\n        - {id: a, step: device.record_id}\n"
        "        - {id: done, step: lifecycle.advance, with: {to: Done}, requires: [a]}\n"
    )
    assert _found(text, tmp_path) == []
    assert _found(text.replace(", requires: [a]", ""), tmp_path) == [("finalize-last", 10)]


def test_a_shipped_recipe_declares_its_lock_instead_of_windows() -> None:
    """The Sphere recipes lock RF test mode on their lifecycle; their RF stages carry no allowed_until."""
    root = Path(__file__).resolve().parent.parent / "workflows"
    for name in ("sphere-module.yaml", "sphere-thermostat.yaml"):
        flow, problems = check_recipe(root / name, Registry.discover())
        assert flow is not None, problems
        assert dict(flow.locks) == {"rf-test-mode": "Module1Complete"}
        rf = [s for s in flow.stages.values() if s.effects.needs_capabilities]
        assert rf and all(s.allowed_until is None for s in rf)


def test_a_station_refuses_a_stage_whose_capability_is_locked() -> None:
    """A flow built in code (never checked) with RF test mode locked at Module1Complete: the stage that
    needs it, after the advance, is refused by the lifecycle rule, and the unit never runs it."""
    rf = dataclasses.replace(stage("rf_cal", Measure), effects=Effects(needs_capabilities=("rf-test-mode",)))
    lock = stage("rf_lock", Advance, Advance.Params(to="Module1Complete"))
    flow = dataclasses.replace(
        direct_flow([lock, rf], lifecycle=("Blank", "Module1Complete", "DeviceComplete")),
        locks={"rf-test-mode": "Module1Complete"},
    )
    bench = Bench()
    [result] = runner(flow, bench).run([UnitSpec("SN1")])
    assert result.status == "refused"
    assert "needs rf-test-mode, which Module1Complete locks" in (result.reason or "")
    assert bench.stages_run("SN1") == ["rf_lock"]


WARNED = (
    "images:\n  t: {file: t.wim, kind: wim, platform: mmos, type: test, features: [NO_SUCH, DISABLE_UEFI_CHARGING]}\n"
    "stages:\n  - {id: c, step: device.connect}\n"
)


@pytest.mark.parametrize(("options", "code"), [((), 0), (("--strict",), 1)])
def test_strict_fails_on_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], code: int
) -> None:
    """A recipe with only a warning passes validate (exit 0) and fails validate --strict (exit 1)."""
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + WARNED)
    assert main(["validate", *options, str(path)]) == code
    out = capsys.readouterr().out
    assert ": warning: " in out and "[feature-unknown]" in out


def test_a_lock_no_stage_needs_is_a_warning_with_a_suggestion(tmp_path: Path) -> None:
    """A misspelt capability locks nothing: a warning at the lock, suggesting the capability the stages need."""
    text = (
        SPHERE.replace("rf-test-mode", "rf-tset-mode")
        + f"stages:\n  - {{id: c, step: device.connect}}\n  - {{id: rf, {RF}}}\n"
    )
    (problem,) = _problems(text, tmp_path)
    assert (problem.severity, problem.code, problem.pos.line) == ("warning", "lock-unused", 5)
    assert "(did you mean 'rf-test-mode'?)" in problem.message
    assert _problems(SPHERE + f"stages:\n  - {{id: c, step: device.connect}}\n  - {{id: rf, {RF}}}\n", tmp_path) == []
