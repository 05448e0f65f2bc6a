"""Units arriving by being plugged in: the watch over the sockets' USB ports (engine.run.hotplug) on a fake bus,
the USB enumeration it reads (steps.hardware.usb.PortScan) on the simulated bus and on libusb, the station
config's ``arrivals`` and its errors at file:line:col, and ``floorflow station`` with ``arrivals: plug``."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.cli import main
from engine.events import UnitEnded
from engine.flow import Image
from engine.outcome import StationError, UnitStatus
from engine.run.hotplug import PlugWatch, Socket
from engine.run.slots import UnitSpec
from engine.run.station import Arrivals
from steps.hardware.usb import PortScan, usb_backend
from steps.sim.device import SimDevice
from steps.sim.model import LineModel
from steps.sim.usbsim import SIM_PID, SIM_VID, SimUsbBackend, UsbFirmware

ROOT = Path(__file__).resolve().parent.parent
THERMOSTAT = str(ROOT / "workflows" / "sphere-thermostat.yaml")
PORTS = {1: "1-1.1", 2: "1-1.2"}
MODEL = LineModel(
    lifecycle=("Blank", "DeviceComplete"),
    os_versions={"golden": "24.10"},
    image_types={"golden": "retail"},
    unsigned=frozenset(),
    rf_region="EU",
    rf_target_power_dbm=16.0,
    boot_s=0.0,
)
IMAGES = {"golden": Image("golden", file="images/golden.ffu", kind="ffu", type="retail")}


class NotedArrivals(Arrivals):
    """Arrivals that note each unit put, with its socket, and their end."""

    def __init__(self, sockets: int) -> None:
        super().__init__(sockets)
        self.noted: list[tuple[int | None, str]] = []
        self.ended = False

    def end(self) -> None:
        self.ended = True
        super().end()

    def put(self, unit: UnitSpec, socket: int | None = None) -> None:
        self.noted.append((socket, unit.serial))
        super().put(unit, socket)


class FakeBus:
    """What is plugged in where: port path -> serial number (None: none can be read)."""

    def __init__(self) -> None:
        self.plugged: dict[str, str | None] = {}
        self.broken: str | None = None

    def __call__(self) -> list[tuple[str, str | None]]:
        if self.broken is not None:
            raise StationError(self.broken)
        return list(self.plugged.items())


class Bench:
    def __init__(self, check: dict[str, str] | None = None) -> None:
        self.bus = FakeBus()
        self.arrivals = NotedArrivals(2)
        self.errors = io.StringIO()
        self.stop = threading.Event()
        refusals = check or {}
        self.watch = PlugWatch(
            {**PORTS, 3: "1-1.3"}, self.arrivals, self.bus, self.stop, refusals.get, "LOT7", self.errors
        )

    def verdict(self, serial: str, socket: int) -> None:
        self.watch(UnitEnded(serial, socket, UnitStatus.IN_ROUTE))


@pytest.fixture
def bench() -> Bench:
    return Bench()


def test_a_unit_plugged_in_arrives_at_its_sockets_port(bench: Bench) -> None:
    """A unit appearing at socket 2's port arrives in socket 2, with its serial number and the lot given."""
    bench.watch.look()
    assert bench.arrivals.noted == []
    bench.bus.plugged["1-1.2"] = "A1"
    bench.watch.look()
    assert bench.arrivals.noted == [(2, "A1")]
    assert bench.arrivals.take(2, bench.stop) == UnitSpec("A1", "LOT7")
    assert bench.watch.state(2) is Socket.RUNNING and bench.watch.state(1) is Socket.EMPTY


def test_a_unit_left_in_its_socket_is_not_started_twice(bench: Bench) -> None:
    """A unit that drops off the bus and comes back while it runs (a reboot), or stays in after its verdict,
    arrives once."""
    bench.bus.plugged["1-1.1"] = "A1"
    bench.watch.look()
    del bench.bus.plugged["1-1.1"]
    bench.watch.look()
    bench.bus.plugged["1-1.1"] = "A1"
    bench.watch.look()
    bench.verdict("A1", 1)
    for _ in range(3):
        bench.watch.look()
    assert bench.arrivals.noted == [(1, "A1")]
    assert bench.watch.state(1) is Socket.DONE


def test_a_socket_takes_the_next_unit_once_the_first_is_removed(bench: Bench) -> None:
    """After its verdict and removal, the next unit plugged in arrives; so does a different unit found in its
    place between two looks (the first was removed); the same unit plugged in again is a new arrival."""
    bench.bus.plugged["1-1.1"] = "A1"
    bench.watch.look()
    bench.verdict("A1", 1)
    del bench.bus.plugged["1-1.1"]
    bench.watch.look()
    assert bench.watch.state(1) is Socket.EMPTY
    bench.bus.plugged["1-1.1"] = "B2"
    bench.watch.look()
    bench.verdict("B2", 1)
    bench.bus.plugged["1-1.1"] = "C3"
    bench.watch.look()
    bench.verdict("C3", 1)
    del bench.bus.plugged["1-1.1"]
    bench.watch.look()
    bench.bus.plugged["1-1.1"] = "C3"
    bench.watch.look()
    assert bench.arrivals.noted == [(1, "A1"), (1, "B2"), (1, "C3"), (1, "C3")]


def test_a_device_at_a_port_no_socket_runs_is_ignored(bench: Bench) -> None:
    """A device at a port no socket is wired to, or at the port of a socket the station does not run (socket 3
    of a two-socket station), is not looked at and nothing is said."""
    bench.bus.plugged.update({"1-4": "KEYBOARD", "2-1.1": "X", "1-1.3": "B3"})
    bench.watch.look()
    assert bench.arrivals.noted == []
    assert bench.errors.getvalue() == ""
    assert set(bench.watch.ports) == {1, 2}


def test_a_unit_with_no_serial_is_said_once_and_ignored_until_removed(bench: Bench) -> None:
    """A unit whose serial number cannot be read is said once, naming its socket and port, and never arrives;
    once it is removed, the socket takes the next unit."""
    bench.bus.plugged["1-1.2"] = None
    for _ in range(3):
        bench.watch.look()
    said = bench.errors.getvalue().splitlines()
    assert said == [
        "floorflow: socket 2 (USB 1-1.2): the unit plugged in: no serial number can be read from it; "
        "unplug it; the station goes on"
    ]
    assert bench.arrivals.noted == []
    del bench.bus.plugged["1-1.2"]
    bench.watch.look()
    bench.bus.plugged["1-1.2"] = "B2"
    bench.watch.look()
    assert bench.arrivals.noted == [(2, "B2")]


def test_a_serial_the_recipe_does_not_take_is_said_once() -> None:
    """A serial the check refuses (the recipe's serial_pattern) is said once with the reason, and not run."""
    bench = Bench({"ZZ9": "does not match the recipe's serial_pattern 'SN[0-9]+'"})
    bench.bus.plugged["1-1.1"] = "ZZ9"
    bench.watch.look()
    bench.watch.look()
    assert bench.arrivals.noted == []
    assert bench.errors.getvalue().count("socket 1 (USB 1-1.1): the unit plugged in ('ZZ9'): does not match") == 1


def test_a_bus_that_cannot_be_listed_is_said_once_and_watched_on(bench: Bench) -> None:
    """Enumeration failing is said once (not at every look), and units plugged in arrive once it works again."""
    bench.bus.broken = "USB 1209:f10f: cannot list the USB devices: LIBUSB_ERROR_IO"
    bench.watch.look()
    bench.watch.look()
    assert bench.errors.getvalue().count("cannot list the USB devices") == 1
    bench.bus.broken = None
    bench.bus.plugged["1-1.1"] = "A1"
    bench.watch.look()
    assert bench.arrivals.noted == [(1, "A1")]


def test_the_watch_runs_until_the_station_stops_and_then_ends_the_arrivals(bench: Bench) -> None:
    """In its thread the watch finds a unit plugged in; at the stop it returns and the arrivals end."""
    bench.watch.every_s = 0.01
    thread = threading.Thread(target=bench.watch.watch, daemon=True)
    thread.start()
    bench.bus.plugged["1-1.2"] = "A1"
    gives_up = threading.Event()
    threading.Timer(10, gives_up.set).start()  # a broken watch fails the test, not hangs it
    assert bench.arrivals.take(2, gives_up) == UnitSpec("A1", "LOT7")
    assert not bench.arrivals.ended
    bench.stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert bench.arrivals.ended


# -- the enumeration, through pyusb -------------------------------------------------------------------------


@pytest.fixture
def sim_bus() -> Iterator[SimUsbBackend]:
    backend = SimUsbBackend()
    yield backend
    for port in backend.ports():
        backend.detach(port)


def _plug(backend: SimUsbBackend, port: str, serial: str) -> str:
    device = SimDevice(serial, MODEL)
    backend.attach(port, UsbFirmware(device, IMAGES))
    return device.device_id[:16]


def test_the_port_scan_reads_each_units_port_and_serial_through_pyusb(
    sim_bus: SimUsbBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PortScan lists the units of its VID/PID with their port path and iSerialNumber, reading a unit's serial
    once while it stays plugged in; another VID/PID finds none."""
    import steps.hardware.usb as usb_module

    reads: list[str] = []
    read = usb_module._serial_number
    monkeypatch.setattr(usb_module, "_serial_number", lambda device: reads.append(device.bus) or read(device))
    first = _plug(sim_bus, "1-1.2", "U1")
    second = _plug(sim_bus, "1-2.7", "U2")
    scan = PortScan(SIM_VID, SIM_PID, sim_bus)
    assert sorted(scan()) == [("1-1.2", first), ("1-2.7", second)]
    assert sorted(scan()) == [("1-1.2", first), ("1-2.7", second)]
    assert len(reads) == 2
    sim_bus.detach("1-1.2")
    assert scan() == [("1-2.7", second)]
    assert PortScan(0x1234, SIM_PID, sim_bus)() == []


def test_the_port_scan_lists_the_real_bus_without_error() -> None:
    """On libusb (the project's backend), the scan returns a list, whatever is attached here."""
    try:
        backend = usb_backend()
    except StationError as exc:
        pytest.skip(str(exc))
    try:
        found = PortScan(SIM_VID, SIM_PID, backend)()
    except StationError as exc:  # no USB bus visible (a container without /dev/bus/usb)
        pytest.skip(str(exc))
    assert isinstance(found, list)


def test_a_station_config_saying_plug_watches_its_slots_ports(sim_bus: SimUsbBackend, tmp_path: Path) -> None:
    """floorflow station's plug arrivals read the hardware line's wiring: the slots' ports, the units' VID/PID
    and its USB backend; a unit plugged in at slot 2's port arrives in socket 2 with its USB serial."""
    from engine.cli.station import _plugged
    from engine.recipe.check import check_recipe
    from engine.registry import Registry
    from steps.hardware.line import HardwareLine

    flow, _ = check_recipe(Path(THERMOSTAT), Registry.discover())
    assert flow is not None
    config = {
        "arrivals": "plug",
        "usb": {"vid": SIM_VID, "pid": SIM_PID},
        "slots": {"1": {"usb_port": "1-1.1"}, "2": {"usb_port": "1-1.2"}},
    }
    line = HardwareLine(flow, config, base=tmp_path, usb_backend=sim_bus)
    runner = SimpleNamespace(line=line, abort=threading.Event(), subscribers=[])
    arrivals = Arrivals(2)
    _plugged(argparse.Namespace(lot=None), arrivals, runner, lambda serial: None)  # type: ignore[arg-type]
    (watch,) = runner.subscribers
    serial = _plug(sim_bus, "1-1.2", "U9")
    watch.look()
    arrivals.end()
    assert arrivals.take(2, threading.Event()) == UnitSpec(serial, None)


def _station(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``floorflow station`` on the simulated line, standard input empty (a scan station ends at once)."""
    command = [sys.executable, "-m", "engine.cli", "station", THERMOSTAT, "--station", "fixture", "--sim"]
    store = ["--store", f"sqlite:///{tmp_path / 'floorflow.db'}"]
    return subprocess.run([*command, *store, *options], input="", capture_output=True, text=True, timeout=60)


# -- the station config ---------------------------------------------------------------------------------------

STATION_ERRORS = [
    ("arrivals: plugged\n", "1:11", "arrivals must be one of scan, plug, list, not 'plugged' (did you mean 'plug'?)"),
    ("arrivals: 3\n", "1:11", "arrivals must be one of scan, plug, list, not 3"),
    ("arrivals: plug\n", "1:11", "arrivals: plug finds each unit at its slot's USB port: wire the slots"),
    (
        'arrivals: plug\nslots:\n  "1": {usb_port: "1-1.1"}\n  "2": {usb_serial: "ABC"}\n',
        "4:8",
        "slots.2 has no usb_port: arrivals: plug finds the slot's unit at its USB port",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), STATION_ERRORS, ids=[t for t, _, _ in STATION_ERRORS])
def test_a_wrong_arrivals_is_a_usage_error_at_its_position(
    text: str, where: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """arrivals is one of scan, plug, list; plug needs every slot wired to a USB port: exit 2 at file:line:col."""
    config = tmp_path / "station.yaml"
    config.write_text(text)
    code = main(["station", THERMOSTAT, "--station", "fixture", "--hardware", str(config)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{config}:{where}: station config: {message}" in err
    assert "Traceback" not in err


def test_a_wrong_arrivals_in_the_sim_config_is_a_usage_error_at_its_position(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The simulation's config takes arrivals too, checked the same way."""
    config = tmp_path / "sim.yaml"
    config.write_text("boot_s: 0\narrivals: scn\n")
    code = main(["station", THERMOSTAT, "--station", "fixture", "--sim", "--sim-config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{config}:2:11: sim config: arrivals must be one of scan, plug, list, not 'scn'" in err


@pytest.mark.parametrize(
    ("arrivals", "options", "message"),
    [
        ("plug", ["--unit", "SN1"], "the station's units arrive as arrivals: plug says, not by --unit/--units-from"),
        ("scan", ["--sim-every", "1"], "the station's units arrive as arrivals: scan says, not by --sim-every"),
        ("list", [], "arrivals: list: give the units with --unit SERIAL or --units-from FILE"),
        ("scan", ["--max-units", "2"], "--max-units goes with --sim-every, or with --sim on a station whose arrivals"),
    ],
)
def test_options_that_bring_units_another_way_than_the_config_says_are_refused(
    arrivals: str, options: list[str], message: str, tmp_path: Path
) -> None:
    """A station config's arrivals decides how units arrive: options bringing them another way exit 2, naming
    the config file."""
    config = tmp_path / "sim.yaml"
    config.write_text(f"arrivals: {arrivals}\n")
    done = _station(tmp_path, "--sim-config", str(config), *options)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert f"{config}: " in done.stderr or "--max-units" in message


def test_a_sim_station_whose_units_are_plugged_in_plugs_them_at_the_default_rate(tmp_path: Path) -> None:
    """Under --sim, arrivals: plug with no --sim-every plugs simulated units into the free sockets once a
    second, until --max-units; they run and the station ends with exit 0."""
    config = tmp_path / "sim.yaml"
    config.write_text("arrivals: plug\n")
    done = _station(tmp_path, "--sim-config", str(config), "--slots", "2", "--max-units", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    ended = [line for line in done.stdout.splitlines() if line.startswith("slot ") and " in-route: " in line]
    assert len(ended) == 2
    assert {line.split()[1] for line in ended} == {"1", "2"}
