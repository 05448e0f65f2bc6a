"""The durable store: records, route interlocks, irreversible intents, identity pools, lots, audit.

One class over both databases (the SQL is written once); ``engine.store.sqlite`` and
``engine.store.postgres`` say what differs. Every method is safe to call from any thread: the
store's one connection belongs to its worker thread (``engine.store.worker``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.history import QUARANTINED, Decide
from engine.outcome import Outcome
from engine.record import Attempt, Decision, LotRecord, RecipeRef, UnitRecord
from engine.store.backend import Backend
from engine.store.migrations import MIGRATIONS, Migration
from engine.store.rows import (
    SELECT_ATTEMPTS,
    UNIT_COLUMNS,
    AttemptWriter,
    attempt_of,
    unit_of,
)
from engine.store.worker import StoreError, Tx, Worker

DECISIONS = ("done", "not-done")
STATION = "floorflow"
"""Who the audit log names for what the stations decide themselves (a quarantine)."""


class SqlStore:
    def __init__(self, backend: Backend, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.backend = backend
        self.shown = backend.shown
        self._write = AttemptWriter()
        self._worker = Worker(backend, self._write, migrations)
        self.holder = self._worker.holder

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._worker.close()

    def flush(self) -> None:
        """Return once every attempt added so far is committed."""
        self._worker.call(lambda tx: None, write=False)

    def schema_version(self) -> int:
        return int(self._worker.call(lambda tx: (tx.row("SELECT max(version) FROM schema_version") or (0,))[0]))

    # -- the runner's side (engine.history.History) ----------------------------------------------

    def unit(self, serial: str) -> UnitRecord:
        return self._worker.call(lambda tx: _load_unit(tx, serial), write=False)

    def claim(
        self, serial: str, *, station: str | None, lot: str | None, product: str | None, decide: Decide
    ) -> tuple[UnitRecord, str | None]:
        """The route interlock: lock the unit, decide whether this station may run it, and claim it if so.

        A unit claimed by a running station is refused; a claim left by a station that died is taken
        over, and an irreversible step it left without an outcome quarantines the unit first.
        """

        def work(tx: Tx) -> tuple[UnitRecord, str | None]:
            now = time.time()
            new = tx.run(
                "INSERT INTO units (serial, updated) VALUES (?, ?) ON CONFLICT (serial) DO NOTHING", (serial, now)
            )
            found = tx.row(
                f"SELECT claimed_by, claimed_station, claimed_at FROM units WHERE serial = ?{tx.for_update}", (serial,)
            )
            assert found is not None
            holder, where, since = found
            if holder == self.holder:
                return _load_unit(tx, serial), "route interlock: the unit is being run in another slot of this station"
            if holder is not None:
                if tx.alive(holder):
                    at = f" at station {where}" if where else ""
                    return _load_unit(tx, serial), (
                        f"route interlock: the unit is being run{at} since {_when(since)} ({holder})"
                    )
                _recover_holder(tx, self._write, holder, serial)
            record = _load_unit(tx, serial)
            unit_lot = lot if lot is not None else record.lot
            hold = _lot_hold(tx, unit_lot) if unit_lot is not None else None
            refused = decide(record, hold)
            if refused is None:
                tx.run(
                    "UPDATE units SET claimed_by = ?, claimed_station = ?, claimed_at = ?, lot = coalesce(?, lot), "
                    "product = coalesce(?, product), updated = ? WHERE serial = ?",
                    (self.holder, station, now, lot, product, now, serial),
                )
                record.lot = unit_lot
            elif new == 1:
                # Never seen before and refused (a mistyped serial, a unit at the wrong station): not a unit.
                tx.run("DELETE FROM units WHERE serial = ?", (serial,))
            return record, refused

        return self._worker.call(work)

    def add(self, attempt: Attempt, *, intent: int | None = None, quarantine: str | None = None) -> None:
        """Record an attempt: written behind, or, closing an irreversible intent, durably before returning."""
        if intent is None and quarantine is None:
            self._worker.write(attempt)
            return

        def work(tx: Tx) -> None:
            self._write(tx, [attempt])
            if intent is not None:
                tx.run(
                    "UPDATE intents SET outcome = ?, ended = ? WHERE id = ?",
                    (attempt.outcome.value, attempt.ended, intent),
                )
            if quarantine is not None:
                _quarantine(tx, attempt.serial, quarantine)

        self._worker.call(work, durable=True)

    def intend(self, attempt: Attempt) -> int:
        """Journal, durably, that an irreversible step is about to run (``attempt`` as it starts)."""
        r = attempt.recipe

        def work(tx: Tx) -> int:
            tx.run(
                "INSERT INTO intents (serial, stage, step, attempt, station, slot, recipe, recipe_version, "
                "recipe_hash, lot, operator, holder, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (attempt.serial, attempt.stage, attempt.step, attempt.attempt, attempt.station, attempt.slot,
                 r.recipe, r.version, r.content_hash, attempt.lot, attempt.operator, self.holder, attempt.started),
            )  # fmt: skip
            found = tx.row("SELECT max(id) FROM intents WHERE holder = ? AND serial = ?", (self.holder, attempt.serial))
            assert found is not None
            return int(found[0])

        return self._worker.call(work, durable=True)

    def finish(self, serial: str, status: str, reason: str | None, lifecycle: str | None = None) -> None:
        """The unit leaves the station: release the claim, keep where its route stands."""

        def work(tx: Tx) -> None:
            now = time.time()
            tx.run("INSERT INTO units (serial, updated) VALUES (?, ?) ON CONFLICT (serial) DO NOTHING", (serial, now))
            tx.run(
                "UPDATE units SET claimed_by = NULL, claimed_station = NULL, claimed_at = NULL, "
                "lifecycle = coalesce(?, lifecycle), reason = CASE WHEN status = 'quarantined' THEN reason ELSE ? END, "
                "updated = ? WHERE serial = ? AND "
                "(claimed_by IS NULL OR claimed_by = ?)",
                (lifecycle, reason, now, serial, self.holder),
            )
            if status in ("shipped", "scrapped"):
                tx.run("UPDATE units SET status = ? WHERE serial = ? AND status <> ?", (status, serial, QUARANTINED))
            if status == "scrapped":
                tx.run("UPDATE identities SET retired = 1 WHERE serial = ?", (serial,))

        self._worker.call(work)

    def lot_hold(self, lot: str) -> str | None:
        return self._worker.call(lambda tx: _lot_hold(tx, lot), write=False)

    def hold_lot(self, lot: str, reason: str) -> None:
        def work(tx: Tx) -> None:
            tx.run(
                "INSERT INTO lots (lot, hold, held_at) VALUES (?, ?, ?) ON CONFLICT (lot) DO UPDATE SET "
                "hold = coalesce(lots.hold, excluded.hold), held_at = coalesce(lots.held_at, excluded.held_at)",
                (lot, reason, time.time()),
            )

        self._worker.call(work)

    def lot_failed(self, lot: str, stage: str) -> int:
        def work(tx: Tx) -> int:
            tx.run("INSERT INTO lots (lot) VALUES (?) ON CONFLICT (lot) DO NOTHING", (lot,))
            found = tx.row(
                "INSERT INTO lot_failures (lot, stage, failures) VALUES (?, ?, 1) ON CONFLICT (lot, stage) "
                "DO UPDATE SET failures = lot_failures.failures + 1 RETURNING failures",
                (lot, stage),
            )
            assert found is not None
            return int(found[0])

        return self._worker.call(work)

    # -- identities ----------------------------------------------------------------------------

    def issue(
        self,
        kind: str,
        serial: str,
        *,
        space: str,
        pool: str,
        first: int,
        last: int,
        make: Callable[[int], str],
        what: str,
    ) -> str:
        """The unit's identity of ``kind``: the one it was given, or the pool's next never-issued value.

        Numbers ``first``..``last`` of ``pool`` are taken in order, each once, across every station on
        the store; ``make`` turns a number into the value, unique within ``space``. An exhausted pool
        raises LookupError naming ``what`` before anything is issued.
        """

        def work(tx: Tx) -> str:
            given = tx.row("SELECT value FROM identities WHERE serial = ? AND kind = ?", (serial, kind))
            if given is not None:
                return str(given[0])
            tx.run(
                "INSERT INTO identity_pools (pool, next, last) VALUES (?, ?, ?) ON CONFLICT (pool) DO NOTHING",
                (pool, first, last),
            )
            while True:
                taken = tx.row(
                    "UPDATE identity_pools SET next = next + 1 WHERE pool = ? AND next <= last RETURNING next - 1",
                    (pool,),
                )
                if taken is None:
                    raise LookupError(f"the {what} is exhausted: all {last - first + 1} values were issued")
                value = make(int(taken[0]))
                fresh = tx.row(
                    "INSERT INTO identities (space, value, kind, pool, serial, issued) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (space, value) DO NOTHING RETURNING value",
                    (space, value, kind, pool, serial, time.time()),
                )
                if fresh is not None:
                    return value

        return self._worker.call(work, durable=True)

    def remaining(self, pool: str, first: int, last: int) -> int:
        found = self._worker.call(
            lambda tx: tx.row("SELECT next, last FROM identity_pools WHERE pool = ?", (pool,)), write=False
        )
        start, end = (first, last) if found is None else (int(found[0]), int(found[1]))
        return max(0, end - start + 1)

    # -- people's decisions ------------------------------------------------------------------------

    def release(self, serial: str, decision: str, by: str, note: str | None = None) -> str:
        """A supervisor's decision on a quarantined unit's interrupted irreversible step; says what it did."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")

        def work(tx: Tx) -> str:
            found = tx.row(f"SELECT status, claimed_by FROM units WHERE serial = ?{tx.for_update}", (serial,))
            if found is None:
                raise LookupError(f"unit {serial} is not in the store {self.shown}")
            status, holder = found
            if status != QUARANTINED:
                raise ValueError(f"unit {serial} is not quarantined (it is {status}): there is nothing to release")
            if holder is not None and tx.alive(holder):
                raise ValueError(f"unit {serial} is being run by a station ({holder}): release it when it has stopped")
            intent = tx.row(
                "SELECT id, stage, step, attempt, recipe, recipe_version, recipe_hash, lot FROM intents "
                "WHERE serial = ? AND decision IS NULL AND (outcome IS NULL OR outcome IN ('ERROR', 'ABORTED')) "
                "ORDER BY id DESC",
                (serial,),
            )
            now = time.time()
            what = "no interrupted step was found"
            if intent is not None:
                ident, stage, step, number, recipe, version, content_hash, lot = intent
                outcome = Outcome.PASS if decision == "done" else Outcome.NOT_DONE
                note_text = f"{by} decided: {decision}" + (f" ({note})" if note else "")
                self._write(
                    tx,
                    [Attempt(serial, stage, step, number, outcome, now, now, RecipeRef(recipe, version, content_hash),
                             lot, None, 0, by, (), note_text, None)],
                )  # fmt: skip
                tx.run("UPDATE intents SET decision = ? WHERE id = ?", (decision, ident))
                what = f"'{stage}' counts as {'done' if decision == 'done' else 'not done: it may run again'}"
            tx.run(
                "UPDATE units SET status = 'in-route', reason = ?, claimed_by = NULL, updated = ? WHERE serial = ?",
                (f"released by {by}: {what}", now, serial),
            )
            _audit(tx, by, f"release-{decision}", serial, note or what)
            return what

        return self._worker.call(work, durable=True)

    def release_recipe(self, recipe: str, version: int, content_hash: str, source: str, by: str) -> Decision | None:
        """Record a recipe's content as released for production; the earlier release if it already was."""

        def work(tx: Tx) -> Decision | None:
            earlier = tx.row(
                "SELECT released_at, released_by, recipe, version FROM releases WHERE recipe_hash = ?", (content_hash,)
            )
            if earlier is not None:
                at, who, name, number = earlier
                return Decision(at, who, "recipe-release", content_hash, f"{name} v{number}")
            now = time.time()
            tx.run(
                "INSERT INTO releases (recipe_hash, recipe, version, source, released_by, released_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (content_hash, recipe, version, source, by, now),
            )
            _audit(tx, by, "recipe-release", content_hash, f"{recipe} v{version} from {source}")
            return None

        return self._worker.call(work, durable=True)

    def released(self, content_hash: str) -> Decision | None:
        """Who released this recipe content for production, and when (None: it is not released)."""

        def work(tx: Tx) -> Decision | None:
            found = tx.row(
                "SELECT released_at, released_by, recipe, version FROM releases WHERE recipe_hash = ?", (content_hash,)
            )
            if found is None:
                return None
            at, who, name, number = found
            return Decision(at, who, "recipe-release", content_hash, f"{name} v{number}")

        return self._worker.call(work, write=False)

    def releases_of(self, recipe: str) -> list[Decision]:
        def work(tx: Tx) -> list[Decision]:
            rows = tx.rows(
                "SELECT released_at, released_by, recipe_hash, version FROM releases WHERE recipe = ? "
                "ORDER BY released_at",
                (recipe,),
            )
            return [Decision(at, who, "recipe-release", h, f"{recipe} v{number}") for at, who, h, number in rows]

        return self._worker.call(work, write=False)

    def recover(self) -> list[tuple[str, str]]:
        """Quarantine every unit whose irreversible step was left without an outcome by a station that died."""

        def work(tx: Tx) -> list[tuple[str, str]]:
            holders = {h for (h,) in tx.rows("SELECT DISTINCT holder FROM intents WHERE outcome IS NULL")}
            holders |= {h for (h,) in tx.rows("SELECT DISTINCT claimed_by FROM units WHERE claimed_by IS NOT NULL")}
            done: list[tuple[str, str]] = []
            for holder in sorted(holders):
                if holder != self.holder and not tx.alive(holder):
                    done += _recover_holder(tx, self._write, holder)
            return done

        return self._worker.call(work, durable=True)

    # -- reading -----------------------------------------------------------------------------------

    def units(
        self, *, status: str | None = None, lot: str | None = None, since: float | None = None
    ) -> list[UnitRecord]:
        """Every unit (oldest first) with its whole record, or those of one status or lot, or seen since a time."""

        def work(tx: Tx) -> list[UnitRecord]:
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
            return [_load_unit(tx, s) for s in serials]

        return self._worker.call(work, write=False)

    def lots(self) -> list[LotRecord]:
        def work(tx: Tx) -> list[LotRecord]:
            failures: dict[str, dict[str, int]] = {}
            for lot, stage, count in tx.rows("SELECT lot, stage, failures FROM lot_failures"):
                failures.setdefault(lot, {})[stage] = int(count)
            names = {lot for (lot,) in tx.rows("SELECT DISTINCT lot FROM units WHERE lot IS NOT NULL")}
            holds = {lot: (hold, at) for lot, hold, at in tx.rows("SELECT lot, hold, held_at FROM lots")}
            return [
                LotRecord(lot, *holds.get(lot, (None, None)), failures=failures.get(lot, {}))
                for lot in sorted(names | set(holds))
            ]

        return self._worker.call(work, write=False)

    def audit(self, subject: str | None = None) -> list[Decision]:
        def work(tx: Tx) -> list[Decision]:
            if subject is None:
                rows = tx.rows("SELECT at, by, action, subject, reason FROM audit ORDER BY id")
            else:
                rows = tx.rows(
                    "SELECT at, by, action, subject, reason FROM audit WHERE subject = ? ORDER BY id", (subject,)
                )
            return [Decision(*row) for row in rows]

        return self._worker.call(work, write=False)


# -- in the worker's transactions ---------------------------------------------------------------------


def _load_unit(tx: Tx, serial: str) -> UnitRecord:
    row = tx.row(f"SELECT {UNIT_COLUMNS} FROM units WHERE serial = ?", (serial,))
    attempts = [attempt_of(r) for r in tx.rows(SELECT_ATTEMPTS, (serial,))]
    identities = tx.rows(
        "SELECT kind, value, issued, retired FROM identities WHERE serial = ? ORDER BY issued", (serial,)
    )
    images = tx.rows("SELECT image, sha256, stage, written FROM images WHERE serial = ? ORDER BY written", (serial,))
    decisions = tx.rows("SELECT at, by, action, subject, reason FROM audit WHERE subject = ? ORDER BY id", (serial,))
    return unit_of(row, serial, attempts, identities, images, decisions)


def _lot_hold(tx: Tx, lot: str) -> str | None:
    found = tx.row("SELECT hold FROM lots WHERE lot = ?", (lot,))
    return None if found is None else found[0]


def _audit(tx: Tx, by: str, action: str, subject: str, reason: str | None) -> None:
    tx.run(
        "INSERT INTO audit (at, by, action, subject, reason) VALUES (?, ?, ?, ?, ?)",
        (time.time(), by, action, subject, reason),
    )


def _quarantine(tx: Tx, serial: str, reason: str) -> None:
    tx.run(
        "UPDATE units SET status = ?, reason = ?, updated = ? WHERE serial = ?",
        (QUARANTINED, reason, time.time(), serial),
    )
    _audit(tx, STATION, "quarantine", serial, reason)


def _recover_holder(tx: Tx, write: AttemptWriter, holder: str, only: str | None = None) -> list[tuple[str, str]]:
    """A station that died: its open irreversible steps become interrupted attempts, their units quarantined."""
    select = (
        "SELECT id, serial, stage, step, attempt, station, slot, recipe, recipe_version, recipe_hash, lot, operator, "
        "started FROM intents WHERE holder = ? AND outcome IS NULL"
    )
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
    ) in tx.rows(select, params):
        at = f" at station {station}" if station else ""
        reason = (
            f"irreversible stage '{stage}' was interrupted{at} (slot {slot}, started {_when(started)}): the station "
            "stopped before its outcome was recorded, so whether it took effect is unknown"
        )
        error = "interrupted: the station stopped during this irreversible step"
        write(
            tx,
            [Attempt(serial, stage, step, number, Outcome.ERROR, started, now, RecipeRef(recipe, version, content_hash),
                     lot, station, slot, operator, (), error, None)],
        )  # fmt: skip
        tx.run("UPDATE intents SET outcome = ?, ended = ? WHERE id = ?", (Outcome.ERROR.value, now, ident))
        _quarantine(tx, serial, reason)
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


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


__all__ = ["DECISIONS", "QUARANTINED", "SqlStore", "StoreError"]
