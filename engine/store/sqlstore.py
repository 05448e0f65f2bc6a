"""The durable store: records, route interlocks, irreversible intents, identity pools, lots, audit.

One class over both databases (the SQL is written once); ``engine.store.sqlite`` and
``engine.store.postgres`` say what differs. Every method is safe to call from any thread: the
store's one connection belongs to its worker thread (``engine.store.worker``). What a dead station
left is recovered in ``engine.store.recovery``, people's decisions are ``engine.store.decisions``,
the records are read back by ``engine.store.reading``, and the line's events wait in the outbox
(``engine.store.outbox``) once the store is told the line.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from functools import partial

from engine.messages import Message, Source, lot_held, unit_finished
from engine.outcome import UnitStatus
from engine.record import Attempt, Decision, LotRecord, UnitRecord
from engine.store import claims, decisions, figures, measured, outbox, reading, recovery, timings
from engine.store.backend import Backend
from engine.store.decisions import DECISIONS
from engine.store.figures import Window
from engine.store.history import Decide
from engine.store.migrations import MIGRATIONS, Migration
from engine.store.reading import load_unit
from engine.store.recovery import recover_dead
from engine.store.rows import AttemptWriter
from engine.store.worker import StoreError, Tx, Worker

CLAIM_TRIES = 100
"""How often a claim decides again on a unit that changed meanwhile before giving up."""
UNRELEASED_RUN = "unreleased-recipe-run"
"""The audit log's action for a run of recipe content never released, on a store that holds releases."""


class SqlStore:
    def __init__(self, backend: Backend, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.backend = backend
        self.shown = backend.shown
        self._write = AttemptWriter(outbox.put_attempts)
        self._behind = outbox.Behind(self._write)
        self._worker = Worker(backend, self._behind, migrations)
        self.holder = self._worker.holder
        # A store dropped without close() (a test's, a script's) still ends its thread and connection.
        self._dropped = weakref.finalize(self, self._worker.dropped)

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._dropped.detach()
        self._worker.close()

    def flush(self) -> None:
        """Return once every attempt added so far is committed."""
        self._worker.call(lambda tx: None, write=False)

    @property
    def write_behind_max_s(self) -> float:
        """The longest an attempt written behind has waited between ``add`` and its commit, so far."""
        return self._worker.behind_max_s

    def schema_version(self) -> int:
        return int(self._worker.call(lambda tx: (tx.row("SELECT max(version) FROM schema_version") or (0,))[0]))

    # -- the runner's side (engine.store.history.History) ----------------------------------------------

    def unit(self, serial: str) -> UnitRecord:
        return self._worker.call(lambda tx: load_unit(tx, serial), write=False)

    def claim(
        self,
        serial: str,
        *,
        station: str | None,
        lot: str | None,
        product: str | None,
        decide: Decide,
        socket: int = 0,
        operator: str | None = None,
    ) -> tuple[UnitRecord, str | None]:
        """The route interlock: read the unit, ``decide`` with no lock held, claim it if it is still as read.

        A unit claimed by a running station is refused; a claim left by a station that died is taken
        over, and an irreversible step it left without an outcome quarantines the unit first. When the
        unit changed between the reading and the claim, ``decide`` is asked again (``engine.store.claims``).
        ``socket`` and ``operator`` are what the claim's line event says besides the unit.
        """
        source = self._write.source
        tell = None if source is None else claims.Teller(source, socket, operator)
        look = partial(claims.look, serial=serial, lot=lot, me=self.holder)
        for _ in range(CLAIM_TRIES):
            seen = self._worker.call(look, write=False)
            if seen.refused is not None:
                return seen.record, seen.refused
            if seen.dead is not None:
                self._worker.call(
                    partial(claims.take_over, write=self._write, serial=serial, dead=seen.dead), durable=True
                )
                continue
            refused = decide(seen.record, seen.hold)
            if refused is not None:
                return seen.record, refused
            take = partial(
                claims.take, me=self.holder, serial=serial, seen=seen, station=station, lot=lot, product=product,
                tell=tell,
            )  # fmt: skip
            if self._worker.call(take):
                seen.record.lot = seen.lot
                return seen.record, None
        raise StoreError(f"unit {serial} changed every time it was about to be claimed ({CLAIM_TRIES} times)")

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
                recovery.quarantine(tx, attempt.serial, quarantine, self._write.source, attempt.slot)

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

    def finish(
        self, serial: str, status: str, reason: str | None, lifecycle: str | None = None, socket: int = 0
    ) -> None:
        """The unit leaves the station (its ``socket``): release the claim, keep where its route stands.

        Committed durably before it returns, with every attempt added before it: a verdict shown once
        this returns is on disk.
        """
        source = self._write.source

        def work(tx: Tx) -> None:
            now = time.time()
            tx.run("INSERT INTO units (serial, updated) VALUES (?, ?) ON CONFLICT (serial) DO NOTHING", (serial, now))
            tx.run(
                "UPDATE units SET claimed_by = NULL, claimed_station = NULL, claimed_at = NULL, "
                "lifecycle = coalesce(?, lifecycle), reason = CASE WHEN status = ? THEN reason ELSE ? END, "
                "updated = ? WHERE serial = ? AND (claimed_by IS NULL OR claimed_by = ?)",
                (lifecycle, UnitStatus.QUARANTINED, reason, now, serial, self.holder),
            )
            if status in (UnitStatus.SHIPPED, UnitStatus.SCRAPPED):
                tx.run(
                    "UPDATE units SET status = ? WHERE serial = ? AND status <> ?",
                    (status, serial, UnitStatus.QUARANTINED),
                )
            if status == UnitStatus.SCRAPPED:
                tx.run("UPDATE identities SET retired = 1 WHERE serial = ?", (serial,))
            if source is not None:
                outbox.put_one(tx, source, unit_finished(source, serial, socket, status, reason, now))

        self._worker.call(work, durable=True)

    def lot_hold(self, lot: str) -> str | None:
        return self._worker.call(lambda tx: reading.lot_hold(tx, lot), write=False)

    def hold_lot(self, lot: str, reason: str) -> None:
        """Put the lot on hold (its first hold is kept), durably before returning: no power cut lifts it."""
        source = self._write.source

        def work(tx: Tx) -> None:
            now = time.time()
            held = tx.run(
                "INSERT INTO lots (lot, hold, held_at) VALUES (?, ?, ?) ON CONFLICT (lot) DO UPDATE SET "
                "hold = excluded.hold, held_at = excluded.held_at WHERE lots.hold IS NULL",
                (lot, reason, now),
            )
            if held and source is not None:  # only its first hold is news
                outbox.put_one(tx, source, lot_held(source, lot, reason, now))

        self._worker.call(work, durable=True)

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
        return self._worker.call(
            lambda tx: decisions.release_unit(tx, self._write, self.shown, serial, decision, by, note), durable=True
        )

    def release_recipe(self, recipe: str, version: int, content_hash: str, source: str, by: str) -> Decision | None:
        """Record a recipe's content as released for production; the earlier release if it already was."""
        return self._worker.call(
            lambda tx: decisions.release_recipe(tx, recipe, version, content_hash, source, by), durable=True
        )

    def audit_unreleased_run(
        self, recipe: str, version: int, content_hash: str, station: str | None, operator: str
    ) -> bool:
        """On a store that holds recipe releases, note a run of recipe content never released in the audit
        log (``UNRELEASED_RUN``, its subject the content hash); True when it was noted."""

        def work(tx: Tx) -> bool:
            if tx.row("SELECT 1 FROM releases LIMIT 1") is None or reading.released(tx, content_hash) is not None:
                return False
            where = f"station {station}" if station else "every station"
            reason = f"{recipe} v{version} (hash {content_hash}) run at {where} by {operator}"
            recovery.audit(tx, operator, UNRELEASED_RUN, content_hash, reason)
            return True

        return self._worker.call(work, durable=True)

    def note_decision(self, by: str, action: str, subject: str, reason: str | None) -> None:
        """Keep a person's decision in the audit log (one on a unit, its subject the serial, is in its record)."""
        self._worker.call(lambda tx: recovery.audit(tx, by, action, subject, reason), durable=True)

    def released(self, content_hash: str) -> Decision | None:
        """Who released this recipe content for production, and when (None: it is not released)."""
        return self._worker.call(lambda tx: reading.released(tx, content_hash), write=False)

    def releases_of(self, recipe: str) -> list[Decision]:
        return self._worker.call(lambda tx: reading.releases_of(tx, recipe), write=False)

    def recover(self) -> list[tuple[str, str]]:
        """Quarantine every unit whose irreversible step was left without an outcome by a station that died."""
        return self._worker.call(lambda tx: recover_dead(tx, self._write, self.holder), durable=True)

    # -- reading -----------------------------------------------------------------------------------

    def units(
        self, *, status: str | None = None, lot: str | None = None, since: float | None = None
    ) -> list[UnitRecord]:
        """Every unit (oldest first) with its whole record, or those of one status or lot, or seen since a time."""
        return self._worker.call(lambda tx: reading.units_where(tx, status, lot, since), write=False)

    def lots(self) -> list[LotRecord]:
        return self._worker.call(reading.lots, write=False)

    def audit(self, subject: str | None = None) -> list[Decision]:
        return self._worker.call(lambda tx: reading.audit_log(tx, subject), write=False)

    def figures(self, window: figures.Window) -> figures.Tallies:
        """The line's figures over the window, summed by the database (``engine.store.figures``), once the
        measurements written since they were last read are unnested (``engine.store.measured``)."""
        measured.catch_up(self._worker.call)
        return self._worker.call(lambda tx: figures.tallies(tx, window), write=False)

    def stage_timings(self, window: Window) -> timings.Timings:
        """Each stage's attempt times and failure chances over the window (``engine.store.timings``)."""
        measured.catch_up(self._worker.call)
        return self._worker.call(lambda tx: timings.stage_timings(tx, window), write=False)

    # -- the line's events (engine.store.outbox) ---------------------------------------------------

    def tell_line(self, source: Source) -> None:
        """From now on every record this store writes also writes its line event, in the same transaction."""
        self._worker.call(lambda tx: setattr(self._write, "source", source), write=False)

    @property
    def line_source(self) -> Source | None:
        """Who this store tells the line it is (None: it tells the line nothing)."""
        return self._write.source

    def tell(self, message: Message) -> None:
        """An event that describes no record (an operator's prompt waiting): written behind, in order with the
        records written behind; nothing when the store does not tell the line."""
        source = self._write.source
        if source is not None:
            self._behind.mixed = True
            self._worker.write(partial(outbox.put_one, source=source, message=message))

    def outbox_after(self, seq: int, limit: int) -> list[tuple[int, Message]]:
        """The first ``limit`` events after ``seq``, published or not, in seq order, each with its seq."""
        name = self._source_name()
        return self._worker.call(lambda tx: outbox.after(tx, name, seq, limit), write=False)

    def outbox_first_unpublished(self) -> int:
        """The seq of the first event not yet published; once all are, one past the last; 0 when there is none."""
        name = self._source_name()
        return self._worker.call(lambda tx: outbox.first_unpublished(tx, name), write=False)

    def outbox_published(self, up_to: int) -> None:
        """Mark every event up to seq ``up_to`` published: written behind, not durably (a crash may leave a
        few to be published again, under the same ids)."""
        self._behind.mixed = True
        self._worker.write(partial(outbox.mark_published, source=self._source_name(), up_to=up_to))

    def outbox_since(self, when: float) -> Iterator[Message]:
        """Every event written at ``when`` (seconds since the epoch) or later, published or not, in seq order."""
        read = partial(outbox.since, source=self._source_name(), when=when, limit=outbox.PAGE)
        seq = 0
        while page := self._worker.call(partial(read, seq=seq), write=False):
            yield from (message for _, message in page)
            seq = page[-1][0]

    @property
    def on_written(self) -> Callable[[], None] | None:
        """Called from the store's thread after each commit that wrote events to the outbox: keep it quick."""
        return self._worker.on_written

    @on_written.setter
    def on_written(self, wake: Callable[[], None] | None) -> None:
        self._worker.on_written = wake

    def _source_name(self) -> str | None:
        source = self._write.source
        return None if source is None else source.name


__all__ = ["DECISIONS", "SqlStore", "StoreError"]
