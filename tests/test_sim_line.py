"""The simulated line: units that keep their state, faults from the config, identities, instruments.

``SimLine.open_unit`` gives the hardware adapter (a ``SimulatedUnit``) talking over the simulated
USB backend and a pty console to the unit's model, ``line.device(serial)``; the instruments are
servers reached through ``line.resources()``. Also the hardware line's wiring config, and every
example recipe's route, stage by stage, on a healthy simulated unit: that is what
``floorflow run --sim`` relies on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from stdnum import imei, luhn

from engine.context import Answer, MeasurementRecord, StepContext, UnitInfo
from engine.flow import Flow, Image, Stage
from engine.outcome import StationError, StepFailed, Verdict
from engine.recipe.check import load_flow
from engine.registry import LINES_GROUP, Registry
from steps.common import CommandRefused
from steps.common.identities import AllocatorConfig, JournalIdentityAllocator
from steps.flash_gang import FlashGang
from steps.hardware import HardwareLine
from steps.label_print import render_zpl
from steps.sim import SimLine
from steps.sim.line import KEPT_IN_MEMORY, SimulatedUnit

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Registry.discover()
RECIPES = sorted((ROOT / "workflows").glob("*.yaml"))
LIFECYCLE = ("Blank", "Module1Complete", "DeviceComplete")
IMAGES = {
    "os": Image("os", file="images/os", kind="recovery"),
    "factory_test": Image("factory_test", file="images/ftest", type="test", temporary=True),
    "app": Image("app", file="images/app"),
}


def _flow() -> Flow:
    stages = {sid: Stage(sid, "manual.checklist") for sid in ("connect", "rf_cal", "functional", "ready")}
    return Flow("mini", 1, stages, tuple(stages), lifecycle=LIFECYCLE, images=IMAGES)


FLOW = _flow()
SIM_USB = "USB 1209:f10f"
"""How the adapter names the simulated units' flashing interface (VID:PID) in its errors."""


def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a guard against a hang, not a timing check)."""
    for _ in range(3000):
        if condition():
            return
        time.sleep(0.01)
    pytest.fail(f"never happened: {what}")


# -- the line and its units ------------------------------------------------------------------------


def test_entry_points_name_the_shipped_lines() -> None:
    """The floorflow.lines group loads SimLine as 'sim' and HardwareLine as 'hardware'."""
    lines = {ep.name: ep.load() for ep in entry_points(group=LINES_GROUP)}
    assert lines["sim"] is SimLine and lines["hardware"] is HardwareLine


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"slot": {}}, "unknown key 'slot' in the top level (did you mean 'slots'?)"),
        ({"slots": {1: {"consol": "/dev/ttyUSB0"}}}, "unknown key 'consol' in slots.1 (did you mean 'console'?)"),
        ({"usb": {"pid_": 1}}, "unknown key 'pid_' in usb (did you mean 'pid'?)"),
    ],
)
def test_hardware_config_mistakes_are_value_errors_with_a_suggestion(
    config: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """A mistyped key in the station wiring is a ValueError saying where, and what was probably meant."""
    with pytest.raises(ValueError, match=re.escape(message)):
        HardwareLine(FLOW, config, base=tmp_path)


def test_hardware_line_refuses_an_unwired_slot(tmp_path: Path) -> None:
    """A slot the station config does not wire cannot be opened; the error lists the wired slots."""
    with pytest.raises(StationError, match=re.escape("slot 1 is not wired in the station config (wired slots: none)")):
        HardwareLine(FLOW, {}, base=tmp_path).open_unit("SN1", 1)
    wired = HardwareLine(FLOW, {"slots": {2: {"usb_port": "1-1.2"}, 3: {"usb_port": "1-1.3"}}}, base=tmp_path)
    with pytest.raises(StationError, match=re.escape("slot 1 is not wired in the station config (wired slots: 2, 3)")):
        wired.open_unit("SN1", 1)


def test_hardware_unit_names_a_console_port_that_does_not_exist(tmp_path: Path) -> None:
    """A slot wired to a serial port that is not there opens, and its first console command is a
    StationError naming the port."""
    port = tmp_path / "ttyUSB7"
    line = HardwareLine(FLOW, {"slots": {1: {"usb_port": "1-1.1", "console": str(port)}}}, base=tmp_path)
    unit = line.open_unit("SN1", 1)
    with pytest.raises(StationError, match=rf"serial port {re.escape(str(port))} does not open"):
        unit.read_identity("imei")


def test_same_serial_same_device_with_its_state() -> None:
    """A serial opened again (after a close, in another slot) is the same unit, still holding what was
    written to it; while it is open, opening it again gives the same link."""
    line = SimLine(FLOW)
    unit = line.open_unit("SN1", 1)
    assert isinstance(unit, SimulatedUnit) and line.open_unit("SN1", 1) is unit
    unit.recover(IMAGES["os"], 5, threading.Event())
    device = line.device("SN1")
    unit.close()
    assert not device.is_open  # closing unplugs it
    again = line.open_unit("SN1", 2)
    assert again is not unit and line.device("SN1") is device
    assert device.os_image == "os" and device.is_open and device.slot == 2
    assert again.status().os_version == device.status().os_version is not None  # over the wire, in slot 2
    line.open_unit("SN2", 1)
    assert line.device("SN2") is not device


def test_a_unit_cannot_be_open_in_two_slots() -> None:
    """One unit cannot sit in two fixture slots at once."""
    line = SimLine(FLOW)
    line.open_unit("SN1", 1)
    with pytest.raises(StationError, match="already open in slot 1"):
        line.open_unit("SN1", 2)


def test_missing_unit_is_a_station_error() -> None:
    """A unit configured missing opens (as on the line), but its first command is a StationError
    naming the empty slot's USB port."""
    line = SimLine(FLOW, {"units": {"SN1": {"missing": True}}})
    unit = line.open_unit("SN1", 3)
    with pytest.raises(StationError, match=rf"no device found for {SIM_USB} at port 1-1\.3"):
        unit.status()


def test_a_closed_link_refuses_commands() -> None:
    """After close (e.g. the runner's timeout) the unit is unplugged: a command over its link is a
    StationError naming the now empty port, and the model itself refuses as closed."""
    line = SimLine(FLOW)
    unit = line.open_unit("SN1", 1)
    unit.close()
    with pytest.raises(StationError, match=rf"no device found for {SIM_USB} at port 1-1\.1"):
        unit.status()
    with pytest.raises(StationError, match="the link to unit SN1 is closed"):
        line.device("SN1").status()


def test_device_id_is_stable_and_distinct() -> None:
    """The device id derives from the serial: the same in every line, different per serial."""
    a, b = SimLine(FLOW).open_unit("SN1", 1), SimLine(FLOW).open_unit("SN1", 1)
    assert a.device_id is None  # not asked yet: records never make the station talk to the unit
    other = SimLine(FLOW).open_unit("SN2", 1).read_id("device-id")
    assert a.read_id("device-id") == b.read_id("device-id") == a.device_id != other


# -- the config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"unit": {}}, "unknown key 'unit' in the top level (did you mean 'units'?)"),
        ({"units": {"SN1": {"fails": {}}}}, "unknown key 'fails' in units.SN1 (did you mean 'fail'?)"),
        (
            {"units": {"SN1": {"fail": {"rf_call": 1}}}},
            "no stage 'rf_call' in recipe 'mini' (did you mean 'rf_cal'?)",
        ),
        ({"units": {"SN1": {"hang": {"functional": -1}}}}, "units.SN1.hang.functional must be a number >= 0"),
        ({"units": {"SN1": {"measurements": {"tx_power": 1}}}}, "must be STAGE.MEASUREMENT"),
        ({"units": {"SN1": {"lifecycle": "Module1complete"}}}, "did you mean 'Module1Complete'?"),
        ({"units": {"SN1": {"identities": {"mei": "1"}}}}, "no identity kind 'mei'"),
        (
            {"unsigned": ["factory_tst"]},
            "no image 'factory_tst' in recipe 'mini' (did you mean 'factory_test'?)",
        ),
        ({"offline": ["rf_teser"]}, "did you mean 'rf_tester'?"),
        ({"allocator": {"tac": "3569"}}, "allocator.tac must be 8 digits"),
        ({"allocator": {"oui": "02:46"}}, "allocator.oui must be three hex octets"),
        ({"os_versions": {"os": 22.11}}, "must be a string"),
    ],
)
def test_bad_config_is_a_value_error(config: dict[str, Any], message: str) -> None:
    """Every mistake in the sim config is a ValueError saying where, and what was probably meant."""
    with pytest.raises(ValueError, match=re.escape(message)):
        SimLine(FLOW, config)


def test_fail_fault_counts_attempts_per_stage() -> None:
    """fail: {rf_cal: 2} fails the stage's first two attempts and no other stage's."""
    device = SimLine(FLOW, {"units": {"SN1": {"fail": {"rf_cal": 2}}}}).open_unit("SN1", 1)
    never = threading.Event()
    device.begin("connect", never)
    for attempt in (1, 2):
        with pytest.raises(StepFailed, match=f"attempt {attempt} of 'rf_cal'"):
            device.begin("rf_cal", never)
    device.begin("rf_cal", never)


def test_hang_honours_cancel() -> None:
    """A hang of an hour ends once the attempt is cancelled mid-hang, as a StationError."""
    line = SimLine(FLOW, {"units": {"SN1": {"hang": {"functional": 3600.0}}}})
    unit = line.open_unit("SN1", 1)
    device = line.device("SN1")
    cancelled = threading.Event()
    raised: list[BaseException] = []

    def attempt() -> None:
        try:
            unit.begin("functional", cancelled)
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    _until(lambda: device.stage == "functional", "the unit entered its hang")
    cancelled.set()
    worker.join(30)  # a guard against an hour's hang, not a timing check
    assert not worker.is_alive(), "the hang went on after the cancel"
    assert len(raised) == 1 and isinstance(raised[0], StationError) and "cancelled" in str(raised[0])


class _RecordingEvent(threading.Event):
    """A cancel event that is never set, and keeps how long each wait on it was for."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_short_hang_only_delays() -> None:
    """A hang that ends before any cancel just makes the unit slow: it stays silent for its hang
    (waiting on the cancel), then the stage goes on and the unit answers."""
    line = SimLine(FLOW, {"units": {"SN1": {"hang": {"functional": 0.1}}}})
    unit = line.open_unit("SN1", 1)
    unit.status()
    never = _RecordingEvent()
    unit.begin("functional", never)
    assert never.waits == [0.1]
    assert line.device("SN1").stage == "functional" and unit.status().lifecycle == "Blank"


def test_measurement_override_applies_to_its_stage_only() -> None:
    """An overridden value shows in its stage; other stages see the unit's own value."""
    line = SimLine(FLOW, {"units": {"SN1": {"measurements": {"rf_cal.tx_power_dbm": 30.0}}}})
    tester = line.resources()["rf_tester"]
    unit = line.open_unit("SN1", 1)
    unit.begin("rf_cal", threading.Event())
    unit.rf_start("wifi-2g4", 6)
    assert tester.measure_tx(unit, "wifi-2g4", 6).power_dbm == 30.0
    unit.begin("functional", threading.Event())
    assert tester.measure_tx(unit, "wifi-2g4", 6).power_dbm < 18.0


# -- lifecycle and write-once ----------------------------------------------------------------------


def test_identities_are_write_once() -> None:
    """Rewriting an identity with its value is a no-op; with another value it is refused (an ERROR:
    the station is wrong, not the unit)."""
    line = SimLine(FLOW)
    unit = line.open_unit("SN1", 1)
    unit.write_identity("imei", "356938035643809")
    unit.write_identity("imei", "356938035643809")
    with pytest.raises(StationError, match="already carries imei 356938035643809, write-once"):
        unit.write_identity("imei", "356938035643817")
    assert unit.read_identity("imei") == "356938035643809"
    device = line.device("SN1")
    assert device.identities["imei"] == "356938035643809" and device.counts["write_identity:imei"] == 1


def test_rf_refused_from_module1complete_on() -> None:
    """RF test mode and trims work while Blank and are refused once the unit is Module1Complete."""
    device = SimLine(FLOW).open_unit("SN1", 1)
    device.rf_start("wifi-2g4", 1)
    device.rf_stop()
    device.advance_lifecycle("Module1Complete")
    with pytest.raises(CommandRefused, match="Module1Complete: it refuses RF test mode"):
        device.rf_start("wifi-2g4", 1)
    with pytest.raises(CommandRefused):
        device.write_trim("wifi-2g4", 1, 0.5, 0.0, persist=True)
    device.recover(IMAGES["os"], 5, threading.Event())  # software may still change: only RF is locked
    device.sideload(IMAGES["app"])


def test_device_complete_freezes_software_and_identities() -> None:
    """From DeviceComplete on, software, identities and settings cannot change; reads still work."""
    device = SimLine(FLOW).open_unit("SN1", 1)
    device.recover(IMAGES["os"], 5, threading.Event())
    device.advance_lifecycle("DeviceComplete")
    for command in (
        lambda: device.sideload(IMAGES["app"]),
        lambda: device.delete_image("app"),
        lambda: device.recover(IMAGES["os"], 5, threading.Event()),
        lambda: device.write_identity("serial", "SIM1"),
        lambda: device.customize("EU", None),
    ):
        with pytest.raises(CommandRefused, match="DeviceComplete"):
            command()
    assert device.status().lifecycle == "DeviceComplete"


def test_lifecycle_never_goes_back_and_counts_each_advance() -> None:
    """Advancing counts once per real move; repeating is a no-op; going back is refused."""
    line = SimLine(FLOW)
    unit = line.open_unit("SN1", 1)
    unit.advance_lifecycle("Module1Complete")
    unit.advance_lifecycle("Module1Complete")
    with pytest.raises(CommandRefused, match="cannot go back to Blank"):
        unit.advance_lifecycle("Blank")
    assert unit.status().lifecycle == "Module1Complete" and line.device("SN1").counts["advance_lifecycle"] == 1


# -- identity allocation ---------------------------------------------------------------------------


def test_imeis_are_luhn_valid_and_from_the_range() -> None:
    """IMEIs are TAC + 6-digit serial from the range + a Luhn check digit that stdnum accepts."""
    allocator = JournalIdentityAllocator(AllocatorConfig(tac="35693803", imei_first=1000))
    values = [allocator.allocate("imei", f"SN{i}") for i in range(50)]
    for n, value in enumerate(values, 1000):
        assert imei.is_valid(value) and luhn.is_valid(value)
        assert value[:8] == "35693803" and int(value[8:14]) == n


def test_allocator_never_reissues_and_returns_a_units_own_value() -> None:
    """Across threads no value is issued twice, and a unit asking again gets its own value back."""
    allocator = JournalIdentityAllocator()
    results: dict[tuple[str, str], str] = {}
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(50):
            serial = f"W{worker}-{i}"
            for kind in ("imei", "bt_mac", "wifi_mac", "serial"):
                value = allocator.allocate(kind, serial)
                with lock:
                    results[kind, serial] = value

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results.values())) == len(results) == 8 * 50 * 4
    assert allocator.allocate("imei", "W3-7") == results["imei", "W3-7"]


def test_macs_come_from_the_oui_block_and_serials_from_the_format() -> None:
    """MACs are consecutive addresses of the OUI block; serials follow serial_format."""
    allocator = JournalIdentityAllocator(AllocatorConfig(oui="00:1b:63", serial_format="X1-{n:05d}"))
    assert allocator.allocate("bt_mac", "A") == "00:1B:63:00:00:00"
    assert allocator.allocate("wifi_mac", "A") == "00:1B:63:00:00:01"
    assert allocator.allocate("serial", "A") == "X1-00001"


def test_an_exhausted_range_is_a_station_error() -> None:
    """When the IMEI range is used up the station says so instead of wrapping around."""
    allocator = JournalIdentityAllocator(AllocatorConfig(imei_first=5, imei_last=6))
    allocator.allocate("imei", "A")
    allocator.allocate("imei", "B")
    with pytest.raises(StationError, match="exhausted"):
        allocator.allocate("imei", "C")


def test_journal_survives_a_restart(tmp_path: Path) -> None:
    """With a journal, a restarted allocator neither reissues a value nor forgets a unit's own."""
    journal = tmp_path / "ids.tsv"
    first = JournalIdentityAllocator(journal=journal)
    given = first.allocate("imei", "SN1")
    second = JournalIdentityAllocator(journal=journal)
    assert second.allocate("imei", "SN1") == given
    assert second.allocate("imei", "SN2") != given


def test_state_dir_keeps_units_between_lines(tmp_path: Path) -> None:
    """With state_dir, a unit written by one run is found as it was by the next (another station)."""
    config = {"state_dir": str(tmp_path)}
    first = SimLine(FLOW, config)
    unit = first.open_unit("SN1", 1)
    unit.recover(IMAGES["os"], 5, threading.Event())
    unit.write_identity("imei", "356938035643809")
    unit.advance_lifecycle("Module1Complete")
    unit.close()
    first.close()
    line = SimLine(FLOW, config)
    again = line.open_unit("SN1", 1)
    assert again.read_identity("imei") == "356938035643809" and again.status().lifecycle == "Module1Complete"
    device = line.device("SN1")
    assert (device.os_image, device.lifecycle, device.identities) == (
        "os",
        "Module1Complete",
        {"imei": "356938035643809"},
    )
    assert device.counts["advance_lifecycle"] == 1


def test_a_line_running_all_shift_keeps_a_bounded_number_of_units_and_reads_older_ones_back(tmp_path: Path) -> None:
    """With state_dir, units that left the fixture are dropped from memory past KEPT_IN_MEMORY; one that
    comes back finds its state as it was, read from its file."""
    line = SimLine(FLOW, {"state_dir": str(tmp_path)})
    first = line.open_unit("SN0", 1)
    first.write_identity("imei", "356938035643809")
    first.close()
    for n in range(1, KEPT_IN_MEMORY + 40):
        line.open_unit(f"SN{n}", 1 + n % 4).close()
    assert len(line._devices) <= KEPT_IN_MEMORY
    assert "SN0" not in line._devices  # the first to leave went first
    assert line.device("SN0").identities == {"imei": "356938035643809"}
    again = line.open_unit("SN0", 2)
    assert again.read_identity("imei") == "356938035643809"
    line.close()


# -- instruments -----------------------------------------------------------------------------------


def test_rf_tester_is_seeded_per_serial_and_stage() -> None:
    """Two lines measure a serial identically; another serial measures differently."""

    def measure(serial: str) -> Any:
        line = SimLine(FLOW)
        unit = line.open_unit(serial, 1)
        unit.begin("rf_cal", threading.Event())
        unit.rf_start("wifi-5g", 36)
        return line.resources()["rf_tester"].measure_tx(unit, "wifi-5g", 36)

    assert measure("SN1") == measure("SN1") != measure("SN2")


def test_rf_tester_sees_no_signal_from_a_silent_unit() -> None:
    """Measuring a unit that is not transmitting is a station problem, not a reading: the tester's
    port of the slot is cabled to the unit open in it, and empty once the unit is closed."""
    line = SimLine(FLOW)
    tester = line.resources()["rf_tester"]
    unit = line.open_unit("SN1", 2)
    with pytest.raises(StationError, match="the tester sees no signal: unit SN1 is not transmitting"):
        tester.measure_tx(unit, "wifi-2g4", 1)
    unit.close()
    with pytest.raises(StationError, match="no signal on port 2"):
        tester.measure_tx(unit, "wifi-2g4", 1)


def test_label_printer_keeps_labels_per_serial() -> None:
    """The station's label printer is the line's printer: it keeps every label by serial, and the
    label's preview goes into the simulation's directory."""
    line = SimLine(FLOW)
    fields = [("serial", "SIM00000001"), ("imei", "356938035643809")]
    zpl = render_zpl("unit", "SN1", fields)
    preview = line.resources()["label_printer"].print_label("SN1", zpl, fields)
    assert line.printer.wait_labels(1, "SN1") == [zpl.strip()] and line.printer.labels("SN2") == []
    assert preview is not None and preview.is_file() and preview.parent == line.root / "labels"


@pytest.mark.parametrize("name", ["rf_tester", "meter", "label_printer"])
def test_an_offline_instrument_refuses_the_connection(name: str) -> None:
    """offline: [NAME] closes that instrument's server: using it is a StationError naming its address."""
    line = SimLine(FLOW, {"offline": [name]})
    unit = line.open_unit("SN1", 1)
    use: dict[str, Callable[[Any], Any]] = {
        "rf_tester": lambda r: r.measure_tx(unit, "wifi-2g4", 1),
        "meter": lambda r: r.read(unit, "standby_current_ma"),
        "label_printer": lambda r: r.print_label("SN1", render_zpl("unit", "SN1", []), []),
    }
    addresses = {
        "rf_tester": line.rf_server.resource,
        "meter": line.meter_server.resource,
        "label_printer": line.printer.address,
    }
    with pytest.raises(StationError, match=rf"at {re.escape(addresses[name])} does not answer: .*Connection refused"):
        use[name](line.resources()[name])


# -- every example recipe on a healthy unit --------------------------------------------------------


class _Operator:
    name = "sim"

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        return Answer(True)


def _judge(stage: Stage) -> Any:
    specs = {m.name: m for m in stage.measurements}

    def judge(name: str, value: Any, units: str | None, tags: Mapping[str, Any]) -> MeasurementRecord:
        spec = specs.get(name)
        ok = spec is None or (
            (spec.equals is None or value == spec.equals)
            and (spec.limits is None or spec.limits.contains(value))
            and (spec.marginal is None or spec.marginal.contains(value))
        )
        return MeasurementRecord(name, value, Verdict.PASS if ok else Verdict.FAIL, units, tags=tags)

    return judge


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_route_passes_on_a_healthy_unit(path: Path) -> None:
    """Each route stage runs in order on one simulated unit, recording every declared measurement
    inside its marginal band (so inside its limits)."""
    flow = load_flow(path, REGISTRY)
    line = SimLine(flow, {})
    for serial in ("U0001", "U0002", "U0003"):
        device = line.open_unit(serial, 1)  # the SimulatedUnit: every command goes over the wires
        for stage_id in flow.route_ids:
            stage = flow.stages[stage_id]
            ctx = StepContext(
                params=stage.params, stage=stage, unit=UnitInfo(serial), slot=1, station=stage.station,
                attempt=1, device=device, operator=_Operator(), resources=line.resources(),
                images=flow.images, log=logging.getLogger("test"), judge=_judge(stage),
            )  # fmt: skip
            REGISTRY.get(stage.step)().run(ctx)
            bad = [(m.name, m.value, dict(m.tags)) for m in ctx.measurements if m.verdict is not Verdict.PASS]
            assert not bad, f"{serial} {stage_id}: {bad}"
            missing = {m.name for m in stage.measurements} - {m.name for m in ctx.measurements}
            assert not missing, f"{serial} {stage_id} recorded no {missing}"
        device.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SimLine(FLOW, {"allocator": {"imei_last": -1}}), "sim config: allocator.imei_last must be"),
        (lambda: HardwareLine(FLOW, {"identities": {"imei_last": -1}}), "station config: identities.imei_last must be"),
    ],
    ids=["sim", "station"],
)
def test_identity_ranges_are_checked_alike_and_name_their_config_once(make: Any, message: str) -> None:
    """Both configs check identity ranges with one checker; each message names its own config, once."""
    with pytest.raises(ValueError, match=message) as caught:
        make()
    assert str(caught.value).count("config:") == 1


# -- bench/gang.py: the gang flashes in parallel, and its --serialise check serialises ------------------


def _bench_gang() -> Any:
    spec = importlib.util.spec_from_file_location("bench_gang", ROOT / "bench" / "gang.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gang_flow(bench: Any, directory: Path, devices: int) -> Flow:
    recipe = directory / "gang.yaml"
    recipe.write_text(bench.RECIPE.replace("DEVICES", str(devices)))
    return load_flow(recipe, REGISTRY)


@pytest.mark.parametrize("serialise", [False, True], ids=["gang", "serialised"])
def test_gang_bench_flashes_its_units_together_unless_told_to_serialise(
    serialise: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/gang.py's gang has all its units inside flash.gang at once (each waits there for all the
    others); with --serialise's lock never two, and the step is its own again after."""
    bench = _bench_gang()
    devices = 4
    together = threading.Barrier(devices, timeout=30)
    guard = threading.Lock()
    inside = most = 0
    real = FlashGang.run

    def counted(self: FlashGang, ctx: StepContext) -> None:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        try:
            if serialise:
                time.sleep(0.1)  # room for another unit to come in, were there no lock
            else:
                together.wait()  # only passes when every unit of the gang is inside at once
            real(self, ctx)
        finally:
            with guard:
                inside -= 1

    monkeypatch.setattr(FlashGang, "run", counted)
    flow = _gang_flow(bench, tmp_path, devices)
    serials = [f"GANGT{n:03d}" for n in range(devices)]
    config = {"image_kib": 64, "usb_mb_s": 0}
    with bench.serialised() if serialise else contextlib.nullcontext():
        bench.flash(flow, REGISTRY, str(tmp_path), serials, config)  # every unit shipped, or it stops
    assert most == (1 if serialise else devices)
    assert FlashGang.run is counted
