"""A stage as the simulation runs it, and the seeded random streams its times and failures come from."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np

from engine.flow import Stage
from engine.sampling import rate_of
from engine.simulate.pools import Holding
from engine.simulate.profile import Profile, Timing
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
