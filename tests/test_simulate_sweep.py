"""`floorflow simulate --replications N` and what-if sweeps (`--vary`, `--target-uph`, `--jobs`, `--plot`).

The interval is checked against a hand-worked example; replications against their seeds; `--vary`
against good and bad input; a sweep over the RF station's slots against what more testers must do;
the choice against the rule (the fewest resources whose UPH interval's low end reaches the target).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from test_simulate_cli import simulate_cli

from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.simulate import load_profile
from engine.simulate.replicate import interval, replication_seeds, summarize
from engine.simulate.sweep import (
    Line,
    Scenario,
    SweepError,
    apply,
    choose,
    grid,
    parse_values,
    parse_vary,
    resources,
    run_scenarios,
)

ROOT = Path(__file__).resolve().parent.parent
MODULE = str(ROOT / "workflows/sphere-module.yaml")
SWEEP_RF = str(ROOT / "tests/profiles/sweep-rf.yaml")
PHONE = str(ROOT / "workflows/phone-wim.yaml")
PHONE_LINE = str(ROOT / "workflows/profiles/phone-line.yaml")
PNG = b"\x89PNG\r\n\x1a\n"
T_975_2 = 4.302652729911275
"""Student's t, 97.5th percentile, 2 degrees of freedom (from a printed table: 4.303)."""


def _sweep(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, _ = simulate_cli(capsys, MODULE, "--units", "300", "--profile", SWEEP_RF, "--json", *args)
    assert code == 0
    document: dict[str, Any] = json.loads(out)
    return document


def _flow() -> Any:
    flow, _ = check_recipe(Path(MODULE), Registry.discover())
    assert flow is not None
    return flow


# -- the interval ----------------------------------------------------------------------------------


def test_the_interval_of_1_2_3_is_worked_by_hand() -> None:
    """Mean 2, sd 1, half-width t(0.975, 2) x 1 / sqrt(3) = 4.303 / 1.732 = 2.484."""
    mean, low, high, sd = interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and sd == pytest.approx(1.0)
    assert high is not None and low is not None
    assert high - mean == pytest.approx(T_975_2 / math.sqrt(3)) == pytest.approx(2.484, abs=1e-3)
    assert mean - low == pytest.approx(high - mean)


def test_one_value_has_no_interval() -> None:
    """A single run says nothing of its spread: no low, high or sd, never a zero-width interval."""
    assert interval([5.0]) == (5.0, None, None, None)


def test_summarize_names_the_station_most_often_the_bottleneck() -> None:
    def run(uph: float, bottleneck: str) -> dict[str, Any]:
        station = {"utilization": 0.5}
        return {
            "uph": uph,
            "first_pass_yield": 0.9,
            "rolled_throughput_yield": 0.8,
            "lead_time": {"p50_s": 10.0, "p95_s": 20.0},
            "wip": {"mean": 3.0},
            "stations": {"rf": station, "fixture": station},
            "operators": station,
            "bottleneck": bottleneck,
        }

    summary = summarize([run(1, "rf"), run(2, "fixture"), run(3, "rf")])
    assert summary["bottleneck"] == {"station": "rf", "runs": 2, "of": 3}
    assert summary["uph"]["mean"] == 2.0 and summary["uph"]["sd"] == pytest.approx(1.0)
    assert summary["first_pass_yield"]["sd"] == 0.0 and summary["first_pass_yield"]["low"] == pytest.approx(0.9)
    assert set(summary["stations"]) == {"rf", "fixture"} and summary["lead_time"]["p95_s"]["mean"] == 20.0


# -- replications ----------------------------------------------------------------------------------


def test_replications_are_reproducible_and_independent(capsys: pytest.CaptureFixture[str]) -> None:
    """Seeds S..S+N-1; the same seed gives the same runs, the first is the single run of S, the others differ."""
    once = _sweep(capsys, "--replications", "3", "--seed", "5", "--jobs", "2")
    again = _sweep(capsys, "--replications", "3", "--seed", "5", "--jobs", "2")
    assert once == again
    assert once["replications"] == 3 and once["seeds"] == [5, 6, 7] == replication_seeds(5, 3)
    assert [run["seed"] for run in once["runs"]] == [5, 6, 7]
    single = _sweep(capsys, "--seed", "5")
    assert once["runs"][0] == single
    assert len({run["uph"] for run in once["runs"]}) == 3
    uph = once["figures"]["uph"]
    mean, low, high, sd = interval([run["uph"] for run in once["runs"]])
    assert uph == {"mean": mean, "low": low, "high": high, "sd": sd}


def test_the_replications_table_gives_mean_interval_and_sd(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate_cli(capsys, MODULE, "--units", "300", "--profile", SWEEP_RF, "--replications", "3")
    assert code == 0
    assert "3 replications, seeds 0..2" in out and "95% interval" in out
    labels = ("units per hour", "first-pass yield", "rolled throughput yield", "lead time p50", "lead time p95")
    for label in (*labels, "WIP mean", "utilization: rf", "utilization: fixture", "utilization: operators"):
        assert label in out
    assert "rf (3 of 3 runs)" in out


# -- --vary ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "whole", "values"),
    [
        ("2..6", True, (2, 3, 4, 5, 6)),
        ("2..10..2", True, (2, 4, 6, 8, 10)),
        ("2..9..3", True, (2, 5, 8)),
        ("1,2,4", True, (1, 2, 4)),
        ("3", True, (3,)),
        ("60..90..7.5", False, (60.0, 67.5, 75.0, 82.5, 90.0)),
        ("0.1..0.3..0.1", False, (0.1, 0.2, 0.3)),
        ("45.5, 50", False, (45.5, 50.0)),
    ],
)
def test_values_are_ranges_steps_and_lists(text: str, whole: bool, values: tuple[float, ...]) -> None:
    parsed = parse_values(text, whole=whole)
    assert parsed == values
    assert all(isinstance(v, int) for v in parsed) == whole


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        (
            "stations.rff.slots=2..3",
            "no setting 'stations.rff.slots' (did you mean 'stations.rf.slots'?); the "
            "settings: stations.fixture.slots, stations.rf.slots, operators, arrivals.rate_per_hour, lots.size",
        ),
        ("operater=1,2", "(did you mean 'operators'?)"),
        ("operators", "give PATH=VALUES, e.g. stations.rf.slots=2..6"),
        ("=2..3", "give PATH=VALUES"),
        ("stations.rf.slots=6..2", "'6..2' runs down"),
        ("stations.rf.slots=2..6..0", "the step of '2..6..0' is 0"),
        ("stations.rf.slots=2..6..2..1", "is not START..STOP or START..STOP..STEP"),
        ("stations.rf.slots=1.5", "1.5 is not a whole number"),
        ("lots.size=0,100", "0 is not above 0"),
        ("arrivals.rate_per_hour=fast", "'fast' is not a number"),
        ("arrivals.rate_per_hour=nan", "'nan' is not a finite number"),
        ("instruments.rf.tester=1,2", "the profile declares no instruments to count"),
    ],
)
def test_a_bad_vary_exits_2_naming_the_option(capsys: pytest.CaptureFixture[str], vary: str, message: str) -> None:
    code, out, err = simulate_cli(capsys, MODULE, "--units", "50", "--vary", vary)
    assert code == 2 and out == ""
    assert f"floorflow: error: --vary {vary}: " in err and message in err


def test_a_setting_varied_twice_is_refused() -> None:
    flow = _flow()
    profile = load_profile(None, flow)
    varies = [parse_vary("operators=1,2", flow, profile), parse_vary("operators=3", flow, profile)]
    with pytest.raises(SweepError, match="--vary operators: given twice"):
        grid(varies)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-uph", "100"], "--target-uph is for replications and sweeps"),
        (["--replications", "2", "--target-uph", "100"], "--target-uph picks among a sweep's scenarios"),
        (["--replications", "2", "--plot", "out"], "--plot with --replications draws a sweep's UPH"),
        (["--vary", "operators=1", "--jobs", "2", "--cluster", "tcp://127.0.0.1:8786"], "give one or the other"),
        (["--vary", "operators=1", "--target-uph", "0"], "must be a number above 0"),
        (["--replications", "0"], "must be at least 1"),
    ],
)
def test_options_that_do_not_go_together_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = simulate_cli(capsys, MODULE, "--units", "50", *args)
    assert code == 2 and message in err


def test_the_grid_is_every_combination_in_option_order() -> None:
    flow = _flow()
    profile = load_profile(None, flow)
    varies = [
        parse_vary("stations.rf.slots=2,4", flow, profile),
        parse_vary("arrivals.rate_per_hour=60,90.5", flow, profile),
    ]
    assert grid(varies) == [
        {"stations.rf.slots": 2, "arrivals.rate_per_hour": 60.0},
        {"stations.rf.slots": 2, "arrivals.rate_per_hour": 90.5},
        {"stations.rf.slots": 4, "arrivals.rate_per_hour": 60.0},
        {"stations.rf.slots": 4, "arrivals.rate_per_hour": 90.5},
    ]
    assert grid([]) == [{}]


def test_a_setting_is_applied_to_the_profile() -> None:
    flow = _flow()
    profile = load_profile(None, flow)
    batched = apply(profile, {}).__class__(**{**profile.__dict__, "batch_size": 8, "batch_every_s": 60.0})
    changed = apply(
        batched,
        {"stations.rf.slots": 7, "operators": 3, "arrivals.rate_per_hour": 55.5, "lots.size": 100},
    )
    assert changed.slots(flow) == {**flow.stations, "rf": 7}
    assert (changed.operators, changed.rate_per_hour, changed.lot_size) == (3, 55.5, 100)
    assert changed.batch_size is None and changed.batch_every_s is None  # a rate replaces batch arrivals
    assert isinstance(changed.stations, MappingProxyType) and profile.stations == {}


def test_an_instrument_count_is_varied_by_its_station_and_name(capsys: pytest.CaptureFixture[str]) -> None:
    """The phone line's RF sockets share one radio tester: more testers, more units an hour, the same slots."""
    args = ("--units", "200", "--profile", PHONE_LINE, "--replications", "2", "--json")
    code, out, _ = simulate_cli(capsys, PHONE, *args, "--vary", "instruments.rf.tester=1,3")
    assert code == 0
    one, three = json.loads(out)["scenarios"]
    assert (one["settings"], three["settings"]) == ({"instruments.rf.tester": 1}, {"instruments.rf.tester": 3})
    assert three["figures"]["uph"]["mean"] > 1.5 * one["figures"]["uph"]["mean"]
    code, _, err = simulate_cli(capsys, PHONE, *args, "--vary", "instruments.rf.testr=1,3")
    assert code == 2
    assert "no setting 'instruments.rf.testr' (did you mean 'instruments.rf.tester'?)" in err


def test_an_instrument_count_is_applied_to_its_instrument_only() -> None:
    flow, _ = check_recipe(Path(PHONE), Registry.discover())
    assert flow is not None
    profile = load_profile(Path(PHONE_LINE), flow)
    changed = apply(profile, {"instruments.rf.tester": 3})
    (tester,) = changed.instruments["rf"]
    assert tester.count == 3 and tester.stages == profile.instruments["rf"][0].stages
    assert profile.instruments["rf"][0].count == 1
    assert resources({"instruments.rf.tester": 3, "stations.rf.slots": 4, "lots.size": 50}) == 7


# -- sweeps ----------------------------------------------------------------------------------------


def test_more_rf_slots_ship_more_and_the_fewest_meeting_the_target_is_chosen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Demand 150/h into an RF station of 72/h per 4 slots: UPH follows the slots; 6 is the least to reach 100."""
    document = _sweep(capsys, "--replications", "4", "--vary", "stations.rf.slots=2..8..2", "--target-uph", "100")
    scenarios = document["scenarios"]
    assert [s["settings"] for s in scenarios] == [{"stations.rf.slots": n} for n in (2, 4, 6, 8)]
    means = [s["figures"]["uph"]["mean"] for s in scenarios]
    assert means == sorted(means) and means[-1] > 3 * means[0]
    lows = [s["figures"]["uph"]["low"] for s in scenarios]
    assert lows[1] < 100 <= lows[2] and lows[3] >= 100
    assert document["target_uph"] == 100 and document["chosen"] == 2
    assert document["seeds"] == [0, 1, 2, 3]


def _scenario(settings: dict[str, Any], mean: float, low: float | None) -> Scenario:
    uph = {"mean": mean, "low": low, "high": None if low is None else 2 * mean - low, "sd": None}
    return Scenario(settings, [], {"uph": uph})


def test_the_choice_is_the_fewest_resources_whose_low_end_meets_the_target() -> None:
    """Meets = the interval's low end at or above the target; fewest = least sum of counts; a rate is no resource."""
    scenarios = [
        _scenario({"stations.rf.slots": 4, "operators": 1, "arrivals.rate_per_hour": 10}, 130, 99),  # mean only
        _scenario({"stations.rf.slots": 6, "operators": 2, "arrivals.rate_per_hour": 10}, 120, 100),
        _scenario({"stations.rf.slots": 5, "operators": 2, "arrivals.rate_per_hour": 500}, 125, 110),
        _scenario({"stations.rf.slots": 4, "operators": 3, "arrivals.rate_per_hour": 1}, 140, 120),  # a tie: later
        _scenario({"stations.rf.slots": 1, "operators": 1, "arrivals.rate_per_hour": 1}, 300, None),  # one run
    ]
    assert resources(scenarios[2].settings) == 7
    assert choose(scenarios, 100) == 2
    assert choose(scenarios, 115) == 3
    assert choose(scenarios, 121) is None


def test_every_scenario_runs_under_the_same_seeds() -> None:
    """Common random numbers: scenario after scenario, replication i runs on seed S + i."""
    line = Line(Path(MODULE), Path(SWEEP_RF), units=100)
    with ThreadPoolExecutor(1) as executor:
        ran = run_scenarios(line, [{"stations.rf.slots": 2}, {"stations.rf.slots": 5}], [3, 4], executor)
    assert [[run["seed"] for run in s.runs] for s in ran] == [[3, 4], [3, 4]]
    assert [s.runs[0]["stations"]["rf"]["slots"] for s in ran] == [2, 5]
    assert ran[0].figures == summarize(ran[0].runs)


def test_jobs_1_and_jobs_2_give_the_same_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--replications", "2", "--vary", "stations.rf.slots=3,5", "--vary", "lots.size=50,500", "--seed", "9")
    assert _sweep(capsys, *args, "--jobs", "1") == _sweep(capsys, *args, "--jobs", "2")


def test_the_sweep_table_marks_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    base = (MODULE, "--units", "300", "--profile", SWEEP_RF, "--replications", "3", "--vary", "stations.rf.slots=4,6,8")
    code, out, _ = simulate_cli(capsys, *base, "--target-uph", "95")
    assert code == 0
    assert "mean ± the half-width of its 95% confidence interval" in out and "stations.rf.slots" in out
    assert "1 ◀" in out and "0 ◀" not in out and "2 ◀" not in out
    assert "target 95 units/h: scenario 1 ◀ (stations.rf.slots=6), the fewest resources that meet it" in out
    assert "the low end of the UPH interval at or above the target" in out
    code, out, _ = simulate_cli(capsys, *base, "--target-uph", "1000")
    assert code == 0 and "◀" not in out.replace("target", "")
    assert "target 1000 units/h: no scenario meets it" in out


def test_a_sweep_warns_of_each_overloaded_scenario_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = simulate_cli(
        capsys,
        MODULE,
        "--units",
        "200",
        "--profile",
        SWEEP_RF,
        "--replications",
        "2",
        "--vary",
        "stations.rf.slots=2,9",
    )
    assert code == 0
    assert err.count("warning: with stations.rf.slots=2: arrivals (150 units/h) exceed") == 1
    assert "stations.rf.slots=9" not in err


def test_the_sweep_plot_is_a_png_per_varied_setting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    into = tmp_path / "plots"
    code, _, err = simulate_cli(
        capsys, MODULE, "--units", "200", "--profile", SWEEP_RF, "--replications", "2",
        "--vary", "stations.rf.slots=2,4", "--vary", "arrivals.rate_per_hour=60,120", "--plot", str(into),
    )  # fmt: skip
    assert code == 0
    names = ["uph-stations.rf.slots.png", "uph-arrivals.rate_per_hour.png"]
    assert sorted(p.name for p in into.iterdir()) == sorted(names)
    for name in names:
        path = into / name
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
        assert f"wrote {path}" in err


def test_the_floorflow_command_runs_a_sweep(tmp_path: Path) -> None:
    """The installed entry point, in a process of its own, with its pool of worker processes."""
    floorflow = Path(sys.executable).parent / "floorflow"
    done = subprocess.run(
        [str(floorflow), "simulate", MODULE, "--units", "200", "--profile", SWEEP_RF, "--replications", "2",
         "--vary", "stations.rf.slots=4,8", "--target-uph", "90", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["chosen"] == 1 and len(document["scenarios"]) == 2
