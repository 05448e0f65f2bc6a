"""A stage as the simulation runs it, the seeded random streams its times and failures come from, and the
shared instruments it holds."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from engine.flow import Stage
from engine.sampling import rate_of
from engine.simulate.pools import Holding, Instruments, Operators
from engine.simulate.profile import Instrument, Profile, Timing
from engine.simulate.stats import Histogram

BLOCK = 4096
"""Random draws made at a time, per stream."""


def stream(rng: np.random.Generator, timing: Timing | None = None) -> Callable[[], float]:
    """Numbers from one generator of their own (times of ``timing``, else uniform in [0, 1)), one per call.

    Each stream has its own generator, so a seed gives each stream the same numbers whatever order
    the units ask in; they are drawn ``BLOCK`` at a time.
    """
    if timing is not None and timing.kind == "fixed":
        return itertools.repeat(timing.a).__next__

    def block(_: object) -> list[float]:
        drawn: list[float] = timing.draw(rng, BLOCK) if timing is not None else rng.random(BLOCK).tolist()
        return drawn

    return itertools.chain.from_iterable(map(block, itertools.repeat(None))).__next__


class StageModel:
    """A stage as the simulation runs it: its times, its chance to fail, what its attempts came to, its queue."""

    __slots__ = (
        "attempts",
        "chance",
        "draw",
        "final_passed",
        "first",
        "first_passed",
        "holding",
        "manual",
        "mean_s",
        "rate",
        "stage",
        "time",
        "waits",
    )

    def __init__(self, stage: Stage, profile: Profile, seeds: Iterator[np.random.SeedSequence]) -> None:
        self.stage = stage
        self.time = stream(np.random.default_rng(next(seeds)), profile.time_of(stage))
        """Seconds of the next attempt."""
        self.chance = profile.fail_of(stage)
        self.draw = stream(np.random.default_rng(next(seeds)))
        """The next attempt fails when this is below ``chance``."""
        self.manual = stage.step in profile.manual_steps
        self.holding: Holding | None = None
        """What the stage holds besides its slot (instruments; set by the line), when anything."""
        self.rate = rate_of(stage.sampling) if stage.sampling is not None else 1.0
        tries = sum(self.chance**i for i in range(stage.retry_max + 1))
        self.mean_s = profile.time_of(stage).mean * tries * self.rate
        """Mean seconds a unit spends in the stage: its retries, and its sampling rate."""
        self.first = 0
        """Times a unit came to the stage: its first attempts (after a rework, the attempts count from 1 again)."""
        self.first_passed = 0
        self.final_passed = 0
        """Times the stage passed in the end, retries included."""
        self.attempts = 0
        self.waits = Histogram()
        """Seconds each unit waited for a slot at the station before this stage (the first of its visit)."""


def attach_instruments(
    models: Iterable[StageModel], declared: Mapping[str, tuple[Instrument, ...]], operators: Operators
) -> dict[str, Instruments]:
    """The profile's instruments by "station/name"; each stage that holds any gets its ``holding``.

    Stages that hold the same instruments share one ``Holding``: a visit takes each once, for all of them.
    """
    pools = {p.name: p for p in (Instruments(station, i) for station, kinds in declared.items() for i in kinds)}
    holdings: dict[tuple[Operators, ...], Holding] = {}
    for model in models:
        held: tuple[Operators, ...] = tuple(p for p in pools.values() if model.stage.id in p.stages)
        if held:
            held = (*held, operators) if model.manual else held  # a manual stage holds an operator with them
            model.holding = holdings.setdefault(held, Holding(held))
    return pools
