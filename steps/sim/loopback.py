"""A TCP server on loopback: what the simulated instruments and label printer listen with."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self


class LoopbackServer:
    """A TCP server on 127.0.0.1 (any free port) with a daemon thread per connection."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"{name}-accept", daemon=True).start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # the listener was shut down
                return
            with self._connections_lock:
                if self._closed:
                    connection.close()
                    return
                self._connections.add(connection)
            threading.Thread(target=self._serve, args=(connection,), name=f"{self.name}-conn", daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            with connection:
                self.handle(connection)
        except OSError:
            pass  # the peer went away, or close() shut the connection down
        finally:
            with self._connections_lock:
                self._connections.discard(connection)

    def handle(self, connection: socket.socket) -> None:
        """Talk to one client until it closes the connection."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Drop every open connection but keep listening, like an instrument that was power-cycled."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)

    def close(self) -> None:
        """Stop listening and drop every connection; closing twice is harmless."""
        with self._connections_lock:
            if self._closed:
                return
            self._closed = True
        _shut(self._listener)  # wakes the thread blocked in accept()
        self._listener.close()
        self.disconnect()


def _shut(sock: socket.socket) -> None:
    # Only shut down: the thread serving the socket closes it when its recv() returns.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
