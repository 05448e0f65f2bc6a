"""The operator screen served by uvicorn in a thread of its own, beside the station's sockets."""

from __future__ import annotations

import threading
from contextlib import suppress

import uvicorn
from starlette.applications import Starlette

__all__ = ["ScreenServer"]

_START_S = 10.0
"""How long the server has to start listening."""


class ScreenServer:
    """Serves ``app`` on ``host``:``port`` (0: a free port) until ``stop()``."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        # uvicorn's own lines (its start, a port in use) are not the station's: start() says what went wrong
        config = uvicorn.Config(
            app, host=host, port=port, log_level="critical", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="screen", daemon=True)
        self.host = host
        self.port = port

    def _serve(self) -> None:
        with suppress(SystemExit):  # uvicorn's way of saying it could not listen: start() says so
            self._server.run()

    def start(self) -> str:
        """Start serving; returns the page's address (OSError: the address cannot be listened on)."""
        self._thread.start()
        waited = 0.0
        while not self._server.started:
            if not self._thread.is_alive():
                raise OSError(
                    f"cannot serve the operator screen on {self.host}:{self.port} (in use, or not this host's)"
                )
            self._thread.join(0.02)
            waited += 0.02
            if waited > _START_S:
                raise OSError(f"the operator screen did not start on {self.host}:{self.port} in {_START_S:g} s")
        sockets = self._server.servers[0].sockets if self._server.servers else ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)
