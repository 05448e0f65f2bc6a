"""What the engine logs while a station runs, on stderr one line per record (a store that fails, a step that raised).

The line holds the message and the exception's type and text; its traceback only with ``FLOORFLOW_DEBUG``
set, so an operator's terminal never fills with Python internals.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

DEBUG = "FLOORFLOW_DEBUG"
"""Set (to anything) to see the tracebacks of what the engine logs, not just one line each."""


class _OneLine(logging.Formatter):
    """A log record as one line: its message and its exception's type and text, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = f"{text}: {type(exc).__name__}: {exc}"
        return "floorflow: " + " ".join(text.splitlines())


@contextmanager
def log_lines() -> Iterator[None]:
    """While the station runs, what the engine logs (a store that fails, a step that raised) goes to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("floorflow: %(message)s") if os.environ.get(DEBUG) else _OneLine())
    logger = logging.getLogger("floorflow")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
