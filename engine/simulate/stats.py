"""Statistics kept as the simulation streams by: fixed memory however many units pass."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class Histogram:
    """Positive values in logarithmic bins: percentiles to within half a bin (0.6%), in fixed memory.

    Zeros (a wait for a free slot) are counted apart, so a percentile among them is exactly 0.
    """

    PER_DECADE = 200
    LOW = 1e-3
    """Values below this (seconds) count in the first bin."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.total = 0.0
        self.largest = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        if value <= 0:
            self.zeros += 1
            return
        self.total += value
        if value > self.largest:
            self.largest = value
        index = int(math.log10(value / self.LOW) * self.PER_DECADE) if value > self.LOW else 0
        self.counts[index] = self.counts.get(index, 0) + 1

    def clear(self) -> None:
        """Forget every value (in place: whoever holds the histogram keeps adding to it)."""
        self.counts.clear()
        self.zeros = self.count = 0
        self.total = self.largest = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` of the values lie (the middle of its bin)."""
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = self.zeros
        if seen and seen >= rank:
            return 0.0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(self._middle(index), self.largest)
        return self.largest

    def bins(self) -> list[tuple[float, float, int]]:
        """(low, high, count) of every bin that holds values, in order."""
        return [(self._edge(i), self._edge(i + 1), self.counts[i]) for i in sorted(self.counts)]

    def _edge(self, index: int) -> float:
        return float(self.LOW * 10 ** (index / self.PER_DECADE))

    def _middle(self, index: int) -> float:
        return float(self.LOW * 10 ** ((index + 0.5) / self.PER_DECADE))


class Level:
    """A level that changes at moments (units in the line, busy operators): its time average, and samples.

    At most ``keep`` samples are kept, evenly spaced: when they fill up, every other one is dropped
    and the spacing doubles.
    """

    def __init__(self, keep: int, spacing: float) -> None:
        self.keep = max(2, keep)
        self.spacing = spacing
        self.samples: list[tuple[float, int]] = []
        self.level = 0
        self.peak = 0
        self._since = 0.0
        self._area = 0.0
        self._next_sample = 0.0

    def change(self, now: float, by: int) -> None:
        while now >= self._next_sample:
            self._sample(self._next_sample)
        self._area += self.level * (now - self._since)
        self._since = now
        self.level += by
        if self.level > self.peak:
            self.peak = self.level

    def area(self, until: float) -> float:
        """The level's integral over time from 0 to ``until`` (not before the last change)."""
        return self._area + self.level * (until - self._since)

    def mean(self, until: float, since: float = 0.0, before: float = 0.0) -> float:
        """The time average from ``since`` (whose area was ``before``) to ``until``."""
        return (self.area(until) - before) / (until - since) if until > since else 0.0

    def _sample(self, at: float) -> None:
        self.samples.append((at, self.level))
        self._next_sample = at + self.spacing
        if len(self.samples) >= self.keep:
            self.samples = self.samples[::2]
            self.spacing *= 2
            self._next_sample = self.samples[-1][0] + self.spacing


@dataclass
class Tally:
    """What the units came to, streamed: counts, lead times, recipe problems, lot holds."""

    started: int = 0
    shipped: int = 0
    scrapped: int = 0
    held: int = 0
    refused: int = 0
    first_pass: int = 0
    """Shipped units none of whose attempts failed."""
    finished: int = 0
    lead: Histogram = field(default_factory=Histogram)
    problems: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(stage, rule, reason) of every refusal that is not a lot hold: a recipe problem, and how often."""
    holds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first_pass_yield(self) -> float:
        """Of the units that came to an end of their own (shipped or scrapped), the share shipped first time.

        Units stopped by a guard are counted apart, not as failures: a held unit's lot was stopped
        (it is not judged bad), and a refused unit met a recipe problem (the line's fault, not the
        unit's), as an aborted unit does not count against a report's first-pass yield.
        """
        judged = self.shipped + self.scrapped
        return self.first_pass / judged if judged else 0.0
