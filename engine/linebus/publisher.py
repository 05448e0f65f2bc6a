"""The publisher: one thread that takes a store's outbox to the line through a sink.

It publishes the outbox's rows in their order (``seq``) from the first one not yet published, keeps
at most ``window`` of them unacknowledged, and marks in the store the rows up to the last of those
acknowledged without a gap before it. The store wakes it after each commit that wrote line events
(``on_written``), so an event leaves as soon as its record is kept; the station never waits for it.
When the sink loses its connection the publisher stops handing it rows, and once it is back starts
again from the first row not acknowledged: a row may so be published twice, always under the same
``UniqueID``, which is how a consumer drops the copy.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from engine.linebus.sink import BrokerAway, Sink
from engine.messages import Message, Source

IDLE_S = 0.5
"""How often a connected publisher looks at its store unwoken."""
OFFLINE_S = 0.05
"""How often a publisher whose sink is away looks whether it is back (a reconnection is not signalled): the
outbox's first events leave within this of the broker coming back."""


class Outbox(Protocol):
    """What the publisher reads of a store (``engine.store.SqlStore`` has it)."""

    on_written: Callable[[], None] | None

    def outbox_after(self, seq: int, limit: int) -> list[tuple[int, Message]]: ...

    def outbox_first_unpublished(self) -> int: ...

    def outbox_published(self, up_to: int) -> None: ...


class Publisher:
    """Publishes ``store``'s outbox through ``sink`` as ``source``, from ``start`` to ``close``."""

    def __init__(self, store: Outbox, sink: Sink, source: Source, *, window: int = 1000, batch: int = 500) -> None:
        self.store, self.sink, self.source = store, sink, source
        self.window, self.batch = window, batch
        self.marked = 0
        """The last seq marked published (0: none yet by this publisher)."""
        self._wake = threading.Event()
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
        self.error: Exception | None = None
        """What stopped the publisher before ``close``, if anything did."""
        self._thread = threading.Thread(target=self._serve, name=f"publisher {source.name}", daemon=True)

    def start(self) -> None:
        self.sink.start(self.source, self._acknowledged)
        self.store.on_written = self.wake
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now (the store's ``on_written``, or a station in another process, calls it)."""
        self._wake.set()

    def close(self, timeout: float) -> None:
        """Publish what can be in ``timeout`` seconds, mark what was acknowledged, close the sink."""
        self._deadline = time.monotonic() + timeout
        self._wake.set()
        self._thread.join(timeout + 1.0)
        self.store.on_written = None
        self.sink.close()

    def _acknowledged(self, unique_id: str) -> None:
        self._acks.append(unique_id)  # the sink's thread: only hand it over
        self._wake.set()

    def _serve(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # the store failed under it: the rows stay in the outbox for the next start
            self.error = exc

    def _loop(self) -> None:
        while True:
            self._wake.wait(IDLE_S if self._online else OFFLINE_S)
            self._wake.clear()
            self._take_acks()
            if self._deadline is not None and (time.monotonic() >= self._deadline or self._drained()):
                return
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
            self.store.outbox_published(last)
            self.marked = last

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
    changed = threading.Condition()

    def acked(unique_id: str) -> None:
        with changed:
            waiting.discard(unique_id)
            changed.notify_all()

    sink.start(None, acked)
    count = 0
    try:
        for message in messages:
            with changed:
                _until(changed, lambda: sink.connected and len(waiting) < window, connect_s, sink)
                waiting.add(message.unique_id)
            sink.publish(message)
            count += 1
        with changed:
            _until(changed, lambda: not waiting, connect_s, sink)
    finally:
        sink.close()
    return count


def _until(changed: threading.Condition, done: Callable[[], bool], patience_s: float, sink: Sink) -> None:
    """Wait (holding ``changed``) for ``done``; BrokerAway after ``patience_s`` seconds without the sink connected."""
    away_since: float | None = None
    while not done():
        now = time.monotonic()
        away_since = None if sink.connected else away_since or now
        if away_since is not None and now - away_since >= patience_s:
            raise BrokerAway(f"{sink.shown}: the broker is not there (no connection in {patience_s:g} s)")
        changed.wait(0.1)
