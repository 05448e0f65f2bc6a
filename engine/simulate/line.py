"""The whole line as a discrete-event simulation (SimPy): arrivals, stations with slots, operators, lots.

Each unit is a SimPy process that walks the recipe's route through ``RouteTable``: it queues for a
slot at the station of its next stage, runs that station's stages there (retries, rework and
sampling as the recipe says, failures drawn from the profile), and leaves for the next station. A
slot is held for the whole visit; an operator for the manual stages of it. Statistics stream into
fixed-size counters: no unit's record is kept.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import simpy

from engine.flow import Flow, Stage
from engine.outcome import Outcome
from engine.run.unitstate import IN_ROUTE, SCRAPPED, SHIPPED
from engine.sampling import rate_of, recall_threshold, sample_draw
from engine.simulate.profile import Profile, Timing
from engine.simulate.route import Node, RouteTable, Run
from engine.simulate.stats import Histogram, Level

BLOCK = 4096
"""Random draws made at a time, per stream."""
LOAD = 0.9
"""Without arrivals in the profile, units arrive at this fraction of the bottleneck's capacity."""
NO_STATION = "(no station)"
"""Where stages without a station run: as many at once as there are units."""


class Pool:
    """Slots (or operators): taken if free, else waited for in order; a freed one goes to the first waiting."""

    __slots__ = ("busy", "draw", "free", "name", "size", "visits", "waited", "waiting")

    def __init__(self, name: str, size: int, draw: Callable[[], float]) -> None:
        self.name = name
        self.draw = draw
        """Uniform numbers: how far through its run each unit gets before a failure."""
        self.size = size
        self.free = size
        self.waiting: deque[simpy.Event] = deque()
        self.busy = 0.0
        """Slot-seconds in use."""
        self.visits = 0
        self.waited = 0.0


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


class Operators:
    """The operators, each known by when they are next free: whoever asks takes the first one free.

    Asked in time order (each unit asks when it is at a station), this is a first-come, first-served
    queue with as many servers as operators, and needs no events: the wait is known when asked.
    """

    __slots__ = ("busy", "free_at", "size", "visits", "waited")

    def __init__(self, size: int) -> None:
        self.size = size
        self.free_at = [0.0] * size
        """A heap: when each operator is next free."""
        self.busy = 0.0
        self.visits = 0
        self.waited = 0.0

    def take(self, now: float, seconds: float, *, work: bool = True) -> float:
        """An operator for ``seconds`` from the first moment one is free: how long the asker waits for it."""
        start = max(now, self.free_at[0])
        heapq.heapreplace(self.free_at, start + seconds)
        if work:  # not a break
            self.visits += 1
            self.busy += seconds
            self.waited += start - now
        return start - now


class StageModel:
    """A stage as the simulation runs it: its times, its chance to fail, what its attempts came to."""

    __slots__ = ("attempts", "chance", "draw", "first", "first_passed", "manual", "rate", "stage", "time")

    def __init__(self, stage: Stage, profile: Profile, seeds: Iterator[np.random.SeedSequence]) -> None:
        self.stage = stage
        self.time = stream(np.random.default_rng(next(seeds)), profile.time_of(stage))
        """Seconds of the next attempt."""
        self.chance = profile.fail_of(stage)
        self.draw = stream(np.random.default_rng(next(seeds)))
        """The next attempt fails when this is below ``chance``."""
        self.manual = stage.step in profile.manual_steps
        self.rate = rate_of(stage.sampling) if stage.sampling is not None else 1.0
        self.first = 0
        self.first_passed = 0
        self.attempts = 0


@dataclass
class Tally:
    """What the units came to, streamed: counts, lead times, recipe problems, lot holds."""

    started: int = 0
    shipped: int = 0
    scrapped: int = 0
    held: int = 0
    refused: int = 0
    first_pass: int = 0
    finished: int = 0
    lead: Histogram = field(default_factory=Histogram)
    problems: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(stage, rule, reason) of every refusal that is not a lot hold: a recipe problem, and how often."""
    holds: list[dict[str, Any]] = field(default_factory=list)


class LineModel:
    """One simulation: the line's stations, operators and stage models, the route table, the tallies."""

    def __init__(self, flow: Flow, profile: Profile, units: int, seed: int) -> None:
        self.flow = flow
        self.profile = profile
        self.units = units
        seeds = iter(np.random.SeedSequence(seed).spawn(2 * len(flow.stages) + len(flow.stations) + 3))
        self.models = {s.id: StageModel(s, profile, seeds) for s in flow.stages.values()}
        self.table = RouteTable(flow, self._chance, self._breaks)
        slots = profile.slots(flow)
        self.stations = {name: Pool(name, slots[name], stream(np.random.default_rng(next(seeds)))) for name in slots}
        self.stations[NO_STATION] = Pool(NO_STATION, units + 1, stream(np.random.default_rng(next(seeds))))
        self._arrivals = np.random.default_rng(next(seeds))
        operators = profile.operators or self._default_operators()
        self.operators = Operators(operators)
        self.env = simpy.Environment()
        self.tally = Tally()
        self.mean_gap = self._mean_gap()
        expected_end = self.mean_gap * units
        self.wip = Level(profile.wip_samples, max(expected_end, 1.0) / profile.wip_samples)
        self.held_lots: set[int] = set()
        self.lot_failures: dict[tuple[int, str], int] = {}
        self.done = self.env.event()
        self.end = 0.0

    # -- set-up ---------------------------------------------------------------------------------

    def _chance(self, stage: Stage) -> float:
        return self.models[stage.id].chance

    def _breaks(self, stage: Stage) -> bool:
        return stage.sampling is not None

    def _default_operators(self) -> int:
        manual = {m.stage.station for m in self.models.values() if m.manual}
        slots = self.profile.slots(self.flow)
        return max(1, sum(slots.get(name, 1) for name in manual if name is not None) + (None in manual))

    def capacity_per_hour(self) -> dict[str, float]:
        """Units per hour each station can take, from mean times, retries and sampling rates."""
        seconds: dict[str, float] = {}
        for model in self.models.values():
            stage = model.stage
            if stage.rework or stage.station is None:
                continue
            fail = model.chance
            tries = sum(fail**i for i in range(stage.retry_max + 1))
            share = rate_of(stage.sampling) if stage.sampling is not None else 1.0
            seconds[stage.station] = seconds.get(stage.station, 0.0) + self.profile.time_of(stage).mean * tries * share
        return {
            name: (self.stations[name].size * 3600 / spent if spent > 0 else float("inf"))
            for name, spent in seconds.items()
        }

    def _mean_gap(self) -> float:
        profile = self.profile
        if profile.rate_per_hour is not None:
            return 3600 / profile.rate_per_hour
        if profile.batch_size is not None and profile.batch_every_s is not None:
            return profile.batch_every_s / profile.batch_size
        slowest = min(self.capacity_per_hour().values(), default=float("inf"))
        return 3600 / (LOAD * slowest) if slowest != float("inf") else 1.0

    # -- running --------------------------------------------------------------------------------

    def run(self) -> None:
        self.env.process(self._arrive())
        every, lasting = self.profile.break_every_s, self.profile.break_for_s
        if every is not None and lasting is not None:
            for i in range(self.operators.size):
                self.env.process(self._breaks_of(every * (i + 1) / self.operators.size, every, lasting))
        self.env.run(until=self.done)

    def _breaks_of(self, first: float, every: float, lasting: float) -> Generator[simpy.Event, Any, None]:
        """One operator's breaks: away for ``lasting`` seconds every ``every``, after the unit in hand."""
        yield self.env.timeout(first)
        while True:
            self.operators.take(self.env.now, lasting, work=False)
            yield self.env.timeout(every)

    def _arrive(self) -> Generator[simpy.Event, Any, None]:
        env, profile = self.env, self.profile
        n = 0
        if profile.batch_size is not None and profile.batch_every_s is not None:
            while n < self.units:
                for _ in range(min(profile.batch_size, self.units - n)):
                    env.process(self._unit(n))
                    n += 1
                if n < self.units:
                    yield env.timeout(profile.batch_every_s)
            return
        gaps: list[float] = []
        while n < self.units:
            env.process(self._unit(n))
            n += 1
            if n < self.units:
                if not gaps:
                    gaps = self._arrivals.exponential(self.mean_gap, BLOCK).tolist()
                yield env.timeout(gaps.pop())

    def _unit(self, n: int) -> Generator[simpy.Event, Any, None]:
        env, table, tally, models, stations = self.env, self.table, self.tally, self.models, self.stations
        held_lots = self.held_lots
        born = env.now
        tally.started += 1
        self.wip.change(born, 1)
        lot = n // self.profile.lot_size
        node = table.start
        clean = True
        ending = ""
        while node.status == IN_ROUTE and not ending:
            stage = table.next_stage(node, None)
            if stage is None:
                break
            if (
                stage.sampling is not None
                and not self._sampled(stage, lot, n)
                and table.refusal(node, stage, lot in held_lots) is None
            ):
                node = table.after(node, stage, Outcome.SKIPPED)  # not taken to the sampling station at all
                continue
            station = stations[stage.station if stage.station is not None else NO_STATION]
            arrived = env.now
            if station.free:
                station.free -= 1
            else:
                turn = env.event()
                station.waiting.append(turn)
                yield turn
            began = env.now
            station.waited += began - arrived
            station.visits += 1
            busy = manual = 0.0
            where = stage.station
            while True:
                if lot not in held_lots:
                    run = table.run(node, where)
                    if run.stages:
                        k = run.first_failure(station.draw())
                        run.reached[k] += 1
                        for time, by_hand in islice(run.attached or self._timers(run), k):
                            if by_hand:
                                manual += time()
                            else:
                                busy += time()
                        if k:
                            node = run.nodes[k - 1]
                        if k == len(run.stages):
                            if run.leaves:
                                break
                        else:  # its first attempt failed
                            failing = run.stages[k]
                            node, spent, ok, _ = self._stage(node, failing, lot, n, failed_first=True)
                            if models[failing.id].manual:
                                manual += spent
                            else:
                                busy += spent
                            clean = False
                            if not ok and node.status == IN_ROUTE:
                                continue  # retries used up: rework, on this station or another
                        if node.status != IN_ROUTE:
                            break
                stage = table.next_stage(node, where)
                if stage is None or stage.station != where:
                    break
                refused = table.refusal(node, stage, lot in held_lots)
                if refused is not None:
                    ending = "held" if refused.rule == "hold" else "refused"
                    if ending == "refused":
                        key = (stage.id, refused.rule, refused.reason)
                        tally.problems[key] = tally.problems.get(key, 0) + 1
                    break
                model = models[stage.id]
                node, spent, ok, failed = self._stage(node, stage, lot, n, failed_first=False)
                if model.manual:
                    manual += spent
                else:
                    busy += spent
                if failed:
                    clean = False
            if manual:
                # The operator's part first, then the machine's: one wait for the unit, none for the operator.
                busy += self.operators.take(env.now, manual) + manual
            if busy:
                yield env.timeout(busy)
            station.busy += env.now - began
            if station.waiting:
                station.waiting.popleft().succeed()  # the slot passes straight to the first in line
            else:
                station.free += 1
        now = env.now
        self.wip.change(now, -1)
        if ending == "held":
            tally.held += 1
        elif ending == "refused":
            tally.refused += 1
        elif node.status == SHIPPED or node.status == IN_ROUTE:
            tally.shipped += 1
            tally.first_pass += clean
            tally.lead.add(now - born)
        elif node.status == SCRAPPED:
            tally.scrapped += 1
        tally.finished += 1
        if tally.finished == self.units:
            self.end = now
            self.done.succeed()

    def _timers(self, run: Run) -> tuple[tuple[Callable[[], float], bool], ...]:
        """The time stream of each stage of the run, and whether an operator does it."""
        if run.attached is None:
            run.attached = tuple((self.models[s.id].time, self.models[s.id].manual) for s in run.stages)
        timers: tuple[tuple[Callable[[], float], bool], ...] = run.attached
        return timers

    def _stage(
        self, node: Node, stage: Stage, lot: int, n: int, *, failed_first: bool
    ) -> tuple[Node, float, bool, bool]:
        """One stage, attempt after attempt as the recipe allows.

        The node after it, the time it took, whether it passed in the end, and whether any attempt failed.
        """
        table, model = self.table, self.models[stage.id]
        sampling = stage.sampling
        if sampling is not None and not self._sampled(stage, lot, n):
            return table.after(node, stage, Outcome.SKIPPED), 0.0, True, False
        spent = 0.0
        failed = False
        while True:
            tries = node.state.tries.get(stage.id, 0) + 1
            spent += model.time()
            if failed_first:  # the run's draw already said so
                outcome, failed_first = Outcome.FAIL, False
            else:
                outcome = Outcome.FAIL if model.draw() < model.chance else Outcome.PASS
            if tries == 1:
                model.first += 1
                model.first_passed += outcome is Outcome.PASS
            model.attempts += 1
            failed |= outcome is Outcome.FAIL
            node = table.after(node, stage, outcome)
            if outcome is Outcome.PASS or tries > stage.retry_max:
                break
        if outcome is Outcome.FAIL and sampling is not None:
            self._sample_failed(stage, lot)
        return node, spent, outcome is Outcome.PASS, failed

    def _sampled(self, stage: Stage, lot: int, n: int) -> bool:
        """The recipe's own rule: a hash of lot, unit and stage against the stage's sampling rate."""
        return sample_draw(f"LOT{lot:05d}", f"SIM{n:07d}", stage.id) < self.models[stage.id].rate

    def _sample_failed(self, stage: Stage, lot: int) -> None:
        assert stage.sampling is not None
        key = (lot, stage.id)
        failures = self.lot_failures[key] = self.lot_failures.get(key, 0) + 1
        threshold = recall_threshold(stage.sampling)
        if threshold is not None and failures >= threshold and lot not in self.held_lots:
            self.held_lots.add(lot)
            self.tally.holds.append(
                {
                    "at_s": round(self.env.now, 3),
                    "lot": f"LOT{lot:05d}",
                    "stage": stage.id,
                    "failures": failures,
                    "threshold": threshold,
                }
            )
