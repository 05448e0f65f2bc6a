"""``floorflow simulate`` run many times: ``--replications N`` (each figure's mean and 95% interval) and what-if
sweeps (``--vary PATH=VALUES``, ``--target-uph X``), on local processes (``--jobs N``) or a Dask cluster
(``--cluster ADDRESS``), through the same ``concurrent.futures.Executor``.

The options are checked before anything is read; the runs go to ``engine.simulate.sweep``; this module
prints what came back: a table (or ``--json``), warnings and recipe problems on stderr, ``--plot``'s PNGs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from engine.cli.shared import UsageError
from engine.flow import Flow
from engine.simulate import WarmupTooLong
from engine.simulate.profile import Profile
from engine.simulate.replicate import Figures, replication_seeds
from engine.simulate.sweep import (
    Line,
    LineNotBuilt,
    Scenario,
    SweepError,
    best,
    choose,
    grid,
    parse_vary,
    run_scenarios,
    sweep_json,
)
from engine.simulate.warmup import warmup_note

CLUSTER_TIMEOUT_S = 10
MEETS = "with 95% confidence: the low end of the UPH interval at or above the target"


def many_runs(args: argparse.Namespace) -> bool:
    """Whether the command runs replications or a sweep, rather than the single run of ``--seed``."""
    return bool(args.replications > 1 or args.vary)


def checked_many_runs(
    args: argparse.Namespace,
) -> Callable[[argparse.Namespace, Flow, Profile], list[dict[str, Any]]] | None:
    """``run_many`` when the options ask for replications or a sweep, None for the single run of ``--seed``;
    the options checked first (``check_options``)."""
    check_options(args)
    return run_many if many_runs(args) else None


def check_options(args: argparse.Namespace) -> None:
    """The options that only make sense together and the extras they need, checked before anything is read;
    UsageError saying which."""
    from engine.extras import missing

    absent = missing("confidence intervals (--replications, --vary)", "scipy") if many_runs(args) else None
    if absent is None and args.cluster is not None:
        absent = missing("--cluster", "distributed")
    if absent is not None:
        raise UsageError(absent)
    if not many_runs(args):
        for option, value in (("--target-uph", args.target_uph), ("--jobs", args.jobs), ("--cluster", args.cluster)):
            if value is not None:
                raise UsageError(f"{option} is for replications and sweeps: give --replications N or --vary")
    if args.target_uph is not None and not args.vary:
        raise UsageError("--target-uph picks among a sweep's scenarios: give --vary PATH=VALUES")
    if args.plot is not None and args.replications > 1 and not args.vary:
        raise UsageError("--plot with --replications draws a sweep's UPH: give --vary too, or drop --replications")
    if args.jobs is not None and args.cluster is not None:
        raise UsageError("--jobs and --cluster: the cluster has its own workers; give one or the other")


def run_many(args: argparse.Namespace, flow: Flow, profile: Profile) -> list[dict[str, Any]]:
    """Every scenario of the ``--vary`` options (one without them) under every replication's seed, shown; the
    recipe problems the first run that met any met."""
    try:
        scenarios = grid([parse_vary(text, flow, profile) for text in args.vary])
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    seeds = replication_seeds(args.seed, args.replications)
    line = Line(
        recipe=args.recipe.resolve(),
        profile=args.profile.resolve() if args.profile is not None else None,
        units=args.units,
        recipe_root=args.recipe_root.resolve() if args.recipe_root is not None else None,
        warmup_s=args.warmup,
    )
    with _executor(args, tasks=len(scenarios) * len(seeds)) as executor:
        try:
            ran = run_scenarios(line, scenarios, seeds, executor)
        except (LineNotBuilt, WarmupTooLong) as exc:
            raise UsageError(str(exc)) from None
    _warn(args, ran)
    if args.vary:
        _report_sweep(args, ran, seeds)
    else:
        _report_replications(args, ran[0], seeds)
    problems: list[dict[str, Any]] = next(
        (run["recipe_problems"] for s in ran for run in s.runs if run["recipe_problems"]), []
    )
    return problems


@contextmanager
def _executor(args: argparse.Namespace, tasks: int) -> Iterator[Executor]:
    """The Dask cluster's executor with ``--cluster``, else a pool of local processes; shut down on the way out."""
    if args.cluster is not None:
        import distributed

        dask: Any = distributed  # distributed declares no types: its client is used as Any
        try:
            client = dask.Client(args.cluster, timeout=f"{CLUSTER_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--cluster {args.cluster}: no Dask scheduler answered: {exc}") from None
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    workers = min(args.jobs or os.cpu_count() or 1, tasks)
    # Ctrl-C reaches the workers too: they ignore it, finish the run in hand and go, as the pending runs are cancelled.
    pool = ProcessPoolExecutor(workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _warn(args: argparse.Namespace, ran: Sequence[Scenario]) -> None:
    """Each scenario's warnings (arrivals past capacity), once: they follow from its settings, not its seed."""
    for scenario in ran:
        where = f"with {_settings(scenario.settings)}: " if scenario.settings else ""
        for warning in scenario.runs[0]["warnings"]:
            print(f"{args.recipe}: warning: {where}{warning}", file=sys.stderr)


def _report_replications(args: argparse.Namespace, scenario: Scenario, seeds: Sequence[int]) -> None:
    if args.json:
        figures = {"replications": len(seeds), "seeds": list(seeds), "figures": scenario.figures, "runs": scenario.runs}
        print(json.dumps(figures))
        return
    first, summary = scenario.runs[0], scenario.figures
    table = Table(title=f"{_what(first)} · {len(seeds)} replications, seeds {seeds[0]}..{seeds[-1]}")
    for heading in ("figure", "mean", "95% interval", "sd"):
        table.add_column(heading, justify="left" if heading == "figure" else "right")
    rows: list[tuple[str, Figures, float, str]] = [
        ("units per hour (shipped)", summary["uph"], 1, ""),
        ("first-pass yield", summary["first_pass_yield"], 100, " %"),
        ("rolled throughput yield", summary["rolled_throughput_yield"], 100, " %"),
        ("lead time p50", summary["lead_time"]["p50_s"], 1 / 3600, " h"),
        ("lead time p95", summary["lead_time"]["p95_s"], 1 / 3600, " h"),
        ("WIP mean", summary["wip"]["mean"], 1, ""),
        *((f"utilization: {name}", s["utilization"], 100, " %") for name, s in summary["stations"].items()),
        ("utilization: operators", summary["operators"]["utilization"], 100, " %"),
    ]
    for name, figure, scale, unit in rows:
        low, high, sd = (figure[k] for k in ("low", "high", "sd"))
        table.add_row(
            name,
            f"{figure['mean'] * scale:,.2f}{unit}",
            f"{low * scale:,.2f} … {high * scale:,.2f}{unit}" if low is not None else "",
            f"{sd * scale:,.2f}{unit}" if sd is not None else "",
        )
    table.add_row("bottleneck (busiest station)", _bottleneck(summary), "", "")
    _print_whole(table)


def _report_sweep(args: argparse.Namespace, ran: Sequence[Scenario], seeds: Sequence[int]) -> None:
    chosen = choose(ran, args.target_uph) if args.target_uph is not None else None
    if args.json:
        print(json.dumps(sweep_json(ran, seeds, args.target_uph)))
    else:
        _sweep_table(ran, seeds, chosen)
        if args.target_uph is not None:
            print(_target_line(ran, args.target_uph, chosen))
    if args.plot is not None:
        from engine.simulate.sweepplot import write_sweep_plots

        title = f"{_what(ran[0].runs[0])} · {len(seeds)} replications per scenario"
        held = chosen if chosen is not None else best(ran)
        for path in write_sweep_plots(ran, held, args.target_uph, title, args.plot):
            print(f"wrote {path}", file=sys.stderr)


def _sweep_table(ran: Sequence[Scenario], seeds: Sequence[int], chosen: int | None) -> None:
    table = Table(
        title=f"{_what(ran[0].runs[0])} · {len(seeds)} replications per scenario",
        caption="each figure: mean ± the half-width of its 95% confidence interval",
    )
    table.add_column("#", justify="right", no_wrap=True)
    for path in ran[0].settings:
        table.add_column(path, justify="right")
    for heading in ("UPH", "1st-pass %", "lead p50 h", "lead p95 h", "bottleneck"):
        table.add_column(heading, justify="left" if heading == "bottleneck" else "right")
    for i, scenario in enumerate(ran):
        figures = scenario.figures
        table.add_row(
            f"{i}{' ◀' if i == chosen else ''}",
            *(f"{value:g}" for value in scenario.settings.values()),
            _plus_minus(figures["uph"], 1, 1),
            _plus_minus(figures["first_pass_yield"], 100, 2),
            _plus_minus(figures["lead_time"]["p50_s"], 1 / 3600, 2),
            _plus_minus(figures["lead_time"]["p95_s"], 1 / 3600, 2),
            f"{figures['bottleneck']['station']} {figures['bottleneck']['runs']}/{figures['bottleneck']['of']}",
        )
    _print_whole(table)


def _print_whole(table: Table) -> None:
    """The table on the terminal, or unwrapped when written to a file or a pipe (where no width limits it)."""
    console = Console()
    if not console.is_terminal:
        console = Console(
            width=max(console.width, Measurement.get(console, console.options.update_width(1000), table).maximum)
        )
    console.print(table)


def _target_line(ran: Sequence[Scenario], target_uph: float, chosen: int | None) -> str:
    """Which scenario meets the target with the fewest resources, or that none does."""
    if chosen is None:
        return f"target {target_uph:g} units/h: no scenario meets it ({MEETS}); add resources or replications"
    settings = _settings(ran[chosen].settings)
    fewest = "the fewest resources that meet it"
    return f"target {target_uph:g} units/h: scenario {chosen} ◀ ({settings}), {fewest} ({MEETS})"


def _plus_minus(figure: Figures, scale: float, digits: int) -> str:
    """``mean ± half-width`` (the mean alone from a single replication)."""
    mean = figure["mean"] * scale
    if figure["high"] is None:
        return f"{mean:,.{digits}f}"
    return f"{mean:,.{digits}f} ± {(figure['high'] - figure['mean']) * scale:,.{digits}f}"


def _bottleneck(summary: Figures) -> str:
    busiest = summary["bottleneck"]
    return f"{busiest['station']} ({busiest['runs']} of {busiest['of']} runs)"


def _settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{path}={value:g}" for path, value in settings.items())


def _what(figures: Figures) -> str:
    what = f"{figures['recipe']} v{figures['version']} · profile {figures['profile']} · {figures['units']:,} units"
    return what + warmup_note(figures)
