"""Events the runner sends to its subscribers: the console, the record, exporters.

The runner instruments every step; steps never time or log themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from engine.context import MeasurementRecord
from engine.outcome import Outcome


@dataclass(frozen=True)
class UnitStarted:
    serial: str
    slot: int
    lot: str | None = None
    operator: str | None = None
    """Who runs the unit: the operator signed in, else the one the station was started with."""


class StepStarted(NamedTuple):
    """(A tuple, as StepEnded: two are made per attempt, so kept cheap.)"""

    serial: str
    slot: int
    stage: str
    step: str
    attempt: int
    params: Any
    started: float
    """Wall-clock time (time.time()) the attempt started."""


@dataclass(frozen=True)
class StepProgress:
    """How far a long step is (a flash, a download): sent as the step reports it."""

    serial: str
    slot: int
    stage: str
    fraction: float
    """0.0 to 1.0."""
    note: str | None = None


class StepEnded(NamedTuple):
    """(A tuple: a frozen dataclass costs a microsecond more to make, per attempt.)"""

    serial: str
    slot: int
    stage: str
    step: str
    attempt: int
    outcome: Outcome
    started: float
    duration_s: float
    measurements: Sequence[MeasurementRecord] = ()
    error: str | None = None
    """Why the attempt failed, errored, was aborted, refused or skipped."""


@dataclass(frozen=True)
class UnitEnded:
    serial: str
    slot: int
    status: str
    """shipped, scrapped, in-route (stopped before the end), refused, aborted or error."""
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stopping:
    """The run was told to stop (Ctrl-C, SIGTERM): sent at once, before the running attempts end."""

    running: int
    """Units the slots hold, whose running steps are now told to stop and clean up."""
    grace_s: float
    """How long they have before the runner gives up on them."""


Event = UnitStarted | StepStarted | StepProgress | StepEnded | UnitEnded | Stopping


class Subscriber(Protocol):
    def __call__(self, event: Event) -> None: ...
