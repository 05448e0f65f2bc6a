"""The line events' outbox (engine.store.outbox), on SQLite and on PostgreSQL.

A store told the line writes each record's event in the record's own transaction: nothing else, and
nothing at all when it is not told. The events read back in seq order, each unit's in the order its
records were written, under ids that never change; published rows are marked behind; a replay reads
them again by time; a store of the previous release gets the outbox on opening. A transaction that
fails leaves neither the record nor its event, and a station killed mid-run leaves every recorded
attempt with exactly one event and no event without its record.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import storekit
from steplab import Bench, Measure, direct_flow, runner, stage
from storekit import attempt, claim, left_by_dead_station, measurement

from engine.messages import Kind, Message, Source, attempt_ended, prompt_waiting
from engine.outcome import Outcome, UnitStatus, Verdict
from engine.run.runner import UnitSpec
from engine.store import StoreError, open_store, outbox
from engine.store.migrations import LATEST, MIGRATIONS
from engine.store.sqlstore import SqlStore

store_url = storekit.store_url

LINE = Source("line-1", "rf")


def _events(store: SqlStore) -> list[Message]:
    return [m for _, m in store.outbox_after(0, 1_000_000)]


def _body(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(message.payload)["MessageBody"]
    return body


def _kinds(store: SqlStore, serial: str | None = None) -> list[Kind]:
    return [m.kind for m in _events(store) if serial is None or m.serial == serial]


def _rows(store: SqlStore, sql: str) -> list[tuple[Any, ...]]:
    return store._worker.call(lambda tx: tx.rows(sql), write=False)


def test_a_store_not_told_the_line_writes_no_event(store_url: str) -> None:
    """Without tell_line, claims, attempts, finishes, holds, quarantines, releases and tell() write no outbox row."""
    woken: list[int] = []
    with open_store(store_url) as store:
        store.on_written = lambda: woken.append(1)
        assert claim(store, "SN1", lot="LOT-1") is None
        store.add(attempt("SN1", "boot"))
        burn = attempt("SN1", "burn", Outcome.ERROR, step="lab.burn")
        store.add(burn, intent=store.intend(burn), quarantine="interrupted burn")
        store.hold_lot("LOT-1", "too many failures")
        store.tell(prompt_waiting(LINE, "SN1", 1, "look", "ok?", "Is the LED green?", time.time()))
        store.finish("SN1", UnitStatus.QUARANTINED, "interrupted burn")
        store.release("SN1", "done", "sam")
        assert len(store.unit("SN1").attempts) == 3
        assert _rows(store, "SELECT count(*) FROM line_events") == [(0,)]
        assert store.outbox_first_unpublished() == 0 and list(store.outbox_since(0)) == []
    assert woken == []


def test_each_record_writes_its_event(store_url: str, tmp_path: Path) -> None:
    """Claim, attempt, prompt, lot hold (its first only), quarantine, release and finish each write one event."""
    with open_store(store_url) as store:
        store.tell_line(LINE)
        _, refused = store.claim(
            "SN1", station="rf", lot="LOT-1", product="phone", decide=storekit.admit, socket=3, operator="ana"
        )
        assert refused is None
        volts = measurement("volts", 3.3, Verdict.PASS, "V", 3.0, 3.6)
        store.add(attempt("SN1", "boot", slot=3, operator="ana", lot="LOT-1", measurements=(volts,)))
        store.tell(prompt_waiting(LINE, "SN1", 3, "look", "ok?", "Is the LED green?", time.time()))
        store.hold_lot("LOT-1", "3 units failed")
        store.hold_lot("LOT-1", "held again")  # the lot was held already: no news
        burn = attempt("SN1", "burn", Outcome.ERROR, slot=3, step="lab.burn")
        store.add(burn, intent=store.intend(burn), quarantine="burn interrupted")
        store.finish("SN1", UnitStatus.QUARANTINED, "burn interrupted", socket=3)
        store.release("SN1", "done", "sam", "it took")
        events = _events(store)
    assert [m.kind for m in events] == [
        Kind.UNIT_STARTED,
        Kind.ATTEMPT_ENDED,
        Kind.PROMPT_WAITING,
        Kind.LOT_HELD,
        Kind.ATTEMPT_ENDED,
        Kind.UNIT_QUARANTINED,
        Kind.UNIT_FINISHED,
        Kind.ATTEMPT_ENDED,
        Kind.UNIT_RELEASED,
    ]
    started, boot, _, held, _, quarantined, finished, decided, released = events
    assert started.topic == "line-1/rf/3/unit-started"
    assert _body(started) == {"UnitIdentifier": "SN1", "PositionNumber": 3, "Lot": "LOT-1", "Operator": "ana"}
    assert boot.topic == "line-1/rf/3/attempt-ended"
    [m] = _body(boot)["Measurements"]
    assert (m["MeasuredValue"], m["MeasurementUnits"], m["LowerLimit"], m["UpperLimit"]) == (3.3, "V", 3.0, 3.6)
    assert _body(held) == {"Lot": "LOT-1", "Reason": "3 units failed"} and held.serial is None
    assert quarantined.topic == "line-1/rf/3/unit-quarantined"
    assert _body(quarantined)["Reason"] == "burn interrupted"
    assert finished.topic == "line-1/rf/3/unit-finished" and _body(finished)["Status"] == "quarantined"
    assert _body(decided)["Result"] == "Passed"  # the decision's attempt: done
    assert _body(released) == {"UnitIdentifier": "SN1", "Decision": "done", "By": "sam", "Note": "it took"}


def test_a_dead_stations_recovery_tells_the_quarantine(store_url: str) -> None:
    """recover() writes the interrupted attempt's event and the unit's quarantine with them."""
    left_by_dead_station(store_url, "SN1", stage="burn")
    with open_store(store_url) as store:
        store.tell_line(LINE)
        [(serial, _)] = store.recover()
        assert serial == "SN1"
        assert _kinds(store) == [Kind.ATTEMPT_ENDED, Kind.UNIT_QUARANTINED]


def test_events_read_in_seq_order_each_units_in_its_records_order(store_url: str) -> None:
    """Attempts written behind, prompts told between them and durable writes keep the order they were made in."""
    with open_store(store_url) as store:
        store.tell_line(LINE)
        made: list[tuple[str, str]] = []
        for n in range(300):
            serial = f"SN{n % 7}"
            made.append((serial, f"s{n}"))
            if n % 50 == 0:
                store.tell(prompt_waiting(LINE, serial, 1, f"s{n}", "q", "text", time.time()))
            elif n % 71 == 0:
                store.add(attempt(serial, f"s{n}", Outcome.ERROR), quarantine="q")
                made.append((serial, "quarantined"))
            else:
                store.add(attempt(serial, f"s{n}", number=n))
        events = store.outbox_after(0, 10_000)
    seqs = [seq for seq, _ in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    told = [(m.serial, "quarantined" if m.kind is Kind.UNIT_QUARANTINED else _body(m)["TestName"]) for _, m in events]
    assert told == made


def test_ids_are_unique_and_read_back_as_the_same_bytes(store_url: str) -> None:
    """Reading twice, or after the store was closed and opened again, gives the same ids, topics and bytes."""
    with open_store(store_url) as store:
        store.tell_line(LINE)
        for n in range(150):
            store.add(attempt(f"SN{n % 3}", "boot", number=n))
        first, again = store.outbox_after(0, 1000), store.outbox_after(0, 1000)
    with open_store(store_url) as store:
        reopened = store.outbox_after(0, 1000)
    assert len(first) == 150 and first == again == reopened
    assert len({m.unique_id for _, m in first}) == 150
    assert all(orjson.loads(m.payload)["UniqueID"] == m.unique_id for _, m in first)


def test_published_rows_are_marked_behind_and_the_first_unpublished_follows(store_url: str) -> None:
    """outbox_published marks every row up to a seq (written behind); outbox_after still reads them, by limit."""
    with open_store(store_url) as store:
        store.tell_line(LINE)
        assert store.outbox_first_unpublished() == 0
        for n in range(10):
            store.add(attempt("SN1", f"s{n}"))
        seqs = [seq for seq, _ in store.outbox_after(0, 100)]
        assert store.outbox_first_unpublished() == seqs[0]
        store.outbox_published(seqs[3])
        store.flush()
        assert store.outbox_first_unpublished() == seqs[4]
        assert [seq for seq, _ in store.outbox_after(seqs[1], 3)] == seqs[2:5]
        store.outbox_published(seqs[-1])
        store.flush()
        assert store.outbox_first_unpublished() == seqs[-1] + 1  # none left: the next one to come
        assert store.outbox_after(seqs[-1], 10) == []
        store.add(attempt("SN1", "late"))
        [(late, _)] = store.outbox_after(store.outbox_first_unpublished() - 1, 10)
        assert store.outbox_first_unpublished() == late
        published = _rows(store, "SELECT count(*) FROM line_events WHERE published IS NOT NULL")
    assert published == [(10,)]


def test_since_replays_by_the_time_written_in_seq_order(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """outbox_since reads every event written at the time given or later, published or not, page after page."""
    monkeypatch.setattr(outbox, "PAGE", 4)
    with open_store(store_url) as store:
        store.tell_line(LINE)
        for n in range(5):
            store.add(attempt("SN1", f"early{n}"))
        store.flush()
        store.outbox_published(10**9)
        time.sleep(0.05)
        when = time.time()
        for n in range(11):
            store.add(attempt("SN1", f"late{n}"))
        replayed = list(store.outbox_since(when))
        assert [_body(m)["TestName"] for m in replayed] == [f"late{n}" for n in range(11)]
        assert len(list(store.outbox_since(0))) == 16


def test_stations_sharing_a_store_read_and_mark_only_their_own(store_url: str) -> None:
    """Two stations told the line on one store keep their rows apart; a store not told reads every source's."""
    with open_store(store_url) as rf, open_store(store_url) as boot, open_store(store_url) as anyone:
        rf.tell_line(Source("line-1", "rf"))
        boot.tell_line(Source("line-1", "boot"))
        rf.add(attempt("SN1", "rf_cal"))
        boot.add(attempt("SN2", "boot"))
        rf.flush()
        boot.flush()
        assert [m.serial for m in _events(rf)] == ["SN1"]
        assert [m.serial for m in _events(boot)] == ["SN2"]
        boot.outbox_published(10**9)
        boot.flush()
        assert rf.outbox_first_unpublished() > 0 and rf.outbox_first_unpublished() == rf.outbox_after(0, 1)[0][0]
        assert sorted(m.serial or "" for m in _events(anyone)) == ["SN1", "SN2"]


def test_on_written_is_called_from_the_stores_thread_after_commits_with_events(store_url: str) -> None:
    """on_written wakes a reader after each commit that wrote events, from the store's thread; not otherwise."""
    calls: list[tuple[str, int]] = []
    with open_store(store_url) as store, open_store(store_url) as watcher:

        def woken() -> None:  # what another connection sees: the commit is done
            calls.append((threading.current_thread().name, len(_events(watcher))))

        store.on_written = woken
        store.add(attempt("SN1", "before"))  # not told yet
        store.flush()
        assert calls == []
        store.tell_line(LINE)
        store.add(attempt("SN1", "boot"))
        store.flush()
        store.lot_failed("LOT-1", "boot")  # a commit without events
        store.hold_lot("LOT-1", "held")
    assert calls == [("floorflow-store", 1), ("floorflow-store", 2)]


def test_a_store_of_the_previous_release_gets_the_outbox_on_opening(store_url: str) -> None:
    """A store at schema version 2 with records is migrated on opening: the outbox is there, empty, the records kept."""
    with open_store(store_url, MIGRATIONS[:2]) as old:
        assert claim(old, "SN1") is None
        old.add(attempt("SN1", "boot"))
        old.finish("SN1", UnitStatus.SHIPPED, None)
        assert old.schema_version() == 2
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST
        assert _rows(store, "SELECT count(*) FROM line_events") == [(0,)]
        assert [a.stage for a in store.unit("SN1").attempts] == ["boot"]
        store.tell_line(LINE)
        store.add(attempt("SN1", "rework"))
        assert _kinds(store) == [Kind.ATTEMPT_ENDED]


def test_events_kept_whole_before_attempts_kept_their_ids_are_read_as_kept(store_url: str) -> None:
    """An attempt-ended a store of version 3 kept with its payload is read, after the upgrade, as it was kept;
    one written after it is built from its attempt's row, the same bytes at every read."""
    kept = attempt_ended(LINE, attempt("SN1", "boot"))
    with open_store(store_url, MIGRATIONS[:3]) as old:  # as version 3 wrote it: the payload in its row
        old.add(attempt("SN1", "boot"))
        row = (kept.unique_id, LINE.name, kept.topic, kept.kind.value, "SN1", kept.payload, time.time())
        sql = "INSERT INTO line_events (unique_id, source, topic, kind, serial, payload, created) VALUES "
        old._worker.call(lambda tx: tx.run(sql + "(?, ?, ?, ?, ?, ?, ?)", row))
    with open_store(store_url) as store:
        store.tell_line(LINE)
        store.add(attempt("SN1", "rework"))
        first, second = _events(store)
        assert first == kept
        assert json.loads(second.payload)["MessageBody"]["TestName"] == "rework"
        assert _rows(store, "SELECT payload, attempt IS NULL FROM line_events ORDER BY seq")[1] == (b"", 0)
        assert _events(store) == [first, second]


# -- atomicity ----------------------------------------------------------------------------------------


class Injected(RuntimeError):
    pass


def _fail_after_writing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every outbox write fail once its rows are written in the transaction; returns the count of failures."""
    failures: list[int] = []
    insert = outbox._insert

    def insert_then_fail(tx: Any, rows: Any) -> None:
        insert(tx, rows)
        failures.append(len(rows))
        raise Injected("the transaction fails after its record and event were written")

    monkeypatch.setattr(outbox, "_insert", insert_then_fail)
    return failures


def test_a_failed_durable_write_leaves_neither_record_nor_event(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim and a finish whose transaction fails after their rows were written leave no row and no event."""
    with open_store(store_url) as store:
        store.tell_line(LINE)
        assert claim(store, "SN0") is None
        undo = monkeypatch.context()
        with undo as patch:
            failures = _fail_after_writing(patch)
            with pytest.raises(StoreError, match="fails after"):
                claim(store, "SN1")
            assert _rows(store, "SELECT serial FROM units ORDER BY serial") == [("SN0",)]
            with pytest.raises(StoreError, match="fails after"):
                store.finish("SN0", UnitStatus.SHIPPED, None)
            assert failures == [1, 1]
        assert _rows(store, "SELECT status, claimed_by IS NOT NULL FROM units") == [("in-route", True)]
        assert _kinds(store) == [Kind.UNIT_STARTED]
        store.finish("SN0", UnitStatus.SHIPPED, None)  # the store goes on
        assert _kinds(store) == [Kind.UNIT_STARTED, Kind.UNIT_FINISHED]


def test_a_failed_batch_leaves_neither_its_attempts_nor_their_events(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attempts written behind whose batch fails after the rows were written are lost with their events, together."""
    store = open_store(store_url)
    store.tell_line(LINE)
    store.add(attempt("SN1", "kept"))
    store.flush()
    with monkeypatch.context() as patch:
        failures: list[int] = []
        told = store._write.told

        def told_then_fail(tx: Any, source: Source, ids: list[int], unique: str) -> None:
            told(tx, source, ids, unique)
            failures.append(len(ids))
            raise Injected("the transaction fails after its record and event were written")

        patch.setattr(store._write, "told", told_then_fail)
        store.add(attempt("SN1", "lost"))
        with pytest.raises(StoreError, match="fails after"):
            store.flush()
        assert failures == [1]
    with pytest.raises(StoreError):
        store.close()
    with open_store(store_url) as again:
        assert [a.stage for a in again.unit("SN1").attempts] == ["kept"]
        assert [_body(m)["TestName"] for m in _events(again)] == ["kept"]


CHILD = """
import sys
sys.path.insert(0, {tests!r})
from steplab import Bench, Measure, direct_flow, runner, stage
from engine.messages import Source
from engine.run.runner import UnitSpec
from engine.store import open_store

url, prefix = sys.argv[1], sys.argv[2]
flow = direct_flow([stage(f"s{{n}}", Measure) for n in range(6)])
store = open_store(url)
store.tell_line(Source("line-1", "kill"))
bench = Bench()
print("running", flush=True)
n = 0
while True:
    units = [UnitSpec(f"{{prefix}}-{{n + k}}", "LOT-1") for k in range(4)]
    for unit in units:
        bench.values[unit.serial] = 1.5
    runner(flow, bench, store).run(units, slots=2)
    n += 4
"""
KILLS = 3


def _snapshot(tx: Any) -> tuple[list[tuple[Any, ...]], ...]:
    """The attempts, units and events as of one moment (PostgreSQL: the killed station's last commit may land
    while they are read)."""
    if tx.for_update:
        tx.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    return (
        tx.rows("SELECT serial, stage, attempt FROM attempt_records"),
        tx.rows("SELECT serial, claimed_by IS NULL FROM units"),
        [(m.kind, m.payload) for _, m in outbox.after(tx, None, 0, 1 << 40)],
    )


def _outbox_matches_the_records(store: SqlStore) -> int:
    """Every attempt, claim and finish has exactly one event, and every event its record; returns the attempts."""
    attempt_rows, units, events = store._worker.call(_snapshot)
    attempts = Counter(attempt_rows)
    claimed = Counter(serial for serial, _ in units)
    finished = Counter(serial for serial, done in units if done)
    told: dict[str, Counter[Any]] = {kind: Counter() for kind in Kind}
    for kind, payload in events:
        body = orjson.loads(bytes(payload))["MessageBody"]
        if kind == Kind.ATTEMPT_ENDED:
            told[kind][body["UnitIdentifier"], body["TestName"], body["Attempt"]] += 1
        else:
            told[kind][body["UnitIdentifier"]] += 1
    assert set(attempts.values()) <= {1} and set(told[Kind.ATTEMPT_ENDED].values()) <= {1}
    assert told[Kind.ATTEMPT_ENDED] == attempts
    assert told[Kind.UNIT_STARTED] == claimed
    assert told[Kind.UNIT_FINISHED] == finished
    return sum(attempts.values())


def test_a_station_killed_mid_run_leaves_each_attempt_with_exactly_one_event(store_url: str, tmp_path: Path) -> None:
    """SIGKILLed while running (a few times, at random moments), a station told the line leaves every attempt,
    claim and finish it recorded with exactly one event, and no event without its record."""
    script = tmp_path / "station.py"
    script.write_text(textwrap.dedent(CHILD.format(tests=str(Path(__file__).parent))))
    chance = random.Random(int(os.environ.get("FLOORFLOW_OUTBOX_SEED", "15")))
    recorded = []
    for kill in range(KILLS):
        log = tmp_path / f"station-{kill}.log"
        with log.open("w") as err:
            child = subprocess.Popen(
                [sys.executable, str(script), store_url, f"K{kill}"], stdout=subprocess.PIPE, stderr=err, text=True
            )
            assert child.stdout is not None
            assert child.stdout.readline() == "running\n", log.read_text()
            time.sleep(chance.uniform(0.1, 0.6))
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL, log.read_text()
        with open_store(store_url) as store:
            recorded.append(_outbox_matches_the_records(store))
    assert 0 < recorded[0] < recorded[1] < recorded[2], json.dumps(recorded)


# -- the runner ---------------------------------------------------------------------------------------


def test_a_runner_on_a_told_store_tells_each_units_visit_at_its_socket(store_url: str) -> None:
    """A station's run: each unit's events are started, its attempts, finished, at the socket that ran it."""
    flow = direct_flow([stage("boot", Measure), stage("rf", Measure)])
    bench = Bench(values={"SN1": 1.0, "SN2": 1.0, "SN3": 1.0})
    with open_store(store_url) as store:
        store.tell_line(LINE)
        results = runner(flow, bench, store).run([UnitSpec(s) for s in ("SN1", "SN2", "SN3")], 2)
        assert [r.status for r in results] == [UnitStatus.SHIPPED] * 3
        for serial, socket in (("SN1", 1), ("SN2", 2), ("SN3", 1)):
            mine = [m for m in _events(store) if m.serial == serial]
            assert [m.kind for m in mine] == [
                Kind.UNIT_STARTED,
                Kind.ATTEMPT_ENDED,
                Kind.ATTEMPT_ENDED,
                Kind.UNIT_FINISHED,
            ]
            assert {_body(m)["PositionNumber"] for m in mine} == {socket}
            assert _body(mine[0])["Operator"] == "tester"
            assert _body(mine[-1])["Status"] == UnitStatus.SHIPPED
