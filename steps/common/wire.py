"""How a unit's errors cross a wire: one reply line ``ERR <kind> <message>``, both ways.

The unit's firmware (the simulated one in ``steps.sim``, or a real factory test application)
answers a command it cannot carry out with one of three kinds, and the station turns the kind back
into the engine's split between a bad unit and a bad station:

- ``refused``: the unit refuses the command in its current state → ``CommandRefused`` (FAIL)
- ``failed``: the unit tried and failed (self-test, blank storage, …) → ``StepFailed`` (FAIL)
- ``invalid``: the command itself was wrong (unknown verb, argument, sensor) → ``StationError``
  (ERROR: the station or its configuration is wrong, never the unit)
"""

from __future__ import annotations

from typing import NoReturn

from engine.outcome import StationError, StepFailed
from steps.common import CommandRefused

KINDS = ("refused", "failed", "invalid")


def error_reply(error: BaseException) -> str:
    """The ``ERR`` line a firmware answers with for an exception (no newline; one line)."""
    if isinstance(error, CommandRefused):
        kind = "refused"
    elif isinstance(error, StepFailed):
        kind = "failed"
    else:
        kind = "invalid"
    message = " ".join(str(error).split()) or type(error).__name__
    return f"ERR {kind} {message}"


def raise_reply(line: str, where: str) -> NoReturn:
    """Raise what an ``ERR`` line means; ``where`` names the link (e.g. "USB 1-1.3")."""
    _, _, rest = line.partition(" ")
    kind, _, message = rest.partition(" ")
    if kind == "refused":
        raise CommandRefused(message)
    if kind == "failed":
        raise StepFailed(message)
    if kind == "invalid":
        raise StationError(f"{where}: the unit rejected the command: {message}")
    raise StationError(f"{where}: unintelligible error reply {line!r}")
