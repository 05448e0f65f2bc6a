"""Progress on the console: subscribers to the runner's events.

``LiveProgress`` is for a person at a terminal: a table with one row per slot, redrawn by rich a
few times a second, and a summary of the units at the end. ``PlainProgress`` writes one line per
event, for logs and pipes. Both are called from the runner's slot threads.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.events import Event, StepEnded, StepProgress, StepStarted, Stopping, UnitEnded, UnitStarted
from engine.outcome import Outcome, UnitStatus

_OUTCOME_STYLE = {
    Outcome.PASS: "green",
    Outcome.FAIL: "bold red",
    Outcome.ERROR: "bold magenta",
    Outcome.ABORTED: "yellow",
    Outcome.SKIPPED: "dim",
}
_STATUS_STYLE: dict[str, str] = {
    UnitStatus.SHIPPED: "green",
    UnitStatus.SCRAPPED: "bold red",
    UnitStatus.ERROR: "bold magenta",
}


class Progress(Protocol):
    """What a run shows progress with: a subscriber, entered for the run, paused for prompts."""

    def __call__(self, event: Event) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def paused(self) -> AbstractContextManager[object]: ...


def _seconds(value: float) -> str:
    return f"{value:.2f}s"


def stopping_line(event: Stopping) -> str:
    """What an operator is told at once when a run is stopped."""
    if event.running == 0:
        return "aborting: no step is running"
    steps = "step" if event.running == 1 else "steps"
    return f"aborting: waiting for {event.running} running {steps} to clean up (at most {event.grace_s:g} s)…"


class PlainProgress:
    """One line per event, e.g. ``slot 2 SN0003 rf_cal attempt 1 PASS 0.12s``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._quarters: dict[int, int] = {}
        """Per slot, the last quarter of a step's progress printed."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepProgress):
            quarter = int(event.fraction * 4)
            with self._lock:
                if self._quarters.get(event.slot) == quarter or quarter == 0:
                    return
                self._quarters[event.slot] = quarter
        elif isinstance(event, StepStarted):
            self._quarters.pop(event.slot, None)
        line = self.line(event)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    @staticmethod
    def line(event: Event) -> str:
        if isinstance(event, Stopping):
            return stopping_line(event)
        who = f"slot {event.slot} {event.serial}"
        if isinstance(event, UnitStarted):
            lot = f" (lot {event.lot})" if event.lot is not None else ""
            return f"{who} started{lot}"
        if isinstance(event, StepStarted):
            return f"{who} {event.stage} attempt {event.attempt} started ({event.step})"
        if isinstance(event, StepProgress):
            note = f" {event.note}" if event.note else ""
            return f"{who} {event.stage} {event.fraction:.0%}{note}"
        if isinstance(event, StepEnded):
            error = f": {event.error}" if event.error else ""
            took = _seconds(event.duration_s)
            return f"{who} {event.stage} attempt {event.attempt} {event.outcome} {took}{error}"
        reason = f": {event.reason}" if event.reason else ""
        return f"{who} {event.status}{reason}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def paused(self) -> AbstractContextManager[object]:
        # Lines are whole and flushed; a prompt between two of them needs no room made for it.
        return nullcontext()


@dataclass
class _Slot:
    serial: str | None = None
    step: StepStarted | StepEnded | None = None
    """The attempt shown: running (StepStarted) or the last ended (StepEnded); None once the unit ended."""
    last: StepEnded | UnitEnded | None = None
    """What ended last in the slot: an attempt (its outcome) or the unit (its status)."""
    progress: float | None = None


@dataclass
class _Unit:
    serial: str
    status: str = "unfinished"
    reason: str | None = None
    passed: set[str] = field(default_factory=set)
    """Stage ids with a PASS attempt."""
    failures: int = 0


def _last(ended: StepEnded | UnitEnded | None) -> Text | str:
    """The "last" cell: the outcome of the attempt that ended last, or the status of the unit."""
    if isinstance(ended, StepEnded):
        return Text(str(ended.outcome), style=_OUTCOME_STYLE.get(ended.outcome, ""))
    if isinstance(ended, UnitEnded):
        return Text(ended.status, style=_STATUS_STYLE.get(ended.status, "yellow"))
    return ""


class LiveProgress:
    """A live table of the slots, and a summary table of the units when it stops.

    An event only notes what it says (a reference or a counter, under a lock); rich draws the table
    from those notes on its own thread, a few times a second, so a slot never waits for the terminal
    and pays nothing per step for the drawing.
    """

    def __init__(
        self,
        console: Console,
        *,
        slots: int = 0,
        refresh_per_second: float = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.console = console
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[int, _Slot] = {n: _Slot() for n in range(1, slots + 1)}
        self._units: dict[str, _Unit] = {}
        # transient: the table is wiped when paused for a prompt and when stopped (the summary
        # follows), so the scrollback is not filled with stale copies of it.
        self._live = Live(
            console=console,
            refresh_per_second=refresh_per_second,
            transient=True,
            get_renderable=self.table,
        )
        self._running = False
        self._life = threading.Lock()
        """Guards starting and stopping: a slot thread pauses while the main thread may stop."""

    # -- subscriber --

    def __call__(self, event: Event) -> None:
        if isinstance(event, Stopping):
            # Printed above the live table at once; the table goes on showing the slots' cleanup.
            self.console.print(Text(stopping_line(event), style="bold yellow"))
            return
        with self._lock:
            slot = self._slots.get(event.slot)
            if slot is None:
                slot = self._slots[event.slot] = _Slot()
            unit = self._units.get(event.serial)
            if unit is None:
                unit = self._units[event.serial] = _Unit(event.serial)
            if isinstance(event, StepEnded):
                slot.serial, slot.step, slot.last, slot.progress = event.serial, event, event, None
                if event.outcome is Outcome.PASS:
                    unit.passed.add(event.stage)
                elif event.outcome is Outcome.FAIL or event.outcome is Outcome.ERROR:
                    unit.failures += 1
            elif isinstance(event, StepStarted):
                slot.serial, slot.step, slot.progress = event.serial, event, None
            elif isinstance(event, StepProgress):
                slot.progress = event.fraction
            elif isinstance(event, UnitStarted):
                self._slots[event.slot] = _Slot(serial=event.serial)
            else:
                unit.status, unit.reason = event.status, event.reason
                slot.step, slot.last = None, event

    # -- rendering --

    def table(self) -> Table:
        """The slots as they are now."""
        now = self._clock()
        table = Table(title="floorflow", title_justify="left", expand=False)
        for column in ("slot", "unit", "stage", "attempt", "elapsed", "last"):
            table.add_column(column, justify="right" if column in ("slot", "attempt", "elapsed") else "left")
        with self._lock:
            rows = [(number, slot.serial, slot.step, slot.last, slot.progress) for number, slot in self._slots.items()]
        for number, serial, step, last, progress in sorted(rows, key=lambda row: row[0]):
            if isinstance(step, StepStarted):
                elapsed = _seconds(max(now - step.started, 0.0))
            elif step is not None:
                elapsed = _seconds(step.duration_s)
            else:
                elapsed = ""
            table.add_row(
                str(number),
                serial or "idle",
                (step.stage if step is not None else "") + (f" {progress:.0%}" if progress is not None else ""),
                str(step.attempt) if step is not None else "",
                elapsed,
                _last(last),
            )
        return table

    def summary(self) -> Table:
        """Every unit seen: its status, how many stages it passed, how many attempts failed."""
        table = Table(title="units", title_justify="left")
        for column in ("serial", "status", "stages passed", "failures", "reason"):
            table.add_column(column, justify="right" if column in ("stages passed", "failures") else "left")
        with self._lock:
            for unit in self._units.values():
                table.add_row(
                    unit.serial,
                    Text(unit.status, style=_STATUS_STYLE.get(unit.status, "yellow")),
                    str(len(unit.passed)),
                    str(unit.failures),
                    unit.reason or "",
                )
        return table

    # -- lifecycle --

    def start(self) -> None:
        with self._life:
            self._running = True
            self._live.start(refresh=True)

    def stop(self) -> None:
        """Stop redrawing and print the summary of units (once)."""
        with self._life:
            if not self._running:
                return
            self._running = False
            self._live.stop()
        if self._units:
            self.console.print(self.summary())

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Take the table off the screen while a prompt is up; events keep being recorded."""
        with self._life:
            self._live.stop()
        try:
            yield
        finally:
            with self._life:
                if self._running:
                    self._live.start(refresh=True)


def progress_for(
    stream_is_tty: bool, *, console: Console | None = None, stream: TextIO | None = None, slots: int = 0
) -> Progress:
    """LiveProgress on a terminal, PlainProgress otherwise (``stream``, default stdout)."""
    if stream_is_tty:
        return LiveProgress(console if console is not None else Console(), slots=slots)
    return PlainProgress(stream if stream is not None else sys.stdout)
