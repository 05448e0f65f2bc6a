"""Units that arrive by being plugged in: each socket's USB port watched, the unit's serial read from it.

``PlugWatch`` looks at what is plugged in every ``POLL_S`` seconds, through an ``Enumerate``: the port
path and serial number of each unit attached (on the line, ``steps.hardware.usb.PortScan`` over pyusb).
A unit that appears at a socket's port arrives in that socket (``Arrivals.put``). Each socket then goes
through the loop the station runs: the unit runs, its verdict is given, and the socket takes no other
unit until this one is removed. While a unit runs, what its port shows is not looked at: a unit that
drops off the bus and comes back (a reboot) is the same unit, not a new one. A unit left in its socket
after its verdict is not started again; a different unit found there means the first was removed.

What cannot be taken (no serial number can be read, or the serial is not one the recipe takes) is said
once on ``errors`` and left alone until it is removed; a device at a port no socket is wired to is not
looked at. The watch ends, and the arrivals with it, at the station's stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from enum import Enum
from typing import TextIO

from engine.diagnostics import quoted
from engine.events import Event, UnitEnded
from engine.outcome import StationError
from engine.run.slots import UnitSpec
from engine.run.station import Arrivals, Check

__all__ = ["POLL_S", "Enumerate", "PlugWatch", "Socket"]

Enumerate = Callable[[], list[tuple[str, str | None]]]
"""What is plugged in now: ``(port path, serial number)`` of each unit attached (the port path as Linux
names it, ``BUS-P1.P2…``; the serial None when none can be read). May raise StationError or OSError."""

POLL_S = 0.2
"""How often the ports are looked at."""


class Socket(Enum):
    """Where a socket is in its loop, as the watch sees it."""

    EMPTY = "empty"
    """Nothing plugged in: the next unit plugged in arrives."""
    RUNNING = "running"
    """Its unit arrived and has no verdict yet: the port is not looked at."""
    DONE = "done"
    """Its unit has its verdict: waiting for it to be removed."""
    REFUSED = "refused"
    """What is plugged in cannot be taken (said once): waiting for it to be removed."""


class PlugWatch:
    """Watches the sockets' USB ports (``ports``: socket number -> port path) and puts each unit plugged in
    into its socket's ``arrivals``; a ``Subscriber`` of the runner's events, to learn each unit's verdict."""

    def __init__(
        self,
        ports: Mapping[int, str],
        arrivals: Arrivals,
        enumerate_units: Enumerate,
        stop: threading.Event,
        check: Check,
        lot: str | None,
        errors: TextIO,
        every_s: float = POLL_S,
    ) -> None:
        self.ports = {socket: port for socket, port in ports.items() if 1 <= socket <= arrivals.sockets}
        """The ports of the sockets the station runs (a socket wired but not run is not watched)."""
        self.arrivals = arrivals
        self.stop = stop
        self.every_s = every_s
        self._enumerate = enumerate_units
        self._check = check
        self._lot = lot
        self._errors = errors
        self._state = dict.fromkeys(self.ports, Socket.EMPTY)
        self._serial: dict[int, str | None] = dict.fromkeys(self.ports)
        """The serial of the unit each socket holds (or last refused)."""
        self._lock = threading.Lock()
        self._said: str | None = None
        """The last problem listing the units (said once until it changes)."""

    def state(self, socket: int) -> Socket:
        """Where ``socket`` is in its loop."""
        with self._lock:
            return self._state[socket]

    def watch(self) -> None:
        """Look at the ports every ``every_s`` seconds until the station stops; then the arrivals end."""
        try:
            while not self.stop.is_set():
                self.look()
                self.stop.wait(self.every_s)
        finally:
            self.arrivals.end()

    def look(self) -> None:
        """Look at the ports once: a unit new at a socket's port arrives there."""
        try:
            attached = self._enumerate()
        except (StationError, OSError) as exc:
            self._say_listing(f"floorflow: {exc}; still watching the sockets")
            return
        self._say_listing(None)
        at = dict(attached)
        for socket, port in self.ports.items():
            self._at(socket, port, port in at, at.get(port))

    def __call__(self, event: Event) -> None:
        """A runner event: a unit's verdict in its socket sets the socket waiting for it to be removed."""
        if isinstance(event, UnitEnded):
            with self._lock:
                if self._state.get(event.slot) is Socket.RUNNING and self._serial[event.slot] == event.serial:
                    self._state[event.slot] = Socket.DONE

    def _at(self, socket: int, port: str, present: bool, serial: str | None) -> None:
        with self._lock:
            state = self._state[socket]
            if state is Socket.RUNNING:
                return
            if not present:
                self._state[socket], self._serial[socket] = Socket.EMPTY, None
                return
            if state is not Socket.EMPTY and serial == self._serial[socket]:
                return  # left in its socket, or refused already
            problem = "no serial number can be read from it" if serial is None else self._check(serial)
            self._serial[socket] = serial
            if problem is not None:
                self._state[socket] = Socket.REFUSED
                unit = "the unit plugged in" if serial is None else f"the unit plugged in ({quoted(serial, 40)})"
                self._say(f"floorflow: socket {socket} (USB {port}): {unit}: {problem}; unplug it; the station goes on")
                return
            assert serial is not None
            self._state[socket] = Socket.RUNNING
        self.arrivals.put(UnitSpec(serial, self._lot), socket)

    def _say_listing(self, problem: str | None) -> None:
        if problem is not None and problem != self._said:
            self._say(problem)
        self._said = problem

    def _say(self, line: str) -> None:
        self._errors.write(line + "\n")
        self._errors.flush()
