"""The ``floorflow`` command: validate · graph · run · station · simulate · units · recipe · export · report · profile
· events · steps.

Builds the parser, hands each verb its arguments and turns what goes wrong into an exit code
(``engine.cli.shared.ExitCode``, the same meaning under every verb). A user mistake gets a message,
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine import __version__
from engine.cli.profile import add_profile_verb
from engine.cli.shared import ExitCode, UsageError, exit_codes_help, reading_store
from engine.cli.simulateoptions import add_simulate_options
from engine.inputs import name_argument, note_argument, serial_argument
from engine.outcome import UnitStatus


class _Parser(argparse.ArgumentParser):
    """Every verb's parser: a usage error exits 2, and ``--help`` ends with the exit codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", exit_codes_help())
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


LISTED_STATUSES = (
    UnitStatus.IN_ROUTE,
    UnitStatus.SHIPPED,
    UnitStatus.SCRAPPED,
    UnitStatus.QUARANTINED,
    UnitStatus.HELD,
)
"""What ``units list --status`` takes: where a unit stands in the store (held: its lot is on hold)."""


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="floorflow", description="Declarative YAML workflows for the factory floor.")
    parser.add_argument("--version", action="version", version=f"floorflow {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    validate = verbs.add_parser("validate", help="check recipes: schema, step parameters, route rules")
    validate.add_argument("recipes", nargs="+", metavar="RECIPE", type=Path)
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.add_argument("--strict", action="store_true", help="warnings fail the check too (exit 1)")
    _recipe_root_option(validate)
    validate.set_defaults(run=_validate)

    graph = verbs.add_parser("graph", help="print a recipe's state machine as Mermaid or DOT text")
    graph.add_argument("recipe", metavar="RECIPE", type=Path)
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    _recipe_root_option(graph)
    graph.set_defaults(run=_graph)

    run = verbs.add_parser("run", help="run units through a recipe's stages on a station")
    _station_arguments(run)
    run.set_defaults(run=_run)

    station = verbs.add_parser("station", help="run a station all shift: units arrive at its sockets as it runs")
    _station_arguments(station)
    station.add_argument("--sim-every", type=float, metavar="SECONDS", help="with --sim: plug units in at this rate")
    station.add_argument("--max-units", type=_positive, metavar="N", help="with --sim-every: stop after N units")
    station.add_argument("--ui", action="store_true", help="serve the operator screen: a web page, a tile per socket")
    station.add_argument("--ui-bind", default="127.0.0.1", metavar="ADDRESS", help="with --ui: listen here (loopback)")
    station.add_argument("--ui-port", type=int, default=8080, metavar="PORT", help="with --ui: its port (0: any free)")
    station.set_defaults(run=_station)

    simulate = verbs.add_parser("simulate", help="simulate a whole line running a recipe: throughput, yield, queues")
    add_simulate_options(simulate, _positive)
    _recipe_root_option(simulate)
    simulate.set_defaults(run=_simulate)

    _store_verbs(verbs)
    _report_verb(verbs)
    add_profile_verb(verbs, _store_option)
    _event_verbs(verbs)

    steps = verbs.add_parser("steps", help="list the registered step types and their parameters")
    steps.set_defaults(run=_steps)
    return parser


def _recipe_root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe-root",
        type=Path,
        metavar="DIR",
        help="extends: may name recipes at or below DIR (default: the directory of the recipe checked)",
    )


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help="sqlite:///PATH or postgresql://… (default: $FLOORFLOW_STORE, else sqlite:///floorflow.db)",
    )


def _store_verbs(verbs: Any) -> None:
    # The verbs' modules are imported when one runs: building the parser stays cheap for validate.
    units = verbs.add_parser("units", help="what the store knows of units: show, list, release")
    unit_verbs = units.add_subparsers(dest="units_verb", required=True, metavar="VERB", parser_class=_Parser)
    show = unit_verbs.add_parser("show", help="a unit's history, lifecycle, identities and status")
    show.add_argument("serial", metavar="SERIAL", type=serial_argument)
    listing = unit_verbs.add_parser("list", help="units, by status or lot")
    listing.add_argument("--status", choices=[str(s) for s in LISTED_STATUSES])
    listing.add_argument("--lot", type=name_argument)
    release = unit_verbs.add_parser("release", help="a supervisor's decision on a quarantined unit")
    release.add_argument("serial", metavar="SERIAL", type=serial_argument)
    release.add_argument(
        "--decision",
        required=True,
        choices=("done", "not-done"),
        help="done: the interrupted irreversible step took effect; not-done: it did not and may run again",
    )
    release.add_argument(
        "--by", required=True, metavar="NAME", type=name_argument, help="who decides (kept in the audit log)"
    )
    release.add_argument("--note", type=note_argument, help="why, for the audit log")
    for parser in (show, listing):
        parser.add_argument(
            "--format", choices=("text", "json"), default="text", help="text for people (default), json for machines"
        )
    for parser, run in ((show, "units_show"), (listing, "units_list"), (release, "units_release")):
        _store_option(parser)
        parser.set_defaults(run=_store_verb(run))

    recipe = verbs.add_parser("recipe", help="recipes for production: release")
    recipe_verbs = recipe.add_subparsers(dest="recipe_verb", required=True, metavar="VERB", parser_class=_Parser)
    rrelease = recipe_verbs.add_parser("release", help="release a recipe's content for production runs")
    rrelease.add_argument("recipe", metavar="RECIPE", type=Path)
    rrelease.add_argument(
        "--by", required=True, metavar="NAME", type=name_argument, help="who releases it (kept in the audit log)"
    )
    _recipe_root_option(rrelease)
    _store_option(rrelease)
    rrelease.set_defaults(run=_store_verb("recipe_release"))

    out = verbs.add_parser("export", help="write the records as json, csv, junit or html")
    out.add_argument("out", metavar="OUT", type=Path)
    out.add_argument("--format", required=True, choices=("json", "csv", "junit", "html"))
    out.add_argument("--since", metavar="WHEN", help="only attempts ended since this ISO 8601 date or time")
    _store_option(out)
    out.set_defaults(run=_store_verb("export"))


def _report_verb(verbs: Any) -> None:
    report = verbs.add_parser("report", help="the line's report: yields, failures, retests, throughput, measurements")
    report.add_argument("out", metavar="OUT", help="the file to write (- for stdout)")
    report.add_argument(
        "--format", choices=("html", "json"), default="html", help="html: one page with charts (default); json: figures"
    )
    report.add_argument("--since", metavar="WHEN", help="only attempts ended since this ISO 8601 date or time")
    report.add_argument("--until", metavar="WHEN", help="and up to this one (default: all since)")
    report.add_argument("--lot", type=name_argument, help="only the units of this lot")
    report.add_argument("--station", type=name_argument, help="only the attempts of this station")
    report.add_argument(
        "--recipe",
        metavar="RECIPE",
        help="only the units run with this recipe (a name, or its file: then its marginal bands are drawn)",
    )
    _store_option(report)
    report.set_defaults(run=_report)


def _report(args: argparse.Namespace) -> int:
    from engine.cli.report import report

    return reading_store(lambda: report(args))


def _event_verbs(verbs: Any) -> None:
    events = verbs.add_parser("events", help="the line's events: tail them as they come, replay them from the store")
    event_verbs = events.add_subparsers(dest="events_verb", required=True, metavar="VERB", parser_class=_Parser)
    tail = event_verbs.add_parser("tail", help="print a line's events as they come, one line each (Ctrl-C ends)")
    tail.add_argument("url", metavar="URL", help="the broker and prefix: mqtt://HOST[:PORT]/PREFIX")
    tail.set_defaults(run=_event_verb("tail"))
    replay = event_verbs.add_parser("replay", help="publish the store's events again, same ids, from a time on")
    replay.add_argument("--since", required=True, metavar="WHEN", help="events since this ISO 8601 date or time")
    replay.add_argument("--until", metavar="WHEN", help="and up to this one (default: all since)")
    replay.add_argument("--events", required=True, metavar="URL", help="where to: mqtt://HOST[:PORT]/PREFIX")
    _store_option(replay)
    replay.set_defaults(run=_event_verb("replay"))


def _event_verb(name: str) -> Any:
    def guarded(args: argparse.Namespace) -> int:
        from engine.cli import events

        return reading_store(lambda: getattr(events, name)(args))

    return guarded


def _store_verb(name: str) -> Any:
    def guarded(args: argparse.Namespace) -> int:
        from engine.cli import records

        return reading_store(lambda: getattr(records, name)(args))

    return guarded


def _readable(path: Path) -> None:
    from engine.diagnostics import one_line

    if not path.exists():
        raise UsageError(f"{one_line(str(path))}: no such file")
    if not path.is_file():
        raise UsageError(f"{one_line(str(path))}: not a file")


def _root_directory(root: Path | None) -> None:
    from engine.diagnostics import one_line

    if root is not None and not root.is_dir():
        raise UsageError(f"--recipe-root {one_line(str(root))}: not a directory")


def _validate(args: argparse.Namespace) -> int:
    from engine.recipe.check import check_recipe
    from engine.registry import Registry

    for path in args.recipes:
        _readable(path)
    registry = Registry.discover()
    everything = []
    failed = False
    for path in args.recipes:
        _flow, problems = check_recipe(path, registry, recipe_root=args.recipe_root)
        failing = ("error", "warning") if args.strict else ("error",)
        failed |= any(d.severity in failing for d in problems)
        everything.extend(problems)
        if args.format == "text":
            for diag in problems:
                print(diag)
    if args.format == "json":
        print(json.dumps([d.as_json() for d in everything], indent=2))
    elif not failed:
        count = len(args.recipes)
        print(f"{count} recipe{'s' if count != 1 else ''} valid", file=sys.stderr)
    return ExitCode.RECIPE_ERRORS if failed else ExitCode.OK


def _graph(args: argparse.Namespace) -> int:
    from engine.recipe.check import check_recipe
    from engine.recipe.graph import render
    from engine.registry import Registry

    _readable(args.recipe)
    flow, problems = check_recipe(args.recipe, Registry.discover(), recipe_root=args.recipe_root)
    for diag in problems:
        print(diag, file=sys.stderr)
    if flow is None:
        return ExitCode.RECIPE_ERRORS
    sys.stdout.write(render(flow, args.format))
    return ExitCode.OK


def _station_arguments(parser: argparse.ArgumentParser) -> None:
    # Defined here, not in engine.cli.run: building the parser must not import the runner.
    parser.add_argument("recipe", metavar="RECIPE", type=Path)
    _recipe_root_option(parser)
    parser.add_argument(
        "--unit", action="append", default=[], metavar="SERIAL", type=serial_argument, help="a unit to run (repeatable)"
    )
    parser.add_argument("--units-from", type=Path, metavar="FILE", help="units, one 'SERIAL[,LOT]' per line")
    parser.add_argument("--lot", type=name_argument, help="lot of the units given with --unit")
    parser.add_argument(
        "--station", type=name_argument, help="run only the stages of this station (default: every stage)"
    )
    parser.add_argument("--slots", type=int, help="units at once (default: the station's slots, else 1)")
    parser.add_argument("--sim", action="store_true", help="dry run on the shipped simulated hardware and operator")
    parser.add_argument("--sim-config", type=Path, metavar="FILE", help="faults and values for the simulation")
    parser.add_argument(
        "--hardware", type=Path, metavar="FILE", help="the station's wiring: USB, serial ports, instruments, printer"
    )
    parser.add_argument("--answers", type=Path, metavar="FILE", help="scripted answers to manual checks")
    parser.add_argument(
        "--ask", action="store_true", help="with --sim: a person answers the manual checks (at the terminal or on --ui)"
    )
    parser.add_argument("--operator", type=name_argument, help="who runs the station (default: the login name)")
    parser.add_argument("--json-out", type=Path, metavar="DIR", help="also write each unit's record as DIR/SERIAL.json")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="where records live: sqlite:///PATH or postgresql://… (default: $FLOORFLOW_STORE, else "
        "sqlite:///floorflow.db; with --sim: DIR/floorflow.db with --json-out DIR, else in memory)",
    )
    parser.add_argument(
        "--production", action="store_true", help="run only a recipe released with 'floorflow recipe release'"
    )
    parser.add_argument(
        "--events", metavar="URL", help="tell the line what happens: mqtt://HOST[:PORT]/PREFIX (see docs/events.md)"
    )
    parser.add_argument("--line", type=name_argument, help="with --events: the line's name (default: the recipe's)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _simulate(args: argparse.Namespace) -> int:
    from engine.extras import missing

    absent = missing("line simulation", "simpy", "numpy")
    if absent is None and args.plot is not None:
        absent = missing("plotting (--plot)", "matplotlib")
    if absent is not None:
        raise UsageError(absent)
    from engine.cli.simulate import run_simulation
    from engine.cli.sweeps import checked_many_runs

    _readable(args.recipe)
    if args.profile is not None:
        _readable(args.profile)
    return run_simulation(args, checked_many_runs(args))


def _run(args: argparse.Namespace) -> int:
    from engine.cli.run import run_station
    from engine.run.signals import terminate_as_interrupt

    with terminate_as_interrupt():  # a service manager's SIGTERM stops the station as Ctrl-C does
        return run_station(args)


def _station(args: argparse.Namespace) -> int:
    from engine.cli.run import run_station
    from engine.cli.station import station_drive
    from engine.run.signals import terminate_as_interrupt

    drive = station_drive(args)
    with terminate_as_interrupt():  # SIGTERM stops the station as Ctrl-C does
        return run_station(args, drive)


def _steps(args: argparse.Namespace) -> int:
    import dataclasses

    from engine.registry import Registry

    for step_type in Registry.discover():
        print(f"{step_type.name}: {step_type.summary}")
        for f in dataclasses.fields(step_type.Params):
            default = "" if f.default is dataclasses.MISSING else f" (default {f.default!r})"
            print(f"    {f.name}{default}: {f.metadata.get('doc', '')}")
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _root_directory(getattr(args, "recipe_root", None))
        return int(args.run(args))
    except UsageError as exc:
        print(f"floorflow: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except BrokenPipeError:
        return ExitCode.OK
    except KeyboardInterrupt:
        print("floorflow: aborted", file=sys.stderr)
        return ExitCode.ABORTED
    except OSError as exc:
        print(f"floorflow: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
