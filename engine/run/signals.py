"""Signals that stop a station: SIGTERM as Ctrl-C, and neither cutting a stop short.

A service manager stops a station with SIGTERM; a person with Ctrl-C (SIGINT). Both must end the
run the same way: the running attempts ABORTED after their cleanup, the record durable, exit 3.
Python turns SIGINT into KeyboardInterrupt in the main thread; ``terminate_as_interrupt`` does the
same for SIGTERM. Once a stop is under way, a second signal must not interrupt the wait for the
cleanup or the store's last writes: ``signals_noted`` only says so on stderr.

Handlers can only be set from the main thread; elsewhere both are no-ops (the signals go to the main
thread anyway).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_noted(message: str) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM only write ``message`` to stderr: nothing is interrupted."""
    if not _in_main_thread():
        yield
        return
    data = message.encode("utf-8", "replace")

    def note(signum: int, frame: FrameType | None) -> None:
        # os.write, not print: the handler may run while the main thread holds a stream's lock.
        with suppress(OSError):
            os.write(2, data)

    previous = {number: signal.signal(number, note) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
