"""``floorflow run``: put a station together from the command line and run units through it."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from engine.cli.shared import ExitCode, UsageError, warn_recovered
from engine.diagnostics import RecipeError, did_you_mean, quoted
from engine.flow import Flow
from engine.inputs import (
    ConfigError,
    InputError,
    check_input_file,
    config_position,
    name_problem,
    read_input_text,
    serial_problem,
)
from engine.messages import Source
from engine.outcome import StationError, UnitStatus
from engine.recipe.check import check_recipe
from engine.registry import Registry, line_factory
from engine.report.mirror import JsonMirror
from engine.run.console import progress_for
from engine.run.operator import load_answers, operator_for, stdin_is_terminal
from engine.run.runlog import log_lines
from engine.run.runner import StationRunner, UnitResult, UnitSpec
from engine.run.signals import signals_noted
from engine.run.station import Drive
from engine.store import MEMORY, SqlStore, StoreError, default_url, open_store
from engine.yamlload import load_file

if TYPE_CHECKING:  # a station that tells no line loads none of it
    from engine.linebus.sink import Sink
    from engine.linebus.station import StationEvents

EVENTS_GRACE_S = 2.0
"""How long a stopping station goes on publishing its line events."""


def read_units(args: argparse.Namespace, serial_pattern: str | None = None) -> list[UnitSpec]:
    """The units to run, from --unit and --units-from, each serial checked (and matched to ``serial_pattern``)."""
    units = [UnitSpec(_serial(serial, "--unit", serial_pattern), args.lot) for serial in args.unit]
    if args.units_from is not None:
        try:
            text = read_input_text(args.units_from)
        except InputError as exc:
            raise UsageError(str(exc)) from None
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{args.units_from}:{number}"
            entry = line.split("#", 1)[0]
            if not entry.strip():
                continue
            serial, _, lot = (part.strip() for part in entry.partition(","))
            if lot:
                problem = name_problem(lot)
                if problem is not None:
                    raise UsageError(f"{where}: lot {quoted(lot, 40)}: {problem}")
            units.append(UnitSpec(_serial(serial, where, serial_pattern), lot or args.lot))
    if not units:
        raise UsageError("no units to run: give --unit SERIAL or --units-from FILE")
    seen: set[str] = set()
    for unit in units:
        if unit.serial in seen:
            raise UsageError(f"unit {unit.serial} is given twice")
        seen.add(unit.serial)
    return units


def _serial(serial: str, where: str, pattern: str | None) -> str:
    problem = serial_problem(serial)
    if problem is not None:
        raise UsageError(f"{where}: serial {quoted(serial, 40)}: {problem}")
    if pattern is not None and re.fullmatch(pattern, serial) is None:
        refusal = f"does not match the recipe's serial_pattern {quoted(pattern)}"
        raise UsageError(f"{where}: serial {quoted(serial, 40)} {refusal}")
    return serial


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _config(path: Path) -> tuple[dict[str, Any], Any]:
    """A config file as plain data, and as loaded (with the positions of its values)."""
    try:
        check_input_file(path)
        loaded = load_file(path)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    except RecipeError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    return _plain(loaded) or {}, loaded


def _config_problem(path: Path | None, loaded: Any, exc: ValueError) -> UsageError:
    """The config's mistake at its position (``path:line:col``) when it says where it is, else at the file."""
    pos = config_position(loaded, exc.where, of_key=exc.of_key) if isinstance(exc, ConfigError) else None
    return UsageError(f"{pos if pos is not None else path}: {exc}")


def store_url(args: argparse.Namespace) -> str:
    """``--store``; else a dry run keeps its records next to ``--json-out`` or in memory, a station in the default."""
    if args.store is not None:
        return str(args.store)
    if args.sim:
        return f"sqlite:///{args.json_out / 'floorflow.db'}" if args.json_out is not None else MEMORY
    return default_url()


def _sim_state(args: argparse.Namespace, url: str) -> str | None:
    """Where simulated units keep their state between runs: beside the records they go with."""
    if args.json_out is not None:
        return str(args.json_out / "sim-state")
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return url[len("sqlite:///") :] + ".sim-state"
    return None


def _open(url: str, flow: Flow, args: argparse.Namespace, operator: str) -> SqlStore:
    """The store, with what dead stations left recovered and the recipe admitted (released, or noted)."""
    try:
        store = open_store(url)
    except StoreError as exc:
        raise StationStartError(str(exc)) from None
    try:
        warn_recovered(store)
        if args.production:
            _released(store, flow)
        elif store.audit_unreleased_run(flow.recipe, flow.version, flow.content_hash, args.station, operator):
            print(
                f"warning: recipe {flow.recipe} v{flow.version} (hash {flow.content_hash[:12]}) is not released in "
                f"{store.shown}: this run is marked in the audit log",
                file=sys.stderr,
            )
    except StoreError as exc:  # a damaged store is found here at the latest: its first reads
        _closed(store)
        raise StationStartError(str(exc)) from None
    except BaseException:
        _closed(store)
        raise
    return store


def _released(store: SqlStore, flow: Flow) -> None:
    """--production: the recipe's exact content must have been released (UsageError if not)."""
    if store.released(flow.content_hash) is not None:
        return
    earlier = store.releases_of(flow.recipe)
    known = "; released: " + ", ".join(f"{d.reason} (hash {d.subject[:12]})" for d in earlier) if earlier else ""
    raise UsageError(
        f"--production: recipe {flow.recipe} v{flow.version} (hash {flow.content_hash[:12]}) is not "
        f"released for production in {store.shown}{known}. "
        f"Release it with: floorflow recipe release {flow.source} --by NAME"
    )


class StationStartError(Exception):
    """The station cannot start (exit 4): its store or its hardware is not there."""


@dataclass(frozen=True)
class _LineConfig:
    """The simulation's or the station's config file, read before the store is opened."""

    path: Path | None
    data: dict[str, Any]
    loaded: Any
    """As loaded, with the positions its mistakes are shown at."""


def _line_config(args: argparse.Namespace) -> _LineConfig:
    if not args.sim:
        if args.sim_config is not None:
            raise UsageError("--sim-config goes with --sim")
        if args.hardware is None:
            raise UsageError(
                "the station's wiring is needed to reach real units: give --hardware FILE "
                "(see docs/hardware.md), or --sim for a dry run on simulated hardware"
            )
        return _LineConfig(args.hardware, *_config(args.hardware))
    if args.hardware is not None:
        raise UsageError("--hardware and --sim exclude each other: the simulation wires its own station")
    if args.sim_config is None:
        return _LineConfig(None, {}, None)
    return _LineConfig(args.sim_config, *_config(args.sim_config))


def _line(flow: Flow, args: argparse.Namespace, config: _LineConfig, store: SqlStore, url: str) -> Any:
    try:
        if not args.sim:
            assert config.path is not None
            return line_factory("hardware")(flow, config.data, base=config.path.parent, ledger=store)
        data = dict(config.data)
        state = _sim_state(args, url)
        if state is not None:
            # The simulated units live as long as their records: a later station (another process)
            # finds the same simulated hardware state the earlier one left.
            data.setdefault("state_dir", state)
        return line_factory("sim")(flow, data, ledger=store)
    except ValueError as exc:
        raise _config_problem(config.path, config.loaded, exc) from None


def operator_name(args: argparse.Namespace) -> str:
    """``--operator``, else the login name."""
    return str(args.operator or getpass.getuser())


def _input_file(path: Path) -> None:
    try:
        check_input_file(path)
    except InputError as exc:
        raise UsageError(str(exc)) from None


def exit_code(results: Sequence[UnitResult]) -> ExitCode:
    """The run's exit code from how its units ended: the worst of aborted, station error, unit failed."""
    statuses = {r.status for r in results}
    if UnitStatus.ABORTED in statuses:
        return ExitCode.ABORTED
    if UnitStatus.ERROR in statuses:
        return ExitCode.STATION_ERROR
    if statuses & {UnitStatus.SCRAPPED, UnitStatus.REFUSED}:
        return ExitCode.UNIT_FAILED
    return ExitCode.OK


def run_station(args: argparse.Namespace, drive: Drive | None = None) -> int:
    """``floorflow run`` (``drive``: what runs the station built, else ``StationRunner.run``): the exit code
    (UsageError for a usage error)."""
    with log_lines():
        return _station(args, drive)


def _station(args: argparse.Namespace, drive: Drive | None) -> int:
    if args.ask and not args.sim:
        raise UsageError("--ask goes with --sim: without it the station always asks the person")
    _input_file(args.recipe)
    registry = Registry.discover()
    flow, problems = check_recipe(args.recipe, registry, recipe_root=args.recipe_root)
    for diag in problems:
        print(diag, file=sys.stderr)
    if flow is None:
        return ExitCode.RECIPE_ERRORS
    if flow.abstract:
        raise UsageError(f"{args.recipe}: recipe '{flow.recipe}' is abstract: run a recipe that extends it")
    if args.station is not None and args.station not in flow.stations:
        raise UsageError(
            f"recipe '{flow.recipe}' has no station '{args.station}'{did_you_mean(args.station, flow.stations)}"
        )
    units = read_units(args, flow.serial_pattern) if drive is None or args.unit or args.units_from else []
    slots = args.slots if args.slots is not None else flow.stations.get(args.station or "", 1)
    if slots < 1:
        raise UsageError("--slots must be at least 1")
    answers = None
    if args.answers is not None:
        _input_file(args.answers)
        try:
            answers = load_answers(args.answers, flow)
        except RecipeError as exc:
            print(exc, file=sys.stderr)
            return ExitCode.USAGE
        except OSError as exc:
            raise UsageError(f"{args.answers}: cannot be read: {exc.strerror or exc}") from None
    line_config = _line_config(args)
    events = _events(args, flow)
    url = store_url(args)
    if args.json_out is not None:
        args.json_out.mkdir(parents=True, exist_ok=True)
    try:
        store = _open(url, flow, args, operator_name(args))
    except StationStartError as exc:
        print(f"error: the station cannot start: {exc}", file=sys.stderr)
        return ExitCode.STATION_ERROR
    code: int = ExitCode.STATION_ERROR
    publisher = None
    try:
        publisher = _publishing(store, events, url, args.events)
        code = _run_with(flow, registry, args, units, slots, answers, line_config, store, url, drive)
    except StoreError as exc:  # the store failed under the station: a damaged file, a server gone
        print(f"error: the station stopped: {exc}", file=sys.stderr)
    finally:
        with signals_noted("floorflow: stopping: the record is being closed\n"):  # its last writes are kept
            _published(publisher)
            if not _closed(store):
                code = ExitCode.STATION_ERROR
    return code


def _events(args: argparse.Namespace, flow: Flow) -> tuple[Sink, Source] | None:
    """``--events``: the sink (not started) and who tells the line; a URL no sink takes is a usage error."""
    if args.events is None:
        if args.line is not None:
            raise UsageError("--line goes with --events")
        return None
    from engine.linebus.sink import SinkError, sink_for

    try:
        sink = sink_for(args.events)
    except SinkError as exc:
        raise UsageError(str(exc)) from None
    line = args.line or flow.recipe
    wrong = [c for c in "/+#" if c in line]
    if wrong:
        raise UsageError(f"--line {quoted(line, 40)}: '{wrong[0]}' cannot be in a topic level: name it without")
    return sink, Source(line, args.station)


def _publishing(
    store: SqlStore, events: tuple[Sink, Source] | None, store_url: str, sink_url: str | None
) -> StationEvents | None:
    """From now on each record the store writes keeps its line event in the outbox, published as it comes."""
    if events is None or sink_url is None:
        return None
    from engine.linebus.station import StationEvents

    publishing = StationEvents(store, *events, store_url, sink_url, EVENTS_GRACE_S)
    publishing.start()
    return publishing


def _published(publishing: StationEvents | None) -> None:
    """The line told what was kept, as far as the broker takes it within ``EVENTS_GRACE_S``."""
    error = publishing.stop() if publishing is not None else None
    if error is not None:
        print(f"warning: line events stopped being published: {error}", file=sys.stderr)


def _closed(store: SqlStore) -> bool:
    """Close the store; False (said on stderr) when what was written behind could not be committed."""
    try:
        store.close()
    except StoreError as exc:
        print(f"error: the records written last may be lost: {exc}", file=sys.stderr)
        return False
    return True


def _run_with(
    flow: Flow,
    registry: Registry,
    args: argparse.Namespace,
    units: list[UnitSpec],
    slots: int,
    answers: Any,
    line_config: _LineConfig,
    store: SqlStore,
    url: str,
    drive: Drive | None = None,
) -> int:
    line = _line(flow, args, line_config, store, url)
    console = Console()
    recipe = f"{flow.recipe} v{flow.version}"
    shown = slots if drive is not None else min(slots, len(units))  # a station's idle sockets are shown too
    progress = progress_for(
        sys.stdout.isatty(), console=console, slots=shown, recipe=recipe, station=args.station
    )
    name = operator_name(args)
    simulated = args.sim and not args.ask  # --ask: a person rehearses the prompts of a simulated station
    operator = operator_for(simulated, answers, stdin_is_terminal(), name, console=console, pause=progress.paused)
    mirror = [JsonMirror(store.unit, args.json_out)] if args.json_out is not None else []
    runner = StationRunner(flow, registry, line, operator, store, [*mirror, progress], args.station, name)
    try:
        with progress:
            results = runner.run(units, slots) if drive is None else drive(runner, units, slots)
    except StationError as exc:  # the station cannot start (a slot not wired, ...): no unit was touched
        print(f"error: the station cannot start: {exc}", file=sys.stderr)
        return ExitCode.STATION_ERROR
    finally:
        line.close()
    if len(results) < len(units):
        done = {r.serial for r in results}
        results += [UnitResult(u.serial, UnitStatus.ABORTED, "not started") for u in units if u.serial not in done]
    return exit_code(results)
