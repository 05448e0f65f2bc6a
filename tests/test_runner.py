"""The station runner: retries and rework, FAIL versus ERROR, measurements, timeouts, cleanup, abort,
slots and events, with the tests' own step types (tests/steplab.py) in a private Registry."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from steplab import Bench, Cleanup, Measure, Probe, Sleep, build, direct_flow, memory_store, runner, stage, state_of

from engine.context import StepContext
from engine.events import Event, StepEnded, StepStarted, UnitEnded, UnitStarted
from engine.flow import Limits, Measurement
from engine.outcome import Outcome, StationError, UnitStatus, Verdict
from engine.run.runner import UnitSpec
from engine.store.history import History


def _units(*serials: str) -> list[UnitSpec]:
    return [UnitSpec(s) for s in serials]


def _attempts(history: History, serial: str) -> list[tuple[str, int, Outcome]]:
    return [(a.stage, a.attempt, a.outcome) for a in history.unit(serial).attempts]


# -- retries, rework, scrap ---------------------------------------------------------------------------


def test_stage_failing_twice_passes_on_the_third_attempt(tmp_path: Path) -> None:
    """With retry.max 2, a stage failing twice is attempted a third time, passes, and all 3 attempts are recorded."""
    flow = build(
        tmp_path,
        """\
        recipe: retries
        version: 1
        stages:
          - {id: test, step: lab.flaky, with: {fails: 2}, retry: {max: 2}}
          - {id: pack, step: lab.measure}
        """,
    )
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "shipped"
    assert _attempts(history, "SN1") == [
        ("test", 1, Outcome.FAIL),
        ("test", 2, Outcome.FAIL),
        ("test", 3, Outcome.PASS),
        ("pack", 1, Outcome.PASS),
    ]


def test_retries_stop_at_retry_max(tmp_path: Path) -> None:
    """A stage that keeps failing is attempted exactly retry.max + 1 times before on_fail scraps the unit."""
    flow = build(
        tmp_path,
        """\
        recipe: retries
        version: 1
        stages:
          - {id: test, step: lab.flaky, with: {fails: 99}, retry: {max: 2}}
        """,
    )
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "scrapped"
    assert [a for _, a, _ in _attempts(history, "SN1")] == [1, 2, 3]


REWORK = """\
    recipe: rework
    version: 1
    stages:
      - {id: test, step: lab.flaky, with: {fails: FAILS}, retry: {max: 1}, on_fail: fix}
      - {id: pack, step: lab.measure}
    rework:
      - {id: fix, step: lab.measure, then: test, max_visits: 2}
"""


def test_failing_past_retries_goes_to_rework_and_back(tmp_path: Path) -> None:
    """A stage failing past its retries sends the unit to its rework stage, whose `then:` brings it back to pass."""
    flow = build(tmp_path, REWORK.replace("FAILS", "2"))
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "shipped"
    assert _attempts(history, "SN1") == [
        ("test", 1, Outcome.FAIL),
        ("test", 2, Outcome.FAIL),
        ("fix", 1, Outcome.PASS),
        ("test", 1, Outcome.PASS),
        ("pack", 1, Outcome.PASS),
    ]


def test_rework_past_max_visits_scraps_the_unit(tmp_path: Path) -> None:
    """A unit that keeps failing is reworked max_visits (2) times, then scrapped on the next failure."""
    flow = build(tmp_path, REWORK.replace("FAILS", "99"))
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "scrapped"
    assert "'fix'" in (result.reason or "") and "2 times" in (result.reason or "")
    assert bench.stages_run("SN1") == ["test", "test", "fix", "test", "test", "fix", "test", "test"]
    assert history.unit("SN1").status == "scrapped"


def test_on_fail_scrap_ends_the_unit_scrapped(tmp_path: Path) -> None:
    """`on_fail: scrap` ends a failing unit scrapped after one attempt, and no later stage runs."""
    flow = build(
        tmp_path,
        """\
        recipe: scrap
        version: 1
        stages:
          - {id: test, step: lab.flaky, with: {fails: 1}, on_fail: scrap}
          - {id: pack, step: lab.measure}
        """,
    )
    bench, history = Bench(), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "scrapped"
    assert result.reason == "'test' failed"
    assert _attempts(history, "SN1") == [("test", 1, Outcome.FAIL)]
    assert bench.runs[("SN1", "pack")] == 0


# -- FAIL is not ERROR --------------------------------------------------------------------------------

STATION_ERROR = """\
    recipe: station-error
    version: 1
    stages:
      - {id: test, step: lab.instrument, retry: {max: 2}, on_fail: fix}
      - {id: pack, step: lab.measure}
    rework:
      - {id: fix, step: lab.measure, then: test, max_visits: 1}
"""


def test_station_error_is_an_error_not_a_failure(tmp_path: Path) -> None:
    """A StationError ends the unit "error" after one attempt: no retry, no on_fail rework, not scrapped."""
    flow = build(tmp_path, STATION_ERROR)
    bench, history = Bench(instrument_down=True), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "error"
    assert "'test'" in (result.reason or "") and "the instrument is offline" in (result.reason or "")
    assert _attempts(history, "SN1") == [("test", 1, Outcome.ERROR)]
    assert bench.runs[("SN1", "fix")] == 0
    record = history.unit("SN1")  # still in its route, with why it stopped
    assert (record.status, record.reason) == ("in-route", result.reason)
    assert state_of(flow, history, "SN1").status == UnitStatus.IN_ROUTE


def test_unit_that_met_a_station_error_ships_once_the_station_is_repaired(tmp_path: Path) -> None:
    """After a StationError the same unit, run again on the repaired station, resumes at the stage and ships."""
    flow = build(tmp_path, STATION_ERROR)
    bench, history = Bench(instrument_down=True), memory_store()
    runner(flow, bench, history).run(_units("SN1"))
    bench.instrument_down = False
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "shipped"
    assert [o for _, _, o in _attempts(history, "SN1")] == [Outcome.ERROR, Outcome.PASS, Outcome.PASS]


def test_any_other_exception_is_an_error_naming_it() -> None:
    """A step raising an ordinary exception is an ERROR whose text names the exception; the unit is not scrapped."""

    def explode(ctx: StepContext) -> None:
        raise ValueError("bad reading")

    flow = direct_flow([stage("test", Probe, retry_max=2)])
    bench, history = Bench(probe=explode), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "error"
    assert "ValueError: bad reading" in (result.reason or "")
    assert _attempts(history, "SN1") == [("test", 1, Outcome.ERROR)]


# -- measurements -------------------------------------------------------------------------------------

MEASURED = """\
    recipe: measured
    version: 1
    stages:
      - id: test
        step: lab.measure
        with: {name: tx_power_dbm}
        measurements:
          tx_power_dbm: {limits: {min: 14.0, max: 18.0}, marginal: {min: 14.5, max: 17.5}, units: dBm}
"""


def test_measurement_outside_its_limits_fails_naming_it(tmp_path: Path) -> None:
    """A value above the limits makes the attempt a FAIL whose error names the measurement and the value."""
    flow = build(tmp_path, MEASURED)
    bench, history = Bench(values={"SN1": 19.2}), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "scrapped"
    [attempt] = history.unit("SN1").attempts
    assert attempt.outcome is Outcome.FAIL
    assert attempt.error is not None and "'tx_power_dbm'" in attempt.error and "19.2 dBm" in attempt.error
    assert attempt.measurements[0].verdict is Verdict.FAIL


def test_marginal_value_passes_with_a_marginal_verdict(tmp_path: Path) -> None:
    """A value inside the limits but outside the marginal band passes, recorded with verdict MARGINAL."""
    flow = build(tmp_path, MEASURED)
    bench, history = Bench(values={"SN1": 17.8, "SN2": 16.0}), memory_store()
    results = runner(flow, bench, history).run(_units("SN1", "SN2"))
    assert {r.status for r in results} == {"shipped"}
    [marginal] = history.unit("SN1").attempts
    [inside] = history.unit("SN2").attempts
    assert marginal.outcome is Outcome.PASS and marginal.measurements[0].verdict is Verdict.MARGINAL
    assert inside.measurements[0].verdict is Verdict.PASS
    assert (marginal.measurements[0].low, marginal.measurements[0].high, marginal.measurements[0].units) == (
        14.0,
        18.0,
        "dBm",
    )


def test_non_numeric_value_against_limits_fails(tmp_path: Path) -> None:
    """A value that is not a number fails a measurement with limits instead of erroring in a comparison."""
    flow = build(tmp_path, MEASURED)
    bench, history = Bench(values={"SN1": "n/a"}), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "scrapped"
    assert history.unit("SN1").attempts[0].outcome is Outcome.FAIL


def test_equals_measurement_passes_only_the_expected_value(tmp_path: Path) -> None:
    """An `equals:` measurement passes the equal value and fails any other."""
    flow = build(
        tmp_path,
        """\
        recipe: equals
        version: 1
        stages:
          - {id: test, step: lab.measure, with: {name: region}, measurements: {region: {equals: EU}}}
        """,
    )
    bench = Bench(values={"GOOD": "EU", "BAD": "US"})
    results = {r.serial: r.status for r in runner(flow, bench).run(_units("GOOD", "BAD"))}
    assert results == {"GOOD": "shipped", "BAD": "scrapped"}


def test_regex_measurement_passes_only_a_full_match(tmp_path: Path) -> None:
    """A `matches:` measurement passes a value the pattern matches in full, and fails a partial match."""
    flow = build(
        tmp_path,
        """\
        recipe: regex
        version: 1
        stages:
          - id: test
            step: lab.measure
            with: {name: mac}
            measurements: {mac: {matches: "[0-9A-F]{2}(:[0-9A-F]{2}){5}"}}
        """,
    )
    bench = Bench(values={"GOOD": "00:1B:44:11:3A:B7", "BAD": "00:1B:44:11:3A:B7:FF", "LOWER": "00:1b:44:11:3a:b7"})
    results = {r.serial: r.status for r in runner(flow, bench).run(_units("GOOD", "BAD", "LOWER"))}
    assert results == {"GOOD": "shipped", "BAD": "scrapped", "LOWER": "scrapped"}


def test_measurement_the_step_never_records_is_an_error(tmp_path: Path) -> None:
    """A stage measuring a value the step never recorded ends ERROR (the step or station is wrong), not PASS."""
    flow = build(tmp_path, MEASURED)
    bench, history = Bench(values={}), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    assert result.status == "error"
    assert "recorded no 'tx_power_dbm'" in (result.reason or "")
    assert history.unit("SN1").attempts[0].outcome is Outcome.ERROR


def test_limits_come_from_the_stage_not_the_step() -> None:
    """The same value from the same step passes or fails only according to the stage's limits."""
    wide = direct_flow([stage("test", Measure, measurements=(Measurement("v", limits=Limits(0, 10)),))])
    narrow = direct_flow([stage("test", Measure, measurements=(Measurement("v", limits=Limits(0, 1)),))])
    [passed] = runner(wide, Bench(values={"SN1": 5})).run(_units("SN1"))
    [failed] = runner(narrow, Bench(values={"SN1": 5})).run(_units("SN1"))
    assert (passed.status, failed.status) == ("shipped", "scrapped")


# -- timeouts and cleanup -------------------------------------------------------------------------------


def test_hanging_step_times_out_and_the_slot_goes_on(tmp_path: Path) -> None:
    """A step hanging past timeout_s 0.2 ends ERROR, told to stop (ctx.cancelled) and the device closed; the
    attempt ends only once the step's thread has stopped, says so, and the slot then runs the next unit."""
    flow = build(
        tmp_path,
        """\
        recipe: timeout
        version: 1
        stages:
          - {id: test, step: lab.hang, with: {serials: [SN1]}, timeout_s: 0.2}
        """,
    )
    bench, history = Bench(), memory_store()
    results = runner(flow, bench, history).run(_units("SN1", "SN2"), slots=1)
    by_serial = {r.serial: r for r in results}
    assert by_serial["SN1"].status == "error"
    assert "timed out after 0.2 s" in (by_serial["SN1"].reason or "")
    [attempt] = history.unit("SN1").attempts
    assert attempt.outcome is Outcome.ERROR
    assert attempt.error is not None and attempt.error.endswith("the step stopped")
    assert bench.cancelled == ["SN1"]  # already: the step's thread was waited for
    assert bench.device_of("SN1").closed >= 1
    assert by_serial["SN2"].status == "shipped"
    assert bench.runs[("SN2", "test")] == 1


def test_timed_steps_run_in_their_slots_own_thread() -> None:
    """Steps with timeout_s run in the slot's own thread, as untimed steps do (a watchdog watches their deadline,
    no thread is handed the step): 3 units of a timed and an untimed stage over 2 slots use 2 threads, one per
    slot, named after it."""
    seen: list[tuple[int, str, int]] = []
    lock = threading.Lock()

    def where(ctx: StepContext) -> None:
        with lock:
            seen.append((ctx.slot, threading.current_thread().name, threading.get_ident()))

    flow = direct_flow([stage("a", Probe, timeout_s=5), stage("b", Probe)])
    bench, history = Bench(probe=where), memory_store()
    results = runner(flow, bench, history).run(_units("SN1", "SN2", "SN3"), slots=2)
    assert {r.status for r in results} == {"shipped"}
    assert len(seen) == 6
    [one] = {(name, ident) for slot, name, ident in seen if slot == 1}
    [two] = {(name, ident) for slot, name, ident in seen if slot == 2}
    assert (one[0], two[0]) == ("slot-1", "slot-2") and one[1] != two[1]


def test_a_timed_out_step_that_does_not_stop_takes_its_slot_out_of_service() -> None:
    """A step ignoring ctx.cancelled past its timeout is waited for stop_grace_s, then recorded ERROR saying its
    thread was left running; its slot runs no more units (they are errors, never claimed), the others go on."""
    release = threading.Event()

    def stuck(ctx: StepContext) -> None:
        if ctx.unit.serial == "SN1":
            release.wait(10)

    flow = direct_flow([stage("test", Probe, timeout_s=0.1)])
    bench, history = Bench(probe=stuck), memory_store()
    station = runner(flow, bench, history)
    station.stop_grace_s = 0.2
    try:
        results = station.run(_units("SN1", "SN2", "SN3", "SN4"), slots=2)
    finally:
        release.set()
    by_serial = {r.serial: r for r in results}
    [attempt] = history.unit("SN1").attempts
    assert attempt.outcome is Outcome.ERROR
    assert "did not stop within 0.2 s and its thread was left running" in (attempt.error or "")
    assert by_serial["SN1"].status == "error"
    assert by_serial["SN3"].status == "error"
    assert "slot 1 is out of service" in (by_serial["SN3"].reason or "")
    assert history.unit("SN3").attempts == [] and bench.runs[("SN3", "test")] == 0
    assert (by_serial["SN2"].status, by_serial["SN4"].status) == ("shipped", "shipped")


class _Ignores:
    """A timed step body that ignores ctx.cancelled for the units it is told to, until the test releases it; it
    registers a cleanup and measures, so what its thread does after it returns can be seen."""

    def __init__(self, *serials: str) -> None:
        self.serials = serials
        self.waiting = threading.Event()
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []
        self.cleaned: list[tuple[str, str]] = []

    def __call__(self, ctx: StepContext) -> None:
        ctx.on_cleanup(lambda: self.cleaned.append((ctx.unit.serial, threading.current_thread().name)))
        if ctx.unit.serial in self.serials:
            self.threads.append(threading.current_thread())
            self.waiting.set()
            self.release.wait(10)
            ctx.measure("late", 1)


def test_a_step_left_behind_is_ended_by_the_thread_taking_over_and_records_nothing_when_it_returns() -> None:
    """A timed step that ignores its timeout and its grace: a new thread takes over its slot, records the attempt
    as the timeout ERROR (its cleanup run, the device closed once, the unit ended and its claim released) and
    gives the slot's next unit its result; when the step returns at last, its thread records nothing, sends no
    event and ends."""
    ignores, events = _Ignores("SN1"), list[Event]()
    flow = direct_flow([stage("test", Probe, timeout_s=0.1)])
    bench, history = Bench(probe=ignores), memory_store()
    station = runner(flow, bench, history, subscribers=[events.append])
    station.stop_grace_s = 0.2
    try:
        results = station.run(_units("SN1", "SN2"), slots=1)
    finally:
        ignores.release.set()
    [stuck] = ignores.threads
    stuck.join(5)
    assert not stuck.is_alive()
    assert [(r.serial, r.status) for r in results] == [("SN1", "error"), ("SN2", "error")]
    assert "timed out after 0.1 s" in (results[0].reason or "") and "out of service" in (results[1].reason or "")
    [attempt] = history.unit("SN1").attempts
    assert attempt.outcome is Outcome.ERROR and attempt.measurements == ()
    assert "did not stop within 0.2 s and its thread was left running" in (attempt.error or "")
    assert history.unit("SN1").status == "in-route" and history.unit("SN2").attempts == []
    assert [s for s, _ in ignores.cleaned] == ["SN1"]
    assert bench.device_of("SN1").closed == 2  # at the timeout, and as the unit ended
    assert [type(e).__name__ for e in events] == ["UnitStarted", "StepStarted", "StepEnded", "UnitEnded", "UnitEnded"]
    [again] = runner(flow, Bench(), history).run(_units("SN1"))
    assert again.status == "shipped"  # its claim was released


def test_a_timed_step_that_stops_in_its_grace_goes_on_in_its_own_thread_and_the_slot_runs_its_next_unit() -> None:
    """A timed step that stops when told to at its timeout: its own thread (no other takes over) records the
    timeout ERROR and runs the slot's next unit."""
    idents: list[int] = []

    def stops(ctx: StepContext) -> None:
        idents.append(threading.get_ident())
        if ctx.unit.serial == "SN1" and ctx.cancelled.wait(10):
            raise StationError("told to stop")

    flow = direct_flow([stage("test", Probe, timeout_s=0.1)])
    history = memory_store()
    results = runner(flow, Bench(probe=stops), history).run(_units("SN1", "SN2"), slots=1)
    assert [(r.serial, r.status) for r in results] == [("SN1", "error"), ("SN2", "shipped")]
    [attempt] = history.unit("SN1").attempts
    assert "timed out after 0.1 s" in (attempt.error or "") and (attempt.error or "").endswith("the step stopped")
    assert len(idents) == 2 and idents[0] == idents[1]


@pytest.mark.parametrize("honours", [True, False], ids=["stops", "ignores"])
def test_a_stop_during_a_timed_step_aborts_it(honours: bool) -> None:
    """runner.stop() while a timed step runs: a step that stops is recorded ABORTED by its own thread; one that
    ignores the stop is given up after the grace, recorded ABORTED, and records nothing when it returns."""
    ignores = _Ignores() if honours else _Ignores("SN1")

    def step(ctx: StepContext) -> None:
        if honours:
            ignores.threads.append(threading.current_thread())
            ignores.waiting.set()
            if ctx.cancelled.wait(10):
                raise StationError("told to stop")
        else:
            ignores(ctx)

    flow = direct_flow([stage("test", Probe, timeout_s=30), stage("pack", Probe)])
    history = memory_store()
    station = runner(flow, Bench(probe=step), history)
    station.stop_grace_s = 0.3
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.extend(station.run(_units("SN1", "SN2"), slots=1)))
    worker.start()
    try:
        assert ignores.waiting.wait(5), "the step never started"
        station.stop()
        worker.join(5)
        assert not worker.is_alive()
    finally:
        ignores.release.set()
    [stuck] = ignores.threads
    stuck.join(5)
    assert not stuck.is_alive()
    assert [(r.serial, r.status) for r in results] == [("SN1", "aborted")]
    assert _attempts(history, "SN1") == [("test", 1, Outcome.ABORTED)]
    [attempt] = history.unit("SN1").attempts
    assert ("given up" in (attempt.error or "")) is not honours
    assert history.unit("SN1").status == "in-route" and history.unit("SN2").attempts == []


@pytest.mark.parametrize(
    ("ending", "outcome", "timeout"),
    [
        ("pass", Outcome.PASS, None),
        ("fail", Outcome.FAIL, None),
        ("error", Outcome.ERROR, None),
        ("hang", Outcome.ERROR, 0.2),
    ],
    ids=["pass", "fail", "error", "timeout"],
)
def test_cleanup_always_runs(ending: str, outcome: Outcome, timeout: float | None) -> None:
    """A cleanup the step registered runs once whether the attempt passes, fails, errs or times out."""
    flow = direct_flow([stage("test", Cleanup, Cleanup.Params(ending=ending), timeout_s=timeout)])
    bench, history = Bench(), memory_store()
    runner(flow, bench, history).run(_units("SN1"))
    assert history.unit("SN1").attempts[0].outcome is outcome
    assert bench.cleaned == [("SN1", "test", 1)]


def test_a_failing_cleanup_turns_a_pass_into_a_station_error() -> None:
    """A step that passed but whose cleanup raised is an ERROR naming the cleanup: the station may be off."""
    flow = direct_flow([stage("test", Cleanup, Cleanup.Params(ending="pass"))])
    bench, history = Bench(broken_cleanup=True), memory_store()
    [result] = runner(flow, bench, history).run(_units("SN1"))
    attempt = history.unit("SN1").attempts[0]
    assert attempt.outcome is Outcome.ERROR
    assert attempt.error is not None and "cleanup failed" in attempt.error and "clamp" in attempt.error
    assert result.status == "error"


def test_cleanups_run_last_registered_first() -> None:
    """Two cleanups of one attempt run in reverse order of registration."""
    done: list[str] = []

    def step(ctx: StepContext) -> None:
        ctx.on_cleanup(lambda: done.append("first registered"))
        ctx.on_cleanup(lambda: done.append("second registered"))

    flow = direct_flow([stage("test", Probe)])
    runner(flow, Bench(probe=step)).run(_units("SN1"))
    assert done == ["second registered", "first registered"]


def test_each_units_device_is_closed_when_it_leaves() -> None:
    """Every unit's device is opened once and closed once, whatever its route ended in."""
    flow = direct_flow([stage("test", Measure, measurements=(Measurement("v", limits=Limits(0, 1)),))])
    bench = Bench(values={"GOOD": 0.5, "BAD": 2})
    runner(flow, bench).run(_units("GOOD", "BAD", "NONE"))
    assert sorted(d.serial for d in bench.devices) == ["BAD", "GOOD", "NONE"]
    assert [d.closed for d in bench.devices] == [1, 1, 1]


# -- abort ----------------------------------------------------------------------------------------------


def test_stop_aborts_the_waiting_attempt_and_keeps_the_record(tmp_path: Path) -> None:
    """runner.stop() from another thread ends the waiting attempt ABORTED after its cleanup, keeps the earlier
    attempts, reports the unit "aborted" and starts no further unit."""
    flow = build(
        tmp_path,
        """\
        recipe: abort
        version: 1
        stages:
          - {id: test, step: lab.flaky, with: {fails: 1}, retry: {max: 1}}
          - {id: wait, step: lab.cleanup, with: {ending: hang}}
        """,
    )
    bench, history = Bench(), memory_store()
    station = runner(flow, bench, history)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.extend(station.run(_units("SN1", "SN2"), slots=1)))
    worker.start()
    assert bench.waiting.wait(5), "the step never started waiting"
    station.stop()
    worker.join(5)
    assert not worker.is_alive()
    assert [(r.serial, r.status) for r in results] == [("SN1", "aborted")]
    assert _attempts(history, "SN1") == [
        ("test", 1, Outcome.FAIL),
        ("test", 2, Outcome.PASS),
        ("wait", 1, Outcome.ABORTED),
    ]
    assert bench.cleaned == [("SN1", "wait", 1)]
    assert bench.cancelled == ["SN1"]
    assert bench.runs[("SN2", "test")] == 0
    record = history.unit("SN1")  # still in its route, with why it stopped
    assert (record.status, record.reason) == ("in-route", results[0].reason)


# -- slots ----------------------------------------------------------------------------------------------


def test_slots_run_units_at_once() -> None:
    """8 units of a 0.2 s step on 8 slots take well under 8 x 0.2 s (this checks concurrency, not speed)."""
    flow = direct_flow([stage("test", Sleep, Sleep.Params(seconds=0.2))])
    bench, history = Bench(), memory_store()
    serials = [f"SN{i}" for i in range(8)]
    started = time.perf_counter()
    results = runner(flow, bench, history).run(_units(*serials), slots=8)
    elapsed = time.perf_counter() - started
    assert sorted(r.serial for r in results) == serials
    assert {r.status for r in results} == {"shipped"}
    assert elapsed < 4 * 0.2
    slots = {history.unit(s).attempts[0].slot for s in serials}
    assert len(slots) > 1 and slots <= set(range(1, 9))


def test_more_slots_than_units_runs_each_unit_once() -> None:
    """Asking for more slots than units runs every unit exactly once."""
    flow = direct_flow([stage("test", Measure)])
    bench = Bench()
    results = runner(flow, bench).run(_units("SN1", "SN2"), slots=8)
    assert sorted(r.serial for r in results) == ["SN1", "SN2"]
    assert bench.runs == {("SN1", "test"): 1, ("SN2", "test"): 1}


# -- events ---------------------------------------------------------------------------------------------


def test_subscribers_get_a_start_and_an_end_for_every_attempt(tmp_path: Path) -> None:
    """Each attempt sends StepStarted then StepEnded (outcome, duration, measurements), between UnitStarted and
    UnitEnded."""
    flow = build(
        tmp_path,
        """\
        recipe: events
        version: 1
        stages:
          - {id: test, step: lab.flaky, with: {fails: 1}, retry: {max: 1}}
          - {id: measure, step: lab.measure, measurements: {v: {limits: {min: 0, max: 1}}}}
          - {id: slow, step: lab.sleep, with: {seconds: 0.05}}
        """,
    )
    events: list[Event] = []
    bench = Bench(values={"SN1": 0.5})
    runner(flow, bench, subscribers=[events.append]).run(_units("SN1"))
    assert isinstance(events[0], UnitStarted) and isinstance(events[-1], UnitEnded)
    assert events[-1].status == "shipped"
    steps = events[1:-1]
    assert [type(e) for e in steps] == [StepStarted, StepEnded] * 4
    pairs = list(zip(steps[::2], steps[1::2], strict=True))
    assert [(s.stage, s.attempt) for s, _ in pairs] == [("test", 1), ("test", 2), ("measure", 1), ("slow", 1)]
    assert all((s.stage, s.attempt, s.serial, s.slot) == (e.stage, e.attempt, e.serial, e.slot) for s, e in pairs)
    ended = [e for _, e in pairs]
    assert isinstance(ended[0], StepEnded)
    assert [e.outcome for e in ended if isinstance(e, StepEnded)] == ["FAIL", "PASS", "PASS", "PASS"]
    assert all(isinstance(e, StepEnded) and e.duration_s >= 0 for e in ended)
    assert isinstance(ended[3], StepEnded) and ended[3].duration_s >= 0.05
    assert isinstance(ended[0], StepEnded) and ended[0].error == "failure 1 of 1"
    assert isinstance(ended[2], StepEnded) and [m.name for m in ended[2].measurements] == ["v"]
    # The events, attempts and measurements made at every step are made as bare tuples: each has every field.
    made = [*steps, *(m for e in ended if isinstance(e, StepEnded) for m in e.measurements)]
    assert all(len(x) == len(type(x)._fields) for x in made)


def test_a_failing_subscriber_does_not_break_the_run() -> None:
    """A subscriber that raises on every event is logged and ignored: the unit ships and other subscribers hear all."""

    def broken(event: Event) -> None:
        raise RuntimeError("the exporter is down")

    events: list[Event] = []
    flow = direct_flow([stage("test", Measure), stage("pack", Measure)])
    [result] = runner(flow, Bench(), subscribers=[broken, events.append]).run(_units("SN1"))
    assert result.status == "shipped"
    assert [type(e).__name__ for e in events] == [
        "UnitStarted",
        "StepStarted",
        "StepEnded",
        "StepStarted",
        "StepEnded",
        "UnitEnded",
    ]
