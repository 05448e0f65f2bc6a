"""The station runner: units through the stages a station owns, one unit per slot, at once.

For each unit the runner claims it (the route interlock and the guards' admission, decided on the
unit's record as read, no lock held; the store claims it only if it is still so), opens its device in
its slot, and runs the stages the station owns (``engine.run.stagerunner``) until the unit's route
ends, leaves the station, or stops on an error or a refusal. Which slot runs which unit, and the
slots' threads, are ``engine.run.slots``'s.

A stop (Ctrl-C, SIGTERM, ``stop()``) ends the running attempts as ABORTED after their cleanup, keeps
what was recorded and starts no further unit. A slot still busy ``stop_grace_s`` after the stop is
given up: its unit and running attempt are recorded ABORTED with the reason, and nothing the slot
does afterwards reaches the record, so ``run`` returns only once no slot can write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from engine.context import Line, Operator, StepContext
from engine.diagnostics import quoted
from engine.events import Event, Stopping, Subscriber, UnitEnded, UnitStarted
from engine.flow import Flow, Stage
from engine.inputs import name_problem
from engine.outcome import Outcome, StationError, UnitStatus
from engine.record import UnitRecord
from engine.registry import Registry
from engine.report.text import left_the_line
from engine.run.attempt import LeftBehind
from engine.run.guards import Refusal
from engine.run.machine import FlowMachine, SlotModel
from engine.run.prompts import announced
from engine.run.signals import signals_noted
from engine.run.slots import Crew, Slot, SlotClosed, SlotRecord, UnitResult, UnitSpec, deal
from engine.run.stagerunner import StageRunner
from engine.run.unitstate import RouteIndex, UnitState
from engine.store.history import History

__all__ = ["StationRunner", "UnitResult", "UnitSpec"]

log = logging.getLogger("floorflow.runner")

HOLD_LIFTED = "no unit of the lot runs until its hold is lifted in the store"
"""How a held lot's units may run again, said with each refusal."""
OPERATOR_MAX = 64
"""The longest name or badge an operator signs in with."""


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
        self.operator = operator
        self.operator_name = operator_name or getattr(operator, "name", None)
        self.history = history
        self.subscribers = list(subscribers)
        self.station = station
        self.abort = threading.Event()
        self._stopped_at: float | None = None
        self._cancels: set[threading.Event] = set()
        self._slot_models: list[SlotModel] = []
        self._crew: Crew | None = None
        self._lock = threading.Lock()
        self._signed_in: str | None = None
        emit = self._emit_from if self.subscribers else None
        self.stages = StageRunner(flow, registry, self.machine, line.resources(), emit, self.operator_name, self.abort)
        self._own = frozenset(s.id for s in flow.stages.values() if station is None or s.station == station)

    @property
    def stop_grace_s(self) -> float:
        """How long a step told to stop (at a stop of the run, or its timeout) has to end."""
        return self.stages.grace_s

    @stop_grace_s.setter
    def stop_grace_s(self, seconds: float) -> None:
        self.stages.grace_s = seconds

    # -- the station ---------------------------------------------------------------------------

    def sign_in(self, name: str) -> None:
        """The shift's operator signs in (a name or badge): every attempt recorded from now on names them."""
        name = name.strip()
        problem = name_problem(name, OPERATOR_MAX)
        if problem is not None:
            raise ValueError(f"operator sign-in {quoted(name, 40)}: {problem}")
        with self._lock:
            self._signed_in = self.stages.operator_name = name

    @property
    def signed_in(self) -> str | None:
        """Who signed in last (None: nobody has; attempts name the operator the runner was given)."""
        return self._signed_in

    def run(self, units: Iterable[UnitSpec], slots: int = 1) -> list[UnitResult]:
        """Run every unit, unit k in slot ((k - 1) mod slots) + 1; a stop ends it cleanly.

        Returns the results in the order the units were given; a unit a stop kept from starting has
        none. Ctrl-C (and SIGTERM, which the station turns into one) in the calling thread stops the run.
        """
        given = list(units)
        if not given:
            return []
        hands = deal(given, max(1, min(slots, len(given))))
        models = self.slot_models(len(hands))
        crew = Crew([Slot(models[n], hand, SlotRecord(self.history)) for n, hand in enumerate(hands)], self.abort)
        self.serve(crew)
        return crew.results()

    def serve(self, crew: Crew) -> None:
        """Run the crew's slots (their units through ``run_unit``) until they are done; a stop ends it cleanly."""
        prepare = getattr(self.line, "prepare", None)
        if prepare is not None:
            prepare(len(crew.slots))
        self._crew = crew
        interrupted = False
        try:
            try:
                crew.start(self.run_unit, self._not_run, self._carry_on)
                crew.wait()
            except KeyboardInterrupt:
                interrupted = True
            if interrupted or self.abort.is_set():
                note = f"floorflow: already aborting: the running steps have {self.stop_grace_s:g} s to clean up\n"
                with signals_noted(note):  # a second Ctrl-C must not leave slots writing as the store closes
                    self.stop()
                    crew.wind_down(self._deadline(), self._give_up)
        finally:
            crew.close()

    def slot_models(self, slots: int) -> list[SlotModel]:
        """The slots' models, added to the machine once for the runner's life (adding is O(states))."""
        while len(self._slot_models) < slots:
            self._slot_models.append(self.machine.attach(len(self._slot_models) + 1))
        return self._slot_models[:slots]

    def stop(self) -> None:
        """Abort: running attempts end as ABORTED (after their cleanup); no new unit starts."""
        with self._lock:
            if self.abort.is_set():
                return
            self._stopped_at = time.monotonic()
            self.abort.set()
        crew = self._crew
        self._emit(Stopping(crew.busy() if crew is not None else 0, self.stop_grace_s))
        with self._lock:
            for cancel in self._cancels:
                cancel.set()

    def _deadline(self) -> float:
        started = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return started + self.stop_grace_s

    def _give_up(self, slot: Slot) -> None:
        """The slot is still busy at the stop's deadline: record its unit ABORTED, and let it write no more."""
        reason = f"aborted: still running {self.stop_grace_s:g} s after the stop; given up, its thread left behind"
        record = slot.record
        if not record.close():
            log.error("slot %d: a write to the record did not end; the slot is given up", slot.number)
        serial, state, running = record.taken_over, record.state, record.running
        if serial is None:
            return  # the slot held no unit: nothing to record
        try:
            if running is not None:
                took = time.time() - running.started
                row = self.stages.row(
                    running.unit,
                    running.stage,
                    slot.number,
                    running.tries,
                    Outcome.ABORTED,
                    running.started,
                    took,
                    (),
                    reason,
                    running.device,
                )
                quarantine = None
                if running.intent is not None:
                    quarantine = self.stages.quarantine(running.stage, Outcome.ABORTED, reason)
                self.history.add(row, intent=running.intent, quarantine=quarantine)
            lifecycle = state.lifecycle_state if state is not None else None
            self.history.finish(serial, UnitStatus.ABORTED, reason, lifecycle, slot.number)
        except Exception:
            log.exception("the record of %s could not be written when its slot was given up", serial)
        record.results.append(UnitResult(serial, UnitStatus.ABORTED, reason))
        self._emit(UnitEnded(serial, slot.number, UnitStatus.ABORTED, reason))

    def _emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("subscriber %r failed on %r", subscriber, event)

    def _emit_from(self, slot: Slot, event: Event) -> None:
        """An event from a slot's thread: dropped once its unit was taken over (given up)."""
        if slot.record.taken_over is not None:
            return
        for subscriber in self.subscribers:  # (``_emit``'s loop, inlined: two events per attempt come this way)
            try:
                subscriber(event)
            except Exception:
                log.exception("subscriber %r failed on %r", subscriber, event)

    # -- one unit --------------------------------------------------------------------------------

    def _not_run(self, unit: UnitSpec, slot: Slot) -> UnitResult:
        result = UnitResult(
            unit.serial, UnitStatus.ERROR, f"not started: slot {slot.number} is out of service: {slot.out_of_service}"
        )
        self._emit_from(slot, UnitEnded(unit.serial, slot.number, result.status, result.reason))
        return result

    def run_unit(self, unit: UnitSpec, slot: Slot) -> UnitResult:
        record_of = slot.record

        def decide(record: UnitRecord, lot_hold: str | None) -> str | None:
            state = UnitState.replay(self.index, record.attempts)
            record_of.state = state
            return self._admission(record, slot.model, state, lot_hold)

        try:
            record, refused = record_of.claim(
                unit.serial, station=self.station, lot=unit.lot, product=self.flow.product, decide=decide,
                socket=slot.number, operator=self.stages.operator_name,
            )  # fmt: skip
        except SlotClosed:
            raise
        except Exception as exc:
            log.exception("the record of %s could not be read", unit.serial)
            result = UnitResult(unit.serial, UnitStatus.ERROR, f"the unit's record could not be read: {exc}")
            self._emit_from(slot, UnitStarted(unit.serial, slot.number, unit.lot, self.stages.operator_name))
            self._emit_from(slot, UnitEnded(unit.serial, slot.number, result.status, result.reason))
            return result
        lot = unit.lot if unit.lot is not None else record.lot
        self._emit_from(slot, UnitStarted(unit.serial, slot.number, lot, self.stages.operator_name))
        if refused is not None:
            self._emit_from(slot, UnitEnded(unit.serial, slot.number, UnitStatus.REFUSED, refused))
            return UnitResult(unit.serial, UnitStatus.REFUSED, refused)
        state = record_of.state
        assert state is not None  # decide() ran
        cancel = threading.Event()
        with self._lock:
            self._cancels.add(cancel)
            if self.abort.is_set():
                cancel.set()  # stopped while the unit was being claimed
        try:
            result = self._route(UnitSpec(unit.serial, lot), state, slot, cancel)
        except SlotClosed:
            raise
        except Exception as exc:  # the claim is released below, whatever went wrong
            log.exception("unit %s could not be run", unit.serial)
            result = UnitResult(unit.serial, UnitStatus.ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._cancels.discard(cancel)
        return self._finish(unit.serial, slot, state, result)

    def _finish(self, serial: str, slot: Slot, state: UnitState, result: UnitResult) -> UnitResult:
        """The unit leaves the slot: its claim released, where it stands recorded, its end told."""
        self.stages.forget(serial)
        try:
            slot.record.finish(serial, result.status, result.reason, state.lifecycle_state, slot.number)
        except SlotClosed:
            raise
        except Exception as exc:
            log.exception("the record of %s could not be written", serial)
            result = UnitResult(serial, UnitStatus.ERROR, f"the unit's record could not be written: {exc}")
        self._emit_from(slot, UnitEnded(serial, slot.number, result.status, result.reason))
        return result

    def _carry_on(self, slot: Slot, ctx: StepContext, error: str) -> UnitResult:
        """The slot's thread was left behind in a timed step that did not stop: from the thread taking over, end
        its attempt and its unit as that thread would have (the step's cleanups, the device closed, the record)."""
        running, state = slot.record.running, slot.record.state
        if running is None or state is None:
            raise SlotClosed("the slot's unit was already ended")
        outcome, reason = self.stages.left_behind(slot, ctx, error)
        result = self._ended(running.unit, running.stage, outcome, reason)  # ERROR, or ABORTED in a stop
        self._close(running.unit, running.device)
        with self._lock:
            self._cancels.discard(ctx.cancelled)
        return self._finish(running.unit.serial, slot, state, result)

    def _admission(self, record: UnitRecord, model: SlotModel, state: UnitState, lot_hold: str | None) -> str | None:
        """Why the unit may not start here (None: it may), decided on its record as read.

        The slot's model is loaded with the unit's recorded state, and the machine says whether its first
        stage here may run.
        """
        stage = self.machine.load(model, state, self._own)
        if record.status == UnitStatus.QUARANTINED:
            return str(
                Refusal(
                    "status",
                    f"the unit is quarantined ({record.reason}); a supervisor's decision releases it: "
                    f"floorflow units release {record.serial} --decision done|not-done --by NAME",
                )
            )
        gone = left_the_line(record)
        if gone is not None:
            return str(Refusal("status", gone))
        made = self.flow.product
        if record.product is not None and made is not None and record.product != made:
            return str(Refusal("product", f"the unit is a {record.product}; recipe {self.flow.recipe} makes {made}"))
        if lot_hold is not None:
            return str(Refusal("hold", f"the unit's lot is on hold ({lot_hold}); {HOLD_LIFTED}"))
        if stage is None:
            return None
        if stage.id not in self._own:
            if any(s not in state.passed for s in self._own if not self.flow.stages[s].rework):
                where = f" at station {stage.station}" if stage.station else ""
                return f"route interlock: the unit has not passed '{stage.id}'{where}, which comes first"
            return None
        refused = self.machine.run(model, lot_hold)
        return None if refused is None else str(refused)

    def _route(self, unit: UnitSpec, state: UnitState, slot: Slot, cancel: threading.Event) -> UnitResult:
        try:
            device = self.line.open_unit(unit.serial, slot.number)
        except StationError as exc:
            return UnitResult(unit.serial, UnitStatus.ERROR, str(exc))
        except Exception as exc:
            log.exception("opening the device of %s failed", unit.serial)
            return UnitResult(
                unit.serial, UnitStatus.ERROR, f"cannot open the unit's device: {type(exc).__name__}: {exc}"
            )
        operator = self.operator
        bind = getattr(operator, "for_unit", None)
        if callable(bind):  # an operator that says which unit and slot is asking, and stops asking at a stop
            operator = bind(unit.serial, slot.number, cancelled=cancel)
        operator = announced(operator, self.history, unit.serial, slot.number)
        ran_here = left_behind = False
        try:
            while True:
                if self.abort.is_set():
                    return UnitResult(unit.serial, UnitStatus.ABORTED, "aborted by the operator")
                stage = state.next_stage(self._own)
                if stage is None:
                    status = state.status if state.status != UnitStatus.IN_ROUTE else UnitStatus.SHIPPED
                    return UnitResult(unit.serial, status, state.reason)
                if stage.id not in self._own:
                    return self._leave(unit, stage, ran_here)
                model = slot.model
                if model.state != stage.id:  # the next member of an any_order group
                    self.machine.move(model, f"run_{stage.id}")
                refused = self.machine.run(model, slot.record.lot_hold(unit.lot) if unit.lot else None)
                if refused is not None:
                    return UnitResult(unit.serial, UnitStatus.REFUSED, str(refused))
                outcome, error = self.stages.run(unit, state, stage, slot, device, operator, cancel)
                ran_here = True
                if outcome is Outcome.ERROR or outcome is Outcome.ABORTED:
                    return self._ended(unit, stage, outcome, error)
        except LeftBehind:
            left_behind = True  # this thread was given up on: the device is the taking-over thread's to close
            raise
        finally:
            if not left_behind:
                self._close(unit, device)

    @staticmethod
    def _ended(unit: UnitSpec, stage: Stage, outcome: Outcome, error: str | None) -> UnitResult:
        """The unit's result when the stage's outcome ended its route here: an abort, or an error."""
        if outcome is Outcome.ABORTED:
            return UnitResult(unit.serial, UnitStatus.ABORTED, error)
        return UnitResult(unit.serial, UnitStatus.ERROR, f"'{stage.id}': {error}")

    @staticmethod
    def _close(unit: UnitSpec, device: Any) -> None:
        close = getattr(device, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("closing the device of %s failed", unit.serial)

    def _leave(self, unit: UnitSpec, stage: Stage, ran_here: bool) -> UnitResult:
        """The next stage is another station's: the unit moves on (admission refused one that came too early)."""
        where = f" at station {stage.station}" if stage.station else ""
        if ran_here:
            return UnitResult(unit.serial, UnitStatus.IN_ROUTE, f"next: '{stage.id}'{where}")
        return UnitResult(unit.serial, UnitStatus.IN_ROUTE, f"nothing to do at this station; next: '{stage.id}'{where}")
