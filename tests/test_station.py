"""`floorflow station` as a shift runs it, in real processes: scans with a socket prefix on standard input,
a list, or simulated units plugged in at a rate; refusals at the socket; a unit that errors; a stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from steplab import Bench, Probe, direct_flow, runner, stage
from storekit import admit, attempt

from engine.cli import main
from engine.outcome import Outcome, UnitStatus
from engine.run.slots import UnitSpec
from engine.run.station import Arrivals, ContinuousStation, read_scans
from engine.store import open_store

ROOT = Path(__file__).resolve().parent.parent
THERMOSTAT = str(ROOT / "workflows" / "sphere-thermostat.yaml")
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


def _station(
    store: str, *args: str, stdin: str | None = None, recipe: str = THERMOSTAT
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "engine.cli", "station", recipe, "--station", "fixture", "--sim"]
    return subprocess.run([*command, "--store", store, *args], input=stdin, capture_output=True, text=True, timeout=120)


def _ended(out: str) -> dict[str, str]:
    """Each unit's last line that is not about an attempt: ``slot N SERIAL STATUS[: reason]``, by serial."""
    ended = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 4 and words[0] == "slot" and "attempt" not in words and words[3] != "started":
            ended[words[2]] = line
    return ended


def test_scans_with_a_socket_prefix_run_in_their_sockets_and_are_recorded(tmp_path: Path) -> None:
    """Each scanned line's unit runs in the socket it names (one without a prefix in a free one), its stages are
    recorded in the store, and the end of the input ends the shift with exit 0."""
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    in_two = [f"SN00{n}" for n in range(40, 46)]
    scans = "".join(f"2 {serial}\n" for serial in in_two) + "3 SN0050\nSN0051\n"
    done = _station(store, "--slots", "3", stdin=scans)
    assert done.returncode == 0, done.stdout + done.stderr
    ended = _ended(done.stdout)
    for serial in in_two:
        assert ended[serial].startswith(f"slot 2 {serial} in-route: next: 'rf_cal_2g4'")
    assert ended["SN0050"].startswith("slot 3 SN0050 in-route")
    assert "in-route" in ended["SN0051"]
    with open_store(store) as records:
        for serial in [*in_two, "SN0050", "SN0051"]:
            unit = records.unit(serial)
            assert unit.status == UnitStatus.IN_ROUTE
            assert ("functional", Outcome.PASS) in [(a.stage, a.outcome) for a in unit.attempts]
        assert {a.slot for serial in in_two for a in records.unit(serial).attempts} == {2}


def test_a_unit_past_this_station_is_refused_at_its_socket(tmp_path: Path) -> None:
    """A unit scanned again once done at this station is refused with the reason before any step runs."""
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    done = _station(store, stdin="1 SN8\n1 SN8\n1 SN9\n")
    assert done.returncode == 5, done.stdout + done.stderr
    refused = [line for line in done.stdout.splitlines() if line.startswith("slot 1 SN8 refused: ")]
    assert len(refused) == 1 and "rf_cal_2g4" in refused[0]
    assert done.stdout.count("SN8 load_test_app attempt 1 started") == 1
    assert "in-route" in _ended(done.stdout)["SN9"]


def test_a_bad_line_is_said_with_its_number_and_the_station_goes_on(tmp_path: Path) -> None:
    """A line that is not 'SOCKET SERIAL', or names a socket the station lacks, gets one line on stderr; the
    units after it still run."""
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    done = _station(store, "--slots", "2", stdin="1 SN1 extra\n7 SN2\nx SN3\n2 SN4\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("floorflow: input line")]
    assert len(errors) == 3
    assert errors[1].startswith("floorflow: input line 2: there is no socket 7")
    assert "'x' is not a socket number" in errors[2]
    assert set(_ended(done.stdout)) == {"SN4"}
    with open_store(store) as records:
        assert records.unit("SN4").status == UnitStatus.IN_ROUTE


def test_a_shipped_unit_is_refused_at_its_socket_and_the_station_goes_on(tmp_path: Path) -> None:
    """A unit already shipped is refused at its socket with the reason before any step runs; the next unit in
    that socket runs. A refused unit makes the exit code 5."""
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    assert main(["run", THERMOSTAT, "--sim", "--unit", "SHIP1", "--store", store]) == 0
    with open_store(store) as records:
        before = records.unit("SHIP1")
    assert before.status == UnitStatus.SHIPPED
    done = _station(store, stdin="1 SHIP1\n1 SN5\n")
    assert done.returncode == 5, done.stdout + done.stderr
    ended = _ended(done.stdout)
    assert ended["SHIP1"].startswith("slot 1 SHIP1 refused: ") and "shipped" in ended["SHIP1"]
    assert "SHIP1 load_test_app" not in done.stdout  # no step ran
    assert "in-route" in ended["SN5"]
    with open_store(store) as records:
        after = records.unit("SHIP1")
        assert after.status == UnitStatus.SHIPPED and len(after.attempts) == len(before.attempts)
        assert records.unit("SN5").status == UnitStatus.IN_ROUTE


def test_scrapped_quarantined_and_other_products_are_refused_with_their_reason(tmp_path: Path) -> None:
    """A scrapped unit, a quarantined one and one of another product are each refused at their socket with the
    reason, before any step runs; the unit after them runs."""
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    with open_store(store) as records:
        for serial, lot, product in (("SCRAP1", None, None), ("QUAR1", None, None),
                                     ("PHONE1", None, "X1-EU-32G")):  # fmt: skip
            _, refused = records.claim(serial, station="fixture", lot=lot, product=product, decide=admit)
            assert refused is None
        records.add(attempt("QUAR1", "load_test_app", Outcome.ERROR), quarantine="interrupted mid-burn")
        records.finish("SCRAP1", UnitStatus.SCRAPPED, "burnt")
        for serial in ("QUAR1", "PHONE1"):
            records.finish(serial, UnitStatus.IN_ROUTE, None)
        assert records.unit("QUAR1").status == UnitStatus.QUARANTINED
    done = _station(store, "--slots", "2", stdin="1 SCRAP1\n1 QUAR1\n2 PHONE1\n1 OK1\n")
    assert done.returncode == 5, done.stdout + done.stderr
    ended = _ended(done.stdout)
    assert ended["SCRAP1"].startswith("slot 1 SCRAP1 refused: ") and "scrapped" in ended["SCRAP1"]
    assert ended["QUAR1"].startswith("slot 1 QUAR1 refused: ") and "quarantined" in ended["QUAR1"]
    assert ended["PHONE1"].startswith("slot 2 PHONE1 refused: refused by the product rule: the unit is a X1-EU-32G")
    assert not any(f"{serial} load_test_app" in done.stdout for serial in ("SCRAP1", "QUAR1", "PHONE1"))
    assert ended["OK1"].startswith("slot 1 OK1 in-route")


def test_a_unit_that_errors_ends_in_error_and_its_socket_takes_the_next(tmp_path: Path) -> None:
    """A unit whose device is missing ends as a station error (exit 4); its socket runs the next unit."""
    config = tmp_path / "sim.yaml"
    config.write_text("units:\n  GONE1: {missing: true}\n")
    recipe = tmp_path / "connect-only.yaml"
    recipe.write_text(CONNECT_ONLY)
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    done = _station(store, "--sim-config", str(config), stdin="1 GONE1\n1 SN6\n", recipe=str(recipe))
    assert done.returncode == 4, done.stdout + done.stderr
    ended = _ended(done.stdout)
    assert ended["GONE1"].startswith("slot 1 GONE1 error")
    assert ended["SN6"].startswith("slot 1 SN6 shipped")
    with open_store(store) as records:
        assert records.unit("GONE1").attempts[-1].outcome == Outcome.ERROR
        assert records.unit("SN6").status == UnitStatus.SHIPPED


def test_sim_every_plugs_max_units_into_the_sockets(tmp_path: Path) -> None:
    """--sim-every with --max-units N plugs N simulated units into the sockets, runs them, and stops."""
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    done = _station(store, "--slots", "3", "--sim-every", "0.01", "--max-units", "7")
    assert done.returncode == 0, done.stdout + done.stderr
    ended = _ended(done.stdout)
    assert len(ended) == 7
    assert all(" in-route: " in line for line in ended.values())
    assert {line.split()[1] for line in ended.values()} <= {"1", "2", "3"}
    with open_store(store) as records:
        assert all(records.unit(serial).status == UnitStatus.IN_ROUTE for serial in ended)


def test_sigterm_mid_unit_aborts_it_and_keeps_the_records(tmp_path: Path) -> None:
    """SIGTERM while a socket's step hangs: the attempt ends ABORTED after its cleanup, the unit finished before
    stays recorded, and the station exits 3 with the store consistent."""
    config = tmp_path / "sim.yaml"
    config.write_text("units:\n  T1: {hang: {functional: 30}}\n")
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    command = [sys.executable, "-m", "engine.cli", "station", THERMOSTAT, "--station", "fixture", "--sim"]
    proc = subprocess.Popen(
        [*command, "--store", store, "--slots", "2", "--sim-config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("2 SN7\n")
    proc.stdin.flush()
    seen = _until(proc, "slot 2 SN7 in-route")
    proc.stdin.write("1 T1\n")
    proc.stdin.flush()
    seen += _until(proc, "T1 functional attempt 1 started")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, seen + out + err
    assert "Traceback" not in err
    with open_store(store) as records:
        hung = records.unit("T1")
        assert hung.status == UnitStatus.IN_ROUTE  # not shipped: ready to be run again
        assert (hung.attempts[-1].stage, hung.attempts[-1].outcome) == ("functional", Outcome.ABORTED)
        assert records.unit("SN7").status == UnitStatus.IN_ROUTE


def _until(proc: subprocess.Popen[str], text: str) -> str:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        seen += line
        if text in line or time.monotonic() > deadline:
            break
    assert text in seen, seen
    return seen


def test_usage_errors_name_the_option() -> None:
    """--station is needed; --sim-every goes with --sim and not with a list; --max-units goes with --sim-every."""
    assert main(["station", THERMOSTAT, "--sim"]) == 2
    assert main(["station", THERMOSTAT, "--station", "fixture", "--sim-every", "1"]) == 2
    assert main(["station", THERMOSTAT, "--station", "fixture", "--sim", "--sim-every", "1", "--unit", "A"]) == 2
    assert main(["station", THERMOSTAT, "--station", "fixture", "--sim", "--max-units", "3"]) == 2
    assert main(["station", THERMOSTAT, "--station", "fixture", "--sim", "--sim-every", "0"]) == 2


def test_a_list_runs_and_the_station_ends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--unit as run takes it: the units run in the free sockets and the station ends when they are done."""
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    code = main(
        ["station", THERMOSTAT, "--station", "fixture", "--sim", "--store", store, "--unit", "L1", "--unit", "L2"]
    )
    assert code == 0
    assert set(_ended(capsys.readouterr().out)) == {"L1", "L2"}


def test_a_socket_waiting_holds_up_no_other() -> None:
    """A unit meant for any socket is taken by a free one while another socket waits for its own."""
    arrivals = Arrivals(2)
    stop = threading.Event()
    read_scans(["1 A\n", "B\n", "3 C\n"], arrivals, lambda serial: None, None, sys.stderr)
    assert arrivals.take(2, stop) == UnitSpec("B")
    assert arrivals.take(1, stop) == UnitSpec("A")
    assert arrivals.take(1, stop) is None  # the input ended: nothing more comes


def test_units_still_waiting_at_a_stop_count_as_aborted_not_started() -> None:
    """A station stopped with units waiting for its sockets returns them ABORTED (not started), run none of them."""
    bench = Bench()
    station = ContinuousStation(runner(direct_flow([stage("probe", Probe)]), bench), 2)
    station.arrivals.put(UnitSpec("W1"), 1)
    station.arrivals.put(UnitSpec("W2"))
    station.stop()
    results = station.run()
    assert [(r.serial, r.status, r.reason) for r in results] == [
        ("W2", UnitStatus.ABORTED, "not started"),
        ("W1", UnitStatus.ABORTED, "not started"),
    ]
