"""Stopping a station: Ctrl-C or SIGTERM ends the running attempts ABORTED after their cleanup, the record
is kept, exit 3; a stop is bounded, and a slot still busy at its end is given up and recorded."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from steplab import HANG_LIMIT_S, REGISTRY, Bench, Probe, direct_flow, memory_store, runner, stage

from engine.context import StepContext, UnitInfo
from engine.events import Event, StepEnded, Stopping
from engine.flow import Flow
from engine.outcome import Outcome
from engine.run.attempt import LeftBehind, StepTimeout, StepWatch, Watchdog
from engine.run.measure import Judge
from engine.run.operator import TerminalOperator
from engine.run.runner import StationRunner, UnitResult, UnitSpec
from engine.store import open_store
from engine.store.history import History
from engine.testing import FakeDevice, FakeOperator

ROOT = Path(__file__).resolve().parent.parent


def _run_hanging(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, list[str]]:
    """``floorflow run --sim`` on one unit whose 'functional' step hangs for 30 s, once that step has started."""
    config = tmp_path / "sim.yaml"
    config.write_text("units:\n  T1: {hang: {functional: 30}}\n")
    records = tmp_path / "records"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            str(ROOT / "workflows" / "sphere-thermostat.yaml"),
            "--sim",
            "--unit",
            "T1",
            "--sim-config",
            str(config),
            "--json-out",
            str(records),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        seen.append(line)
        if "functional attempt 1 started" in line or time.monotonic() > deadline:
            break
    return proc, records, seen


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_aborts_the_running_attempt_and_keeps_the_record(tmp_path: Path, signum: int) -> None:
    """SIGINT (Ctrl-C) or SIGTERM (a service manager) while a step waits on the device: the operator is told at
    once, the attempt ends ABORTED, exit 3, and the store and the JSON record both hold the aborted unit."""
    proc, records, seen = _run_hanging(tmp_path)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    out = "".join(seen) + out
    assert proc.returncode == 3, out + err
    assert "Traceback" not in err
    assert "aborting: waiting for 1 running step to clean up" in out
    record = json.loads((records / "T1.json").read_text())
    assert record["status"] == "aborted"
    outcomes = [(a["stage"], a["outcome"]) for a in record["attempts"]]
    assert outcomes[-1] == ("functional", "ABORTED")
    assert ("load_test_app", "PASS") in outcomes
    with open_store(f"sqlite:///{records / 'floorflow.db'}") as store:
        stored = store.unit("T1")
    assert stored.status == "in-route"  # the store's status: not shipped, ready to be run again
    assert [(a.stage, a.outcome) for a in stored.attempts] == [(stage, Outcome(outcome)) for stage, outcome in outcomes]


# -- a bounded stop ---------------------------------------------------------------------------------------


class Stuck:
    """A step body that ignores ctx.cancelled and waits until the test releases it."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.waiting = threading.Event()
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self, ctx: StepContext) -> None:
        if ctx.stage.id != self.stage:
            return
        self.threads.append(threading.current_thread())
        self.waiting.set()
        self.release.wait(HANG_LIMIT_S)


def _stop_while_stuck(flow: Flow, stuck: Stuck, history: History, grace_s: float) -> list[UnitResult]:
    """Run SN1 in a thread, stop the run once the stuck step is waiting, and return what run() returned."""
    station = runner(flow, Bench(probe=stuck), history)
    station.stop_grace_s = grace_s
    results: list[UnitResult] = []
    worker = threading.Thread(target=lambda: results.extend(station.run([UnitSpec("SN1")])))
    worker.start()
    assert stuck.waiting.wait(5), "the step never started"
    station.stop()
    worker.join(HANG_LIMIT_S / 2)
    assert not worker.is_alive(), "run() did not return while a step ignored the stop"
    return results


def test_a_slot_still_busy_after_the_grace_is_given_up_recorded_aborted_and_writes_no_more() -> None:
    """A step that ignores the stop: run() returns after the grace with the unit and its attempt recorded
    ABORTED (saying it was given up), the unit's claim released; when the step ends later, its slot records
    nothing more and runs no further stage."""
    flow = direct_flow([stage("wait", Probe), stage("pack", Probe)])
    stuck, history = Stuck("wait"), memory_store()
    [result] = _stop_while_stuck(flow, stuck, history, grace_s=0.3)
    assert result.status == "aborted" and "given up" in (result.reason or "")
    [attempt] = history.unit("SN1").attempts
    assert (attempt.stage, attempt.outcome, attempt.slot) == ("wait", Outcome.ABORTED, 1)
    assert "still running 0.3 s after the stop" in (attempt.error or "")
    record = history.unit("SN1")  # still in its route, with why it stopped
    assert (record.status, record.reason) == ("in-route", result.reason)
    stuck.release.set()
    [slot_thread] = stuck.threads
    slot_thread.join(5)
    assert not slot_thread.is_alive()
    assert [(a.stage, a.outcome) for a in history.unit("SN1").attempts] == [("wait", Outcome.ABORTED)]
    [again] = runner(flow, Bench(), history).run([UnitSpec("SN1")])
    assert again.status == "shipped"  # the claim was released: the unit runs again from 'wait'


def test_an_irreversible_step_given_up_at_a_stop_quarantines_the_unit() -> None:
    """An irreversible step still running when its slot is given up: whether it took effect is unknown, so
    its ABORTED attempt quarantines the unit, as any interrupted irreversible step does."""
    flow = direct_flow([stage("burn", Probe, irreversible=True)])
    stuck, history = Stuck("burn"), memory_store()
    [result] = _stop_while_stuck(flow, stuck, history, grace_s=0.2)
    stuck.release.set()
    assert result.status == "aborted"
    record = history.unit("SN1")
    assert [(a.stage, a.outcome) for a in record.attempts] == [("burn", Outcome.ABORTED)]
    assert record.status == "quarantined"
    assert "irreversible stage 'burn' ended in ABORTED" in (record.reason or "")


def test_a_second_ctrl_c_during_the_stop_is_noted_and_the_stop_goes_on(capfd: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C, then Ctrl-C again while the stop waits for a step that ignores it: the second is answered on
    stderr, not raised, and run() still returns with the unit given up and recorded."""
    stuck = Stuck("wait")
    stopping = threading.Event()

    def listen(event: Event) -> None:
        if isinstance(event, Stopping):
            stopping.set()

    def interrupt_twice() -> None:
        if stuck.waiting.wait(5):
            os.kill(os.getpid(), signal.SIGINT)
            if stopping.wait(5):
                os.kill(os.getpid(), signal.SIGINT)

    history = memory_store()
    station = runner(direct_flow([stage("wait", Probe)]), Bench(probe=stuck), history, subscribers=[listen])
    station.stop_grace_s = 1.0
    threading.Thread(target=interrupt_twice, daemon=True).start()
    try:
        [result] = station.run([UnitSpec("SN1")])
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C cut the stop short")
    finally:
        stuck.release.set()
    assert result.status == "aborted" and "given up" in (result.reason or "")
    assert [a.outcome for a in history.unit("SN1").attempts] == [Outcome.ABORTED]
    assert "already aborting" in capfd.readouterr().err


# -- Ctrl-C at an operator's prompt ---------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_ctrl_c_at_an_operator_prompt_ends_the_attempt_at_once_and_records_it() -> None:
    """SIGINT while a manual check waits at a real terminal: the operator is told at once that one step is
    cleaning up, the question ends, and the attempt is recorded ABORTED by its own slot (not given up at the
    end of the grace), the unit aborted."""
    leader, follower = os.openpty()
    try:
        with open(follower, closefd=False) as tty_in:
            out = io.StringIO()
            operator = TerminalOperator(Console(file=out, force_terminal=False, width=120), "alice", stream=tty_in)

            def check(ctx: StepContext) -> None:
                ctx.operator.ask(ctx.stage.id, "scratches", "No scratches?")

            def interrupt() -> None:
                deadline = time.monotonic() + 5
                while "No scratches?" not in out.getvalue():
                    if time.monotonic() > deadline:
                        return  # never asked: the test fails on the missing ABORTED attempt
                    time.sleep(0.01)
                os.kill(os.getpid(), signal.SIGINT)

            events: list[Event] = []
            history = memory_store()
            flow = direct_flow([stage("visual", Probe)])
            station = StationRunner(
                flow, REGISTRY, Bench(probe=check), operator, history, [events.append], None, "alice"
            )
            station.stop_grace_s = 5.0
            threading.Thread(target=interrupt, daemon=True).start()
            [result] = station.run([UnitSpec("SN1")])
            os.write(leader, b"y\n")  # a question still waiting (a broken stop) ends, so the terminal can close
    finally:
        os.close(leader)
        os.close(follower)
    assert result.status == "aborted"
    [attempt] = history.unit("SN1").attempts
    assert attempt.outcome is Outcome.ABORTED
    assert "the run was stopped while check 'scratches' of stage 'visual' was asked" in (attempt.error or "")
    stopping = next(n for n, e in enumerate(events) if isinstance(e, Stopping))
    ended = next(n for n, e in enumerate(events) if isinstance(e, StepEnded))
    assert stopping < ended
    assert events[stopping] == Stopping(1, 5.0)


# -- the watch on a slot's timed steps ----------------------------------------------------------------


def _timed_context(cancelled: threading.Event | None = None, device: object = None) -> StepContext:
    timed = stage("wait", Probe, timeout_s=0.1)
    return StepContext(
        params=timed.params,
        stage=timed,
        unit=UnitInfo("SN1"),
        slot=1,
        station=None,
        attempt=1,
        device=device,
        operator=FakeOperator(),
        resources={},
        images={},
        log=logging.getLogger("test_abort"),
        judge=Judge(timed),
        cancelled=cancelled if cancelled is not None else threading.Event(),
    )


class _TakenOver:
    """A watch's take_over: notes the step, the error and the thread it was called in."""

    def __init__(self) -> None:
        self.calls: list[tuple[StepContext, str, int]] = []
        self.done = threading.Event()

    def __call__(self, ctx: StepContext, error: str) -> None:
        self.calls.append((ctx, error, threading.get_ident()))
        self.done.set()


def _watched() -> tuple[Watchdog, StepWatch, _TakenOver]:
    dog, watch, taken = Watchdog(), StepWatch("slot-1"), _TakenOver()
    dog.watch(watch, taken)
    return dog, watch, taken


def test_a_watched_step_runs_in_the_calling_thread_and_hands_back_what_it_returned_or_raised() -> None:
    """A timed step runs in the slot's own thread: what it returns is returned and what it raises is raised; no
    thread takes over."""
    dog, watch, taken = _watched()
    idents: list[int] = []

    def note(ctx: StepContext) -> int:
        idents.append(threading.get_ident())
        return len(idents)

    def broken(ctx: StepContext) -> None:
        raise ValueError("broken")

    try:
        assert [watch.call(note, _timed_context(), 1.0, 0.1) for _ in range(3)] == [1, 2, 3]
        with pytest.raises(ValueError, match="broken"):
            watch.call(broken, _timed_context(), 1.0, 0.1)
    finally:
        dog.close()
    assert set(idents) == {threading.get_ident()} and taken.calls == []


@pytest.mark.parametrize("ends", ["returns", "raises"])
def test_a_watched_step_past_its_timeout_that_stops_raises_step_timeout_in_its_own_thread(ends: str) -> None:
    """Past its timeout a step is told to stop and its device closed; one that then returns, or raises (here what
    the closed device made it raise), gives StepTimeout in its own thread, and nothing takes over."""
    dog, watch, taken = _watched()
    device = FakeDevice("SN1", 1)

    def waits(ctx: StepContext) -> str:
        if ctx.cancelled.wait(HANG_LIMIT_S) and ends == "raises":
            raise OSError("the device was closed")
        return "late"

    ctx = _timed_context(device=device)
    try:
        with pytest.raises(StepTimeout):
            watch.call(waits, ctx, 0.05, 5.0)
    finally:
        dog.close()
    assert ctx.cancelled.is_set() and device.closed == 1 and not ctx.abandoned and taken.calls == []


@pytest.mark.parametrize("by", ["timeout", "stop"])
def test_a_watched_step_that_does_not_stop_is_left_behind_and_another_thread_takes_over(by: str) -> None:
    """A step that outlives its timeout (or a stop's cancel) and its grace: take_over is called, in another
    thread, with the attempt's error, ctx.abandoned says so; when the step returns at last, its thread gets
    LeftBehind."""
    dog, watch, taken = _watched()
    release, cancelled = threading.Event(), threading.Event()
    ctx = _timed_context(cancelled)
    raised: list[BaseException] = []

    def stuck(ctx: StepContext) -> str:
        release.wait(HANG_LIMIT_S)
        return "late"

    def slot() -> None:
        try:
            watch.call(stuck, ctx, 0.05 if by == "timeout" else 30.0, 0.05)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=slot)
    thread.start()
    if by == "stop":
        cancelled.set()
    try:
        assert taken.done.wait(5), "nothing took over"
        assert thread.is_alive() and raised == []
    finally:
        release.set()
        dog.close()
    thread.join(5)
    [(seen, error, ident)] = taken.calls
    assert seen is ctx and ctx.abandoned and ctx.cancelled.is_set() and ident != thread.ident
    told = "timed out after 0.1 s; the unit's device was closed; " if by == "timeout" else "told to stop; "
    assert error == told + "the step did not stop within 0.05 s and its thread was left running"
    assert [type(e) for e in raised] == [LeftBehind]


def test_a_watched_step_a_stop_cancels_returns_what_it_returned_in_its_own_thread() -> None:
    """A timed step cancelled by a stop that returns within its grace hands back what it returned, in the
    slot's own thread, and the next step runs there too."""
    dog, watch, taken = _watched()
    cancelled = threading.Event()
    idents: list[int] = []

    def waits(ctx: StepContext) -> str:
        idents.append(threading.get_ident())
        ctx.cancelled.wait(HANG_LIMIT_S)
        return "stopped"

    threading.Timer(0.05, cancelled.set).start()
    try:
        assert watch.call(waits, _timed_context(cancelled), 5.0, 1.0) == "stopped"
        assert watch.call(waits, _timed_context(cancelled), 5.0, 1.0) == "stopped"
    finally:
        dog.close()
    assert idents == [threading.get_ident()] * 2 and taken.calls == []
