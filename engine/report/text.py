"""How the reports write times, values, limits and a unit's first-pass yield (shared by every format)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.context import MeasurementRecord
from engine.outcome import Outcome, UnitStatus, Verdict
from engine.record import Attempt, UnitRecord

STATUSES = (UnitStatus.SHIPPED, UnitStatus.SCRAPPED, UnitStatus.QUARANTINED, UnitStatus.IN_ROUTE)
"""A unit's statuses, in the order the reports count them."""


UNCOUNTED = frozenset((Outcome.ABORTED, Outcome.NOT_DONE))
"""Attempts that count neither for nor against a yield: stopped by the operator, or decided not to have run."""


def first_pass(unit: UnitRecord) -> bool:
    """True when at every stage the unit's first counted attempt passed (a skipped stage does not count against it).

    An aborted attempt, or one a supervisor decided was not done, is not counted: the stage's next
    attempt is its first. A unit without a counted attempt has passed nothing, so it is not first-pass.
    Units of held lots are counted apart by the reports, not here.
    """
    first: dict[str, Attempt] = {}
    for attempt in unit.attempts:
        if attempt.outcome not in UNCOUNTED:
            first.setdefault(attempt.stage, attempt)
    return bool(first) and all(a.outcome in (Outcome.PASS, Outcome.SKIPPED) for a in first.values())


def iso(epoch: float) -> str:
    """ISO 8601 in UTC, as the records write times."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


def readable_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cell_text(value: Any) -> str:
    """A value as a cell shows it: nothing for None, true/false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def limits_text(m: MeasurementRecord) -> str:
    if m.low is None and m.high is None:
        return "no limits"
    return f"limits {cell_text(m.low) or '-inf'}..{cell_text(m.high) or '+inf'}"


def measurement_line(m: MeasurementRecord) -> str:
    """E.g. ``tx_power_dbm = 19.2 dBm (limits 14.0..18.0) FAIL``."""
    units = f" {m.units}" if m.units else ""
    return f"{m.name} = {cell_text(m.value)}{units} ({limits_text(m)}) {m.verdict.value}"


def failing(attempt: Attempt) -> list[MeasurementRecord]:
    return [m for m in attempt.measurements if m.verdict is Verdict.FAIL]


def lot_of(unit: UnitRecord, attempt: Attempt) -> str | None:
    return attempt.lot if attempt.lot is not None else unit.lot


LEFT_THE_LINE = frozenset(status for status in UnitStatus if status.left_the_line)
"""The statuses a unit never leaves: it is not run again."""


def left_the_line(record: UnitRecord) -> str | None:
    """Why a unit that was shipped or scrapped may not run again, with when (None: it has not left)."""
    status = record.status
    if status not in LEFT_THE_LINE:
        return None
    last = record.attempts[-1] if record.attempts else None
    when = "" if last is None else f" on {readable_time(last.ended)} (after '{last.stage}')"
    why = f": {record.reason}" if record.reason and status == UnitStatus.SCRAPPED else ""
    return f"the unit was {status}{when}{why}; a unit that left the line is not run again"
