"""The whole line as a discrete-event simulation (SimPy): arrivals, stations with slots, operators, lots.

Each unit is a SimPy process that walks the recipe's route through ``RouteTable``: it queues for a
slot at the station of its next stage, runs that station's stages there (retries, rework and
sampling as the recipe says, failures drawn from the profile), and leaves for the next station. A
slot is held for the whole visit; an operator for the manual stages of it, one of the station's
instruments for the stages the profile says hold one. Statistics stream into fixed-size counters: no
unit's record is kept. What a unit waits for is in ``pools``, each stage's random times and failures
in ``stages``, the counters in ``stats``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from engine.flow import Flow, Stage
from engine.outcome import Outcome, UnitStatus
from engine.run.guards import Refusal
from engine.sampling import recall_threshold, sample_draw
from engine.simulate.pools import Holding, Operators, Pool
from engine.simulate.profile import Profile
from engine.simulate.route import Node, RouteTable, Run
from engine.simulate.stages import BLOCK, StageModel, attach_instruments, stream
from engine.simulate.stats import Level, Tally

LOAD = 0.9
"""Without arrivals in the profile, units arrive at this fraction of the bottleneck's capacity."""
NO_STATION = "(no station)"
"""Where stages without a station run: as many at once as there are units."""


class Unit:
    """One simulated unit on its way: where it stands in the route table, its lot, how it is doing."""

    __slots__ = ("busy", "clean", "ending", "held", "lot", "manual", "n", "node")

    def __init__(self, n: int, lot: int, node: Node) -> None:
        self.n = n
        self.lot = lot
        self.node = node
        self.clean = True
        """No attempt of it has failed so far."""
        self.ending: UnitStatus | None = None
        """HELD or REFUSED once a guard stops it; while None, its node says how it stands."""
        self.busy = 0.0
        """Seconds of its current visit the station's machine works on it."""
        self.manual = 0.0
        """Seconds of its current visit an operator works on it."""
        self.held: dict[Holding, float] | None = None
        """Seconds of its current visit it holds instruments for, by what it holds (None: none)."""


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
        self._queue = {
            s.id: (self.stations[s.station or NO_STATION], self.models[s.id].waits) for s in flow.stages.values()
        }
        """By stage id: the slots a unit queues for before it, and where its wait is counted."""
        self._arrivals = np.random.default_rng(next(seeds))
        operators = profile.operators or self._default_operators()
        self.operators = Operators(operators)
        self.instruments = attach_instruments(self.models.values(), profile.instruments, self.operators)
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
        """Units per hour each station can take, from mean times, retries and sampling rates: as many
        as its slots can, and no more than its instruments can."""
        seconds: dict[str, float] = {}
        for model in self.models.values():
            stage = model.stage
            if not stage.rework and stage.station is not None:
                seconds[stage.station] = seconds.get(stage.station, 0.0) + model.mean_s
        capacity = {
            name: (self.stations[name].size * 3600 / spent if spent > 0 else float("inf"))
            for name, spent in seconds.items()
        }
        for name, per_hour in self.instrument_capacity_per_hour().items():
            station = self.instruments[name].station
            capacity[station] = min(capacity.get(station, float("inf")), per_hour)
        return capacity

    def instrument_capacity_per_hour(self) -> dict[str, float]:
        """Units per hour each instrument can take: its count over the mean seconds a unit holds one."""
        capacity: dict[str, float] = {}
        for name, pool in self.instruments.items():
            spent = sum(m.mean_s for m in map(self.models.__getitem__, pool.stages) if not m.stage.rework)
            capacity[name] = pool.size * 3600 / spent if spent > 0 else float("inf")
        return capacity

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

    # -- a unit's way through the line ----------------------------------------------------------

    def _unit(self, n: int) -> Generator[simpy.Event, Any, None]:
        """A unit from arrival to its end: station after station, a slot held for each visit."""
        env, table, queue, held_lots = self.env, self.table, self._queue, self.held_lots
        timeout = env.timeout
        born = env.now
        self.tally.started += 1
        self.wip.change(born, 1)
        unit = Unit(n, n // self.profile.lot_size, table.start)
        while unit.node.in_route and unit.ending is None:
            stage = table.next_stage(unit.node, None)
            if stage is None:
                break
            if (
                stage.sampling is not None
                and not self._sampled(stage, unit.lot, n)
                and table.refusal(unit.node, stage, unit.lot in held_lots) is None
            ):
                unit.node = table.after(unit.node, stage, Outcome.SKIPPED)  # not taken to the sampling station
                continue
            station, waits = queue[stage.id]
            if station.free:
                station.free -= 1
                began = env.now
                station.busy -= began  # what a slot is busy for is counted as it ends less as it began
                waits.count += 1  # waits.add(0.0), without the call
                waits.zeros += 1
            else:
                arrived = env.now
                turn = env.event()
                station.waiting.append(turn)
                yield turn
                began = env.now
                station.busy -= began
                station.waited += began - arrived
                waits.add(began - arrived)
            station.visits += 1
            self._visit(unit, stage.station, station)
            if unit.held is not None:
                yield from self._held(unit)
            elif unit.manual:
                # The operator's part first, then the machine's: one wait for the unit, none for the operator.
                unit.busy += self.operators.take(env.now, unit.manual) + unit.manual
            if unit.busy:
                yield timeout(unit.busy)
            station.busy += env.now
            if station.waiting:
                station.waiting.popleft().succeed()  # the slot passes straight to the first in line
            else:
                station.free += 1
        self._finish(unit, born)

    def _held(self, unit: Unit) -> Generator[simpy.Event, Any, None]:
        """The operator's part of a visit, then the parts held by instruments, then (left in ``unit.busy``)
        the machine's: each part asked for when the unit is ready for it, so in time order."""
        assert unit.held is not None
        ahead = self.operators.take(self.env.now, unit.manual) + unit.manual if unit.manual else 0.0
        for holding, seconds in unit.held.items():
            if ahead:
                yield self.env.timeout(ahead)
            ahead = holding.take(self.env.now, seconds) + seconds
        unit.held = None
        unit.busy += ahead

    def _visit(self, unit: Unit, where: str | None, station: Pool) -> None:
        """The stages ``unit`` runs at ``where`` before it leaves: moves it on, and sets its visit's times."""
        table, held_lots = self.table, self.held_lots
        unit.busy = unit.manual = 0.0
        while True:
            if unit.lot not in held_lots and self._run(unit, where, station):
                return
            stage = table.next_stage(unit.node, where)
            if stage is None or stage.station != where:
                return
            refused = table.refusal(unit.node, stage, unit.lot in held_lots)
            if refused is not None:
                self._refused(unit, stage, refused)
                return
            unit.node, spent, _, failed = self._stage(unit.node, stage, unit.lot, unit.n, failed_first=False)
            self._spend(unit, self.models[stage.id], spent)
            if failed:
                unit.clean = False

    def _run(self, unit: Unit, where: str | None, station: Pool) -> bool:
        """The station's run from the unit's node, as far as one draw says it passes; whether it leaves now.

        A first failure takes that stage attempt by attempt; with its retries used up, the unit goes
        to rework, and the run from there is taken the same way, unless that put its lot on hold.
        """
        while True:
            run = unit.node.runs.get(where) or self.table.run(unit.node, where)
            if run.stages:
                k = bisect_right(run.falls, station.draw())  # run.first_failure, without the call
                run.reached[k] += 1
                busy, manual = unit.busy, unit.manual  # the hottest loop of all: kept in locals
                for time, by in (run.attached or self._timers(run))[k]:
                    if by is False:  # the machine
                        busy += time()
                    elif by is True:  # an operator
                        manual += time()
                    else:  # what the stage holds together
                        self._hold(unit, by, time())
                unit.busy, unit.manual = busy, manual
                if k:
                    unit.node = run.nodes[k - 1]
                if k == len(run.stages):
                    if run.leaves:
                        return True
                else:  # its first attempt failed
                    failing = run.stages[k]
                    unit.node, spent, ok, _ = self._stage(unit.node, failing, unit.lot, unit.n, failed_first=True)
                    self._spend(unit, self.models[failing.id], spent)
                    unit.clean = False
                    if not ok and unit.node.in_route:  # retries used up: rework, on this station or another
                        if unit.lot in self.held_lots:
                            return False
                        continue
            return not unit.node.in_route

    def _refused(self, unit: Unit, stage: Stage, refused: Refusal) -> None:
        """A guard stops the unit: its lot is on hold, or the recipe has a problem (counted by rule)."""
        if refused.rule == "hold":
            unit.ending = UnitStatus.HELD
            return
        unit.ending = UnitStatus.REFUSED
        key = (stage.id, refused.rule, refused.reason)
        self.tally.problems[key] = self.tally.problems.get(key, 0) + 1

    def _finish(self, unit: Unit, born: float) -> None:
        """The unit's end, counted; the simulation ends with the last unit's."""
        tally, now = self.tally, self.env.now
        self.wip.change(now, -1)
        status = unit.ending or unit.node.status
        if status == UnitStatus.SHIPPED or status == UnitStatus.IN_ROUTE:  # off its route's end: shipped
            tally.shipped += 1
            tally.first_pass += unit.clean
            tally.lead.add(now - born)
        elif status == UnitStatus.SCRAPPED:
            tally.scrapped += 1
        elif status == UnitStatus.HELD:
            tally.held += 1
        elif status == UnitStatus.REFUSED:
            tally.refused += 1
        tally.finished += 1
        if tally.finished == self.units:
            self.end = now
            self.done.succeed()

    def _spend(self, unit: Unit, model: StageModel, seconds: float) -> None:
        """``seconds`` of the stage in the unit's visit: the machine's, an operator's, or held."""
        if model.holding is not None:
            self._hold(unit, model.holding, seconds)
        elif model.manual:
            unit.manual += seconds
        else:
            unit.busy += seconds

    @staticmethod
    def _hold(unit: Unit, holding: Holding, seconds: float) -> None:
        if unit.held is None:
            unit.held = {}
        unit.held[holding] = unit.held.get(holding, 0.0) + seconds

    def _timers(self, run: Run) -> list[tuple[tuple[Callable[[], float], bool | Holding], ...]]:
        """Each stage's time stream, and who does it: True an operator, False the machine, else what it
        holds; as the first k stages, for each k."""
        if run.attached is None:
            timers = tuple((m.time, m.holding or m.manual) for m in (self.models[s.id] for s in run.stages))
            run.attached = [timers[:k] for k in range(len(timers) + 1)]
        prefixes: list[tuple[tuple[Callable[[], float], bool | Holding], ...]] = run.attached
        return prefixes

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
        model.final_passed += outcome is Outcome.PASS
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
