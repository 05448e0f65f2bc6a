"""Records: every attempt as a row in DIR/SERIAL.json, read back into the unit's state, written atomically."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from steplab import Bench, build, runner, state_of

from engine.context import StepContext
from engine.outcome import Outcome
from engine.record import Attempt, RecipeRef, UnitRecord
from engine.run.runner import UnitSpec
from engine.store.history import JsonDirHistory

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


def _iso_utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    assert when.utcoffset() == timedelta(0), text
    return when


def _tmp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_json_record_holds_every_attempt_with_its_details(tmp_path: Path) -> None:
    """DIR/SERIAL.json lists every attempt with outcome, measurement (limits, units, verdict), recipe id/version/hash,
    station, slot, operator, device and ISO UTC times."""
    flow = build(tmp_path, RECIPE)
    records = tmp_path / "records"
    bench = Bench(values={"SN1": 17.8})
    [result] = runner(flow, bench, JsonDirHistory(records), station="test").run([UnitSpec("SN1", "LOT-7")])
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


def test_reading_the_record_back_restores_the_units_state(tmp_path: Path) -> None:
    """A new JsonDirHistory on the same directory restores the stages passed, so the next station carries on."""
    flow = build(tmp_path, RECIPE)
    records = tmp_path / "records"
    bench = Bench(values={"SN1": 16.0})
    runner(flow, bench, JsonDirHistory(records), station="test").run([UnitSpec("SN1")])
    reread = JsonDirHistory(records)
    state = state_of(flow, reread, "SN1")
    assert state.passed == {"boot", "rf"}
    assert state.recipe == RecipeRef("recorded", 3, flow.content_hash)
    assert reread.unit("SN1").attempts[2].measurements[0].value == 16.0
    [result] = runner(flow, bench, reread, station="pack").run([UnitSpec("SN1")])
    assert result.status == "shipped"
    assert bench.stages_run("SN1") == ["boot", "boot", "rf", "box"]
    data = json.loads((records / "SN1.json").read_text())
    assert data["status"] == "shipped"
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


def test_records_are_written_without_leaving_temporary_files(tmp_path: Path) -> None:
    """After a run over several units and slots only SERIAL.json files are left: every write was renamed into place."""
    flow = build(tmp_path, RECIPE)
    records = tmp_path / "records"
    bench = Bench(values={f"SN{i}": 16.0 for i in range(6)})
    runner(flow, bench, JsonDirHistory(records), station="test").run([UnitSpec(f"SN{i}") for i in range(6)], slots=2)
    assert sorted(p.name for p in records.iterdir()) == [f"SN{i}.json" for i in range(6)]
    assert _tmp_files(records) == []


def test_a_failed_write_keeps_the_previous_record_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When writing a record fails half-way, the previous SERIAL.json is intact and no temporary file is left."""
    history = JsonDirHistory(tmp_path)
    recipe = RecipeRef("r", 1, "abc")
    history.add(Attempt("SN1", "boot", "lab.measure", 1, Outcome.PASS, 1.0, 2.0, recipe))
    history.finish("SN1", "in-route", None)
    before = (tmp_path / "SN1.json").read_text()

    def disk_full(fd: int, mode: int) -> None:  # called once the new record is in the temporary file
        raise OSError("disk full")

    monkeypatch.setattr("engine.files.os.fchmod", disk_full)
    with pytest.raises(OSError, match="disk full"):
        history.add(Attempt("SN1", "rf", "lab.measure", 1, Outcome.PASS, 3.0, 4.0, recipe))
    with pytest.raises(OSError, match="disk full"):
        history.finish("SN1", "shipped", None)
    assert (tmp_path / "SN1.json").read_text() == before
    assert _tmp_files(tmp_path) == []


def test_lot_holds_and_failure_counts_survive_a_restart(tmp_path: Path) -> None:
    """A hold and the sampled-failure counts written by one JsonDirHistory are seen by the next one."""
    history = JsonDirHistory(tmp_path)
    assert history.lot_failed("LOT-A", "sample") == 1
    history.hold_lot("LOT-A", "recall 7")
    again = JsonDirHistory(tmp_path)
    assert again.lot_hold("LOT-A") == "recall 7"
    assert again.lot_hold("LOT-B") is None
    assert again.lot_failed("LOT-A", "sample") == 2
    assert _tmp_files(tmp_path) == []


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
    bench = Bench()
    station = runner(flow, bench, JsonDirHistory(tmp_path / "records"))
    worker = threading.Thread(target=station.run, args=([UnitSpec("SN1")],))
    worker.start()
    assert bench.waiting.wait(5)
    station.stop()
    worker.join(5)
    data = json.loads((tmp_path / "records" / "SN1.json").read_text())
    assert data["status"] == "aborted"
    assert [(a["stage"], a["outcome"]) for a in data["attempts"]] == [("boot", "PASS"), ("wait", "ABORTED")]


def test_a_serial_with_unsafe_characters_is_kept_inside_the_directory(tmp_path: Path) -> None:
    """A serial holding a path separator is written as a plain file inside DIR, never elsewhere."""
    history = JsonDirHistory(tmp_path / "records")
    history.add(Attempt("../SN/1", "boot", "lab.measure", 1, Outcome.PASS, 1.0, 2.0, RecipeRef("r", 1, "abc")))
    history.finish("../SN/1", "in-route", None)
    [written] = list((tmp_path / "records").iterdir())
    assert written.parent == tmp_path / "records"
    assert UnitRecord.from_json(json.loads(written.read_text())).serial == "../SN/1"


def test_two_serials_never_share_a_record(tmp_path: Path) -> None:
    """Unit SN_1 does not inherit the stages unit SN/1 passed: it is refused at the second station."""
    flow = build(tmp_path, RECIPE)
    bench = Bench(values={"SN/1": 16.0})
    runner(flow, bench, JsonDirHistory(tmp_path / "records"), station="test").run([UnitSpec("SN/1")])
    [other] = runner(flow, bench, JsonDirHistory(tmp_path / "records"), station="pack").run([UnitSpec("SN_1")])
    assert bench.runs[("SN_1", "box")] == 0
    assert other.status == "refused"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_record_that_cannot_be_written_ends_the_unit_in_error(tmp_path: Path) -> None:
    """A unit whose record cannot be written still gets a result ("error"), not silence from a dead slot thread."""
    flow = build(tmp_path, RECIPE)
    bench = Bench(values={"SN1": b"\x01"})  # bytes: a step bug, but the station must say so
    results = runner(flow, bench, JsonDirHistory(tmp_path / "records"), station="test").run([UnitSpec("SN1")])
    assert [(r.serial, r.status) for r in results] == [("SN1", "error")]


def test_an_irreversible_stage_is_on_disk_before_the_unit_moves_on(tmp_path: Path) -> None:
    """While a later stage runs, a fresh JsonDirHistory (a restarted station) already sees the irreversible stage."""
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
        seen.append([a.stage for a in JsonDirHistory(tmp_path / "records").unit("SN1").attempts])

    bench = Bench(probe=look)
    runner(flow, bench, JsonDirHistory(tmp_path / "records")).run([UnitSpec("SN1")])
    assert seen == [["burn"]]
