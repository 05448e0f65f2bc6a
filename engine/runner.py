"""The station runner: units through the stages a station owns, one unit per slot, at once.

For each stage the runner checks the guards, builds the step's context, times and instruments
the attempt (subscribers get a start and an end event for every step), judges the measurements,
retries, follows ``on_fail``, and records the attempt in the unit's history. Cleanup always runs;
a stuck step is stopped by its timeout; an abort (Ctrl-C) ends the current attempts as ABORTED and
keeps what was recorded.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.attempt import call_step, run_cleanups
from engine.context import Line, Operator, StepContext, UnitInfo
from engine.events import Event, StepEnded, StepProgress, StepStarted, Subscriber, UnitEnded, UnitStarted
from engine.flow import SCRAPPED, SHIPPED, Flow, Stage
from engine.guards import Refusal, refusal
from engine.history import QUARANTINED, History
from engine.machine import FlowMachine, SlotModel
from engine.measure import Judge
from engine.outcome import Outcome, StationError
from engine.record import Attempt, RecipeRef, UnitRecord
from engine.registry import Registry
from engine.sampling import is_sampled, recall_threshold
from engine.unitstate import IN_ROUTE, RouteIndex, UnitState

log = logging.getLogger("floorflow.runner")


@dataclass(frozen=True)
class UnitSpec:
    serial: str
    lot: str | None = None


@dataclass(frozen=True)
class UnitResult:
    serial: str
    status: str
    """shipped, scrapped, in-route (done at this station), refused, error or aborted."""
    reason: str | None = None


class StationRunner:
    def __init__(
        self,
        flow: Flow,
        registry: Registry,
        line: Line,
        operator: Operator,
        history: History,
        subscribers: Sequence[Subscriber] = (),
        station: str | None = None,
        operator_name: str | None = None,
    ) -> None:
        self.flow = flow
        self.index = RouteIndex(flow)
        self.machine = FlowMachine(flow)
        self.line = line
        self.resources = line.resources()
        self.operator = operator
        self.operator_name = operator_name or getattr(operator, "name", None)
        self.history = history
        self.subscribers = list(subscribers)
        self.station = station
        self.recipe = RecipeRef(flow.recipe, flow.version, flow.content_hash)
        self.abort = threading.Event()
        self._cancels: set[threading.Event] = set()
        self._slot_models: list[SlotModel] = []
        self._info: dict[str, UnitInfo] = {}
        self._lock = threading.Lock()
        self._steps = {s.id: registry.get(s.step)() for s in flow.stages.values()}
        self._judges = {s.id: Judge(s) for s in flow.stages.values()}
        self._logs = {s.id: logging.getLogger(f"floorflow.step.{s.step}") for s in flow.stages.values()}
        self._own = frozenset(s.id for s in flow.stages.values() if station is None or s.station == station)

    # -- the station ---------------------------------------------------------------------------

    def run(self, units: Iterable[UnitSpec], slots: int = 1) -> list[UnitResult]:
        """Run every unit, ``slots`` at a time; Ctrl-C aborts cleanly and returns what was done."""
        pending: queue.SimpleQueue[UnitSpec] = queue.SimpleQueue()
        count = 0
        for unit in units:
            pending.put(unit)
            count += 1
        results: list[UnitResult] = []
        models = self._models(max(1, min(slots, count)))

        all_done = threading.Event()
        running = [len(models)]
        prepare = getattr(self.line, "prepare", None)
        if prepare is not None:
            prepare(len(models))
        started = threading.Event()

        def work(model: SlotModel) -> None:
            started.wait()  # every slot starts together: a late-started slot would trail the gang
            try:
                while not self.abort.is_set():
                    try:
                        unit = pending.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        result = self.run_unit(unit, model)
                    except Exception as exc:  # a slot must outlive any one unit
                        log.exception("unit %s could not be run", unit.serial)
                        result = UnitResult(unit.serial, "error", f"{type(exc).__name__}: {exc}")
                    with self._lock:
                        results.append(result)
            finally:
                with self._lock:
                    running[0] -= 1
                    if running[0] == 0:
                        all_done.set()

        for model in models:
            threading.Thread(target=work, args=(model,), name=f"slot-{model.slot}", daemon=True).start()
        started.set()
        # Waiting on an Event, not Thread.join: a Ctrl-C that interrupts join() can leave the
        # thread looking finished while it still runs, and its unit's record unwritten.
        try:
            while not all_done.wait(0.1):
                pass
        except KeyboardInterrupt:
            self.stop()
            all_done.wait(10)
        return results

    def _models(self, slots: int) -> list[SlotModel]:
        """The slots' models, added to the machine once for the runner's life (adding is O(states))."""
        while len(self._slot_models) < slots:
            self._slot_models.append(self.machine.attach(len(self._slot_models) + 1))
        return self._slot_models[:slots]

    def stop(self) -> None:
        """Abort: running attempts end as ABORTED (after their cleanup); no new unit starts."""
        self.abort.set()
        with self._lock:
            for cancel in self._cancels:
                cancel.set()

    def _emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("subscriber %r failed on %r", subscriber, event)

    # -- one unit --------------------------------------------------------------------------------

    def run_unit(self, unit: UnitSpec, model: SlotModel) -> UnitResult:
        states: list[UnitState] = []

        def decide(record: UnitRecord, lot_hold: str | None) -> str | None:
            state = UnitState.replay(self.index, record.attempts)
            states.append(state)
            return self._admission(record, state, lot_hold)

        try:
            record, refused = self.history.claim(
                unit.serial, station=self.station, lot=unit.lot, product=self.flow.product, decide=decide
            )
        except Exception as exc:
            log.exception("the record of %s could not be read", unit.serial)
            result = UnitResult(unit.serial, "error", f"the unit's record could not be read: {exc}")
            self._emit(UnitStarted(unit.serial, model.slot, unit.lot))
            self._emit(UnitEnded(unit.serial, model.slot, result.status, result.reason))
            return result
        lot = unit.lot if unit.lot is not None else record.lot
        self._emit(UnitStarted(unit.serial, model.slot, lot))
        if refused is not None:
            self._emit(UnitEnded(unit.serial, model.slot, "refused", refused))
            return UnitResult(unit.serial, "refused", refused)
        state = states[-1]
        cancel = threading.Event()
        with self._lock:
            self._cancels.add(cancel)
        try:
            result = self._route(UnitSpec(unit.serial, lot), state, model, cancel)
        except Exception as exc:  # the claim is released below, whatever went wrong
            log.exception("unit %s could not be run", unit.serial)
            result = UnitResult(unit.serial, "error", f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._cancels.discard(cancel)
        self._info.pop(unit.serial, None)
        try:
            self.history.finish(unit.serial, result.status, result.reason, state.lifecycle_state)
        except Exception as exc:
            log.exception("the record of %s could not be written", unit.serial)
            result = UnitResult(unit.serial, "error", f"the unit's record could not be written: {exc}")
        self._emit(UnitEnded(unit.serial, model.slot, result.status, result.reason))
        return result

    def _admission(self, record: UnitRecord, state: UnitState, lot_hold: str | None) -> str | None:
        """Why the unit may not start here (None: it may), decided while the store holds it locked."""
        if record.status == QUARANTINED:
            return str(
                Refusal(
                    "status",
                    f"the unit is quarantined ({record.reason}); a supervisor's decision releases it: "
                    f"floorflow units release {record.serial} --decision done|not-done --by NAME",
                )
            )
        stage = state.next_stage(self._own)
        if stage is None:
            return None
        if stage.id not in self._own:
            if any(s not in state.passed for s in self._own if not self.flow.stages[s].rework):
                where = f" at station {stage.station}" if stage.station else ""
                return f"route interlock: the unit has not passed '{stage.id}'{where}, which comes first"
            return None
        refused = refusal(state, stage, lot_hold)
        return None if refused is None else str(refused)

    def _route(self, unit: UnitSpec, state: UnitState, model: SlotModel, cancel: threading.Event) -> UnitResult:
        self.machine.place(model, self._position(state))
        try:
            device = self.line.open_unit(unit.serial, model.slot)
        except StationError as exc:
            return UnitResult(unit.serial, "error", str(exc))
        except Exception as exc:
            log.exception("opening the device of %s failed", unit.serial)
            return UnitResult(unit.serial, "error", f"cannot open the unit's device: {type(exc).__name__}: {exc}")
        operator = self.operator
        bind = getattr(operator, "for_unit", None)
        if callable(bind):  # an operator that says which unit and slot is asking
            operator = bind(unit.serial, model.slot)
        ran_here = False
        try:
            while True:
                if self.abort.is_set():
                    return UnitResult(unit.serial, "aborted", "aborted by the operator")
                stage = state.next_stage(self._own)
                if stage is None:
                    status = state.status if state.status != IN_ROUTE else "shipped"
                    return UnitResult(unit.serial, status, state.reason)
                if stage.id not in self._own:
                    return self._leave(unit, state, stage, ran_here)
                lot_hold = self.history.lot_hold(unit.lot) if unit.lot else None
                refused = refusal(state, stage, lot_hold)
                if refused is not None:
                    return UnitResult(unit.serial, "refused", str(refused))
                outcome, error = self._stage(unit, state, stage, model, device, operator, cancel)
                ran_here = True
                if outcome is Outcome.ABORTED:
                    return UnitResult(unit.serial, "aborted", error)
                if outcome is Outcome.ERROR:
                    return UnitResult(unit.serial, "error", f"'{stage.id}': {error}")
        finally:
            close = getattr(device, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("closing the device of %s failed", unit.serial)

    def _leave(self, unit: UnitSpec, state: UnitState, stage: Stage, ran_here: bool) -> UnitResult:
        """The next stage is another station's: the unit moves on (admission refused one that came too early)."""
        where = f" at station {stage.station}" if stage.station else ""
        if ran_here:
            return UnitResult(unit.serial, "in-route", f"next: '{stage.id}'{where}")
        return UnitResult(unit.serial, "in-route", f"nothing to do at this station; next: '{stage.id}'{where}")

    def _position(self, state: UnitState) -> str:
        """The machine state matching the unit's recorded position."""
        if state.status == "scrapped":
            return SCRAPPED
        stage = state.next_stage()
        if stage is None:
            return SHIPPED if state.status == IN_ROUTE else SCRAPPED
        if stage.group is not None and not stage.rework:
            return stage.group
        return stage.id

    # -- one stage, with its retries -------------------------------------------------------------

    def _stage(
        self,
        unit: UnitSpec,
        state: UnitState,
        stage: Stage,
        model: SlotModel,
        device: Any,
        operator: Operator,
        cancel: threading.Event,
    ) -> tuple[Outcome, str | None]:
        if model.state != stage.id:
            self.machine.move(model, f"run_{stage.id}")
        if stage.sampling is not None and not is_sampled(stage.sampling, unit.lot, unit.serial, stage.id):
            outcome = Outcome.SKIPPED
            error: str | None = "not sampled"
            self._record(unit, state, stage, model.slot, 1, outcome, time.time(), 0.0, (), error, None)
        else:
            while True:
                tries = state.tries.get(stage.id, 0) + 1
                outcome, error = self._attempt(unit, state, stage, model.slot, tries, device, operator, cancel)
                if outcome is not Outcome.FAIL or tries > stage.retry_max:
                    break
                self.machine.move(model, "retry")
        if outcome is Outcome.FAIL and stage.sampling is not None and unit.lot is not None:
            self._count_sample_failure(unit.lot, stage)
        self._follow(state, stage, model, outcome)
        return outcome, error

    def _follow(self, state: UnitState, stage: Stage, model: SlotModel, outcome: Outcome) -> None:
        """Move the slot's model the way the outcome takes the unit."""
        if outcome in (Outcome.PASS, Outcome.SKIPPED):
            dest = self.machine.move(model, "passed")
            group = self.index.group.get(stage.id)
            if group is not None and dest != group.id:
                done = all(m in state.passed for m in group.members)
                self.machine.move(model, "passed" if done else "next_member")
        elif outcome is Outcome.FAIL:
            dest = self.machine.move(model, "failed")
            if dest != SCRAPPED and state.status == "scrapped":
                self.machine.move(model, "exhausted")

    def _count_sample_failure(self, lot: str, stage: Stage) -> None:
        assert stage.sampling is not None
        failures = self.history.lot_failed(lot, stage.id)
        threshold = recall_threshold(stage.sampling)
        if threshold is not None and failures >= threshold:
            self.history.hold_lot(lot, f"{failures} sampled units failed '{stage.id}' (recall threshold {threshold})")

    def _attempt(
        self,
        unit: UnitSpec,
        state: UnitState,
        stage: Stage,
        slot: int,
        tries: int,
        device: Any,
        operator: Operator,
        cancel: threading.Event,
    ) -> tuple[Outcome, str | None]:
        info = self._info.get(unit.serial)
        if info is None or info.lifecycle != state.lifecycle_state:
            info = self._info[unit.serial] = UnitInfo(unit.serial, unit.lot, state.lifecycle_state)
        ctx = StepContext(
            params=stage.params,
            stage=stage,
            unit=info,
            slot=slot,
            station=stage.station,
            attempt=tries,
            device=device,
            operator=operator,
            resources=self.resources,
            images=self.flow.images,
            log=self._logs[stage.id],
            judge=self._judges[stage.id],
            cancelled=cancel,
        )
        started = time.time()
        intent = None
        if stage.irreversible:
            try:
                intent = self.history.intend(self._attempt_row(unit, stage, slot, tries, Outcome.ERROR, started, 0.0))
            except Exception as exc:
                log.exception("the intent of %s on %s could not be journaled", stage.id, unit.serial)
                # Nothing is recorded: the step did not run, and an attempt would count as entered.
                return Outcome.ERROR, f"not started: the intent of this irreversible step could not be journaled: {exc}"
        if self.subscribers:
            ctx.report = lambda fraction, note: self._emit(StepProgress(unit.serial, slot, stage.id, fraction, note))
            self._emit(StepStarted(unit.serial, slot, stage.id, stage.step, tries, stage.params, started))
        clock = time.perf_counter()
        outcome, error = call_step(self._steps[stage.id], ctx, self._judges[stage.id].expected)
        if ctx.cleanups:
            cleaned = run_cleanups(ctx, error)
            if outcome is Outcome.PASS and cleaned is not None:
                outcome = Outcome.ERROR  # the station may be left in a bad state: not a pass
            error = cleaned
        if self.abort.is_set() and outcome is not Outcome.PASS:
            outcome = Outcome.ABORTED
        duration = time.perf_counter() - clock
        quarantine = None
        if intent is not None and outcome in (Outcome.ERROR, Outcome.ABORTED) and not ctx.not_started:
            quarantine = (
                f"irreversible stage '{stage.id}' ended in {outcome.value} ({error}): whether it took effect is unknown"
            )
        self._record(
            unit,
            state,
            stage,
            slot,
            tries,
            outcome,
            started,
            duration,
            ctx.measurements,
            error,
            device,
            intent,
            quarantine,
        )
        if quarantine is not None:
            state.status, state.reason = QUARANTINED, quarantine
        elif ctx.not_started and stage.irreversible:
            # The step changed nothing: the stage has not been entered, and may run once things are mended.
            unchanged = "the step stopped before it changed the unit: the stage may run again"
            self._record(unit, state, stage, slot, tries, Outcome.NOT_DONE, time.time(), 0.0, (), unchanged, device)
        return outcome, error

    def _record(
        self,
        unit: UnitSpec,
        state: UnitState,
        stage: Stage,
        slot: int,
        tries: int,
        outcome: Outcome,
        started: float,
        duration: float,
        measurements: Sequence[Any],
        error: str | None,
        device: Any,
        intent: int | None = None,
        quarantine: str | None = None,
    ) -> None:
        attempt = self._attempt_row(unit, stage, slot, tries, outcome, started, duration, measurements, error, device)
        if intent is None and quarantine is None:
            self.history.add(attempt)
        else:
            self.history.add(attempt, intent=intent, quarantine=quarantine)
        state.record(stage, outcome, started, self.recipe)
        if self.subscribers:
            self._emit(
                StepEnded(
                    unit.serial,
                    slot,
                    stage.id,
                    stage.step,
                    tries,
                    outcome,
                    started,
                    duration,
                    attempt.measurements,
                    error,
                )
            )

    def _attempt_row(
        self,
        unit: UnitSpec,
        stage: Stage,
        slot: int,
        tries: int,
        outcome: Outcome,
        started: float,
        duration: float,
        measurements: Sequence[Any] = (),
        error: str | None = None,
        device: Any = None,
    ) -> Attempt:
        # Positional, in field order: one Attempt is made per step, and keywords cost a microsecond.
        return Attempt(
            unit.serial,  # serial
            stage.id,  # stage
            stage.step,  # step
            tries,  # attempt
            outcome,  # outcome
            started,  # started
            started + duration,  # ended
            self.recipe,  # recipe
            unit.lot,  # lot
            stage.station,  # station
            slot,  # slot
            self.operator_name,  # operator
            tuple(measurements),  # measurements
            error,  # error
            getattr(device, "device_id", None),  # device_id
        )
