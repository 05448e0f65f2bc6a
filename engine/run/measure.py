"""The engine, not the step, decides whether a measured value passes: limits, marginal band,
equality, regular expression."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache, partial
from typing import Any

from engine.context import MeasurementRecord
from engine.flow import Measurement, Stage
from engine.outcome import Verdict

_NO_TAGS: Mapping[str, Any] = {}
_made = tuple.__new__


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def verdict(spec: Measurement | None, value: Any) -> Verdict:
    """PASS, MARGINAL or FAIL of ``value`` against ``spec`` (no spec: recorded, and passes)."""
    if spec is None:
        return Verdict.PASS
    if spec.equals is not None and value != spec.equals:
        return Verdict.FAIL
    if spec.matches is not None and _pattern(spec.matches).fullmatch(str(value)) is None:
        return Verdict.FAIL
    if spec.limits is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Verdict.FAIL
        if not spec.limits.contains(value):
            return Verdict.FAIL
        if spec.marginal is not None and not spec.marginal.contains(value):
            return Verdict.MARGINAL
    return Verdict.PASS


def _limits_check(spec: Measurement) -> Callable[[Any], Verdict]:
    """``verdict`` for a spec of limits only (the common case), with the bounds bound once."""
    assert spec.limits is not None
    low, high = spec.limits.low, spec.limits.high
    m_low, m_high = (spec.marginal.low, spec.marginal.high) if spec.marginal is not None else (None, None)

    def check(value: Any) -> Verdict:
        if value.__class__ is bool or not isinstance(value, int | float):
            return Verdict.FAIL
        if (low is not None and value < low) or (high is not None and value > high):
            return Verdict.FAIL
        if (m_low is not None and value < m_low) or (m_high is not None and value > m_high):
            return Verdict.MARGINAL
        return Verdict.PASS

    return check


class Judge:
    """Judges the measurements of one stage against its ``measurements:`` specs."""

    def __init__(self, stage: Stage) -> None:
        self.specs = {m.name: m for m in stage.measurements}
        self.expected = frozenset(self.specs)
        """Names the stage measures: the step must record each of them."""
        self._checks: dict[str, tuple[Callable[[Any], Verdict], str | None, float | None, float | None]] = {}
        for name, spec in self.specs.items():
            simple = spec.limits is not None and spec.equals is None and spec.matches is None
            check = _limits_check(spec) if simple else partial(verdict, spec)
            low = spec.limits.low if spec.limits is not None else None
            high = spec.limits.high if spec.limits is not None else None
            self._checks[name] = (check, spec.units, low, high)

    def __call__(self, name: str, value: Any, units: str | None, tags: Mapping[str, Any]) -> MeasurementRecord:
        found = self._checks.get(name)
        if found is None:
            return MeasurementRecord(name, value, Verdict.PASS, units, None, None, tags or _NO_TAGS)
        check, spec_units, low, high = found
        # Made as a tuple of all its fields in order (one is made per value: its class's __new__ costs more).
        record = (name, value, check(value), units if units is not None else spec_units, low, high, tags or _NO_TAGS)
        return _made(MeasurementRecord, record)
