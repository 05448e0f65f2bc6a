"""``floorflow run``: put a station together from the command line and run units through it."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from engine.check import check_recipe
from engine.console import progress_for
from engine.diagnostics import RecipeError, did_you_mean
from engine.flow import Flow
from engine.history import History, JsonDirHistory, MemoryHistory
from engine.operator import load_answers, operator_for, stdin_is_terminal
from engine.outcome import StationError
from engine.registry import Registry, line_factory
from engine.runner import StationRunner, UnitResult, UnitSpec
from engine.yamlload import load_file


class RunUsageError(Exception):
    """The command line asks for something that cannot be run (exit 2)."""


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ABORTED, EXIT_STATION = 0, 1, 2, 3, 4


def read_units(args: argparse.Namespace) -> list[UnitSpec]:
    units = [UnitSpec(serial, args.lot) for serial in args.unit]
    if args.units_from is not None:
        if not args.units_from.is_file():
            raise RunUsageError(f"{args.units_from}: no such file")
        for number, line in enumerate(args.units_from.read_text().splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            serial, _, lot = (part.strip() for part in text.partition(","))
            if not serial:
                raise RunUsageError(f"{args.units_from}:{number}: no serial number")
            units.append(UnitSpec(serial, lot or args.lot))
    if not units:
        raise RunUsageError("no units to run: give --unit SERIAL or --units-from FILE")
    seen: set[str] = set()
    for unit in units:
        if unit.serial in seen:
            raise RunUsageError(f"unit {unit.serial} is given twice")
        seen.add(unit.serial)
    return units


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunUsageError(f"{path}: no such file")
    try:
        return _plain(load_file(path)) or {}
    except RecipeError as exc:
        raise RunUsageError(str(exc)) from None


def _line(flow: Flow, args: argparse.Namespace) -> Any:
    if not args.sim:
        if args.sim_config is not None:
            raise RunUsageError("--sim-config goes with --sim")
        if args.hardware is None:
            raise RunUsageError(
                "the station's wiring is needed to reach real units: give --hardware FILE "
                "(see docs/hardware.md), or --sim for a dry run on simulated hardware"
            )
        try:
            return line_factory("hardware")(flow, _config(args.hardware), base=args.hardware.parent)
        except ValueError as exc:
            raise RunUsageError(f"{args.hardware}: {exc}") from None
    if args.hardware is not None:
        raise RunUsageError("--hardware and --sim exclude each other: the simulation wires its own station")
    config = _config(args.sim_config) if args.sim_config is not None else {}
    if args.json_out is not None:
        # The simulated units live as long as their records: a later station (another process)
        # finds the same simulated hardware state the earlier one left.
        config.setdefault("state_dir", str(args.json_out / "sim-state"))
    try:
        return line_factory("sim")(flow, config)
    except ValueError as exc:
        raise RunUsageError(f"{args.sim_config}: {exc}") from None


def exit_code(results: Sequence[UnitResult]) -> int:
    statuses = {r.status for r in results}
    if "aborted" in statuses:
        return EXIT_ABORTED
    if "error" in statuses:
        return EXIT_STATION
    if statuses & {"scrapped", "refused"}:
        return EXIT_FAILED
    return EXIT_OK


def run_station(args: argparse.Namespace) -> int:
    if not args.recipe.is_file():
        raise RunUsageError(f"{args.recipe}: no such file")
    registry = Registry.discover()
    flow, problems = check_recipe(args.recipe, registry)
    for diag in problems:
        print(diag, file=sys.stderr)
    if flow is None:
        return EXIT_USAGE
    if flow.abstract:
        raise RunUsageError(f"{args.recipe}: recipe '{flow.recipe}' is abstract: run a recipe that extends it")
    if args.station is not None and args.station not in flow.stations:
        raise RunUsageError(
            f"recipe '{flow.recipe}' has no station '{args.station}'{did_you_mean(args.station, flow.stations)}"
        )
    units = read_units(args)
    slots = args.slots if args.slots is not None else flow.stations.get(args.station or "", 1)
    if slots < 1:
        raise RunUsageError("--slots must be at least 1")
    answers = None
    if args.answers is not None:
        if not args.answers.is_file():
            raise RunUsageError(f"{args.answers}: no such file")
        try:
            answers = load_answers(args.answers, flow)
        except RecipeError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
    history: History = JsonDirHistory(args.json_out) if args.json_out is not None else MemoryHistory()
    line = _line(flow, args)
    console = Console()
    progress = progress_for(sys.stdout.isatty(), console=console, slots=min(slots, len(units)))
    name = args.operator or getpass.getuser()
    operator = operator_for(args.sim, answers, stdin_is_terminal(), name, console=console, pause=progress.paused)
    runner = StationRunner(flow, registry, line, operator, history, [progress], args.station, name)
    try:
        with progress:
            results = runner.run(units, slots)
    except StationError as exc:  # the station cannot start (a slot not wired, ...): no unit was touched
        print(f"error: the station cannot start: {exc}", file=sys.stderr)
        return EXIT_STATION
    finally:
        line.close()
    if len(results) < len(units):
        done = {r.serial for r in results}
        results += [UnitResult(u.serial, "aborted", "not started") for u in units if u.serial not in done]
    return exit_code(results)
