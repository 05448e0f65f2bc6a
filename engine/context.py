"""What a step is handed when it runs: its parameters, the unit, the device, the operator.

A step records measurements through ``ctx.measure`` and the engine judges them against the stage's
limits; a step never times, logs its own start and end, or decides pass/fail of a measurement.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from engine.flow import Image, Stage
from engine.outcome import Verdict


@dataclass(frozen=True)
class Answer:
    """An operator's answer to one manual check."""

    passed: bool
    comment: str | None = None


class FailureChoice(StrEnum):
    """What the operator makes of a stage that failed after its retries: one more attempt, or the failure."""

    RETRY = "retry"
    FAIL = "fail"


class Operator(Protocol):
    """Whoever answers manual checks: a person at a terminal, a script, or the simulated operator.

    An operator may also have ``confirm_failure(stage, failed) -> FailureChoice``: asked when a stage
    failed after its retries (``failed`` says what failed), before the unit is routed to rework or scrap.
    The runner looks it up by name; an operator without it confirms every failure unasked.
    """

    name: str

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        """Ask one pass/fail question, showing ``picture`` (an image file) with it; raise StationError when
        nobody can answer."""
        ...


@dataclass(frozen=True)
class UnitInfo:
    serial: str
    lot: str | None = None
    lifecycle: str | None = None
    """The unit's lifecycle state when the attempt started."""


class MeasurementRecord(NamedTuple):
    """One measured value as the engine judged it (a tuple: made for every value, so kept cheap)."""

    name: str
    value: Any
    verdict: Verdict
    units: str | None = None
    low: float | None = None
    high: float | None = None
    tags: Mapping[str, Any] = MappingProxyType({})


class Device(Protocol):
    """A handle on the unit's hardware, opened by the station's Line for one unit in one slot."""

    def close(self) -> None: ...


class Line(Protocol):
    """The hardware of a station: opens a device per unit and offers station-wide resources.

    Implementations are found through the ``floorflow.lines`` entry-point group: ``sim`` (shipped
    simulated hardware) and ``hardware`` (the real adapters).
    """

    def open_unit(self, serial: str, slot: int) -> Device: ...

    def resources(self) -> Mapping[str, Any]: ...

    # Optional: ``prepare(slots: int) -> None``, called once before a run with the number of slots
    # it uses, to check or set up every slot's wiring before the first unit starts.

    def close(self) -> None: ...


_VALUE_TYPES = (str, int, float, bool)
"""What a record can hold as a measured value, exactly and readably."""

Judge = Callable[[str, Any, "str | None", Mapping[str, Any]], MeasurementRecord]


@dataclass(slots=True)
class StepContext:
    """Everything one attempt of one stage may use. Built by the runner, one per attempt."""

    params: Any
    stage: Stage
    unit: UnitInfo
    slot: int
    station: str | None
    attempt: int
    device: Any
    operator: Operator
    resources: Mapping[str, Any]
    """Station-wide helpers offered by the Line (identity allocator, label printer, instruments)."""
    images: Mapping[str, Image]
    log: logging.Logger
    judge: Judge
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set when the attempt timed out or was aborted: a step should stop soon after (it has a grace of
    seconds; a manual check's prompt ends at once)."""
    measurements: list[MeasurementRecord] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    report: Callable[[float, str | None], None] | None = None
    """Where progress goes (the runner's subscribers); None when nobody listens."""
    reported: float = -1.0
    not_started: bool = False
    """The step raised NotStarted: it changed nothing on the unit."""
    abandoned: bool = False
    """The step's thread did not stop when told to and was left running: its slot takes no more units."""

    def measure(self, name: str, value: Any, units: str | None = None, **tags: Any) -> Verdict:
        """Record one measured value; the engine judges it against the stage's limits."""
        if not isinstance(value, _VALUE_TYPES) and value is not None:
            kind = type(value).__name__
            raise TypeError(f"measurement '{name}': a value is text, a number or true/false, not {kind}")
        record = self.judge(name, value, units, tags)
        self.measurements.append(record)
        return record.verdict

    def progress(self, fraction: float, note: str | None = None) -> None:
        """Tell whoever watches how far the step is (0.0 to 1.0); sent at most once per percent."""
        fraction = min(max(fraction, 0.0), 1.0)
        if self.report is not None and (fraction - self.reported >= 0.01 or (fraction == 1.0 > self.reported)):
            self.reported = fraction
            self.report(fraction, note)

    def on_cleanup(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the attempt ends, however it ends (last registered, first run)."""
        self.cleanups.append(action)
