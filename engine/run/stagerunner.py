"""One stage of one unit in one slot: its attempts, timed, instrumented, judged and recorded.

For each attempt the stage runner builds the step's context, journals the intent of an
irreversible step, sends a start and an end event, calls the step (``engine.run.attempt``), runs its
cleanups, records the attempt, retries a failure up to ``retry.max``, then asks the operator to
confirm the failure or try once more (when the operator can be asked), and moves the slot's model
along the outcome. What the route does next is the station runner's (``engine.run.runner``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.context import FailureChoice, Operator, StepContext, UnitInfo
from engine.events import Event, StepEnded, StepProgress, StepStarted
from engine.flow import SCRAPPED, Flow, Stage
from engine.outcome import Outcome, UnitStatus
from engine.record import Attempt, RecipeRef
from engine.registry import Registry
from engine.run.attempt import STOP_GRACE_S, call_step, run_cleanups
from engine.run.console import failed_check
from engine.run.machine import FlowMachine, SlotModel
from engine.run.measure import Judge
from engine.run.slots import Running, Slot, SlotClosed, UnitSpec
from engine.run.unitstate import RouteIndex, UnitState
from engine.sampling import is_sampled, recall_threshold
from engine.step import StepType

log = logging.getLogger("floorflow.runner")

Emit = Callable[[Slot, Event], None]
_made = tuple.__new__
"""Makes a named tuple from all its fields in order, without the class's own ``__new__`` (a Python function
that takes each field as an argument): for the events and the attempt made at every step."""
_Plan = tuple[StepType, Judge, logging.Logger]
"""A stage's step, the judge of its measurements, and its step type's logger."""
CHOICE_ACTIONS = {FailureChoice.RETRY: "failure-retried", FailureChoice.FAIL: "failure-confirmed"}
"""The audit log's action for each choice an operator makes on a failed stage."""


def _plan(stage: Stage, registry: Registry) -> _Plan:
    return registry.get(stage.step)(), Judge(stage), logging.getLogger(f"floorflow.step.{stage.step}")


class StageRunner:
    """Runs the stages of one flow; shared by the slots of a station, one call per unit and stage."""

    def __init__(
        self,
        flow: Flow,
        registry: Registry,
        machine: FlowMachine,
        resources: Mapping[str, Any],
        emit: Emit | None,
        operator_name: str | None,
        abort: threading.Event,
    ) -> None:
        self.flow = flow
        self.index = RouteIndex(flow)
        self.machine = machine
        self.resources = resources
        self.emit = emit
        """Where events go; None when nobody listens (then no event is even built)."""
        self.operator_name = operator_name
        self.abort = abort
        self.recipe = RecipeRef(flow.recipe, flow.version, flow.content_hash)
        self.grace_s = STOP_GRACE_S
        self._info: dict[str, UnitInfo] = {}
        self._plans = {s.id: _plan(s, registry) for s in flow.stages.values()}
        """What each attempt of a stage needs, found once: one lookup per attempt instead of one per part."""

    def forget(self, serial: str) -> None:
        """The unit left the slot: its cached facts go."""
        self._info.pop(serial, None)

    # -- one stage, with its retries -------------------------------------------------------------

    def run(
        self,
        unit: UnitSpec,
        state: UnitState,
        stage: Stage,
        slot: Slot,
        device: Any,
        operator: Operator,
        cancel: threading.Event,
    ) -> tuple[Outcome, str | None]:
        model = slot.model
        if stage.sampling is not None and not is_sampled(stage.sampling, unit.lot, unit.serial, stage.id):
            outcome = Outcome.SKIPPED
            error: str | None = "not sampled"
            self._record(unit, state, stage, slot, 1, outcome, time.time(), 0.0, (), error, None)
        else:
            while True:
                tries = state.tries.get(stage.id, 0) + 1
                outcome, error = self._attempt(unit, state, stage, slot, tries, device, operator, cancel)
                if outcome is not Outcome.FAIL or stage.id not in state.tries:
                    break  # passed, errored, or failed for good: the failure routed the unit, its tries start anew
                if tries <= stage.retry_max:
                    self.machine.move(model, "retry")  # (the operator's retry is no edge of the flow)
        if outcome is Outcome.FAIL and stage.sampling is not None and unit.lot is not None:
            self._count_sample_failure(unit.lot, stage, slot)
        self._follow(state, stage, model, outcome)
        return outcome, error

    def _retry_chosen(self, attempt: Attempt, slot: Slot, operator: Operator | None) -> bool:
        """Whether the operator, asked to confirm the stage's failure after its retries, chose one more attempt;
        their choice is kept in the audit log. An operator with nothing to ask (the simulated one, an answers
        file) confirms the failure unasked, and an irreversible stage is never run again."""
        confirm = getattr(operator, "confirm_failure", None)
        if confirm is None or self.flow.stages[attempt.stage].irreversible:
            return False
        took = attempt.ended - attempt.started
        failed = failed_check(
            StepEnded(attempt.serial, slot.number, attempt.stage, attempt.step, attempt.attempt, attempt.outcome,
                      attempt.started, took, attempt.measurements, attempt.error)
        )  # fmt: skip
        choice = FailureChoice(confirm(attempt.stage, failed))
        by = self.operator_name or getattr(operator, "name", None) or "unknown"
        slot.record.note_decision(by, CHOICE_ACTIONS[choice], attempt.serial, f"attempt {attempt.attempt}: {failed}")
        return choice is FailureChoice.RETRY

    def _follow(self, state: UnitState, stage: Stage, model: SlotModel, outcome: Outcome) -> None:
        """Move the slot's model the way the outcome takes the unit."""
        if outcome in (Outcome.PASS, Outcome.SKIPPED):
            model.passed()
            dest = model.state
            group = self.index.group.get(stage.id)
            if group is not None and dest != group.id:
                done = all(m in state.passed for m in group.members)
                self.machine.move(model, "passed" if done else "next_member")
        elif outcome is Outcome.FAIL:
            model.failed()
            dest = model.state
            if dest != SCRAPPED and state.status == UnitStatus.SCRAPPED:
                self.machine.move(model, "exhausted")

    def _count_sample_failure(self, lot: str, stage: Stage, slot: Slot) -> None:
        assert stage.sampling is not None
        failures = slot.record.lot_failed(lot, stage.id)
        threshold = recall_threshold(stage.sampling)
        if threshold is not None and failures >= threshold:
            slot.record.hold_lot(lot, f"{failures} sampled units failed '{stage.id}' (recall threshold {threshold})")

    # -- one attempt -----------------------------------------------------------------------------

    def _context(
        self,
        unit: UnitSpec,
        state: UnitState,
        stage: Stage,
        slot: int,
        tries: int,
        device: Any,
        operator: Operator,
        cancel: threading.Event,
        plan: _Plan,
    ) -> StepContext:
        info = self._info.get(unit.serial)
        lifecycle = state.lifecycle_state
        if info is None or info.lifecycle != lifecycle:
            info = self._info[unit.serial] = UnitInfo(unit.serial, unit.lot, lifecycle)
        # Positional, in field order: one context is made per attempt, and keywords cost a microsecond.
        return StepContext(
            stage.params,  # params
            stage,  # stage
            info,  # unit
            slot,  # slot
            stage.station,  # station
            tries,  # attempt
            device,  # device
            operator,  # operator
            self.resources,  # resources
            self.flow.images,  # images
            plan[2],  # log
            plan[1],  # judge
            cancel,  # cancelled
        )

    def _attempt(
        self,
        unit: UnitSpec,
        state: UnitState,
        stage: Stage,
        slot: Slot,
        tries: int,
        device: Any,
        operator: Operator,
        cancel: threading.Event,
    ) -> tuple[Outcome, str | None]:
        plan = self._plans[stage.id]
        ctx = self._context(unit, state, stage, slot.number, tries, device, operator, cancel, plan)
        started = time.time()
        running = Running(unit, stage, tries, started, device)
        slot.record.begin(running)
        if stage.irreversible:
            running.intent, refused = self._intend(unit, stage, slot, tries, started)
            if refused is not None:
                return Outcome.ERROR, refused
        if self.emit is not None:
            self._started(unit, stage, slot, ctx, tries, started)
        running.clock = time.perf_counter()
        outcome, error = call_step(plan[0], ctx, plan[1].expected, slot.watch, self.grace_s)
        return self._ended(state, slot, running, ctx, outcome, error)

    def left_behind(self, slot: Slot, ctx: StepContext, error: str) -> tuple[Outcome, str | None]:
        """The slot's thread was left behind in its step: end the attempt as that thread would have, an ERROR
        (ABORTED in a stop), from the thread taking over. (Neither is retried nor moves the slot's model.)"""
        running, state = slot.record.running, slot.record.state
        if running is None or state is None:
            raise SlotClosed("the slot's unit was already ended")
        return self._ended(state, slot, running, ctx, Outcome.ERROR, error)

    def _ended(
        self, state: UnitState, slot: Slot, running: Running, ctx: StepContext, outcome: Outcome, error: str | None
    ) -> tuple[Outcome, str | None]:
        """The step returned (or was left behind): clean up, judge the attempt's outcome, record it."""
        unit, stage, intent = running.unit, running.stage, running.intent
        if ctx.abandoned:
            slot.out_of_service = f"a step of unit {unit.serial} in it did not stop when told to ('{stage.id}')"
        if ctx.cleanups:
            cleaned = run_cleanups(ctx, error)
            if outcome is Outcome.PASS and cleaned is not None:
                outcome = Outcome.ERROR  # the station may be left in a bad state: not a pass
            error = cleaned
        if self.abort.is_set() and outcome is not Outcome.PASS:
            outcome = Outcome.ABORTED
        duration = time.perf_counter() - running.clock
        tries, started, device = running.tries, running.started, running.device
        if intent is None:
            self._record(
                unit, state, stage, slot, tries, outcome, started, duration, ctx.measurements, error, device,
                operator=ctx.operator,
            )  # fmt: skip
            return outcome, error
        quarantine = None
        if outcome in (Outcome.ERROR, Outcome.ABORTED) and not ctx.not_started:
            quarantine = self.quarantine(stage, outcome, error)
        done = (outcome, started, duration, ctx.measurements, error, device, intent, quarantine)
        self._record(unit, state, stage, slot, tries, *done)
        if quarantine is not None:
            state.status, state.reason = UnitStatus.QUARANTINED, quarantine
        elif ctx.not_started:
            # The step changed nothing: the stage has not been entered, and may run once things are mended.
            unchanged = "the step stopped before it changed the unit: the stage may run again"
            self._record(unit, state, stage, slot, tries, Outcome.NOT_DONE, time.time(), 0.0, (), unchanged, device)
        return outcome, error

    def _intend(
        self, unit: UnitSpec, stage: Stage, slot: Slot, tries: int, started: float
    ) -> tuple[int | None, str | None]:
        """Journal the intent of an irreversible step: its id, or why the step may not start."""
        try:
            return slot.record.intend(self.row(unit, stage, slot.number, tries, Outcome.ERROR, started, 0.0)), None
        except SlotClosed:
            raise
        except Exception as exc:
            log.exception("the intent of %s on %s could not be journaled", stage.id, unit.serial)
            slot.record.not_begun()
            # Nothing is recorded: the step did not run, and an attempt would count as entered.
            return None, f"not started: the intent of this irreversible step could not be journaled: {exc}"

    def _started(self, unit: UnitSpec, stage: Stage, slot: Slot, ctx: StepContext, tries: int, started: float) -> None:
        """Tell the subscribers the attempt starts, and let the step report its progress to them."""
        assert self.emit is not None
        emit, number = self.emit, slot.number
        ctx.report = lambda fraction, note: emit(slot, StepProgress(unit.serial, number, stage.id, fraction, note))
        emit(slot, _made(StepStarted, (unit.serial, number, stage.id, stage.step, tries, stage.params, started)))

    @staticmethod
    def quarantine(stage: Stage, outcome: Outcome, error: str | None) -> str:
        return f"irreversible stage '{stage.id}' ended in {outcome.value} ({error}): whether it took effect is unknown"

    def _record(
        self,
        unit: UnitSpec,
        state: UnitState,
        stage: Stage,
        slot: Slot,
        tries: int,
        outcome: Outcome,
        started: float,
        duration: float,
        measurements: Sequence[Any],
        error: str | None,
        device: Any,
        intent: int | None = None,
        quarantine: str | None = None,
        *,
        operator: Operator | None = None,
    ) -> None:
        """Record the attempt, tell the subscribers, and move the unit's state on; ``operator``, when given, is
        asked to confirm a failure after the stage's retries before it routes the unit."""
        attempt = self.row(unit, stage, slot.number, tries, outcome, started, duration, measurements, error, device)
        if intent is None and quarantine is None:
            slot.record.add(attempt)
        else:
            slot.record.add(attempt, intent=intent, quarantine=quarantine)
        if self.emit is not None:
            ended = _made(
                StepEnded,
                (
                    unit.serial,
                    slot.number,
                    stage.id,
                    stage.step,
                    tries,
                    outcome,
                    started,
                    duration,
                    attempt.measurements,
                    error,
                ),
            )
            self.emit(slot, ended)
        retried = outcome is Outcome.FAIL and tries > stage.retry_max and self._retry_chosen(attempt, slot, operator)
        state.record(stage, outcome, started, self.recipe, retried)

    def row(
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
        """The attempt as the record keeps it."""
        # Made as a tuple, in field order: one Attempt is made per step, and its class's __new__ costs more.
        return _made(
            Attempt,
            (
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
            ),
        )
