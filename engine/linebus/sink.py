"""Where line events go: the ``Sink`` contract, and the sink for a URL among those installed.

A sink is found by its URL's scheme in the entry-point group ``floorflow.sinks`` (floorflow ships
``mqtt``); its class is called with the URL and raises ``SinkError`` for one it cannot use. A sink
may keep its connection from a thread of its own (a ``Sink``), or let the publisher's thread drive
its traffic (a ``DrivenSink``, as the MQTT sink does): then nothing passes between threads.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from engine.diagnostics import did_you_mean, quoted
from engine.messages import Message, Source

GROUP = "floorflow.sinks"


class SinkError(ValueError):
    """A sink URL that cannot be used, said in one line naming it."""


class Sink(Protocol):
    """Where a publisher hands line events: it sends them on and says which the far end acknowledged."""

    @property
    def connected(self) -> bool:
        """Whether what is published now goes out now (else it waits for the connection)."""

    @property
    def shown(self) -> str:
        """The URL as said to a person."""

    def start(self, source: Source | None, on_acked: Callable[[str], None]) -> None:
        """Connect (and keep reconnecting); ``on_acked`` is called, from the sink's own thread or from ``pump``,
        with the ``UniqueID`` of each message the far end acknowledged. ``source``: the station whose status
        the sink tells (online while connected, offline as its last will); None tells none."""

    def publish(self, message: Message) -> None:
        """Send ``message`` (its topic under the sink's prefix); never blocks."""

    def close(self) -> None:
        """Say the station is offline (when a source was given) and disconnect."""


@runtime_checkable
class DrivenSink(Sink, Protocol):
    """A sink with no thread of its own: the publisher waits on its connection and calls ``pump``."""

    def fileno(self) -> int | None:
        """The connection to wait on (None: there is none now)."""

    def wants_write(self) -> bool:
        """Whether it has bytes waiting for the connection to take them."""

    def pump(self, readable: bool, writable: bool) -> None:
        """Read what came, write what waits, keep the connection alive, and connect again when it is time."""


def sink_for(url: str) -> Sink:
    """The installed sink for ``url``'s scheme, not yet started (SinkError: no such scheme, or a bad URL)."""
    scheme = urlsplit(url).scheme
    known = {point.name: point for point in entry_points(group=GROUP)}
    if scheme not in known:
        names = ", ".join(f"{name}://" for name in sorted(known)) or "none installed"
        hint = did_you_mean(scheme, list(known)) if scheme else ""
        raise SinkError(
            f"--events {quoted(url, 80)}: no sink for {scheme or 'a URL without a scheme'}{hint} (known: {names})"
        )
    factory: Callable[[str], Sink] = known[scheme].load()
    return factory(url)


class BrokerAway(Exception):
    """The far end of a sink could not be reached in time, said in one line naming it."""
