"""Speed of ``floorflow simulate`` on the phone line, next to the same line written as a plain SimPy model,
and whether the two are the same line.

floorflow: ``simulate(flow, load_profile(None, flow), N, seed)`` on ``workflows/phone-wim.yaml`` (27
route stages at seven stations, RF retries and RF rework, a random-sample test whose failures put lots
on hold) with the shipped default profile: Poisson arrivals at 90% of the bottleneck's capacity, lots
of 500. The recipe is compiled once, before any clock starts; what is timed is ``simulate()`` itself,
from the Flow and Profile to the figures.

Plain SimPy: the same line written by hand the way a SimPy user would (``bench/plainsimpy.py``): one
process per unit, one ``simpy.Resource`` per station held for the unit's whole visit, its routing
plain Python, everything it knows of the line read from the same Flow and Profile.

What the plain model leaves out: **operators**. floorflow makes a unit at a station wait for an
operator for its manual stages (and sends operators on breaks when the profile says so); the plain
model has none, so it is only the same line when an operator is always free: by default floorflow
has one per slot of every station with manual stages, and the benchmark stops if the profile has
fewer, or breaks. It also leaves out the route's guards (``requires``, lifecycle windows,
irreversible stages: the recipe's problems, which this recipe has none of), and runs the stages of an
any_order group in their written order.

What floorflow's model does differently: **its own queues instead of ``simpy.Resource``**. A slot is
a counter and a queue of waiting units (``engine.simulate.pools.Pool``): a free slot is taken with no
event, a freed one handed straight to the first in line; operators are a heap of the moments each is
next free, so a unit's wait for one is known when it asks and costs no event. Each unit state is
worked out once with the runner's own ``UnitState`` and guards and then looked up; a station's run of
first-attempt passes is decided by one uniform draw; each stage's times and failures come from a numpy
generator of its own, drawn in blocks.

Rounds: ``--runs`` rounds (default 10), interleaved, each one floorflow run then one plain run of
``--units`` units (default 100,000), round i on seed ``--seed`` + i for both. ``units_per_s_100k`` and
``plain_simpy_units_per_s`` are N / the median wall seconds (the plain model's building included);
``ratio_vs_plain`` is their ratio (above 1: floorflow is faster). ``units_per_s_1m`` and
``seconds_1m`` are of one floorflow run of N = ``--big`` (default 1,000,000), run first.
``peak_rss_mib`` is the process's peak resident set (``getrusage(RUSAGE_SELF).ru_maxrss``) read after
the big run (with ``--no-big``: after the first floorflow run), before any plain run: floorflow's
peak, the interpreter and imports included.

Equivalence: the rounds are replications, each model's on its own random numbers. For UPH and each
station's utilization the benchmark prints each model's mean with the 95% confidence interval of the
mean over the replications (Student's t, n - 1 degrees of freedom), and the confidence interval of
the difference of the two means (Welch's t). A figure is the **same** when the difference's interval
contains 0. Its level is 1 - 0.05/k for k judged figures (Bonferroni), so two models of one line are
called different in at most 5% of benchmark runs; the interval's half-width is the smallest
difference the replications could have seen. The units shipped (mean over the rounds) must also be
within 5% of each other. Any figure found different makes the exit status 1.

Sweep: a line planner's what-if sweep as the ``floorflow`` command runs it (``bench/sweeptiming.py``):
20 scenarios (RF slots 1..5, operators 1..4) of 10 replications of 10,000 units, on every core and,
the peer, on one (``--jobs 1``), in ``--sweep-rounds`` interleaved rounds (default 1).
``sweep_scenarios_per_min`` is of the runs on every core; ``sweep_speedup`` the one-core median over
the every-core median; ``sweep_cores`` the cores used.

    python bench/simulate.py [--units N] [--big N | --no-big] [--runs N] [--seed S] [--sweep-rounds N | --no-sweep]

The last line printed is one JSON object: ``{"units_per_s_100k": …, "units_per_s_1m": …,
"plain_simpy_units_per_s": …, "ratio_vs_plain": …, "seconds_1m": …, "peak_rss_mib": …, …,
"equivalent": true, "equivalence": {"uph": true, "utilization smt": true, …},
"sweep_scenarios_per_min": …, "sweep_scenarios_per_min_1_core": …, "sweep_speedup": …, "sweep_cores": …}``;
the big run's figures are null with ``--no-big``, the sweep's with ``--no-sweep``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plainsimpy import PlainLine, plain_can_model
from scipy.stats import t as student_t
from sweeptiming import REPLICATIONS, SCENARIOS, UNITS, SweepTiming, time_sweeps

from engine.flow import Flow
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.simulate import load_profile, simulate
from engine.simulate.line import LineModel
from engine.simulate.profile import Profile

RECIPE = Path(__file__).resolve().parent.parent / "workflows" / "phone-wim.yaml"
TARGET_RATIO = 1.0
"""floorflow's units/s over the plain SimPy model's, at least."""
TARGET_SECONDS_1M = 40.0
"""Seconds for a million units, at most."""
TARGET_RSS_MIB = 250.0
"""Peak resident set of the process, at most."""
SHIPPED_TOLERANCE = 0.05
"""How far apart the two models' units shipped may be before the benchmark calls them different lines."""


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


# -- equivalence -----------------------------------------------------------------------------------


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (any real ``df`` > 0)."""
    return float(student_t.ppf(p, df))


@dataclass(frozen=True)
class Compared:
    """One figure of both models over the replications: means, confidence half-widths, the verdict."""

    ours: float
    ours_half: float
    """Half-width of the 95% confidence interval of floorflow's mean."""
    theirs: float
    theirs_half: float
    difference: float
    """floorflow's mean minus the plain model's."""
    difference_half: float
    """Half-width of the difference's confidence interval (Welch), at the Bonferroni-corrected level."""

    @property
    def same(self) -> bool:
        return abs(self.difference) <= self.difference_half


def compare(ours: list[float], theirs: list[float], level: float) -> Compared:
    """Both models' means with their 95% intervals, and the difference's interval at ``level`` (Welch)."""
    n, m = len(ours), len(theirs)
    v, w = statistics.variance(ours) / n, statistics.variance(theirs) / m  # squared standard errors
    if v + w == 0:  # no spread at all (a fixed line): the same only if equal
        return Compared(ours[0], 0.0, theirs[0], 0.0, ours[0] - theirs[0], 0.0)
    df = (v + w) ** 2 / (v**2 / (n - 1) + w**2 / (m - 1))
    t_ours, t_theirs = t_quantile(0.975, n - 1), t_quantile(0.975, m - 1)
    return Compared(
        ours=statistics.fmean(ours),
        ours_half=t_ours * math.sqrt(v),
        theirs=statistics.fmean(theirs),
        theirs_half=t_theirs * math.sqrt(w),
        difference=statistics.fmean(ours) - statistics.fmean(theirs),
        difference_half=t_quantile(1 - (1 - level) / 2, df) * math.sqrt(v + w),
    )


def judged_figures(plain: dict[str, Any]) -> list[str]:
    """The figures judged for equivalence: UPH and each station's utilization."""
    return ["uph", *(key for key in plain if key.startswith("utilization "))]


def equivalence(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> tuple[dict[str, Compared], float]:
    """Each judged figure compared over the replications; and the level of the differences' intervals."""
    keys = judged_figures(theirs[0])
    level = 1 - 0.05 / len(keys)
    return {key: compare([f[key] for f in ours], [f[key] for f in theirs], level) for key in keys}, level


def print_equivalence(compared: dict[str, Compared], level: float, runs: int) -> None:
    print(
        f"\nthe same line? {runs} replications per model, round i on seed S + i, each model its own numbers; "
        f"mean ± 95% CI of the mean; a figure is the same when the {level:.2%} CI of the difference (Welch, "
        f"Bonferroni over {len(compared)} figures) contains 0"
    )
    print(f"{'figure':<28}  {'floorflow':>20}  {'plain SimPy':>20}  {'difference':>20}  verdict")
    print(f"{'-' * 28}  {'-' * 20}  {'-' * 20}  {'-' * 20}  {'-' * 9}")
    for key, c in compared.items():
        digits = 3 if abs(c.ours) < 10 else 2
        cells = [
            f"{mean:.{digits + 1}f} ± {half:.{digits + 1}f}"
            for mean, half in ((c.ours, c.ours_half), (c.theirs, c.theirs_half), (c.difference, c.difference_half))
        ]
        print(f"{key:<28}  {cells[0]:>20}  {cells[1]:>20}  {cells[2]:>20}  {'same' if c.same else 'DIFFERENT'}")


def print_means(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    """The other figures, mean over the replications, side by side."""
    print(f"\n{'figure (mean of the runs)':<28}  {'floorflow':>12}  {'plain SimPy':>12}")
    print(f"{'-' * 28}  {'-' * 12}  {'-' * 12}")
    for key in ("shipped", "scrapped", "held", "lots_held", "hours", "first_pass_yield", "mean_lead_s"):
        a, b = statistics.fmean(f[key] for f in ours), statistics.fmean(f[key] for f in theirs)
        digits = 4 if abs(a) < 10 else 1
        print(f"{key:<28}  {a:>12.{digits}f}  {b:>12.{digits}f}")
    bottlenecks = [statistics.mode(f["bottleneck"] for f in runs) for runs in (ours, theirs)]
    print(f"{'bottleneck (most often)':<28}  {bottlenecks[0]:>12}  {bottlenecks[1]:>12}")


# -- the run ---------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="floorflow simulate on the phone line, next to a plain SimPy model.")
    parser.add_argument("--units", type=int, default=100_000, metavar="N", help="units per timed run (default: 100000)")
    parser.add_argument(
        "--big", type=int, default=1_000_000, metavar="N", help="units of the big run (default: 1000000)"
    )
    parser.add_argument("--no-big", action="store_true", help="skip the big run (its figures are null)")
    parser.add_argument(
        "--runs", type=int, default=10, metavar="N", help="interleaved rounds, one run per model each (default: 10)"
    )
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="seed of the first round (default: 1)")
    parser.add_argument(
        "--sweep-rounds", type=int, default=1, metavar="N", help="rounds of the sweep, every core then one (default: 1)"
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep (its figures are null)")
    args = parser.parse_args(argv)
    for option in ("units", "big"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    if args.runs < 2:
        parser.error("--runs must be at least 2: the confidence intervals need two replications")
    if args.seed < 0:
        parser.error("--seed must be at least 0")
    return args


def print_speed(rows: list[tuple[str, int, list[float]]]) -> None:
    print(f"{'model':<20}  {'units':>9}  {'runs':>4}  {'median s':>9}  {'median units/s':>14}  {'min':>9}  {'max':>9}")
    print(f"{'-' * 20}  {'-' * 9}  {'-' * 4}  {'-' * 9}  {'-' * 14}  {'-' * 9}  {'-' * 9}")
    for name, units, seconds in rows:
        rates = [units / s for s in seconds]
        print(
            f"{name:<20}  {units:>9}  {len(seconds):>4}  {statistics.median(seconds):>9.2f}  "
            f"{statistics.median(rates):>14.0f}  {min(rates):>9.0f}  {max(rates):>9.0f}"
        )


def print_targets(ratio: float, big_seconds: float | None, big: int, rss: float) -> None:
    print(
        f"\ntarget: >= {TARGET_RATIO:.1f}x the plain model's units/s; {ratio:.2f}x ({_verdict(ratio >= TARGET_RATIO)})"
    )
    if big_seconds is None:
        print(f"target: 1,000,000 units in <= {TARGET_SECONDS_1M:.0f} s; not run (--no-big)")
    elif big != 1_000_000:
        print(
            f"target: 1,000,000 units in <= {TARGET_SECONDS_1M:.0f} s; "
            f"not judged (--big {big} took {big_seconds:.1f} s)"
        )
    else:
        met = _verdict(big_seconds <= TARGET_SECONDS_1M)
        print(f"target: 1,000,000 units in <= {TARGET_SECONDS_1M:.0f} s; {big_seconds:.1f} s ({met})")
    after = "big run" if big_seconds is not None else "first run"
    met = _verdict(rss <= TARGET_RSS_MIB)
    print(f"target: peak RSS <= {TARGET_RSS_MIB:.0f} MiB; {rss:.1f} MiB after floorflow's {after} ({met})")


def print_sweep(sweep: SweepTiming | None) -> None:
    if sweep is None:
        print("sweep: not run (--no-sweep)")
        return
    print(
        f"sweep of {SCENARIOS} scenarios x {REPLICATIONS} replications of {UNITS:,} units: "
        f"{sweep.scenarios_per_min:.1f} scenarios/min on {sweep.cores} cores, "
        f"{sweep.one_core_scenarios_per_min:.1f} on 1 ({sweep.speedup:.2f}x)"
    )


def sweep_figures(sweep: SweepTiming | None) -> dict[str, Any]:
    if sweep is None:
        return {"sweep_scenarios_per_min": None, "sweep_scenarios_per_min_1_core": None, "sweep_speedup": None,
                "sweep_cores": None}  # fmt: skip
    return {
        "sweep_scenarios_per_min": round(sweep.scenarios_per_min, 2),
        "sweep_scenarios_per_min_1_core": round(sweep.one_core_scenarios_per_min, 2),
        "sweep_speedup": round(sweep.speedup, 3),
        "sweep_cores": sweep.cores,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    began = time.perf_counter()
    flow, problems = check_recipe(RECIPE, Registry.discover())
    if flow is None:
        raise SystemExit(f"error: {RECIPE} does not compile:\n" + "\n".join(str(p) for p in problems))
    profile = load_profile(None, flow)
    line = LineModel(flow, profile, args.units, args.seed)
    mean_gap, operators = line.mean_gap, line.operators.size
    del line
    plain_can_model(flow, profile, operators)
    print(
        f"{flow.recipe} v{flow.version}, profile {profile.name}: {len(flow.route_ids)} route stages, "
        f"{len(flow.stages) - len(flow.route_ids)} rework, arrivals every {mean_gap:.2f} s on average; "
        f"{args.runs} interleaved rounds of {args.units} units per model, "
        f"seeds {args.seed}-{args.seed + args.runs - 1}\n",
        flush=True,
    )

    big_seconds: float | None = None
    rss: float | None = None
    if not args.no_big:
        big_seconds = time_floorflow(flow, profile, args.big, args.seed)[0]
        rss = peak_rss_mib()  # floorflow's peak: the plain model has not run yet
    small: list[tuple[float, dict[str, Any]]] = []
    plain: list[tuple[float, dict[str, Any]]] = []
    for seed in range(args.seed, args.seed + args.runs):
        small.append(time_floorflow(flow, profile, args.units, seed))
        if rss is None:
            rss = peak_rss_mib()
        plain.append(time_plain(flow, profile, args.units, seed, mean_gap))
    assert rss is not None

    print_speed(
        [
            ("floorflow simulate()", args.units, [s for s, _ in small]),
            *([("floorflow simulate()", args.big, [big_seconds])] if big_seconds is not None else []),
            ("plain SimPy model", args.units, [s for s, _ in plain]),
        ]
    )
    ours = [floorflow_key_figures(figures) for _, figures in small]
    theirs = [figures for _, figures in plain]
    print_means(ours, theirs)
    compared, level = equivalence(ours, theirs)
    print_equivalence(compared, level, args.runs)
    shipped = [statistics.fmean(f["shipped"] for f in runs) for runs in (ours, theirs)]
    apart = abs(shipped[0] - shipped[1]) / max(*shipped, 1)
    shipped_close = apart <= SHIPPED_TOLERANCE
    print(f"units shipped, mean of the runs: {apart:.2%} apart (at most {SHIPPED_TOLERANCE:.0%})")

    per_s_small = args.units / statistics.median(s for s, _ in small)
    per_s_big = args.big / big_seconds if big_seconds is not None else None
    per_s_plain = args.units / statistics.median(s for s, _ in plain)
    ratio = per_s_small / per_s_plain
    print(f"\nfloorflow runs {ratio:.2f}x the plain SimPy model's units per second")
    print_targets(ratio, big_seconds, args.big, rss)
    sweep = None if args.no_sweep else time_sweeps(RECIPE, args.sweep_rounds, args.seed)
    print_sweep(sweep)
    equivalent = shipped_close and all(c.same for c in compared.values())
    if not equivalent:
        different = [key for key, c in compared.items() if not c.same] + ([] if shipped_close else ["shipped"])
        print(
            f"error: the two models differ in {', '.join(different)}: they do not model the same line", file=sys.stderr
        )
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
                "equivalent": equivalent,
                "equivalence": {key: c.same for key, c in compared.items()},
                "equivalence_level": round(level, 5),
                "shipped_within_5pct": shipped_close,
                "uph": {"floorflow": round(compared["uph"].ours, 3), "plain": round(compared["uph"].theirs, 3)},
                **sweep_figures(sweep),
            }
        )
    )
    return 0 if equivalent else 1


if __name__ == "__main__":
    sys.exit(main())
