"""A start-up period left out of the steady-state figures (``floorflow simulate --warmup SECONDS``).

A line starts empty: its first units meet no queues, and its stations stand idle until work reaches
them, so figures taken from the first moment describe the start-up as much as the line. With a
warm-up, the figures of a steady state (units per hour, utilization and waits at stations,
operators and instruments, the waits before stages, WIP, lead times) count only from its end: at
that moment the counters they come from start again, and the time they are divided by is what is
left of the run. Counts of units and the yields are of every unit (a start-up makes no unit better
or worse). A slot's busy time is counted exactly on each side of the warm-up's end; an operator's
or instrument's is counted when it is taken, so work taken before the end and done after it is
left out (the steady-state utilization of operators and instruments is low by at most that).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.simulate.line import LineModel


class WarmupTooLong(ValueError):
    """The run ended before its warm-up did: nothing is left to measure."""


@dataclass
class Steady:
    """Where the steady-state figures start: the warm-up's end, and what had been counted by then."""

    since: float = 0.0
    shipped: int = 0
    wip_area: float = 0.0

    def span(self, end: float) -> float:
        """The seconds the steady-state figures are over."""
        return end - self.since


def leave_out(model: LineModel, seconds: float) -> Steady:
    """The first ``seconds`` of the model's run left out of its steady-state figures (set before it runs)."""
    steady = Steady(since=seconds)
    if seconds > 0:
        model.env.process(_warm_up(model, steady))
    return steady


def _warm_up(model: LineModel, steady: Steady) -> Generator[Any, Any, None]:
    yield model.env.timeout(steady.since)
    steady.shipped = model.tally.shipped
    steady.wip_area = model.wip.area(steady.since)
    now = model.env.now
    for station in model.stations.values():  # its slots in use: counted up to now, then from now on
        station.busy = -(station.size - station.free) * now
        station.visits, station.waited = 0, 0.0
    for pool in (model.operators, *model.instruments.values()):
        pool.busy, pool.visits, pool.waited = 0.0, 0, 0.0
    model.tally.lead.clear()
    for stage in model.models.values():
        stage.waits.clear()


def check_ran_past(steady: Steady, end: float) -> None:
    if steady.since and end <= steady.since:
        raise WarmupTooLong(
            f"the warm-up ({steady.since:,g} s) is not shorter than the simulated run ({end:,.0f} s): "
            "nothing is left to measure; simulate more units or warm up for less"
        )


def warmup_note(figures: dict[str, Any]) -> str:
    """What a table's title adds when a warm-up was left out of the figures' steady-state part."""
    if not figures["warmup_s"]:
        return ""
    return f" · the first {figures['warmup_s'] / 3600:,.2f} h left out of UPH, utilization, waits, WIP, lead times"
