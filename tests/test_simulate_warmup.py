"""A start-up period left out of ``floorflow simulate``'s steady-state figures: ``--warmup SECONDS``.

A hand-checkable line: one slot, one stage of a fixed 60 s, 20 units arriving at once, so unit k
(1..20) waits 60(k-1) s and leaves at 60k s. With a warm-up of 630 s the steady state is the 570 s
from 630 to 1200: the 10 units that leave in it, the slot busy all of it (unit 11 from 630 to 660,
units 12..20 whole), WIP 10 for 30 s then 9, 8, ... 1 for 60 s each, lead times of units 11..20,
waits of the units that got the slot after 630 (12..20).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.simulate import WarmupTooLong, load_profile, simulate

UNITS = 20
RECIPE = """\
    recipe: one-slot
    version: 1
    stations:
      cell: {slots: 1}
    stages:
      - {id: measure, step: device.record_id, station: cell}
"""
PROFILE = f"""\
    profile: one-slot
    arrivals: {{batch: {{size: {UNITS}, every_s: 3600}}}}
    defaults: {{time: {{fixed: 60}}, fail: 0}}
"""


@pytest.fixture
def line(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "recipe.yaml").write_text(textwrap.dedent(RECIPE))
    (tmp_path / "profile.yaml").write_text(textwrap.dedent(PROFILE))
    return tmp_path / "recipe.yaml", tmp_path / "profile.yaml"


def _figures(line: tuple[Path, Path], warmup_s: float) -> dict[str, Any]:
    flow, problems = check_recipe(line[0], Registry.discover())
    assert flow is not None, "\n".join(map(str, problems))
    return simulate(flow, load_profile(line[1], flow), UNITS, seed=3, warmup_s=warmup_s).figures


def test_without_a_warm_up_every_moment_counts(line: tuple[Path, Path]) -> None:
    figures = _figures(line, 0.0)
    assert (figures["warmup_s"], figures["hours"], figures["steady_hours"]) == (0.0, 0.3333, 0.3333)
    assert figures["uph"] == 60.0
    assert figures["wip"]["mean"] == pytest.approx(60 * sum(range(1, 21)) / 1200)  # 10.5
    assert figures["stations"]["cell"]["utilization"] == 1.0
    assert figures["lead_time"]["max_s"] == 1200.0
    assert figures["stages"]["measure"]["queued"] == UNITS


def test_the_warm_up_is_left_out_of_the_steady_state_figures(line: tuple[Path, Path]) -> None:
    figures = _figures(line, 630.0)
    assert (figures["warmup_s"], figures["steady_hours"]) == (630.0, round(570 / 3600, 4))
    assert figures["uph"] == pytest.approx(10 * 3600 / 570, abs=1e-3)  # units 11..20 in 570 s
    cell = figures["stations"]["cell"]
    assert cell["utilization"] == 1.0  # counted exactly across the warm-up's end: not (30 + 600) / 570
    assert cell["visits"] == 9  # units 12..20 took the slot after it
    assert cell["mean_queue_s"] == pytest.approx(sum(60 * k for k in range(11, 20)) / 9)  # 900
    assert figures["wip"]["mean"] == pytest.approx((10 * 30 + 60 * sum(range(1, 10))) / 570, abs=1e-3)
    assert figures["stages"]["measure"]["queued"] == 9
    assert figures["stages"]["measure"]["queue_mean_s"] == pytest.approx(900.0, rel=0.01)
    assert figures["lead_time"]["mean_s"] == pytest.approx(sum(60 * k for k in range(11, 21)) / 10)  # 930
    assert figures["lead_time"]["max_s"] == 1200.0
    # counts and yields are of every unit
    assert (figures["units"], figures["shipped"], figures["first_pass_yield"]) == (UNITS, UNITS, 1.0)


def test_a_warm_up_as_long_as_the_run_leaves_nothing_to_measure(line: tuple[Path, Path]) -> None:
    with pytest.raises(WarmupTooLong, match=r"the warm-up \(1,200 s\) is not shorter than the simulated run"):
        _figures(line, 1200.0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "simulate", *args],
                          capture_output=True, text=True, check=False, timeout=300)  # fmt: skip


def test_the_command_says_what_was_left_out(line: tuple[Path, Path]) -> None:
    recipe, profile = (str(p) for p in line)
    done = _cli(recipe, "--profile", profile, "--units", "20", "--warmup", "630", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["warmup_s"] == 630.0
    shown = _cli(recipe, "--profile", profile, "--units", "20", "--warmup", "630")
    assert "the first 0.17 h left out of UPH, utilization, waits, WIP, lead times" in " ".join(shown.stdout.split())
    assert "steady state (after the warm-up)" in shown.stdout
    replicated = _cli(recipe, "--profile", profile, "--units", "20", "--warmup", "630", "--replications", "2",
                      "--jobs", "1", "--json")  # fmt: skip
    assert replicated.returncode == 0, replicated.stderr
    assert [run["warmup_s"] for run in json.loads(replicated.stdout)["runs"]] == [630.0, 630.0]


@pytest.mark.parametrize(
    ("warmup", "says"),
    [
        ("5000", "--warmup 5000: the warm-up (5,000 s) is not shorter than the simulated run (1,200 s)"),
        ("-1", "argument --warmup: must be a number of 0 or more, not '-1'"),
        ("soon", "argument --warmup: not a number: 'soon'"),
    ],
)
def test_a_warm_up_the_command_cannot_use_exits_2(line: tuple[Path, Path], warmup: str, says: str) -> None:
    done = _cli(str(line[0]), "--profile", str(line[1]), "--units", "20", "--warmup", warmup)
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr
