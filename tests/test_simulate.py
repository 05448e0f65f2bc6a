"""``floorflow simulate`` checked against what can be worked out without it.

Queueing theory for the line (M/M/1, M/M/2 with the profile's slot count, a Jackson tandem line, an
exactly predictable batch line, the 90%-of-capacity default arrivals), closed forms for yields,
retries and rework, the profile's time distributions and its precedence rules, the seed recipes
under the shipped profile, sampling and lot holds, profile mistakes at their file:line:col, the
streaming statistics, and the memory the simulation does not keep per unit.

Statistical tolerances are stated where they are used: each is several standard errors of the
estimate at the unit count used (binomial where it applies, measured over 10 to 20 seeds for the queue
figures, whose samples are correlated), so a fixed seed passes with a wide margin while a wrong
formula, parameter or counting rule fails. No assertion is about how long anything takes.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.diagnostics import RecipeSyntaxError
from engine.flow import Flow
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.simulate import ProfileError, load_profile, simulate
from engine.simulate.line import LineModel
from engine.simulate.profile import Profile
from engine.simulate.stats import Histogram, Level

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
SEED_RECIPES = ("phone-wim", "phone-reflash", "sphere-module", "sphere-thermostat")
REGISTRY = Registry.discover()


def _recipe(directory: Path, text: str, name: str = "recipe.yaml") -> Flow:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    flow, problems = check_recipe(path, REGISTRY)
    assert flow is not None, "\n".join(map(str, problems))
    return flow


def _profile(directory: Path, flow: Flow | None, text: str, name: str = "profile.yaml") -> Profile:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    assert flow is not None
    return load_profile(path, flow)


def _seed_flow(name: str) -> Flow:
    flow, problems = check_recipe(WORKFLOWS / f"{name}.yaml", REGISTRY)
    assert flow is not None, "\n".join(map(str, problems))
    return flow


def _within(value: float, expected: float, rel: float) -> bool:
    return abs(value - expected) <= rel * abs(expected)


def _binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


# -- queues against queueing theory ------------------------------------------------------------------

ONE_STATION = """\
    recipe: one-station
    version: 1
    stations:
      cell: {slots: 1}
    stages:
      - {id: work, step: device.connect, station: cell}
"""

MEAN_S = 40.0
"""Mean service time (exponential) of the M/M/1 and M/M/2 stations."""


def _erlang_c(servers: int, offered: float) -> float:
    """Chance that an arrival waits in an M/M/c queue (Erlang C), ``offered`` = lambda/mu."""
    rho = offered / servers
    top = offered**servers / math.factorial(servers) / (1 - rho)
    return top / (sum(offered**k / math.factorial(k) for k in range(servers)) + top)


def test_mm1_utilization_wait_lead_time_and_wip_match_queueing_theory(tmp_path: Path) -> None:
    """One station, one slot, exponential times (mean 40 s), Poisson arrivals at 67.5/h: rho = 0.75.

    M/M/1: utilization rho, mean wait in queue Wq = rho/(mu - lambda) = 120 s, time in the line exponential
    with mean 1/(mu - lambda) = 160 s (so p50 = 160 ln 2, p90 = 160 ln 10), mean units in the line
    L = rho/(1 - rho) = 3. Tolerances at 200k units, from the relative sd measured over 20 seeds:
    utilization 0.3% (2% allowed), Wq 2.3% (10%), lead-time mean 1.8%, p50 1.2%, p90 2.0% and WIP
    mean 1.8% (8% each): about 4 sd or more each. A wrong rate, time unit or formula is off by far more.
    """
    flow = _recipe(tmp_path, ONE_STATION)
    lam = 67.5 / 3600
    mu = 1 / MEAN_S
    rho = lam / mu
    profile = _profile(
        tmp_path,
        flow,
        f"""\
        profile: mm1
        arrivals: {{rate_per_hour: 67.5}}
        defaults: {{fail: 0}}
        stages:
          work: {{time: {{exponential: {MEAN_S}}}}}
        """,
    )
    figures = simulate(flow, profile, units=200_000, seed=11).figures
    cell = figures["stations"]["cell"]
    assert cell["slots"] == 1 and cell["visits"] == 200_000
    assert _within(cell["utilization"], rho, 0.02), cell
    assert _within(cell["mean_queue_s"], rho / (mu - lam), 0.10), cell
    sojourn = 1 / (mu - lam)
    lead = figures["lead_time"]
    assert _within(lead["mean_s"], sojourn, 0.08), lead
    assert _within(lead["p50_s"], sojourn * math.log(2), 0.08), lead
    assert _within(lead["p90_s"], sojourn * math.log(10), 0.08), lead
    assert _within(figures["wip"]["mean"], rho / (1 - rho), 0.08), figures["wip"]
    assert figures["shipped"] == 200_000 and figures["first_pass_yield"] == 1.0
    assert figures["bottleneck"] == "cell"


def test_mm2_from_the_profiles_slot_count_matches_erlang_c(tmp_path: Path) -> None:
    """The profile gives the one-slot station a second slot; at 135/h each slot is busy rho = 0.75 of the time.

    M/M/2: utilization rho, Wq = C(2, lambda/mu) / (2 mu - lambda) = 51.4 s (Erlang C). 200k units;
    relative sd over 20 seeds: utilization 0.3% (2% allowed), Wq 2.6% (10% allowed).
    """
    flow = _recipe(tmp_path, ONE_STATION)
    lam = 135 / 3600
    mu = 1 / MEAN_S
    profile = _profile(
        tmp_path,
        flow,
        f"""\
        profile: mm2
        arrivals: {{rate_per_hour: 135}}
        defaults: {{fail: 0}}
        stages:
          work: {{time: {{exponential: {MEAN_S}}}}}
        stations:
          cell: {{slots: 2}}
        """,
    )
    cell = simulate(flow, profile, units=200_000, seed=12).figures["stations"]["cell"]
    assert cell["slots"] == 2
    assert _within(cell["utilization"], lam / (2 * mu), 0.02), cell
    assert _within(cell["mean_queue_s"], _erlang_c(2, lam / mu) / (2 * mu - lam), 0.10), cell


def test_tandem_line_is_two_mm1_queues_with_the_same_arrival_rate(tmp_path: Path) -> None:
    """Two one-slot stations in series, exponential times of mean 30 s and 37.5 s, Poisson arrivals at 72/h.

    By Burke's theorem the first station's departures are Poisson at lambda too, so (Jackson) each is an
    M/M/1 queue: rho = 0.6 and 0.75, Wq = 45 s and 112.5 s, and the mean time in the line is the sum
    of the two sojourns 1/(mu_i - lambda) = 75 + 150 s. 200k units; relative sd over 20 seeds:
    utilizations 0.3% and 0.4% (2% allowed), Wq 1.4% and 2.4% (10%), mean time in the line 1.4% (8%).
    """
    flow = _recipe(
        tmp_path,
        """\
        recipe: tandem
        version: 1
        stations:
          first: {slots: 1}
          second: {slots: 1}
        stages:
          - {id: connect, step: device.connect, station: first}
          - {id: record, step: device.record_id, station: second}
        """,
    )
    profile = _profile(
        tmp_path,
        flow,
        """\
        profile: tandem
        arrivals: {rate_per_hour: 72}
        defaults: {fail: 0}
        stages:
          connect: {time: {exponential: 30}}
          record: {time: {exponential: 37.5}}
        """,
    )
    figures = simulate(flow, profile, units=200_000, seed=13).figures
    lam = 72 / 3600
    sojourns = 0.0
    for name, mean in (("first", 30.0), ("second", 37.5)):
        mu = 1 / mean
        rho = lam / mu
        station = figures["stations"][name]
        assert station["visits"] == 200_000
        assert _within(station["utilization"], rho, 0.02), (name, station)
        assert _within(station["mean_queue_s"], rho / (mu - lam), 0.10), (name, station)
        sojourns += 1 / (mu - lam)
    assert _within(figures["lead_time"]["mean_s"], sojourns, 0.08), figures["lead_time"]
    assert figures["bottleneck"] == "second"


def test_one_operator_for_a_manual_stage_is_an_mm1_server(tmp_path: Path) -> None:
    """A manual stage at a station with more slots than ever fill, and one operator: the operator is
    the M/M/1 server (exponential 40 s, 67.5/h: utilization 0.75, Wq 120 s) and nobody waits for a
    slot. 200k units; relative sd over 10 seeds: utilization 0.4% (2% allowed), Wq 2.6% (10%)."""
    flow = _recipe(
        tmp_path,
        """\
        recipe: operator
        version: 1
        stations:
          bench: {slots: 1000}
        stages:
          - {id: inspect, step: manual.checklist, station: bench, with: {checks: [looks_right]}}
        """,
    )
    profile = _profile(
        tmp_path,
        flow,
        """\
        profile: one-operator
        arrivals: {rate_per_hour: 67.5}
        operators: {count: 1}
        defaults: {fail: 0}
        stages:
          inspect: {time: {exponential: 40}}
        """,
    )
    figures = simulate(flow, profile, units=200_000, seed=15).figures
    operators = figures["operators"]
    assert operators["slots"] == 1 and operators["visits"] == 200_000
    assert _within(operators["utilization"], 0.75, 0.02), operators
    assert _within(operators["mean_queue_s"], 120.0, 0.10), operators
    assert figures["stations"]["bench"]["mean_queue_s"] == 0.0


def test_batch_arrivals_on_fixed_times_give_exact_figures(tmp_path: Path) -> None:
    """Three units every 60 s on one slot taking exactly 15 s: nothing random, every figure known.

    In each batch the units wait 0, 15 and 30 s and leave after 15, 30 and 45 s; 100 batches end at
    99 x 60 + 45 = 5985 s, with 300 x 15 s of work and 100 x (3 + 2 + 1) x 15 unit-seconds of WIP.
    """
    flow = _recipe(tmp_path, ONE_STATION)
    profile = _profile(
        tmp_path,
        flow,
        """\
        profile: batches
        arrivals: {batch: {size: 3, every_s: 60}}
        defaults: {fail: 0}
        stages:
          work: {time: {fixed: 15}}
        """,
    )
    result = simulate(flow, profile, units=300, seed=0)
    figures = result.figures
    end = 99 * 60 + 45
    cell = figures["stations"]["cell"]
    assert cell["visits"] == 300
    assert cell["mean_queue_s"] == pytest.approx(15.0, abs=1e-3)
    assert cell["utilization"] == pytest.approx(300 * 15 / end, abs=1e-6)
    assert figures["hours"] == pytest.approx(end / 3600, abs=1e-4)
    assert figures["uph"] == pytest.approx(300 / (end / 3600), abs=1e-3)
    assert figures["wip"] == {"mean": pytest.approx(100 * 6 * 15 / end, abs=1e-3), "peak": 3}
    lead = figures["lead_time"]
    assert lead["mean_s"] == pytest.approx(30.0, abs=1e-3)
    assert lead["max_s"] == pytest.approx(45.0, abs=1e-3)
    assert lead["p50_s"] == pytest.approx(30.0, rel=0.006)  # the histogram's half-bin
    assert result.lead.count == 300


@pytest.mark.parametrize("breaks", [False, True], ids=["no-breaks", "breaks"])
def test_an_operators_breaks_hold_the_units_that_arrive_during_them(tmp_path: Path, breaks: bool) -> None:
    """One operator, a manual stage of exactly 10 s, a unit every 100 s: nothing random, every wait known.

    With a 300 s break every 1001 s, break k is due at 1001k, while the operator is busy with the unit
    that arrived at 1000k (until 1000k + 10): it starts then and ends at 1000k + 310. The units that
    arrive at 1000k + 100, 200 and 300 wait 210, 120 and 30 s. Nine breaks fall before the last unit
    (9900 s): 9 x 360 s of waiting over 100 operator visits. Without breaks nobody waits.
    """
    flow = _recipe(
        tmp_path,
        """        recipe: one-bench
        version: 1
        stations:
          bench: {slots: 100}
        stages:
          - {id: check, step: manual.checklist, station: bench, with: {checks: [screen]}}
        """,
    )
    rest = "  breaks: {every_s: 1001, for_s: 300}\n" if breaks else ""
    profile = _profile(
        tmp_path,
        flow,
        "profile: one-operator\narrivals: {batch: {size: 1, every_s: 100}}\ndefaults: {fail: 0, time: {fixed: 10}}\n"
        f"operators:\n  count: 1\n{rest}",
    )
    figures = simulate(flow, profile, units=100, seed=0).figures
    operators = figures["operators"]
    assert operators["visits"] == 100 and operators["slots"] == 1
    assert operators["mean_queue_s"] == pytest.approx(9 * 360 / 100 if breaks else 0.0, abs=1e-6)
    assert figures["lead_time"]["max_s"] == pytest.approx(220.0 if breaks else 10.0, abs=1e-6)
    assert figures["shipped"] == 100


def test_without_arrivals_units_come_at_90_percent_of_the_bottlenecks_capacity(tmp_path: Path) -> None:
    """No arrivals in the profile: a Poisson stream at 90% of the slowest station's capacity.

    The station's one stage takes a fixed 40 s, fails half its attempts and retries once: 1.5 attempts,
    60 s per unit on average, so the station is busy 90% of the time. Over 20k units the busy time
    and the arrival span each have a relative sd under 1% (binomial retries, exponential gaps):
    3% allowed.
    """
    flow = _recipe(
        tmp_path,
        """\
        recipe: default-arrivals
        version: 1
        stations:
          cell: {slots: 1}
        stages:
          - {id: work, step: device.connect, station: cell, retry: {max: 1}, on_fail: scrap}
        """,
    )
    profile = _profile(
        tmp_path,
        flow,
        """\
        profile: no-arrivals
        stages:
          work: {time: {fixed: 40}, fail: 0.5}
        """,
    )
    figures = simulate(flow, profile, units=20_000, seed=14).figures
    assert _within(figures["stations"]["cell"]["utilization"], 0.9, 0.03), figures["stations"]


# -- arrivals against capacity ---------------------------------------------------------------------

TWO_SLOTS = """\
    recipe: two-slots
    version: 1
    stations:
      cell: {slots: 2}
    stages:
      - {id: work, step: device.connect, station: cell}
"""


def _two_slots(tmp_path: Path, rate: float) -> dict[str, Any]:
    """The two-slot line fed ``rate`` units/h, each unit a fixed 60 s at its one station."""
    flow = _recipe(tmp_path, TWO_SLOTS)
    profile = _profile(
        tmp_path,
        flow,
        f"""\
        profile: fed-{rate}
        arrivals: {{rate_per_hour: {rate}}}
        defaults: {{fail: 0}}
        stages:
          work: {{time: {{fixed: 60}}}}
        """,
    )
    return simulate(flow, profile, units=300, seed=31).figures


def test_the_line_capacity_is_the_slowest_stations_slots_over_its_time_per_unit(tmp_path: Path) -> None:
    """One station, two slots, a fixed 60 s stage: 2 x 3600 / 60 = 120 units/h, worked by hand."""
    figures = _two_slots(tmp_path, 90)
    assert figures["stations"]["cell"]["capacity_per_hour"] == 120.0
    assert figures["capacity_per_hour"] == 120.0 and figures["capacity_station"] == "cell"
    assert figures["arrival_rate_per_hour"] == 90.0


@pytest.mark.parametrize("rate", [119, 120])
def test_arrivals_within_capacity_give_no_warning(tmp_path: Path, rate: int) -> None:
    """Up to the capacity, exactly 120 units/h included, the queue figures are a steady state's: no warning."""
    assert _two_slots(tmp_path, rate)["warnings"] == []


def test_arrivals_past_capacity_are_warned_with_the_figures(tmp_path: Path) -> None:
    """121 units/h into a line that takes 120: the warning names both rates and the station that limits it."""
    figures = _two_slots(tmp_path, 121)
    assert figures["warnings"] == [
        "arrivals (121 units/h) exceed the line's capacity (120 units/h, bottleneck: station 'cell'): queues grow "
        "without bound for as long as the simulation runs; the queue figures describe this run's length, not a "
        "steady state"
    ]


def test_each_stage_reports_the_wait_for_a_slot_before_it(tmp_path: Path) -> None:
    """Batches of 4 every 240 s into two slots of a fixed 60 s: in each batch two start at once and two
    wait 60 s, so the mean wait is 30 s and the 95th percentile 60 s, exactly."""
    flow = _recipe(tmp_path, TWO_SLOTS)
    profile = _profile(
        tmp_path,
        flow,
        """\
        profile: batches
        arrivals: {batch: {size: 4, every_s: 240}}
        defaults: {fail: 0}
        stages:
          work: {time: {fixed: 60}}
        """,
    )
    work = simulate(flow, profile, units=400, seed=32).figures["stages"]["work"]
    assert work["queued"] == 400
    assert work["queue_mean_s"] == 30.0
    assert abs(work["queue_p95_s"] - 60.0) <= 0.006 * 60, work


# -- yields ------------------------------------------------------------------------------------------

YIELDS = """\
    recipe: yields
    version: 1
    stations:
      front: {slots: 2}
      back: {slots: 2}
    stages:
      - {id: a, step: device.connect, station: front}
      - {id: b, step: device.record_id, station: front, retry: {max: 2}, on_fail: scrap}
      - {id: c, step: manual.checklist, station: back, with: {checks: [seated]}, retry: {max: 1}}
      - {id: d, step: device.record_id, station: back}
"""
FAIL = {"a": 0.05, "b": 0.3, "c": 0.2, "d": 0.1}
RETRIES = {"a": 0, "b": 2, "c": 1, "d": 0}


def _attempts_mean_var(p: float, retries: int) -> tuple[float, float]:
    """Mean and variance of the attempts one unit makes at a stage: up to retries + 1, until a pass."""
    chances = [p ** (k - 1) * (1 - p) for k in range(1, retries + 1)] + [p**retries]
    mean = sum(k * c for k, c in enumerate(chances, start=1))
    return mean, sum(k * k * c for k, c in enumerate(chances, start=1)) - mean**2


def test_yields_and_attempts_match_their_closed_forms(tmp_path: Path) -> None:
    """Four stages on two stations (two in a row at each, one manual) failing with p_i, some retried, scrap after.

    Closed forms: first-pass yield = rolled throughput yield = prod(1 - p_i); shipped share
    prod(1 - p_i^(r_i+1)); each stage's first-pass yield 1 - p_i over its first attempts n_i, its final
    yield 1 - p_i^(r_i+1), and its attempts n_i x E[attempts per unit]. 100k units; each tolerance is
    4 standard errors: binomial for the shares, the delta method for the product of stage yields
    (sum p_i/((1 - p_i) n_i) relative variance), and n_i x Var[attempts per unit] for attempt counts.
    """
    flow = _recipe(tmp_path, YIELDS)
    stages = "\n".join(f"  {sid}: {{fail: {p}}}" for sid, p in FAIL.items())
    profile = _profile(
        tmp_path, flow, f"profile: yields\ndefaults: {{fail: 0, time: {{fixed: 10}}}}\nstages:\n{stages}\n"
    )
    units = 100_000
    figures = simulate(flow, profile, units=units, seed=21).figures

    first_pass = math.prod(1 - p for p in FAIL.values())
    shipped = math.prod(1 - p ** (RETRIES[s] + 1) for s, p in FAIL.items())
    assert figures["units"] == units
    assert figures["shipped"] + figures["scrapped"] == units and figures["held"] == figures["refused"] == 0
    assert abs(figures["shipped"] / units - shipped) <= 4 * _binomial_se(shipped, units), figures
    assert abs(figures["first_pass_yield"] - first_pass) <= 4 * _binomial_se(first_pass, units), figures

    by_stage = figures["stages"]
    rty_rel_se = math.sqrt(sum(p / ((1 - p) * by_stage[s]["first_attempts"]) for s, p in FAIL.items()))
    assert abs(figures["rolled_throughput_yield"] - first_pass) <= 4 * first_pass * rty_rel_se, figures
    reach = 1.0
    for sid, p in FAIL.items():
        stage = by_stage[sid]
        n = stage["first_attempts"]
        # A unit reaches a stage when it got through every stage before it: binomial, 4 sd.
        assert abs(n - units * reach) <= 4 * units * _binomial_se(reach, units), (sid, stage, reach)
        assert abs(stage["first_pass_yield"] - (1 - p)) <= 4 * _binomial_se(p, n), (sid, stage)
        final = 1 - p ** (RETRIES[sid] + 1)  # passed in the end, its retries included
        assert abs(stage["final_yield"] - final) <= 4 * _binomial_se(final, n), (sid, stage)
        mean, var = _attempts_mean_var(p, RETRIES[sid])
        assert abs(stage["attempts"] - n * mean) <= 4 * math.sqrt(n * var), (sid, stage)
        reach *= 1 - p ** (RETRIES[sid] + 1)


def test_rework_loop_scraps_after_max_visits(tmp_path: Path) -> None:
    """A stage failing with p = 0.4 goes to a rework bench (max_visits 2) and back; the third failure scraps.

    Closed forms per unit: shipped 1 - p^3, rework visits p + p^2, attempts of the stage 1 + p + p^2,
    the reworked stage's first-pass yield 1 - p counted over every entry. 50k units; 4 standard errors
    (binomial for the share; the sd of visits per unit, from {0: 1 - p, 1: p(1 - p), 2: p^2}, for counts).
    """
    flow = _recipe(
        tmp_path,
        """\
        recipe: rework-loop
        version: 1
        stations:
          test: {slots: 1}
          bench: {slots: 1}
        stages:
          - {id: probe, step: device.connect, station: test, on_fail: fix}
          - {id: label, step: device.record_id, station: test}
        rework:
          - {id: fix, step: manual.checklist, station: bench, with: {checks: [reseated]}, then: probe, max_visits: 2}
        """,
    )
    profile = _profile(
        tmp_path, flow, "profile: rework\ndefaults: {fail: 0, time: {fixed: 5}}\nstages:\n  probe: {fail: 0.4}\n"
    )
    units, p = 50_000, 0.4
    figures = simulate(flow, profile, units=units, seed=22).figures
    shipped = 1 - p**3
    assert figures["shipped"] + figures["scrapped"] == units
    assert abs(figures["shipped"] / units - shipped) <= 4 * _binomial_se(shipped, units), figures
    visits = {0: 1 - p, 1: p * (1 - p), 2: p * p}
    mean = sum(k * c for k, c in visits.items())
    sd = math.sqrt(sum(k * k * c for k, c in visits.items()) - mean**2)
    stages = figures["stages"]
    assert abs(stages["fix"]["attempts"] - units * mean) <= 4 * sd * math.sqrt(units), stages
    assert abs(stages["probe"]["attempts"] - units * (1 + mean)) <= 4 * sd * math.sqrt(units), stages
    assert stages["probe"]["attempts"] == units + stages["fix"]["attempts"]  # every rework passes, back to probe
    assert stages["probe"]["attempts"] == stages["probe"]["first_attempts"]  # no retries: every entry is a first
    n = stages["probe"]["first_attempts"]
    assert abs(stages["probe"]["first_pass_yield"] - (1 - p)) <= 4 * _binomial_se(p, n), stages
    assert stages["fix"]["first_pass_yield"] == 1.0
    assert stages["label"]["first_attempts"] == figures["shipped"]
    assert figures["stations"]["bench"]["visits"] == stages["fix"]["attempts"]


LIFECYCLE_REWORK = """\
    recipe: lifecycle-rework
    version: 1
    lifecycle: [Built, Tested, Shipped]  # Tested is not final: stages may follow it
    stations:
      cell: {slots: 2}
      bench: {slots: 1}
    stages:
      - {id: connect, step: device.connect, station: cell, allowed_until: Tested}
      - {id: promote, step: lifecycle.advance, station: cell, with: {to: Tested}}
      - {id: check, step: device.record_id, station: cell, on_fail: fix}
    rework:
      - {id: fix, step: manual.checklist, station: bench, with: {checks: [reseated]}, then: connect, max_visits: 2}
"""
"""Rework sends a Tested unit back to a stage allowed until Tested: the checker only warns, the lifecycle
rule refuses such a unit there (a recipe problem the simulation finds)."""


def test_a_guard_refusing_a_unit_is_a_recipe_problem(tmp_path: Path) -> None:
    """The checker only warns that rework can send a Tested unit back to a stage allowed until Tested;
    the simulation meets it on every unit whose check fails (p = 0.2): each is refused by the
    lifecycle rule at that stage, reported as one recipe problem. 10k units, 4 binomial sd."""
    flow = _recipe(tmp_path, LIFECYCLE_REWORK)
    profile = _profile(
        tmp_path, flow, "profile: refusals\ndefaults: {fail: 0, time: {fixed: 5}}\nstages:\n  check: {fail: 0.2}\n"
    )
    units = 10_000
    figures = simulate(flow, profile, units=units, seed=24).figures
    refused = figures["refused"]
    assert abs(refused / units - 0.2) <= 4 * _binomial_se(0.2, units), figures
    assert figures["shipped"] == units - refused and figures["scrapped"] == figures["held"] == 0
    [problem] = figures["recipe_problems"]
    assert (problem["stage"], problem["rule"], problem["units"]) == ("connect", "lifecycle", refused), problem
    assert "allowed until Tested" in problem["reason"]
    assert figures["stages"]["fix"]["attempts"] == refused  # each went through rework before it was refused


def test_a_sampled_stage_failed_then_passed_on_retry_is_not_first_pass(tmp_path: Path) -> None:
    """First-pass yield is the share of units that shipped without a single failed attempt
    (docs/simulate.md), whichever stage failed: here a sampled stage (every unit sampled) that fails
    30% of its attempts and is retried once, after a stage failing 10%. Expected (1 - 0.1)(1 - 0.3)
    = 0.63, the rolled throughput yield's value; shipped is 0.9 x (1 - 0.3^2) = 0.819. 20k units, 4
    binomial standard errors."""
    flow = _recipe(
        tmp_path,
        """\
        recipe: sampled-retry
        version: 1
        stations:
          cell: {slots: 1}
        stages:
          - {id: connect, step: device.connect, station: cell}
          - id: audit
            step: device.record_id
            station: cell
            retry: {max: 1}
            sampling: {rate: 1}
        """,
    )
    profile = _profile(
        tmp_path,
        flow,
        """\
        profile: audit
        defaults: {fail: 0, time: {fixed: 10}}
        stages:
          connect: {fail: 0.1}
          audit: {fail: 0.3}
        """,
    )
    units = 20_000
    figures = simulate(flow, profile, units=units, seed=23).figures
    assert abs(figures["shipped"] / units - 0.819) <= 4 * _binomial_se(0.819, units), figures
    stages = figures["stages"]
    rty_rel_se = math.sqrt(
        sum(p / ((1 - p) * stages[s]["first_attempts"]) for s, p in (("connect", 0.1), ("audit", 0.3)))
    )
    assert abs(figures["rolled_throughput_yield"] - 0.63) <= 4 * 0.63 * rty_rel_se, figures
    assert abs(figures["first_pass_yield"] - 0.63) <= 4 * _binomial_se(0.63, units), figures


def test_units_of_a_held_lot_are_counted_apart_from_first_pass_yield(tmp_path: Path) -> None:
    """phone-wim with nothing failing but sample_test, which always fails: lots go on hold at their
    second sampled failure, and their units stop. Every shipped unit passed everything first time, so
    first-pass yield is shipped / (shipped + scrapped): held units are not failures and not counted."""
    flow = _seed_flow("phone-wim")
    profile = _profile(tmp_path, flow, "profile: held\ndefaults: {fail: 0}\nstages:\n  sample_test: {fail: 1}\n")
    figures = simulate(flow, profile, units=1500, seed=5).figures
    assert figures["held"] > 0 and figures["scrapped"] > 0 and figures["refused"] == 0, figures
    assert figures["first_pass_yield"] == round(figures["shipped"] / (figures["shipped"] + figures["scrapped"]), 6)


# -- the profile: distributions and precedence ----------------------------------------------------------------

NO_QUEUE = """\
    recipe: no-queue
    version: 1
    stations:
      cell: {slots: 10000}
    stages:
      - {id: work, step: device.connect, station: cell}
"""


_LOGNORMAL_SIGMA = math.sqrt(math.log1p((15 / 90) ** 2))
_LOGNORMAL_MEDIAN = 90 / math.sqrt(1 + (15 / 90) ** 2)
_Z90 = 1.2815516
"""The standard normal's 90th percentile."""


@pytest.mark.parametrize(
    ("time", "mean", "sd", "quantiles"),
    [
        # lognormal with mean m and sd s: sigma^2 = ln(1 + s^2/m^2), median m/sqrt(1 + s^2/m^2),
        # p90 median * exp(z90 sigma); density phi(z)/(x sigma)
        (
            "{lognormal: {mean: 90, sd: 15}}",
            90.0,
            15.0,
            {
                0.5: (_LOGNORMAL_MEDIAN, 0.3989423 / (_LOGNORMAL_MEDIAN * _LOGNORMAL_SIGMA)),
                0.9: (
                    _LOGNORMAL_MEDIAN * math.exp(_Z90 * _LOGNORMAL_SIGMA),
                    0.1754983 / (_LOGNORMAL_MEDIAN * math.exp(_Z90 * _LOGNORMAL_SIGMA) * _LOGNORMAL_SIGMA),
                ),
            },
        ),
        # triangular [10, 20, 40]: mean 70/3, variance (a^2 + b^2 + c^2 - ab - ac - bc)/18 = 700/18;
        # above the mode (where the CDF is 1/3) the CDF is 1 - (40 - x)^2/600, the density (40 - x)/300
        (
            "{triangular: [10, 20, 40]}",
            70 / 3,
            math.sqrt(700 / 18),
            {q: (40 - math.sqrt((1 - q) * 600), math.sqrt((1 - q) * 600) / 300) for q in (0.5, 0.9)},
        ),
        ("{exponential: 25}", 25.0, 25.0, {q: (-25 * math.log(1 - q), (1 - q) / 25) for q in (0.5, 0.9)}),
    ],
    ids=["lognormal", "triangular", "exponential"],
)
def test_time_distributions_are_the_profiles(
    tmp_path: Path, time: str, mean: float, sd: float, quantiles: dict[float, tuple[float, float]]
) -> None:
    """With more slots than units ever wait for, a unit's time in the line is its one attempt's time.

    20k units: the mean within 4 standard errors (sd/sqrt(n)); the median and p90 within 4 standard
    errors of a sample quantile (sqrt(q(1 - q)/n) / density there) plus the histogram's half-bin (0.6%).
    """
    flow = _recipe(tmp_path, NO_QUEUE)
    profile = _profile(tmp_path, flow, f"profile: times\ndefaults: {{fail: 0}}\nstages:\n  work: {{time: {time}}}\n")
    units = 20_000
    figures = simulate(flow, profile, units=units, seed=31).figures
    assert figures["stations"]["cell"]["mean_queue_s"] == 0.0
    lead = figures["lead_time"]
    assert abs(lead["mean_s"] - mean) <= 4 * sd / math.sqrt(units), lead
    for q, (value, density) in quantiles.items():
        tolerance = 4 * math.sqrt(q * (1 - q) / units) / density + 0.006 * value
        assert abs(lead[f"p{round(q * 100)}_s"] - value) <= tolerance, (q, value, tolerance, lead)


def test_profile_precedence_stage_over_step_over_defaults_over_the_shipped_profile(tmp_path: Path) -> None:
    """A stage's own figure wins over its step type's, which wins over the profile's defaults, which
    win over the shipped default profile; a measurement's chance fails an attempt on its own. Checked
    on the loaded profile, then in the simulation's stage yields (20k units, 4 binomial sd)."""
    flow = _recipe(
        tmp_path,
        """\
        recipe: precedence
        version: 1
        stations:
          cell: {slots: 4}
        stages:
          - {id: own, step: device.connect, station: cell}
          - {id: by_step, step: device.connect, station: cell}
          - {id: by_default, step: device.record_id, station: cell}
          - {id: measured, step: device.record_id, station: cell}
          - {id: label, step: label.print, station: cell}
        """,
    )
    profile = _profile(
        tmp_path,
        flow,
        """\
        profile: precedence
        defaults:
          fail: 0.05
        steps:
          device.connect: {fail: 0.1, time: {fixed: 7}}
        stages:
          own: {fail: 0.3}
          measured:
            measurements: {rssi_dbm: 0.2}
          label: {time: {fixed: 2}}
        """,
    )
    stages = flow.stages
    # label.print has no entry in this profile: its fail comes from this profile's defaults (0.05),
    # not the shipped profile's label.print (0.002); its time is the stage's own.
    expected = {"own": 0.3, "by_step": 0.1, "by_default": 0.05, "measured": 1 - 0.95 * 0.8, "label": 0.05}
    for sid, chance in expected.items():
        assert profile.fail_of(stages[sid]) == pytest.approx(chance, abs=1e-12), sid
    assert profile.time_of(stages["own"]).mean == 7.0  # the step's time: the stage names none
    assert profile.time_of(stages["label"]).mean == 2.0
    # device.record_id's time comes from the shipped default profile ({fixed: 5}): this one names none.
    assert profile.time_of(stages["by_default"]).kind == "fixed" and profile.time_of(stages["by_default"]).mean == 5
    bare = _profile(tmp_path, flow, "profile: bare\n", name="bare.yaml")
    assert bare.fail_of(stages["label"]) == pytest.approx(0.002)  # shipped: label.print
    assert bare.fail_of(stages["own"]) == pytest.approx(0.003)  # shipped: device.connect

    figures = simulate(flow, profile, units=20_000, seed=32).figures
    for sid, chance in expected.items():
        stage = figures["stages"][sid]
        assert abs(stage["first_pass_yield"] - (1 - chance)) <= 4 * _binomial_se(chance, stage["first_attempts"]), sid


# -- the seed recipes under the shipped profile ----------------------------------------------------------


@pytest.mark.parametrize("name", SEED_RECIPES)
def test_every_seed_recipe_runs_under_the_default_profile(name: str) -> None:
    """Every unit started ends one way; no recipe problem; the busiest station is one of the recipe's."""
    flow = _seed_flow(name)
    units = 2000
    result = simulate(flow, load_profile(None, flow), units=units, seed=41)
    figures = result.figures
    assert figures["units"] == units
    assert figures["shipped"] + figures["scrapped"] + figures["held"] + figures["refused"] == units
    assert figures["refused"] == 0 and figures["recipe_problems"] == []
    assert figures["bottleneck"] in flow.stations
    busiest = max(s["utilization"] for s in figures["stations"].values())
    assert figures["stations"][figures["bottleneck"]]["utilization"] == busiest
    assert all(0 <= s["utilization"] <= 1 for s in figures["stations"].values()), figures["stations"]
    assert 0 < figures["uph"] == pytest.approx(figures["shipped"] / figures["hours"], rel=1e-3)
    assert 0 < figures["first_pass_yield"] <= 1 and 0 < figures["rolled_throughput_yield"] <= 1
    assert figures["first_pass_yield"] <= figures["shipped"] / units
    lead = figures["lead_time"]
    assert 0 < lead["p50_s"] <= lead["p90_s"] <= lead["p95_s"] <= lead["p99_s"] <= lead["max_s"]
    assert result.lead.count == figures["shipped"]
    assert figures["wip"]["peak"] >= 1 and 0 < figures["wip"]["mean"] <= figures["wip"]["peak"]
    # Every unit starts with the first route stage (no rework leads back to it in these recipes).
    first = flow.route[0]
    assert isinstance(first, str) and figures["stages"][first]["first_attempts"] == units


# -- determinism ------------------------------------------------------------------------------------

_FIGURES_SCRIPT = """\
import json, sys
from pathlib import Path
from engine.recipe.check import load_flow
from engine.registry import Registry
from engine.simulate import load_profile, simulate
flow = load_flow(Path(sys.argv[1]), Registry.discover())
print(json.dumps(simulate(flow, load_profile(None, flow), units=int(sys.argv[2]), seed=int(sys.argv[3])).figures))
"""


def test_same_seed_same_figures_other_seed_other_figures() -> None:
    """phone-wim (retries, rework, sampling, holds): a seed's figures are the same every time, in this
    process and in others whose string hashing differs; another seed's are not."""
    flow = _seed_flow("phone-wim")
    profile = load_profile(None, flow)
    first = simulate(flow, profile, units=3000, seed=7).figures
    assert simulate(flow, profile, units=3000, seed=7).figures == first
    other = simulate(flow, profile, units=3000, seed=8).figures
    assert other != first
    assert other["lead_time"] != first["lead_time"] and other["stations"] != first["stations"]
    for hash_seed in ("1", "4242"):
        run = subprocess.run(
            [sys.executable, "-c", _FIGURES_SCRIPT, str(WORKFLOWS / "phone-wim.yaml"), "3000", "7"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            check=True,
        )
        assert json.loads(run.stdout) == first, f"PYTHONHASHSEED={hash_seed}"


# -- sampling and holds ----------------------------------------------------------------------------


def test_failing_samples_put_lots_on_hold(tmp_path: Path) -> None:
    """phone-wim's sample_test (Z1.4 level II, AQL 1.0, lots of 500: code H, 50 sampled, Re = 2)
    failing half its units puts lots on hold at their second failure; units of a held lot are
    stopped before they ship, so held units belong to held lots (at most 500 each)."""
    flow = _seed_flow("phone-wim")
    units = 3000
    profile = _profile(tmp_path, flow, "profile: bad-samples\nstages:\n  sample_test: {fail: 0.5}\n")
    figures = simulate(flow, profile, units=units, seed=51).figures
    holds = figures["holds"]
    assert holds, figures
    for hold in holds:
        assert set(hold) >= {"lot", "stage", "failures", "threshold", "at_s"}
        assert hold["stage"] == "sample_test" and hold["threshold"] == 2 and hold["failures"] == 2, hold
        assert 0 <= int(hold["lot"].removeprefix("LOT")) < units // 500, hold
        assert 0 < hold["at_s"] <= figures["hours"] * 3600 + 1
    assert len({hold["lot"] for hold in holds}) == len(holds)
    assert [hold["at_s"] for hold in holds] == sorted(hold["at_s"] for hold in holds)
    assert 0 < figures["held"] <= 500 * len(holds)
    assert figures["shipped"] + figures["scrapped"] + figures["held"] + figures["refused"] == units
    assert figures["recipe_problems"] == []


def test_passing_samples_hold_nothing_and_sample_fifty_in_five_hundred(tmp_path: Path) -> None:
    """With sample_test never failing, no lot is held; the share of shipped units that were sampled
    is Z1.4's 50 of 500 (4 binomial sd at ~4700 shipped units, ±0.018), and unsampled units never
    visit the sampling station."""
    flow = _seed_flow("phone-wim")
    units = 5000
    profile = _profile(tmp_path, flow, "profile: good-samples\nstages:\n  sample_test: {fail: 0}\n")
    figures = simulate(flow, profile, units=units, seed=52).figures
    assert figures["holds"] == [] and figures["held"] == 0
    sampled = figures["stages"]["sample_test"]["first_attempts"]
    shipped = figures["shipped"]
    assert abs(sampled / shipped - 0.1) <= 4 * _binomial_se(0.1, shipped), (sampled, shipped)
    assert figures["stations"]["sample_test"]["visits"] == sampled


# -- profile mistakes, at file:line:col --------------------------------------------------------------

PROFILE_RECIPE = """\
    recipe: profile-checks
    version: 1
    stations:
      fixture: {slots: 2}
      rf: {slots: 1}
    stages:
      - {id: connect, step: device.connect, station: fixture}
      - {id: record, step: device.record_id, station: rf}
"""


@pytest.mark.parametrize(
    ("text", "line", "code", "message"),
    [
        (
            "profile: typo\ndefaults:\n  fail: 0.01\n  tme: {fixed: 5}\n",
            4,
            "schema-unknown-key",
            "unknown key 'tme' in defaults (did you mean 'time'?)",
        ),
        (
            "profile: triangle\nsteps:\n  device.connect:\n    fail: 0.01\n    time:\n      triangular: [30, 20, 40]\n",
            6,
            "profile-triangular",
            "[min, mode, max] with min <= mode <= max, not [30, 20, 40]",
        ),
        (
            "profile: stages\nstages:\n  connect: {fail: 0.1}\n  conect: {fail: 0.2}\n",
            4,
            "profile-unknown-stage",
            "recipe profile-checks has no stage 'conect' (did you mean 'connect'?)",
        ),
        (
            "profile: stations\nstations:\n  fixture: {slots: 2}\n  rf: {slots: 2}\n  fixtrue: {slots: 3}\n",
            5,
            "profile-unknown-station",
            "recipe profile-checks has no station 'fixtrue' (did you mean 'fixture'?)",
        ),
        (
            "profile: probability\nstages:\n  record:\n    time: {fixed: 5}\n    fail: 1.5\n",
            5,
            "schema-maximum",
            "1.5 is greater than the maximum of 1",
        ),
        (
            "profile: steps\nsteps:\n  device.connect: {fail: 0.1}\n  rf.meassure: {fail: 0.2}\n",
            4,
            "profile-unknown-step",
            "no step type is called 'rf.meassure' (did you mean 'rf.measure'?)",
        ),
    ],
    ids=["unknown-key", "triangular-order", "unknown-stage", "unknown-station", "probability", "unknown-step"],
)
def test_profile_mistakes_are_reported_at_their_line(
    tmp_path: Path, text: str, line: int, code: str, message: str
) -> None:
    flow = _recipe(tmp_path, PROFILE_RECIPE)
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path, flow)
    [problem] = caught.value.diagnostics
    assert (problem.pos.file, problem.pos.line, problem.code) == (str(path), line, code), problem
    assert message in problem.message
    assert f"{path}:{line}:" in str(caught.value)


def test_every_profile_mistake_is_reported_at_once(tmp_path: Path) -> None:
    """An unknown stage and an unknown station in one profile: both, each at its own line."""
    flow = _recipe(tmp_path, PROFILE_RECIPE)
    path = tmp_path / "profile.yaml"
    path.write_text("profile: two\nstages:\n  recrod: {fail: 0.1}\nstations:\n  rff: {slots: 2}\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(path, flow)
    found = sorted((d.pos.line, d.code) for d in caught.value.diagnostics)
    assert found == [(3, "profile-unknown-stage"), (5, "profile-unknown-station")]


@pytest.mark.parametrize(
    ("text", "line", "code"),
    [
        ("profile: broken\nstages:\n  connect: {fail: 0.1}\n  record: fail: 0.2\n", 4, "yaml-syntax"),
        ("profile: twice\ndefaults:\n  fail: 0.1\n  fail: 0.2\n", 4, "yaml-duplicate-key"),
    ],
    ids=["yaml-syntax", "duplicate-key"],
)
def test_profile_that_is_not_yaml_is_a_syntax_error_at_its_line(
    tmp_path: Path, text: str, line: int, code: str
) -> None:
    flow = _recipe(tmp_path, PROFILE_RECIPE)
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    with pytest.raises(RecipeSyntaxError) as caught:
        load_profile(path, flow)
    problem = caught.value.diagnostics[0]
    assert (problem.pos.file, problem.pos.line, problem.code) == (str(path), line, code), problem


# -- streaming statistics ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["exponential", "lognormal"])
def test_histogram_quantiles_match_numpy(kind: str) -> None:
    """100k draws: every percentile within 1% of numpy's (the histogram's bins are 0.6% half-wide;
    ranks between order statistics move a quantile far less at this size); count, mean and largest exact."""
    rng = np.random.default_rng(61)
    values = rng.exponential(120.0, 100_000) if kind == "exponential" else rng.lognormal(3.0, 1.5, 100_000)
    values = values[values > Histogram.LOW]  # below LOW everything shares the first bin, as documented
    histogram = Histogram()
    for value in values.tolist():
        histogram.add(value)
    assert histogram.count == len(values)
    assert histogram.mean == pytest.approx(float(values.mean()), rel=1e-9)
    assert histogram.largest == float(values.max())
    for q in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999):
        assert _within(histogram.quantile(q), float(np.percentile(values, 100 * q)), 0.01), q
    assert histogram.quantile(1.0) <= histogram.largest
    assert sum(count for _, _, count in histogram.bins()) == len(values)


def test_histogram_percentiles_among_zeros_are_zero() -> None:
    """Waits for a free slot are 0 s: a percentile that falls among them is exactly 0, not a bin's middle."""
    histogram = Histogram()
    for value in [0.0] * 96 + [10.0] * 4:
        histogram.add(value)
    assert histogram.quantile(0.95) == 0.0 and histogram.quantile(0.0) == 0.0
    assert abs(histogram.quantile(0.99) - 10.0) <= 0.006 * 10 and histogram.mean == 0.4


def test_level_time_average_and_samples_of_a_known_step_function() -> None:
    """Level 1 on [0.5, 2.5), 3 on [2.5, 5.5), 2 on [5.5, 9.5), then 0: time average over [0, 10]
    is (2 + 9 + 8) / 10, the peak 3, and the samples every second read the step function."""
    level = Level(keep=100, spacing=1.0)
    for at, by in ((0.5, 1), (2.5, 2), (5.5, -1), (9.5, -2)):
        level.change(at, by)
    assert level.mean(10.0) == pytest.approx(1.9, abs=1e-12)
    assert level.peak == 3
    assert level.samples == [(float(t), v) for t, v in enumerate([0, 1, 1, 3, 3, 3, 2, 2, 2, 2])]


def test_level_keeps_at_most_keep_samples_evenly_spaced_and_its_average_exact() -> None:
    """50k random changes: never more than ``keep`` samples, evenly spaced, each the level at its time,
    spanning the whole run; the time average equals the one integrated independently with numpy."""
    rng = np.random.default_rng(62)
    times = np.cumsum(rng.exponential(1.0, 50_000))
    steps = rng.choice([-1, 1], size=50_000)
    steps[0] = 1
    keep = 64
    level = Level(keep=keep, spacing=0.5)
    running = 0
    levels_list: list[int] = []
    for at, by in zip(times.tolist(), steps.tolist(), strict=True):
        level.change(at, by)
        running += by
        levels_list.append(running)
        assert len(level.samples) <= keep
    levels = np.array(levels_list)
    until = float(times[-1]) + 3.0
    area = float(np.sum(levels[:-1] * np.diff(times))) + levels[-1] * 3.0
    assert level.mean(until) == pytest.approx(area / until, rel=1e-9)
    assert level.peak == int(levels.max())
    at = np.array([t for t, _ in level.samples])
    gaps = np.diff(at)
    assert np.allclose(gaps, gaps[0]), "samples are evenly spaced"
    assert at[-1] >= times[-1] - gaps[0] and len(level.samples) >= keep // 2
    # The level at a sample's time: the last change strictly before it (none at 0).
    index = np.searchsorted(times, at, side="left") - 1
    expected = np.where(index >= 0, levels[np.maximum(index, 0)], 0)
    assert [v for _, v in level.samples] == expected.tolist()


# -- memory ------------------------------------------------------------------------------------------


def test_no_per_unit_record_is_kept(tmp_path: Path) -> None:
    """50k phone-wim units: a few dozen unit states (the route table's, not one per unit), a WIP series
    within the profile's wip_samples that spans the run, a lead-time histogram of bounded bins."""
    flow = _seed_flow("phone-wim")
    profile = _profile(tmp_path, flow, "profile: thin\nwip_samples: 64\n")
    result = simulate(flow, profile, units=50_000, seed=71)
    figures = result.figures
    assert figures["units"] == 50_000
    assert figures["unit_states"] < 1000
    assert 32 <= len(result.wip) <= 64
    end = figures["hours"] * 3600
    assert result.wip[-1][0] >= 0.9 * end  # thinned evenly, not cut off
    assert len(result.lead.bins()) < 2000  # 200 bins a decade: lead times span under ten decades
    assert result.lead.count == figures["shipped"]


def test_peak_memory_does_not_grow_with_units(tmp_path: Path) -> None:
    """The traced peak while simulating 50k units is within 30% of the peak for 10k (measured: ~7%).
    A record of even 8 bytes per unit would add 320 kB to a ~560 kB peak and fail this."""
    flow = _recipe(tmp_path, ONE_STATION)
    profile = _profile(
        tmp_path,
        flow,
        """\
        profile: light
        arrivals: {rate_per_hour: 45}
        defaults: {fail: 0}
        stages:
          work: {time: {exponential: 40}}
        """,
    )
    simulate(flow, profile, units=1000, seed=0)  # imports and caches first
    peaks = {}
    for units in (10_000, 50_000):
        gc.collect()
        tracemalloc.start()
        try:
            simulate(flow, profile, units=units, seed=72)
            peaks[units] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peaks[50_000] < 1.3 * peaks[10_000], peaks


# -- bench/simulate.py's judgement of equivalence ------------------------------------------------------


def _bench_simulate(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # for its plain model, bench/plainsimpy.py
    spec = importlib.util.spec_from_file_location("bench_simulate", ROOT / "bench" / "simulate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("p", "df", "table"), [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 9, 2.262), (0.995, 30, 2.750)]
)
def test_bench_t_quantile_matches_the_printed_tables(
    p: float, df: float, table: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's Student's t quantile agrees with the printed tables to their three decimals."""
    assert _bench_simulate(monkeypatch).t_quantile(p, df) == pytest.approx(table, abs=6e-4)


def test_bench_calls_the_plain_simpy_model_the_same_line_and_a_slower_one_different(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replications of floorflow and of the plain SimPy model (seeds 1-5, 3000 phones) agree on UPH and
    every station's utilization by the benchmark's rule; with every plain stage 10% slower they do not."""
    bench = _bench_simulate(monkeypatch)
    plain = sys.modules["plainsimpy"]
    flow = _seed_flow("phone-wim")
    profile = load_profile(None, flow)
    gap = LineModel(flow, profile, 3000, 1).mean_gap
    seeds = range(1, 6)
    ours = [bench.floorflow_key_figures(simulate(flow, profile, 3000, seed).figures) for seed in seeds]
    theirs = [plain.PlainLine(flow, profile, 3000, seed, gap).run() for seed in seeds]
    compared, level = bench.equivalence(ours, theirs)
    assert set(compared) == {"uph", *(f"utilization {name}" for name in profile.slots(flow))}
    assert level == pytest.approx(1 - 0.05 / len(compared))
    assert all(c.same for c in compared.values()), compared

    timer = plain.timer

    def slower_timer(timing: Any, rng: Any) -> Any:
        draw = timer(timing, rng)
        return lambda: 1.1 * draw()

    monkeypatch.setattr(plain, "timer", slower_timer)
    slower = [plain.PlainLine(flow, profile, 3000, seed, gap).run() for seed in seeds]
    compared, _ = bench.equivalence(ours, slower)
    assert not compared["utilization rf"].same and not compared["utilization smt"].same
