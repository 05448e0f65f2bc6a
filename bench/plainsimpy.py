"""The phone line as a SimPy user writes it by hand: the peer ``bench/simulate.py`` runs floorflow against.

The same line written by hand the way a SimPy user would. Its stations, slots, stage order, times,
failure chances, retries, rework (``on_fail``, ``then``, ``max_visits``), sampling and recall
thresholds are read from the same Flow and Profile; its routing is plain Python.
One process per unit; one ``simpy.Resource`` per station, held for the unit's whole visit (``with
station.request() as req: yield req``) and one ``env.timeout`` for the time of the stages it runs
there; one ``random.Random(seed)`` for arrivals, times (``triangular``, ``lognormvariate``,
``expovariate``) and per-attempt failures. A unit skips a sampling station it is not sampled for (the
recipe's own rule, ``engine.sampling.is_sampled``, with the stage's rate worked out once as floorflow
does, on the same lot and serial names as floorflow's, so both models sample the same units); a
sampled unit's failure counts toward its lot's recall threshold, and a unit of a held lot is stopped
at the first stage that would ship it (the ready check, or the move to the last lifecycle state).
Arrivals come at floorflow's own mean gap (``LineModel(...).mean_gap``).

It has no operators: ``plain_can_model`` stops a benchmark whose profile would make a unit wait for
one (fewer operators than slots of stations with manual stages, or breaks).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any

import simpy

from engine.flow import SCRAP, Flow, Group, Sampling
from engine.sampling import rate_of, recall_threshold, sample_draw
from engine.simulate.profile import Profile, Timing


@dataclass(eq=False, slots=True)
class PlainStage:
    """One stage as the hand-written model keeps it; ``next``, ``on_fail`` and ``then`` link the route."""

    id: str
    station: str
    time: Callable[[], float]
    """Seconds one attempt takes: a fresh draw per call."""
    fail: float
    retry_max: int
    ships: bool
    """The ready check, or the move to the last lifecycle state: a held lot's units stop here."""
    sampling: Sampling | None = None
    rate: float = 1.0
    """The share of units a sampling stage takes."""
    recall: int | None = None
    max_visits: int | None = None
    next: PlainStage | None = None
    on_fail: PlainStage | None = None
    """The rework stage a final failure sends the unit to; None: scrapped."""
    then: PlainStage | None = None
    """For a rework stage: where the unit goes on when it passes."""


def timer(timing: Timing, rng: random.Random) -> Callable[[], float]:
    """A draw of ``timing`` from the standard library's generator."""
    if timing.kind == "exponential":
        return partial(rng.expovariate, 1 / timing.a)
    if timing.kind == "triangular" and timing.a != timing.c:
        return partial(rng.triangular, timing.a, timing.c, timing.b)  # random.triangular(low, high, mode)
    if timing.kind == "lognormal":
        sigma2 = math.log1p((timing.b / timing.a) ** 2)
        return partial(rng.lognormvariate, math.log(timing.a) - sigma2 / 2, math.sqrt(sigma2))
    seconds = timing.mean  # fixed, or a triangle of zero width
    return lambda: seconds


def plain_route(flow: Flow, profile: Profile, rng: random.Random) -> PlainStage:
    """The route's first stage, every stage linked to the next in written order, rework stages to theirs."""
    final = flow.lifecycle[-1] if flow.lifecycle else None
    stages: dict[str, PlainStage] = {}
    for stage in flow.stages.values():
        if stage.station is None:
            raise SystemExit(f"error: the plain model needs a station for every stage; '{stage.id}' has none")
        if stage.rework and stage.then is None:
            raise SystemExit(f"error: the plain model needs 'then' on rework stage '{stage.id}'")
        stages[stage.id] = PlainStage(
            id=stage.id,
            station=stage.station,
            time=timer(profile.time_of(stage), rng),
            fail=profile.fail_of(stage),
            retry_max=stage.retry_max,
            ships=stage.effects.ready_check or (final is not None and stage.effects.advances_to == final),
            sampling=stage.sampling,
            rate=rate_of(stage.sampling) if stage.sampling is not None else 1.0,
            recall=recall_threshold(stage.sampling) if stage.sampling is not None else None,
            max_visits=stage.max_visits,
        )
    order = flow.route_ids
    for before, after in pairwise(order):
        stages[before].next = stages[after]
    for stage in flow.stages.values():
        if stage.on_fail != SCRAP:
            stages[stage.id].on_fail = stages[stage.on_fail]
        if stage.then is not None:
            entry = flow.route[flow.block_of(stage.then)]  # back into a group: the whole group again
            stages[stage.id].then = stages[entry.members[0] if isinstance(entry, Group) else entry]
    return stages[order[0]]


class PlainLine:
    """The phone line as a SimPy user writes it: a process per unit, a Resource per station."""

    def __init__(self, flow: Flow, profile: Profile, units: int, seed: int, mean_gap: float) -> None:
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.units = units
        self.mean_gap = mean_gap
        self.lot_size = profile.lot_size
        self.first = plain_route(flow, profile, self.rng)
        slots = profile.slots(flow)
        self.stations = {name: simpy.Resource(self.env, capacity=size) for name, size in slots.items()}
        self.slots = slots
        self.busy = dict.fromkeys(slots, 0.0)
        self.held_lots: set[int] = set()
        self.lot_failures: dict[tuple[int, str], int] = {}
        self.shipped = self.scrapped = self.held = self.first_pass = 0
        self.lead_total = 0.0
        self.end = 0.0

    def run(self) -> dict[str, Any]:
        self.env.process(self.arrivals())
        self.env.run()
        return self.figures()

    def arrivals(self) -> Generator[simpy.Event, Any, None]:
        for n in range(self.units):
            self.env.process(self.unit(n))
            if n + 1 < self.units:
                yield self.env.timeout(self.rng.expovariate(1 / self.mean_gap))

    def sampled(self, stage: PlainStage, lot: int, n: int) -> bool:
        """The recipe's rule (``engine.sampling.is_sampled``), with the stage's rate worked out once."""
        return sample_draw(f"LOT{lot:05d}", f"SIM{n:07d}", stage.id) < stage.rate

    def unit(self, n: int) -> Generator[simpy.Event, Any, None]:
        env, rng = self.env, self.rng
        born = env.now
        lot = n // self.lot_size
        stage: PlainStage | None = self.first
        reworked: dict[str, int] = {}
        clean = True
        ending = ""
        while stage is not None and not ending:
            if stage.sampling is not None and not self.sampled(stage, lot, n):
                stage = stage.next  # not sampled: the unit does not go to the sampling station
                continue
            where = stage.station
            with self.stations[where].request() as request:
                yield request
                spent = 0.0
                first = stage  # sampled, or not a sampling stage: decided before queueing
                while stage is not None and stage.station == where:
                    if stage.ships and lot in self.held_lots:
                        ending = "held"
                        break
                    if stage is not first and stage.sampling is not None and not self.sampled(stage, lot, n):
                        stage = stage.next
                        continue
                    tries = 0
                    while True:
                        tries += 1
                        spent += stage.time()
                        passed = rng.random() >= stage.fail
                        if passed:
                            break
                        clean = False
                        if tries > stage.retry_max:
                            break
                    if passed:
                        stage = stage.then or stage.next
                        continue
                    if stage.sampling is not None:
                        self.sample_failed(stage, lot)
                    rework = stage.on_fail
                    if rework is None:
                        ending = "scrapped"
                        break
                    visits = reworked[rework.id] = reworked.get(rework.id, 0) + 1
                    if rework.max_visits is not None and visits > rework.max_visits:
                        ending = "scrapped"
                        break
                    stage = rework
                if spent:
                    yield env.timeout(spent)
                self.busy[where] += spent
        if ending == "held":
            self.held += 1
        elif ending == "scrapped":
            self.scrapped += 1
        else:
            self.shipped += 1
            self.first_pass += clean
            self.lead_total += env.now - born
        self.end = env.now

    def sample_failed(self, stage: PlainStage, lot: int) -> None:
        key = (lot, stage.id)
        failures = self.lot_failures[key] = self.lot_failures.get(key, 0) + 1
        if stage.recall is not None and failures >= stage.recall:
            self.held_lots.add(lot)

    def figures(self) -> dict[str, Any]:
        hours = self.end / 3600
        utilization = {name: busy / (self.slots[name] * self.end) for name, busy in self.busy.items()}
        bottleneck = max(utilization, key=utilization.__getitem__)
        return {
            "units": self.units,
            "shipped": self.shipped,
            "scrapped": self.scrapped,
            "held": self.held,
            "lots_held": len(self.held_lots),
            "hours": hours,
            "uph": self.shipped / hours,
            "first_pass_yield": self.first_pass / self.units,
            "mean_lead_s": self.lead_total / self.shipped if self.shipped else 0.0,
            "bottleneck": bottleneck,
            **{f"utilization {name}": share for name, share in utilization.items()},
        }


def manual_slots(flow: Flow, profile: Profile) -> int:
    """Slots of the stations with manual stages: operators enough that none is ever waited for."""
    slots = profile.slots(flow)
    stations = {s.station for s in flow.stages.values() if s.step in profile.manual_steps and s.station is not None}
    return sum(slots[name] for name in stations)


def plain_can_model(flow: Flow, profile: Profile, operators: int) -> None:
    """Stop unless an operator is always free: the plain model has none."""
    if profile.break_every_s is not None:
        raise SystemExit("error: the profile sends operators on breaks; the plain model has no operators")
    if operators < manual_slots(flow, profile):
        raise SystemExit(
            f"error: the profile has {operators} operators, fewer than the {manual_slots(flow, profile)} slots of "
            "stations with manual stages; the plain model assumes an operator is always free"
        )
