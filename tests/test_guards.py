"""The run-time guards: every route rule holds on each unit, with the rule named when a stage is refused.

Several flows here are built directly with engine.flow.Flow/Stage, skipping the checker that would
reject them, to prove that the runner enforces the rules on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steplab import (
    Advance,
    Bench,
    Flaky,
    Measure,
    Ready,
    build,
    direct_flow,
    memory_store,
    runner,
    stage,
    state_of,
)

from engine.events import StepEnded
from engine.flow import Sampling
from engine.outcome import Outcome
from engine.run.guards import refusal
from engine.run.runner import UnitSpec
from engine.run.unitstate import RouteIndex, UnitState
from engine.store import open_store
from engine.store.history import History

TWO_STATIONS = """\
    recipe: two-stations
    version: 1
    stations:
      boot: {slots: 1}
      rf: {slots: 1}
    stages:
      - {id: boot_test, step: lab.measure, station: boot}
      - {id: rf_test, step: lab.measure, station: rf}
"""


def _unit(serial: str, lot: str | None = None) -> UnitSpec:
    return UnitSpec(serial, lot)


def _attempts(history: History, serial: str) -> list[tuple[str, int, Outcome]]:
    return [(a.stage, a.attempt, a.outcome) for a in history.unit(serial).attempts]


# -- ordering ---------------------------------------------------------------------------------------


def test_route_interlock_refuses_a_unit_that_skipped_an_earlier_station(tmp_path: Path) -> None:
    """A unit never seen at the boot station is refused at the second stage's station, naming the stage it missed."""
    flow = build(tmp_path, TWO_STATIONS)
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history, station="rf").run([_unit("SN1")])
    assert result.status == "refused"
    assert "route interlock" in (result.reason or "")
    assert "'boot_test'" in (result.reason or "")
    assert bench.runs[("SN1", "rf_test")] == 0


def test_route_interlock_lets_a_unit_that_passed_the_earlier_station_through(tmp_path: Path) -> None:
    """A unit that passed the boot station is run at the rf station and ships."""
    flow = build(tmp_path, TWO_STATIONS)
    bench, history = Bench(), memory_store()
    [first] = runner(flow, bench, history, station="boot").run([_unit("SN1")])
    [second] = runner(flow, bench, history, station="rf").run([_unit("SN1")])
    assert (first.status, second.status) == ("in-route", "shipped")
    assert "next: 'rf_test' at station rf" in (first.reason or "")
    assert bench.stages_run("SN1") == ["boot_test", "rf_test"]


def test_route_interlock_after_an_errored_first_stage(tmp_path: Path) -> None:
    """A unit whose first stage ERRORed (recorded, never passed) is refused by the interlock at the next station."""
    flow = build(
        tmp_path,
        """\
        recipe: interlock
        version: 1
        stations:
          boot: {slots: 1}
          rf: {slots: 1}
        stages:
          - {id: boot_test, step: lab.instrument, station: boot}
          - {id: rf_test, step: lab.measure, station: rf}
        """,
    )
    bench, history = Bench(instrument_down=True), memory_store()
    [first] = runner(flow, bench, history, station="boot").run([_unit("SN1")])
    assert first.status == "error"
    [second] = runner(flow, bench, history, station="rf").run([_unit("SN1")])
    assert second.status == "refused"
    assert "route interlock" in (second.reason or "") and "'boot_test'" in (second.reason or "")
    assert bench.runs[("SN1", "rf_test")] == 0


BACK_AND_FORTH = """\
    recipe: back-and-forth
    version: 1
    stations:
      fixture: {slots: 1}
      rf: {slots: 1}
    stages:
      - {id: connect, step: lab.measure, station: fixture}
      - {id: rf_cal, step: lab.measure, station: rf}
      - {id: rf_lock, step: lab.measure, station: fixture}
"""


def test_unit_leaving_for_another_station_and_coming_back_is_in_route(tmp_path: Path) -> None:
    """A unit that passed 'connect' at the fixture leaves in-route for rf (it comes back for 'rf_lock'), not refused."""
    flow = build(tmp_path, BACK_AND_FORTH)
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history, station="fixture").run([_unit("SN1")])
    assert bench.stages_run("SN1") == ["connect"]
    assert result.status == "in-route", result.reason
    assert "next: 'rf_cal' at station rf" in (result.reason or "")


def test_unit_coming_back_to_a_station_runs_its_later_stages(tmp_path: Path) -> None:
    """After rf, the fixture station runs 'rf_lock' on the unit and ships it (the route order is kept)."""
    flow = build(tmp_path, BACK_AND_FORTH)
    bench, history = Bench(), memory_store()
    runner(flow, bench, history, station="fixture").run([_unit("SN1")])
    [at_rf] = runner(flow, bench, history, station="rf").run([_unit("SN1")])
    [back] = runner(flow, bench, history, station="fixture").run([_unit("SN1")])
    assert (at_rf.status, back.status) == ("in-route", "shipped")
    assert bench.stages_run("SN1") == ["connect", "rf_cal", "rf_lock"]


MIXED_GROUP = """\
    recipe: mixed-group
    version: 1
    stations:
      fixture: {slots: 1}
      rf: {slots: 1}
    stages:
      - any_order:
          id: ops
          stages:
            - {id: rf_cal, step: lab.measure, station: rf}
            - {id: record_id, step: lab.measure, station: fixture}
      - {id: pack, step: lab.measure, station: fixture}
"""


def test_station_runs_its_own_any_order_members_first(tmp_path: Path) -> None:
    """At the fixture, the fixture's member of an any_order group runs even though the rf member is written first."""
    flow = build(tmp_path, MIXED_GROUP)
    bench = Bench()
    [result] = runner(flow, bench, station="fixture").run([_unit("SN1")])
    assert bench.stages_run("SN1") == ["record_id"]
    assert result.status == "in-route", result.reason


def test_unit_sent_to_rework_at_another_station_is_in_route(tmp_path: Path) -> None:
    """A unit that fails into a rework stage owned by another station leaves in-route for it, not refused."""
    flow = build(
        tmp_path,
        """\
        recipe: rework-elsewhere
        version: 1
        stations:
          test: {slots: 1}
          repair: {slots: 1}
        stages:
          - {id: check, step: lab.flaky, station: test, with: {fails: 1}, on_fail: fix}
        rework:
          - {id: fix, step: lab.measure, station: repair, then: check, max_visits: 1}
        """,
    )
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history, station="test").run([_unit("SN1")])
    assert result.status == "in-route", result.reason
    assert "next: 'fix' at station repair" in (result.reason or "")


def test_ordering_guard_refuses_a_stage_whose_predecessor_has_not_passed() -> None:
    """The guard itself refuses a later stage on a fresh unit with the ordering rule, naming the predecessor."""
    flow = direct_flow([stage("first", Measure), stage("second", Measure)])
    state = UnitState(RouteIndex(flow))
    refused = refusal(state, flow.stages["second"], None)
    assert refused is not None and refused.rule == "ordering"
    assert "'first'" in refused.reason
    assert str(refused).startswith("refused by the ordering rule")
    assert refusal(state, flow.stages["first"], None) is None


def test_ordering_guard_refuses_a_stage_that_already_passed() -> None:
    """The guard refuses to run a route stage again once it has passed."""
    flow = direct_flow([stage("first", Measure), stage("second", Measure)])
    state = UnitState(RouteIndex(flow))
    state.record(flow.stages["first"], Outcome.PASS, 0.0, None)
    refused = refusal(state, flow.stages["first"], None)
    assert refused is not None and refused.rule == "ordering"
    assert "already passed" in refused.reason


def test_next_stage_is_a_query_that_changes_nothing() -> None:
    """Asking a unit's next stage, after an any_order group and a plain stage passed, leaves its state as it was:
    recording the attempts alone moved it on."""
    flow = direct_flow(
        [stage("first", Measure), ("both", [stage("a", Measure), stage("b", Measure)]), stage("last", Measure)]
    )
    state = UnitState(RouteIndex(flow))
    for done in ("first", "a", "b"):
        state.record(flow.stages[done], Outcome.PASS, 0.0, None)
    before = repr(state)
    assert state.next_stage() is flow.stages["last"]
    assert state.next_stage(frozenset({"last"})) is flow.stages["last"]
    assert repr(state) == before and state.block == 2


def test_ordering_guard_refuses_a_rework_stage_the_unit_was_not_sent_to() -> None:
    """A rework stage is refused unless a failure sent the unit there."""
    flow = direct_flow(
        [stage("test", Flaky, on_fail="fix")],
        rework=[stage("fix", Measure, rework=True, then="test", max_visits=1)],
    )
    refused = refusal(UnitState(RouteIndex(flow)), flow.stages["fix"], None)
    assert refused is not None and refused.rule == "ordering"
    assert "rework" in refused.reason


# -- requires and any_order -------------------------------------------------------------------------


def test_requires_refuses_a_stage_whose_required_stage_has_not_passed() -> None:
    """In a directly built flow where 'second' requires the later 'third', the runner refuses 'second' by requires."""
    flow = direct_flow(
        [stage("first", Measure), stage("second", Measure, requires=("third",)), stage("third", Measure)]
    )
    bench = Bench()
    [result] = runner(flow, bench).run([_unit("SN1")])
    assert result.status == "refused"
    assert "requires rule" in (result.reason or "") and "'third'" in (result.reason or "")
    assert bench.stages_run("SN1") == ["first"]


def test_any_order_members_run_in_an_order_that_respects_requires(tmp_path: Path) -> None:
    """Group members written in reverse dependency order still run a, then b, then c, on every unit."""
    flow = build(
        tmp_path,
        """\
        recipe: group-order
        version: 1
        stages:
          - {id: start_up, step: lab.measure}
          - any_order:
              id: ops
              stages:
                - {id: c, step: lab.measure, requires: [b]}
                - {id: b, step: lab.measure, requires: [a]}
                - {id: free, step: lab.measure}
                - {id: a, step: lab.measure, requires: [start_up]}
          - {id: done, step: lab.measure}
        """,
    )
    bench = Bench()
    results = runner(flow, bench).run([_unit(f"SN{i}") for i in range(3)], slots=3)
    assert {r.status for r in results} == {"shipped"}
    for i in range(3):
        order = bench.stages_run(f"SN{i}")
        assert order[0] == "start_up" and order[-1] == "done"
        assert sorted(order) == sorted(["start_up", "a", "b", "c", "free", "done"])
        assert order.index("a") < order.index("b") < order.index("c")


# -- lifecycle ----------------------------------------------------------------------------------------

LIFECYCLE = ("Blank", "Module1Complete", "DeviceComplete")


def test_lifecycle_window_refuses_rf_after_the_lock_in_a_directly_built_flow() -> None:
    """An RF stage allowed until Module1Complete, placed after the advance to it, is refused by the lifecycle rule."""
    flow = direct_flow(
        [
            stage("rf_lock", Advance, Advance.Params(to="Module1Complete")),
            stage("rf_cal", Measure, allowed_until="Module1Complete"),
        ],
        lifecycle=LIFECYCLE,
    )
    bench = Bench()
    [result] = runner(flow, bench).run([_unit("SN1")])
    assert result.status == "refused"
    assert "refused by the lifecycle rule" in (result.reason or "")
    assert "allowed until Module1Complete" in (result.reason or "")
    assert bench.stages_run("SN1") == ["rf_lock"]


def test_lifecycle_window_lets_rf_run_before_the_lock() -> None:
    """The same stages in the right order ship the unit: the window is open before the lock."""
    flow = direct_flow(
        [
            stage("rf_cal", Measure, allowed_until="Module1Complete"),
            stage("rf_lock", Advance, Advance.Params(to="Module1Complete")),
        ],
        lifecycle=LIFECYCLE,
    )
    bench = Bench()
    [result] = runner(flow, bench).run([_unit("SN1")])
    assert result.status == "shipped"
    assert bench.stages_run("SN1") == ["rf_cal", "rf_lock"]


def test_allowed_from_refuses_a_stage_before_the_unit_reaches_the_state() -> None:
    """A stage allowed from Module1Complete placed before the advance is refused by the lifecycle rule."""
    flow = direct_flow(
        [
            stage("seal", Measure, allowed_from="Module1Complete"),
            stage("lock", Advance, Advance.Params(to="Module1Complete")),
        ],
        lifecycle=LIFECYCLE,
    )
    bench = Bench()
    [result] = runner(flow, bench).run([_unit("SN1")])
    assert result.status == "refused"
    assert "lifecycle rule" in (result.reason or "") and "allowed from Module1Complete" in (result.reason or "")
    assert bench.stages_run("SN1") == []


def test_lifecycle_never_moves_backwards() -> None:
    """An advance to a state the unit is already past is refused by the lifecycle rule and never runs."""
    flow = direct_flow(
        [
            stage("finish", Advance, Advance.Params(to="DeviceComplete")),
            stage("back", Advance, Advance.Params(to="Module1Complete")),
        ],
        lifecycle=LIFECYCLE,
    )
    bench = Bench()
    [result] = runner(flow, bench).run([_unit("SN1")])
    assert result.status == "refused"
    assert "lifecycle rule" in (result.reason or "") and "cannot move to Module1Complete" in (result.reason or "")
    assert bench.stages_run("SN1") == ["finish"]


# -- irreversible -------------------------------------------------------------------------------------

IRREVERSIBLE_THEN_ERROR = """\
    recipe: burn-fuses
    version: 1
    stages:
      - {id: burn, step: lab.instrument, irreversible: true}
      - {id: after, step: lab.measure}
"""


def test_irreversible_stage_is_not_rerun_after_an_error_in_it(tmp_path: Path) -> None:
    """An irreversible stage that ERRORed quarantines the unit (did it take effect?); the next run is refused."""
    flow = build(tmp_path, IRREVERSIBLE_THEN_ERROR)
    bench, history = Bench(instrument_down=True), memory_store()
    [first] = runner(flow, bench, history).run([_unit("SN1")])
    assert first.status == "error"
    bench.instrument_down = False  # the station is repaired: only the rule can stop the second burn now
    [second] = runner(flow, bench, history).run([_unit("SN1")])
    assert second.status == "refused"
    assert "refused by the status rule: the unit is quarantined" in (second.reason or "")
    assert "irreversible stage 'burn' ended in ERROR" in (second.reason or "")
    assert history.unit("SN1").status == "quarantined"
    assert bench.runs[("SN1", "burn")] == 1


def test_irreversible_stage_is_not_rerun_from_a_store_reopened(tmp_path: Path) -> None:
    """The quarantine holds across processes: the same SQLite file opened again still refuses."""
    flow = build(tmp_path, IRREVERSIBLE_THEN_ERROR)
    bench = Bench(instrument_down=True)
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_store(url) as store:
        [first] = runner(flow, bench, store).run([_unit("SN1")])
    assert first.status == "error"
    bench.instrument_down = False
    with open_store(url) as store:
        [second] = runner(flow, bench, store).run([_unit("SN1")])
    assert second.status == "refused"
    assert "the unit is quarantined" in (second.reason or "")
    assert bench.runs[("SN1", "burn")] == 1


def test_irreversible_stage_is_refused_when_a_rework_loops_back_to_it() -> None:
    """In a directly built flow whose rework resumes before an irreversible stage, the stage is refused, not rerun."""
    flow = direct_flow(
        [stage("burn", Measure, irreversible=True), stage("test", Flaky, Flaky.Params(fails=1), on_fail="fix")],
        rework=[stage("fix", Measure, rework=True, then="burn", max_visits=3)],
    )
    bench = Bench()
    [result] = runner(flow, bench).run([_unit("SN1")])
    assert result.status == "refused"
    assert "irreversible rule" in (result.reason or "")
    assert bench.stages_run("SN1") == ["burn", "test", "fix"]
    assert bench.runs[("SN1", "burn")] == 1


# -- lot holds and sampling -----------------------------------------------------------------------------


def test_held_lot_is_refused_before_any_step() -> None:
    """A unit of a held lot is refused by the hold rule before any step runs, with the hold's reason and how
    it is lifted; a unit of another lot ships."""
    flow = direct_flow([stage("test", Measure), stage("ready", Ready)])
    bench, history = Bench(), memory_store()
    history.hold_lot("LOT-A", "recall 42")
    results = runner(flow, bench, history).run([_unit("SN1", "LOT-A"), _unit("SN2", "LOT-B")])
    by_serial = {r.serial: r for r in results}
    reason = by_serial["SN1"].reason or ""
    assert by_serial["SN1"].status == "refused"
    assert "refused by the hold rule" in reason and "recall 42" in reason and "hold is lifted" in reason
    assert bench.stages_run("SN1") == []
    assert by_serial["SN2"].status == "shipped"


def _hold_after(stage_id: str, history: History) -> Any:
    """A subscriber that puts lot LOT-A on hold once ``stage_id`` ends: a hold that comes while a unit runs."""

    def hold(event: object) -> None:
        if isinstance(event, StepEnded) and event.stage == stage_id:
            history.hold_lot("LOT-A", "recall")

    return hold


def test_a_hold_while_the_unit_runs_refuses_the_ready_stage() -> None:
    """A lot put on hold while its unit runs lets the unit's tests go on and refuses the ready-to-ship gate."""
    flow = direct_flow([stage("test", Measure), stage("ready", Ready)])
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history, subscribers=[_hold_after("test", history)]).run([_unit("SN1", "LOT-A")])
    assert result.status == "refused" and "hold rule" in (result.reason or "")
    assert bench.stages_run("SN1") == ["test"]


def test_held_lot_is_refused_at_the_final_lifecycle_advance() -> None:
    """The final lifecycle advance (shipping the unit) is refused for a lot held while the unit runs; earlier
    advances are not."""
    flow = direct_flow(
        [
            stage("lock", Advance, Advance.Params(to="Module1Complete")),
            stage("finalize", Advance, Advance.Params(to="DeviceComplete")),
        ],
        lifecycle=LIFECYCLE,
    )
    bench, history = Bench(), memory_store()
    held = _hold_after("lock", history)
    [result] = runner(flow, bench, history, subscribers=[held]).run([_unit("SN1", "LOT-A")])
    assert result.status == "refused"
    assert "hold rule" in (result.reason or "")
    assert bench.stages_run("SN1") == ["lock"]


SAMPLED = """\
    recipe: sampled
    version: 1
    stages:
      - id: sample_test
        step: lab.measure
        measurements: {v: {limits: {min: 0, max: 1}}}
        sampling: {rate: 1.0, recall_threshold: 2}
      - {id: ready, step: lab.ready}
"""


def test_sampled_failures_reaching_the_threshold_hold_the_lot(tmp_path: Path) -> None:
    """Two units failing a sampled stage (threshold 2) put their lot on hold, and the next good unit is refused."""
    flow = build(tmp_path, SAMPLED)
    bench, history = Bench(values={"SN1": 5, "SN2": 5, "SN3": 0.5}), memory_store()
    results = runner(flow, bench, history).run([_unit(s, "LOT-A") for s in ("SN1", "SN2", "SN3")], slots=1)
    assert [r.status for r in results] == ["scrapped", "scrapped", "refused"]
    hold = history.lot_hold("LOT-A")
    assert hold is not None and "sample_test" in hold and "threshold 2" in hold
    assert "hold rule" in (results[2].reason or "")
    assert bench.runs[("SN3", "sample_test")] == 0 and bench.runs[("SN3", "ready")] == 0  # refused at admission


def test_one_sampled_failure_below_the_threshold_holds_nothing(tmp_path: Path) -> None:
    """A single failure under a threshold of 2 leaves the lot free: the next good unit ships."""
    flow = build(tmp_path, SAMPLED)
    bench, history = Bench(values={"SN1": 5, "SN2": 0.5}), memory_store()
    results = runner(flow, bench, history).run([_unit(s, "LOT-A") for s in ("SN1", "SN2")], slots=1)
    assert [r.status for r in results] == ["scrapped", "shipped"]
    assert history.lot_hold("LOT-A") is None


def test_a_unit_not_sampled_skips_the_stage() -> None:
    """With a sampling rate that takes no unit, the stage is recorded SKIPPED and the unit ships without running it."""
    sampling = Sampling(rate=1e-12)
    flow = direct_flow([stage("sample_test", Measure, sampling=sampling), stage("ready", Ready)])
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history).run([_unit("SN1", "LOT-A")])
    assert result.status == "shipped"
    assert _attempts(history, "SN1")[0] == ("sample_test", 1, Outcome.SKIPPED)
    assert bench.runs[("SN1", "sample_test")] == 0


# -- recipe and status ------------------------------------------------------------------------------------


def test_unit_started_under_another_recipe_hash_is_refused(tmp_path: Path) -> None:
    """A unit recorded under version 1 of a recipe is refused by the recipe rule at a station running version 2."""
    v1 = build(tmp_path, TWO_STATIONS, "v1.yaml")
    v2 = build(tmp_path, TWO_STATIONS.replace("version: 1", "version: 2"), "v2.yaml")
    assert v1.content_hash != v2.content_hash
    bench, history = Bench(), memory_store()
    [first] = runner(v1, bench, history, station="boot").run([_unit("SN1")])
    assert first.status == "in-route"
    [second] = runner(v2, bench, history, station="rf").run([_unit("SN1")])
    assert second.status == "refused"
    assert "refused by the recipe rule" in (second.reason or "")
    assert v1.content_hash[:12] in (second.reason or "") and v2.content_hash[:12] in (second.reason or "")
    assert bench.runs[("SN1", "rf_test")] == 0


def test_a_scrapped_unit_never_runs_again() -> None:
    """A unit scrapped on one run is not run on the next: it is refused, saying it was scrapped; nothing runs."""
    flow = direct_flow([stage("test", Flaky, Flaky.Params(fails=5)), stage("pack", Measure)])
    bench, history = Bench(), memory_store()
    [first] = runner(flow, bench, history).run([_unit("SN1")])
    [second] = runner(flow, bench, history).run([_unit("SN1")])
    assert (first.status, second.status) == ("scrapped", "refused")
    assert "refused by the status rule: the unit was scrapped" in (second.reason or "")
    assert bench.stages_run("SN1") == ["test"]
    state = state_of(flow, history, "SN1")
    refused = refusal(state, flow.stages["test"], None)
    assert refused is not None and refused.rule == "status"


def test_a_supervisor_decision_settles_an_interrupted_irreversible_stage(tmp_path: Path) -> None:
    """After an ERROR in an irreversible stage, NOT-DONE lets it run again; a PASS (done) counts it as passed."""
    flow = build(tmp_path, IRREVERSIBLE_THEN_ERROR)
    bench, history = Bench(instrument_down=True), memory_store()
    runner(flow, bench, history).run([_unit("SN1")])
    errored = history.unit("SN1").attempts[-1]
    assert (errored.stage, errored.outcome) == ("burn", Outcome.ERROR)
    index, burn = RouteIndex(flow), flow.stages["burn"]

    not_done = UnitState.replay(index, [errored, errored._replace(outcome=Outcome.NOT_DONE, operator="qa")])
    assert refusal(not_done, burn, None) is None
    assert not_done.next_stage() is burn

    done = UnitState.replay(index, [errored, errored._replace(outcome=Outcome.PASS, operator="qa")])
    assert "burn" in done.passed
    assert done.next_stage() is flow.stages["after"]
    refused = refusal(done, burn, None)
    assert refused is not None and refused.rule in ("ordering", "irreversible")
