"""``floorflow station``: a station that runs all shift, its units arriving at its sockets while it runs.

The station is built as ``floorflow run`` builds it (the dispatcher hands ``drive`` to the run verb);
this module only says how units arrive and runs the sockets (``engine.run.station``):

- a list (``--unit``, ``--units-from``): each unit to the first socket free; the station ends when all are done;
- ``--sim-every SECONDS`` (with ``--sim``): simulated units plugged into the free sockets at that rate, until
  ``--max-units N`` have been plugged (else until stopped);
- else scans on standard input, one ``SOCKET SERIAL`` (or ``SERIAL``: the first socket free) a line; the end
  of the input (Ctrl-D) ends the shift once the sockets are idle.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from collections.abc import Callable

from engine.cli.shared import UsageError
from engine.diagnostics import quoted
from engine.inputs import serial_problem
from engine.run.runner import StationRunner
from engine.run.slots import UnitResult, UnitSpec
from engine.run.station import Arrivals, ContinuousStation, Drive, plug_every, read_scans


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
    elif args.max_units is not None:
        raise UsageError("--max-units goes with --sim-every")

    def drive(runner: StationRunner, units: list[UnitSpec], slots: int) -> list[UnitResult]:
        station = ContinuousStation(runner, slots)
        feed = _arrivals(args, station.arrivals, units, runner)
        threading.Thread(target=feed, name="arrivals", daemon=True).start()
        return station.run()

    return drive


def _arrivals(
    args: argparse.Namespace, arrivals: Arrivals, units: list[UnitSpec], runner: StationRunner
) -> Callable[[], None]:
    """What feeds the sockets, in a thread of its own."""
    if units:

        def listed() -> None:
            for unit in units:
                arrivals.put(unit)
            arrivals.end()

        return listed
    if args.sim_every is not None:
        prefix = f"SIM{time.strftime('%y%m%d%H%M%S')}"  # a later shift on the same store plugs new units
        return lambda: plug_every(args.sim_every, arrivals, runner.abort, args.max_units, prefix)
    check = _serial_check(runner.flow.serial_pattern)
    return lambda: read_scans(sys.stdin, arrivals, check, args.lot, sys.stderr)


def _serial_check(pattern: str | None) -> Callable[[str], str | None]:
    def check(serial: str) -> str | None:
        problem = serial_problem(serial)
        if problem is None and pattern is not None and re.fullmatch(pattern, serial) is None:
            return f"does not match the recipe's serial_pattern {quoted(pattern)}"
        return problem

    return check
