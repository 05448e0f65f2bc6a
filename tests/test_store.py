"""The durable store (engine.store), the same suite on SQLite and on PostgreSQL.

Schema migrations in place, attempts and their measurements, the route interlock (claims), irreversible
intents and their recovery after a station died, supervisors' releases, identity pools, lots, recipe
releases, listing units, and the station runner recording into the store end to end.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import storekit
from steplab import Bench, build, runner
from storekit import attempt, claim, left_by_dead_station, measurement, until_gone

from engine.context import MeasurementRecord
from engine.outcome import Outcome, UnitStatus, Verdict
from engine.record import Decision, LotRecord, RecipeRef, UnitRecord
from engine.run.runner import UnitSpec
from engine.store import StoreError, open_store, rows, worker
from engine.store.migrations import LATEST, MIGRATIONS, Migration
from engine.store.postgres import PostgresBackend
from engine.store.query import Dialect
from engine.store.sqlite import SqliteBackend
from engine.store.sqlstore import SqlStore
from engine.store.worker import Tx
from steps.common.identities import AllocatorConfig, PoolIdentityAllocator

store_url = storekit.store_url

INTERLOCK = "route interlock: the unit is being run"

NEXT = LATEST + 1
EXTRA = Migration(
    NEXT,
    "test: a colour for each unit and a table of notes",
    (
        "ALTER TABLE units ADD COLUMN colour TEXT",
        "CREATE TABLE notes (id {id}, serial TEXT NOT NULL, note TEXT NOT NULL)",
    ),
)


def _outcomes(record: UnitRecord) -> list[tuple[str, Outcome]]:
    return [(a.stage, a.outcome) for a in record.attempts]


def _actions(store: SqlStore, subject: str) -> list[tuple[str, str]]:
    return [(d.by, d.action) for d in store.audit(subject)]


# -- schema ------------------------------------------------------------------------------------------------


def test_a_new_store_is_at_the_latest_schema_version(store_url: str) -> None:
    """Opening an empty database creates the schema at the newest version; reopening leaves it there."""
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST == MIGRATIONS[-1].version
        assert store.units() == [] and store.lots() == [] and store.audit() == []
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST


def test_an_old_store_is_upgraded_in_place_and_keeps_its_rows(store_url: str) -> None:
    """A store opened by code with one more migration is migrated where it lies; its records survive."""
    first = attempt("SN1", "boot", measurements=(measurement("volts", 3.3, units="V", low=3.0, high=3.6),))
    with open_store(store_url, MIGRATIONS) as store:
        assert claim(store, "SN1", lot="LOT-1") is None
        store.add(first)
        imei = _issue(store, "SN1")
        store.finish("SN1", "shipped", None, "Packed")
        assert store.schema_version() == LATEST
    with open_store(store_url, (*MIGRATIONS, EXTRA)) as store:
        assert store.schema_version() == NEXT
        record = store.unit("SN1")
        assert record.attempts == [first]
        assert (record.status, record.lot, record.lifecycle, record.product) == (
            "shipped",
            "LOT-1",
            "Packed",
            "lab-product",
        )
        assert [(i.kind, i.value) for i in record.identities] == [("imei", imei)]
        # The new column and table are there, in the store's own transactions.
        assert (
            store._worker.call(lambda tx: tx.run("UPDATE units SET colour = ? WHERE serial = ?", ("red", "SN1"))) == 1
        )
        store._worker.call(lambda tx: tx.run("INSERT INTO notes (serial, note) VALUES (?, ?)", ("SN1", "scratched")))
        assert store._worker.call(
            lambda tx: tx.rows("SELECT u.colour, n.note FROM units u JOIN notes n USING (serial)")
        ) == [("red", "scratched")]
    # Opened again by the same code: nothing is applied twice (CREATE TABLE notes would fail).
    with open_store(store_url, (*MIGRATIONS, EXTRA)) as store:
        assert store.schema_version() == NEXT
        assert store.unit("SN1").attempts == [first]


V1_ATTEMPT = (
    "INSERT INTO attempts (serial, stage, step, attempt, outcome, started, ended, recipe, recipe_version, recipe_hash, "
    "lot, station, slot, operator, measurements, error, device_id) VALUES (" + ", ".join("?" * 17) + ")"
)


def test_version_1_attempts_move_under_their_visits_unchanged_and_in_order(store_url: str) -> None:
    """Migration 2 moves the fields a visit shares into one row: every attempt reads back as it was, in order.

    The attempts interleave two units, two recipes, missing lots, operators and devices (NULL is a value
    of a visit like any other), and each comes back whole from the store and from ``attempt_records``.
    """
    t = 1_763_700_000.123456
    old, new = RecipeRef("phone", 1, "a" * 64), RecipeRef("phone", 2, "b" * 64)
    written = [
        attempt("SN1", "flash", started=t, lot="LOT-1", operator="ana", device_id="usb-1", recipe=old,
                measurements=(measurement("sha256", "ab" * 32, image="golden"),)),
        attempt("SN2", "flash", Outcome.FAIL, started=t + 1, lot=None, operator=None, error="no device", recipe=old),
        attempt("SN1", "boot", started=t + 2, lot="LOT-1", operator="ana", device_id="usb-1", recipe=old,
                measurements=(measurement("boot_s", 31.2, units="s", low=0.0, high=90.0, band="lte-b3"),)),
        attempt("SN2", "flash", number=2, started=t + 3, lot=None, operator=None, recipe=old),
        attempt("SN1", "boot", number=2, started=t + 4, lot="LOT-1", operator="bo", station="rework", slot=2,
                recipe=new),
    ]  # fmt: skip
    with open_store(store_url, MIGRATIONS[:1]) as store:
        for a in written:
            row = (a.serial, a.stage, a.step, a.attempt, a.outcome.value, a.started, a.ended, a.recipe.recipe,
                   a.recipe.version, a.recipe.content_hash, a.lot, a.station, a.slot, a.operator,
                   rows.measurements_json(a.measurements), a.error, a.device_id)  # fmt: skip
            store._worker.call(lambda tx, row=row: tx.run(V1_ATTEMPT, row))
        assert store.schema_version() == 1
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST
        assert store.unit("SN1").attempts == [written[0], written[2], written[4]]
        assert store.unit("SN2").attempts == [written[1], written[3]]
        visits = store._worker.call(
            lambda tx: tx.rows("SELECT serial, recipe_version, operator FROM visits ORDER BY id")
        )
        assert visits == [("SN1", 1, "ana"), ("SN2", 1, None), ("SN1", 2, "bo")]
        store.add(attempt("SN2", "boot", started=t + 5, lot=None, operator=None, recipe=old))
        assert [a.stage for a in store.unit("SN2").attempts] == ["flash", "flash", "boot"]
        view = store._worker.call(lambda tx: tx.rows(f"SELECT {rows.ATTEMPT_COLUMNS} FROM attempt_records ORDER BY id"))
        assert [rows.attempt_of(r) for r in view][:5] == written


def test_a_store_newer_than_the_code_is_refused(store_url: str) -> None:
    """Code that knows the latest version refuses a store one newer, saying so, and leaves the store as it is."""
    with open_store(store_url, (*MIGRATIONS, EXTRA)) as store:
        assert store.schema_version() == NEXT
    with pytest.raises(StoreError) as caught:
        open_store(store_url, MIGRATIONS)
    message = str(caught.value)
    assert f"schema version {NEXT}, newer than this floorflow knows ({LATEST})" in message
    assert "upgrade floorflow" in message
    with open_store(store_url, (*MIGRATIONS, EXTRA)) as store:
        assert store.schema_version() == NEXT


def test_a_failed_migration_leaves_the_store_as_it_was(store_url: str) -> None:
    """A migration that fails half-way is rolled back whole: the version and the schema stay as they were."""
    with open_store(store_url) as store:
        store.add(attempt("SN1", "boot"))
    broken = Migration(NEXT, "test: broken", ("CREATE TABLE half (x TEXT)", "THIS IS NOT SQL"))
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store(store_url, (*MIGRATIONS, broken))
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST
        assert _outcomes(store.unit("SN1")) == [("boot", Outcome.PASS)]
    fixed = Migration(NEXT, "test: fixed", ("CREATE TABLE half (x TEXT)",))  # fails if 'half' had been left behind
    with open_store(store_url, (*MIGRATIONS, fixed)) as store:
        assert store.schema_version() == NEXT


# -- attempts ------------------------------------------------------------------------------------------------


def test_attempts_round_trip_with_their_measurements_in_order(store_url: str) -> None:
    """Every field of every attempt comes back as written, measurements of every kind included, in order."""
    t = 1_763_700_000.123456
    rf = attempt(
        "SN1",
        "rf_cal",
        Outcome.FAIL,
        started=t,
        duration=1.5,
        step="rf.calibrate",
        lot="LOT-7",
        station="rf",
        slot=3,
        operator="ana",
        device_id="usb-1-2",
        error="tx_power_dbm 26.1 above 25.7",
        measurements=(
            measurement("tx_power_dbm", 26.1, Verdict.FAIL, "dBm", 20.3, 25.7, band="lte-b3", channel=1300),
            measurement("freq_error_ppm", 0.05, Verdict.MARGINAL, "ppm", -0.1, 0.1),
            measurement("channels", 3, low=1, high=3),
            measurement("call_connected", True),
            measurement("firmware", "1.2.3-rc1"),
            measurement("trim", None),
            measurement("spectrum", [1, 2.5, "x"]),
        ),
    )
    retry = attempt("SN1", "rf_cal", Outcome.PASS, number=2, started=t + 10, step="rf.calibrate", lot="LOT-7")
    earlier = attempt("SN1", "label", Outcome.ERROR, started=t - 100, error="printer offline", operator=None)
    other = attempt("SN2", "rf_cal", started=t)
    with open_store(store_url) as store:
        for a in (rf, retry, earlier, other):
            store.add(a)
        record = store.unit("SN1")
        assert record.attempts == [rf, retry, earlier]  # the order they were added in, not by time
        got = record.attempts[0].measurements
        assert [type(m.value) for m in got] == [float, float, int, bool, str, type(None), list]
        assert got[0].tags == {"band": "lte-b3", "channel": 1300} and (got[0].low, got[0].high) == (20.3, 25.7)
        assert got[1].verdict is Verdict.MARGINAL and got[0].verdict is Verdict.FAIL
        assert store.unit("SN2").attempts == [other]
    with open_store(store_url) as store:  # and from another connection, after the first closed
        assert store.unit("SN1").attempts == [rf, retry, earlier]


def test_a_visit_written_in_a_transaction_that_rolls_back_is_forgotten(store_url: str) -> None:
    """The writer remembers visit ids; one whose row was rolled back must be written again, not referred to."""
    first, second = attempt("SN1", "flash"), attempt("SN1", "boot")
    with open_store(store_url) as store:

        def fails(tx: Tx) -> None:
            store._write(tx, [first])
            raise LookupError("the transaction fails after its attempt was written")

        with pytest.raises(LookupError):
            store._worker.call(fails)
        store.add(second)
        assert store.unit("SN1").attempts == [second]


def test_passed_attempts_record_the_images_they_wrote(store_url: str) -> None:
    """A PASS attempt's measurements tagged 'image' become the unit's images; a failed attempt's do not."""
    written = attempt("SN1", "flash", measurements=(measurement("sha256", "ab" * 32, image="golden"),))
    failed = attempt("SN1", "reflash", Outcome.FAIL, measurements=(measurement("sha256", "cd" * 32, image="test"),))
    with open_store(store_url) as store:
        store.add(written)
        store.add(failed)
        images = store.unit("SN1").images
    assert [(i.image, i.sha256, i.stage) for i in images] == [("golden", "ab" * 32, "flash")]


def test_attempts_written_behind_are_all_seen_by_the_next_read(store_url: str) -> None:
    """Thousands of adds return at once; the next read, a flush and a close each account for all of them."""
    count = 2600  # more than two of the worker's batches
    with open_store(store_url) as store:
        for i in range(count):
            store.add(attempt("SN1", f"s{i}"))
        record = store.unit("SN1")
        assert [a.stage for a in record.attempts] == [f"s{i}" for i in range(count)]
        for i in range(count):
            store.add(attempt("SN2", f"s{i}"))
        store.flush()
        with open_store(store_url) as other:  # flushed: committed, so another connection sees them
            assert len(other.unit("SN2").attempts) == count
        for i in range(50):
            store.add(attempt("SN3", f"s{i}"))
    with open_store(store_url) as store:  # close wrote what was still queued
        assert [a.stage for a in store.unit("SN3").attempts] == [f"s{i}" for i in range(50)]


def test_a_failed_write_behind_is_reported_by_the_next_call(store_url: str) -> None:
    """An attempt the database refuses is not lost silently: the next call raises StoreError saying why."""
    store = open_store(store_url)
    try:
        store.add(attempt(None, "bad"))  # type: ignore[arg-type]  # NOT NULL: the database refuses the row
        with pytest.raises(StoreError, match=r"failed: .*serial"):
            store.unit("SN1")
        with pytest.raises(StoreError, match="failed"):
            store.add(attempt("SN1", "after"))
    finally:
        with pytest.raises(StoreError, match="failed"):
            store.close()


def test_close_reports_a_failed_last_batch_without_crashing_its_worker(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() while the last rows fail: close raises StoreError, and the store's thread ends cleanly.

    (engine/store/worker.py set ``error`` on the stop marker that followed the batch, an AttributeError in
    the store's thread.)
    """
    crashes: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    store = open_store(store_url)
    gate = threading.Event()
    busy = threading.Thread(target=lambda: store._worker.call(lambda tx: gate.wait(10)))
    busy.start()
    time.sleep(0.1)  # the store's thread is inside that job: what follows queues up behind it
    store.add(attempt(None, "bad"))  # type: ignore[arg-type]
    closed: list[BaseException] = []

    def close() -> None:
        try:
            store.close()
        except BaseException as exc:
            closed.append(exc)

    closing = threading.Thread(target=close)
    closing.start()
    time.sleep(0.1)  # close() has queued its stop behind the bad row
    gate.set()
    closing.join(15)
    busy.join(15)
    assert not closing.is_alive()
    assert [type(e) for e in closed] == [StoreError] and "serial" in str(closed[0])
    assert crashes == []


def test_a_waiting_caller_cuts_the_group_commit_short(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written behind wait a moment for company, unless someone waits for them: a job ends the wait."""
    monkeypatch.setattr(worker, "GATHER_S", 60.0)
    with open_store(store_url) as store:
        store.add(attempt("SN1", "s1"))
        read: list[UnitRecord] = []
        reader = threading.Thread(target=lambda: read.append(store.unit("SN1")), daemon=True)
        reader.start()
        reader.join(20)  # far less than the gathering time: the read did not wait it out
        assert not reader.is_alive()
        assert [a.stage for a in read[0].attempts] == ["s1"]


class _Reading(float):
    """A float subclass (numpy's float64 is one): written as a number, as the standard library writes it."""


def test_the_measurements_column_reads_back_as_the_standard_library_writes_it() -> None:
    """Each measurement comes back from the column with the values and types ``json.dumps`` would keep: NaN and
    infinities stay numbers (not null), integers past 64 bits stay whole, a float subclass stays a number, tags
    of any kind are kept (bytes as text), and the text is compact."""
    cases = [
        measurement("v", 1.5, low=0, high=2),
        measurement("v", 1.5, low=0.0, high=2.0),
        measurement("v", 7, low=0, high=2),
        measurement("v", -0.0, Verdict.FAIL, "V", 0, 2),
        measurement("v", 10**30, Verdict.MARGINAL, low=0, high=2),
        measurement("v", float("nan"), low=0, high=2),
        measurement("v", float("-inf"), low=0, high=2),
        measurement("v", _Reading(2.5), low=0, high=2),
        measurement("v", True, low=0, high=2),
        measurement("v", None),
        measurement("v", "1.5", low=0, high=2),
        measurement("v", 1.5, low=0, high=2, band="b3", raw=b"\x00"),
        measurement('say "\u00b5"', 2.25, units="\u00b5A"),
    ]

    def plain(m: MeasurementRecord) -> list[Any]:
        return [m.name, m.value, m.verdict.value, m.units, m.low, m.high, *([dict(m.tags)] if m.tags else [])]

    for group in [[m] for m in cases] + [cases, cases[:4]]:
        text = rows.measurements_json(group)
        expected = json.loads(json.dumps([plain(m) for m in group], default=str))
        back = json.loads(text)
        assert repr(back) == repr(expected)  # repr: NaN == NaN, and 1 is not 1.0
        assert [[type(x) for x in m] for m in back] == [[type(x) for x in m] for m in expected]
        assert ", " not in text and ": " not in text


# -- the route interlock -------------------------------------------------------------------------------------


def test_a_claimed_unit_is_refused_to_a_second_store(store_url: str) -> None:
    """While one station holds the unit, another is refused with the interlock's reason, without deciding."""
    with open_store(store_url) as first, open_store(store_url) as second:
        assert claim(first, "SN1", station="rf") is None
        decided: list[str] = []

        def decide(record: UnitRecord, hold: str | None) -> str | None:
            decided.append(record.serial)
            return None

        _, refused = second.claim("SN1", station="rf2", lot=None, product=None, decide=decide)
        assert refused is not None and refused.startswith(INTERLOCK)
        assert "at station rf " in refused and first.holder in refused
        assert decided == []


def test_a_refused_decision_leaves_the_unit_unclaimed(store_url: str) -> None:
    """A unit the decision refuses is not claimed: another station may take it at once."""
    with open_store(store_url) as first, open_store(store_url) as second:
        seen: list[tuple[str, str | None, str | None]] = []

        def refuse(record: UnitRecord, hold: str | None) -> str | None:
            seen.append((record.serial, record.lot, hold))
            return "not here: ordering rule"

        first.hold_lot("LOT-1", "recall 9")
        _, refused = first.claim("SN1", station="a", lot="LOT-1", product=None, decide=refuse)
        assert refused == "not here: ordering rule"
        assert seen == [("SN1", None, "recall 9")]  # the unit as recorded (new: no lot yet), and its lot's hold
        assert claim(second, "SN1", station="b") is None
        assert claim(first, "SN1", station="a").startswith(INTERLOCK)  # type: ignore[union-attr]


def test_finish_releases_the_claim(store_url: str) -> None:
    """After the holding station finishes the unit, another station claims it."""
    with open_store(store_url) as first, open_store(store_url) as second:
        assert claim(first, "SN1") is None
        assert claim(second, "SN1", station="b") is not None
        first.finish("SN1", "in-route", "next: 'rf' at station rf")
        assert claim(second, "SN1", station="b") is None
        record = second.unit("SN1")
        assert (record.status, record.reason) == ("in-route", "next: 'rf' at station rf")
        # finishing a unit someone else holds does not release their claim
        first.finish("SN1", "in-route", None)
        assert claim(first, "SN1", station="a").startswith(INTERLOCK)  # type: ignore[union-attr]


def test_a_claim_left_by_a_closed_store_is_taken_over(store_url: str) -> None:
    """A station that stopped without finishing (its store closed) no longer holds the unit."""
    dead = left_by_dead_station(store_url, "SN1")
    with open_store(store_url) as store:
        assert store.holder != dead
        assert claim(store, "SN1") is None
        record = store.unit("SN1")
        assert record.status == "in-route" and record.attempts == []  # no intent: nothing to quarantine
        assert store.recover() == []


# -- irreversible intents ------------------------------------------------------------------------------------


def test_an_intent_closed_by_its_outcome_is_not_recovered(store_url: str) -> None:
    """Intent, then the attempt that closes it: only the attempt is recorded, and nothing is left to recover."""
    with open_store(store_url) as store:
        assert claim(store, "SN1") is None
        start = attempt("SN1", "burn", Outcome.ERROR, duration=0)
        first = store.intend(start)
        second = store.intend(attempt("SN2", "burn", Outcome.ERROR, duration=0))
        assert isinstance(first, int) and second > first
        done = start._replace(outcome=Outcome.PASS, ended=start.started + 2)
        store.add(done, intent=first)
        store.add(attempt("SN2", "burn"), intent=second)
        store.finish("SN1", "in-route", None)
        store.finish("SN2", "in-route", None)
    until_gone(store.holder)
    with open_store(store_url) as store:
        assert store.recover() == []
        record = store.unit("SN1")
        assert record.attempts == [done]
        assert record.status == "in-route"
        assert store.audit("SN1") == []


def test_an_outcome_that_quarantines_records_why(store_url: str) -> None:
    """An irreversible attempt closed with a quarantine: the unit is quarantined and the audit log says why."""
    with open_store(store_url) as store:
        assert claim(store, "SN1") is None
        ident = store.intend(attempt("SN1", "burn", Outcome.ERROR, duration=0))
        why = "irreversible stage 'burn' ended in ERROR (fuse driver timeout): whether it took effect is unknown"
        store.add(attempt("SN1", "burn", Outcome.ERROR, error="fuse driver timeout"), intent=ident, quarantine=why)
        store.finish("SN1", "error", "'burn': fuse driver timeout")
        record = store.unit("SN1")
        assert (record.status, record.reason) == (UnitStatus.QUARANTINED, why)
        assert [(d.by, d.action, d.reason) for d in record.decisions] == [("floorflow", "quarantine", why)]
        assert store.units(status=UnitStatus.QUARANTINED) == [record]


def test_an_intent_left_without_outcome_is_recovered_as_a_quarantine(store_url: str) -> None:
    """A station that stopped inside an irreversible step: recover() quarantines the unit, naming the stage."""
    left_by_dead_station(store_url, "SN1", stage="write_identities")
    with open_store(store_url) as store:
        [(serial, reason)] = store.recover()
        assert serial == "SN1"
        assert "irreversible stage 'write_identities' was interrupted at station dead-station" in reason
        assert "whether it took effect is unknown" in reason
        record = store.unit("SN1")
        assert (record.status, record.reason) == (UnitStatus.QUARANTINED, reason)
        [interrupted] = record.attempts
        assert (interrupted.stage, interrupted.step, interrupted.outcome) == (
            "write_identities",
            "lab.burn",
            Outcome.ERROR,
        )
        assert (interrupted.station, interrupted.slot) == ("dead-station", 2)
        assert interrupted.error is not None and interrupted.error.startswith("interrupted")
        assert [(d.by, d.action, d.reason) for d in store.audit("SN1")] == [("floorflow", "quarantine", reason)]
        assert store.recover() == []  # once only
        assert len(store.unit("SN1").attempts) == 1
        # the dead station's claim is gone too
        assert claim(store, "SN1") is None


def test_a_claim_taking_over_a_dead_station_quarantines_first(store_url: str) -> None:
    """The next station to claim the unit recovers the interrupted step before it decides: it sees a quarantine."""
    left_by_dead_station(store_url, "SN1", stage="burn")
    with open_store(store_url) as store:
        seen: list[tuple[str, str | None]] = []

        def decide(record: UnitRecord, hold: str | None) -> str | None:
            seen.append((record.status, record.reason))
            return "quarantined" if record.status == UnitStatus.QUARANTINED else None

        _, refused = store.claim("SN1", station="next", lot=None, product=None, decide=decide)
        assert refused == "quarantined"
        [(status, reason)] = seen
        assert status == UnitStatus.QUARANTINED and "'burn' was interrupted" in (reason or "")
        assert _outcomes(store.unit("SN1")) == [("burn", Outcome.ERROR)]
        assert store.recover() == []


def test_recover_leaves_a_live_station_alone(store_url: str) -> None:
    """An intent whose station is still running is not interrupted: recover() leaves it and its claim."""
    with open_store(store_url) as running, open_store(store_url) as other:
        assert claim(running, "SN1") is None
        running.intend(attempt("SN1", "burn", Outcome.ERROR, duration=0))
        assert other.recover() == []
        record = other.unit("SN1")
        assert record.status == "in-route" and record.attempts == []
        assert claim(other, "SN1", station="b").startswith(INTERLOCK)  # type: ignore[union-attr]


# -- supervisors' releases -----------------------------------------------------------------------------------


def _quarantined(store_url: str, serial: str = "SN1", stage: str = "burn") -> None:
    left_by_dead_station(store_url, serial, stage=stage)
    with open_store(store_url) as store:
        assert [s for s, _ in store.recover()] == [serial]


def test_release_done_counts_the_stage_as_passed(store_url: str) -> None:
    """'done': a PASS attempt of the interrupted stage by the supervisor, the unit back in route, audited."""
    _quarantined(store_url)
    with open_store(store_url) as store:
        what = store.release("SN1", "done", "sup-maria", "fuses read back burnt")
        assert what == "'burn' counts as done"
        record = store.unit("SN1")
        assert record.status == "in-route"
        assert record.reason == "released by sup-maria: 'burn' counts as done"
        assert _outcomes(record) == [("burn", Outcome.ERROR), ("burn", Outcome.PASS)]
        last = record.attempts[-1]
        assert (last.operator, last.step, last.recipe) == ("sup-maria", "lab.burn", storekit.RECIPE)
        assert last.error == "sup-maria decided: done (fuses read back burnt)"
        assert _actions(store, "SN1") == [("floorflow", "quarantine"), ("sup-maria", "release-done")]
        assert store.audit("SN1")[-1].reason == "fuses read back burnt"
        with pytest.raises(ValueError, match="SN1 is not quarantined \\(it is in-route\\)"):
            store.release("SN1", "done", "sup-maria")


def test_release_not_done_lets_the_stage_run_again(store_url: str) -> None:
    """'not-done': a NOT-DONE attempt of the interrupted stage, the unit back in route, audited."""
    _quarantined(store_url)
    with open_store(store_url) as store:
        what = store.release("SN1", "not-done", "sup-li")
        assert what == "'burn' counts as not done: it may run again"
        record = store.unit("SN1")
        assert record.status == "in-route"
        assert _outcomes(record) == [("burn", Outcome.ERROR), ("burn", Outcome.NOT_DONE)]
        assert record.attempts[-1].error == "sup-li decided: not-done"
        assert _actions(store, "SN1") == [("floorflow", "quarantine"), ("sup-li", "release-not-done")]
        assert store.audit("SN1")[-1].reason == what


def test_release_refuses_what_it_cannot_release(store_url: str) -> None:
    """A unit in route, an unknown unit, an unknown decision and a unit a live station holds are refused."""
    with open_store(store_url) as store:
        assert claim(store, "OK1") is None
        store.finish("OK1", "shipped", None)
        with pytest.raises(ValueError, match="OK1 is not quarantined \\(it is shipped\\): there is nothing to release"):
            store.release("OK1", "done", "sup")
        with pytest.raises(LookupError, match="NOPE is not in the store"):
            store.release("NOPE", "done", "sup")
        with pytest.raises(ValueError, match="decision must be one of done, not-done"):
            store.release("OK1", "maybe", "sup")
        assert store.audit("OK1") == []
    _quarantined(store_url, "Q1")
    with open_store(store_url) as holder, open_store(store_url) as store:
        assert claim(holder, "Q1") is None
        with pytest.raises(ValueError, match="Q1 is being run by a station"):
            store.release("Q1", "done", "sup")
        assert store.unit("Q1").status == UnitStatus.QUARANTINED


# -- identity pools ------------------------------------------------------------------------------------------


def _issue(store: SqlStore, serial: str, *, pool: str = "p", first: int = 0, last: int = 999, space: str = "s") -> str:
    return store.issue(
        "imei", serial, space=space, pool=pool, first=first, last=last, make=lambda n: f"V{n:04d}", what=f"{pool} pool"
    )


def test_identities_are_unique_and_a_unit_keeps_its_own(store_url: str) -> None:
    """Each unit gets the pool's next value, in order; asking again gives the same value back."""
    with open_store(store_url) as store:
        values = [_issue(store, f"SN{i}") for i in range(40)]
        assert values == [f"V{n:04d}" for n in range(40)]
        assert [_issue(store, f"SN{i}") for i in (0, 17, 39)] == ["V0000", "V0017", "V0039"]
        assert store.remaining("p", 0, 999) == 960
        assert store.remaining("unused", 0, 999) == 1000
        [identity] = store.unit("SN17").identities
        assert (identity.kind, identity.value, identity.retired) == ("imei", "V0017", False)


def test_an_exhausted_pool_says_which_pool(store_url: str) -> None:
    """The pool's last value issued, the next unit gets LookupError naming the pool; units with one keep it."""
    with open_store(store_url) as store:
        assert [_issue(store, f"SN{i}", pool="tiny", last=2) for i in range(3)] == ["V0000", "V0001", "V0002"]
        with pytest.raises(LookupError, match="the tiny pool is exhausted: all 3 values were issued"):
            _issue(store, "SN3", pool="tiny", last=2)
        assert store.unit("SN3").identities == []
        assert _issue(store, "SN1", pool="tiny", last=2) == "V0001"
        assert store.remaining("tiny", 0, 2) == 0


def test_a_scrapped_units_identity_is_retired_never_reissued(store_url: str) -> None:
    """Scrapping retires the unit's identities; new units get new values, never the retired ones."""
    with open_store(store_url) as store:
        assert claim(store, "BAD") is None
        retired = _issue(store, "BAD")
        store.finish("BAD", "scrapped", "'rf_cal' failed 3 times")
        record = store.unit("BAD")
        assert record.status == "scrapped"
        assert [(i.value, i.retired) for i in record.identities] == [(retired, True)]
        fresh = [_issue(store, f"NEW{i}") for i in range(25)]
        assert retired not in fresh and len(set(fresh)) == 25
        assert all(not i.retired for i in store.unit("NEW0").identities)


def test_two_pools_in_one_space_never_collide(store_url: str) -> None:
    """Pools whose ranges overlap in one space skip the values the other already issued."""
    with open_store(store_url) as store:
        a = [_issue(store, f"A{i}", pool="a", first=0, last=99) for i in range(60)]
        b = [_issue(store, f"B{i}", pool="b", first=50, last=149) for i in range(30)]
        assert b[0] == "V0060" and len(set(a) | set(b)) == 90
        # another space is independent
        assert _issue(store, "C0", pool="c", first=0, last=9, space="other") == "V0000"


def test_bluetooth_and_wifi_macs_share_their_block_without_collisions(store_url: str) -> None:
    """Through the stations' allocator: bt_mac and wifi_mac from one OUI block are all distinct, on every station."""
    with open_store(store_url) as one, open_store(store_url) as two:
        first, second = PoolIdentityAllocator(one), PoolIdentityAllocator(two)
        macs: list[str] = []
        for i in range(10):
            allocator = first if i % 2 else second
            macs += [allocator.allocate("bt_mac", f"SN{i}"), allocator.allocate("wifi_mac", f"SN{i}")]
        assert len(set(macs)) == 20
        assert all(m.startswith("02:46:46:") for m in macs)
        assert second.allocate("wifi_mac", "SN3") == macs[7]
        imeis = {first.allocate("imei", f"SN{i}") for i in range(10)}
        assert len(imeis) == 10 and all(len(v) == 15 and v.startswith("35693803") for v in imeis)
        tiny = PoolIdentityAllocator(one, AllocatorConfig(tac="35693804", imei_first=0, imei_last=0))
        tiny.allocate("imei", "X1")
        with pytest.raises(Exception, match="IMEI pool of TAC 35693804 \\(000000-000000\\) is exhausted"):
            tiny.allocate("imei", "X2")


# -- lots and recipes ----------------------------------------------------------------------------------------


def test_a_lot_keeps_its_first_hold_and_counts_failures(store_url: str) -> None:
    """hold_lot keeps the first reason; lot_failed counts per stage; lots() reports both."""
    with open_store(store_url) as store:
        assert store.lot_hold("LOT-1") is None
        assert [store.lot_failed("LOT-1", "sample_test") for _ in range(3)] == [1, 2, 3]
        assert store.lot_failed("LOT-1", "final_qa") == 1
        store.hold_lot("LOT-1", "2 sampled units failed 'sample_test'")
        store.hold_lot("LOT-1", "a later reason")
        assert store.lot_hold("LOT-1") == "2 sampled units failed 'sample_test'"
        assert store.lot_hold("LOT-2") is None
        assert claim(store, "SN1", lot="LOT-2") is None
        lots = {lot.lot: lot for lot in store.lots()}
        assert set(lots) == {"LOT-1", "LOT-2"}
        one = lots["LOT-1"]
        assert (one.hold, dict(one.failures)) == (
            "2 sampled units failed 'sample_test'",
            {"sample_test": 3, "final_qa": 1},
        )
        assert one.held_at is not None
        assert lots["LOT-2"] == LotRecord("LOT-2", None, None, {})


def test_a_recipe_release_is_idempotent_and_returns_the_earlier_one(store_url: str) -> None:
    """Releasing the same content twice keeps the first release (who, when) and audits it once."""
    with open_store(store_url) as store:
        assert store.released("hash-1") is None
        assert store.release_recipe("phone", 1, "hash-1", "workflows/phone.yaml", "alice") is None
        earlier = store.release_recipe("phone", 1, "hash-1", "elsewhere/phone.yaml", "bob")
        assert isinstance(earlier, Decision)
        assert (earlier.by, earlier.action, earlier.subject, earlier.reason) == (
            "alice",
            "recipe-release",
            "hash-1",
            "phone v1",
        )
        assert store.released("hash-1") == earlier
        assert store.release_recipe("phone", 2, "hash-2", "workflows/phone.yaml", "bob") is None
        assert [(d.by, d.subject, d.reason) for d in store.releases_of("phone")] == [
            ("alice", "hash-1", "phone v1"),
            ("bob", "hash-2", "phone v2"),
        ]
        assert store.releases_of("other") == []
        assert [(d.by, d.reason) for d in store.audit("hash-1")] == [("alice", "phone v1 from workflows/phone.yaml")]


# -- listing -------------------------------------------------------------------------------------------------


def test_units_filter_by_status_lot_and_time(store_url: str) -> None:
    """units() lists every unit oldest first; status=, lot= and since= select, and combine."""
    with open_store(store_url) as store:
        for serial, lot, status in (("U1", "L1", "shipped"), ("U2", "L1", "scrapped")):
            assert claim(store, serial, lot=lot) is None
            store.add(attempt(serial, "test", lot=lot))
            store.finish(serial, status, None)
        time.sleep(0.02)
        since = time.time()
        assert claim(store, "U3", lot="L2") is None
        store.finish("U3", "in-route", "next: 'rf'")
        assert claim(store, "U4", lot="L2") is None
        ident = store.intend(attempt("U4", "burn", Outcome.ERROR, duration=0))
        store.add(attempt("U4", "burn", Outcome.ABORTED), intent=ident, quarantine="aborted in 'burn'")
        store.finish("U4", "aborted", None)

        def serials(**how: object) -> list[str]:
            return [r.serial for r in store.units(**how)]  # type: ignore[arg-type]

        assert serials() == ["U1", "U2", "U3", "U4"]
        assert serials(status="shipped") == ["U1"]
        assert serials(status="scrapped") == ["U2"]
        assert serials(status="in-route") == ["U3"]
        assert serials(status=UnitStatus.QUARANTINED) == ["U4"]
        assert serials(lot="L1") == ["U1", "U2"]
        assert serials(lot="L2", status="in-route") == ["U3"]
        assert serials(lot="L3") == []
        assert serials(since=since) == ["U3", "U4"]
        [u1] = store.units(status="shipped")
        assert u1.lot == "L1" and _outcomes(u1) == [("test", Outcome.PASS)]


# -- the runner on the store ---------------------------------------------------------------------------------

BURN = """\
    recipe: burn-fuses
    version: 1
    stages:
      - {id: measure, step: lab.measure}
      - {id: burn, step: lab.instrument, irreversible: true}
      - {id: after, step: lab.measure}
"""

TWO_STATIONS = """\
    recipe: two-stations
    version: 1
    stations:
      boot: {slots: 1}
      rf: {slots: 1}
    stages:
      - {id: boot_test, step: lab.measure, station: boot}
      - {id: rf_test, step: lab.measure, station: rf}
"""


def test_runner_quarantines_a_unit_whose_irreversible_stage_errs(store_url: str, tmp_path: Path) -> None:
    """An irreversible stage ending in ERROR quarantines the unit in the store; the next station run refuses it."""
    flow = build(tmp_path, BURN)
    bench = Bench(instrument_down=True)
    with open_store(store_url) as store:
        [first] = runner(flow, bench, store).run([UnitSpec("SN1", "LOT-1")])
    assert first.status == "error" and "'burn'" in (first.reason or "")
    bench.instrument_down = False  # repaired: only the record stops a second burn now
    with open_store(store_url) as store:
        assert store.recover() == []  # the intent got its outcome: nothing was interrupted
        record = store.unit("SN1")
        assert record.status == UnitStatus.QUARANTINED
        assert "irreversible stage 'burn' ended in ERROR (the instrument is offline)" in (record.reason or "")
        assert _outcomes(record) == [("measure", Outcome.PASS), ("burn", Outcome.ERROR)]
        assert record.lot == "LOT-1"
        assert _actions(store, "SN1") == [("floorflow", "quarantine")]
        [second] = runner(flow, bench, store).run([UnitSpec("SN1")])
        assert second.status == "refused"
        assert "the unit is quarantined" in (second.reason or "")
        assert "floorflow units release SN1 --decision done|not-done" in (second.reason or "")
        assert bench.runs[("SN1", "burn")] == 1
        # a supervisor finds the burn did not happen: it runs again, and the unit ships
        store.release("SN1", "not-done", "sup")
        [third] = runner(flow, bench, store).run([UnitSpec("SN1")])
        assert third.status == "shipped", third.reason
        assert bench.runs[("SN1", "burn")] == 2
        assert store.unit("SN1").status == "shipped"
        assert store.units(status="shipped") == [store.unit("SN1")]


def test_runner_refuses_a_unit_that_skipped_a_stage_at_another_station(store_url: str, tmp_path: Path) -> None:
    """A unit never run at the boot station is refused at rf, naming the stage; after boot, rf ships it."""
    flow = build(tmp_path, TWO_STATIONS)
    bench = Bench()
    with open_store(store_url) as store:
        [refused] = runner(flow, bench, store, station="rf").run([UnitSpec("SN1")])
    assert refused.status == "refused"
    assert refused.reason == "route interlock: the unit has not passed 'boot_test' at station boot, which comes first"
    assert bench.runs[("SN1", "rf_test")] == 0
    with open_store(store_url) as store:
        [boot] = runner(flow, bench, store, station="boot").run([UnitSpec("SN1")])
        assert (boot.status, boot.reason) == ("in-route", "next: 'rf_test' at station rf")
    with open_store(store_url) as store:  # the rf station, another process: only the store knows
        [rf] = runner(flow, bench, store, station="rf").run([UnitSpec("SN1")])
        assert rf.status == "shipped"
        record = store.unit("SN1")
        assert record.status == "shipped" and _outcomes(record) == [
            ("boot_test", Outcome.PASS),
            ("rf_test", Outcome.PASS),
        ]


HANG = """\
    recipe: hanging
    version: 1
    stages:
      - {id: wait, step: lab.hang}
"""


def test_runner_refuses_a_unit_another_station_is_running(store_url: str, tmp_path: Path) -> None:
    """While a station runs the unit, a second station on the store is refused by the route interlock."""
    flow = build(tmp_path, HANG)
    bench = Bench()
    with open_store(store_url) as one, open_store(store_url) as two:
        first = runner(flow, bench, one)
        results: list[object] = []
        thread = threading.Thread(target=lambda: results.extend(first.run([UnitSpec("SN1")])))
        thread.start()
        try:
            assert bench.waiting.wait(10)
            [second] = runner(flow, bench, two).run([UnitSpec("SN1")])
        finally:
            first.stop()
            thread.join(10)
        assert second.status == "refused" and (second.reason or "").startswith(INTERLOCK)
        assert one.holder in (second.reason or "")
        assert bench.runs[("SN1", "wait")] == 1
        assert [getattr(r, "status", None) for r in results] == ["aborted"]


# -- claims of one station, and claims refused ------------------------------------------------------------

TWICE = """\
    recipe: burn-once
    version: 1
    stages:
      - {id: burn, step: lab.sleep, with: {seconds: 0.3}, irreversible: true}
"""


def test_one_station_given_a_unit_twice_runs_it_once(store_url: str, tmp_path: Path) -> None:
    """The same serial in two slots of one station: the route interlock refuses the second."""
    flow = build(tmp_path, TWICE)
    bench = Bench()
    with open_store(store_url) as store:
        results = runner(flow, bench, store).run([UnitSpec("SN1"), UnitSpec("SN1")], slots=2)
    assert sorted(r.status for r in results) == ["refused", "shipped"]
    assert bench.runs[("SN1", "burn")] == 1


def test_a_unit_refused_before_it_ever_ran_is_not_listed(store_url: str, tmp_path: Path) -> None:
    """A serial refused by the route interlock at its first station (a typo, a stray unit) leaves no unit."""
    flow = build(tmp_path, TWO_STATIONS)
    with open_store(store_url) as store:
        [refused] = runner(flow, Bench(), store, station="rf").run([UnitSpec("TYPO-1")])
        assert refused.status == "refused"
        assert store.unit("TYPO-1").attempts == []
        assert [u.serial for u in store.units()] == []


TWO_BURNS = """\
    recipe: two-burns
    version: 1
    stages:
      - {id: fuse, step: lab.measure, irreversible: true}
      - {id: burn, step: lab.instrument, irreversible: true}
"""


def test_a_release_decides_only_the_interrupted_intent(store_url: str, tmp_path: Path) -> None:
    """Intents that ended normally keep no decision; the interrupted one carries the supervisor's."""
    flow = build(tmp_path, TWO_BURNS)
    bench = Bench(instrument_down=True)
    with open_store(store_url) as store:
        runner(flow, bench, store).run([UnitSpec("SN1")])
        assert store.unit("SN1").status == UnitStatus.QUARANTINED
        store.release("SN1", "not-done", "qa")
        bench.instrument_down = False
        [again] = runner(flow, bench, store).run([UnitSpec("SN1")])
        assert again.status == "shipped"
        decisions = store._worker.call(
            lambda tx: tx.rows("SELECT outcome, decision FROM intents WHERE serial = ? ORDER BY id", ("SN1",)),
            write=False,
        )
    assert [tuple(row) for row in decisions] == [("PASS", None), ("ERROR", "not-done"), ("PASS", None)]


# -- SQL in each driver's style, and a store dropped unclosed ---------------------------------------------------

STATEMENT = "SELECT '?', \"a?\", x % 2 FROM t WHERE a = ? AND b LIKE 'x%' -- what?\n AND c = ? /* ? */"


@pytest.mark.parametrize(
    ("style", "rendered"),
    [
        ("qmark", STATEMENT),
        ("numeric", STATEMENT.replace("a = ?", "a = :1").replace("c = ?", "c = :2")),
        ("pyformat", STATEMENT.replace("%", "%%").replace("a = ?", "a = %s").replace("c = ?", "c = %s")),
        ("format", STATEMENT.replace("%", "%%").replace("a = ?", "a = %s").replace("c = ?", "c = %s")),
    ],
)
def test_a_statement_is_given_to_each_driver_in_its_parameter_style(style: str, rendered: str) -> None:
    """Each ``?`` parameter becomes the driver's mark; a ``?`` in a string, a quoted name or a comment stays; a
    ``%`` is doubled for the drivers that read ``%`` as a mark, wherever it is."""
    assert Dialect(style)(STATEMENT) == rendered


def test_the_drivers_declare_the_styles_the_store_writes_in() -> None:
    """SQLite takes the statements as written, PostgreSQL (psycopg) with %s: each from the driver's paramstyle."""
    sqlite = SqliteBackend(":memory:").sql
    assert sqlite.paramstyle == "qmark" and sqlite("SELECT ? WHERE 1 = ?") == "SELECT ? WHERE 1 = ?"
    assert PostgresBackend("postgresql://x@nowhere/db").sql("SELECT ? WHERE 1 = ?") == "SELECT %s WHERE 1 = %s"


@pytest.mark.parametrize("statement", ["SELECT 'open WHERE a = ?", 'SELECT "open FROM t', "SELECT 1 /* open ?"])
def test_a_statement_left_open_is_refused(statement: str) -> None:
    """A quote or comment left open would hide the parameters after it: a mistake in the statement, said at once."""
    with pytest.raises(ValueError, match="unclosed"):
        Dialect("pyformat")(statement)


def test_a_parameter_style_the_store_cannot_write_is_refused() -> None:
    """``named`` and ``pyformat``'s dictionaries take parameters by name; the store passes them in order."""
    with pytest.raises(ValueError, match="parameter style 'named' is not one of qmark, numeric, format, pyformat"):
        Dialect("named")


def test_a_store_dropped_unclosed_commits_what_it_was_given_and_ends_its_thread(tmp_path: Path) -> None:
    """A store dropped without close() (a script's, a test's) still commits what was written behind, and its
    thread and connection end."""
    url = storekit.sqlite_url(tmp_path / "store.db")
    store = open_store(url)
    store.add(attempt("SN1", "boot"))
    thread = store._worker._thread
    del store
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()
    with open_store(url) as again:
        assert [a.stage for a in again.unit("SN1").attempts] == ["boot"]
