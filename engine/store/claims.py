"""The route interlock's reads and writes: a unit seen as it is, and claimed only if it still is.

A claim is made in three steps (``SqlStore.claim``): ``look`` reads the unit's record, who holds it
and its lot's hold; the runner decides on what was read, with no transaction open (it replays the
unit's whole history, which may be long); ``take`` locks the unit's row and claims it only if
what the decision read is unchanged: the row's fields, its number of attempts, the lot's hold.
When anything changed, the runner decides again on what is there now. The write lock (SQLite) or
the row lock (PostgreSQL) is held for the comparison and the claim, nothing more. Only the store's
worker thread calls these, inside its transactions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from engine.messages import Source, unit_started
from engine.outcome import UnitStatus
from engine.record import UnitRecord
from engine.store import outbox, reading
from engine.store.reading import unit_with
from engine.store.recovery import recover_holder, when
from engine.store.rows import UNIT_COLUMNS, AttemptWriter
from engine.store.worker import Tx

_ROW = f"SELECT {UNIT_COLUMNS}, claimed_by, claimed_station, claimed_at FROM units WHERE serial = ?"
_NO_ROW = (None, None, UnitStatus.IN_ROUTE, None, None, None, None, None, None)
"""The row of a unit never seen, as its first claim inserts it."""
_NOW = (
    "SELECT claimed_by, lot, status, reason, product, lifecycle, "
    "(SELECT count(*) FROM attempts a JOIN visits v ON v.id = a.visit WHERE v.serial = units.serial), "
    "(SELECT hold FROM lots WHERE lots.lot = ?) FROM units WHERE serial = ?"
)
"""Who holds the unit, and what a decision on it read (``Sighting.version``), in one statement."""


@dataclass(frozen=True)
class Sighting:
    """A unit as read for a decision: its record, its lot's hold, and what a claim must find unchanged."""

    record: UnitRecord
    lot: str | None
    """The lot whose hold was read: the one the station was given, else the unit's own."""
    hold: str | None
    version: tuple[Any, ...]
    refused: str | None = None
    """Why it may not be claimed whatever is decided: another slot or a running station holds it."""
    dead: str | None = None
    """The holder of its claim, a station that is not running any more."""


def look(tx: Tx, serial: str, lot: str | None, me: str) -> Sighting:
    """The unit as it is now. Its row is read first, then its attempts and its lot's hold: whatever changes
    after the row was read, ``take`` sees."""
    found = tx.row(_ROW, (serial,))
    row = found or _NO_ROW
    record = unit_with(tx, serial, None if found is None else found[:6])
    unit_lot = lot if lot is not None else record.lot
    hold = reading.lot_hold(tx, unit_lot) if unit_lot is not None else None
    version = (*row[1:6], len(record.attempts), hold)
    holder, where, since = row[6:]
    if holder is None:
        return Sighting(record, unit_lot, hold, version)
    if holder == me:
        return Sighting(
            record, unit_lot, hold, version, "route interlock: the unit is being run in another slot of this station"
        )
    if tx.alive(holder):
        at = f" at station {where}" if where else ""
        refused = f"route interlock: the unit is being run{at} since {when(since)} ({holder})"
        return Sighting(record, unit_lot, hold, version, refused)
    return Sighting(record, unit_lot, hold, version, dead=holder)


@dataclass(frozen=True)
class Teller:
    """Who tells the line of a claim, and what it says besides the unit: the socket and the operator."""

    source: Source
    socket: int
    operator: str | None


def take(
    tx: Tx,
    me: str,
    serial: str,
    seen: Sighting,
    station: str | None,
    lot: str | None,
    product: str | None,
    tell: Teller | None = None,
) -> bool:
    """Claim the unit for ``me`` if it is as ``seen`` and unclaimed; False (nothing written) if not.

    With ``tell``, the claim's unit-started message is written with it."""
    now = time.time()
    new = tx.run("INSERT INTO units (serial, updated) VALUES (?, ?) ON CONFLICT (serial) DO NOTHING", (serial, now))
    found = tx.row(_NOW + tx.for_update, (seen.lot, serial))
    assert found is not None
    if found[0] is not None or tuple(found[1:]) != seen.version:
        if new == 1:  # a unit is listed once claimed, never for being looked at
            tx.run("DELETE FROM units WHERE serial = ?", (serial,))
        return False
    tx.run(
        "UPDATE units SET claimed_by = ?, claimed_station = ?, claimed_at = ?, lot = coalesce(?, lot), "
        "product = coalesce(?, product), updated = ? WHERE serial = ?",
        (me, station, now, lot, product, now, serial),
    )
    if tell is not None:
        said = unit_started(tell.source, serial, tell.socket, seen.lot, tell.operator, now)
        outbox.put_one(tx, tell.source, said)
    return True


def take_over(tx: Tx, write: AttemptWriter, serial: str, dead: str) -> None:
    """The unit's claim is a dead station's: recover what it left (if the claim is still its) and free the unit."""
    row = tx.row(f"SELECT claimed_by FROM units WHERE serial = ?{tx.for_update}", (serial,))
    if row is not None and row[0] == dead and not tx.alive(dead):
        recover_holder(tx, write, dead, serial)
