"""What a station that died leaves behind: its irreversible steps without an outcome, its claims.

Each open intent of a dead holder becomes an interrupted ERROR attempt and quarantines its unit; the
holder's claims are released. Only the store's worker thread calls these, inside its transactions.
"""

from __future__ import annotations

import time
from typing import Any

from engine.messages import Source, unit_quarantined
from engine.outcome import Outcome, UnitStatus
from engine.record import Attempt, RecipeRef
from engine.store import outbox
from engine.store.rows import AttemptWriter
from engine.store.worker import Tx

STATION = "floorflow"
"""Who the audit log names for what the stations decide themselves (a quarantine)."""

_OPEN_INTENTS = (
    "SELECT id, serial, stage, step, attempt, station, slot, recipe, recipe_version, recipe_hash, lot, operator, "
    "started FROM intents WHERE holder = ? AND outcome IS NULL"
)


def recover_dead(tx: Tx, write: AttemptWriter, me: str) -> list[tuple[str, str]]:
    """Recover every holder of an open intent or a claim that is not running any more (never ``me``)."""
    holders = {h for (h,) in tx.rows("SELECT DISTINCT holder FROM intents WHERE outcome IS NULL")}
    holders |= {h for (h,) in tx.rows("SELECT DISTINCT claimed_by FROM units WHERE claimed_by IS NOT NULL")}
    done: list[tuple[str, str]] = []
    for holder in sorted(holders):
        if holder != me and not tx.alive(holder):
            done += recover_holder(tx, write, holder)
    return done


def recover_holder(tx: Tx, write: AttemptWriter, holder: str, only: str | None = None) -> list[tuple[str, str]]:
    """A station that died: its open irreversible steps become interrupted attempts, their units quarantined.

    The intents are locked as they are read, and each is closed only if it is still open: an outcome
    committed meanwhile (by whoever) is never overwritten, and its unit is not quarantined.
    """
    select = _OPEN_INTENTS
    params: tuple[Any, ...] = (holder,)
    if only is not None:
        select += " AND serial = ?"
        params = (holder, only)
    done: list[tuple[str, str]] = []
    now = time.time()
    for (
        ident,
        serial,
        stage,
        step,
        number,
        station,
        slot,
        recipe,
        version,
        content_hash,
        lot,
        operator,
        started,
    ) in tx.rows(select + tx.for_update, params):
        closed = tx.run(
            "UPDATE intents SET outcome = ?, ended = ? WHERE id = ? AND outcome IS NULL",
            (Outcome.ERROR.value, now, ident),
        )
        if closed != 1:
            continue
        at = f" at station {station}" if station else ""
        reason = (
            f"irreversible stage '{stage}' was interrupted{at} (slot {slot}, started {when(started)}): the station "
            "stopped before its outcome was recorded, so whether it took effect is unknown"
        )
        error = "interrupted: the station stopped during this irreversible step"
        write(
            tx,
            [Attempt(serial, stage, step, number, Outcome.ERROR, started, now, RecipeRef(recipe, version, content_hash),
                     lot, station, slot, operator, (), error, None)],
        )  # fmt: skip
        quarantine(tx, serial, reason, write.source)
        done.append((serial, reason))
    if only is None:
        tx.run(
            "UPDATE units SET claimed_by = NULL, claimed_station = NULL, claimed_at = NULL WHERE claimed_by = ?",
            (holder,),
        )
    else:
        tx.run(
            "UPDATE units SET claimed_by = NULL, claimed_station = NULL, claimed_at = NULL WHERE serial = ?", (only,)
        )
    return done


def quarantine(tx: Tx, serial: str, reason: str, source: Source | None = None, socket: int | None = None) -> None:
    """Quarantine the unit; with ``source``, its unit-quarantined message is written with it."""
    now = time.time()
    tx.run(
        "UPDATE units SET status = ?, reason = ?, updated = ? WHERE serial = ?",
        (UnitStatus.QUARANTINED, reason, now, serial),
    )
    audit(tx, STATION, "quarantine", serial, reason)
    if source is not None:
        outbox.put_one(tx, source, unit_quarantined(source, serial, reason, now, socket))


def audit(tx: Tx, by: str, action: str, subject: str, reason: str | None) -> None:
    tx.run(
        "INSERT INTO audit (at, by, action, subject, reason) VALUES (?, ?, ?, ?, ?)",
        (time.time(), by, action, subject, reason),
    )


def when(epoch: float | None) -> str:
    if epoch is None:
        return "an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
