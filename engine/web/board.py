"""The station's board: what each socket's tile on the operator screen shows, kept from the runner's events.

``Board`` is a subscriber of the runner (called from the sockets' threads) and the one place the page
reads: a ``Tile`` per socket (the unit, its stage and progress, its verdict with the failing check and
its limits, what the operator does next, an open question), the station's title, who is signed in,
and the units finished last. Every change is handed to the board's watchers (the page's event
streams) as a small JSON-ready dict; a watcher added later starts from ``snapshot()``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from engine.events import Event, StepEnded, StepProgress, StepStarted, Stopping, UnitEnded, UnitStarted
from engine.outcome import Outcome, UnitStatus
from engine.run.console import failed_check

__all__ = ["Board", "Question", "Tile", "TileState", "Verdict", "Watcher"]

Watcher = Callable[[dict[str, Any]], None]
"""Called with each change (``{"kind": "tile", ...}``, ``{"kind": "station", ...}``), from any thread."""

_FINISHED_KEPT = 12
"""The units finished last, shown under the tiles."""


class TileState(StrEnum):
    IDLE = "idle"
    QUEUED = "queued"
    RUNNING = "running"
    ASKING = "asking"
    DONE = "done"


class Verdict(StrEnum):
    """The verdict a tile shows, large, in its colour."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    REFUSED = "REFUSED"
    ABORTED = "ABORTED"


@dataclass
class Question:
    """A question open at a socket: a manual check (pass or fail) or a failure to confirm (retry or fail)."""

    id: int
    kind: str
    """"check" or "confirm"."""
    stage: str
    title: str
    text: str
    picture: str | None = None
    """The picture's address on the page, when the recipe gives one."""


@dataclass
class Tile:
    socket: int
    state: TileState = TileState.IDLE
    serial: str | None = None
    lot: str | None = None
    operator: str | None = None
    stage: str | None = None
    step: str | None = None
    attempt: int = 0
    progress: float | None = None
    note: str | None = None
    started: float | None = None
    """When the unit started (time.time()); the page counts the elapsed time from it."""
    ended: float | None = None
    verdict: Verdict | None = None
    failed: str | None = None
    """The failing check or measurement with its value and limits."""
    reason: str | None = None
    next: str = ""
    """What the operator does next."""
    question: Question | None = None
    queued: int = 0
    """Units scanned into the socket, waiting for it."""
    at: float | None = None
    """When what the tile shows last happened on the station (time.time()): how late the page is, it can tell."""
    failure: StepEnded | None = field(default=None, repr=False)

    def shown(self) -> dict[str, Any]:
        """The tile as the page takes it."""
        tile = {name: getattr(self, name) for name in _SHOWN}
        if self.question is not None:
            tile["question"] = asdict(self.question)
        tile["kind"] = "tile"
        return tile


_SHOWN = tuple(f.name for f in fields(Tile) if f.name != "failure")


class Board:
    """What the operator screen shows of a station with ``sockets`` sockets."""

    def __init__(self, sockets: int, title: str, station: str | None, operator: str | None = None) -> None:
        self.title = title
        self.station = station
        self.operator = operator
        self.stopping = False
        self.tiles = {n: Tile(n, next=_IDLE_NEXT) for n in range(1, sockets + 1)}
        self.finished: deque[dict[str, Any]] = deque(maxlen=_FINISHED_KEPT)
        self.counts: dict[str, int] = {verdict.value: 0 for verdict in Verdict}
        self._watchers: list[Watcher] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.pictures: dict[str, str] = {}
        """The pictures the page may show: their address on the page to their file."""
        self._addresses: dict[str, str] = {}

    # -- watchers --------------------------------------------------------------------------------

    def watch(self, watcher: Watcher) -> list[dict[str, Any]]:
        """Add a watcher; returns what it starts from (the station, then every tile), taken under the same lock."""
        with self._lock:
            self._watchers.append(watcher)
            return self._snapshot()

    def unwatch(self, watcher: Watcher) -> None:
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> list[dict[str, Any]]:
        return [self._station(), *(tile.shown() for tile in self.tiles.values())]

    def _station(self) -> dict[str, Any]:
        return {
            "kind": "station",
            "title": self.title,
            "station": self.station,
            "operator": self.operator,
            "stopping": self.stopping,
            "counts": dict(self.counts),
            "finished": list(self.finished),
        }

    def _tell(self, *changes: dict[str, Any]) -> None:
        for watcher in self._watchers:
            for change in changes:
                watcher(change)

    # -- what the station does -------------------------------------------------------------------

    def sign_in(self, name: str) -> None:
        with self._lock:
            self.operator = name
            self._tell(self._station())

    def queued(self, socket: int, serial: str) -> None:
        """A unit was scanned into the socket (it starts when the socket is free)."""
        with self._lock:
            tile = self.tiles[socket]
            tile.queued += 1
            if tile.state in (TileState.IDLE, TileState.DONE):
                tile.state = TileState.QUEUED
                tile.next = f"{serial} starts in a moment"
            self._tell(tile.shown())

    def ask(self, socket: int, kind: str, stage: str, title: str, text: str, picture: str | None = None) -> Question:
        """Open a question at the socket; ``picture`` is a file the page may show with it."""
        with self._lock:
            address = None
            if picture is not None:  # one address a picture, however often it is shown
                address = self._addresses.get(picture)
                if address is None:
                    address = self._addresses[picture] = f"/pictures/{len(self.pictures) + 1}"
                    self.pictures[address] = picture
            question = Question(next(self._ids), kind, stage, title, text, address)
            tile = self.tiles[socket]
            tile.question, tile.state = question, TileState.ASKING
            tile.next = "Answer the question on this socket"
            self._tell(tile.shown())
            return question

    def answered(self, socket: int, question: Question) -> None:
        with self._lock:
            tile = self.tiles[socket]
            if tile.question is question:
                tile.question, tile.state, tile.next = None, TileState.RUNNING, _RUNNING_NEXT
                self._tell(tile.shown())

    # -- the runner's events ---------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, Stopping):
                self.stopping = True
                self._tell(self._station())
                return
            tile = self.tiles.get(event.slot)
            if tile is None:
                return
            tile.at = event.started + event.duration_s if isinstance(event, StepEnded) else time.time()
            if isinstance(event, StepStarted):
                tile.stage, tile.step, tile.attempt, tile.progress, tile.note = (
                    event.stage,
                    event.step,
                    event.attempt,
                    None,
                    None,
                )
            elif isinstance(event, StepProgress):
                tile.progress, tile.note = event.fraction, event.note
            elif isinstance(event, StepEnded):
                if event.outcome is Outcome.FAIL or event.outcome is Outcome.ERROR:
                    tile.failure = event
                elif tile.failure is not None and tile.failure.stage == event.stage:
                    tile.failure = None  # passed on a retry
                tile.progress = None
            elif isinstance(event, UnitStarted):
                _start(tile, event)
            elif isinstance(event, UnitEnded):
                self._end(tile, event)
                self._tell(tile.shown(), self._station())
                return
            self._tell(tile.shown())

    def _end(self, tile: Tile, event: UnitEnded) -> None:
        verdict = _verdict(event.status, tile.failure)
        tile.state, tile.verdict, tile.ended, tile.question = TileState.DONE, verdict, time.time(), None
        tile.reason = event.reason
        tile.failed = failed_check(tile.failure) if tile.failure is not None and verdict is not Verdict.PASS else None
        tile.next = _next(verdict, event.status, event.reason)
        tile.queued = max(0, tile.queued - 1)
        self.counts[verdict.value] += 1
        self.finished.appendleft(
            {
                "serial": event.serial,
                "socket": tile.socket,
                "verdict": verdict,
                "status": event.status,
                "at": tile.ended,
            }
        )


_IDLE_NEXT = "Scan a unit into this socket"
_RUNNING_NEXT = "Leave the unit in the socket"


def _start(tile: Tile, event: UnitStarted) -> None:
    tile.state, tile.serial, tile.lot, tile.started, tile.ended = (
        TileState.RUNNING,
        event.serial,
        event.lot,
        time.time(),
        None,
    )
    tile.operator = getattr(event, "operator", None)
    tile.stage = tile.step = tile.note = tile.failed = tile.reason = None
    tile.progress, tile.verdict, tile.failure, tile.attempt = None, None, None, 0
    tile.next = _RUNNING_NEXT


def _verdict(status: str, failure: StepEnded | None) -> Verdict:
    """The tile's verdict: a unit that leaves after a failure it did not pass again (to rework) is a FAIL."""
    if status == UnitStatus.SHIPPED:
        return Verdict.PASS
    if status == UnitStatus.IN_ROUTE:  # moving on, or to rework after a failure it did not pass again
        return Verdict.FAIL if failure is not None and failure.outcome is Outcome.FAIL else Verdict.PASS
    return {
        UnitStatus.SCRAPPED: Verdict.FAIL,
        UnitStatus.REFUSED: Verdict.REFUSED,
        UnitStatus.ABORTED: Verdict.ABORTED,
    }.get(UnitStatus(status), Verdict.ERROR)


def _next(verdict: Verdict, status: str, reason: str | None) -> str:
    """What the operator does with the unit now."""
    where = f" ({reason})" if reason else ""
    if verdict is Verdict.PASS:
        return "Remove the unit: it ships" if status == UnitStatus.SHIPPED else f"Remove the unit: it moves on{where}"
    if verdict is Verdict.FAIL:
        if status == UnitStatus.SCRAPPED:
            return "Remove the unit to the scrap bin"
        return f"Remove the unit to rework{where}"
    if verdict is Verdict.REFUSED:
        return "Remove the unit: it is refused here"
    if verdict is Verdict.ABORTED:
        return "The station stopped: remove the unit"
    return "Remove the unit; if it repeats, call the technician"
