"""The publisher in a process of its own beside the station, so MQTT never shares the station's interpreter.

The station starts ``python -m engine.linebus`` with its store's URL, the sink's URL and who it is,
and wakes it with a byte on its standard input after each commit that wrote line events (the store's
``on_written``); the end of that input says the station is stopping: the publisher publishes what it
can within its grace, marks it, and ends. A station that dies ends its input the same way. Whatever
is not published stays in the outbox for the next start. A store no other process can open (SQLite
in memory) keeps its publisher in a thread of the station instead (``engine.linebus.publisher``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import suppress

from engine.messages import Source

__all__ = ["PublisherProcess", "shareable"]

BEYOND_GRACE_S = 5.0
"""How long a publisher that ends is waited for beyond its grace, before it is killed."""


def shareable(store_url: str) -> bool:
    """Whether another process can open the store: not SQLite in memory."""
    return store_url not in ("sqlite://", "sqlite:///:memory:") and "mode=memory" not in store_url


class PublisherProcess:
    """``python -m engine.linebus`` publishing ``store_url``'s outbox as ``source`` through ``sink_url``."""

    def __init__(self, store_url: str, sink_url: str, source: Source, grace_s: float) -> None:
        self.command = [sys.executable, "-m", "engine.linebus", "--store", store_url, "--events", sink_url]
        self.command += ["--line", source.line, "--grace", f"{grace_s:g}"]
        if source.station is not None:
            self.command += ["--station", source.station]
        self.grace_s = grace_s
        self.error: str | None = None
        """What the publisher said when it ended badly (None: it ended well, or has not ended)."""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Callable[[], None]:
        """Start the publisher; returns what wakes it (for the store's ``on_written``)."""
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert self._process.stdin is not None
        fd = self._process.stdin.fileno()
        os.set_blocking(fd, False)

        def wake() -> None:
            with suppress(OSError):  # already woken (the pipe is full), or gone: the outbox keeps everything
                os.write(fd, b"\n")

        return wake

    def close(self) -> None:
        """Tell the publisher the station stops; wait for it to publish what it can within its grace."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None and process.stderr is not None
        with suppress(OSError):
            process.stdin.close()
        try:
            process.wait(self.grace_s + BEYOND_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        said = process.stderr.read().decode(errors="replace").strip()
        process.stderr.close()
        if process.returncode != 0:
            self.error = said.splitlines()[-1] if said else f"the publisher ended with exit status {process.returncode}"
