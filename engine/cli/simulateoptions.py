"""``floorflow simulate``'s arguments: one run's, and those of replications and what-if sweeps.

Kept apart from the verb's modules (``engine.cli.simulate``, ``engine.cli.sweeps``), so that building
the parser imports no simulation package (``floorflow validate`` stays light). docs/simulate.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_simulate_options(simulate: argparse.ArgumentParser, count: Callable[[str], int]) -> None:
    """RECIPE and one run's options, then the sweeps'; ``count`` reads a whole number of at least 1."""
    simulate.add_argument("recipe", metavar="RECIPE", type=Path)
    simulate.add_argument("--units", type=count, default=1000, metavar="N", help="units to start (default 1000)")
    simulate.add_argument("--seed", type=int, default=0, metavar="S", help="random seed: same seed, same figures")
    simulate.add_argument(
        "--profile", type=Path, metavar="FILE", help="line profile: times, failure rates, arrivals (default: shipped)"
    )
    simulate.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    simulate.add_argument("--plot", type=Path, metavar="DIR", help="write utilization, WIP and lead-time PNGs into DIR")
    add_sweep_options(simulate, count)


def add_sweep_options(simulate: argparse.ArgumentParser, count: Callable[[str], int]) -> None:
    """``--replications``, ``--vary``, ``--target-uph``, ``--jobs``, ``--cluster`` (and the options a later
    figure needs, e.g. a warm-up, go here too)."""
    simulate.add_argument(
        "--replications",
        type=count,
        default=1,
        metavar="N",
        help="run seeds S, S+1, ... S+N-1 and give each figure's mean and 95%% confidence interval (default 1)",
    )
    simulate.add_argument(
        "--warmup",
        type=at_least_zero,
        default=0.0,
        metavar="SECONDS",
        help="leave the first SECONDS out of the steady-state figures: UPH, utilization, waits, WIP, lead times",
    )
    simulate.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="PATH=VALUES",
        help="sweep a setting (repeatable: every combination): stations.NAME.slots, operators, "
        "arrivals.rate_per_hour, lots.size, instruments.STATION.NAME; VALUES 2..6, 2..10..2 or 1,2,4",
    )
    simulate.add_argument(
        "--target-uph",
        type=above_zero,
        metavar="X",
        help="with --vary: mark the fewest resources whose UPH interval's low end reaches X",
    )
    simulate.add_argument(
        "--jobs", type=count, metavar="N", help="replications and sweeps: local processes (default: every core)"
    )
    simulate.add_argument(
        "--cluster", metavar="ADDRESS", help="replications and sweeps: run on a Dask scheduler, e.g. tcp://HOST:8786"
    )


def at_least_zero(text: str) -> float:
    """A finite number, 0 or more (seconds), or the usage error saying what it is not."""
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of 0 or more, not {text!r}")
    return value


def above_zero(text: str) -> float:
    """A finite number above 0 (a rate), or the usage error saying what it is not."""
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
