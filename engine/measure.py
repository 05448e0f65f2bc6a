"""The engine, not the step, decides whether a measured value passes: limits, marginal band,
equality, regular expression."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from engine.context import MeasurementRecord
from engine.flow import Measurement, Stage
from engine.outcome import Verdict

_NO_TAGS: Mapping[str, Any] = {}


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


class Judge:
    """Judges the measurements of one stage against its ``measurements:`` specs."""

    def __init__(self, stage: Stage) -> None:
        self.specs = {m.name: m for m in stage.measurements}
        self._expected = frozenset(self.specs)

    def __call__(self, name: str, value: Any, units: str | None, tags: Mapping[str, Any]) -> MeasurementRecord:
        spec = self.specs.get(name)
        limits = spec.limits if spec is not None else None
        return MeasurementRecord(
            name,
            value,
            verdict(spec, value),
            units if units is not None else (spec.units if spec is not None else None),
            limits.low if limits is not None else None,
            limits.high if limits is not None else None,
            tags or _NO_TAGS,
        )

    def missing(self, records: list[MeasurementRecord]) -> list[str]:
        """Measurements the stage expects that the step never recorded."""
        if not self._expected:
            return []
        left = self._expected.difference(r.name for r in records)
        return [name for name in self.specs if name in left]
