"""Reading the records back: a unit's whole record, units by status, lot or time, lots, the audit log, releases.

Only the store's worker thread calls these, inside its transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.record import Decision, LotRecord, UnitRecord
from engine.store.rows import SELECT_ATTEMPTS, UNIT_COLUMNS, attempt_of, unit_of
from engine.store.worker import Tx


def load_unit(tx: Tx, serial: str) -> UnitRecord:
    return unit_with(tx, serial, tx.row(f"SELECT {UNIT_COLUMNS} FROM units WHERE serial = ?", (serial,)))


def unit_with(tx: Tx, serial: str, row: Sequence[Any] | None) -> UnitRecord:
    """The unit's record from its row (``UNIT_COLUMNS``, None for a unit without one), read already."""
    attempts = [attempt_of(r) for r in tx.rows(SELECT_ATTEMPTS, (serial,))]
    identities = tx.rows(
        "SELECT kind, value, issued, retired FROM identities WHERE serial = ? ORDER BY issued", (serial,)
    )
    images = tx.rows("SELECT image, sha256, stage, written FROM images WHERE serial = ? ORDER BY written", (serial,))
    decisions = tx.rows("SELECT at, by, action, subject, reason FROM audit WHERE subject = ? ORDER BY id", (serial,))
    return unit_of(row, serial, attempts, identities, images, decisions)


def lot_hold(tx: Tx, lot: str) -> str | None:
    found = tx.row("SELECT hold FROM lots WHERE lot = ?", (lot,))
    return None if found is None else found[0]


def units_where(tx: Tx, status: str | None, lot: str | None, since: float | None) -> list[UnitRecord]:
    """Every unit (oldest first) with its whole record, or those of one status or lot, or seen since a time."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if lot is not None:
        where.append("lot = ?")
        params.append(lot)
    if since is not None:
        where.append("updated >= ?")
        params.append(since)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    serials = [s for (s,) in tx.rows(f"SELECT serial FROM units{clause} ORDER BY updated, serial", params)]
    return [load_unit(tx, s) for s in serials]


def lots(tx: Tx) -> list[LotRecord]:
    failures: dict[str, dict[str, int]] = {}
    for lot, stage, count in tx.rows("SELECT lot, stage, failures FROM lot_failures"):
        failures.setdefault(lot, {})[stage] = int(count)
    names = {lot for (lot,) in tx.rows("SELECT DISTINCT lot FROM units WHERE lot IS NOT NULL")}
    holds = {lot: (hold, at) for lot, hold, at in tx.rows("SELECT lot, hold, held_at FROM lots")}
    return [
        LotRecord(lot, *holds.get(lot, (None, None)), failures=failures.get(lot, {}))
        for lot in sorted(names | set(holds))
    ]


def audit_log(tx: Tx, subject: str | None) -> list[Decision]:
    if subject is None:
        rows = tx.rows("SELECT at, by, action, subject, reason FROM audit ORDER BY id")
    else:
        rows = tx.rows("SELECT at, by, action, subject, reason FROM audit WHERE subject = ? ORDER BY id", (subject,))
    return [Decision(*row) for row in rows]


def released(tx: Tx, content_hash: str) -> Decision | None:
    """Who released this recipe content for production, and when (None: it is not released)."""
    found = tx.row(
        "SELECT released_at, released_by, recipe, version FROM releases WHERE recipe_hash = ?", (content_hash,)
    )
    if found is None:
        return None
    at, who, name, number = found
    return Decision(at, who, "recipe-release", content_hash, f"{name} v{number}")


def releases_of(tx: Tx, recipe: str) -> list[Decision]:
    rows = tx.rows(
        "SELECT released_at, released_by, recipe_hash, version FROM releases WHERE recipe = ? ORDER BY released_at",
        (recipe,),
    )
    return [Decision(at, who, "recipe-release", h, f"{recipe} v{number}") for at, who, h, number in rows]
