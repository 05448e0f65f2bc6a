"""`floorflow run` as a user runs it: usage errors exit 2 with a message, and the example recipes run end to end
on the simulated line (exit codes, engine.cli.shared.ExitCode: 0 ok, 1 recipe errors, 2 usage, 3 aborted, 4 station
error, 5 a unit failed: scrapped or refused).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
THERMOSTAT = str(ROOT / "workflows/sphere-thermostat.yaml")
EXAMPLES = sorted(
    p for p in (ROOT / "workflows").glob("*.yaml") if "abstract: true" not in p.read_text()
)  # the recipes a station can run


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# -- usage errors ---------------------------------------------------------------------------------------


def test_no_units_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A run without --unit or --units-from exits 2 and says how to give units."""
    code, _, err = _run(capsys, THERMOSTAT, "--sim")
    assert code == 2
    assert "no units to run" in err and "--unit" in err


def test_missing_recipe_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A recipe path that does not exist exits 2 naming the path."""
    missing = tmp_path / "no-such-recipe.yaml"
    code, _, err = _run(capsys, str(missing), "--sim", "--unit", "SN1")
    assert code == 2
    assert str(missing) in err


def test_unknown_station_is_a_usage_error_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt --station exits 2 and suggests the station meant."""
    code, _, err = _run(capsys, THERMOSTAT, "--sim", "--station", "fixtur", "--unit", "SN1")
    assert code == 2
    assert "no station 'fixtur'" in err and "did you mean 'fixture'" in err


def test_abstract_recipe_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An abstract base recipe cannot be run: exit 2 saying it is abstract."""
    code, _, err = _run(capsys, str(ROOT / "workflows/base/phone.yaml"), "--sim", "--unit", "SN1")
    assert code == 2
    assert "abstract" in err


def test_duplicate_serial_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """The same serial given twice exits 2 naming it."""
    code, _, err = _run(capsys, THERMOSTAT, "--sim", "--unit", "SN1", "--unit", "SN1")
    assert code == 2
    assert "SN1 is given twice" in err


def test_duplicate_serial_across_unit_and_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A serial given with --unit and again in --units-from exits 2."""
    units = tmp_path / "units.txt"
    units.write_text("# serial, lot\nSN2, LOT-1\nSN1\n")
    code, _, err = _run(capsys, THERMOSTAT, "--sim", "--unit", "SN1", "--units-from", str(units))
    assert code == 2
    assert "SN1 is given twice" in err


def test_missing_units_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--units-from naming a file that does not exist exits 2 naming it."""
    code, _, err = _run(capsys, THERMOSTAT, "--sim", "--units-from", str(tmp_path / "units.txt"))
    assert code == 2
    assert "units.txt" in err


def test_sim_config_without_sim_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--sim-config without --sim exits 2 saying they go together."""
    config = tmp_path / "sim.yaml"
    config.write_text("units: {}\n")
    code, _, err = _run(capsys, THERMOSTAT, "--sim-config", str(config), "--unit", "SN1")
    assert code == 2
    assert "--sim-config goes with --sim" in err


def test_zero_slots_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--slots 0 exits 2."""
    code, _, err = _run(capsys, THERMOSTAT, "--sim", "--slots", "0", "--unit", "SN1")
    assert code == 2
    assert "--slots" in err


def test_recipe_with_errors_exits_1_with_its_diagnostics(capsys: pytest.CaptureFixture[str]) -> None:
    """A recipe that does not validate is not run: exit 1, as validate exits, with file:line:col diagnostics."""
    bad = "tests/recipes/bad/unknown_step_type.yaml"
    code, _, err = _run(capsys, str(ROOT / bad), "--sim", "--unit", "SN1")
    assert code == 1
    assert "unknown_step_type.yaml:" in err and "unknown step type 'flash.gnag'" in err


def test_without_sim_and_without_hardware_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A run needs the station's wiring or the simulation: without either it exits 2 saying to give
    --hardware FILE or --sim."""
    code, _, err = _run(capsys, THERMOSTAT, "--unit", "SN1")
    assert code == 2
    assert "--hardware FILE" in err and "--sim" in err


def _station_config(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "station.yaml"
    config.write_text(text)
    return config


def test_hardware_and_sim_together_are_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--hardware FILE and --sim exclude each other: exit 2 saying so."""
    config = _station_config(tmp_path, 'slots:\n  "1": {usb_port: "1-1.1", console: /dev/ttyUSB0}\n')
    code, _, err = _run(capsys, THERMOSTAT, "--sim", "--hardware", str(config), "--unit", "SN1")
    assert code == 2
    assert "--hardware and --sim exclude each other" in err


def test_bad_hardware_config_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A station config with a mistyped key exits 2 naming the file and the key meant."""
    config = _station_config(tmp_path, "rf_testr: TCPIP0::10.0.0.5::5025::SOCKET\n")
    code, _, err = _run(capsys, THERMOSTAT, "--hardware", str(config), "--unit", "SN1")
    assert code == 2
    assert "station.yaml" in err and "unknown key 'rf_testr'" in err and "did you mean 'rf_tester'" in err


CONNECT_ONLY = """\
recipe: connect-only
version: 1
stations:
  fixture: {slots: 1}
stages:
  - id: connect
    step: device.connect
    station: fixture
    with: {interface: uart, timeout_s: 1}
"""


def test_a_wired_serial_port_that_does_not_exist_is_a_station_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With --hardware FILE wiring slot 1 to a serial port that is not there, the unit ends in error
    (exit 4), not failed, with a message naming the port."""
    recipe = tmp_path / "connect-only.yaml"
    recipe.write_text(CONNECT_ONLY)
    port = tmp_path / "ttyUSB7"
    config = _station_config(tmp_path, f'slots:\n  "1": {{usb_port: "1-1.1", console: {port}}}\n')
    records = tmp_path / "records"
    code, out, err = _run(capsys, str(recipe), "--hardware", str(config), "--json-out", str(records), "--unit", "SN1")
    assert code == 4, err
    assert f"serial port {port} does not open" in out
    record = json.loads((records / "SN1.json").read_text())
    assert record["status"] == "error" and str(port) in record["reason"]


# -- end to end on the simulated line ---------------------------------------------------------------------


def _sim_line_present() -> bool:
    init = ROOT / "steps/sim/__init__.py"
    return init.is_file() and "SimLine" in init.read_text()


needs_sim = pytest.mark.skipif(not _sim_line_present(), reason="steps/sim (SimLine) is not there yet")


def _statuses(directory: Path, serials: list[str]) -> dict[str, str]:
    return {s: json.loads((directory / f"{s}.json").read_text())["status"] for s in serials}


@needs_sim
@pytest.mark.parametrize("recipe", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_recipe_ships_every_simulated_unit(
    recipe: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every example recipe run on the simulated line ships healthy units (exit 0), with a record per unit."""
    serials = ["SIM0001", "SIM0002", "SIM0003"]
    args = [str(recipe), "--sim", "--slots", "2", "--json-out", str(tmp_path)]
    code, _, err = _run(capsys, *args, *(a for s in serials for a in ("--unit", s)))
    assert code == 0, err
    assert _statuses(tmp_path, serials) == dict.fromkeys(serials, "shipped")


@needs_sim
def test_a_unit_failing_past_its_retries_exits_5(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A simulated unit failing rf_cal_2g4 more often than its retries is scrapped and the run exits 5."""
    config = tmp_path / "sim.yaml"
    config.write_text("units:\n  SIM0002:\n    fail: {rf_cal_2g4: 3}\n")
    records = tmp_path / "records"
    args = [THERMOSTAT, "--sim", "--sim-config", str(config), "--json-out", str(records)]
    code, _, _ = _run(capsys, *args, "--unit", "SIM0001", "--unit", "SIM0002")
    assert code == 5
    assert _statuses(records, ["SIM0001", "SIM0002"]) == {"SIM0001": "shipped", "SIM0002": "scrapped"}


@needs_sim
def test_a_unit_failing_then_passing_within_its_retries_ships(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A simulated unit failing rf_cal_2g4 twice (retry.max 2) passes on the third attempt and ships (exit 0)."""
    config = tmp_path / "sim.yaml"
    config.write_text("units:\n  SIM0001:\n    fail: {rf_cal_2g4: 2}\n")
    records = tmp_path / "records"
    code, _, _ = _run(
        capsys, THERMOSTAT, "--sim", "--sim-config", str(config), "--json-out", str(records), "--unit", "SIM0001"
    )
    assert code == 0
    attempts = json.loads((records / "SIM0001.json").read_text())["attempts"]
    assert [a["outcome"] for a in attempts if a["stage"] == "rf_cal_2g4"] == ["FAIL", "FAIL", "PASS"]


@needs_sim
def test_a_missing_simulated_device_exits_4(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A unit whose device does not answer is a station error (exit 4), not a failed unit, and its
    record says which link stayed silent."""
    config = tmp_path / "sim.yaml"
    config.write_text("units:\n  SIM0001:\n    missing: true\n")
    recipe = tmp_path / "connect-only.yaml"
    recipe.write_text(CONNECT_ONLY)
    records = tmp_path / "records"
    args = ["--sim", "--sim-config", str(config), "--unit", "SIM0001", "--json-out", str(records)]
    code, _, _ = _run(capsys, str(recipe), *args)
    assert code == 4
    record = json.loads((records / "SIM0001.json").read_text())
    assert record["status"] == "error" and "no answer to ID" in record["reason"]


@needs_sim
def test_bad_sim_config_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A sim config naming a stage the recipe does not have exits 2 naming the config file."""
    config = tmp_path / "sim.yaml"
    config.write_text("units:\n  SIM0001:\n    fail: {rf_cal_2g5: 1}\n")
    code, _, err = _run(capsys, THERMOSTAT, "--sim", "--sim-config", str(config), "--unit", "SIM0001")
    assert code == 2
    assert "sim.yaml" in err


@needs_sim
def test_thermostat_fixture_station_hands_units_on_to_rf(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """At the fixture station a thermostat runs its fixture stages and leaves in-route for rf, exit 0."""
    code, _, _ = _run(
        capsys, THERMOSTAT, "--sim", "--station", "fixture", "--json-out", str(tmp_path), "--unit", "SIM0001"
    )
    assert _statuses(tmp_path, ["SIM0001"]) == {"SIM0001": "in-route"}
    assert code == 0


def test_a_slot_the_wiring_lacks_stops_the_station_before_any_unit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Running more slots than the station config wires exits 4 before a unit starts, naming the slot."""
    recipe = tmp_path / "connect-only.yaml"
    recipe.write_text(CONNECT_ONLY)
    config = _station_config(tmp_path, 'slots:\n  "1": {usb_port: "1-1.1", console: /dev/ttyUSB0}\n')
    records = tmp_path / "records"
    args = ["--hardware", str(config), "--slots", "2", "--unit", "A", "--unit", "B", "--json-out", str(records)]
    code, _, err = _run(capsys, str(recipe), *args)
    assert code == 4 and "slot 2 is not wired" in err and "Traceback" not in err
    assert not list(records.glob("*.json"))


# -- a damaged store -------------------------------------------------------------------------------------------

PAGE = 4096


def _store_with_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    recipe = tmp_path / "connect-only.yaml"
    recipe.write_text(CONNECT_ONLY)
    made = tmp_path / "made"
    serials = [f"SN{n:04d}" for n in range(40)]
    code, _, err = _run(
        capsys, str(recipe), "--sim", "--json-out", str(made), *(a for s in serials for a in ("--unit", s))
    )
    assert code == 0, err
    return recipe, made


def _damaged_copy(made: Path, to: Path, page: int) -> Path:
    to.mkdir()
    data = bytearray((made / "floorflow.db").read_bytes())
    data[page * PAGE + 8 : (page + 1) * PAGE] = b"\xde\xad\xbe\xef" * ((PAGE - 8) // 4)
    (to / "floorflow.db").write_bytes(bytes(data))
    return to / "floorflow.db"


@needs_sim
def test_a_store_with_damaged_pages_stops_units_with_a_message_never_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Whichever page of a real SQLite store is overwritten (schema, units, attempts, indexes, audit), a
    run on it (a unit shipped before, refused, and a new one) ends without a traceback: exit 5 when the
    damage is not met, else exit 4 with one-line messages naming the store, and at start-up 'the station
    cannot start'. Opening, claiming, adding and finishing are all met by some page."""
    recipe, made = _store_with_units(tmp_path, capsys)
    pages = (made / "floorflow.db").stat().st_size // PAGE
    assert pages > 8
    codes: dict[int, int] = {}
    said: set[str] = set()
    for page in range(pages):
        db = _damaged_copy(made, tmp_path / f"page{page}", page)
        code, _, err = _run(
            capsys, str(recipe), "--sim", "--store", f"sqlite:///{db}", "--unit", "SN0007", "--unit", "NEW1"
        )
        codes[page] = code
        assert code in (5, 4), (page, err)
        for line in err.splitlines():
            assert line.startswith(("floorflow: ", "error: ", "warning: ")), (page, line)
            said |= {part for part in ("cannot start", "could not be read", "could not be written") if part in line}
    assert 4 in codes.values() and {"cannot start", "could not be read"} <= said, (codes, said)


def test_a_store_failing_outside_any_unit_stops_the_station_with_exit_4(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store error the runner does not own to a unit (its last word on the whole run) is one line, exit 4."""
    from engine.run.runner import StationRunner
    from engine.store import StoreError

    def failing(self: object, *args: object) -> None:
        raise StoreError("the store sqlite:///x.db: disk I/O error")

    monkeypatch.setattr(StationRunner, "run", failing)
    recipe = tmp_path / "connect-only.yaml"
    recipe.write_text(CONNECT_ONLY)
    code, _, err = _run(capsys, str(recipe), "--sim", "--unit", "SN1")
    assert code == 4
    assert err == "error: the station stopped: the store sqlite:///x.db: disk I/O error\n"


@needs_sim
@pytest.mark.parametrize("fails", [0, 1], ids=["shipped", "scrapped"])
def test_a_unit_that_left_the_line_is_refused_when_run_again(
    fails: int, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A shipped or scrapped unit run again is refused (exit 5) by the status rule, naming its status
    and when it got it; nothing runs on it and its record keeps its status."""
    recipe = tmp_path / "connect-only.yaml"
    recipe.write_text(CONNECT_ONLY)
    config = tmp_path / "sim.yaml"
    config.write_text(f"units:\n  SN1:\n    fail: {{connect: {fails}}}\n")
    records = tmp_path / "records"
    args = [str(recipe), "--sim", "--json-out", str(records), "--unit", "SN1"]
    code, _, _ = _run(capsys, *args, "--sim-config", str(config))
    status = "scrapped" if fails else "shipped"
    assert code == (5 if fails else 0)
    first = json.loads((records / "SN1.json").read_text())
    assert first["status"] == status
    code, out, _ = _run(capsys, *args)
    assert code == 5
    when = first["attempts"][-1]["ended"][:19].replace("T", " ")
    assert f"SN1 refused: refused by the status rule: the unit was {status} on {when} UTC (after 'connect')" in out
    again = json.loads((records / "SN1.json").read_text())
    assert again["status"] == status and len(again["attempts"]) == len(first["attempts"])
