"""A line profile: how long each stage takes, how often it fails, how units arrive, lots, operators, instruments.

A profile is its own YAML file (``schemas/profile.schema.json``), separate from the recipe, so one
recipe can be simulated under several profiles. What a profile leaves out comes from the shipped
default profile, whose figure for a step type is what the type declares as ``typical`` (its time,
failure chance and whether it needs an operator). This module names no step type.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from engine.diagnostics import Diagnostic, Pos, RecipeError, did_you_mean
from engine.flow import Flow, Stage
from engine.recipe.schema import profile_validator, validate_document
from engine.registry import Registry
from engine.resources import workflow_path
from engine.step import Duration
from engine.yamlload import YMap, load_file

DEFAULT_PROFILE = "profiles/default.yaml"
"""The shipped profile (under workflows/), used when none is given."""
LOT_SIZE = 500
WIP_SAMPLES = 1000


class ProfileError(RecipeError):
    """The profile cannot be used; carries every problem found, each at its file:line:col."""


@dataclass(frozen=True)
class Timing(Duration):
    """Seconds one attempt takes, as a distribution the simulation draws from."""

    def draw(self, rng: np.random.Generator, n: int) -> list[float]:
        """``n`` draws, as a list (read one at a time)."""
        if self.kind == "fixed":
            return [self.a] * n
        if self.kind == "exponential":
            values = rng.exponential(self.a, n)
        elif self.kind == "triangular":
            if self.a == self.c:
                return [self.a] * n
            values = rng.triangular(self.a, self.b, self.c, n)
        else:  # lognormal with this mean and standard deviation
            sigma2 = math.log1p((self.b / self.a) ** 2)
            values = rng.lognormal(math.log(self.a) - sigma2 / 2, math.sqrt(sigma2), n)
        drawn: list[float] = values.tolist()
        return drawn


@dataclass(frozen=True)
class Behaviour:
    time: Timing | None = None
    fail: float | None = None
    measurements: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Instrument:
    """An instrument a station's sockets share (a radio tester behind a port switch): how many, and who holds one.

    A unit in one of ``stages`` holds one of the station's ``count`` instruments for that stage's time;
    its other stages need only its socket.
    """

    name: str
    count: int
    stages: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    name: str
    source: str
    rate_per_hour: float | None = None
    batch_size: int | None = None
    batch_every_s: float | None = None
    lot_size: int = LOT_SIZE
    operators: int | None = None
    break_every_s: float | None = None
    break_for_s: float | None = None
    manual_steps: tuple[str, ...] = ()
    """Step types whose attempts keep an operator busy."""
    wip_samples: int = WIP_SAMPLES
    defaults: Behaviour = Behaviour()
    steps: Mapping[str, Behaviour] = field(default_factory=lambda: MappingProxyType({}))
    stages: Mapping[str, Behaviour] = field(default_factory=lambda: MappingProxyType({}))
    stations: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    instruments: Mapping[str, tuple[Instrument, ...]] = field(default_factory=dict)
    """By station: the instruments its sockets share. A plain dict, so that a profile pickles."""
    fallback: Profile | None = None
    """Where what this profile leaves out comes from (the shipped default profile)."""

    def _levels(self, stage: Stage) -> list[Behaviour]:
        levels = [b for b in (self.stages.get(stage.id), self.steps.get(stage.step), self.defaults) if b is not None]
        return levels + (self.fallback._levels(stage) if self.fallback is not None else [])

    def time_of(self, stage: Stage) -> Timing:
        for level in self._levels(stage):
            if level.time is not None:
                return level.time
        return Timing("fixed", 0.0)

    def fail_of(self, stage: Stage) -> float:
        """Chance that one attempt fails: the stage's own, and each of its measurements'."""
        levels = self._levels(stage)
        own = next((level.fail for level in levels if level.fail is not None), 0.0)
        measured: dict[str, float] = {}
        for level in reversed(levels):  # the most specific level's figure for a measurement wins
            measured.update(level.measurements)
        passes = 1.0 - own
        for chance in measured.values():
            passes *= 1.0 - chance
        return 1.0 - passes

    def slots(self, flow: Flow) -> dict[str, int]:
        return {**flow.stations, **self.stations}


def load_profile(path: Path | None, flow: Flow, registry: Registry | None = None) -> Profile:
    """The profile at ``path`` (the shipped default when None), checked against the flow it is used with.

    ``registry`` (the installed step types when None) gives each step type's ``typical`` figures.
    """
    registry = registry if registry is not None else Registry.discover()
    default = _with_step_types(_read(workflow_path(DEFAULT_PROFILE), None, None, registry), flow, registry)
    if path is None:
        return default
    return _read(path, flow, default, registry)


def _with_step_types(shipped: Profile, flow: Flow, registry: Registry) -> Profile:
    """The shipped profile with the typical figures of the flow's step types under ``steps``.

    A figure the shipped file itself gives for a step type wins over the type's own.
    """
    typical: dict[str, Behaviour] = {}
    operated: list[str] = []
    problems: list[Diagnostic] = []
    for stage in flow.stages.values():
        if stage.step in typical or stage.step not in registry:
            continue
        declared = registry.get(stage.step).typical
        if declared is None:
            continue
        problem = declared.problem()
        if problem is not None:
            message = f"step type '{stage.step}': {problem}"
            problems.append(Diagnostic(stage.at("step"), "error", "step-typical", message))
            continue
        time = declared.time
        typical[stage.step] = Behaviour(time=Timing(time.kind, time.a, time.b, time.c), fail=declared.fail)
        if declared.operator:
            operated.append(stage.step)
    if problems:
        raise ProfileError(problems)
    return dataclasses.replace(
        shipped,
        steps=MappingProxyType({**typical, **shipped.steps}),
        manual_steps=(*shipped.manual_steps, *(name for name in operated if name not in shipped.manual_steps)),
    )


def _read(path: Path, flow: Flow | None, fallback: Profile | None, registry: Registry) -> Profile:
    data = load_file(path)  # raises RecipeSyntaxError (a RecipeError) with the position
    if not isinstance(data, YMap):
        raise ProfileError([Diagnostic(Pos(str(path), 1, 1), "error", "profile-empty", "a profile is a mapping")])
    problems = validate_document(data, profile_validator())
    if not problems:
        problems = _check(data, flow, registry)
    if any(p.severity == "error" for p in problems):
        raise ProfileError(problems)
    arrivals = data.get("arrivals", {})
    batch = arrivals.get("batch", {})
    operators = data.get("operators", {})
    return Profile(
        name=str(data.get("profile", Path(path).stem)),
        source=str(path),
        rate_per_hour=arrivals.get("rate_per_hour"),
        batch_size=batch.get("size"),
        batch_every_s=batch.get("every_s"),
        lot_size=int(data.get("lots", {}).get("size", fallback.lot_size if fallback else LOT_SIZE)),
        operators=operators.get("count"),
        break_every_s=operators.get("breaks", {}).get("every_s"),
        break_for_s=operators.get("breaks", {}).get("for_s"),
        manual_steps=tuple(operators.get("steps", fallback.manual_steps if fallback else ())),
        wip_samples=int(data.get("wip_samples", WIP_SAMPLES)),
        defaults=_behaviour(data.get("defaults", {})),
        steps=MappingProxyType({k: _behaviour(v) for k, v in data.get("steps", {}).items()}),
        stages=MappingProxyType({k: _behaviour(v) for k, v in data.get("stages", {}).items()}),
        stations=MappingProxyType({k: int(v["slots"]) for k, v in data.get("stations", {}).items()}),
        instruments={
            station: tuple(Instrument(name, int(i["count"]), tuple(i["stages"])) for name, i in held.items())
            for station, v in data.get("stations", {}).items()
            if (held := v.get("instruments"))
        },
        fallback=fallback,
    )


def _behaviour(data: Mapping[str, Any]) -> Behaviour:
    time = data.get("time")
    return Behaviour(
        time=_timing(time) if time is not None else None,
        fail=data.get("fail"),
        measurements=MappingProxyType(dict(data.get("measurements", {}))),
    )


def _timing(data: Mapping[str, Any]) -> Timing:
    if "fixed" in data:
        return Timing("fixed", float(data["fixed"]))
    if "exponential" in data:
        return Timing("exponential", float(data["exponential"]))
    if "triangular" in data:
        low, mode, high = (float(x) for x in data["triangular"])
        return Timing("triangular", low, mode, high)
    return Timing("lognormal", float(data["lognormal"]["mean"]), float(data["lognormal"]["sd"]))


def _check(data: YMap, flow: Flow | None, registry: Registry) -> list[Diagnostic]:
    """What the schema cannot say: a triangle in order, and stage and station names the recipe has."""
    problems: list[Diagnostic] = []
    for section in ("defaults", "steps", "stages"):
        entries = {"": data[section]} if section == "defaults" and section in data else data.get(section, {})
        for name, behaviour in entries.items():
            time = behaviour.get("time", {})
            if "triangular" in time:
                low, mode, high = time["triangular"]
                if not low <= mode <= high:
                    problems.append(
                        Diagnostic(
                            time.where("triangular"),
                            "error",
                            "profile-triangular",
                            f"triangular{f' of {name!r}' if name else ''} is [min, mode, max] with min <= mode <= max, "
                            f"not [{low}, {mode}, {high}]",
                        )
                    )
    if flow is None:
        return problems
    for section, known, what, owner in (
        ("steps", registry.names(), "step", "no step type is called"),
        ("stages", list(flow.stages), "stage", f"recipe {flow.recipe} has no stage"),
        ("stations", list(flow.stations), "station", f"recipe {flow.recipe} has no station"),
    ):
        entries = data.get(section, {})
        for name in entries:
            if name not in known:
                problems.append(
                    Diagnostic(
                        entries.where(name, of_key=True),
                        "error",
                        f"profile-unknown-{what}",
                        f"{owner} '{name}'{did_you_mean(name, known)}",
                    )
                )
    return problems + _check_instruments(data.get("stations", {}), flow)


def _check_instruments(stations: YMap, flow: Flow) -> list[Diagnostic]:
    """Each instrument's stages: stages of the recipe, run at the instrument's station."""
    problems: list[Diagnostic] = []
    for station, entry in stations.items():
        if station not in flow.stations:
            continue  # reported as an unknown station
        here = [s.id for s in flow.stages.values() if s.station == station]
        for name, instrument in entry.get("instruments", {}).items():
            held = instrument["stages"]
            for i, stage_id in enumerate(held):
                stage = flow.stages.get(stage_id)
                if stage is None:
                    known = did_you_mean(stage_id, list(flow.stages))
                    message = f"recipe {flow.recipe} has no stage '{stage_id}'{known}"
                    problems.append(Diagnostic(held.where(i), "error", "profile-unknown-stage", message))
                elif stage.station != station:
                    message = (
                        f"instrument '{name}' is at station '{station}', but stage '{stage_id}' runs at "
                        f"{f'station {stage.station!r}' if stage.station else 'no station'}"
                        f"{did_you_mean(stage_id, here)}"
                    )
                    problems.append(Diagnostic(held.where(i), "error", "profile-instrument-station", message))
    return problems
