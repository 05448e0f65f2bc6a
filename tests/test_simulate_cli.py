"""`floorflow simulate` as a line planner runs it: the table, --json, --plot, and every mistake a message.

Exit codes: 0 the line ran; 1 the recipe has errors or simulated units met a rule it breaks; 2 usage,
or a profile that cannot be used (each problem at its file:line:col). Never a traceback.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from matplotlib.text import Text
from test_simulate import LIFECYCLE_REWORK

from engine.cli import main
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.simulate import Result, load_profile, simulate
from engine.simulate.plots import PLOTS as PLOTS_DRAWN
from engine.simulate.plots import queue_figure, yield_figure

ROOT = Path(__file__).resolve().parent.parent
MODULE = str(ROOT / "workflows/sphere-module.yaml")
THERMOSTAT = str(ROOT / "workflows/sphere-thermostat.yaml")
OVER_CAPACITY = str(ROOT / "tests/profiles/over-capacity.yaml")
PLOTS = ("utilization.png", "yields.png", "queues.png", "wip.png", "lead_time.png")
PNG = b"\x89PNG\r\n\x1a\n"


def simulate_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``floorflow simulate ARGS`` in this process: its exit code, stdout and stderr (never a traceback)."""
    try:
        code = main(["simulate", *args])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_json_is_one_object_with_the_figures_a_planner_reads(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate_cli(capsys, MODULE, "--units", "400", "--seed", "3", "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["units"] == 400 == sum(figures[k] for k in ("shipped", "scrapped", "held", "refused"))
    assert figures["seed"] == 3 and figures["profile"] == "default" and figures["recipe"] == "sphere-module"
    for key in ("uph", "first_pass_yield", "rolled_throughput_yield"):
        assert figures[key] > 0
    assert set(figures["stations"]) == {"fixture", "rf"}
    assert figures["bottleneck"] == max(figures["stations"], key=lambda s: figures["stations"][s]["utilization"])
    for station in figures["stations"].values():
        assert 0 < station["utilization"] <= 1 and station["mean_queue_s"] >= 0
    lead = figures["lead_time"]
    assert 0 < lead["p50_s"] <= lead["p90_s"] <= lead["p95_s"] <= lead["p99_s"] <= lead["max_s"]


def test_the_table_names_the_figures_and_the_bottleneck(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate_cli(capsys, MODULE, "--units", "300")
    assert code == 0
    figures = json.loads(simulate_cli(capsys, MODULE, "--units", "300", "--json")[1])
    for label in ("units started", "shipped", "units per hour", "first-pass yield", "rolled throughput yield"):
        assert label in out
    assert f"{figures['bottleneck']} ◀" in out
    assert f"{figures['shipped']:,}" in out


def test_plot_writes_every_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    into = tmp_path / "plots" / "new"
    code, _, err = simulate_cli(capsys, MODULE, "--units", "300", "--json", "--plot", str(into))
    assert code == 0
    assert sorted(p.name for p in into.iterdir()) == sorted(PLOTS)
    for name in PLOTS:
        path = into / name
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000, name
        assert f"wrote {path}" in err


def test_the_same_seed_writes_the_same_plots(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for into in ("a", "b"):
        args = (MODULE, "--units", "200", "--seed", "4", "--json", "--plot", str(tmp_path / into))
        assert simulate_cli(capsys, *args)[0] == 0
    for name in PLOTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def _texts(figure: Any) -> list[str]:
    """Every piece of text drawn on a figure: titles, tick labels, values written on bars, warnings."""
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


def _result(units: int, profile: str | None = None) -> Result:
    flow, _ = check_recipe(Path(THERMOSTAT), Registry.discover())
    assert flow is not None
    return simulate(flow, load_profile(Path(profile) if profile else None, flow), units, seed=2)


def test_the_yield_chart_writes_each_stages_yields_on_its_bars() -> None:
    """Two bars a stage, first-pass then final yield, each with its percentage written on it."""
    result = _result(300)
    stages = result.figures["stages"]
    figure = yield_figure(result)
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.texts]
    expected = [f"{100 * s['first_pass_yield']:.2f}%" for s in stages.values()]
    expected += [f"{100 * s['final_yield']:.2f}%" for s in stages.values()]
    assert labels == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == list(stages)
    assert ax.get_xlabel() == "yield (%)"


def test_every_plot_states_arrivals_and_capacity_and_the_overload_warning() -> None:
    """The arrival rate next to the capacity on every plot; the warning only on an overloaded line's."""
    calm, overloaded = _result(200), _result(400, OVER_CAPACITY)
    rates = "arrivals 120.0 units/h · capacity 35.9 units/h (slowest station: 'rf')"
    for _, draw in PLOTS_DRAWN:
        calm_texts = " ".join(_texts(draw(calm)))
        assert "capacity 35.9 units/h" in calm_texts and "warning" not in calm_texts
        texts = " ".join(_texts(draw(overloaded))).replace("\n", " ")
        assert rates in texts
        assert "warning: arrivals (120 units/h) exceed the line's capacity (35.9 units/h" in texts


def test_the_queue_chart_writes_each_waits_on_its_bars() -> None:
    result = _result(400, OVER_CAPACITY)
    queued = [name for name, s in result.figures["stages"].items() if s["queued"]]
    ax = queue_figure(result).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == queued
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == 2 * len(queued) and all(label.endswith((" s", " min", " h")) for label in labels)
    assert ax.get_xlabel().startswith("wait (")


def test_arrivals_past_capacity_are_warned_on_stderr_and_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    """120 units/h into sphere-thermostat, whose RF station takes 35.9 an hour: a warning, and still exit 0."""
    code, out, err = simulate_cli(capsys, THERMOSTAT, "--units", "300", "--profile", OVER_CAPACITY, "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["arrival_rate_per_hour"] == 120.0 and figures["capacity_per_hour"] == 35.899
    warning = (
        "arrivals (120 units/h) exceed the line's capacity (35.9 units/h, bottleneck: station 'rf'): queues grow "
        "without bound for as long as the simulation runs; the queue figures describe this run's length, not a "
        "steady state"
    )
    assert figures["warnings"] == [warning]
    assert f"{THERMOSTAT}: warning: {warning}" in err


def test_arrivals_within_capacity_are_not_warned(capsys: pytest.CaptureFixture[str]) -> None:
    """The default profile feeds 90% of the capacity: no warning, an empty list."""
    code, out, err = simulate_cli(capsys, THERMOSTAT, "--units", "300", "--json")
    assert code == 0 and json.loads(out)["warnings"] == [] and "warning" not in err


def test_the_table_states_arrivals_against_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate_cli(capsys, THERMOSTAT, "--units", "200", "--profile", OVER_CAPACITY)
    assert code == 0
    assert "120.0 units/h" in out and "35.9 units/h (rf)" in out


def test_a_profile_mistake_exits_2_at_its_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    profile = tmp_path / "line.yaml"
    profile.write_text("profile: line\nstations:\n  fixture: {slots: 4}\n  rff: {slots: 2}\n")
    code, out, err = simulate_cli(capsys, MODULE, "--profile", str(profile))
    assert code == 2 and out == ""
    assert f"{profile}:4:3: error: recipe sphere-module has no station 'rff' (did you mean 'rf'?)" in err


def test_a_profile_changes_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Twice the RF testers: the RF station is less busy, with the same seed and units."""
    profile = tmp_path / "line.yaml"
    profile.write_text("profile: more-rf\narrivals: {rate_per_hour: 40}\nstations:\n  rf: {slots: 8}\n")
    base = tmp_path / "base.yaml"
    base.write_text("profile: base\narrivals: {rate_per_hour: 40}\n")
    more = json.loads(simulate_cli(capsys, MODULE, "--units", "400", "--profile", str(profile), "--json")[1])
    less = json.loads(simulate_cli(capsys, MODULE, "--units", "400", "--profile", str(base), "--json")[1])
    assert more["stations"]["rf"]["slots"] == 8 and less["stations"]["rf"]["slots"] == 4
    assert more["stations"]["rf"]["utilization"] < 0.6 * less["stations"]["rf"]["utilization"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--units", "0"], "must be at least 1"),
        (["--units", "many"], "not a whole number"),
        (["--profile", "no-such-profile.yaml"], "no-such-profile.yaml: no such file"),
    ],
    ids=["zero-units", "not-a-number", "missing-profile"],
)
def test_usage_mistakes_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = simulate_cli(capsys, MODULE, *args)
    assert code == 2 and message in err


def test_a_recipe_with_errors_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recipe = tmp_path / "broken.yaml"
    recipe.write_text("recipe: broken\nversion: 1\nstages:\n  - {id: a, step: no.such_step}\n")
    code, out, err = simulate_cli(capsys, str(recipe), "--units", "10")
    assert code == 1 and out == ""
    assert f"{recipe}:4:" in err


def test_units_a_rule_refuses_are_a_recipe_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Rework sends a Tested unit back to a stage allowed until Tested: the lifecycle rule refuses it there."""
    recipe = tmp_path / "lifecycle-rework.yaml"
    recipe.write_text(textwrap.dedent(LIFECYCLE_REWORK))
    profile = tmp_path / "profile.yaml"
    profile.write_text("profile: refusals\ndefaults: {fail: 0, time: {fixed: 5}}\nstages:\n  check: {fail: 0.3}\n")
    code, out, err = simulate_cli(capsys, str(recipe), "--units", "200", "--profile", str(profile), "--json")
    assert code == 1
    refused = json.loads(out)["refused"]
    assert refused > 0
    assert f"recipe problem: {refused} simulated units were refused at 'connect' by the lifecycle rule" in err
