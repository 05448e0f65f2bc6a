"""A small lab of step types and a test Line for the runner, guard and record tests.

The step types are the tests' own, registered in a private Registry, so these tests do not depend on
the shipped steps or their simulator. Every step counts its runs on the ``Bench`` (the test's Line,
offered to the steps as the ``bench`` resource), so a test can prove what ran and how often.
"""

from __future__ import annotations

import textwrap
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.context import StepContext
from engine.flow import Flow, Group, Stage
from engine.outcome import StationError, StepFailed
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.run.operator import SimOperator
from engine.run.runner import StationRunner
from engine.run.unitstate import RouteIndex, UnitState
from engine.step import Effects, NoParams, StepType, param
from engine.store import MEMORY, SqlStore, open_store
from engine.store.history import History
from engine.testing import FakeDevice

HANG_LIMIT_S = 10.0
"""A hanging step gives up on its own after this long, so a broken engine fails a test, not hangs it."""


@dataclass
class Bench:
    """The test's Line: opens a FakeDevice per unit (it counts how often the engine closed it) and hands
    itself to the steps as a resource."""

    values: dict[str, Any] = field(default_factory=dict)
    """serial -> the value ``lab.measure`` records (a unit without one records nothing)."""
    instrument_down: bool = True
    broken_cleanup: bool = False
    """lab.cleanup's cleanup raises after it has been counted."""
    runs: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(serial, stage) -> times a step of the stage started on the unit."""
    order: list[tuple[str, str]] = field(default_factory=list)
    cleaned: list[tuple[str, str, int]] = field(default_factory=list)
    """(serial, stage, attempt) of every cleanup that ran."""
    cancelled: list[str] = field(default_factory=list)
    """Serials whose hanging step saw ``ctx.cancelled`` set."""
    devices: list[FakeDevice] = field(default_factory=list)
    waiting: threading.Event = field(default_factory=threading.Event)
    """Set when a hanging step starts waiting."""
    probe: Any = None
    """Called by ``lab.probe`` with the context: a test's look at the world from inside a step."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open_unit(self, serial: str, slot: int) -> FakeDevice:
        device = FakeDevice(serial, slot)
        with self.lock:
            self.devices.append(device)
        return device

    def resources(self) -> Mapping[str, Any]:
        return {"bench": self}

    def close(self) -> None:
        pass

    def ran(self, ctx: StepContext) -> int:
        key = (ctx.unit.serial, ctx.stage.id)
        with self.lock:
            self.runs[key] += 1
            self.order.append(key)
            return self.runs[key]

    def stages_run(self, serial: str) -> list[str]:
        return [stage for s, stage in self.order if s == serial]

    def device_of(self, serial: str) -> FakeDevice:
        return next(d for d in self.devices if d.serial == serial)


def bench_of(ctx: StepContext) -> Bench:
    bench = ctx.resources["bench"]
    assert isinstance(bench, Bench)
    return bench


def _hang(ctx: StepContext, bench: Bench) -> None:
    bench.waiting.set()
    if not ctx.cancelled.wait(HANG_LIMIT_S):
        raise StationError(f"nobody cancelled the step within {HANG_LIMIT_S} s")
    with bench.lock:
        bench.cancelled.append(ctx.unit.serial)
    raise StationError("cancelled")


# -- the step types -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasureParams:
    name: str = param("Name of the measurement recorded.", default="v")


class Measure(StepType):
    name = "lab.measure"
    summary = "Record the unit's value from the bench (nothing when the bench has none); else pass."
    Params = MeasureParams

    def run(self, ctx: StepContext) -> None:
        bench = bench_of(ctx)
        bench.ran(ctx)
        if ctx.unit.serial in bench.values:
            ctx.measure(ctx.params.name, bench.values[ctx.unit.serial])


@dataclass(frozen=True)
class FlakyParams:
    fails: int = param("Times the step fails on a unit before it passes.", default=0)


class Flaky(StepType):
    name = "lab.flaky"
    summary = "Raise StepFailed the first `fails` times it runs on a unit, then pass."
    Params = FlakyParams

    def run(self, ctx: StepContext) -> None:
        count = bench_of(ctx).ran(ctx)
        if count <= ctx.params.fails:
            raise StepFailed(f"failure {count} of {ctx.params.fails}")


class Instrument(StepType):
    name = "lab.instrument"
    summary = "Use the bench's instrument: a StationError while it is down."
    Params = NoParams

    def run(self, ctx: StepContext) -> None:
        bench = bench_of(ctx)
        bench.ran(ctx)
        if bench.instrument_down:
            raise StationError("the instrument is offline")


@dataclass(frozen=True)
class HangParams:
    serials: tuple[str, ...] = param("Units it hangs on (none given: every unit); the others pass.", default=())


class Hang(StepType):
    name = "lab.hang"
    summary = "Wait until ctx.cancelled is set, then raise StationError."
    Params = HangParams

    def run(self, ctx: StepContext) -> None:
        bench = bench_of(ctx)
        bench.ran(ctx)
        if not ctx.params.serials or ctx.unit.serial in ctx.params.serials:
            _hang(ctx, bench)


@dataclass(frozen=True)
class CleanupParams:
    ending: str = param("How the attempt ends after registering its cleanup: pass, fail, error or hang.")


class Cleanup(StepType):
    name = "lab.cleanup"
    summary = "Register a cleanup, then end as told."
    Params = CleanupParams

    def run(self, ctx: StepContext) -> None:
        bench = bench_of(ctx)
        bench.ran(ctx)
        key = (ctx.unit.serial, ctx.stage.id, ctx.attempt)

        def cleanup() -> None:
            with bench.lock:
                bench.cleaned.append(key)
            if bench.broken_cleanup:
                raise OSError("the fixture clamp did not open")

        ctx.on_cleanup(cleanup)
        ending = ctx.params.ending
        if ending == "fail":
            raise StepFailed("the unit is bad")
        if ending == "error":
            raise StationError("the fixture is bad")
        if ending == "hang":
            _hang(ctx, bench)


@dataclass(frozen=True)
class AdvanceParams:
    to: str = param("Lifecycle state the unit moves to.", ref="lifecycle")


class Advance(StepType):
    name = "lab.advance"
    summary = "Move the unit's lifecycle forward."
    Params = AdvanceParams

    @classmethod
    def effects(cls, params: AdvanceParams) -> Effects:
        return Effects(advances_to=params.to)

    def run(self, ctx: StepContext) -> None:
        bench_of(ctx).ran(ctx)


class Ready(StepType):
    name = "lab.ready"
    summary = "A ready-to-ship gate that always passes."
    Params = NoParams

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(ready_check=True)

    def run(self, ctx: StepContext) -> None:
        bench_of(ctx).ran(ctx)


@dataclass(frozen=True)
class SleepParams:
    seconds: float = param("How long the step takes.", default=0.2)


class Sleep(StepType):
    name = "lab.sleep"
    summary = "Take a while, then pass."
    Params = SleepParams

    def run(self, ctx: StepContext) -> None:
        bench_of(ctx).ran(ctx)
        time.sleep(ctx.params.seconds)


class Probe(StepType):
    name = "lab.probe"
    summary = "Call the bench's probe with the context, then pass."
    Params = NoParams

    def run(self, ctx: StepContext) -> None:
        bench = bench_of(ctx)
        bench.ran(ctx)
        if bench.probe is not None:
            bench.probe(ctx)


LAB_TYPES: tuple[type[StepType], ...] = (Measure, Flaky, Instrument, Hang, Cleanup, Advance, Ready, Sleep, Probe)


def lab_registry() -> Registry:
    registry = Registry()
    for step_type in LAB_TYPES:
        registry.register(step_type, origin="tests/steplab.py")
    return registry


REGISTRY = lab_registry()


# -- flows ----------------------------------------------------------------------------------------


def build(directory: Path, text: str, name: str = "recipe.yaml") -> Flow:
    """Check a recipe written as YAML text; the test fails on any error the checker reports."""
    path = directory / name
    path.write_text(textwrap.dedent(text))
    flow, problems = check_recipe(path, REGISTRY)
    errors = [str(d) for d in problems if d.severity == "error"]
    assert flow is not None and not errors, errors
    return flow


def stage(sid: str, step_type: type[StepType], params: Any = None, **options: Any) -> Stage:
    """A Stage built directly, with the step type's parameters and effects."""
    params = params if params is not None else step_type.Params()
    return Stage(sid, step_type.name, params=params, effects=step_type.effects(params), **options)


def direct_flow(
    route: Sequence[Stage | tuple[str, Sequence[Stage]]],
    rework: Sequence[Stage] = (),
    lifecycle: Sequence[str] = (),
    content_hash: str = "direct-1",
) -> Flow:
    """A Flow built in code, skipping the checker: entries are stages or (group id, member stages)."""
    stages: dict[str, Stage] = {}
    entries: list[str | Group] = []
    for entry in route:
        if isinstance(entry, Stage):
            stages[entry.id] = entry
            entries.append(entry.id)
        else:
            gid, members = entry
            for member in members:
                stages[member.id] = member
            entries.append(Group(gid, tuple(m.id for m in members)))
    for extra in rework:
        stages[extra.id] = extra
    return Flow(
        recipe="direct",
        version=1,
        stages=stages,
        route=tuple(entries),
        lifecycle=tuple(lifecycle),
        content_hash=content_hash,
    )


def runner(
    flow: Flow,
    bench: Bench,
    history: History | None = None,
    *,
    station: str | None = None,
    subscribers: Sequence[Any] = (),
) -> StationRunner:
    return StationRunner(
        flow,
        REGISTRY,
        bench,
        SimOperator(name="sim"),
        history if history is not None else memory_store(),
        subscribers,
        station,
        "tester",
    )


def memory_store() -> SqlStore:
    """The store a dry run keeps in memory (``sqlite://``): the runner's record in tests, as in ``floorflow run``."""
    return open_store(MEMORY)


def state_of(flow: Flow, history: History, serial: str) -> UnitState:
    """The unit's state as a station picking it up would derive it from its record."""
    return UnitState.replay(RouteIndex(flow), history.unit(serial).attempts)
