"""Progress on the console: subscribers to the runner's events.

``LiveProgress`` is for a person at a terminal: a table titled with the recipe and the station,
one row per slot (a running stage says so; an ended one its outcome and, on a failure, the failing
check), and under it the units finished so far with their verdicts, redrawn by rich a few times a
second; a summary of the units at the end. ``PlainProgress`` writes one line per
event, for logs and pipes. Both are called from the runner's slot threads.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.context import MeasurementRecord
from engine.events import Event, StepEnded, StepProgress, StepStarted, Stopping, UnitEnded, UnitStarted
from engine.outcome import Outcome, UnitStatus, Verdict

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
    UnitStatus.IN_ROUTE: "cyan",
}
"""A unit's verdict in colour; the others (refused, aborted, held, quarantined) in yellow."""
_FINISHED_KEPT = 200
"""The finished units the live view keeps to show (the latest; the summary at the end has them all)."""


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
    ended: UnitEnded | None = None
    """How the slot's unit ended, once it has."""
    progress: float | None = None


@dataclass
class _Unit:
    serial: str
    status: str = "unfinished"
    reason: str | None = None
    passed: set[str] = field(default_factory=set)
    """Stage ids with a PASS attempt."""
    failures: int = 0
    failed: StepEnded | None = None
    """The last attempt that failed or errored: what the unit's failure is told by."""


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _limits(m: MeasurementRecord) -> str:
    unit = f" {m.units}" if m.units else ""
    if m.low is not None and m.high is not None:
        return f"limits {_number(m.low)} to {_number(m.high)}{unit}"
    if m.high is not None:
        return f"limit ≤ {_number(m.high)}{unit}"
    if m.low is not None:
        return f"limit ≥ {_number(m.low)}{unit}"
    return ""


def failed_check(attempt: StepEnded) -> str:
    """What failed in an attempt: its stage, and the measurement out of its limits (value and limits)
    or else the step's reason, e.g. ``standby_current: standby_current_ma = 99 mA (limit ≤ 8 mA)``."""
    for m in attempt.measurements:
        if m.verdict is Verdict.FAIL:
            unit = f" {m.units}" if m.units else ""
            limits = _limits(m)
            return f"{attempt.stage}: {m.name} = {_number(m.value)}{unit}" + (f" ({limits})" if limits else "")
    return f"{attempt.stage}: {attempt.error}" if attempt.error else attempt.stage


def _failure(unit: _Unit) -> str:
    """The check a unit that did not ship failed last ("" when none failed, or it shipped after a retry)."""
    if unit.failed is None or unit.status == UnitStatus.SHIPPED:
        return ""
    return failed_check(unit.failed)


def _verdict(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, "yellow"))


def _state(step: StepStarted | StepEnded | None, ended: UnitEnded | None) -> Text | str:
    """The "state" cell: running, the outcome of the attempt ended (a failure with its check), or the unit's verdict."""
    if ended is not None:
        return _verdict(ended.status)
    if isinstance(step, StepStarted):
        return Text("running", style="bold cyan")
    if step is None:
        return ""
    style = _OUTCOME_STYLE.get(step.outcome, "")
    if step.outcome is Outcome.FAIL or step.outcome is Outcome.ERROR:
        return Text.assemble((str(step.outcome), style), " ", failed_check(step))
    return Text(str(step.outcome), style=style)


def title(recipe: str | None, station: str | None) -> str:
    """The live table's title: the recipe and the station (every station's stages when none is given)."""
    where = f"station {station}" if station else "all stations"
    return f"{recipe or 'floorflow'} · {where}"


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
        recipe: str | None = None,
        station: str | None = None,
        refresh_per_second: float = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.console = console
        self.title = title(recipe, station)
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[int, _Slot] = {n: _Slot() for n in range(1, slots + 1)}
        self._units: dict[str, _Unit] = {}
        self._finished: deque[_Unit] = deque(maxlen=_FINISHED_KEPT)
        """The units ended, the latest last."""
        self._verdicts: dict[str, int] = {}
        """How many units ended with each verdict."""
        # transient: the table is wiped when paused for a prompt and when stopped (the summary
        # follows), so the scrollback is not filled with stale copies of it.
        self._live = Live(
            console=console,
            refresh_per_second=refresh_per_second,
            transient=True,
            get_renderable=self.view,
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
                slot.serial, slot.step, slot.progress = event.serial, event, None
                if event.outcome is Outcome.PASS:
                    unit.passed.add(event.stage)
                elif event.outcome is Outcome.FAIL or event.outcome is Outcome.ERROR:
                    unit.failures += 1
                    unit.failed = event
            elif isinstance(event, StepStarted):
                slot.serial, slot.step, slot.progress = event.serial, event, None
            elif isinstance(event, StepProgress):
                slot.progress = event.fraction
            elif isinstance(event, UnitStarted):
                self._slots[event.slot] = _Slot(serial=event.serial)
            else:
                unit.status, unit.reason = event.status, event.reason
                slot.step, slot.ended, slot.progress = None, event, None
                self._finished.append(unit)
                self._verdicts[event.status] = self._verdicts.get(event.status, 0) + 1

    # -- rendering --

    def view(self) -> Group:
        """What the live display draws: the slots, and under them the units finished so far."""
        return Group(self.table(), self.finished(max(3, self.console.height - len(self._slots) - 12)))

    def table(self) -> Table:
        """The slots as they are now."""
        now = self._clock()
        table = Table(title=self.title, title_justify="left", title_style="bold", expand=False)
        for column in ("slot", "unit", "stage", "attempt", "elapsed", "state"):
            table.add_column(column, justify="right" if column in ("slot", "attempt", "elapsed") else "left")
        with self._lock:
            rows = [(number, slot.serial, slot.step, slot.ended, slot.progress) for number, slot in self._slots.items()]
        for number, serial, step, ended, progress in sorted(rows, key=lambda row: row[0]):
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
                _state(step, ended),
            )
        return table

    def finished(self, rows: int) -> Table:
        """The latest ``rows`` units finished, the newest first: each with its verdict and what failed."""
        with self._lock:
            units = list(self._finished)[-rows:]
            counts = ", ".join(f"{n} {status}" for status, n in self._verdicts.items())
        table = Table(title=f"finished: {counts or 'none yet'}", title_justify="left", expand=False)
        for column in ("unit", "verdict", "failed check"):
            table.add_column(column)
        for unit in reversed(units):
            table.add_row(unit.serial, _verdict(unit.status), _failure(unit) or unit.reason or "")
        return table

    def summary(self) -> Table:
        """Every unit seen: its status, stages passed, attempts failed, and why (the failing check, else the reason)."""
        table = Table(title="units", title_justify="left")
        for column in ("serial", "status", "stages passed", "failures", "reason"):
            table.add_column(column, justify="right" if column in ("stages passed", "failures") else "left")
        with self._lock:
            for unit in self._units.values():
                reason = _failure(unit) or unit.reason or ""
                table.add_row(unit.serial, _verdict(unit.status), str(len(unit.passed)), str(unit.failures), reason)
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
    stream_is_tty: bool,
    *,
    console: Console | None = None,
    stream: TextIO | None = None,
    slots: int = 0,
    recipe: str | None = None,
    station: str | None = None,
) -> Progress:
    """LiveProgress, titled with the recipe and station, on a terminal; else PlainProgress (``stream``, or stdout)."""
    if stream_is_tty:
        return LiveProgress(console if console is not None else Console(), slots=slots, recipe=recipe, station=station)
    return PlainProgress(stream if stream is not None else sys.stdout)
