"""What a simulated unit waits for: a slot at a station (``Pool``), an operator (``Operators``), an
instrument the station's slots share (``Instruments``), and what a stage holds together (``Holding``).

Each keeps what the figures need as it goes: busy time, visits and time waited.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable

import simpy

from engine.simulate.profile import Instrument


class Pool:
    """Slots (or operators): taken if free, else waited for in order; a freed one goes to the first waiting.

    This and not ``simpy.Resource``: a free slot is taken without an event, and a freed one handed
    straight to the first in line.
    """

    __slots__ = ("busy", "draw", "free", "name", "size", "visits", "waited", "waiting")

    def __init__(self, name: str, size: int, draw: Callable[[], float]) -> None:
        self.name = name
        self.draw = draw
        """Uniform numbers: how far through its run each unit gets before a failure."""
        self.size = size
        self.free = size
        self.waiting: deque[simpy.Event] = deque()
        self.busy = 0.0
        """Slot-seconds in use, once every visit has ended: each visit adds its end and takes off its start."""
        self.visits = 0
        self.waited = 0.0


class Operators:
    """The operators, each known by when they are next free: whoever asks takes the first one free.

    Asked in time order (each unit asks when it is at a station), this is a first-come, first-served
    queue with as many servers as operators, and needs no events: the wait is known when asked.
    """

    __slots__ = ("busy", "free_at", "size", "visits", "waited")

    def __init__(self, size: int) -> None:
        self.size = size
        self.free_at = [0.0] * size
        """A heap: when each operator is next free."""
        self.busy = 0.0
        self.visits = 0
        self.waited = 0.0

    def take(self, now: float, seconds: float, *, work: bool = True) -> float:
        """An operator for ``seconds`` from the first moment one is free: how long the asker waits for it."""
        start = max(now, self.free_at[0])
        heapq.heapreplace(self.free_at, start + seconds)
        if work:  # not a break
            self.visits += 1
            self.busy += seconds
            self.waited += start - now
        return start - now

    def hold(self, now: float, start: float, seconds: float) -> None:
        """The first free one, kept from ``start`` (when it and whatever it is held with are free) for ``seconds``."""
        heapq.heapreplace(self.free_at, start + seconds)
        self.visits += 1
        self.busy += seconds
        self.waited += start - now


class Instruments(Operators):
    """The instruments of one kind at a station, shared by its slots, as the profile declares them: taken
    like operators. Named "station/instrument" in the figures."""

    __slots__ = ("instrument", "name", "stages", "station")

    def __init__(self, station: str, instrument: Instrument) -> None:
        super().__init__(instrument.count)
        self.station = station
        self.instrument = instrument
        self.name = f"{station}/{instrument.name}"
        self.stages = instrument.stages
        """The ids of the stages that hold one."""


class Holding:
    """What a stage holds besides its slot, all at once: instruments, and an operator when it is manual.

    Taken from the first moment each of them is free; asked in time order, like ``Operators``.
    """

    __slots__ = ("pools",)

    def __init__(self, pools: tuple[Operators, ...]) -> None:
        self.pools = pools

    def take(self, now: float, seconds: float) -> float:
        """Each of the pools for ``seconds`` from the first moment all are free: how long the asker waits."""
        start = now
        for pool in self.pools:
            start = max(start, pool.free_at[0])
        for pool in self.pools:
            pool.hold(now, start, seconds)
        return start - now
