"""Which of a line profile's time distributions fits the times a stage's attempts took.

The rule, in order:

1. **fixed** when the times hardly vary: their standard deviation is at most ``FIXED_SPREAD`` (1%) of
   their mean (or the mean is 0), the mean its seconds.
2. Otherwise each of the others is fitted: **exponential** with the records' mean and **lognormal**
   with their mean and standard deviation (by moments, so that the profile's mean is the records'
   mean, which a station's capacity and the line's throughput follow); **triangular** by maximum
   likelihood on the sample (``scipy.stats.triang.fit``; its min kept at 0 or above), since a
   triangle's ends drawn from the least and greatest time seen would sit inside the true ones.
3. The one whose distribution function lies nearest the sample's (the Kolmogorov-Smirnov statistic,
   the greatest distance between the two) is chosen; on a tie, the one listed first in
   ``CANDIDATES`` (fewer parameters first).

The moments and the extremes are of every attempt (summed by the database); the sample that the
candidates are compared on is a bounded one, evenly spread over the attempts. Pure functions of
numbers: nothing here reads a store or writes a file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

FIXED_SPREAD = 0.01
"""A standard deviation at most this fraction of the mean reads as a fixed time."""


class Kind(StrEnum):
    """A line profile's time distributions, as its ``time:`` mapping names them."""

    FIXED = "fixed"
    EXPONENTIAL = "exponential"
    LOGNORMAL = "lognormal"
    TRIANGULAR = "triangular"


CANDIDATES = (Kind.EXPONENTIAL, Kind.LOGNORMAL, Kind.TRIANGULAR)
"""The distributions compared when the times vary, in the order a tie is broken."""


@dataclass(frozen=True)
class Moments:
    """What the database sums of a stage's times: how many, their mean, standard deviation and extremes."""

    count: int
    mean: float
    sd: float
    least: float
    most: float


@dataclass(frozen=True)
class Fit:
    """A fitted time distribution: its kind, its parameters as the profile writes them, and how well it fits.

    ``a``, ``b``, ``c``: fixed's seconds; exponential's mean; lognormal's mean and sd; triangular's min,
    mode and max. ``ks`` is the Kolmogorov-Smirnov statistic against the sample (0 for fixed).
    """

    kind: Kind
    a: float
    b: float = 0.0
    c: float = 0.0
    ks: float = 0.0

    def as_profile(self, digits: int = 4) -> dict[str, object]:
        """The profile's ``time:`` mapping, each figure to ``digits`` significant digits."""
        a, b, c = (_significant(x, digits) for x in (self.a, self.b, self.c))
        if self.kind is Kind.FIXED:
            return {"fixed": a}
        if self.kind is Kind.EXPONENTIAL:
            return {"exponential": a}
        if self.kind is Kind.LOGNORMAL:
            return {"lognormal": {"mean": a, "sd": b}}
        return {"triangular": [a, b, c]}


def _significant(x: float, digits: int) -> float:
    """``x`` to ``digits`` significant digits (monotone: a triangle stays in order)."""
    return float(f"{x:.{digits}g}")


def fit_times(moments: Moments, sample: Sequence[float]) -> Fit:
    """The distribution that fits a stage's times best, by the rule above."""
    if moments.mean <= 0 or moments.sd <= FIXED_SPREAD * moments.mean:
        return Fit(Kind.FIXED, max(moments.mean, 0.0))
    fits = [_candidate(kind, moments, sample) for kind in CANDIDATES]
    return min(fits, key=lambda fit: (fit.ks, CANDIDATES.index(fit.kind)))


def _candidate(kind: Kind, m: Moments, sample: Sequence[float]) -> Fit:
    """One candidate fitted by its moments, with its KS statistic against the sample."""
    if kind is Kind.EXPONENTIAL:
        fit = Fit(kind, m.mean)
    elif kind is Kind.LOGNORMAL:
        fit = Fit(kind, m.mean, m.sd)
    else:
        triangle = _triangle(sample)
        if triangle is None:
            return Fit(kind, m.least, m.mean, m.most, ks=1.0)
        fit = triangle
    return Fit(fit.kind, fit.a, fit.b, fit.c, ks_statistic(sample, cdf(fit)))


def _triangle(sample: Sequence[float]) -> Fit | None:
    """The triangle most likely to have given the sample (None when it cannot be fitted)."""
    if len(sample) < 3:
        return None
    shape, loc, scale = stats.triang.fit(np.asarray(sample, dtype=float))
    low, mode, high = loc, loc + shape * scale, loc + scale
    if not all(math.isfinite(x) for x in (low, mode, high)) or not high > max(low, 0.0):
        return None
    low = max(low, 0.0)
    return Fit(Kind.TRIANGULAR, low, min(max(mode, low), high), high)


def cdf(fit: Fit) -> Callable[[np.ndarray], np.ndarray]:
    """The fitted distribution's function (the chance of a time at most x), as scipy.stats gives it."""
    if fit.kind is Kind.EXPONENTIAL:
        return stats.expon(scale=fit.a).cdf  # type: ignore[no-any-return]
    if fit.kind is Kind.LOGNORMAL:
        sigma2 = math.log1p((fit.b / fit.a) ** 2)
        return stats.lognorm(s=math.sqrt(sigma2), scale=math.exp(math.log(fit.a) - sigma2 / 2)).cdf  # type: ignore[no-any-return]
    if fit.kind is Kind.TRIANGULAR:
        width = fit.c - fit.a
        return stats.triang(c=(fit.b - fit.a) / width, loc=fit.a, scale=width).cdf  # type: ignore[no-any-return]
    return lambda x: (np.asarray(x) >= fit.a).astype(float)


def ks_statistic(sample: Sequence[float], function: Callable[[np.ndarray], np.ndarray]) -> float:
    """The greatest distance between the sample's distribution function and ``function`` (1.0 for no sample)."""
    if not sample:
        return 1.0
    return float(stats.kstest(np.asarray(sample, dtype=float), function).statistic)
