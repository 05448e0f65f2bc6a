"""A station that runs all shift: each socket takes the units that arrive for it, one after another.

Units arrive while the station runs (a serial scanned, a simulated unit plugged in, or a list) and
wait in ``Arrivals``: each socket's own queue, and one for whichever socket is free first. Each
socket's thread loops on its own: take a unit, run it through the runner (``run_unit``: the claim
with the route interlock and the admission, the station's stages, the unit's record finished), and
take the next. A socket waiting for a unit holds up no other; a unit that errors ends as ERROR and
its socket takes the next one.

The station ends when its arrivals have ended and every socket is idle, or at a stop (Ctrl-C,
SIGTERM, ``stop()``), which ends as ``StationRunner.run`` does: running attempts ABORTED after their
cleanup, sockets still busy after the grace given up, the record durable.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

from engine.diagnostics import quoted
from engine.outcome import UnitStatus
from engine.run.runner import StationRunner
from engine.run.slots import Crew, NotRun, RunUnit, Slot, SlotRecord, UnitResult, UnitSpec

__all__ = ["Arrivals", "ContinuousStation", "Drive", "plug_every", "read_scans"]

log = logging.getLogger("floorflow.station")

Check = Callable[[str], str | None]
"""Why a scanned serial is not one this station takes (None: it is)."""

Drive = Callable[[StationRunner, list[UnitSpec], int], list[UnitResult]]
"""What runs a station built for a verb (its runner, the units given, its slots) and returns the units' results."""

WAKE_S = 0.2
"""How often a waiting socket looks whether the station is stopping, when nothing wakes it sooner."""


class Arrivals:
    """The units waiting for the sockets (numbered from 1): each socket's own, and those for any socket."""

    def __init__(self, sockets: int) -> None:
        self.sockets = sockets
        self._own: dict[int, deque[UnitSpec]] = {n: deque() for n in range(1, sockets + 1)}
        self._any: deque[UnitSpec] = deque()
        self._ended = False
        self._idle = 0
        """How many sockets wait for a unit now."""
        self._changed = threading.Condition()

    def put(self, unit: UnitSpec, socket: int | None = None) -> None:
        """A unit arrives: into ``socket``, or (None) for the first socket free."""
        if socket is not None and socket not in self._own:
            raise ValueError(f"there is no socket {socket}: the station has sockets 1 to {self.sockets}")
        with self._changed:
            (self._any if socket is None else self._own[socket]).append(unit)
            self._changed.notify_all()

    def end(self) -> None:
        """No more units will arrive: each socket stops once nothing waits for it."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def drain(self) -> list[UnitSpec]:
        """Take every unit still waiting, for any socket or its own, in the order the sockets are numbered."""
        with self._changed:
            waiting = [*self._any, *(unit for queue in self._own.values() for unit in queue)]
            self._any.clear()
            for queue in self._own.values():
                queue.clear()
            return waiting

    def free(self) -> int:
        """How many sockets wait with no unit coming for them (a unit for any socket takes one)."""
        with self._changed:
            return max(0, self._idle - len(self._any))

    def take(self, socket: int, stop: threading.Event, *, shared: bool = True) -> UnitSpec | None:
        """The socket's next unit, waiting for one; None once the arrivals ended with none left, or at a stop.

        ``shared``: whether the socket takes units meant for any socket (one out of service does not)."""
        own = self._own[socket]
        with self._changed:
            while not stop.is_set():
                if own:
                    return own.popleft()
                if shared and self._any:
                    return self._any.popleft()
                if self._ended:
                    return None
                self._idle += 1
                try:
                    self._changed.wait(WAKE_S)
                finally:
                    self._idle -= 1
            return None


class _Sockets(Crew):
    """The sockets' threads: each takes its units from the arrivals until they end or the station stops."""

    def __init__(self, slots: Sequence[Slot], stop: threading.Event, arrivals: Arrivals) -> None:
        super().__init__(slots, stop)
        self.arrivals = arrivals

    def _run_units(
        self, slot: Slot, start: int, run_unit: RunUnit, not_run: NotRun, carried: Callable[[], UnitResult] | None
    ) -> None:
        """The socket's units as they arrive, each kept; ``carried`` ends the one whose thread was left behind."""
        if carried is not None:
            slot.record.keep(carried())
        while True:
            unit = self.arrivals.take(slot.number, self.abort, shared=slot.out_of_service is None)
            if unit is None:
                return
            slot.record.keep(self._one(unit, self._work_for(unit, slot, run_unit, not_run)))

    def ended(self) -> list[UnitResult]:
        """Every unit's result, socket by socket."""
        return [result for slot in self.slots for result in slot.record.results]


class ContinuousStation:
    """A runner's station with ``sockets`` sockets, fed by ``arrivals`` until they end or a stop."""

    def __init__(self, runner: StationRunner, sockets: int) -> None:
        self.runner = runner
        self.arrivals = Arrivals(sockets)

    def run(self) -> list[UnitResult]:
        """Run the units as they arrive; returns their results once the arrivals ended and the sockets are idle,
        or after a stop (Ctrl-C or SIGTERM in the calling thread, or ``stop()``), where the units still waiting
        count as ABORTED (not started)."""
        runner = self.runner
        models = runner.slot_models(self.arrivals.sockets)
        sockets = _Sockets(
            [Slot(model, [], SlotRecord(runner.history)) for model in models], runner.abort, self.arrivals
        )
        try:
            runner.serve(sockets)
        finally:
            self.arrivals.end()
        unstarted = [UnitResult(unit.serial, UnitStatus.ABORTED, "not started") for unit in self.arrivals.drain()]
        return sockets.ended() + unstarted

    def stop(self) -> None:
        """Stop the station: running attempts end as ABORTED after their cleanup; no unit waiting starts."""
        self.runner.stop()
        self.arrivals.end()


def read_scans(lines: Iterable[str], arrivals: Arrivals, check: Check, lot: str | None, errors: TextIO) -> None:
    """Scanned lines into the sockets, until the lines end: each ``SOCKET SERIAL`` (``SERIAL`` alone: the first
    socket free). A line that is not one is said on ``errors`` with its number, and the next is read."""
    try:
        for number, line in enumerate(lines, 1):
            words = line.split()
            if not words:
                continue
            try:
                socket, serial = _scan(words, check)
                arrivals.put(UnitSpec(serial, lot), socket)
            except ValueError as exc:
                errors.write(f"floorflow: input line {number}: {exc}; the station goes on\n")
                errors.flush()
    finally:
        arrivals.end()


def _scan(words: list[str], check: Check) -> tuple[int | None, str]:
    if len(words) > 2:
        raise ValueError(f"{quoted(' '.join(words), 60)} is not 'SOCKET SERIAL' nor 'SERIAL'")
    socket: int | None = None
    if len(words) == 2:
        if not words[0].isdigit():
            raise ValueError(f"socket {quoted(words[0], 20)} is not a socket number")
        socket = int(words[0])
    problem = check(words[-1])
    if problem is not None:
        raise ValueError(f"serial {quoted(words[-1], 40)}: {problem}")
    return socket, words[-1]


def plug_every(seconds: float, arrivals: Arrivals, stop: threading.Event, limit: int | None, prefix: str) -> None:
    """Every ``seconds``, a simulated unit (serial ``PREFIX-N``) into each socket free, until ``limit`` units
    (None: until the station stops)."""
    plugged = 0
    try:
        while (limit is None or plugged < limit) and not stop.wait(seconds):
            for _ in range(arrivals.free() if limit is None else min(arrivals.free(), limit - plugged)):
                plugged += 1
                arrivals.put(UnitSpec(f"{prefix}-{plugged:05d}"))
    finally:
        arrivals.end()
