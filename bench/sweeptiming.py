"""A what-if sweep as a line planner runs it, timed: ``floorflow simulate --vary … --replications 10``.

20 scenarios (the phone line's RF slots 1 to 5, operators 1 to 4) with 10 replications of 10,000
units each, run by the installed ``floorflow`` command in a child process, as a user runs it: once
on every core (``--jobs`` the cores this process may use) and once on one (``--jobs 1``, the peer:
the same runs one after another), in interleaved rounds. ``sweep_scenarios_per_min`` is the
scenarios over the median minutes of the runs on every core; the speed-up is the one-core median
over the every-core median.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

VARY = ("stations.rf.slots=1..5", "operators=1..4")
SCENARIOS = 5 * 4
REPLICATIONS = 10
UNITS = 10_000
TIMEOUT_S = 1800


@dataclass(frozen=True)
class SweepTiming:
    cores: int
    every_core_s: list[float]
    one_core_s: list[float]

    @property
    def scenarios_per_min(self) -> float:
        return SCENARIOS * 60 / statistics.median(self.every_core_s)

    @property
    def one_core_scenarios_per_min(self) -> float:
        return SCENARIOS * 60 / statistics.median(self.one_core_s)

    @property
    def speedup(self) -> float:
        return statistics.median(self.one_core_s) / statistics.median(self.every_core_s)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def sweep_seconds(recipe: Path, jobs: int, seed: int) -> float:
    """Wall seconds of one sweep by the ``floorflow`` command with ``--jobs jobs``."""
    command = shutil.which("floorflow") or sys.exit("error: the floorflow command is not installed (pip install -e .)")
    varied = [part for vary in VARY for part in ("--vary", vary)]
    argv = [command, "simulate", str(recipe), "--units", str(UNITS), "--replications", str(REPLICATIONS),
            "--seed", str(seed), *varied, "--jobs", str(jobs), "--json"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"error: the sweep failed (exit {done.returncode}):\n{done.stderr}")
    return seconds


def time_sweeps(recipe: Path, rounds: int, seed: int) -> SweepTiming:
    """``rounds`` interleaved rounds: the sweep on every core, then on one."""
    every, one, n = [], [], cores()
    for k in range(rounds):
        every.append(sweep_seconds(recipe, n, seed))
        one.append(sweep_seconds(recipe, 1, seed))
        print(f"sweep round {k + 1}: {every[-1]:.1f} s on {n} cores, {one[-1]:.1f} s on 1", flush=True)
    return SweepTiming(n, every, one)
