"""``floorflow station``: a station that runs all shift, its units arriving at its sockets while it runs.

The station is built as ``floorflow run`` builds it (the dispatcher hands ``drive`` to the run verb);
this module only says how units arrive and runs the sockets (``engine.run.station``):

- a list (``--unit``, ``--units-from``): each unit to the first socket free; the station ends when all are done;
- plugged in (the station config's ``arrivals: plug``): each unit found at its socket's USB port, its serial
  number read from it (``engine.run.hotplug``); under ``--sim``, and with ``--sim-every SECONDS`` without a
  config saying so, simulated units plugged into the free sockets at that rate (default ``SIM_PLUG_EVERY_S``),
  until ``--max-units N`` have been plugged (else until stopped);
- else scans on standard input, one ``SOCKET SERIAL`` (or ``SERIAL``: the first socket free) a line; the end
  of the input (Ctrl-D) ends the shift once the sockets are idle. With ``--ui`` the scans come instead from
  each socket's box on the operator screen (``engine.web``), until the station is stopped.

The station config (``--hardware FILE``, or ``--sim-config FILE``) may say which of these the station's
units take (``arrivals: scan | plug | list``); options that bring units another way are then refused.
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.cli.shared import UsageError
from engine.diagnostics import quoted
from engine.extras import missing
from engine.inputs import serial_problem
from engine.outcome import StationError
from engine.run.hotplug import PlugWatch
from engine.run.runner import StationRunner
from engine.run.slots import UnitResult, UnitSpec
from engine.run.station import Arrivals, ContinuousStation, Drive, plug_every, read_scans
from steps.hardware.line import HardwareLine
from steps.hardware.usb import PortScan, usb_backend

if TYPE_CHECKING:
    from engine.web.server import ScreenServer

SIM_PLUG_EVERY_S = 1.0
"""How often the simulated line plugs units into the free sockets of a station whose units are plugged in,
when ``--sim-every`` does not say."""


def station_drive(args: argparse.Namespace) -> Drive:
    """How ``floorflow station`` runs the station built for it (UsageError for options that do not go together)."""
    if args.station is None:
        raise UsageError("floorflow station runs one station: give --station NAME")
    if args.sim_every is not None:
        if not args.sim:
            raise UsageError("--sim-every goes with --sim: it plugs simulated units into the sockets")
        if args.sim_every <= 0:
            raise UsageError(f"--sim-every must be more than 0 seconds, not {args.sim_every:g}")
        if args.unit or args.units_from is not None:
            raise UsageError("--sim-every and --unit/--units-from exclude each other: units arrive one way")
    elif args.max_units is not None and not args.sim:
        raise UsageError("--max-units goes with --sim-every")

    if args.ui:
        problem = missing("the operator screen (--ui)", "starlette", "uvicorn", "sse_starlette")
        if problem is not None:
            raise UsageError(problem)
        if not 0 <= args.ui_port <= 65535:
            raise UsageError(f"--ui-port {args.ui_port} is not a port: give 1 to 65535, or 0 for any free one")

    def drive(runner: StationRunner, units: list[UnitSpec], slots: int) -> list[UnitResult]:
        station = ContinuousStation(runner, slots)
        how = _how(args, units, runner)
        screen = _screen(args, runner, station.arrivals) if args.ui else None
        if not (args.ui and how == "scan"):  # with the screen, scans come from its sockets' boxes
            feed = _arrivals(args, station.arrivals, units, runner, how)
            threading.Thread(target=feed, name="arrivals", daemon=True).start()
        # What is built so far lives all shift: the full collections, which would look through all of it again
        # and again, pausing every socket for milliseconds, leave it out.
        gc.freeze()
        try:
            return station.run()
        finally:
            if screen is not None:
                screen.stop()

    return drive


def _screen(args: argparse.Namespace, runner: StationRunner, arrivals: Arrivals) -> ScreenServer:
    """The operator screen, serving (StationError: it cannot listen where it was told to)."""
    from engine.web.screen import screen_for

    if args.operator is not None:
        runner.sign_in(args.operator)
    asks = args.answers is None and (not args.sim or args.ask)
    check = _serial_check(runner.flow.serial_pattern)
    screen = screen_for(runner, arrivals, check, args.lot, host=args.ui_bind, port=args.ui_port, asks=asks)
    try:
        address = screen.start()
    except OSError as exc:
        raise StationError(f"the operator screen cannot be served: {exc}") from None
    print(f"floorflow: the operator screen is at {address}", file=sys.stderr, flush=True)
    return screen


def _arrivals(
    args: argparse.Namespace, arrivals: Arrivals, units: list[UnitSpec], runner: StationRunner, how: str
) -> Callable[[], None]:
    """What feeds the sockets (``how`` they arrive: scan, plug or list), in a thread of its own."""
    if how == "list":

        def listed() -> None:
            for unit in units:
                arrivals.put(unit)
            arrivals.end()

        return listed
    check = _serial_check(runner.flow.serial_pattern)
    if how == "plug" and args.sim:
        every = args.sim_every if args.sim_every is not None else SIM_PLUG_EVERY_S
        prefix = f"SIM{time.strftime('%y%m%d%H%M%S')}"  # a later shift on the same store plugs new units
        return lambda: plug_every(every, arrivals, runner.abort, args.max_units, prefix)
    if how == "plug":
        return _plugged(args, arrivals, runner, check)
    return lambda: read_scans(sys.stdin, arrivals, check, args.lot, sys.stderr)


def _how(args: argparse.Namespace, units: list[UnitSpec], runner: StationRunner) -> str:
    """How the units arrive (scan, plug or list): as the station config says, else as the options say."""
    line = runner.line
    configured = line.wiring.arrivals if isinstance(line, HardwareLine) else None
    given = "list" if units else "plug" if args.sim_every is not None else None
    config = args.hardware if args.hardware is not None else args.sim_config
    if configured is not None and given not in (None, configured):
        options = "--unit/--units-from" if given == "list" else "--sim-every"
        raise UsageError(f"{config}: the station's units arrive as arrivals: {configured} says, not by {options}")
    if configured == "list" and not units:
        raise UsageError(f"{config}: arrivals: list: give the units with --unit SERIAL or --units-from FILE")
    how = configured or given or "scan"
    if args.max_units is not None and not (args.sim and how == "plug"):
        raise UsageError("--max-units goes with --sim-every, or with --sim on a station whose arrivals are plug")
    return how


def _plugged(
    args: argparse.Namespace, arrivals: Arrivals, runner: StationRunner, check: Callable[[str], str | None]
) -> Callable[[], None]:
    """The sockets' USB ports watched for units plugged in (StationError when there is no libusb)."""
    line = runner.line
    assert isinstance(line, HardwareLine)  # only a station config says arrivals: plug
    wiring = line.wiring
    backend = line.usb_backend if line.usb_backend is not None else usb_backend()
    ports = {socket: slot.usb_port for socket, slot in wiring.slots.items() if slot.usb_port is not None}
    scan = PortScan(wiring.usb_vid, wiring.usb_pid, backend)
    watch = PlugWatch(ports, arrivals, scan, runner.abort, check, args.lot, sys.stderr)
    runner.subscribers.append(watch)  # each unit's verdict: its socket then waits for it to be removed
    return watch.watch


def _serial_check(pattern: str | None) -> Callable[[str], str | None]:
    def check(serial: str) -> str | None:
        problem = serial_problem(serial)
        if problem is None and pattern is not None and re.fullmatch(pattern, serial) is None:
            return f"does not match the recipe's serial_pattern {quoted(pattern)}"
        return problem

    return check
