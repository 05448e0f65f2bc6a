"""The publisher: one thread that takes a store's outbox to the line through a sink.

It publishes the outbox's rows in their order (``seq``) from the first one not yet published, keeps
at most ``window`` of them unacknowledged, and marks in the store the rows up to the last of those
acknowledged without a gap before it. The store wakes it after each commit that wrote line events
(``on_written``), so an event leaves as soon as its record is kept; the station never waits for it.
When the sink loses its connection the publisher stops handing it rows, and once it is back starts
again from the first row not acknowledged: a row may so be published twice, always under the same
``UniqueID``, which is how a consumer drops the copy.

One thread does all of it: it waits (``select``) on its wake-up pipe, on the station's end of input
when it serves a station from a process of its own, and on the sink's connection when the sink lets
it drive its traffic (``DrivenSink``: MQTT), so an event goes from the store to the wire without
passing between threads.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Protocol

from engine.linebus.sink import BrokerAway, DrivenSink, Sink
from engine.messages import Message, Source

IDLE_S = 0.5
"""How often a connected publisher looks at its store unwoken."""
OFFLINE_S = 0.05
"""How often a publisher whose sink is away looks whether it is back: the outbox's first events leave within
this of the connection coming back."""
MARK_S = 0.5
"""How long acknowledged events may wait to be marked published. A mark is a write, and on SQLite every write
holds the station's commits up for a moment; a crash publishes up to this much again, under the same ids."""


class Outbox(Protocol):
    """What the publisher reads of a store (``engine.store.SqlStore`` has it)."""

    on_written: Callable[[], None] | None

    def outbox_after(self, seq: int, limit: int) -> list[tuple[int, Message]]: ...

    def outbox_first_unpublished(self) -> int: ...

    def outbox_published(self, up_to: int) -> None: ...


def pump(sink: Sink, timeout: float, also: Iterable[int] = ()) -> list[int]:
    """Wait up to ``timeout`` seconds for the sink's connection or any of ``also`` (file descriptors), let the
    sink do its traffic, and return which of ``also`` are readable."""
    waited = [*also]
    if not isinstance(sink, DrivenSink):  # it keeps its connection from a thread of its own
        return _readable(waited, timeout)
    connection = sink.fileno()
    if connection is None:
        readable = _readable(waited, timeout)
        sink.pump(False, False)
        return readable
    writers = [connection] if sink.wants_write() else []
    readable, writable, _ = select.select([*waited, connection], writers, [], timeout)
    sink.pump(connection in readable, connection in writable)
    return [fd for fd in readable if fd != connection]


def _readable(readers: list[int], timeout: float) -> list[int]:
    """Which of ``readers`` can be read within ``timeout`` seconds (none to wait on: the time passes)."""
    if not readers:
        time.sleep(timeout)
        return []
    return select.select(readers, [], [], timeout)[0]


class Publisher:
    """Publishes ``store``'s outbox through ``sink`` as ``source``, from ``start`` (or ``serve``) to ``close``;
    marks what was acknowledged through ``marks`` (the same store on a connection of its own, so that reading
    never waits behind a mark that waits for the station's lock; by default ``store``)."""

    def __init__(
        self,
        store: Outbox,
        sink: Sink,
        source: Source,
        *,
        marks: Outbox | None = None,
        window: int = 1000,
        batch: int = 500,
    ) -> None:
        self.store, self.sink, self.source = store, sink, source
        self.marks = store if marks is None else marks
        self.window, self.batch = window, batch
        self.marked = 0
        """The last seq marked published (0: none yet by this publisher)."""
        self._unmarked: int | None = None
        """The last seq acknowledged with none before it unacknowledged, when it is not marked yet."""
        self._mark_at = 0.0
        self._woken, self._wake = os.pipe()
        os.set_blocking(self._woken, False)
        os.set_blocking(self._wake, False)
        self._acks: deque[str] = deque()
        self._cursor: int | None = None
        """The last seq handed to the sink (None: to be found again from the store)."""
        self._order: deque[int] = deque()
        """The seqs read and not yet marked, in order."""
        self._waiting: dict[str, int] = {}
        """The seq of each UniqueID handed to the sink and not yet acknowledged."""
        self._acked: set[int] = set()
        self._online = False
        self._deadline: float | None = None
        self._station: int | None = None
        self._grace_s = 0.0
        self._serving: int | None = None
        """The thread that publishes (acknowledgements from any other wake it)."""
        self.error: Exception | None = None
        """What stopped the publisher before ``close``, if anything did."""
        self._thread = threading.Thread(target=self._serve, name=f"publisher {source.name}", daemon=True)

    def start(self) -> None:
        """Publish from a thread of its own until ``close``."""
        self.sink.start(self.source, self._acknowledged)
        self.store.on_written = self.wake
        self._thread.start()

    def serve(self, station: int, grace_s: float) -> None:
        """Publish in this thread, woken by whatever the station writes on the file descriptor ``station``, until
        it ends (the station stopped, or died); then publish what can be within ``grace_s`` seconds and return."""
        self._station, self._grace_s = station, grace_s
        self.sink.start(self.source, self._acknowledged)
        self._serve()
        self._closed()

    def wake(self) -> None:
        """Look at the outbox now (the store's ``on_written``, or any other thread, calls it)."""
        with suppress(OSError):  # already woken (the pipe is full)
            os.write(self._wake, b"\0")

    def close(self, timeout: float) -> None:
        """Publish what can be in ``timeout`` seconds, mark what was acknowledged, close the sink."""
        self._deadline = time.monotonic() + timeout
        self.wake()
        self._thread.join(timeout + 1.0)
        self.store.on_written = None
        self._closed()

    def _closed(self) -> None:
        self.sink.close()
        for fd in (self._woken, self._wake):
            with suppress(OSError):
                os.close(fd)

    def _acknowledged(self, unique_id: str) -> None:
        self._acks.append(unique_id)
        if threading.get_ident() != self._serving:  # a sink with a thread of its own: wake the publisher
            self.wake()

    def _serve(self) -> None:
        self._serving = threading.get_ident()
        try:
            self._loop()
        except Exception as exc:  # the store failed under it: the rows stay in the outbox for the next start
            self.error = exc

    def _loop(self) -> None:
        while True:
            woken = [self._woken] if self._station is None else [self._woken, self._station]
            wait_s = IDLE_S if self._online else OFFLINE_S
            if self._unmarked is not None:
                wait_s = max(0.0, min(wait_s, self._mark_at - time.monotonic()))
            readable = pump(self.sink, wait_s, woken)
            if self._woken in readable:
                with suppress(OSError):
                    os.read(self._woken, 4096)
            if self._station in readable and not os.read(self._station, 4096):
                self._station, self._deadline = None, time.monotonic() + self._grace_s
            self._take_acks()
            if self._deadline is not None and (time.monotonic() >= self._deadline or self._drained()):
                self._mark(at_once=True)
                return
            self._mark()
            if not self.sink.connected:
                self._online = False
                continue
            if not self._online:  # (re)connected: from the first row not acknowledged
                self._online, self._cursor = True, None
                self._order.clear()
                self._waiting.clear()
            self._feed()

    def _feed(self) -> None:
        if self._cursor is None:
            first = self.store.outbox_first_unpublished()
            if first == 0:
                return
            self._cursor = first - 1
        while len(self._waiting) < self.window and self.sink.connected:
            rows = self.store.outbox_after(self._cursor, min(self.batch, self.window - len(self._waiting)))
            if not rows:
                return
            for seq, message in rows:
                self._cursor = seq
                self._order.append(seq)
                if seq not in self._acked:
                    self._waiting[message.unique_id] = seq
                    self.sink.publish(message)

    def _take_acks(self) -> None:
        while self._acks:
            seq = self._waiting.pop(self._acks.popleft(), None)
            if seq is not None:
                self._acked.add(seq)
        last = None
        while self._order and self._order[0] in self._acked:
            last = self._order.popleft()
            self._acked.discard(last)
        if last is not None:
            if self._unmarked is None:
                self._mark_at = time.monotonic() + MARK_S
            self._unmarked = last

    def _mark(self, *, at_once: bool = False) -> None:
        """Mark what was acknowledged published, once the oldest of it has waited ``MARK_S``."""
        if self._unmarked is not None and (at_once or time.monotonic() >= self._mark_at):
            self.marks.outbox_published(self._unmarked)
            self.marked, self._unmarked = self._unmarked, None

    def _drained(self) -> bool:
        """Whether nothing is left to publish: all acknowledged, nothing newer in the store."""
        if self._waiting or not self.sink.connected:
            return False
        if self._cursor is None:
            return self.store.outbox_first_unpublished() == 0
        return not self.store.outbox_after(self._cursor, 1)


def republish(sink: Sink, messages: Iterable[Message], connect_s: float, window: int = 1000) -> int:
    """Publish ``messages`` again through ``sink`` (as they are: same bytes, same ids) and wait for the broker
    to acknowledge them; how many. BrokerAway when the sink is not connected within ``connect_s`` seconds,
    or loses its connection for that long."""
    waiting: set[str] = set()
    sink.start(None, waiting.discard)
    count = 0
    try:
        for message in messages:
            _until(sink, lambda: sink.connected and len(waiting) < window, connect_s)
            waiting.add(message.unique_id)
            sink.publish(message)
            count += 1
        _until(sink, lambda: not waiting, connect_s)
    finally:
        sink.close()
    return count


def _until(sink: Sink, done: Callable[[], bool], patience_s: float) -> None:
    """Drive the sink until ``done``; BrokerAway after ``patience_s`` seconds without it connected."""
    away_since: float | None = None
    while not done():
        now = time.monotonic()
        away_since = None if sink.connected else away_since or now
        if away_since is not None and now - away_since >= patience_s:
            raise BrokerAway(f"{sink.shown}: the broker is not there (no connection in {patience_s:g} s)")
        pump(sink, 0.01)
