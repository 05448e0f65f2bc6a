"""The line's figures as one JSON-ready document: what ``floorflow report`` prints and its HTML draws.

The database does the counting (``engine.store.figures``); this module turns its sums into the
document laid out as ``floorflow.report/1``: yields per stage, the failures' Pareto, units per hour
per station, quarantines and lot holds with their decisions, unreleased recipes, and each
measurement's mean, spread, Cp, Cpk, histogram and run chart.

Yields: an attempt aborted, skipped or decided not done counts for nothing; a unit's first counted
attempt at a stage decides its first pass, and any counted PASS there its final pass. Units of held
lots are counted apart (``held``), neither passed nor failed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from engine.flow import Flow, Limits
from engine.outcome import UnitStatus
from engine.store.figures import Tallies, Window
from engine.store.spreads import BINS, Spread

SCHEMA = "floorflow.report/1"
ERROR_WORDS = 4
"""A failure with no failed measurement is filed under this many first words of its error."""

__all__ = ["SCHEMA", "Window", "line_figures"]


class FigureStore(Protocol):
    def figures(self, window: Window) -> Tallies: ...


def line_figures(store: FigureStore, window: Window, flow: Flow | None = None) -> dict[str, Any]:
    """The figures of the window as the ``floorflow.report/1`` document; ``flow`` gives the marginal limits."""
    t = store.figures(window)
    return {
        "schema": SCHEMA,
        "window": _window(window),
        "units": _units(t.units),
        "stages": [_stage(row) for row in t.stages],
        "pareto": {"by_stage": _by_stage(t.stages), "by_check": _by_check(t)},
        "throughput": [{"station": s, "hour": _time(hour * 3600.0), "units": n} for s, hour, n in t.throughput],
        "quarantines": [_quarantine(row) for row in t.quarantines],
        "lot_holds": _lot_holds(t),
        "unreleased_recipes": [
            {"recipe": recipe, "version": version, "hash": content_hash, "units": units}
            for recipe, version, content_hash, units in t.unreleased
        ],
        "measurements": [_measurement(s, _marginals(flow)) for s in t.spreads],
    }


def _time(epoch: float | None) -> str | None:
    """RFC 3339 in UTC."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _window(window: Window) -> dict[str, Any]:
    return {
        "since": _time(window.since),
        "until": _time(window.until),
        "lot": window.lot,
        "station": window.station,
        "recipe": window.recipe,
    }


_STANDINGS = {
    "shipped": UnitStatus.SHIPPED,
    "scrapped": UnitStatus.SCRAPPED,
    "in_route": UnitStatus.IN_ROUTE,
    "held": UnitStatus.HELD,
    "quarantined": UnitStatus.QUARANTINED,
    "aborted": UnitStatus.ABORTED,
    "refused": UnitStatus.REFUSED,
}


def _units(standing: Mapping[str, int]) -> dict[str, int]:
    counts = {key: int(standing.get(status, 0)) for key, status in _STANDINGS.items()}
    return {"total": sum(standing.values()), **counts}


def _stage(row: tuple[Any, ...]) -> dict[str, Any]:
    stage, station, units, first, passed, attempts, aborted, held, _ = row
    units, first, passed, attempts = int(units or 0), int(first or 0), int(passed or 0), int(attempts or 0)
    retests = attempts - units
    return {
        "stage": stage,
        "station": station,
        "units": units,
        "first_pass": first,
        "first_pass_yield": _ratio(first, units),
        "passed": passed,
        "final_yield": _ratio(passed, units),
        "attempts": attempts,
        "retests": retests,
        "retest_rate": _ratio(retests, attempts),
        "aborted": int(aborted or 0),
        "held": int(held or 0),
    }


def _by_stage(stages: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    failures = [(row[0], int(row[-1] or 0)) for row in stages]
    ranked = sorted((f for f in failures if f[1]), key=lambda f: -f[1])
    return [{"stage": stage, "failures": count} for stage, count in ranked]


def error_check(error: str | None) -> str:
    """What a failure with no failed measurement is filed under: ``(error)`` and its error's first words."""
    words = (error or "").split()
    return " ".join(["(error)", *words[:ERROR_WORDS]])


def _by_check(t: Tallies) -> list[dict[str, Any]]:
    counts: Counter[tuple[str, str]] = Counter()
    for stage, name, count in t.by_check:
        counts[(stage, name)] += count
    for stage, error, count in t.errors:
        counts[(stage, error_check(error))] += count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"stage": stage, "check": check, "failures": count} for (stage, check), count in ranked]


def _quarantine(row: tuple[Any, ...]) -> dict[str, Any]:
    serial, reason, at, action, by, decided = row
    decision = None if action is None else str(action).removeprefix("release-")
    return {"serial": serial, "reason": reason, "decision": decision, "by": by, "at": _time(at),
            "decided_at": _time(decided)}  # fmt: skip


def _lot_holds(t: Tallies) -> list[dict[str, Any]]:
    decisions: dict[str, list[dict[str, Any]]] = {}
    for lot, at, by, action, reason in t.lot_decisions:
        decisions.setdefault(lot, []).append({"at": _time(at), "by": by, "action": action, "reason": reason})
    return [
        {"lot": lot, "reason": reason, "at": _time(at), "decisions": decisions.get(lot, [])}
        for lot, reason, at in t.lot_holds
    ]


def _marginals(flow: Flow | None) -> dict[tuple[str, str], Limits]:
    if flow is None:
        return {}
    return {
        (stage.id, m.name): m.marginal
        for stage in flow.stages.values()
        for m in stage.measurements
        if m.marginal is not None
    }


def capability(s: Spread) -> dict[str, float | None]:
    """Mean, sample standard deviation, Cp and Cpk (from the one side when only one limit is set)."""
    mean = s.mean
    sd = math.sqrt(s.deviations / (s.count - 1)) if s.count > 1 else None
    cp = cpk = None
    if sd:
        sides = [x for x in (None if s.high is None else s.high - mean, None if s.low is None else mean - s.low)
                 if x is not None]  # fmt: skip
        cpk = min(sides) / (3 * sd) if sides else None
        cp = (s.high - s.low) / (6 * sd) if s.high is not None and s.low is not None else None
    return {"mean": mean, "sd": sd, "cp": cp, "cpk": cpk}


def _measurement(s: Spread, marginals: Mapping[tuple[str, str], Limits]) -> dict[str, Any]:
    marginal = marginals.get((s.stage, s.name))
    lo, hi = s.edges
    step = (hi - lo) / BINS
    return {
        "stage": s.stage,
        "name": s.name,
        "units": s.units,
        "low": s.low,
        "high": s.high,
        "marginal_low": None if marginal is None else marginal.low,
        "marginal_high": None if marginal is None else marginal.high,
        "count": s.count,
        **capability(s),
        "histogram": {"edges": [lo + i * step for i in range(BINS)] + [hi], "counts": list(s.bins)},
        "run": [
            {"at": _time(at), "value": value, "station": station, "socket": slot} for at, value, station, slot in s.run
        ],
    }
