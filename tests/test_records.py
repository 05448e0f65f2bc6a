"""Records: every attempt in the store, and mirrored (``--json-out DIR``) as DIR/SERIAL.json, written atomically.

The mirror (``engine.report.mirror.JsonMirror``) is a subscriber to the runner's events, writing what
the store holds; these tests run it as ``floorflow run`` does, on a SQLite store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from steplab import Bench, build, memory_store, runner, state_of

from engine.context import StepContext
from engine.events import StepEnded, UnitEnded, UnitStarted
from engine.outcome import Outcome
from engine.record import Attempt, RecipeRef, UnitRecord
from engine.report.mirror import JsonMirror, path_of
from engine.run.runner import UnitSpec
from engine.store import SqlStore, open_store

RECIPE = """\
    recipe: recorded
    version: 3
    stations:
      test: {slots: 2}
      pack: {slots: 1}
    stages:
      - {id: boot, step: lab.flaky, station: test, with: {fails: 1}, retry: {max: 1}}
      - id: rf
        step: lab.measure
        station: test
        with: {name: tx_power_dbm}
        measurements:
          tx_power_dbm: {limits: {min: 14.0, max: 18.0}, marginal: {min: 14.5, max: 17.5}, units: dBm}
      - {id: box, step: lab.measure, station: pack}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    """A SQLite file store, as a station's."""
    with open_store(f"sqlite:///{tmp_path / 'floorflow.db'}") as opened:
        yield opened


def _mirrored(store: SqlStore, directory: Path) -> list[JsonMirror]:
    return [JsonMirror(store.unit, directory)]


def _iso_utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    assert when.utcoffset() == timedelta(0), text
    return when


def _tmp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_json_record_holds_every_attempt_with_its_details(tmp_path: Path, store: SqlStore) -> None:
    """DIR/SERIAL.json lists every attempt with outcome, measurement (limits, units, verdict), recipe id/version/hash,
    station, slot, operator, device and ISO UTC times."""
    flow = build(tmp_path, RECIPE)
    records = tmp_path / "records"
    bench = Bench(values={"SN1": 17.8})
    station = runner(flow, bench, store, station="test", subscribers=_mirrored(store, records))
    [result] = station.run([UnitSpec("SN1", "LOT-7")])
    assert result.status == "in-route"
    data = json.loads((records / "SN1.json").read_text())
    assert (data["serial"], data["lot"], data["status"]) == ("SN1", "LOT-7", "in-route")
    recipe = {"id": "recorded", "version": 3, "hash": flow.content_hash}
    assert data["recipe"] == recipe
    attempts = data["attempts"]
    assert [(a["stage"], a["attempt"], a["outcome"]) for a in attempts] == [
        ("boot", 1, "FAIL"),
        ("boot", 2, "PASS"),
        ("rf", 1, "PASS"),
    ]
    for a in attempts:
        assert a["recipe"] == recipe
        assert (a["serial"], a["lot"], a["station"], a["slot"], a["operator"]) == ("SN1", "LOT-7", "test", 1, "tester")
        assert a["device_id"] == "dev-SN1"
        assert _iso_utc(a["ended"]) >= _iso_utc(a["started"])
        assert a["duration_s"] >= 0
    assert attempts[0]["error"] == "failure 1 of 1"
    assert attempts[2]["measurements"] == [
        {
            "name": "tx_power_dbm",
            "value": 17.8,
            "verdict": "MARGINAL",
            "units": "dBm",
            "limits": {"min": 14.0, "max": 18.0},
        }
    ]


def test_reopening_the_store_restores_the_units_state_and_the_file_mirrors_it(tmp_path: Path) -> None:
    """The store opened again (a restarted station) restores the stages passed, so the next station carries on; the
    unit's file holds the same attempts as the store, read back whole."""
    flow = build(tmp_path, RECIPE)
    records, url = tmp_path / "records", f"sqlite:///{tmp_path / 'floorflow.db'}"
    bench = Bench(values={"SN1": 16.0})
    with open_store(url) as store:
        runner(flow, bench, store, station="test", subscribers=_mirrored(store, records)).run([UnitSpec("SN1")])
    with open_store(url) as reread:
        state = state_of(flow, reread, "SN1")
        assert state.passed == {"boot", "rf"}
        assert state.recipe == RecipeRef("recorded", 3, flow.content_hash)
        assert reread.unit("SN1").attempts[2].measurements[0].value == 16.0
        station = runner(flow, bench, reread, station="pack", subscribers=_mirrored(reread, records))
        [result] = station.run([UnitSpec("SN1")])
        kept = reread.unit("SN1")
    assert result.status == "shipped"
    assert bench.stages_run("SN1") == ["boot", "boot", "rf", "box"]
    data = json.loads((records / "SN1.json").read_text())
    assert data["status"] == "shipped"
    assert data == kept.as_json()  # the file is the store's record
    assert [a["stage"] for a in data["attempts"]] == ["boot", "boot", "rf", "box"]


def test_attempts_round_trip_through_json() -> None:
    """An Attempt written as JSON and read back is equal to the original (times to the microsecond)."""
    from engine.context import MeasurementRecord
    from engine.outcome import Verdict

    attempt = Attempt(
        serial="SN1",
        stage="rf",
        step="lab.measure",
        attempt=2,
        outcome=Outcome.FAIL,
        started=1_700_000_000.25,
        ended=1_700_000_001.5,
        recipe=RecipeRef("r", 1, "abc"),
        lot="L",
        station="test",
        slot=3,
        operator="ann",
        measurements=(MeasurementRecord("v", 3.5, Verdict.FAIL, "V", 0.0, 3.3, {"channel": 6}),),
        error="too high",
        device_id="dev",
    )
    assert Attempt.from_json(json.loads(json.dumps(attempt.as_json()))) == attempt


def test_records_are_written_without_leaving_temporary_files(tmp_path: Path, store: SqlStore) -> None:
    """After a run over several units and slots only SERIAL.json files are left: every write was renamed into place."""
    flow = build(tmp_path, RECIPE)
    records = tmp_path / "records"
    bench = Bench(values={f"SN{i}": 16.0 for i in range(6)})
    station = runner(flow, bench, store, station="test", subscribers=_mirrored(store, records))
    station.run([UnitSpec(f"SN{i}") for i in range(6)], slots=2)
    assert sorted(p.name for p in records.iterdir()) == [f"SN{i}.json" for i in range(6)]
    assert _tmp_files(records) == []


def _attempt(serial: str, stage: str, at: float) -> Attempt:
    return Attempt(serial, stage, "lab.measure", 1, Outcome.PASS, at, at + 1.0, RecipeRef("r", 1, "abc"))


def _ended(serial: str, stage: str) -> StepEnded:
    return StepEnded(serial, 1, stage, "lab.measure", 1, Outcome.PASS, 0.0, 1.0)


def test_a_failed_write_keeps_the_previous_record_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When writing a record fails half-way, the previous SERIAL.json is intact and no temporary file is left."""
    store = memory_store()
    mirror = JsonMirror(store.unit, tmp_path)
    store.add(_attempt("SN1", "boot", 1.0))
    mirror(_ended("SN1", "boot"))
    before = (tmp_path / "SN1.json").read_text()

    def disk_full(fd: int, mode: int) -> None:  # called once the new record is in the temporary file
        raise OSError("disk full")

    monkeypatch.setattr("engine.files.os.fchmod", disk_full)
    store.add(_attempt("SN1", "rf", 3.0))
    with pytest.raises(OSError, match="disk full"):
        mirror(_ended("SN1", "rf"))
    mirror(UnitStarted("SN1", 1))
    with pytest.raises(OSError, match="disk full"):
        mirror(UnitEnded("SN1", 1, "shipped"))
    assert (tmp_path / "SN1.json").read_text() == before
    assert _tmp_files(tmp_path) == []


def test_lot_holds_and_failure_counts_survive_a_restart(tmp_path: Path) -> None:
    """A hold and the sampled-failure counts kept in a store file are seen by the store opened again."""
    url = f"sqlite:///{tmp_path / 'floorflow.db'}"
    with open_store(url) as store:
        assert store.lot_failed("LOT-A", "sample") == 1
        store.hold_lot("LOT-A", "recall 7")
    with open_store(url) as again:
        assert again.lot_hold("LOT-A") == "recall 7"
        assert again.lot_hold("LOT-B") is None
        assert again.lot_failed("LOT-A", "sample") == 2


def test_an_aborted_units_partial_record_is_kept_on_disk(tmp_path: Path) -> None:
    """After an abort the unit's file holds the attempts made before it and the ABORTED attempt, status "aborted"."""
    flow = build(
        tmp_path,
        """\
        recipe: abort
        version: 1
        stages:
          - {id: boot, step: lab.measure}
          - {id: wait, step: lab.cleanup, with: {ending: hang}}
        """,
    )
    bench, store = Bench(), memory_store()
    station = runner(flow, bench, store, subscribers=_mirrored(store, tmp_path / "records"))
    worker = threading.Thread(target=station.run, args=([UnitSpec("SN1")],))
    worker.start()
    assert bench.waiting.wait(5)
    station.stop()
    worker.join(5)
    data = json.loads((tmp_path / "records" / "SN1.json").read_text())
    assert data["status"] == "aborted"  # how the run of it ended; the store keeps it in-route, saying why
    assert (store.unit("SN1").status, store.unit("SN1").reason) == ("in-route", data["reason"])
    assert [(a["stage"], a["outcome"]) for a in data["attempts"]] == [("boot", "PASS"), ("wait", "ABORTED")]


def test_a_serial_with_unsafe_characters_is_kept_inside_the_directory(tmp_path: Path) -> None:
    """A serial holding a path separator is written as a plain file inside DIR, never elsewhere."""
    store = memory_store()
    store.add(_attempt("../SN/1", "boot", 1.0))
    JsonMirror(store.unit, tmp_path / "records")(_ended("../SN/1", "boot"))
    [written] = list((tmp_path / "records").iterdir())
    assert written.parent == tmp_path / "records"
    assert UnitRecord.from_json(json.loads(written.read_text())).serial == "../SN/1"


def test_two_serials_never_share_a_record_file(tmp_path: Path) -> None:
    """Units SN/1 and SN_1 (and a serial too long for a file name, and one that differs only past the cut) get
    files of their own, each holding its own unit."""
    long = "\u00e9" * 64
    serials = ["SN/1", "SN_1", long, long[:-1] + "e"]
    assert len({path_of(tmp_path, s) for s in serials}) == len(serials)
    assert all(len(path_of(tmp_path, s).name.encode()) <= 255 for s in serials)
    flow = build(tmp_path, RECIPE)
    bench = Bench(values=dict.fromkeys(serials, 16.0))
    store = memory_store()
    runner(flow, bench, store, station="test", subscribers=_mirrored(store, tmp_path / "records")).run(
        [UnitSpec(s) for s in serials], slots=2
    )
    files = sorted((tmp_path / "records").iterdir())
    assert sorted(json.loads(f.read_text())["serial"] for f in files) == sorted(serials)


def test_a_record_that_cannot_be_written_ends_the_unit_in_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit whose record cannot be written still gets a result ("error") saying so, not silence from a dead slot."""
    flow = build(tmp_path, RECIPE)
    store = memory_store()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "finish", disk_full)
    results = runner(flow, Bench(values={"SN1": 16.0}), store, station="test").run([UnitSpec("SN1")])
    assert [(r.serial, r.status) for r in results] == [("SN1", "error")]
    assert "the unit's record could not be written: disk full" in (results[0].reason or "")


def test_a_refused_or_never_started_unit_leaves_its_file_as_it_was(tmp_path: Path) -> None:
    """Only a unit the station claimed has its file written as it ends: a refusal, or a unit whose slot never
    started it, writes nothing; a quarantined unit's file keeps saying quarantined."""
    store, records = memory_store(), tmp_path / "records"
    mirror = JsonMirror(store.unit, records)
    assert store.claim("SN1", station=None, lot=None, product=None, decide=lambda record, hold: None)[1] is None
    store.add(_attempt("SN1", "boot", 1.0))
    mirror(UnitStarted("SN1", 1))
    mirror(UnitEnded("SN1", 1, "refused", "route interlock"))
    mirror(UnitEnded("SN1", 1, "error", "not started: slot 1 is out of service"))
    assert not records.exists() or list(records.iterdir()) == []
    store.add(_attempt("SN1", "burn", 2.0), quarantine="burn was interrupted")
    mirror(UnitStarted("SN1", 1))
    mirror(UnitEnded("SN1", 1, "error", "'burn': the instrument is offline"))
    data = json.loads((records / "SN1.json").read_text())
    assert (data["status"], data["reason"]) == ("quarantined", "burn was interrupted")
    assert [a["stage"] for a in data["attempts"]] == ["boot", "burn"]


def test_an_irreversible_stage_is_on_disk_before_the_unit_moves_on(tmp_path: Path, store: SqlStore) -> None:
    """While a later stage runs, the store file opened anew (a restarted station) already sees the irreversible
    stage."""
    flow = build(
        tmp_path,
        """\
        recipe: burn
        version: 1
        stages:
          - {id: burn, step: lab.measure, irreversible: true}
          - {id: later, step: lab.probe}
        """,
    )
    seen: list[list[str]] = []

    def look(ctx: StepContext) -> None:
        with open_store(f"sqlite:///{tmp_path / 'floorflow.db'}") as other:
            seen.append([a.stage for a in other.unit("SN1").attempts])

    bench = Bench(probe=look)
    runner(flow, bench, store).run([UnitSpec("SN1")])
    assert seen == [["burn"]]
