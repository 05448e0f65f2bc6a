"""The station's slots: which unit goes to which socket, the slots' threads, and a bounded stop.

A slot is a physical socket of the fixture: its USB port, console, RF and meter ports. Units go
to the slots in the order given: unit k (counting from 1) to slot ((k - 1) mod slots) + 1, and
each slot runs its own units in that order, the same on every run. A slot that finishes early
does not take another slot's units: on a gang fixture the unit in socket 3 is the third serial.

Everything a slot writes to the record goes through its ``SlotRecord``, which also knows the unit
the slot holds and the attempt it is running. When a stop is not over within its grace, the
runner closes the record of each slot still busy (nothing that slot does reaches the store
afterwards) and records the unit and its running attempt as ABORTED in its place. So the line and
the store never close under a slot that could still write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from engine.context import StepContext
from engine.flow import Stage
from engine.outcome import UnitStatus
from engine.record import Attempt, UnitRecord
from engine.run.attempt import LeftBehind, StepWatch, Watchdog
from engine.run.machine import SlotModel
from engine.run.unitstate import UnitState
from engine.store.history import Decide, History

log = logging.getLogger("floorflow.runner")

T = TypeVar("T")

GIVE_UP_WRITE_S = 1.0
"""How long giving up on a slot waits for a record write the slot has in progress."""


@dataclass(frozen=True)
class UnitSpec:
    serial: str
    lot: str | None = None


@dataclass(frozen=True)
class UnitResult:
    serial: str
    status: str
    """A UnitStatus: shipped, scrapped, in-route (done at this station), refused, error or aborted."""
    reason: str | None = None


def deal(units: Sequence[UnitSpec], slots: int) -> list[list[UnitSpec]]:
    """Each slot's units, in order: unit k (from 1) goes to slot ((k - 1) mod slots) + 1."""
    hands: list[list[UnitSpec]] = [[] for _ in range(slots)]
    for k, unit in enumerate(units):
        hands[k % slots].append(unit)
    return hands


class SlotClosed(Exception):
    """The slot was given up at the end of a stop: nothing it does reaches the record any more."""


@dataclass(slots=True)
class Running:
    """The attempt a slot is running: what recording it needs, should the slot be given up."""

    unit: UnitSpec
    stage: Stage
    tries: int
    started: float
    device: Any
    intent: int | None = None
    clock: float = 0.0
    """When the step was called (time.perf_counter()): its duration runs from there."""


class SlotRecord:
    """A slot's way to the record (a History): every write checks, under one lock, that the slot is
    still open, and the lock makes closing it wait for a write in progress."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.closed = False
        self.claimed: str | None = None
        """The serial the slot holds (claimed, not yet finished)."""
        self.state: UnitState | None = None
        """That unit's state, as the runner keeps it."""
        self.running: Running | None = None
        self.results: list[UnitResult] = []
        """The results of the slot's units, in its order."""
        self.taken_over: str | None = None
        """The serial the slot held when it was given up: its result and record are the runner's now."""
        self._lock = threading.Lock()

    def _open(self) -> None:
        if self.closed:
            raise SlotClosed("the slot was given up")

    def _write(self, work: Callable[[], T]) -> T:
        with self._lock:
            self._open()
            return work()

    def unit(self, serial: str) -> UnitRecord:
        return self.history.unit(serial)

    def claim(
        self,
        serial: str,
        *,
        station: str | None,
        lot: str | None,
        product: str | None,
        decide: Decide,
        socket: int = 0,
        operator: str | None = None,
    ) -> tuple[UnitRecord, str | None]:
        with self._lock:
            self._open()
            record, refused = self.history.claim(
                serial, station=station, lot=lot, product=product, decide=decide, socket=socket, operator=operator
            )
            if refused is None:
                self.claimed = serial
            return record, refused

    def begin(self, running: Running) -> None:
        with self._lock:
            if self.closed:
                raise SlotClosed("the slot was given up")
            self.running = running

    def not_begun(self) -> None:
        """The attempt begun did not start after all (its intent could not be journaled)."""
        with self._lock:
            self.running = None

    def intend(self, attempt: Attempt) -> int:
        with self._lock:
            self._open()
            intent = self.history.intend(attempt)
            if self.running is not None:
                self.running.intent = intent
            return intent

    def add(self, attempt: Attempt, *, intent: int | None = None, quarantine: str | None = None) -> None:
        """Record an attempt; one that ends the running attempt ends it in the same breath."""
        with self._lock:
            if self.closed:
                raise SlotClosed("the slot was given up")
            if intent is None and quarantine is None:
                self.history.add(attempt)
            else:
                self.history.add(attempt, intent=intent, quarantine=quarantine)
            running = self.running
            if running is not None and running.tries == attempt.attempt and running.stage.id == attempt.stage:
                self.running = None

    def finish(
        self, serial: str, status: str, reason: str | None, lifecycle: str | None = None, socket: int = 0
    ) -> None:
        with self._lock:
            self._open()
            self.history.finish(serial, status, reason, lifecycle, socket)
            self.claimed = self.state = self.running = None

    def lot_hold(self, lot: str) -> str | None:
        return self.history.lot_hold(lot)

    def hold_lot(self, lot: str, reason: str) -> None:
        self._write(lambda: self.history.hold_lot(lot, reason))

    def lot_failed(self, lot: str, stage: str) -> int:
        return self._write(lambda: self.history.lot_failed(lot, stage))

    def note_decision(self, by: str, action: str, subject: str, reason: str | None) -> None:
        self._write(lambda: self.history.note_decision(by, action, subject, reason))

    def keep(self, result: UnitResult) -> None:
        """The unit's result, as the run returns it (a unit finished before its slot was closed keeps its own)."""
        with self._lock:
            if self.taken_over is not None:
                raise SlotClosed("the slot was given up")
            self.results.append(result)

    def close(self) -> bool:
        """Let no more writes through, and take over the unit held; False when a write in progress did not end
        in time (closed all the same)."""
        taken = self._lock.acquire(timeout=GIVE_UP_WRITE_S)
        self.closed = True
        self.taken_over = self.claimed
        if taken:
            self._lock.release()
        return taken


@dataclass(eq=False)
class Slot:
    """One socket: its number, its model in the flow's machine, its units in order, its record, and the watch
    on its timed steps."""

    model: SlotModel
    units: list[UnitSpec]
    record: SlotRecord
    out_of_service: str | None = None
    """Why the slot takes no more units (a step thread in it did not stop when told to)."""
    finished: threading.Event = field(default_factory=threading.Event)
    number: int = field(init=False)
    """The socket's number, from 1 (the model's slot)."""
    watch: StepWatch = field(init=False)
    position: int = 0
    """Which of its units the slot is at."""

    def __post_init__(self) -> None:
        self.number = self.model.slot
        self.watch = StepWatch(f"slot-{self.number}")


RunUnit = Callable[[UnitSpec, Slot], UnitResult]
NotRun = Callable[[UnitSpec, Slot], UnitResult]
CarryOn = Callable[[Slot, StepContext, str], UnitResult]
"""Ends the unit of a slot whose thread was left behind in a step (with the attempt's error), in its place."""
GiveUp = Callable[[Slot], None]


class Crew:
    """The slots' threads for one run: started together, waited for, stopped within a bound."""

    def __init__(self, slots: Sequence[Slot], abort: threading.Event) -> None:
        self.slots = list(slots)
        self.abort = abort
        self.watchdog = Watchdog()
        self._all_finished = threading.Event()
        self._running = len(self.slots)
        self._lock = threading.Lock()

    def start(self, run_unit: RunUnit, not_run: NotRun, carry_on: CarryOn) -> None:
        together = threading.Event()  # every slot starts at once: a late-started slot would trail the gang
        for slot in self.slots:
            self.watchdog.watch(slot.watch, partial(self._take_over, slot, run_unit, not_run, carry_on))
        threads = [
            threading.Thread(
                target=self._work, args=(slot, run_unit, not_run, together), name=slot.watch.name, daemon=True
            )
            for slot in self.slots
        ]
        try:
            for thread in threads:
                thread.start()
        finally:
            together.set()
            for slot, thread in zip(self.slots, threads, strict=True):
                if thread.ident is None:  # a Ctrl-C came before it started: nothing to wait for
                    self._finished(slot)

    def _work(self, slot: Slot, run_unit: RunUnit, not_run: NotRun, together: threading.Event) -> None:
        together.wait()
        self._serve(slot, 0, run_unit, not_run)

    def _take_over(
        self, slot: Slot, run_unit: RunUnit, not_run: NotRun, carry_on: CarryOn, ctx: StepContext, error: str
    ) -> None:
        """The slot's thread was left behind in a step: this thread ends its unit and runs the slot's others."""
        self._serve(slot, slot.position, run_unit, not_run, partial(carry_on, slot, ctx, error))

    def _serve(
        self,
        slot: Slot,
        start: int,
        run_unit: RunUnit,
        not_run: NotRun,
        carried: Callable[[], UnitResult] | None = None,
    ) -> None:
        """Run the slot's units (``_run_units``) until they end, the slot closes or its thread is left behind."""
        left_behind = False
        try:
            self._run_units(slot, start, run_unit, not_run, carried)
        except SlotClosed:
            return
        except LeftBehind:
            left_behind = True  # the slot's work goes on in the thread that took it over
        finally:
            if not left_behind:
                self._finished(slot)

    def _run_units(
        self, slot: Slot, start: int, run_unit: RunUnit, not_run: NotRun, carried: Callable[[], UnitResult] | None
    ) -> None:
        """The slot's units from ``start``, each kept; ``carried`` ends the first, whose thread was left behind."""
        for position in range(start, len(slot.units)):
            unit = slot.units[position]
            slot.position = position
            if carried is None and self.abort.is_set():
                return
            work = carried if carried is not None else self._work_for(unit, slot, run_unit, not_run)
            carried = None
            slot.record.keep(self._one(unit, work))

    @staticmethod
    def _work_for(unit: UnitSpec, slot: Slot, run_unit: RunUnit, not_run: NotRun) -> Callable[[], UnitResult]:
        """What the slot does with a unit: run it, or, out of service, give it its result unrun."""
        return partial(not_run if slot.out_of_service is not None else run_unit, unit, slot)

    @staticmethod
    def _one(unit: UnitSpec, work: Callable[[], UnitResult]) -> UnitResult:
        """The unit's result from ``work``; an error of the engine's ends the unit in ERROR, never the slot."""
        try:
            return work()
        except SlotClosed:
            raise
        except Exception as exc:  # a slot must outlive any one unit
            log.exception("unit %s could not be run", unit.serial)
            return UnitResult(unit.serial, UnitStatus.ERROR, f"{type(exc).__name__}: {exc}")

    def _finished(self, slot: Slot) -> None:
        slot.finished.set()
        with self._lock:
            self._running -= 1
            if self._running == 0:
                self._all_finished.set()

    def wait(self) -> None:
        """Until every slot has run its units, or a stop was asked for."""
        # Waiting on an Event, not Thread.join: a Ctrl-C that interrupts join() can leave the
        # thread looking finished while it still runs, and its unit's record unwritten.
        while not self._all_finished.wait(0.1):
            if self.abort.is_set():
                return

    def close(self) -> None:
        """The run is over: stop watching the slots' steps."""
        self.watchdog.close()

    def wind_down(self, deadline: float, give_up: GiveUp) -> None:
        """Wait for the slots until ``deadline`` (time.monotonic()); give up on each still busy then."""
        for slot in self.slots:
            while not slot.finished.wait(max(0.0, min(0.1, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    give_up(slot)
                    break

    def busy(self) -> int:
        """How many slots hold a unit now."""
        return sum(1 for slot in self.slots if slot.record.claimed is not None)

    def results(self) -> list[UnitResult]:
        """The units' results in the order given (as dealt); a unit that never started has none."""
        count = len(self.slots)
        total = sum(len(slot.units) for slot in self.slots)
        found = [self.slots[k % count].record.results for k in range(total)]
        return [kept[k // count] for k, kept in enumerate(found) if k // count < len(kept)]
