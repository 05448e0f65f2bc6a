"""What-if sweeps: the line under every combination of a few settings, each replicated, and the smallest that does.

``parse_vary`` reads a ``--vary PATH=VALUES`` option against the recipe (which settings there are:
``setting_paths``), ``grid`` combines the options into scenarios, ``apply`` makes a scenario's profile
(``dataclasses.replace``), ``run_scenarios`` runs every scenario under every replication's seed on any
``concurrent.futures.Executor`` (local processes, or a Dask cluster's executor: the same tasks) and
``choose`` picks the configuration with the fewest resources whose UPH meets a target with 95%
confidence. A ``Flow`` and a ``Profile`` do not pickle (their mappings are read-only views), so a task
carries what builds them again (``Line``: the files' paths) and each worker process builds them once.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.diagnostics import RecipeError, did_you_mean
from engine.flow import Flow
from engine.simulate import load_profile, simulate
from engine.simulate.profile import Profile
from engine.simulate.replicate import Figures, summarize

Value = int | float
Settings = dict[str, Value]
"""A scenario: each varied setting's path and its value, in the order of the ``--vary`` options."""
EXAMPLE = "stations.rf.slots=2..6"


class SweepError(ValueError):
    """A ``--vary`` option that cannot be used; the message names the option and says why."""


class LineNotBuilt(Exception):
    """A worker could not read the recipe or the profile again (a cluster's worker without the files)."""


class Knob(Enum):
    """What a ``--vary`` path sets in the profile; the value is the path's pattern."""

    STATION_SLOTS = "stations.<station>.slots"
    OPERATORS = "operators"
    ARRIVAL_RATE = "arrivals.rate_per_hour"
    LOT_SIZE = "lots.size"
    INSTRUMENT_COUNT = "instruments.<station>.<instrument>"

    @property
    def counts_resources(self) -> bool:
        """Whether the setting is a count of things a line buys (what ``choose`` keeps smallest)."""
        return self in (Knob.STATION_SLOTS, Knob.OPERATORS, Knob.INSTRUMENT_COUNT)

    @property
    def whole(self) -> bool:
        return self is not Knob.ARRIVAL_RATE


@dataclass(frozen=True)
class Vary:
    """One ``--vary`` option read: the setting's path, what it sets, and its values in order."""

    path: str
    knob: Knob
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Line:
    """What a worker needs to build the line again: the recipe and profile files (absolute: a cluster's workers
    read them at the same paths), and the units each run starts."""

    recipe: Path
    profile: Path | None
    units: int
    recipe_root: Path | None = None
    warmup_s: float = 0.0
    """The start-up left out of each run's steady-state figures (``engine.simulate.warmup``)."""


@dataclass(frozen=True)
class Scenario:
    """A scenario's settings, its replications' figures (in the order of the seeds) and their summary."""

    settings: Settings
    runs: list[Figures]
    figures: Figures


def setting_paths(flow: Flow, profile: Profile) -> list[str]:
    """The paths ``--vary`` takes for this recipe and profile: a slot count per station, the line's own settings,
    then the count of each instrument the profile declares."""
    return [
        *(f"stations.{name}.slots" for name in flow.stations),
        Knob.OPERATORS.value,
        Knob.ARRIVAL_RATE.value,
        Knob.LOT_SIZE.value,
        *(f"instruments.{station}.{i.name}" for station, held in profile.instruments.items() for i in held),
    ]


def parse_vary(text: str, flow: Flow, profile: Profile) -> Vary:
    """``PATH=VALUES`` read against ``flow`` and ``profile``; SweepError naming the option when the path or the
    values are wrong."""
    option = f"--vary {text}"
    path, equals, values = text.partition("=")
    path, values = path.strip(), values.strip()
    if not equals or not path or not values:
        raise SweepError(f"{option}: give PATH=VALUES, e.g. {EXAMPLE}")
    knob = _knob(path, setting_paths(flow, profile), option)
    try:
        parsed = parse_values(values, whole=knob.whole)
    except SweepError as exc:
        raise SweepError(f"{option}: {exc}") from None
    return Vary(path, knob, parsed)


def parse_values(text: str, *, whole: bool) -> tuple[Value, ...]:
    """``2..6`` (step 1), ``2..10..2`` (a step), ``1,2,4`` (a list) or one value; each above 0, whole when asked."""
    if ".." in text:
        parts = text.split("..")
        if len(parts) not in (2, 3):
            raise SweepError(f"{text!r} is not START..STOP or START..STOP..STEP")
        start, stop = _number(parts[0]), _number(parts[1])
        step = _number(parts[2]) if len(parts) == 3 else 1.0
        if step <= 0:
            raise SweepError(f"the step of {text!r} is {_shown(step)}: it must be above 0")
        if stop < start:
            raise SweepError(f"{text!r} runs down: START comes first, and is at most STOP")
        count = math.floor((stop - start) / step + 1e-9) + 1
        numbers = [round(start + i * step, 9) for i in range(count)]
    else:
        numbers = [_number(p) for p in text.split(",")]
    for number in numbers:
        if number <= 0:
            raise SweepError(f"{_shown(number)} is not above 0")
        if whole and not float(number).is_integer():
            raise SweepError(f"{_shown(number)} is not a whole number, which this setting is")
    values: Iterable[Value] = (int(n) for n in numbers) if whole else numbers
    return tuple(dict.fromkeys(values))


def grid(varies: Sequence[Vary]) -> list[Settings]:
    """Every combination of the options' values (the last option's values change fastest)."""
    if len({v.path for v in varies}) < len(varies):
        repeated = next(v.path for i, v in enumerate(varies) if v.path in {w.path for w in varies[:i]})
        raise SweepError(f"--vary {repeated}: given twice; give its values once, e.g. {repeated}=1,2,4")
    combinations = itertools.product(*(v.values for v in varies))
    return [dict(zip((v.path for v in varies), values, strict=True)) for values in combinations]


def apply(profile: Profile, settings: Mapping[str, Value]) -> Profile:
    """The profile with a scenario's settings; a rate replaces the profile's arrivals (batches too)."""
    for path, value in settings.items():
        parts = path.split(".")
        if parts[0] == "stations":
            slots = MappingProxyType({**profile.stations, parts[1]: int(value)})
            profile = dataclasses.replace(profile, stations=slots)
        elif path == Knob.OPERATORS.value:
            profile = dataclasses.replace(profile, operators=int(value))
        elif path == Knob.ARRIVAL_RATE.value:
            profile = dataclasses.replace(profile, rate_per_hour=float(value), batch_size=None, batch_every_s=None)
        elif path == Knob.LOT_SIZE.value:
            profile = dataclasses.replace(profile, lot_size=int(value))
        elif parts[0] == "instruments":
            profile = _with_instruments(profile, parts[1], parts[2], int(value))
        else:
            raise SweepError(f"no setting {path!r}")
    return profile


def _with_instruments(profile: Profile, station: str, name: str, count: int) -> Profile:
    """The profile with ``count`` of the instrument ``name`` at ``station``."""
    held = profile.instruments.get(station, ())
    if not any(i.name == name for i in held):
        raise SweepError(f"no instrument {name!r} at station {station!r}")
    counted = tuple(dataclasses.replace(i, count=count) if i.name == name else i for i in held)
    return dataclasses.replace(profile, instruments={**profile.instruments, station: counted})


def run_one(line: Line, settings: Settings, seed: int) -> Figures:
    """One replication of one scenario (a task for a worker process): the run's figures."""
    flow, profile = _built(line.recipe, line.profile, line.recipe_root)
    return simulate(flow, apply(profile, settings), line.units, seed, line.warmup_s).figures


def run_scenarios(
    line: Line, scenarios: Sequence[Settings], seeds: Sequence[int], executor: Executor
) -> list[Scenario]:
    """Every scenario under every seed (the same seeds for each: common random numbers), on ``executor``."""
    tasks: list[list[Future[Figures]]] = [
        [executor.submit(run_one, line, settings, seed) for seed in seeds] for settings in scenarios
    ]
    scenarios_run = []
    for settings, row in zip(scenarios, tasks, strict=True):
        runs = [task.result() for task in row]
        scenarios_run.append(Scenario(settings, runs, summarize(runs)))
    return scenarios_run


def resources(settings: Mapping[str, Value]) -> Value:
    """The sum of a scenario's resource counts (slots, operators, instruments); rates and lot sizes are not."""
    return sum(value for path, value in settings.items() if _pattern_of(path).counts_resources)


def meets(scenario: Scenario, target_uph: float) -> bool:
    """The scenario ships ``target_uph`` with 95% confidence: the low end of its UPH interval reaches it."""
    low = scenario.figures["uph"]["low"]
    return low is not None and low >= target_uph


def choose(scenarios: Sequence[Scenario], target_uph: float) -> int | None:
    """The index of the scenario with the fewest resources that meets the target (the first such on a tie)."""
    meeting = [i for i, s in enumerate(scenarios) if meets(s, target_uph)]
    return min(meeting, key=lambda i: (resources(scenarios[i].settings), i), default=None)


def best(scenarios: Sequence[Scenario]) -> int:
    """The index of the scenario with the highest mean UPH (the first such on a tie)."""
    return max(range(len(scenarios)), key=lambda i: (scenarios[i].figures["uph"]["mean"], -i))


def sweep_json(scenarios: Sequence[Scenario], seeds: Sequence[int], target_uph: float | None) -> dict[str, Any]:
    """The object ``--json`` prints for a sweep."""
    return {
        "replications": len(seeds),
        "seeds": list(seeds),
        "scenarios": [
            {"settings": s.settings, "figures": s.figures, "warnings": s.runs[0]["warnings"]} for s in scenarios
        ],
        "target_uph": target_uph,
        "chosen": choose(scenarios, target_uph) if target_uph is not None else None,
    }


@lru_cache(maxsize=4)  # a worker runs many tasks of one line: it reads the files once
def _built(recipe: Path, profile: Path | None, recipe_root: Path | None) -> tuple[Flow, Profile]:
    from engine.recipe.check import check_recipe
    from engine.registry import Registry

    registry = Registry.discover()
    try:
        flow, problems = check_recipe(recipe, registry, recipe_root=recipe_root)
        if flow is None or any(d.severity == "error" for d in problems):
            raise RecipeError([d for d in problems if d.severity == "error"])
        return flow, load_profile(profile, flow, registry)
    except (RecipeError, OSError) as exc:  # its diagnostics do not pickle back from a worker: their text does
        raise LineNotBuilt(f"where a task ran, the line could not be built again from {recipe}: {exc}") from None


def _knob(path: str, known: list[str], option: str) -> Knob:
    if path.startswith("instruments.") and not any(k.startswith("instruments.") for k in known):
        raise SweepError(
            f"{option}: the profile declares no instruments to count (a station's instruments: in the profile); "
            f"the settings: {', '.join(known)}"
        )
    if path not in known:
        raise SweepError(f"{option}: no setting {path!r}{did_you_mean(path, known)}; the settings: {', '.join(known)}")
    return _pattern_of(path)


def _pattern_of(path: str) -> Knob:
    parts = path.split(".")
    if parts[0] == "stations" and len(parts) == 3 and parts[2] == "slots":
        return Knob.STATION_SLOTS
    if parts[0] == "instruments" and len(parts) == 3:
        return Knob.INSTRUMENT_COUNT
    try:
        return Knob(path)
    except ValueError:
        raise SweepError(f"no setting {path!r}") from None


def _number(text: str) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise SweepError(f"{text.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise SweepError(f"{text.strip()!r} is not a finite number")
    return number


def _shown(number: float) -> str:
    return f"{number:g}"
