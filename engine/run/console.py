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

from engine.events import Event, StepEnded, StepProgress, StepStarted, Stopping, UnitStarted
from engine.outcome import Outcome

_OUTCOME_STYLE = {
    Outcome.PASS: "green",
    Outcome.FAIL: "bold red",
    Outcome.ERROR: "bold magenta",
    Outcome.ABORTED: "yellow",
    Outcome.SKIPPED: "dim",
}
_STATUS_STYLE = {"shipped": "green", "scrapped": "bold red", "error": "bold magenta"}


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
    stage: str | None = None
    attempt: int | None = None
    started: float | None = None
    """Wall-clock start of the running attempt; None once it ended."""
    duration_s: float | None = None
    last: Text | None = None
    progress: float | None = None


@dataclass
class _Unit:
    serial: str
    status: str = "unfinished"
    reason: str | None = None
    passed: set[str] = field(default_factory=set)
    """Stage ids with a PASS attempt."""
    failures: int = 0


class LiveProgress:
    """A live table of the slots, and a summary table of the units when it stops.

    Events only update state under a lock; rich redraws the table from its own thread, so a slot
    never waits for the terminal.
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
            slot = self._slots.setdefault(event.slot, _Slot())
            unit = self._units.setdefault(event.serial, _Unit(event.serial))
            if isinstance(event, UnitStarted):
                self._slots[event.slot] = _Slot(serial=event.serial)
            elif isinstance(event, StepStarted):
                slot.serial, slot.stage, slot.attempt = event.serial, event.stage, event.attempt
                slot.started, slot.duration_s, slot.progress = event.started, None, None
            elif isinstance(event, StepProgress):
                slot.progress = event.fraction
            elif isinstance(event, StepEnded):
                slot.serial, slot.stage, slot.attempt = event.serial, event.stage, event.attempt
                slot.started, slot.duration_s, slot.progress = None, event.duration_s, None
                slot.last = Text(str(event.outcome), style=_OUTCOME_STYLE.get(event.outcome, ""))
                if event.outcome is Outcome.PASS:
                    unit.passed.add(event.stage)
                elif event.outcome in (Outcome.FAIL, Outcome.ERROR):
                    unit.failures += 1
            else:
                unit.status, unit.reason = event.status, event.reason
                slot.stage = slot.attempt = slot.started = slot.duration_s = None
                slot.last = Text(event.status, style=_STATUS_STYLE.get(event.status, "yellow"))

    # -- rendering --

    def table(self) -> Table:
        """The slots as they are now."""
        now = self._clock()
        table = Table(title="floorflow", title_justify="left", expand=False)
        for column in ("slot", "unit", "stage", "attempt", "elapsed", "last"):
            table.add_column(column, justify="right" if column in ("slot", "attempt", "elapsed") else "left")
        with self._lock:
            for number, slot in sorted(self._slots.items()):
                if slot.started is not None:
                    elapsed = _seconds(max(now - slot.started, 0.0))
                elif slot.duration_s is not None:
                    elapsed = _seconds(slot.duration_s)
                else:
                    elapsed = ""
                table.add_row(
                    str(number),
                    slot.serial or "idle",
                    (slot.stage or "") + (f" {slot.progress:.0%}" if slot.progress is not None else ""),
                    str(slot.attempt) if slot.attempt is not None else "",
                    elapsed,
                    slot.last or "",
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
