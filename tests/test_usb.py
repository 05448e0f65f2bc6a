"""The USB flashing link (steps.hardware.usb) through pyusb, against the simulated units of steps.sim.usbsim."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import libusb_package
import pytest
import usb.backend.libusb1
import usb.core
import usb.util

from engine.flow import Image
from engine.outcome import StationError, StepFailed
from steps.common import CommandRefused
from steps.hardware.usb import CHUNK_LIMIT, UsbLink, UsbSelector, port_path, usb_backend
from steps.sim.config import UnitFaults
from steps.sim.device import SimDevice
from steps.sim.model import LineModel
from steps.sim.usbsim import SIM_PID, SIM_VID, SimUsbBackend, UsbFirmware

MODEL = LineModel(
    lifecycle=("Blank", "Module1Complete", "DeviceComplete"),
    os_versions={"golden": "24.10", "os": "24.10", "app": "24.10", "test_app": "24.10"},
    image_types={"golden": "retail", "os": "retail", "app": "retail", "test_app": "test"},
    unsigned=frozenset({"test_app"}),
    rf_region="EU",
    rf_target_power_dbm=16.0,
    boot_s=0.0,
)
IMAGES = {
    "golden": Image("golden", file="images/golden.ffu", kind="ffu", type="retail"),
    "os": Image("os", file="images/os-24.10", kind="recovery", type="retail"),
    "app": Image("app", file="images/app.imagepackage", type="retail"),
    "test_app": Image("test_app", file="images/ftest.imagepackage", type="test", temporary=True),
}
ANY = UsbSelector(SIM_VID, SIM_PID)
SHORT_S = 0.3
HANG_LIMIT_S = 20.0
"""A wait that must end on an event gives up after this long, so a broken simulator fails a test, not hangs it."""


@dataclass
class Bench:
    """A simulated USB bus with units plugged into its ports."""

    backend: SimUsbBackend = field(default_factory=SimUsbBackend)
    firmwares: dict[str, UsbFirmware] = field(default_factory=dict)
    links: list[UsbLink] = field(default_factory=list)

    def plug(self, port: str, faults: UnitFaults | None = None, model: LineModel = MODEL) -> UsbFirmware:
        firmware = UsbFirmware(SimDevice(f"SN-{port}", model, faults), IMAGES)
        self.backend.attach(port, firmware)
        self.firmwares[port] = firmware
        return firmware

    def open(self, selector: UsbSelector = ANY, timeout_s: float = 10.0) -> UsbLink:
        link = UsbLink.open(selector, backend=self.backend, timeout_s=timeout_s)
        self.links.append(link)
        return link


@pytest.fixture
def bench() -> Iterator[Bench]:
    made = Bench()
    yield made
    for link in made.links:
        link.close()
    for firmware in made.firmwares.values():
        firmware.close()


def image_bytes(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def write(link: UsbLink, data: bytes, chunk: int = 100_000, **kwargs: object) -> str:
    return link.send(f"WRITE golden {len(data)}", chunked(data, chunk), len(data), **kwargs)  # type: ignore[arg-type]


# -- enumeration and selection ------------------------------------------------------------------------


def test_descriptors_and_strings_read_through_pyusb(bench: Bench) -> None:
    """pyusb reads the unit's device, configuration, interface and endpoint descriptors and its strings."""
    firmware = bench.plug("1-1.3")
    device = usb.core.find(idVendor=SIM_VID, idProduct=SIM_PID, backend=bench.backend)
    try:
        assert (device.bDeviceClass, device.bNumConfigurations, device.bus, device.port_numbers) == (0xFF, 1, 1, (1, 3))
        assert device.port_number == 3 and 2 <= device.address <= 127
        interface = device[0][(0, 0)]
        assert interface.bInterfaceClass == 0xFF
        endpoints = [(e.bEndpointAddress, usb.util.endpoint_type(e.bmAttributes), e.wMaxPacketSize) for e in interface]
        assert endpoints == [(0x01, usb.util.ENDPOINT_TYPE_BULK, 512), (0x81, usb.util.ENDPOINT_TYPE_BULK, 512)]
        assert usb.util.get_langids(device) == (0x0409,)
        assert (device.manufacturer, device.product) == ("floorflow", "simulated unit")
        assert device.serial_number == firmware.device.device_id[:16]
        assert port_path(device) == "1-1.3"
    finally:
        usb.util.dispose_resources(device)


def test_selection_by_port_by_serial_and_alone(bench: Bench) -> None:
    """A unit is found by its port path, by its serial number, or as the only device of its VID/PID."""
    firmwares = [bench.plug(port) for port in ("1-1.1", "1-1.2", "1-2")]
    by_port = bench.open(UsbSelector(SIM_VID, SIM_PID, port="1-1.2"))
    assert by_port.where == "USB 1-1.2"
    assert firmwares[1].device.device_id in by_port.command("INFO")
    serial = firmwares[2].device.device_id[:16]
    by_serial = bench.open(UsbSelector(SIM_VID, SIM_PID, serial=serial))
    assert by_serial.where == "USB 1-2"
    alone = Bench()
    alone.plug("1-4.4.1")
    try:
        assert alone.open().where == "USB 1-4.4.1"
    finally:
        alone.links[0].close()


def test_nothing_found_names_the_selector_and_lists_what_is_attached(bench: Bench) -> None:
    """No matching device is a StationError naming the selector and each attached device with its serial."""
    firmware = bench.plug("1-1.1")
    with pytest.raises(StationError) as caught:
        bench.open(UsbSelector(SIM_VID, SIM_PID, port="1-1.7"))
    message = str(caught.value)
    assert "USB 1209:f10f at port 1-1.7" in message
    assert f"1209:f10f@1-1.1 (serial {firmware.device.device_id[:16]})" in message
    with pytest.raises(StationError, match="no device found for USB 1209:f10f with serial NOPE"):
        bench.open(UsbSelector(SIM_VID, SIM_PID, serial="NOPE"))
    with pytest.raises(StationError, match="no USB devices at all"):
        UsbLink.open(ANY, backend=SimUsbBackend())


def test_several_matches_are_ambiguous(bench: Bench) -> None:
    """Two matching units and no port or serial is a StationError asking to select one."""
    bench.plug("1-1.1")
    bench.plug("1-1.2")
    with pytest.raises(StationError, match=r"2 devices match USB 1209:f10f \(at 1-1.1, 1-1.2\); select one by port"):
        bench.open()


def test_a_unit_claimed_by_another_link_cannot_be_opened(bench: Bench) -> None:
    """A second link to a claimed unit is a StationError, not a shared interface."""
    bench.plug("1-1.1")
    bench.open()
    with pytest.raises(StationError, match=r"USB 1-1\.1: cannot claim the flashing interface"):
        bench.open()


def test_missing_libusb_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a libusb-1.0 library, opening USB is a StationError saying how to install one."""
    monkeypatch.setattr(libusb_package, "get_libusb1_backend", lambda: None)
    monkeypatch.setattr(usb.backend.libusb1, "get_backend", lambda *args, **kwargs: None)
    with pytest.raises(StationError, match=r"pip install libusb-package.*apt install libusb-1.0-0"):
        usb_backend()
    with pytest.raises(StationError, match=r"no libusb-1\.0 library"):
        UsbLink.open(ANY)


# -- the protocol ------------------------------------------------------------------------------------


def test_write_then_verify_reads_back_the_hash_of_the_bytes_sent(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    """WRITE hashes what arrives in transfers of at most 64 KiB, VERIFY reads it back, progress climbs to size."""
    bench.plug("1-1.1")
    sizes: list[int] = []
    original = bench.backend.bulk_write

    def counted(handle: Any, ep: int, intf: int, data: array[int], timeout: int) -> int:
        sizes.append(len(data))
        return original(handle, ep, intf, data, timeout)

    monkeypatch.setattr(bench.backend, "bulk_write", counted)
    link = bench.open()
    data = image_bytes(CHUNK_LIMIT * 2 + 300 * 1024 + 17)
    seen: list[int] = []
    expected = hashlib.sha256(data).hexdigest()
    assert write(link, data, chunk=CHUNK_LIMIT + 150_000, progress=seen.append) == expected
    assert link.command("VERIFY") == expected
    assert seen == sorted(seen) and seen[-1] == len(data)
    assert max(sizes) == CHUNK_LIMIT and sum(sizes[1:]) == len(data) + len("VERIFY")


def test_a_corrupt_write_reads_back_a_different_hash(bench: Bench) -> None:
    """A unit whose storage corrupts writes in the stage reads back a hash other than the bytes'."""
    firmware = bench.plug("1-1.1", UnitFaults(corrupt=frozenset({"flash"})))
    firmware.device.begin("flash", threading.Event())
    link = bench.open()
    data = image_bytes(200 * 1024)
    assert write(link, data) != hashlib.sha256(data).hexdigest()
    assert link.command("VERIFY") != hashlib.sha256(data).hexdigest()


def test_the_other_commands_reach_the_unit(bench: Bench) -> None:
    """RECOVER, BOOT, SIDELOAD, STATUS, BOOTRAM, DELETE, REBOOT and INFO do to the unit what the protocol says."""
    firmware = bench.plug("1-1.1")
    device = firmware.device
    link = bench.open()
    image = image_bytes(1000)
    assert link.send("RECOVER os 1000", [image], 1000) == ""
    assert device.running and device.os_image == "os"
    assert link.command("BOOT 5") == "running"
    assert link.send("SIDELOAD app 1000", [image], 1000) == ""
    assert '"images": ["app"]' in link.command("STATUS")
    with pytest.raises(CommandRefused, match="not production-signed"):
        link.send("SIDELOAD test_app 1000", [image], 1000)
    assert link.send("BOOTRAM test_app 0", [], 0) == ""
    assert device.ram == {"test_app": True}
    assert (link.command("DELETE app"), link.command("DELETE app")) == ("1", "0")
    assert link.command("REBOOT") == ""
    assert '"running": false' in link.command("INFO") and not device.ram
    assert link.command("BOOT 5") == "booted"


def test_a_locked_unit_refuses_a_write(bench: Bench) -> None:
    """A unit at DeviceComplete answers a WRITE with ERR refused: CommandRefused (FAIL)."""
    bench.plug("1-1.1", UnitFaults(lifecycle="DeviceComplete"))
    link = bench.open()
    with pytest.raises(CommandRefused, match="DeviceComplete"):
        write(link, image_bytes(4096))
    assert link.command("INFO")  # the exchange ended cleanly: the link goes on


def test_verify_on_blank_storage_fails_the_unit(bench: Bench) -> None:
    """VERIFY with nothing written is ERR failed: StepFailed (FAIL), not a refusal."""
    bench.plug("1-1.1")
    with pytest.raises(StepFailed, match="storage is blank") as caught:
        bench.open().command("VERIFY")
    assert not isinstance(caught.value, CommandRefused)


def test_a_wrong_command_is_a_station_error(bench: Bench) -> None:
    """An unknown image, verb or argument is ERR invalid: a StationError naming the port."""
    bench.plug("1-1.1")
    link = bench.open()
    with pytest.raises(StationError, match=r"USB 1-1\.1: the unit rejected the command: unknown image 'nope'"):
        link.send("WRITE nope 10", [b"0123456789"], 10)
    with pytest.raises(StationError, match="unknown command"):
        link.command("FROB")
    with pytest.raises(StationError, match="wrong arguments"):
        link.command("BOOT soon")
    with pytest.raises(StationError, match="not a command line"):
        link.command("WRITE ünïcode 1")


def test_a_silent_unit_times_out(bench: Bench) -> None:
    """No reply within the timeout is a StationError; the link then refuses commands until reopened."""
    firmware = bench.plug("1-1.1")
    link = bench.open()
    firmware.silent = True
    with pytest.raises(StationError, match=f"USB 1-1.1: no reply to INFO within {SHORT_S:g} s"):
        link.command("INFO", timeout_s=SHORT_S)
    with pytest.raises(StationError, match="out of step after no reply to INFO; reopen it"):
        link.command("INFO")
    firmware.silent = False
    link.close()
    assert bench.open().command("INFO")


def test_a_boot_longer_than_the_host_waits_is_a_timeout(bench: Bench) -> None:
    """BOOT that outlasts the host's timeout is a StationError, not a hang."""
    slow = LineModel(**{**MODEL.__dict__, "boot_s": 3.0})
    firmware = bench.plug("1-1.1", model=slow)
    firmware.device.write_storage(IMAGES["golden"])
    with pytest.raises(StationError, match="no reply to BOOT within"):
        bench.open().command("BOOT 30", timeout_s=SHORT_S)


def test_a_garbled_reply_shows_its_bytes(bench: Bench) -> None:
    """A reply that is not text is a StationError showing the bytes received."""
    firmware = bench.plug("1-1.1")
    link = bench.open()
    firmware.garble_next_reply()
    with pytest.raises(StationError, match=r"USB 1-1.1: unintelligible reply to INFO: b'\\xff\\xfe"):
        link.command("INFO")


def test_an_unplugged_unit_is_a_station_error(bench: Bench) -> None:
    """A unit unplugged mid-session fails the next transfer, and wakes a read already waiting."""
    firmware = bench.plug("1-1.1")
    link = bench.open()
    assert link.command("INFO")
    bench.backend.detach("1-1.1")
    with pytest.raises(StationError, match=r"USB 1-1.1: USB transfer failed during INFO \(unplugged\?\)"):
        link.command("INFO")
    bench.backend.attach("1-1.2", firmware)
    waiting = bench.open()
    firmware.silent = True
    errors: list[StationError] = []

    def read() -> None:
        try:
            waiting.command("INFO", timeout_s=600.0)
        except StationError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.1)  # let the reader block on its reply
    bench.backend.detach("1-1.2")
    reader.join(HANG_LIMIT_S)  # far below the read's own timeout: only the unplugging ends it
    assert not reader.is_alive()
    assert "unplugged" in str(errors[0])


def test_cancelling_a_send_stops_between_chunks(bench: Bench) -> None:
    """A send cancelled mid-image stops before the next transfer; reopening the link starts afresh."""
    bench.plug("1-1.1")
    link = bench.open()
    cancelled = threading.Event()
    sent: list[int] = []

    def progress(count: int) -> None:
        sent.append(count)
        cancelled.set()

    with pytest.raises(StationError, match="WRITE cancelled after 1000 of 5000 bytes"):
        write(link, image_bytes(5000), chunk=1000, progress=progress, cancelled=cancelled)
    assert sent == [1000]
    with pytest.raises(StationError, match="out of step"):
        link.command("VERIFY")
    link.close()
    with pytest.raises(StationError, match="the link is closed"):
        link.command("INFO")
    data = image_bytes(5000, seed=2)
    assert write(bench.open(), data) == hashlib.sha256(data).hexdigest()


def test_an_image_source_of_the_wrong_size_is_a_station_error(bench: Bench) -> None:
    """Chunks that add up to more or less than the announced size are a StationError, never sent as such."""
    bench.plug("1-1.1")
    with pytest.raises(StationError, match="gave 3000 bytes, not 4000"):
        bench.open().send("WRITE golden 4000", [bytes(1000)] * 3, 4000)
    bench.links.pop().close()
    with pytest.raises(StationError, match="gives more than 2000 bytes"):
        bench.open().send("WRITE golden 2000", [bytes(1000)] * 3, 2000)


def test_eight_units_flash_at_once(bench: Bench) -> None:
    """Eight units written from eight threads at once each read back the hash of their own image."""
    ports = [f"1-1.{n}" for n in range(1, 9)]
    for port in ports:
        bench.plug(port).bytes_per_s = 50e6
    images = {port: image_bytes(256 * 1024, seed=n) for n, port in enumerate(ports)}
    results: dict[str, tuple[str, str]] = {}
    errors: list[BaseException] = []

    def flash(port: str) -> None:
        try:
            with UsbLink.open(UsbSelector(SIM_VID, SIM_PID, port=port), backend=bench.backend) as link:
                results[port] = (write(link, images[port], chunk=CHUNK_LIMIT), link.command("VERIFY"))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=flash, args=(port,)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    assert not errors
    assert results == {port: (hashlib.sha256(data).hexdigest(),) * 2 for port, data in images.items()}


def test_selector_describes_itself() -> None:
    """A selector names VID:PID in hex and whichever of port and serial it holds."""
    assert UsbSelector(0x1209, 0xF10F, port="1-1.3").describe() == "USB 1209:f10f at port 1-1.3"
    assert UsbSelector(0x45E, 0xA00, serial="AB").describe() == "USB 045e:0a00 with serial AB"
