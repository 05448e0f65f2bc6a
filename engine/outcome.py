"""What an attempt of a stage ended in, and what a measurement was judged."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    """The unit is bad: retried, then on_fail."""
    ERROR = "ERROR"
    """The station, its hardware or the engine is bad: never scraps a unit, never takes on_fail."""
    ABORTED = "ABORTED"
    """Stopped by the operator (Ctrl-C)."""
    SKIPPED = "SKIPPED"
    """Not run for this unit (not sampled, or the step decided so)."""
    NOT_DONE = "NOT-DONE"
    """A supervisor decided an interrupted irreversible attempt did not take effect: the stage may run again."""


class Verdict(StrEnum):
    PASS = "PASS"
    MARGINAL = "MARGINAL"
    """Inside the limits but outside the marginal band: passes, and is worth a look."""
    FAIL = "FAIL"


class UnitStatus(StrEnum):
    """Where a unit stands: in its record, and as a station's run of it ended.

    A record holds IN_ROUTE, SHIPPED, SCRAPPED or QUARANTINED; HELD is how a view shows a unit whose
    lot is on hold. A run of a unit at a station also ends REFUSED (it may not start here), ERROR (the
    station, not the unit, went wrong) or ABORTED (stopped by the operator).
    """

    IN_ROUTE = "in-route"
    SHIPPED = "shipped"
    SCRAPPED = "scrapped"
    QUARANTINED = "quarantined"
    HELD = "held"
    REFUSED = "refused"
    ERROR = "error"
    ABORTED = "aborted"

    @property
    def left_the_line(self) -> bool:
        return self in (UnitStatus.SHIPPED, UnitStatus.SCRAPPED)


class StepFailed(Exception):
    """Raised by a step when the unit is bad: the attempt is a FAIL, with this reason."""


class StationError(Exception):
    """Raised when the station cannot do its work (device missing, instrument down): an ERROR.

    Any other exception from a step is an ERROR too; this one says so on purpose, with a message
    meant for the operator.
    """


class NotStarted(StationError):
    """Raised by a step that stopped before it changed anything on the unit (an exhausted identity pool).

    The attempt is an ERROR, but the unit is as it was: even an irreversible stage may run again, and
    the unit is not quarantined.
    """
