"""Every registered step type runs on the simulated hardware, and fails the way the engine expects.

The contract half is parametrized over the registry: each type's ``example`` runs on a SimDevice
prepared the way the route would leave the unit, does to the unit what its ``effects()`` tell the
route checker, and honours missing devices, injected failures and cancellation. The rest are the
failure paths of each type: a bad unit is a StepFailed with a precise reason, a bad station is a
StationError.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest
from stdnum import imei

from engine.context import MeasurementRecord, StepContext, UnitInfo
from engine.flow import Flow, Image, Limits, Measurement, Stage
from engine.outcome import Outcome, StationError, StepFailed, Verdict
from engine.registry import Registry
from engine.step import StepType
from engine.testing import FakeOperator, installed_step_types
from steps.common import CommandRefused
from steps.sim import SimDevice, SimLine

STEP_TYPES: list[type[StepType]] = installed_step_types("floorflow")
"""floorflow's own step types (a third-party package installed beside it is tested by its own suite)."""
REGISTRY = Registry()
for _step_type in STEP_TYPES:
    REGISTRY.register(_step_type, origin="floorflow")
LIFECYCLE = ("Blank", "Module1Complete", "DeviceComplete")
IMAGES = {
    "os": Image("os", file="images/os-24.10", kind="recovery", type="retail"),
    "golden": Image("golden", file="images/golden.ffu", kind="ffu", type="retail"),
    "test_image": Image("test_image", file="images/ftest.imagepackage", type="test", temporary=True),
    "app": Image("app", file="images/app.imagepackage", type="retail"),
}
SERIAL = "SN0001"


def stage_id(name: str) -> str:
    return name.replace(".", "_")


def _flow() -> Flow:
    """One stage per registered step type, with its example parameters, id = the name with '_'."""
    stages = {
        stage_id(t.name): Stage(
            stage_id(t.name), t.name, params=t.Params(**t.example), effects=t.effects(t.Params(**t.example))
        )
        for t in STEP_TYPES
    }
    return Flow("contract", 1, stages, tuple(stages), lifecycle=LIFECYCLE, images=IMAGES)


FLOW = _flow()


def judge_for(stage: Stage) -> Callable[..., MeasurementRecord]:
    """Judges against the stage's limits (PASS when it declares none), as the engine would."""
    specs = {m.name: m for m in stage.measurements}

    def judge(name: str, value: Any, units: str | None, tags: Mapping[str, Any]) -> MeasurementRecord:
        spec = specs.get(name)
        verdict = Verdict.PASS
        if spec is not None and spec.limits is not None and not spec.limits.contains(value):
            verdict = Verdict.FAIL
        return MeasurementRecord(name, value, verdict, units, tags=tags)

    return judge


def context(
    line: SimLine,
    name: str,
    *,
    params: Any = None,
    stage: Stage | None = None,
    operator: FakeOperator | None = None,
    device: Any = "open",
    slot: int = 1,
    cancelled: threading.Event | None = None,
) -> StepContext:
    stage = stage if stage is not None else line.flow.stages[stage_id(name)]
    if params is not None:
        stage = replace(stage, params=params)
    return StepContext(
        params=stage.params,
        stage=stage,
        unit=UnitInfo(SERIAL),
        slot=slot,
        station=None,
        attempt=1,
        device=line.open_unit(SERIAL, slot) if device == "open" else device,
        operator=operator if operator is not None else FakeOperator(),
        resources=line.resources(),
        images=line.flow.images,
        log=logging.getLogger("test_step_run"),
        judge=judge_for(stage),
        cancelled=cancelled if cancelled is not None else threading.Event(),
    )


def run(line: SimLine, name: str, **kwargs: Any) -> StepContext:
    ctx = context(line, name, **kwargs)
    result = REGISTRY.get(name)().run(ctx)
    assert result in (None, Outcome.PASS)
    return ctx


def names(ctx: StepContext) -> list[str]:
    return [m.name for m in ctx.measurements]


# What the route leaves on a unit before a stage of each type runs (the example's preconditions).
def _recovered(device: SimDevice) -> None:
    device.recover(IMAGES["os"], 5, threading.Event())


def _with_test_app(device: SimDevice) -> None:
    _recovered(device)
    device.sideload(IMAGES["test_image"])


def _ready(device: SimDevice) -> None:
    _recovered(device)
    device.sideload(IMAGES["app"])


def _provisioned(device: SimDevice) -> None:
    for kind, value in {"serial": "SIM00000042", "imei": "356938035643809", "bt_mac": "02:46:46:00:00:01",
                        "wifi_mac": "02:46:46:00:00:02"}.items():  # fmt: skip
        device.write_identity(kind, value)


def _ready_with_test_app(device: SimDevice) -> None:
    _ready(device)
    device.sideload(IMAGES["test_image"])


def _ready_with_wifi(device: SimDevice) -> None:
    _ready(device)
    device.wifi.append("lab-ap")


PREPARE: dict[str, Callable[[SimDevice], None]] = {
    "boot.wait": _recovered,
    "image.delete": _with_test_app,
    "image.sideload": _recovered,
    "uart.functional": _with_test_app,
    "qa.ready_to_ship": _ready,
    "label.print": _provisioned,
}


def prepared(name: str, config: Mapping[str, Any] | None = None) -> SimLine:
    line = SimLine(FLOW, config)
    prepare = PREPARE.get(name)
    if prepare is not None:
        line.open_unit(SERIAL, 1)
        prepare(line.device(SERIAL))
    return line


each_type = pytest.mark.parametrize("step_type", STEP_TYPES, ids=lambda t: t.name)


# -- the contract, over every registered step type -------------------------------------------------


def test_every_documented_type_is_covered() -> None:
    """The contract tests below run over all twenty shipped step types, not a subset."""
    assert len(STEP_TYPES) >= 20
    assert {stage_id(t.name) for t in STEP_TYPES} == set(FLOW.stages)


@each_type
def test_example_runs_and_passes(step_type: type[StepType]) -> None:
    """The type's example runs on a prepared simulated unit and passes, every measurement PASS."""
    line = prepared(step_type.name)
    ctx = run(line, step_type.name)
    assert all(m.verdict is Verdict.PASS for m in ctx.measurements)


@each_type
def test_run_does_what_effects_declare(step_type: type[StepType]) -> None:
    """What the step does to the simulated unit is what its effects() tell the route checker."""
    line = prepared(step_type.name)
    device = line.open_unit(SERIAL, 1)
    before = device.status()
    params = step_type.Params(**step_type.example)
    fx = step_type.effects(params)
    run(line, step_type.name)
    after = device.status()
    for image in (*fx.loads, *fx.loads_volatile):
        assert image in after.images or line.device(SERIAL).os_image == image
    for image in fx.removes:
        assert image not in after.images
    if fx.replaces_storage:
        assert set(after.images) <= {*fx.loads}
    if fx.clears_volatile:
        assert not line.device(SERIAL).ram
    if fx.advances_to is not None:
        assert after.lifecycle == fx.advances_to
    if not (fx.loads or fx.loads_volatile or fx.removes or fx.replaces_storage or fx.clears_volatile):
        assert after.images == before.images


@each_type
def test_no_device_is_a_station_error(step_type: type[StepType]) -> None:
    """With no device open for the unit, every type raises StationError (ERROR), never FAIL."""
    ctx = context(SimLine(FLOW), step_type.name, device=None)
    with pytest.raises(StationError, match="no device"):
        step_type().run(ctx)


OPERATOR_ONLY = {"manual.checklist", "sample.inspect"}
"""Types that only ask the operator: an empty fixture slot does not stop them."""


@each_type
def test_an_empty_slot_is_a_station_error_naming_the_link(step_type: type[StepType]) -> None:
    """With nothing on the fixture (no USB device, a silent console), every type that talks to the unit
    raises StationError naming the USB port or the console, never FAIL; the link timeouts are short."""
    line = SimLine(FLOW, {"units": {SERIAL: {"missing": True}}})
    line.wiring = replace(line.wiring, console_timeout_s=0.3, usb_timeout_s=0.3)
    params = step_type.Params(**{**step_type.example, "timeout_s": 0}) if step_type.name == "device.connect" else None
    ctx = context(line, step_type.name, params=params)
    if step_type.name in OPERATOR_ONLY:
        step_type().run(ctx)
        return
    with pytest.raises(StationError, match=r"port 1-1\.1|no answer to|does not answer|no signal on port 1"):
        step_type().run(ctx)


@each_type
def test_injected_failure_fails_then_passes(step_type: type[StepType]) -> None:
    """A unit set to fail the stage's first attempt FAILs it, and passes the retry."""
    line = prepared(step_type.name, {"units": {SERIAL: {"fail": {stage_id(step_type.name): 1}}}})
    with pytest.raises(StepFailed, match="attempt 1"):
        step_type().run(context(line, step_type.name))
    run(line, step_type.name)


@each_type
def test_hang_stops_when_cancelled(step_type: type[StepType]) -> None:
    """A unit that hangs for a minute is given up within a second of the attempt being cancelled."""
    line = prepared(step_type.name, {"units": {SERIAL: {"hang": {stage_id(step_type.name): 60.0}}}})
    cancelled = threading.Event()
    threading.Timer(0.05, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(StationError, match="cancelled"):
        step_type().run(context(line, step_type.name, cancelled=cancelled))
    assert time.monotonic() - started < 1.0


# -- flashing, booting, images ---------------------------------------------------------------------


def test_flash_gang_verifies_the_read_back_hash() -> None:
    """flash.gang records the storage hash it read back; a corrupt write is a FAIL naming both hashes."""
    ctx = run(SimLine(FLOW), "flash.gang")
    assert names(ctx) == ["storage_sha256"] and re.fullmatch(r"[0-9a-f]{64}", ctx.measurements[0].value)
    bad = SimLine(FLOW, {"units": {SERIAL: {"corrupt": ["flash_gang"]}}})
    with pytest.raises(StepFailed, match=r"read back .* hashes to"):
        REGISTRY.get("flash.gang")().run(context(bad, "flash.gang"))


def test_flash_gang_station_problems_are_errors() -> None:
    """A slot beyond the gang fixture, or an unreachable image store, is a StationError."""
    params = REGISTRY.get("flash.gang").Params(image="os", fixture_slots=8)
    with pytest.raises(StationError, match="slot 9"):
        REGISTRY.get("flash.gang")().run(context(SimLine(FLOW), "flash.gang", params=params, slot=9))
    with pytest.raises(StationError, match="image store is offline"):
        REGISTRY.get("flash.gang")().run(context(SimLine(FLOW, {"offline": ["image_store"]}), "flash.gang"))


def test_flash_gang_replaces_everything_installed() -> None:
    """A full storage write leaves exactly the written image: earlier images and Wi-Fi are gone."""
    line = SimLine(FLOW, {"units": {SERIAL: {"wifi": ["lab-ap"]}}})
    _ready(line.open_unit(SERIAL, 1))
    run(line, "flash.gang", params=REGISTRY.get("flash.gang").Params(image="golden"))
    status = line.device(SERIAL).status()
    assert status.images == ("golden",) and status.wifi_networks == ()


def test_boot_wait_reboot_drops_the_ram_image() -> None:
    """boot.wait with reboot brings the unit up from storage: the RAM-booted test image is gone."""
    line = SimLine(FLOW)
    device = line.open_unit(SERIAL, 1)
    device.write_storage(IMAGES["golden"])
    run(line, "flash.boot_ram")
    assert "test_image" in device.status().images
    run(line, "boot.wait", params=REGISTRY.get("boot.wait").Params(reboot=True, banner="boot complete"))
    assert device.status().images == ("golden",)


def test_boot_wait_fails_a_unit_with_nothing_to_boot_or_the_wrong_banner() -> None:
    """A unit with no OS does not come up, and a banner the console never printed fails the stage."""
    with pytest.raises(StepFailed, match="no OS"):
        REGISTRY.get("boot.wait")().run(context(SimLine(FLOW), "boot.wait"))
    line = prepared("boot.wait")
    with pytest.raises(StepFailed, match="never printed"):
        REGISTRY.get("boot.wait")().run(
            context(line, "boot.wait", params=REGISTRY.get("boot.wait").Params(banner="^Welcome"))
        )


def test_boot_wait_longer_than_its_timeout_fails() -> None:
    """A boot that takes longer than the step's timeout is a FAIL after the timeout, not before."""
    line = SimLine(FLOW, {"boot_s": 5.0})
    line.open_unit(SERIAL, 1).write_storage(IMAGES["golden"])
    started = time.monotonic()
    with pytest.raises(StepFailed, match=r"within 0(\.0)? s"):
        REGISTRY.get("boot.wait")().run(
            context(line, "boot.wait", params=REGISTRY.get("boot.wait").Params(timeout_s=0))
        )
    assert time.monotonic() - started < 1.0


def test_device_recover_leaves_only_the_os() -> None:
    """Recovery rewrites storage: apps and Wi-Fi networks are gone, the OS version is recorded."""
    line = SimLine(FLOW, {"units": {SERIAL: {"wifi": ["lab-ap"]}}, "os_versions": {"os": "24.10"}})
    _ready(line.open_unit(SERIAL, 1))
    ctx = run(line, "device.recover")
    assert [(m.name, m.value) for m in ctx.measurements] == [("os_version", "24.10")]
    status = line.device(SERIAL).status()
    assert status.images == () and status.wifi_networks == ()
    # The storage reads back the hash of the recovery image's bytes as they crossed the USB link.
    assert ctx.device.storage_digest() == line.image_store.digest(line.flow.images["os"])


def test_sideload_refuses_an_unsigned_image() -> None:
    """An image that is not production-signed is refused by the unit: a FAIL naming the image."""
    line = prepared("image.sideload", {"unsigned": ["test_image"]})
    with pytest.raises(CommandRefused, match=r"'test_image'.*not production-signed"):
        REGISTRY.get("image.sideload")().run(context(line, "image.sideload"))
    assert "test_image" not in line.device(SERIAL).status().images


def test_sideload_is_refused_once_device_complete() -> None:
    """After DeviceComplete the unit refuses to install software (Azure Sphere)."""
    line = SimLine(FLOW, {"units": {SERIAL: {"lifecycle": "DeviceComplete"}}})
    with pytest.raises(CommandRefused, match="DeviceComplete: it refuses installing 'test_image'"):
        REGISTRY.get("image.sideload")().run(context(line, "image.sideload"))


def test_image_delete_of_an_absent_image_passes() -> None:
    """Deleting an image that is not there leaves the unit as wanted (no image), so it passes."""
    ctx = run(SimLine(FLOW), "image.delete")
    assert "test_image" not in ctx.device.status().images


# -- operator checks -------------------------------------------------------------------------------


def test_checklist_records_each_check_and_names_the_failed_ones() -> None:
    """Every check is asked and recorded; the FAIL names each failed check with its comment."""
    params = REGISTRY.get("manual.checklist").Params(checks=("a", "b", "c"), instructions="Look closely.")
    operator = FakeOperator({"a": "scratched", "c": None})
    ctx = context(SimLine(FLOW), "manual.checklist", params=params, operator=operator)
    with pytest.raises(StepFailed, match=r"2 of 3 checks failed: a \(scratched\), c$"):
        REGISTRY.get("manual.checklist")().run(ctx)
    assert [(m.name, m.value) for m in ctx.measurements] == [("a", "fail"), ("b", "pass"), ("c", "fail")]
    assert [prompt for _, _, prompt in operator.asked] == ["Look closely."] * 3


def test_checklist_reads_declared_measurements_from_the_fixture_meter() -> None:
    """A measurement the stage declares beside its checks (standby current) comes from the meter."""
    stage = Stage(
        "manual_checklist", "manual.checklist",
        params=REGISTRY.get("manual.checklist").Params(checks=("standby_current",)),
        measurements=(Measurement("standby_current_ma", limits=Limits(high=8.0), units="mA"),),
    )  # fmt: skip
    ctx = run(SimLine(FLOW), "manual.checklist", stage=stage)
    assert names(ctx) == ["standby_current", "standby_current_ma"]
    assert 0 < ctx.measurements[1].value < 8.0 and ctx.measurements[1].units == "mA"
    high = SimLine(FLOW, {"units": {SERIAL: {"measurements": {"manual_checklist.standby_current_ma": 12.5}}}})
    assert run(high, "manual.checklist", stage=stage).measurements[1].verdict is Verdict.FAIL


def test_sample_inspect_fails_naming_the_failed_test() -> None:
    """A sampled unit failing one of its tests is a FAIL naming that test."""
    operator = FakeOperator({"visual": "dent on the frame"})
    with pytest.raises(StepFailed, match=r"visual \(dent on the frame\)"):
        REGISTRY.get("sample.inspect")().run(context(SimLine(FLOW), "sample.inspect", operator=operator))


# -- UART functional tests -------------------------------------------------------------------------


def test_functional_records_each_self_test_and_fails_the_bad_one() -> None:
    """Each self-test is recorded pass/fail; a failing one fails the stage naming it."""
    params = REGISTRY.get("uart.functional").Params(tests=("gpio", "adc"))
    line = prepared("uart.functional", {"units": {SERIAL: {"measurements": {"uart_functional.adc": "fail"}}}})
    ctx = context(line, "uart.functional", params=params)
    with pytest.raises(StepFailed, match=r"1 of 2 self-tests failed: adc: FAIL"):
        REGISTRY.get("uart.functional")().run(ctx)
    assert [(m.name, m.value) for m in ctx.measurements] == [("gpio", "pass"), ("adc", "fail")]


def test_functional_without_a_test_app_fails_and_a_wrong_baudrate_is_a_station_error() -> None:
    """No test application answering is the unit's FAIL; the wrong baud rate is the station's ERROR."""
    with pytest.raises(StepFailed, match="no factory test application"):
        REGISTRY.get("uart.functional")().run(context(prepared("device.recover"), "uart.functional"))
    params = REGISTRY.get("uart.functional").Params(tests=("gpio",), baudrate=9600)
    with pytest.raises(StationError, match="9600 baud"):
        REGISTRY.get("uart.functional")().run(context(prepared("uart.functional"), "uart.functional", params=params))


# -- RF --------------------------------------------------------------------------------------------


def test_rf_measure_records_each_channel_on_wifi() -> None:
    """Wi-Fi measurement records TX power, EVM, frequency error and RSSI per channel, in limits."""
    ctx = run(SimLine(FLOW), "rf.measure")
    assert names(ctx) == ["tx_power_dbm", "tx_evm_percent", "freq_error_ppm", "rx_rssi_dbm"] * 3
    assert [m.tags["channel"] for m in ctx.measurements[::4]] == [1, 6, 11]
    for m in ctx.measurements:
        if m.name == "tx_power_dbm":
            assert 14.0 <= m.value <= 18.0 and m.units == "dBm"
        if m.name == "rx_rssi_dbm":
            assert -63.0 <= m.value <= -57.0 and m.tags["level_dbm"] == -60.0


def test_rf_measure_cellular_is_a_call() -> None:
    """A cellular band records call_connected, max TX power, EVM, frequency error and BLER."""
    params = REGISTRY.get("rf.measure").Params(band="lte-b3", channels=(1575,))
    ctx = run(SimLine(FLOW), "rf.measure", params=params)
    assert names(ctx) == [
        "call_connected",
        "max_tx_power_dbm",
        "tx_evm_percent",
        "freq_error_ppm",
        "rx_bler_percent",
    ]
    assert ctx.measurements[0].value is True


def test_rf_measure_without_a_call_fails() -> None:
    """A call that does not connect is a FAIL, with call_connected recorded as False."""
    params = REGISTRY.get("rf.measure").Params(band="lte-b3", channels=(1575,))
    line = SimLine(FLOW, {"units": {SERIAL: {"measurements": {"rf_measure.call_connected": False}}}})
    ctx = context(line, "rf.measure", params=params)
    with pytest.raises(StepFailed, match="no call"):
        REGISTRY.get("rf.measure")().run(ctx)
    assert [(m.name, m.value) for m in ctx.measurements] == [("call_connected", False)]


def test_rf_measure_records_an_out_of_range_value_for_the_engine_to_judge() -> None:
    """A unit transmitting 30 dBm has that value recorded, and judged FAIL against the stage's limits."""
    stage = replace(FLOW.stages["rf_measure"], measurements=(Measurement("tx_power_dbm", limits=Limits(14.0, 18.0)),))
    line = SimLine(FLOW, {"units": {SERIAL: {"measurements": {"rf_measure.tx_power_dbm": 30.0}}}})
    ctx = run(line, "rf.measure", stage=stage)
    powers = [m for m in ctx.measurements if m.name == "tx_power_dbm"]
    assert [m.value for m in powers] == [30.0] * 3 and all(m.verdict is Verdict.FAIL for m in powers)


def test_rf_calibrate_trims_the_radio_to_its_target() -> None:
    """Calibration writes trims that bring the cellular radio to 23 dBm and near-zero frequency error."""
    params = REGISTRY.get("rf.calibrate").Params(band="lte-b3", channels=(1300, 1575, 1850))
    line = SimLine(FLOW)
    ctx = run(line, "rf.calibrate", params=params)
    by_name: dict[str, list[float]] = {}
    for m in ctx.measurements:
        by_name.setdefault(m.name, []).append(m.value)
    assert all(abs(p - 23.0) < 0.3 for p in by_name["max_tx_power_dbm"])
    assert all(abs(f) < 0.05 for f in by_name["freq_error_ppm"])
    assert line.device(SERIAL).counts["write_trim"] == 3


def test_rf_calibrate_fails_a_radio_beyond_the_trim_range() -> None:
    """A radio transmitting 30 dBm needs more correction than a trim can give: a FAIL, nothing written."""
    line = SimLine(FLOW, {"units": {SERIAL: {"measurements": {"rf_calibrate.tx_power_dbm": 30.0}}}})
    with pytest.raises(StepFailed, match="beyond the ±3 dB trim"):
        REGISTRY.get("rf.calibrate")().run(context(line, "rf.calibrate"))
    assert line.device(SERIAL).counts["write_trim"] == 0


@pytest.mark.parametrize("name", ["rf.measure", "rf.calibrate", "rf.verify_config"])
def test_rf_commands_are_refused_after_module1complete(name: str) -> None:
    """Once the unit is Module1Complete it refuses every RF command: a FAIL saying so."""
    line = SimLine(FLOW, {"units": {SERIAL: {"lifecycle": "Module1Complete"}}})
    with pytest.raises(CommandRefused, match="Module1Complete"):
        REGISTRY.get(name)().run(context(line, name))


@pytest.mark.parametrize(("name", "band"), [("rf.measure", "wifi-6g"), ("rf.calibrate", "lte-x")])
def test_rf_unknown_band_is_a_station_error(name: str, band: str) -> None:
    """A band the tester has no profile for is the station's problem, with a suggestion."""
    params = REGISTRY.get(name).Params(band=band, channels=(1,))
    with pytest.raises(StationError, match="no profile for band"):
        REGISTRY.get(name)().run(context(SimLine(FLOW), name, params=params))


def test_rf_tester_offline_is_a_station_error() -> None:
    """An RF tester that is offline makes the RF stages ERROR, not FAIL."""
    with pytest.raises(StationError, match=r"radio tester at .* does not answer"):
        REGISTRY.get("rf.measure")().run(context(SimLine(FLOW, {"offline": ["rf_tester"]}), "rf.measure"))


def test_rf_verify_config_names_every_wrong_setting() -> None:
    """Wrong region and a missing MAC are both named in one FAIL."""
    faults = {"rf_verify_config.rf_region": "US", "rf_verify_config.rf_mac": None}
    line = SimLine(FLOW, {"units": {SERIAL: {"measurements": faults}}})
    with pytest.raises(StepFailed, match=r"region is US, expected EU; no valid MAC"):
        REGISTRY.get("rf.verify_config")().run(context(line, "rf.verify_config"))


# -- provisioning, label, lifecycle, final checks --------------------------------------------------


def test_provision_identity_writes_valid_identities_once() -> None:
    """IMEI (Luhn-valid), MACs and serial are written once; a second run keeps them and writes nothing."""
    params = REGISTRY.get("provision.identity").Params(identities=("imei", "bt_mac", "wifi_mac", "serial"))
    line = SimLine(FLOW)
    first = {m.name: m.value for m in run(line, "provision.identity", params=params).measurements}
    assert imei.is_valid(first["imei"]) and first["bt_mac"] != first["wifi_mac"]
    again = {m.name: m.value for m in run(line, "provision.identity", params=params).measurements}
    assert again == first
    counts = line.device(SERIAL).counts
    assert [counts[f"write_identity:{k}"] for k in ("imei", "bt_mac", "wifi_mac", "serial")] == [1, 1, 1, 1]


def test_provision_identity_keeps_what_the_unit_already_carries() -> None:
    """A unit arriving with an IMEI keeps it; the allocator is not asked for one."""
    line = SimLine(FLOW, {"units": {SERIAL: {"identities": {"imei": "356938035643809"}}}})
    ctx = run(line, "provision.identity", params=REGISTRY.get("provision.identity").Params(identities=("imei",)))
    assert ctx.measurements[0].value == "356938035643809"
    assert line.identities.given("imei", SERIAL) is None


def test_provision_identity_refuses_a_malformed_identity_on_the_unit() -> None:
    """A unit carrying an IMEI with a wrong check digit fails instead of being relabelled."""
    line = SimLine(FLOW, {"units": {SERIAL: {"identities": {"imei": "356938035643808"}}}})
    params = REGISTRY.get("provision.identity").Params(identities=("imei",))
    with pytest.raises(StepFailed, match="malformed imei"):
        REGISTRY.get("provision.identity")().run(context(line, "provision.identity", params=params))


def test_label_print_sends_zpl_with_each_identity_as_a_barcode() -> None:
    """The label is one ZPL format holding a Code 128 barcode of every identity asked for."""
    line = prepared("label.print")
    run(line, "label.print")
    (zpl,) = line.printer.wait_labels(1, SERIAL)
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ")
    for value in ("SIM00000042", "356938035643809", "02:46:46:00:00:01", "02:46:46:00:00:02"):
        assert f"^BCN,70,Y,N,N^FH^FD{value}^FS" in zpl


def test_label_print_without_identities_fails_and_an_offline_printer_errors() -> None:
    """A unit with no identities cannot be labelled (FAIL); a printer that is offline is an ERROR."""
    with pytest.raises(StepFailed, match="no serial, imei, bt_mac, wifi_mac"):
        REGISTRY.get("label.print")().run(context(SimLine(FLOW), "label.print"))
    line = prepared("label.print", {"offline": ["label_printer"]})
    with pytest.raises(StationError, match=r"label printer at .* does not answer"):
        REGISTRY.get("label.print")().run(context(line, "label.print"))


def test_lifecycle_advance_is_one_way_and_counted() -> None:
    """Advancing records the new state once; going back is refused as a FAIL and changes nothing."""
    line = SimLine(FLOW)
    ctx = run(line, "lifecycle.advance")
    assert [(m.name, m.value) for m in ctx.measurements] == [("lifecycle_state", "DeviceComplete")]
    back = REGISTRY.get("lifecycle.advance").Params(to="Module1Complete")
    with pytest.raises(CommandRefused, match="cannot go back"):
        REGISTRY.get("lifecycle.advance")().run(context(line, "lifecycle.advance", params=back))
    assert line.device(SERIAL).lifecycle == "DeviceComplete"
    assert line.device(SERIAL).counts["advance_lifecycle"] == 1


@pytest.mark.parametrize(
    ("config", "prepare", "reason"),
    [
        ({}, _with_test_app, r"installed images are \[test_image\], expected exactly \[app\]"),
        ({}, _ready_with_test_app, "temporary images left: test_image"),
        ({"os_versions": {"os": "23.05"}}, _ready, "OS 23.05 is not one of 24.10"),
        ({"units": {SERIAL: {"capabilities": ["appdevelopment"]}}}, _ready, "capability certificates"),
        ({}, _ready_with_wifi, "Wi-Fi networks configured: lab-ap"),
    ],
    ids=["images", "temporary", "os", "capabilities", "wifi"],
)
def test_ready_to_ship_fails_a_unit_that_is_not(
    config: dict[str, Any], prepare: Callable[[SimDevice], Any], reason: str
) -> None:
    """Each ready-to-ship rule on its own fails the check, with the rule named in the reason."""
    line = SimLine(FLOW, config)
    line.open_unit(SERIAL, 1)
    prepare(line.device(SERIAL))
    with pytest.raises(StepFailed, match=reason):
        REGISTRY.get("qa.ready_to_ship")().run(context(line, "qa.ready_to_ship"))


def test_ready_to_ship_checks_the_state_when_given() -> None:
    """With state: DeviceComplete, a unit still Blank is not ready."""
    params = REGISTRY.get("qa.ready_to_ship").Params(os_versions=("24.10",), images=("app",), state="DeviceComplete")
    line = prepared("qa.ready_to_ship")
    with pytest.raises(StepFailed, match="lifecycle state is Blank, expected DeviceComplete"):
        REGISTRY.get("qa.ready_to_ship")().run(context(line, "qa.ready_to_ship", params=params))


# -- sensors, customization, ids -------------------------------------------------------------------


def test_sensor_calibration_beyond_correction_fails() -> None:
    """An accelerometer biased 0.5 g is beyond what calibration corrects: a FAIL naming it."""
    params = REGISTRY.get("device.calibrate_sensors").Params(sensors=("als", "accelerometer"))
    line = SimLine(FLOW, {"units": {SERIAL: {"measurements": {"device_calibrate_sensors.accelerometer_bias_g": 0.5}}}})
    ctx = context(line, "device.calibrate_sensors", params=params)
    with pytest.raises(StepFailed, match=r"accelerometer_bias_g = 0\.5 g"):
        REGISTRY.get("device.calibrate_sensors")().run(ctx)
    assert names(ctx) == ["als_gain", "accelerometer_bias_g"]


def test_customize_records_the_variant_and_fails_on_a_mismatch() -> None:
    """The applied variant is recorded; a unit reporting another variant fails."""
    params = REGISTRY.get("device.customize").Params(market="US", operator="Fabrikam")
    ctx = run(SimLine(FLOW), "device.customize", params=params)
    assert [(m.name, m.value) for m in ctx.measurements] == [("customization", "US/Fabrikam")]
    line = SimLine(FLOW, {"units": {SERIAL: {"measurements": {"device_customize.customization": "EU"}}}})
    with pytest.raises(StepFailed, match="reports customization 'EU'"):
        REGISTRY.get("device.customize")().run(context(line, "device.customize", params=params))


def test_record_id_records_the_stable_device_id() -> None:
    """The device ID is recorded under device_id and is the same in every run for the serial."""
    first = run(SimLine(FLOW), "device.record_id").measurements[0]
    second = run(SimLine(FLOW), "device.record_id").measurements[0]
    assert first.name == "device_id" and first.value == second.value and len(first.value) == 128


def test_record_id_of_an_unknown_kind_is_a_station_error() -> None:
    """Asking for an id kind the unit cannot report is the station's mistake, with a suggestion."""
    params = REGISTRY.get("device.record_id").Params(id_kind="device_id")
    with pytest.raises(StationError, match="did you mean 'device-id'"):
        REGISTRY.get("device.record_id")().run(context(SimLine(FLOW), "device.record_id", params=params))


@pytest.mark.parametrize("interface", ["usb", "uart", "ftdi"])
def test_connect_reaches_the_unit_or_names_the_port(interface: str) -> None:
    """device.connect answers over the interface asked for; an empty slot is an ERROR naming the port."""
    params = REGISTRY.get("device.connect").Params(interface=interface, timeout_s=0)
    run(SimLine(FLOW), "device.connect", params=params)
    empty = SimLine(FLOW, {"units": {SERIAL: {"missing": True}}})
    where = "port 1-1.1" if interface == "usb" else "no answer to ID"
    with pytest.raises(StationError, match=where):
        REGISTRY.get("device.connect")().run(context(empty, "device.connect", params=params))
