"""Speed of ``floorflow simulate`` on the phone line, next to the same line written as a plain SimPy model.

floorflow: ``simulate(flow, load_profile(None, flow), N, seed)`` on ``workflows/phone-wim.yaml`` (27
route stages at seven stations, RF retries and RF rework, a random-sample test whose failures put lots
on hold) with the shipped default profile: Poisson arrivals at 90% of the bottleneck's capacity, lots
of 500. The recipe is compiled once, before any clock starts; what is timed is ``simulate()`` itself,
from the Flow and Profile to the figures. ``units_per_s_100k`` is N / wall seconds for N = ``--units``
(default 100,000), the median of ``--runs`` runs (default 3); ``units_per_s_1m`` and ``seconds_1m``
are of one run of N = ``--big`` (default 1,000,000). Every run uses the same ``--seed``, so every run
of a size does the same work. ``peak_rss_mib`` is the process's peak resident set
(``getrusage(RUSAGE_SELF).ru_maxrss``) read right after the big run (after the small runs with
``--no-big``), before the plain model runs: it is floorflow's peak, the interpreter and imports included.

Plain SimPy: the same line written by hand the way a SimPy user would, in this file, run afterwards
in the same process. Its stations, slots, stage order, times, failure chances, retries, rework
(``on_fail``, ``then``, ``max_visits``), sampling and recall thresholds are read from the same Flow
and Profile; its routing is plain Python. One process per unit; one ``simpy.Resource`` per station,
held for the unit's whole visit (``with station.request() as req: yield req``) and one
``env.timeout`` for the time of the stages it runs there; one ``random.Random(seed)`` for arrivals,
times (``triangular``, ``lognormvariate``, ``expovariate``) and per-attempt failures. A unit skips a
sampling station it is not sampled for (the recipe's own rule, ``engine.sampling.is_sampled``, with the
stage's rate worked out once as floorflow does, on the same lot and serial names as floorflow's, so
both models sample the same units); a sampled unit's failure counts toward its lot's recall threshold,
and a unit of a held lot is stopped at the first stage that would ship it (the ready check, or the move
to the last lifecycle state). The stages of an any_order group run in their written order. Operators
are not modelled: by default floorflow has one per slot of every station with manual stages, so one
is always free for a unit holding such a slot (the benchmark stops if the profile has fewer).
Arrivals come at floorflow's own mean gap (``LineModel(...).mean_gap``). ``plain_simpy_units_per_s``
is the median of ``--runs`` runs of ``--units`` units, building the model included;
``ratio_vs_plain`` is floorflow's ``units_per_s_100k`` over it (above 1: floorflow is faster).

Both models draw their own random numbers, so their figures agree as two samples of one line do. They
are printed side by side, and the benchmark stops with an error when the units shipped at ``--units``
differ by more than 5%. Lot holds make shipped lumpy: a held lot loses the hundred or so of its units
not yet past the ready check, so at 100,000 units the two models' shipped counts may be a few percent
apart for some seeds.

    python bench/simulate.py [--units N] [--big N | --no-big] [--runs N] [--seed S]

The last line printed is one JSON object: ``{"units_per_s_100k": …, "units_per_s_1m": …,
"plain_simpy_units_per_s": …, "ratio_vs_plain": …, "seconds_1m": …, "peak_rss_mib": …, …}``; the
big run's figures are null with ``--no-big``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import simpy

from engine.flow import SCRAP, Flow, Group, Sampling
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.sampling import rate_of, recall_threshold, sample_draw
from engine.simulate import load_profile, simulate
from engine.simulate.line import LineModel
from engine.simulate.profile import Profile, Timing

RECIPE = Path(__file__).resolve().parent.parent / "workflows" / "phone-wim.yaml"
TARGET_RATIO = 1.0
"""floorflow's units/s over the plain SimPy model's, at least."""
TARGET_SECONDS_1M = 40.0
"""Seconds for a million units, at most."""
TARGET_RSS_MIB = 250.0
"""Peak resident set of the process, at most."""
SHIPPED_TOLERANCE = 0.05
"""How far apart the two models' units shipped may be before the benchmark calls them different lines."""


# -- the plain SimPy model -------------------------------------------------------------------------


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


# -- timing ----------------------------------------------------------------------------------------


def time_floorflow(flow: Flow, profile: Profile, units: int, seed: int) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one ``simulate()``, and the figures it returned."""
    gc.collect()
    start = time.perf_counter()
    result = simulate(flow, profile, units, seed)
    return time.perf_counter() - start, result.figures


def time_plain(flow: Flow, profile: Profile, units: int, seed: int, mean_gap: float) -> tuple[float, dict[str, Any]]:
    """Wall seconds of building and running the plain model once, and its figures."""
    gc.collect()
    start = time.perf_counter()
    figures = PlainLine(flow, profile, units, seed, mean_gap).run()
    return time.perf_counter() - start, figures


def floorflow_key_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """floorflow's figures under the plain model's names."""
    return {
        "units": figures["units"],
        "shipped": figures["shipped"],
        "scrapped": figures["scrapped"],
        "held": figures["held"],
        "lots_held": len(figures["holds"]),
        "hours": figures["hours"],
        "uph": figures["uph"],
        "first_pass_yield": figures["first_pass_yield"],
        "mean_lead_s": figures["lead_time"]["mean_s"],
        "bottleneck": figures["bottleneck"],
        **{f"utilization {name}": station["utilization"] for name, station in figures["stations"].items()},
    }


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="floorflow simulate on the phone line, next to a plain SimPy model.")
    parser.add_argument("--units", type=int, default=100_000, metavar="N", help="units per timed run (default: 100000)")
    parser.add_argument(
        "--big", type=int, default=1_000_000, metavar="N", help="units of the big run (default: 1000000)"
    )
    parser.add_argument("--no-big", action="store_true", help="skip the big run (its figures are null)")
    parser.add_argument("--runs", type=int, default=3, metavar="N", help="runs at --units per model (default: 3)")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="seed of every run (default: 1)")
    args = parser.parse_args(argv)
    for option in ("units", "big", "runs"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    if args.seed < 0:
        parser.error("--seed must be at least 0")

    began = time.perf_counter()
    flow, problems = check_recipe(RECIPE, Registry.discover())
    if flow is None:
        raise SystemExit(f"error: {RECIPE} does not compile:\n" + "\n".join(str(p) for p in problems))
    profile = load_profile(None, flow)
    line = LineModel(flow, profile, args.units, args.seed)
    mean_gap, operators = line.mean_gap, line.operators.size
    del line
    if operators < manual_slots(flow, profile):
        raise SystemExit(
            f"error: the profile has {operators} operators, fewer than the {manual_slots(flow, profile)} slots of "
            "stations with manual stages; the plain model assumes an operator is always free"
        )
    print(
        f"{flow.recipe} v{flow.version}, profile {profile.name}: {len(flow.route_ids)} route stages, "
        f"{len(flow.stages) - len(flow.route_ids)} rework, arrivals every {mean_gap:.2f} s on average; "
        f"{args.runs} runs of {args.units} units per model, seed {args.seed}\n",
        flush=True,
    )

    small = [time_floorflow(flow, profile, args.units, args.seed) for _ in range(args.runs)]
    small_figures = small[0][1]
    big_seconds: float | None = None
    if not args.no_big:
        big_seconds = time_floorflow(flow, profile, args.big, args.seed)[0]
    rss = peak_rss_mib()  # floorflow's peak: the plain model has not run yet
    plain = [time_plain(flow, profile, args.units, args.seed, mean_gap) for _ in range(args.runs)]
    plain_figures = plain[0][1]

    rows: list[tuple[str, int, list[float]]] = [
        ("floorflow simulate()", args.units, [s for s, _ in small]),
        *([("floorflow simulate()", args.big, [big_seconds])] if big_seconds is not None else []),
        ("plain SimPy model", args.units, [s for s, _ in plain]),
    ]
    print(f"{'model':<20}  {'units':>9}  {'runs':>4}  {'median s':>9}  {'median units/s':>14}  {'min':>9}  {'max':>9}")
    print(f"{'-' * 20}  {'-' * 9}  {'-' * 4}  {'-' * 9}  {'-' * 14}  {'-' * 9}  {'-' * 9}")
    for name, units, seconds in rows:
        rates = [units / s for s in seconds]
        print(
            f"{name:<20}  {units:>9}  {len(seconds):>4}  {statistics.median(seconds):>9.2f}  "
            f"{statistics.median(rates):>14.0f}  {min(rates):>9.0f}  {max(rates):>9.0f}"
        )

    ours, theirs = floorflow_key_figures(small_figures), plain_figures
    print(f"\nthe same line, {args.units} units, seed {args.seed} (each model draws its own numbers):")
    print(f"{'figure':<24}  {'floorflow':>12}  {'plain SimPy':>12}")
    print(f"{'-' * 24}  {'-' * 12}  {'-' * 12}")
    for key, value in ours.items():
        other = theirs[key]
        if isinstance(value, float):
            digits = 4 if abs(value) < 10 else 1
            print(f"{key:<24}  {value:>12.{digits}f}  {other:>12.{digits}f}")
        else:
            print(f"{key:<24}  {value!s:>12}  {other!s:>12}")
    apart = abs(ours["shipped"] - theirs["shipped"]) / max(ours["shipped"], theirs["shipped"], 1)
    if apart > SHIPPED_TOLERANCE:
        raise SystemExit(
            f"error: floorflow shipped {ours['shipped']} units and the plain model {theirs['shipped']}, "
            f"{apart:.1%} apart (more than {SHIPPED_TOLERANCE:.0%}): they do not model the same line"
        )

    per_s_small = args.units / statistics.median(s for s, _ in small)
    per_s_big = args.big / big_seconds if big_seconds is not None else None
    per_s_plain = args.units / statistics.median(s for s, _ in plain)
    ratio = per_s_small / per_s_plain
    print(f"\nfloorflow runs {ratio:.2f}x the plain SimPy model's units per second")
    print(f"target: >= {TARGET_RATIO:.1f}x the plain model's units/s; {ratio:.2f}x ({_verdict(ratio >= TARGET_RATIO)})")
    if big_seconds is None:
        print(f"target: 1,000,000 units in <= {TARGET_SECONDS_1M:.0f} s; not run (--no-big)")
    elif args.big != 1_000_000:
        print(
            f"target: 1,000,000 units in <= {TARGET_SECONDS_1M:.0f} s; not judged (--big {args.big} took "
            f"{big_seconds:.1f} s)"
        )
    else:
        print(
            f"target: 1,000,000 units in <= {TARGET_SECONDS_1M:.0f} s; {big_seconds:.1f} s "
            f"({_verdict(big_seconds <= TARGET_SECONDS_1M)})"
        )
    after = "big run" if big_seconds is not None else "runs"
    met = _verdict(rss <= TARGET_RSS_MIB)
    print(f"target: peak RSS <= {TARGET_RSS_MIB:.0f} MiB; {rss:.1f} MiB after floorflow's {after} ({met})")
    print(
        json.dumps(
            {
                "units_per_s_100k": round(per_s_small, 1),
                "units_per_s_1m": round(per_s_big, 1) if per_s_big is not None else None,
                "plain_simpy_units_per_s": round(per_s_plain, 1),
                "ratio_vs_plain": round(ratio, 3),
                "seconds_1m": round(big_seconds, 2) if big_seconds is not None else None,
                "peak_rss_mib": round(rss, 1),
                "units_small": args.units,
                "units_big": args.big if big_seconds is not None else None,
                "runs": args.runs,
                "seed": args.seed,
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
