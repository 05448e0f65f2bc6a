"""Replications: one configuration run under several seeds, each figure read as a mean and its 95% interval.

A single seed gives one draw of a random line; a planner comparing configurations needs to know how
far that draw could be from the line's own figure. ``replication_seeds(seed, n)`` gives the seeds
(``seed``, ``seed + 1``, …: the model spawns its streams from each through numpy's ``SeedSequence``,
so neighbouring seeds give independent streams, and the first replication is the single run of
``seed``). ``summarize`` reads the figures of the runs as intervals (``interval``: Student's t over
the replications) and names the station most often the bottleneck. Pure functions of the figures.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONFIDENCE = 0.95

Figures = dict[str, Any]


@dataclass(frozen=True)
class Interval:
    """A figure over the replications: its mean and the 95% confidence interval about it.

    ``low``, ``high`` and ``sd`` are None for a single replication, which says nothing of its spread.
    """

    mean: float
    low: float | None
    high: float | None
    sd: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean

    def as_json(self) -> dict[str, float | None]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "sd": self.sd}


def replication_seeds(seed: int, replications: int) -> list[int]:
    """The seeds of ``replications`` independent runs: ``seed``, ``seed + 1``, …; every scenario of a sweep uses
    the same ones (common random numbers: scenarios differ by their settings, not by their luck)."""
    return [seed + i for i in range(replications)]


def interval(values: Sequence[float]) -> tuple[float, float | None, float | None, float | None]:
    """(mean, low, high, sd): the mean and its 95% confidence interval, mean ± t(0.975, n-1) * sd / √n, with sd the
    sample standard deviation; low, high and sd are None for one value."""
    if not values:
        raise ValueError("an interval needs at least one value")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None, None
    from scipy.stats import t

    sd = statistics.stdev(values)
    half = float(t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1)) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half, sd


def summarize(runs: Sequence[Figures]) -> Figures:
    """The figures of several runs of one configuration, each as an interval (``Interval.as_json``), shaped as a
    single run's figures are: uph, yields, lead time p50 and p95, WIP mean, each station's and the operators'
    utilization, and the bottleneck as the station most often the busiest, with how many runs it was."""
    if not runs:
        raise ValueError("summarize at least one run")
    stations = dict.fromkeys(name for run in runs for name in run["stations"])

    def over(*path: str) -> dict[str, float | None]:
        return _interval_of([_at(run, path) for run in runs]).as_json()

    busiest = Counter(run["bottleneck"] for run in runs).most_common(1)[0]
    return {
        "uph": over("uph"),
        "first_pass_yield": over("first_pass_yield"),
        "rolled_throughput_yield": over("rolled_throughput_yield"),
        "lead_time": {"p50_s": over("lead_time", "p50_s"), "p95_s": over("lead_time", "p95_s")},
        "wip": {"mean": over("wip", "mean")},
        "stations": {name: {"utilization": over("stations", name, "utilization")} for name in stations},
        "operators": {"utilization": over("operators", "utilization")},
        "bottleneck": {"station": busiest[0], "runs": busiest[1], "of": len(runs)},
    }


def interval_of(summary: Figures) -> Interval:
    """A figure of ``summarize``'s back as an ``Interval``."""
    return Interval(summary["mean"], summary["low"], summary["high"], summary["sd"])


def _interval_of(values: Sequence[float]) -> Interval:
    return Interval(*interval(values))


def _at(figures: Figures, path: Sequence[str]) -> float:
    """A figure by its keys; a station a run never used (no visits) counts as idle."""
    value: Any = figures
    for key in path:
        if key not in value:
            return 0.0
        value = value[key]
    return float(value)
