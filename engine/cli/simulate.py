"""``floorflow simulate RECIPE --units N [--seed S] [--profile FILE] [--json] [--plot DIR]``, and its
replications and sweeps (``--replications N``, ``--vary PATH=VALUES``, ``--target-uph X``, ``--jobs N``,
``--cluster ADDRESS``: ``engine.cli.sweeps``, which the dispatcher hands in).

Exit codes (``engine.cli.shared.ExitCode``): 0 the line ran; 1 the recipe has errors, or simulated
units met a rule the recipe breaks; 2 the profile cannot be used (each problem at its file:line:col),
or a bad option.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.cli.shared import ExitCode, UsageError
from engine.diagnostics import RecipeError
from engine.flow import Flow
from engine.outcome import UnitStatus
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.simulate import WarmupTooLong, load_profile, simulate
from engine.simulate.profile import Profile
from engine.simulate.warmup import warmup_note

ManyRuns = Callable[[argparse.Namespace, Flow, Profile], list[dict[str, Any]]]
"""Replications or a sweep of the checked flow and profile (``engine.cli.sweeps.run_many``): the recipe problems
they met."""


def run_simulation(args: argparse.Namespace, many: ManyRuns | None = None) -> int:
    """The recipe and profile checked, then one run of ``--seed`` shown, or the runs of ``many``."""
    flow, problems = check_recipe(args.recipe, Registry.discover(), recipe_root=args.recipe_root)
    for diag in problems:
        print(diag, file=sys.stderr)
    if flow is None or any(d.severity == "error" for d in problems):
        return ExitCode.RECIPE_ERRORS
    try:
        profile = load_profile(args.profile, flow)
    except RecipeError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return ExitCode.USAGE
    if many is not None:
        return report_problems(args, many(args, flow, profile))
    try:
        result = simulate(flow, profile, args.units, args.seed, args.warmup)
    except WarmupTooLong as exc:
        raise UsageError(f"--warmup {args.warmup:g}: {exc}") from None
    figures = result.figures
    for warning in figures["warnings"]:
        print(f"{args.recipe}: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(figures))
    else:
        show(figures, Console())
    if args.plot is not None:
        from engine.simulate.plots import write_plots

        for path in write_plots(result, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    return report_problems(args, figures["recipe_problems"])


def report_problems(args: argparse.Namespace, problems: list[dict[str, Any]]) -> int:
    """Each rule simulated units met that the recipe breaks, on stderr; the exit code they make."""
    for problem in problems:
        print(
            f"{args.recipe}: error: recipe problem: {problem['units']} simulated units were refused at "
            f"'{problem['stage']}' by the {problem['rule']} rule: {problem['reason']}",
            file=sys.stderr,
        )
    return ExitCode.RECIPE_ERRORS if problems else ExitCode.OK


def show(figures: dict[str, Any], console: Console) -> None:
    """The figures as tables: the line (arrivals against capacity), its stations, its shared instruments,
    its stages, lot holds."""
    title = f"{figures['recipe']} v{figures['version']} · profile {figures['profile']} · seed {figures['seed']}"
    title += warmup_note(figures)
    line = Table(title=title)
    line.add_column("line")
    line.add_column("", justify="right")
    lead = figures["lead_time"]
    rows = [
        ("units started", f"{figures['units']:,}"),
        (UnitStatus.SHIPPED, f"{figures['shipped']:,}"),
        (UnitStatus.SCRAPPED, f"{figures['scrapped']:,}"),
        ("held (lot on hold)", f"{figures['held']:,}"),
        ("refused (recipe problem)", f"{figures['refused']:,}"),
        ("simulated time", f"{figures['hours']:,.1f} h"),
        *([("steady state (after the warm-up)", f"{figures['steady_hours']:,.1f} h")] if figures["warmup_s"] else []),
        ("units per hour (shipped)", f"{figures['uph']:,.1f}"),
        ("first-pass yield", f"{100 * figures['first_pass_yield']:.2f} %"),
        ("rolled throughput yield", f"{100 * figures['rolled_throughput_yield']:.2f} %"),
        ("arrival rate", f"{figures['arrival_rate_per_hour']:,.1f} units/h"),
        ("line capacity (slowest station)", _capacity(figures)),
        ("bottleneck (busiest station)", str(figures["bottleneck"])),
        ("WIP mean / peak", f"{figures['wip']['mean']:,.1f} / {figures['wip']['peak']:,}"),
        (
            "lead time p50 / p90 / p95 / p99",
            " / ".join(f"{lead[k] / 3600:.2f} h" for k in ("p50_s", "p90_s", "p95_s", "p99_s")),
        ),
        ("lot holds (recalls)", f"{len(figures['holds']):,}"),
    ]
    for name, value in rows:
        line.add_row(name, value)
    console.print(line)
    _show_stations(figures, console)
    _show_instruments(figures, console)
    _show_stages(figures, console)
    _show_holds(figures, console)


def _capacity(figures: dict[str, Any]) -> str:
    if figures["capacity_per_hour"] is None:
        return "no limit (no stage at a station)"
    return f"{figures['capacity_per_hour']:,.1f} units/h ({figures['capacity_station']})"


def _show_stations(figures: dict[str, Any], console: Console) -> None:

    stations = Table(title="stations")
    for heading in ("station", "slots", "capacity", "utilization", "mean queue", "visits"):
        stations.add_column(heading, justify="left" if heading == "station" else "right")
    for name, s in [*figures["stations"].items(), ("operators", figures["operators"])]:
        mark = " ◀" if name == figures["bottleneck"] else ""
        stations.add_row(*_pool_row(f"{name}{mark}", s["slots"], s.get("capacity_per_hour"), s["utilization"],
                                    s["mean_queue_s"], s["visits"]))  # fmt: skip
    console.print(stations)


def _show_instruments(figures: dict[str, Any], console: Console) -> None:
    """The instruments a station's slots share, when the profile declares any: how busy, the wait for one."""
    if not figures.get("instruments"):
        return
    instruments = Table(title="shared instruments: the wait for one, per visit that needs one")
    for heading in ("instrument", "count", "capacity", "utilization", "mean wait", "visits"):
        instruments.add_column(heading, justify="left" if heading == "instrument" else "right")
    for name, i in figures["instruments"].items():
        instruments.add_row(*_pool_row(name, i["count"], i["capacity_per_hour"], i["utilization"], i["mean_wait_s"],
                                       i["visits"]))  # fmt: skip
    console.print(instruments)


def _pool_row(name: str, count: int, capacity: float | None, utilization: float, wait_s: float, visits: int) -> (
    tuple[str, ...]
):  # fmt: skip
    """A row of what a unit waits for (slots, operators, an instrument): how many, capacity, busy, wait, visits."""
    shown_capacity = f"{capacity:,.1f} units/h" if capacity is not None else ""
    return name, f"{count:,}", shown_capacity, f"{100 * utilization:.1f} %", f"{wait_s:,.1f} s", f"{visits:,}"


def _show_stages(figures: dict[str, Any], console: Console) -> None:
    """Each stage's yields, and the wait for a slot before the stages units queued for."""
    stages = Table(title="stages: yields per arrival at the stage; wait for a slot before it (mean, p95)")
    stages.add_column("stage", no_wrap=True, min_width=max(map(len, figures["stages"]), default=5))
    for heading in ("1st pass %", "final %", "attempts", "queued", "wait s", "p95 s"):
        stages.add_column(heading, justify="right")
    for name, s in figures["stages"].items():
        queued = s["queued"]
        stages.add_row(
            name,
            f"{100 * s['first_pass_yield']:.2f}",
            f"{100 * s['final_yield']:.2f}",
            f"{s['attempts']:,}",
            f"{queued:,}",
            f"{s['queue_mean_s']:,.1f}" if queued else "",
            f"{s['queue_p95_s']:,.1f}" if queued else "",
        )
    console.print(stages)


def _show_holds(figures: dict[str, Any], console: Console) -> None:
    if figures["holds"]:
        holds = Table(title=f"lot holds (first 10 of {len(figures['holds'])})")
        for heading in ("at", "lot", "stage", "failed sampled units"):
            holds.add_column(heading)
        for hold in figures["holds"][:10]:
            holds.add_row(
                f"{hold['at_s'] / 3600:.2f} h", hold["lot"], hold["stage"], f"{hold['failures']} of {hold['threshold']}"
            )
        console.print(holds)
