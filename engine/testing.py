"""Test helpers for step authors: fakes of what a step is handed, and the step contract as checks.

A step package tests itself as floorflow tests its own steps:

- ``fake_context(StepType, {...})`` builds the ``StepContext`` a stage of the type would get, with a
  ``FakeDevice``, a ``FakeOperator`` and no station; ``run_step`` runs the step in one and says what
  the engine would make of it (PASS, FAIL or ERROR, the reason, the measurements), running its
  cleanups as the engine does. ``FakeLine`` is a station's hardware that opens fake devices.
- ``contract_cases(step_types)`` lists every rule of the step contract for every type given, each a
  case whose ``check()`` raises ``ContractError`` (an AssertionError) naming what is wrong. In pytest:
  ``@pytest.mark.parametrize("case", contract_cases(types), ids=str)`` then ``case.check()``.

A fake context records measurements without judging them (a measurement passes unless a ``judge`` is
given): limits belong to the recipe, and ``floorflow run --sim`` judges them. This module imports only
the engine's core, never pytest.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from engine.context import Answer, Judge, MeasurementRecord, StepContext, UnitInfo
from engine.contract import ContractCase, ContractError, ContractRule, check_contract, contract_cases, sentinel_params
from engine.flow import Image, Stage
from engine.outcome import NotStarted, Outcome, StationError, StepFailed, Verdict
from engine.registry import ENTRY_POINT_GROUP
from engine.step import StepType

__all__ = [
    "NEW_DEVICE",
    "SERIAL",
    "ContractCase",
    "ContractError",
    "ContractRule",
    "FakeDevice",
    "FakeLine",
    "FakeOperator",
    "StepRun",
    "check_contract",
    "contract_cases",
    "fake_context",
    "installed_step_types",
    "params_of",
    "record_only",
    "run_step",
    "sentinel_params",
]

SERIAL = "SN0001"
"""The unit a fake context runs on unless told otherwise."""
NEW_DEVICE: Any = object()
"""``fake_context``'s default device: a new FakeDevice for the unit (None: the station opened none)."""

# -- fakes ------------------------------------------------------------------------------------------


class FakeDevice:
    """A unit's device that does nothing but remember how often it was closed.

    Subclass it with the methods your step calls on ``ctx.device``, answering as the test needs.
    """

    def __init__(self, serial: str = SERIAL, slot: int = 1) -> None:
        self.serial = serial
        self.slot = slot
        self.device_id = f"dev-{serial}"
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class FakeOperator:
    """Answers every manual check: passes it, or fails the ones in ``failing`` with their comment."""

    def __init__(self, failing: Mapping[str, str | None] | None = None, name: str = "fake") -> None:
        self.name = name
        self.failing = dict(failing or {})
        self.asked: list[tuple[str, str, str]] = []
        """(stage, check, prompt) of every question, in order."""
        self.pictures: dict[str, Path] = {}
        """The picture shown with each check asked with one."""

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        self.asked.append((stage, check, prompt))
        if picture is not None:
            self.pictures[check] = picture
        if check in self.failing:
            return Answer(False, self.failing[check])
        return Answer(True)


class FakeLine:
    """A station's hardware for tests: opens a fresh device per unit and offers the resources given."""

    def __init__(
        self,
        resources: Mapping[str, Any] | None = None,
        device: Callable[[str, int], Any] = FakeDevice,
    ) -> None:
        self._resources = dict(resources or {})
        self._device = device
        self.devices: list[Any] = []
        """Every device opened, in order."""
        self.closed = False
        self.lock = threading.Lock()

    def open_unit(self, serial: str, slot: int) -> Any:
        device = self._device(serial, slot)
        with self.lock:
            self.devices.append(device)
        return device

    def resources(self) -> Mapping[str, Any]:
        return self._resources

    def close(self) -> None:
        self.closed = True

    def device_of(self, serial: str) -> Any:
        """The last device opened for ``serial``."""
        return next(d for d in reversed(self.devices) if d.serial == serial)


def record_only(name: str, value: Any, units: str | None, tags: Mapping[str, Any]) -> MeasurementRecord:
    """A judge that records every value as PASS: a fake context does not judge against limits."""
    return MeasurementRecord(name, value, Verdict.PASS, units, tags=tags)


def params_of(step_type: type[StepType], given: Any = None) -> Any:
    """The type's Params from a ``with:`` mapping as a recipe writes it (lists become tuples).

    None gives the type's ``example``; a Params instance is used as it is.
    """
    if isinstance(given, step_type.Params):
        return given
    written = step_type.example if given is None else given
    return step_type.Params(**{k: tuple(v) if isinstance(v, list) else v for k, v in written.items()})


def fake_context(
    step_type: type[StepType],
    params: Any = None,
    *,
    serial: str = SERIAL,
    lot: str | None = None,
    lifecycle: str | None = None,
    slot: int = 1,
    station: str | None = None,
    attempt: int = 1,
    device: Any = NEW_DEVICE,
    operator: Any = None,
    resources: Mapping[str, Any] | None = None,
    images: Mapping[str, Image] | None = None,
    judge: Judge = record_only,
) -> StepContext:
    """The context one attempt of a stage of ``step_type`` gets (the stage's id: the name with ``_``).

    ``params`` is a ``with:`` mapping or the type's Params (None: its example). Unless given a device
    (None: no device is open), the unit gets a ``FakeDevice``; unless given an operator, a
    ``FakeOperator`` that passes every check.
    """
    built = params_of(step_type, params)
    stage = Stage(step_type.name.replace(".", "_"), step_type.name, params=built, effects=step_type.effects(built))
    return StepContext(
        params=built,
        stage=stage,
        unit=UnitInfo(serial, lot, lifecycle),
        slot=slot,
        station=station,
        attempt=attempt,
        device=FakeDevice(serial, slot) if device is NEW_DEVICE else device,
        operator=operator if operator is not None else FakeOperator(),
        resources=dict(resources or {}),
        images=dict(images or {}),
        log=logging.getLogger(f"floorflow.testing.{step_type.name}"),
        judge=judge,
    )


@dataclass
class StepRun:
    """What one attempt came to, as the engine would record it."""

    outcome: Outcome
    reason: str | None
    """Why, unless PASS."""
    ctx: StepContext
    error: BaseException | None = None
    """What the step raised, if anything."""

    @property
    def measured(self) -> dict[str, Any]:
        """Each measurement's value by name (the last, where a name was recorded more than once)."""
        return {m.name: m.value for m in self.ctx.measurements}


def run_step(step_type: type[StepType], params: Any = None, **context: Any) -> StepRun:
    """Run one attempt of ``step_type`` in a ``fake_context`` (same arguments) and its cleanups.

    A StepFailed is a FAIL; a StationError or any other exception an ERROR; a measurement its judge
    fails makes a FAIL; a cleanup that raises makes a passing attempt an ERROR.
    """
    ctx = fake_context(step_type, params, **context)
    run = _attempt(step_type, ctx)
    for action in reversed(ctx.cleanups):
        try:
            action()
        except Exception as exc:
            if run.outcome is Outcome.PASS:
                run = StepRun(Outcome.ERROR, f"cleanup failed: {type(exc).__name__}: {exc}", ctx, exc)
    return run


def _attempt(step_type: type[StepType], ctx: StepContext) -> StepRun:
    try:
        returned = step_type().run(ctx)
    except StepFailed as exc:
        return StepRun(Outcome.FAIL, str(exc) or "the step reported a failure", ctx, exc)
    except NotStarted as exc:
        ctx.not_started = True
        return StepRun(Outcome.ERROR, str(exc), ctx, exc)
    except StationError as exc:
        return StepRun(Outcome.ERROR, str(exc), ctx, exc)
    except Exception as exc:
        return StepRun(Outcome.ERROR, f"{type(exc).__name__}: {exc}", ctx, exc)
    if isinstance(returned, Outcome) and returned is not Outcome.PASS:
        return StepRun(returned, None, ctx)
    failed = next((m for m in ctx.measurements if m.verdict is Verdict.FAIL), None)
    if failed is not None:
        return StepRun(Outcome.FAIL, f"measurement '{failed.name}' = {failed.value!r} is outside its limits", ctx)
    return StepRun(Outcome.PASS, None, ctx)


def installed_step_types(distribution: str | None = None) -> list[type[StepType]]:
    """The step types the installed distribution ``distribution`` declares (every one's when None),
    imported from its ``floorflow.steps`` entry points, by name. ``-``, ``_`` and ``.`` in the
    distribution's name count alike, as pip counts them."""
    wanted = _normalized(distribution) if distribution is not None else None
    found = {
        ep.name: ep
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if wanted is None or (ep.dist is not None and _normalized(ep.dist.name) == wanted)
    }
    return [found[name].load() for name in sorted(found)]


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()
