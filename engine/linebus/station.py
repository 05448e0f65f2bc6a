"""A station's line events published while it runs, from its start to its end (``--events URL``)."""

from __future__ import annotations

from contextlib import suppress

from engine.linebus.process import PublisherProcess, shareable
from engine.linebus.publisher import Publisher
from engine.linebus.sink import Sink
from engine.messages import Source
from engine.store import SqlStore, StoreError

__all__ = ["StationEvents"]


class StationEvents:
    """From ``start``, each record ``store`` writes keeps its line event in the outbox, published as it comes: by
    a process of its own beside the station, or by a thread of the station's when the store is in its memory."""

    def __init__(self, store: SqlStore, sink: Sink, source: Source, store_url: str, sink_url: str, grace_s: float):
        self.store = store
        self.grace_s = grace_s
        store.tell_line(source)
        self._process: PublisherProcess | None = None
        self._thread: Publisher | None = None
        if shareable(store_url):
            self._process = PublisherProcess(store_url, sink_url, source, grace_s)
        else:
            self._thread = Publisher(store, sink, source)

    def start(self) -> None:
        if self._process is not None:
            self.store.on_written = self._process.start()
        elif self._thread is not None:
            self._thread.start()

    def stop(self) -> str | None:
        """The line told what was kept, as far as the broker takes it within the grace; the rest waits in the
        outbox for the next start (or ``floorflow events replay``). Returns why publishing stopped early, if it did."""
        with suppress(StoreError):  # said when the store is closed
            self.store.flush()
        if self._process is not None:
            self.store.on_written = None
            self._process.close()
            return self._process.error
        assert self._thread is not None
        self._thread.close(self.grace_s)
        return None if self._thread.error is None else str(self._thread.error)
