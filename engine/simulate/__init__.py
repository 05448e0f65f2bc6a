"""``floorflow simulate``: a recipe's compiled Flow run on a simulated line (SimPy), with a line profile.

``simulate(flow, profile, units, seed)`` runs the model (``engine.simulate.line``) and returns a
``Result``: the figures a line planner reads (throughput, yields, utilization and queues, WIP, lead
times, lot holds, recipe problems), as one JSON object and as the tallies plots are drawn from. The
model walks the recipe's own route and guards (``route``, from ``engine.run``), runs each stage from
seeded random streams (``stages``), queues units for slots, operators and instruments (``pools``), takes its
figures from a line profile (``profile``), keeps statistics in fixed memory (``stats``) and draws
``--plot``'s PNGs (``plots``). This room imports the core, ``engine.recipe`` and ``engine.run``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.flow import Flow
from engine.simulate.line import NO_STATION, LineModel
from engine.simulate.pools import Operators, Pool
from engine.simulate.profile import Profile, ProfileError, load_profile
from engine.simulate.stats import Histogram
from engine.simulate.warmup import Steady, WarmupTooLong, check_ran_past, leave_out

__all__ = ["ProfileError", "Result", "WarmupTooLong", "load_profile", "simulate"]

PERCENTILES = (50, 90, 95, 99)


@dataclass
class Result:
    figures: dict[str, Any]
    """The JSON object ``--json`` prints."""
    lead: Histogram
    wip: list[tuple[float, int]]
    """(seconds, units in the line), evenly spaced."""


def simulate(flow: Flow, profile: Profile, units: int, seed: int = 0, warmup_s: float = 0.0) -> Result:
    """Run ``units`` units of ``flow`` through the line ``profile`` describes; the same seed, the same figures.

    ``warmup_s``: the first seconds left out of the steady-state figures (``engine.simulate.warmup``);
    ``WarmupTooLong`` when the run ends before them."""
    if units < 1:
        raise ValueError("simulate at least one unit")
    model = LineModel(flow, profile, units, seed)
    steady = leave_out(model, warmup_s)
    model.run()
    check_ran_past(steady, model.end)
    return Result(_figures(model, seed, steady), model.tally.lead, list(model.wip.samples))


def _figures(model: LineModel, seed: int, steady: Steady) -> dict[str, Any]:
    tally, end = model.tally, model.end
    hours = end / 3600
    span = steady.span(end)
    stations = {
        pool.name: _pool_figures(pool, span)
        for pool in model.stations.values()
        if pool.name != NO_STATION or pool.visits
    }
    busiest = max(stations, key=lambda name: stations[name]["utilization"], default=None)
    capacity = model.capacity_per_hour()
    for name, per_hour in capacity.items():
        stations[name]["capacity_per_hour"] = _rounded_rate(per_hour)
    arrivals = 3600 / model.mean_gap
    slowest = min(capacity, key=lambda name: capacity[name], default=None)
    line_capacity = capacity[slowest] if slowest is not None else math.inf
    instruments = _instrument_figures(model, span)
    limit = _limiting_instrument(model, slowest, line_capacity)
    stages = _stage_figures(model)
    rty = math.prod(s["first_pass_yield"] for s in stages.values())
    return {
        "recipe": model.flow.recipe,
        "version": model.flow.version,
        "profile": model.profile.name,
        "seed": seed,
        "units": tally.started,
        "shipped": tally.shipped,
        "scrapped": tally.scrapped,
        "held": tally.held,
        "refused": tally.refused,
        "hours": round(hours, 4),
        "warmup_s": steady.since,
        "steady_hours": round(span / 3600, 4),
        "uph": round((tally.shipped - steady.shipped) * 3600 / span, 3) if span > 0 else 0.0,
        "first_pass_yield": round(tally.first_pass_yield, 6),
        "rolled_throughput_yield": round(rty, 6),
        "bottleneck": busiest,
        "arrival_rate_per_hour": round(arrivals, 3),
        "capacity_per_hour": _rounded_rate(line_capacity),
        "capacity_station": slowest,
        "warnings": overload_warnings(arrivals, line_capacity, slowest, limit),
        "stations": stations,
        "operators": _pool_figures(model.operators, span),
        "instruments": instruments,
        "stages": {k: {**v, "first_pass_yield": round(v["first_pass_yield"], 6)} for k, v in stages.items()},
        "wip": {"mean": round(model.wip.mean(end, steady.since, steady.wip_area), 3), "peak": model.wip.peak},
        "wip_over_time": [[round(t, 3), level] for t, level in model.wip.samples],
        "lead_time": _lead_figures(tally.lead),
        "holds": tally.holds,
        "recipe_problems": [
            {"stage": stage, "rule": rule, "reason": reason, "units": count}
            for (stage, rule, reason), count in sorted(tally.problems.items())
        ],
        "unit_states": model.table.states,
    }


def overload_warnings(
    arrivals: float, capacity: float, station: str | None, instrument: str | None = None
) -> list[str]:
    """What the figures cannot be read as: a steady state, when units arrive faster than the line can take them.

    ``instrument``: the station's shared instrument that limits it, when one does (not its slots).
    """
    if station is None or arrivals <= capacity:
        return []
    shared = f", its shared instrument '{instrument}'" if instrument is not None else ""
    return [
        f"arrivals ({_per_hour(arrivals)} units/h) exceed the line's capacity ({_per_hour(capacity)} units/h, "
        f"bottleneck: station '{station}'{shared}): queues grow without bound for as long as the simulation runs; "
        "the queue figures describe this run's length, not a steady state"
    ]


def _instrument_figures(model: LineModel, end: float) -> dict[str, dict[str, Any]]:
    """Each shared instrument, by "station/name": how many, who holds one, how busy, the wait for one."""
    capacity = model.instrument_capacity_per_hour()
    return {
        name: {
            "count": pool.size,
            "stages": list(pool.stages),
            "capacity_per_hour": _rounded_rate(capacity[name]),
            "utilization": round(pool.busy / (pool.size * end), 6) if end > 0 else 0.0,
            "mean_wait_s": round(pool.waited / pool.visits, 3) if pool.visits else 0.0,
            "visits": pool.visits,
        }
        for name, pool in model.instruments.items()
    }


def _limiting_instrument(model: LineModel, station: str | None, capacity: float) -> str | None:
    """The instrument that sets the slowest station's capacity (the lesser of its slots' and its instruments')."""
    for name, per_hour in model.instrument_capacity_per_hour().items():
        pool = model.instruments[name]
        if pool.station == station and per_hour == capacity:
            return pool.instrument.name
    return None


def _per_hour(rate: float) -> str:
    """A rate as the warnings write it: one decimal, none when it is whole."""
    return f"{rate:,.1f}".removesuffix(".0")


def _rounded_rate(rate: float) -> float | None:
    """A rate for the JSON object: None for a station that takes units without limit."""
    return round(rate, 3) if math.isfinite(rate) else None


def _stage_figures(model: LineModel) -> dict[str, dict[str, Any]]:
    """Each stage a unit reached: first-attempt (unrounded) and final yields, attempts, the wait before it."""
    first = {stage_id: m.first for stage_id, m in model.models.items()}
    first_passed = {stage_id: m.first_passed for stage_id, m in model.models.items()}
    final_passed = {stage_id: m.final_passed for stage_id, m in model.models.items()}
    attempts = {stage_id: m.attempts for stage_id, m in model.models.items()}
    for run in model.table.runs():  # stages a unit passed inside a run passed at their first attempt
        for j, stage in enumerate(run.stages):
            through = sum(run.reached[j + 1 :])
            first[stage.id] += through
            first_passed[stage.id] += through
            final_passed[stage.id] += through
            attempts[stage.id] += through
    return {
        stage_id: {
            "first_pass_yield": _share(first_passed[stage_id], first[stage_id]),
            "final_yield": round(_share(final_passed[stage_id], first[stage_id]), 6),
            "first_attempts": first[stage_id],
            "attempts": attempts[stage_id],
            **_queue_figures(model.models[stage_id].waits),
        }
        for stage_id in model.models
        if first[stage_id]
    }


def _queue_figures(waits: Histogram) -> dict[str, Any]:
    """The wait for a slot before a stage: how many units queued for it, the mean and the 95th percentile."""
    return {"queued": waits.count, "queue_mean_s": round(waits.mean, 3), "queue_p95_s": round(waits.quantile(0.95), 3)}


def _lead_figures(lead: Histogram) -> dict[str, float]:
    return {
        "mean_s": round(lead.mean, 3),
        **{f"p{p}_s": round(lead.quantile(p / 100), 3) for p in PERCENTILES},
        "max_s": round(lead.largest, 3),
    }


def _pool_figures(pool: Pool | Operators, end: float) -> dict[str, Any]:
    return {
        "slots": pool.size,
        "utilization": round(pool.busy / (pool.size * end), 6) if end > 0 else 0.0,
        "mean_queue_s": round(pool.waited / pool.visits, 3) if pool.visits else 0.0,
        "visits": pool.visits,
    }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
